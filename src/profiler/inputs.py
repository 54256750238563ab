"""Model inputs for a customer turn: the preceding turns as context, then the turn itself.

Layout (a tokenizer "pair"):  [CLS] 经理：… 客户：… 经理：… [SEP] 客户：<target turn> [SEP]

Why plain-text speaker markers rather than new special tokens or a learned speaker embedding:
they exist in every Chinese vocabulary, carry pre-trained meaning from the first step, and need
no change to the checkpoint (no resized embeddings, no extra input in the exported graph), so
any local checkpoint works unchanged. The target is the second segment, so it is told apart by
position, by the separator, by ``token_type_ids`` where the encoder has them, and by
``target_mask`` (used by ``pooling=target_mean``).

Context is added whole turns at a time, newest first, until the token budget is spent, so the
oldest context is dropped first and the target turn is never cut unless it alone is too long.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from dataclasses import dataclass

import torch

from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContextConfig:
    max_turns: int = 3            # preceding turns to consider; 0 = the turn alone
    max_length: int = 128         # tokens, special tokens included
    agent_marker: str = "经理："
    customer_marker: str = "客户："

    def marker(self, speaker: str) -> str:
        return self.agent_marker if speaker == "agent" else self.customer_marker


def context_strings(context: ContextConfig, speakers: list[list[str]], texts: list[list[str]]) -> list[str]:
    """Plain-text context (the last ``max_turns`` turns with speaker markers) for models that read
    strings, not token ids (the TF-IDF baseline, the pipeline benchmark)."""
    k = context.max_turns
    return [" ".join(context.marker(s) + t for s, t in list(zip(sp, tx))[-k:]) if k else ""
            for sp, tx in zip(speakers, texts)]


class UnkRescue:
    """Rewrites characters the tokenizer cannot represent into an equivalent it can.

    bert-base-chinese has no "…", many checkpoints lack full-width forms or rare variants: each
    such character becomes [UNK] and its meaning is lost. A character is replaced by its NFKC form
    ("…" -> "...", "～" -> "~") only when the original maps to [UNK] and the replacement does not,
    so text the tokenizer already handles is never touched. Decisions are cached per character.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.memo: dict[str, str] = {}
        self.unknown: Counter[str] = Counter()  # characters no rewrite could save

    def _is_unk(self, text: str) -> bool:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer.unk_token_id in ids

    def _rescue(self, ch: str) -> str:
        if ch.isspace() or ch.isascii() or not self._is_unk(ch):
            return ch
        alt = unicodedata.normalize("NFKC", ch)
        if alt != ch and alt.strip() and not self._is_unk(alt):
            return alt
        return ch

    def __call__(self, text: str) -> str:
        out = []
        for ch in text:
            if ch not in self.memo:
                self.memo[ch] = self._rescue(ch)
                if self.memo[ch] == ch and not ch.isascii() and not ch.isspace() and self._is_unk(ch):
                    self.unknown[ch] += 1
            out.append(self.memo[ch])
        return "".join(out)


