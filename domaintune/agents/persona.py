"""The chat kind with a voice (the persona agent): data from a style corpus and voiced answers,
a plain-text phase then chat SFT from the pipeline's base, and its metrics against that base:
perplexity on held-out passages, style score, tool use and retention."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from domaintune.agents import data_dir, model_dir
from domaintune.data.persona import build_persona
from domaintune.evaluation.choices import build_items, score_choices
from domaintune.evaluation.generate import generate, load_model
from domaintune.evaluation.perplexity import perplexity
from domaintune.evaluation.run import score_tools
from domaintune.evaluation.sampling import sample
from domaintune.evaluation.style import fit_style, style_scores
from domaintune.evaluation.summary import ratio_interval
from domaintune.evaluation.timing import StepTimer
from domaintune.io import read_jsonl, write_json, write_jsonl
from domaintune.modeling.chat_format import prompt_text
from domaintune.modeling.merge import merge_adapter
from domaintune.params import ChatAgent, Params
from domaintune.training.sft import train_adapter

SCRATCH = Path(".cache/agents")  # intermediate adapters and the text-phase model; not outputs


def build(name: str, agent: ChatAgent, p: Params) -> dict:
    files, stats = build_persona(agent.data, agent.raw, agent.also, p.seed)
    for fname, rows in files.items():
        write_jsonl(data_dir(name) / f"{fname}.jsonl", rows)
    write_json(data_dir(name) / "stats.json", stats)
    return stats


def train(name: str, agent: ChatAgent, p: Params) -> dict:
    """Text phase on the corpus passages, merged; then chat SFT on top of it, merged into the output."""
    data, work = data_dir(name), SCRATCH / name
    shutil.rmtree(work, ignore_errors=True)
    metrics, base = {}, agent.base
    for phase in ("text", "chat"):
        settings = p.agent_phase(name, phase)
        lora = p.lora.model_copy(update=settings.lora.model_dump(exclude_none=True))
        adapter = work / f"{phase}_adapter"
        metrics[phase] = train_adapter(
            base_dir=base, train_path=data / f"{phase}_train.jsonl", val_path=data / f"{phase}_val.jsonl",
            out_dir=adapter, phase=settings, lora=lora, seed=p.seed, checkpoint_dir=work / f"{phase}_ckpt")
        merged = model_dir(name) if phase == "chat" else work / "text_model"
        merge_adapter(base, adapter, merged)
        base = merged
    shutil.rmtree(work, ignore_errors=True)
    return metrics


def _answers(model, tok, prompts: list[str], agent: ChatAgent) -> list[str]:
    msgs = [[{"role": "user", "content": q}, {"role": "assistant", "content": "-"}] for q in prompts]
    return generate(model, tok, [prompt_text(tok, m) for m in msgs], agent.eval.max_new_tokens, agent.eval.batch_size)


def evaluate(name: str, agent: ChatAgent, p: Params) -> tuple[dict, dict]:
    """(answers and per-item details for evals/, headline metrics for metrics/)."""
    data, e = data_dir(name), agent.eval
    passages = read_jsonl(data / "text_test.jsonl")
    prompts = [r["prompt"] for r in read_jsonl(data / "style_prompts.jsonl")][: e.style_prompts]
    clf = fit_style(read_jsonl(data / "style_fit.jsonl"), e.tfidf_c, p.seed)
    reference = json.loads(Path(agent.reference).read_text(encoding="utf-8"))
    items = sample(build_items(p.eval.choices, p.eval.choices_generated, p.seed), p.eval.choices_examples,
                    p.seed, "eval-choices")  # the same items the reference was scored on
    tool_eval = {"tool_examples": e.tool_examples, "tool_max_new_tokens": e.tool_max_new_tokens,
                 "batch_size": e.batch_size}
    tool_params = p.model_copy(update={"eval": p.eval.model_copy(update=tool_eval)})
    tool_test = read_jsonl(data / "tool_test.jsonl")
    m: dict = {}
    details: dict = {"prompts": prompts}
    timed = StepTimer(name)
    for which, path in (("base", agent.base), ("agent", model_dir(name))):
        model, tok = load_model(path)
        answers = timed(f"{which}_answers", _answers, model, tok, prompts, agent)
        probs = style_scores(clf, answers)
        # two at a time: 650-token passages in bigger batches only add padding and logits memory
        ppl = timed(f"{which}_perplexity", perplexity, model, tok, passages, 2)
        m[which] = {"perplexity_heldout_passages": ppl["perplexity"],
                    "style_share": sum(x >= e.style_threshold for x in probs) / len(probs),
                    "style_mean_p": sum(probs) / len(probs)}
        details[which] = [{"answer": a, "p_style": round(x, 4)} for a, x in zip(answers, probs, strict=True)]
        if which == "agent":
            tools = timed("tools", score_tools, model, tok, tool_test, tool_params)
            details["tool_samples"] = tools.pop("samples")
            m["tools"] = tools
            choices = timed("choices", score_choices, model, tok, items, p.eval.batch_size)
            base_choices = reference["choices"]
            m["retention"] = {
                "score": choices["score"] / base_choices["score"], "agent_choices": choices["score"],
                "base_choices": base_choices["score"], "examples": choices["examples"],
                "ci95": ratio_interval(base_choices["correct"], choices["correct"])}
        del model
    m["start_model"] = agent.base  # "base" above: the model the agent was trained from
    m["perplexity_reduction"] = 1 - (m["agent"]["perplexity_heldout_passages"]
                                     / m["base"]["perplexity_heldout_passages"])
    training = json.loads((model_dir(name) / "training.json").read_text(encoding="utf-8"))
    m["training"] = {ph: {k: training[ph][k] for k in ("train_loss", "runtime_s", "steps", "train_examples",
                                                       "tokens_per_s", "too_long_removed")} for ph in training}
    details["seconds"] = timed.seconds
    m["data"] = json.loads((data / "stats.json").read_text(encoding="utf-8"))
    return details, m
