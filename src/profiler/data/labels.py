"""Labelled customer turns for scoring: the annotated-turn view of a dialogue file and its
[turns, tags] truth and annotation masks. Training, evaluation and export all read data this way,
so it lives here rather than in training code (evaluation and export must not import training)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from datasets import Dataset

from profiler.data.turns import load_dialogues, turn_view
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)


def load_turns(path: str | Path, taxonomy: Taxonomy, max_context_turns: int, strict: bool = False) -> Dataset:
    dialogues, report = load_dialogues(path, taxonomy, strict=strict)
    if report.problems:
        log.warning("%s: %d dialogue(s) rejected, %d kept (first: %s)", path, report.rejected, report.kept,
                    report.problems[0])
    turns = turn_view(dialogues, max_context_turns)
    return turns.filter(lambda row: row["has_labels"], desc="annotated turns")


def label_matrix(labels: list[list[str]], index: dict[str, int]) -> np.ndarray:
    out = np.zeros((len(labels), len(index)), dtype=bool)
    for i, row in enumerate(labels):
        out[i, [index[t] for t in row]] = True
    return out


def annotation_mask(annotated: list[list[str] | None], taxonomy: Taxonomy) -> np.ndarray:
    """[turns, tags], True where the turn was annotated for the tag (None: for every tag)."""
    out = np.ones((len(annotated), len(taxonomy)), dtype=bool)
    cache: dict[tuple[str, ...], np.ndarray] = {}
    for i, ids in enumerate(annotated):
        if ids is not None:
            key = tuple(ids)
            if key not in cache:
                cache[key] = np.isin(np.asarray(taxonomy.ids), list(taxonomy.expand(key)))
            out[i] = cache[key]
    return out
