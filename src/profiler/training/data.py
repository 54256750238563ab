"""From dialogue files to encoded, length-annotated turn datasets for training and scoring."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, concatenate_datasets
from torch.utils.data import BatchSampler
from transformers.trainer_pt_utils import LengthGroupedSampler

from profiler.data.labels import load_turns  # noqa: F401  (re-exported: scripts import it from here)
from profiler.data.turns import TURN_FEATURES
from profiler.inputs import ContextConfig, TurnInputBuilder
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpec:
    train: str | list[str]      # a file, folder, glob, or a list of them
    dev: str | list[str]
    test: str | None = None
    strict: bool = False
    untagged_keep: float = 1.0   # share of train turns with no tag kept (they teach "say nothing")
    definition_copies: int = 8   # train also on each tag's taxonomy definition, this many times over

    def record(self) -> dict:
        """What a model directory notes about the data it was fitted on."""
        return {"train": self.train, "dev": self.dev, "untagged_keep": self.untagged_keep,
                "definition_copies": self.definition_copies}


def keep_untagged(turns: Dataset, share: float, seed: int) -> Dataset:
    """Deterministic subsample of untagged turns (hash of id + seed), all tagged turns kept."""
    if share >= 1.0:
        return turns

    def keep(row: dict) -> bool:
        if row["labels"]:
            return True
        key = f"{seed}:{row['dialogue_id']}:{row['turn_index']}".encode()
        return int(hashlib.sha1(key).hexdigest()[:8], 16) / 0xFFFFFFFF < share

    return turns.filter(keep, desc="untagged subsample")


def train_turns(data: DataSpec, taxonomy: Taxonomy, max_context_turns: int, seed: int) -> Dataset:
    """The turns a model fits: the train file (untagged turns subsampled) plus, when asked, the
    taxonomy's own definitions of its tags."""
    turns = keep_untagged(load_turns(data.train, taxonomy, max_context_turns, data.strict), data.untagged_keep, seed)
    if data.definition_copies <= 0:
        return turns
    return concatenate_datasets([turns, definition_turns(taxonomy, data.definition_copies)])


def definition_turns(taxonomy: Taxonomy, copies: int) -> Dataset:
    """Each tag's definition, whole and cut at its "/" and "、" alternatives, as context-free turns
    carrying that tag alone. Definitions name the key words of a tag ("能不能随时取/流动性"); a
    corpus written with a few wordings per tag may never use some of them, and a newly added tag
    has nothing else to learn from."""
    rows = []
    for tag in taxonomy.tags:
        for i, text in enumerate(definition_phrases(tag.definition) * copies):
            rows.append({"dialogue_id": f"taxonomy:{tag.id}", "customer_id": None, "started_at": None,
                         "turn_index": i, "text": text, "labels": [tag.id], "has_labels": True, "annotated": None,
                         "context_speakers": [], "context_texts": []})
    return Dataset.from_list(rows, features=TURN_FEATURES)


def definition_phrases(definition: str) -> list[str]:
    """The whole definition, then each "、" clause, then each "/" alternative of a clause when all
    its alternatives are phrases of their own: in "对活动/礼品/优惠/立减感兴趣" they share words, so
    the clause stays whole. Bracketed examples stay in the whole text only ("工资" alone does not
    mean money is coming in); phrases under 3 characters ("方便", "不卡") say too little alone."""
    phrases = [definition.strip()]
    for clause in re.split(r"[、，]", re.sub(r"[(（][^)）]*[)）]", "", definition)):
        alternatives = clause.split("/")
        phrases += alternatives if all(_length(a) >= 3 for a in alternatives) else [clause]
    return list(dict.fromkeys(p.strip() for p in phrases if _length(p.strip()) >= 3))


def _length(text: str) -> int:
    """Characters, an ASCII word counting as one ("App/网银好用": "App" is one word, not three)."""
    return len(re.sub(r"[A-Za-z0-9]+", "A", text))


def encode(turns: Dataset, tokenizer, context: ContextConfig, taxonomy: Taxonomy | None) -> Dataset:
    builder = TurnInputBuilder(tokenizer, context, taxonomy)
    enc = turns.map(builder, batched=True, batch_size=1000, remove_columns=turns.column_names, desc="tokenize")
    return enc.map(lambda b: {"length": [len(x) for x in b["input_ids"]]}, batched=True, desc="lengths")


def label_counts(encoded: Dataset) -> torch.Tensor:
    """Positive (annotated) turns per tag."""
    labels = np.asarray(encoded["labels"], dtype=np.float32)
    if "label_mask" in encoded.column_names:
        labels = labels * np.asarray(encoded["label_mask"], dtype=np.float32)
    return torch.tensor(labels.sum(axis=0))


def annotated_counts(encoded: Dataset) -> torch.Tensor:
    """Turns annotated for each tag: the denominator of a tag's train frequency."""
    if "label_mask" not in encoded.column_names:
        return torch.full((len(encoded["labels"][0]),), float(len(encoded)))
    return torch.tensor(np.asarray(encoded["label_mask"], dtype=np.float32).sum(axis=0))


class EpochBatchSampler(BatchSampler):
    """Length-grouped batches (transformers' LengthGroupedSampler: similar lengths together, so
    dynamic padding pads little) whose order depends only on (seed, epoch): a resumed run sees
    exactly the batches the interrupted one would have."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0
        self.drop_last = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1009 + self.epoch)
        order = list(LengthGroupedSampler(self.batch_size, lengths=self.lengths, generator=generator))
        for i in range(0, len(order), self.batch_size):
            yield order[i:i + self.batch_size]

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size
