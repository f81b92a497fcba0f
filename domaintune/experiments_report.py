"""Write reports/experiments.md: the experiments tried, as `dvc exp show --md` prints them.

    python -m domaintune.experiments_report [--notes reports/experiments_notes.md] [--commits 8]

Only the headline metrics and the params that varied are kept, so the table fits a pull
request; the notes file (hand-written: what each experiment tried and what it taught) goes
above it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from domaintune.io import atomic_path

# Metric columns worth a reader's time; everything else `dvc exp show` prints is dropped.
# (`dvc exp show --md` names a column without its file unless two files share the name.)
KEEP = (r"^(Experiment|Created|"
        r"(metrics/intent.json:)?(scored\.accuracy|scored\.ece|scored_minus_tfidf|baselines\.tfidf\.accuracy|"
        r"scored_lm\.accuracy|scored_head\.accuracy|chain\.accuracy)|"
        r"(metrics/retention.json:)?retention|"
        r"(metrics/tools.json:)?(call_valid_rate|name_accuracy|args_accuracy|no_call_accuracy)|"
        r"(metrics/travel.json:)?(budget_consistent_rate|named_places_mean|looping_rate)|"
        r"(params.yaml:)?(mix\.(specialist_examples|domain_shares\..*|task_passes\..*)|lora\.(r|top_layers)"
        r"|train\.specialist\.(method|learning_rate|batch_size|epochs)|data\.intents\.examples_per_intent"
        r"|serve\.unsure|eval\.calibrate|eval\.intent_head\.(enabled|c|layers|tfidf_weights)))$")


def exp_table(commits: int) -> str:
    """The last ``commits`` commits of the branch and the experiments run on each."""
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--md", "--only-changed", "-n", str(commits),
           "--keep", KEEP, "--drop", ".*"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notes", default="reports/experiments_notes.md")
    ap.add_argument("--out", default="reports/experiments.md")
    ap.add_argument("--commits", type=int, default=8, help="how many commits back to list experiments of")
    args = ap.parse_args()
    notes = Path(args.notes).read_text(encoding="utf-8") if Path(args.notes).exists() else ""
    with atomic_path(args.out) as tmp:
        tmp.write_text(f"{notes.rstrip()}\n\n## `dvc exp show --md --only-changed` (headline columns)\n\n"
                       f"{exp_table(args.commits)}", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
