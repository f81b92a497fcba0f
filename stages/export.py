"""DVC stage: models/export/ (the merged model as GGUF, one file per export.types, and an Ollama
Modelfile) and metrics/export.json (sizes, and each file read back and compared with the
safetensors model on export.verify_prompts)."""

import logging
import re
import shutil
from pathlib import Path

from domaintune.cli import InputError, run_stage
from domaintune.io import write_json
from domaintune.modeling.gguf_export import ExportError, export_gguf, modelfile, verify
from domaintune.params import load_params

SRC, OUT = Path("models/specialist"), Path("models/export")
log = logging.getLogger("export")


def main() -> None:
    p = load_params()
    if not (SRC / "config.json").is_file():
        raise InputError(f"{SRC}: no merged model; run `dvc repro merge@specialist`")
    tmp = OUT.with_name(OUT.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    metrics = {}
    try:
        for file_type in p.export.types:
            path = export_gguf(SRC, tmp / f"domaintune-specialist-{file_type}.gguf", file_type,
                               name="domaintune-specialist")
            check = verify(SRC, path, p.export.verify_prompts, p.export.verify_max_new_tokens)
            log.info("%s: %s", path.name, {k: v for k, v in check.items() if k != "samples"})
            write_json(tmp / f"verify-{file_type}.json", check)
            metrics[file_type] = {k: v for k, v in check.items() if k != "samples"}
    except ExportError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(str(e)) from None
    # the default system prompt the chat template adds, restated for Ollama
    template = (SRC / "chat_template.jinja").read_text()
    system = re.search(r"set default_system = '([^']*)'", template)
    local = "q8_0" if "q8_0" in p.export.types else p.export.types[0]  # the smaller file, for laptops
    (tmp / "Modelfile").write_text(modelfile(f"domaintune-specialist-{local}.gguf",
                                             system.group(1) if system else "You are a helpful assistant."))
    shutil.rmtree(OUT, ignore_errors=True)
    tmp.replace(OUT)
    write_json("metrics/export.json", metrics)


if __name__ == "__main__":
    run_stage(main)
