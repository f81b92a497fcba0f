"""The persona agent's data: a style corpus chunked into passages, and chat records in its voice.

- Style corpus: public-domain novels, each read with its declared encoding (one vendored file is
  Windows-1252, one UTF-8); a file that does not decode stops the stage with its name and byte.
  Chapter headings go; paragraphs are joined into passages of ``min_words``-``max_words`` words,
  each with its source file and character offsets; what is dropped is counted.
- Chat: hand-written answers in the persona's voice (``answers.yaml``), and the travel
  specialist's weather conversations with the answer after the tool result re-voiced from
  ``weather_voice.yaml`` (same call, same result, same facts; only the voice changes).

``python -m domaintune.data.persona vendor SRC_DIR OUT_DIR`` draws the seeded chapter sample the
repository vendors (see data/raw/persona/SOURCE.md), keeping each file's bytes and encoding.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from domaintune.cli import InputError
from domaintune.data.common import load_checked, rng
from domaintune.io import read_jsonl
from domaintune.params import PersonaData

HEADING = re.compile(r"^\s*(CHAPTER|Chapter|BOOK|PART|CONCLUSION|PREFACE|CONTENTS)\b[^a-z]*$")
CHAPTER_START = re.compile(rb"^CHAPTER [IVXLC]+\.?\s*$", re.MULTILINE)
# Typographic quotes and dashes as ASCII: the style classifier must judge words, not glyphs
# (the hand-written answers are typed with straight quotes).
ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2014": "--", "\u2013": "-"})
CONDITIONS = ("sunny", "partly cloudy", "windy", "cloudy", "light rain", "heavy rain", "thunderstorms",
              "snow showers")
SLOTS = ("{when}", "{date}", "{location}", "{condition}", "{lo}", "{hi}", "{rain}")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    prompt: str = Field(min_length=3)
    answer: str = Field(min_length=20)


class AnswerFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    answers: list[Answer] = Field(min_length=1)


class PromptFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    prompts: list[str] = Field(min_length=1)


class VoiceFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    templates: dict[str, list[str]]


def decode(path: Path, encoding: str) -> str:
    """The file's text in its declared encoding; an undecodable byte stops with file and offset."""
    data = path.read_bytes()
    try:
        return data.decode(encoding)
    except LookupError:
        raise InputError(f"{path}: unknown encoding {encoding!r} (agents.<name>.data.corpus)") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not valid {encoding} at byte {e.start} ({data[e.start:e.end]!r}); "
                         "fix the file or its encoding in agents.<name>.data.corpus") from None


def chunk(text: str, source: str, min_words: int, max_words: int) -> tuple[list[dict], dict]:
    """Passages of whole paragraphs, ``min_words``-``max_words`` words; a paragraph longer than
    ``max_words`` is cut at sentence ends. Returns passages and what was dropped."""
    dropped = {"headings": 0, "short_tail_words": 0, "short_tails": 0}
    paragraphs: list[tuple[int, int, str]] = []
    for m in re.finditer(r"[^\n](?:.|\n(?!\s*\n))*", text):
        body = " ".join(m.group().split())
        if HEADING.match(body):
            dropped["headings"] += 1
            continue
        if len(body.split()) > max_words:  # cut into sentences, kept whole
            for s in re.finditer(r"[^.!?]+[.!?]+[\"')]*\s*|[^.!?]+$", m.group()):
                paragraphs.append((m.start() + s.start(), m.start() + s.end(), " ".join(s.group().split())))
        else:
            paragraphs.append((m.start(), m.end(), body))
    passages: list[dict] = []
    cur: list[tuple[int, int, str]] = []

    def flush() -> None:
        words = sum(len(p[2].split()) for p in cur)
        if words >= min_words:
            passages.append({"source": source, "start": cur[0][0], "end": cur[-1][1], "words": words,
                             "text": "\n\n".join(p[2] for p in cur).translate(ASCII)})
        elif cur:
            dropped["short_tails"] += 1
            dropped["short_tail_words"] += words
        cur.clear()

    for para in paragraphs:
        if cur and sum(len(p[2].split()) for p in cur) + len(para[2].split()) > max_words:
            flush()
        cur.append(para)
    flush()
    return passages, dropped


def _voiced(record: dict, voice: dict[str, list[str]], r) -> dict | None:
    """The record with its answer after the tool result re-voiced; ``None`` if there is none."""
    msgs = record["messages"]
    tool = next((m for m in msgs if m["role"] == "tool"), None)
    if tool is None:
        return None
    res = json.loads(tool["content"])
    original = msgs[-1]["content"]
    when = original.split(" (", 1)[0]
    when = when[0].lower() + when[1:]
    text = r.choice(voice[res["condition"]]).format(
        when=when, date=res["date"], location=res["location"], condition=res["condition"],
        lo=res["temp_min_c"], hi=res["temp_max_c"], rain=res["precipitation_chance"])
    return {**record, "messages": [*msgs[:-1], {"role": "assistant", "content": text[0].upper() + text[1:]}]}


