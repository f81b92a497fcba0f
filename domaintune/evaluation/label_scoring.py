"""Fast intent classification: the labels scored by the model's own likelihood, no free generation.

The trained answer opens with a fixed ``{"primary_intent": "``; what follows is a label. So
the prompt plus that opening goes through the model once, and the next-token distribution,
restricted to the tokens that can start a label, *is* the classifier. Labels that share their
first tokens are told apart by also scoring the shared tokens (the label trie's branch
points), in the same forward pass: those positions see the query and their own branch only
(a 4-D attention mask). Tokens no other label shares are taken as given. The result is a
probability distribution over the labels (it sums to 1), so its confidence can be
calibrated: ``temperature`` (fitted on held-out phrasings by the ``calibrate`` stage) divides the
label log-likelihoods before they are normalized. ``generate`` would spend ~20 decoding steps to
print the same JSON.

With an intent ``head`` (``domaintune/modeling/intent_head.py``) the label log-likelihoods come
from a linear head on the same pass's hidden states instead of the LM head (blended with TF-IDF's
when the head carries it); everything after (temperature, answer, batching) is unchanged.

The system prompt is the same for every query: its KV cache is computed once and each query
runs only its own tokens, then the cache is cut back to the shared prefix.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import torch
from transformers import DynamicCache

from domaintune.modeling.intent_head import POOLINGS, IntentHead

ANSWER_OPEN = '{"primary_intent": "'


def softmax(logits: list[float], temperature: float = 1.0) -> list[float]:
    m = max(logits)
    exp = [math.exp((t - m) / temperature) for t in logits]
    z = sum(exp)
    return [e / z for e in exp]


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LabelScorer:
    def __init__(self, model, tok, labels: list[str], system_prompt: str | None, multi_threshold: float = 0.25,
                 temperature: float = 1.0, head: IntentHead | None = None):
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if head is not None and list(head.labels) != list(labels):
            raise ValueError(f"the intent head was fitted for labels {head.labels}, not {list(labels)}")
        self.head = head
        self.model, self.tok, self.labels = model, tok, list(labels)
        self.system_prompt = system_prompt
        self.temperature = float(temperature)
        self.multi_threshold = multi_threshold
        self.device = next(model.parameters()).device
        # Where each label's tokens start: tokenize the whole answer, so boundary merges are honoured.
        probe = self._prompt_ids("x")
        self.label_ids = []
        for label in self.labels:
            ids = self.tok(self._prompt_text("x") + label + '"', add_special_tokens=False)["input_ids"]
            if ids[: len(probe)] != probe:
                raise ValueError(f"label {label!r}: the tokenizer merges it with the answer's opening; "
                                 "label scoring needs them to tokenize apart")
            self.label_ids.append(ids[len(probe):])
        self._build_trie()
        # The prompt tokens every query shares (system turn, user-turn header): cached once.
        shared = common_prefix(self._prompt_ids("first query"), self._prompt_ids("another one"))
        self.shared_ids = probe[:shared]
        self.cache = DynamicCache()
        with torch.inference_mode():
            self.model(input_ids=torch.tensor([self.shared_ids], device=self.device), past_key_values=self.cache,
                       use_cache=True)

    def _prompt_text(self, text: str) -> str:
        messages = ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else [])
        messages.append({"role": "user", "content": text})
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + ANSWER_OPEN

    def _prompt_ids(self, text: str) -> list[int]:
        return self.tok(self._prompt_text(text), add_special_tokens=False)["input_ids"]

    def _build_trie(self) -> None:
        """Branch points: token prefixes shared by labels that then continue differently."""
        prefixes: dict[tuple, set[int]] = {}
        for ids in self.label_ids:
            for i in range(len(ids)):
                prefixes.setdefault(tuple(ids[:i]), set()).add(ids[i])
        self.branches = [p for p, nxt in prefixes.items() if len(nxt) > 1 and p]  # () is the query's last position
        if () not in prefixes or len(prefixes[()]) < 1:
            raise ValueError("no label tokens")
        # Positions fed after the query: every token of every branch prefix (shared by its labels).
        nodes: list[tuple] = []
        for p in self.branches:
            for i in range(1, len(p) + 1):
                if p[:i] not in nodes:
                    nodes.append(p[:i])
        self.nodes = nodes

    def _query(self, text: str) -> list[int]:
        ids = self._prompt_ids(text)
        if ids[: len(self.shared_ids)] != self.shared_ids:
            raise ValueError("the prompt no longer starts with the cached system prefix")
        return ids[len(self.shared_ids):]

    def _layout(self, q: int, pad: int) -> tuple[torch.Tensor, list[int]]:
        """Attention mask (fed rows x cache + fed) and positions for one query of ``q`` tokens fed
        after ``pad`` padding tokens, then every trie node. Causal within the query; a trie node
        sees the query, then its own ancestors and itself; padding sees only the shared prefix."""
        n_shared, width = len(self.shared_ids), pad + q + len(self.nodes)
        mask = torch.zeros(width, n_shared + width, dtype=torch.bool)
        mask[:, :n_shared] = True
        start = n_shared + pad
        mask[pad:pad + q, start:start + q] = torch.tril(torch.ones(q, q, dtype=torch.bool))
        positions = [n_shared] * pad + list(range(n_shared, n_shared + q))
        for j, node in enumerate(self.nodes):
            row = pad + q + j
            mask[row, start:start + q] = True
            for k in range(1, len(node) + 1):
                mask[row, start + q + self.nodes.index(node[:k])] = True
            positions.append(n_shared + q - 1 + len(node))
        return mask, positions

    def _label_logits(self, logits: torch.Tensor) -> list[float]:
        """Each label's log-likelihood, from the logits kept at the query's last token and the branch nodes."""
        logp = torch.log_softmax(logits.float(), dim=-1)
        where = {(): 0, **{node: i + 1 for i, node in enumerate(n for n in self.nodes if n in self.branches)}}
        totals = []
        for ids in self.label_ids:
            s = 0.0
            for i in range(len(ids)):
                prefix = tuple(ids[:i])
                if prefix == () or prefix in self.branches:
                    s += float(logp[where[prefix], ids[i]])
            totals.append(s)
        return totals

    def _keep(self, last: int) -> list[int]:
        # Logits only where a label token is scored: the LM head is a large share of a small model.
        return [last] + [last + 1 + j for j, node in enumerate(self.nodes) if node in self.branches]

    @torch.inference_mode()
    def label_logits(self, text: str) -> list[float]:
        """Each label's log-likelihood for ``text`` (the user message), before the temperature."""
        if self.head is not None:
            return self.batch_label_logits([text])[0]
        query = self._query(text)
        feed = query + [node[-1] for node in self.nodes]
        mask, positions = self._layout(len(query), 0)
        try:
            out = self.model(input_ids=torch.tensor([feed], device=self.device),
                             attention_mask=mask[None, None].to(self.device),
                             position_ids=torch.tensor([positions], device=self.device),
                             past_key_values=self.cache, use_cache=True,
                             logits_to_keep=torch.tensor(self._keep(len(query) - 1), device=self.device))
        finally:
            self.cache.crop(-len(feed))  # back to the shared prefix (transformers 5: a negative count)
        return self._label_logits(out.logits[0])

    def scores(self, text: str) -> list[float]:
        """Probability of each label for ``text`` (the user message)."""
        return softmax(self.label_logits(text), self.temperature)

    @torch.inference_mode()
    def scores_batch(self, texts: list[str]) -> list[list[float]]:
        """:meth:`scores` for several texts in one forward pass (what a serving micro-batch runs).

        Queries are left-padded to the longest, so each one's last token and its trie nodes sit at
        the same columns in every row (``logits_to_keep`` takes one index list for the batch).
        The shared prefix's cache is copied, not cropped: the instance keeps no state a
        concurrent :meth:`scores` could see half-changed.
        """
        return [softmax(row, self.temperature) for row in self.batch_label_logits(texts)]

    @torch.inference_mode()
    def batch_label_logits(self, texts: list[str]) -> list[list[float]]:
        """:meth:`label_logits` of several texts in one forward pass (the head's, if there is one)."""
        if not texts:
            return []
        if self.head is not None:
            return self.head.log_proba(self.features(texts, self.head.layers, self.head.pooling), texts).tolist()
        return [self._label_logits(row) for row in self._forward_batch([self._query(t) for t in texts]).logits]

    @torch.inference_mode()
    def features(self, texts: list[str], layers: list[int], pooling: str = "mean") -> np.ndarray:
        """What an intent head reads: each text's hidden states at ``layers`` (0: the embeddings),
        pooled over the query's own tokens (not the shared system prefix, not padding), concatenated.
        ``pooling``: ``mean`` over those tokens; ``last``, the last token's (the position the label is
        read from, which has attended to the whole query); ``mean+last``, both (mean first)."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if pooling not in POOLINGS:
            raise ValueError(f"intent head pooling {pooling!r}: expected one of {list(POOLINGS)}")
        n_layers = self.model.config.num_hidden_layers
        bad = [i for i in layers if not 0 <= i <= n_layers]
        if bad or not layers:
            raise ValueError(f"intent head layers {layers}: each must lie in 0..{n_layers}")
        queries = [self._query(t) for t in texts]
        out = self._forward_batch(queries, hidden=True)
        lengths = [len(q) for q in queries]
        longest = max(lengths)
        mask = torch.zeros(len(texts), longest, 1)
        for i, q in enumerate(lengths):
            mask[i, longest - q:] = 1.0  # left padding: each query's tokens end at the same column
        parts = []
        if "mean" in pooling:
            parts += [(out.hidden_states[i][:, :longest].float().cpu() * mask).sum(1) / mask.sum(1) for i in layers]
        if "last" in pooling:
            parts += [out.hidden_states[i][:, longest - 1].float().cpu() for i in layers]
        return torch.cat(parts, dim=-1).numpy()

    def _forward_batch(self, queries: list[list[int]], hidden: bool = False):
        """The model's output for each query's tokens (rows), as :meth:`scores_batch` describes; with
        ``hidden``, every layer's hidden states too."""
        longest = max(len(q) for q in queries)
        pad_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else 0
        feeds, masks, positions = [], [], []
        for q in queries:
            pad = longest - len(q)
            mask, pos = self._layout(len(q), pad)
            feeds.append([pad_id] * pad + q + [node[-1] for node in self.nodes])
            masks.append(mask)
            positions.append(pos)
        cache = copy.deepcopy(self.cache)
        if len(queries) > 1:
            cache.batch_repeat_interleave(len(queries))
        out = self.model(input_ids=torch.tensor(feeds, device=self.device),
                         attention_mask=torch.stack(masks)[:, None].to(self.device),
                         position_ids=torch.tensor(positions, device=self.device),
                         past_key_values=cache, use_cache=True, output_hidden_states=hidden,
                         logits_to_keep=torch.tensor(self._keep(longest - 1), device=self.device))
        return out

    def answer(self, probs: list[float]) -> dict:
        """The trained JSON answer, with the label's probability as its confidence."""
        ranked = sorted(range(len(self.labels)), key=lambda i: -probs[i])
        best = ranked[0]
        extra = [self.labels[i] for i in ranked[1:] if probs[i] >= self.multi_threshold]
        return {"primary_intent": self.labels[best], "confidence": round(probs[best], 4),
                "all_intents": [self.labels[best], *extra]}

    def classify_batch(self, texts: list[str]) -> list[dict]:
        return [self.answer(p) for p in self.scores_batch(texts)]

    def classify(self, text: str) -> dict:
        """The trained JSON answer, with the label's probability as its confidence."""
        return self.answer(self.scores(text))

    def classify_json(self, text: str) -> str:
        return json.dumps(self.classify(text))
