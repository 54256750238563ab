"""Multi-label metrics, every one on the same [turns, tags] boolean/probability matrices.

scikit-learn computes each number; this module decides *which* tags enter an average. A tag whose
evaluation support is below ``min_support`` positive turns is reported (per-tag table, flagged) but
left out of macro averages: its F1 swings between 0 and 1 on one turn and would drown real signal.
Micro averages, subset accuracy and Hamming loss use every tag (they are count-weighted anyway).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, precision_recall_fscore_support, roc_auc_score

from profiler.taxonomy import Taxonomy


def scored_tags(truth: np.ndarray, min_support: int = 1) -> np.ndarray:
    return np.flatnonzero(truth.sum(axis=0) >= max(min_support, 1))


def apply_mask(truth: np.ndarray, pred: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Blank the (turn, tag) pairs that were never annotated in both truth and prediction. They
    become true negatives, which no F1, precision or recall counts: so every F1-family number
    below scores annotated pairs only."""
    if mask is None:
        return truth, pred
    mask = mask.astype(bool)
    return truth.astype(bool) & mask, pred.astype(bool) & mask


def headline(truth: np.ndarray, pred: np.ndarray, min_support: int = 1,
             mask: np.ndarray | None = None) -> dict[str, float]:
    """Thresholded headline numbers; macro over tags with support ≥ min_support, micro over all.
    ``mask`` ([turns, tags], True = annotated) restricts every number to annotated pairs."""
    annotated = int(mask.sum()) if mask is not None else truth.size
    truth, pred = apply_mask(truth, pred, mask)
    truth, pred = truth.astype(int), pred.astype(int)
    macro_tags = scored_tags(truth, min_support)
    micro = precision_recall_fscore_support(truth, pred, average="micro", zero_division=0)
    macro = precision_recall_fscore_support(truth, pred, average="macro", labels=macro_tags, zero_division=0)
    untagged = truth.sum(axis=1) == 0
    return {
        "micro_f1": float(micro[2]), "micro_precision": float(micro[0]), "micro_recall": float(micro[1]),
        "macro_f1": float(macro[2]), "macro_precision": float(macro[0]), "macro_recall": float(macro[1]),
        "samples_f1": float(f1_score(truth, pred, average="samples", zero_division=1.0)),
        "subset_accuracy": float((truth == pred).all(axis=1).mean()) if len(truth) else 0.0,
        "hamming_loss": float((truth != pred).sum() / annotated) if annotated else 0.0,
        # of the turns that carry no tag, the share given one anyway (what a profile reader sees as noise)
        "untagged_fpr": float(pred[untagged].any(axis=1).mean()) if untagged.any() else 0.0,
        "tags_evaluated": int(len(macro_tags)),
        "turns": int(len(truth)),
    }


def per_tag_f1(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return f1_score(truth.astype(int), pred.astype(int), average=None, zero_division=0)


def threshold_free(truth: np.ndarray, probs: np.ndarray,
                   mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-tag average precision (NaN without positives) and ROC-AUC (NaN unless both classes
    occur), each over the turns annotated for that tag."""
    n_tags = truth.shape[1]
    ap, auc = np.full(n_tags, np.nan), np.full(n_tags, np.nan)
    for j in range(n_tags):
        rows = slice(None) if mask is None else mask[:, j].astype(bool)
        t, p = truth[rows, j], probs[rows, j]
        positives = t.sum()
        if positives:
            ap[j] = average_precision_score(t, p)
        if 0 < positives < len(t):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                auc[j] = roc_auc_score(t, p)
    return ap, auc


def per_tag_table(truth: np.ndarray, pred: np.ndarray, probs: np.ndarray, taxonomy: Taxonomy,
                  thresholds: list[float], min_support: int, mask: np.ndarray | None = None) -> list[dict]:
    annotated = mask.sum(axis=0) if mask is not None else np.full(len(taxonomy), len(truth))
    truth, pred = apply_mask(truth, pred, mask)
    p, r, f, support = precision_recall_fscore_support(truth.astype(int), pred.astype(int), average=None,
                                                       labels=range(len(taxonomy)), zero_division=0)
    ap, auc = threshold_free(truth, probs, mask)
    rows = []
    for j, tag in enumerate(taxonomy.tags):
        rows.append({"tag": tag.id, "category": tag.category, "dimension": tag.dimension_id,
                     "precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(support[j]),
                     "predicted": int(pred[:, j].sum()), "annotated_turns": int(annotated[j]),
                     "threshold": float(thresholds[j]),
                     "average_precision": _num(ap[j]), "roc_auc": _num(auc[j]),
                     "low_support": bool(support[j] < min_support)})
    return rows


def group_table(truth: np.ndarray, pred: np.ndarray, taxonomy: Taxonomy, key: str, min_support: int) -> dict:
    """Micro and macro F1 over the tags of each category (key="category") or dimension (key="dimension")."""
    groups: dict[str, list[int]] = {}
    for j, tag in enumerate(taxonomy.tags):
        groups.setdefault(tag.category if key == "category" else tag.dimension_id, []).append(j)
    out = {}
    for name, cols in groups.items():
        t, p = truth[:, cols], pred[:, cols]
        scored = [c for c in range(len(cols)) if t[:, c].sum() >= max(min_support, 1)]
        out[name] = {"micro_f1": float(f1_score(t.astype(int), p.astype(int), average="micro", zero_division=0)),
                     "macro_f1": float(f1_score(t.astype(int), p.astype(int), average="macro", labels=scored,
                                                zero_division=0)) if scored else None,
                     "support": int(t.sum()), "tags": len(cols), "tags_scored": len(scored)}
    return out


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