def build_persona(cfg: PersonaData, raw: str | Path, processed: str | Path, seed: int) -> tuple[dict, dict]:
    """``({file name: rows}, stats)`` for data/agents/<name>/."""
    raw, processed, r = Path(raw), Path(processed), rng(seed, "persona")
    passages, dropped = [], {}
    for name, encoding in sorted(cfg.corpus.items()):
        path = raw / name
        if not path.is_file():
            raise InputError(f"{path}: style corpus file not found (agents.<name>.data.corpus)")
        got, dropped[name] = chunk(decode(path, encoding), name, cfg.min_words, cfg.max_words)
        passages += got
    need = cfg.test_passages + cfg.train_passages + 4
    if len(passages) < need:
        raise InputError(f"{raw}: {len(passages)} passages of {cfg.min_words}-{cfg.max_words} words, "
                         f"need {need} (test_passages + train_passages + 4 for validation)")
    r.shuffle(passages)
    test, val, train = (passages[: cfg.test_passages], passages[cfg.test_passages: cfg.test_passages + 4],
                        passages[cfg.test_passages + 4:])
    unused = len(train) - cfg.train_passages
    train = train[: cfg.train_passages]

    answers = load_checked(raw / cfg.answers, AnswerFile).answers
    heldout = load_checked(raw / cfg.heldout_prompts, PromptFile).prompts
    voice = load_checked(raw / cfg.weather_voice, VoiceFile).templates
    missing = [c for c in CONDITIONS if not voice.get(c)]
    if missing:
        raise InputError(f"{raw / cfg.weather_voice}: no templates for {', '.join(missing)}")
    for cond, ts in voice.items():
        for i, t in enumerate(ts):
            if lost := [s for s in SLOTS if s not in t]:
                raise InputError(f"{raw / cfg.weather_voice}: templates.{cond}[{i}] lacks {', '.join(lost)}")
    overlap = {a.prompt.strip().lower() for a in answers} & {p.strip().lower() for p in heldout}
    if overlap:
        raise InputError(f"{raw / cfg.heldout_prompts}: held-out prompts also trained on: {sorted(overlap)[:3]}")

    chat = [{"id": f"persona-{i:04d}", "task": "general", "lang": "en", "split": "train",
             "messages": [{"role": "user", "content": a.prompt}, {"role": "assistant", "content": a.answer}]}
            for i, a in enumerate(answers)]
    tools = read_jsonl(processed / "tools.jsonl")
    with_call = [x for x in tools if x["split"] == "train" and x["meta"]["call"]]
    no_call = [x for x in tools if x["split"] == "train" and not x["meta"]["call"]]
    n_call = round(cfg.tool_conversations * len(with_call) / max(1, len(with_call) + len(no_call)))
    tool_rows = [_voiced(x, voice, r) for x in r.sample(with_call, min(n_call, len(with_call)))]
    tool_rows += r.sample(no_call, min(cfg.tool_conversations - len(tool_rows), len(no_call)))
    chat += tool_rows
    r.shuffle(chat)
    n_val = max(2, len(chat) // 20)
    # Plain assistant answers (the general instructions' outputs): the style classifier's other class
    plain = [x["messages"][-1]["content"] for x in read_jsonl(processed / "general.jsonl")
             if x["split"] == "train" and len(x["messages"][-1]["content"].split()) >= 20]
    files = {
        "text_train": [{"text": p["text"], "meta": {k: p[k] for k in ("source", "start", "end", "words")}}
                       for p in train],
        "text_val": [{"text": p["text"], "meta": {k: p[k] for k in ("source", "start", "end", "words")}} for p in val],
        "text_test": [{"text": p["text"], "meta": {k: p[k] for k in ("source", "start", "end", "words")}}
                      for p in test],
        "chat_train": chat[n_val:],
        "chat_val": chat[:n_val],
        "style_prompts": [{"prompt": p} for p in heldout],
        "tool_test": [x for x in tools if x["split"] == "test"],
        # the style classifier: every corpus passage but the perplexity test's (what the answers are
        # judged by is the corpus's voice, not a passage the text phase happened to skip)
        "style_fit": [{"text": p["text"], "label": 1} for p in passages[cfg.test_passages:]]
        + [{"text": t, "label": 0} for t in r.sample(plain, min(len(plain), 400))],
    }
    stats = {"passages": len(passages), "passages_unused_by_text_phase": unused, "dropped": dropped,
             "text_train": len(train), "text_test": len(test), "chat_answers": len(answers),
             "tool_conversations": len(tool_rows), "tool_voiced": sum(1 for x in tool_rows if x["meta"]["call"]),
             "style_prompts": len(heldout),
             "style_fit": {"persona": sum(x["label"] for x in files["style_fit"]),
                           "plain": sum(1 - x["label"] for x in files["style_fit"])}}
    return files, stats


def vendor_sample(src: Path, out: Path, chapters: int, seed: int) -> dict:
    """Copy ``chapters`` seeded chapters of each ``*.txt`` in ``src`` to ``out``, bytes unchanged."""
    out.mkdir(parents=True, exist_ok=True)
    picked = {}
    for path in sorted(src.glob("*.txt")):
        data = path.read_bytes()
        starts = [m.start() for m in CHAPTER_START.finditer(data)] + [len(data)]
        spans = list(zip(starts, starts[1:], strict=False))
        keep = sorted(rng(seed, path.name).sample(range(len(spans)), min(chapters, len(spans))))
        (out / path.name).write_bytes(b"".join(data[spans[i][0]:spans[i][1]] for i in keep))
        picked[path.name] = [i + 1 for i in keep]
    return picked


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("vendor", help="draw the seeded chapter sample of a style corpus")
    v.add_argument("src", type=Path)
    v.add_argument("out", type=Path)
    v.add_argument("--chapters", type=int, default=8)
    v.add_argument("--seed", type=int, default=20261204)
    a = ap.parse_args()
    print(json.dumps(vendor_sample(a.src, a.out, a.chapters, a.seed)))