class TurnInputBuilder:
    """Batched ``datasets.map`` function: turn-view columns -> token ids, target mask, labels."""

    def __init__(self, tokenizer, context: ContextConfig, taxonomy: Taxonomy | None = None):
        self.tokenizer, self.context, self.taxonomy = tokenizer, context, taxonomy
        self.n_pair_special = tokenizer.num_special_tokens_to_add(pair=True)
        self.n_single_special = tokenizer.num_special_tokens_to_add(pair=False)
        self.truncated_targets = 0
        self.rescue = UnkRescue(tokenizer)
        self._masks: dict[tuple[str, ...] | None, list[float]] = {}

    def _lengths(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def select_context(self, speakers: list[str], texts: list[str], target_len: int) -> str:
        """Newest turns first, whole turns only, within the budget left by the target."""
        ctx = self.context
        recent = list(zip(speakers, texts))[-ctx.max_turns:] if ctx.max_turns else []
        turns = [ctx.marker(s) + self.rescue(t) for s, t in recent]
        budget = ctx.max_length - self.n_pair_special - target_len
        chosen: list[str] = []
        for turn, n in zip(reversed(turns), reversed(self._lengths(turns))):
            if n + 1 > budget:  # +1: the space joining turns may become a token of its own
                break
            chosen.insert(0, turn)
            budget -= n + 1
        return " ".join(chosen)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        targets = [self.context.customer_marker + self.rescue(t) for t in batch["text"]]
        target_lens = self._lengths(targets)
        contexts = [self.select_context(s, t, n) for s, t, n in
                    zip(batch["context_speakers"], batch["context_texts"], target_lens)]
        too_long = sum(n + self.n_single_special > self.context.max_length for n in target_lens)
        if too_long:
            self.truncated_targets += too_long
            log.warning("%d turn(s) longer than max_length=%d on their own were truncated (%d so far)",
                        too_long, self.context.max_length, self.truncated_targets)
        out = self.encode(contexts, targets)
        # the turn itself was cut (its end is lost, and so is all its context): flagged per output row
        out["truncated"] = [n + self.n_single_special > self.context.max_length for n in target_lens]
        if self.taxonomy is not None and "labels" in batch:
            index = self.taxonomy.index
            out["labels"] = [[0.0] * len(index) for _ in targets]
            for row, labels in zip(out["labels"], batch["labels"]):
                for tag_id in labels:
                    row[index[tag_id]] = 1.0
            out["label_mask"] = [self.label_mask(a) for a in batch.get("annotated", [None] * len(targets))]
        return out

    def label_mask(self, annotated: list[str] | None) -> list[float]:
        """1.0 for the (turn, tag) pairs whose truth is known; never-annotated pairs are 0.0, so
        the loss and the metrics leave them out instead of reading them as "absent"."""
        key = None if annotated is None else tuple(annotated)
        if key not in self._masks:
            tags = self.taxonomy.ids
            covered = set(tags) if key is None else self.taxonomy.expand(key)
            self._masks[key] = [1.0 if t in covered else 0.0 for t in tags]
        return self._masks[key]

    def encode(self, contexts: list[str], targets: list[str]) -> dict[str, list]:
        tok, max_length = self.tokenizer, self.context.max_length
        pairs = [i for i, c in enumerate(contexts) if c]
        singles = [i for i, c in enumerate(contexts) if not c]
        rows: dict[int, dict] = {}
        for idx, target_seq in ((pairs, 1), (singles, 0)):
            if not idx:
                continue
            args = ([contexts[i] for i in idx], [targets[i] for i in idx]) if target_seq else ([targets[i] for i in idx],)
            side = tok.truncation_side
            tok.truncation_side = "left" if target_seq else "right"  # pairs: cut the oldest context
            try:
                enc = tok(*args, truncation="only_first" if target_seq else True, max_length=max_length)
            finally:
                tok.truncation_side = side
            for j, i in enumerate(idx):
                row = {k: enc[k][j] for k in enc.keys()}
                row["target_mask"] = [int(s == target_seq) for s in enc.sequence_ids(j)]
                rows[i] = row
        keys = rows[0].keys()
        return {k: [rows[i][k] for i in range(len(targets))] for k in keys}


class TurnCollator:
    """Dynamic padding to the longest sequence of the batch (never to a fixed length)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        keep = ("input_ids", "attention_mask", "token_type_ids")
        batch = self.tokenizer.pad([{k: f[k] for k in keep if k in f} for f in features], padding="longest",
                                   return_tensors="pt")
        width = batch["input_ids"].shape[1]
        left = self.tokenizer.padding_side == "left"
        masks = [f["target_mask"] for f in features]
        batch["target_mask"] = torch.tensor([([0] * (width - len(m)) + m) if left else (m + [0] * (width - len(m)))
                                             for m in masks])
        for key in ("labels", "label_mask"):
            if key in features[0]:
                batch[key] = torch.tensor([f[key] for f in features], dtype=torch.float32)
        return batch
