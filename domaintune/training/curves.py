"""Per-step training curves through DVCLive, plotted against the trainer's global step.

transformers' ``DVCLiveCallback`` advances DVCLive's own step once per log call, so a run
that logs training loss, evaluation loss and guard scores puts them at unrelated x values,
and a resumed run would not line up with the steps it resumed at. Here each logged value is
stamped with ``state.global_step``.
"""

from __future__ import annotations

from pathlib import Path

from dvclive import Live
from transformers.integrations import DVCLiveCallback


class GlobalStepDVCLive(DVCLiveCallback):
    def on_log(self, args, state, control, model=None, logs=None, **kwargs):
        if self.live is not None:
            self.live.step = state.global_step
        super().on_log(args, state, control, model=model, logs=logs, **kwargs)


def open_live(live_dir: str, resumed_step: int) -> Live:
    """A fresh DVCLive folder; on resume, the interrupted run's curves up to the checkpoint's step
    (Live() would wipe them; rows logged after the checkpoint are about to be trained again)."""
    if resumed_step:
        for tsv in (Path(live_dir) / "plots" / "metrics").rglob("*.tsv"):
            header, *rows = tsv.read_text().splitlines()
            kept = [r for r in rows if int(r.split("\t", 1)[0]) <= resumed_step]
            tsv.write_text("\n".join([header, *kept]) + "\n")
    return Live(dir=live_dir, resume=bool(resumed_step), save_dvc_exp=False, dvcyaml=False)
