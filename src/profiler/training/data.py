"""From dialogue files to encoded, length-annotated turn datasets for training and scoring."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import BatchSampler
from transformers.trainer_pt_utils import LengthGroupedSampler

from profiler.data.turns import load_dialogues, turn_view
from profiler.inputs import ContextConfig, TurnInputBuilder
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSpec:
    train: str
    dev: str
    test: str | None = None
    strict: bool = False
    untagged_keep: float = 1.0   # share of train turns with no tag kept (they teach "say nothing")


def load_turns(path: str | Path, taxonomy: Taxonomy, max_context_turns: int, strict: bool = False) -> Dataset:
    dialogues, report = load_dialogues(path, taxonomy, strict=strict)
    if report.problems:
        log.warning("%s: %d dialogue(s) rejected, %d kept (first: %s)", path, report.rejected, report.kept,
                    report.problems[0])
    turns = turn_view(dialogues, max_context_turns)
    return turns.filter(lambda row: row["has_labels"], desc="annotated turns")


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
