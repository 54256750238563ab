"""Evaluate a saved model directory on a dialogue file (headline numbers; reports build on this)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from profiler.metrics import headline
from profiler.predictor import Predictor
from profiler.training.data import load_turns


def label_matrix(labels: list[list[str]], index: dict[str, int]) -> np.ndarray:
    out = np.zeros((len(labels), len(index)), dtype=bool)
    for i, row in enumerate(labels):
        out[i, [index[t] for t in row]] = True
    return out


def evaluate_dir(model_dir: str | Path, data: str | Path, strict: bool = False) -> dict:
    predictor = Predictor.from_pretrained(model_dir)
    turns = load_turns(data, predictor.taxonomy, predictor.context.max_turns, strict)
    _, pred = predictor.predict(turns)
    return headline(label_matrix(turns["labels"], predictor.taxonomy.index), pred)
