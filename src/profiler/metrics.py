"""Headline multi-label metrics (the full evaluation report builds on these)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, precision_score, recall_score


def headline(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Micro/macro F1, P, R over the tags that occur in ``truth`` (a tag absent from the evaluation
    set has no defined recall; it is reported elsewhere, not averaged in as zero)."""
    truth, pred = truth.astype(int), pred.astype(int)
    present = np.flatnonzero(truth.sum(axis=0) > 0)
    kw = dict(labels=present, zero_division=0)
    return {
        "micro_f1": float(f1_score(truth, pred, average="micro", **kw)),
        "macro_f1": float(f1_score(truth, pred, average="macro", **kw)),
        "micro_precision": float(precision_score(truth, pred, average="micro", **kw)),
        "micro_recall": float(recall_score(truth, pred, average="micro", **kw)),
        "macro_recall": float(recall_score(truth, pred, average="macro", **kw)),
        "tags_evaluated": int(len(present)),
        "turns": int(len(truth)),
    }


def per_tag_f1(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return f1_score(truth.astype(int), pred.astype(int), average=None, zero_division=0)
