"""Bootstrap confidence intervals that respect the data's structure: turns of one dialogue are
not independent (same customer, same topic), so dialogues are resampled, never turns.

Per-dialogue sufficient statistics are computed once; a replicate is then a weighted sum over
dialogues (weights = how often each was drawn), so 1,000 replicates cost milliseconds.
"""

from __future__ import annotations

import numpy as np

CI_METRICS = ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "samples_f1", "subset_accuracy")


def _per_dialogue(truth: np.ndarray, pred: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, dict]:
    codes, inverse = np.unique(groups, return_inverse=True)
    n = len(codes)

    def sum_by(values: np.ndarray) -> np.ndarray:
        out = np.zeros((n,) + values.shape[1:])
        np.add.at(out, inverse, values)
        return out

    t, p = truth.astype(bool), pred.astype(bool)
    tp, fp, fn = (t & p), (~t & p), (t & ~p)
    denom = 2 * tp.sum(1) + fp.sum(1) + fn.sum(1)
    samples_f1 = np.where(denom == 0, 1.0, 2 * tp.sum(1) / np.maximum(denom, 1))
    stats = {"tp": sum_by(tp.astype(float)), "fp": sum_by(fp.astype(float)), "fn": sum_by(fn.astype(float)),
             "turns": sum_by(np.ones(len(t))), "exact": sum_by((t == p).all(1).astype(float)),
             "samples_f1": sum_by(samples_f1)}
    return codes, stats


def _metrics(weights: np.ndarray, s: dict, macro_tags: np.ndarray) -> dict[str, float]:
    tp, fp, fn = weights @ s["tp"], weights @ s["fp"], weights @ s["fn"]
    turns = weights @ s["turns"]
    keep = macro_tags[(tp + fn)[macro_tags] > 0]       # tags absent from a replicate have no recall
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    return {"micro_f1": 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1),
            "macro_f1": float(f1[keep].mean()) if len(keep) else 0.0,
            "micro_precision": tp.sum() / max(tp.sum() + fp.sum(), 1),
            "micro_recall": tp.sum() / max(tp.sum() + fn.sum(), 1),
            "samples_f1": (weights @ s["samples_f1"]) / max(turns, 1),
            "subset_accuracy": (weights @ s["exact"]) / max(turns, 1)}


def dialogue_bootstrap(truth: np.ndarray, pred: np.ndarray, groups: np.ndarray, macro_tags: np.ndarray,
                       n_resamples: int = 1000, seed: int = 0, level: float = 0.95) -> dict[str, list[float]]:
    """Percentile intervals {metric: [low, high]} for the headline metrics."""
    codes, stats = _per_dialogue(truth, pred, groups)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(codes), np.full(len(codes), 1 / len(codes)), size=n_resamples).astype(float)
    samples = [_metrics(w, stats, macro_tags) for w in draws]
    alpha = (1 - level) / 2
    return {m: [float(np.quantile([x[m] for x in samples], alpha)), float(np.quantile([x[m] for x in samples], 1 - alpha))]
            for m in CI_METRICS}


def point_estimates(truth: np.ndarray, pred: np.ndarray, groups: np.ndarray, macro_tags: np.ndarray) -> dict:
    """The same formulas on the original sample (weights all 1): must equal ``metrics.headline``."""
    codes, stats = _per_dialogue(truth, pred, groups)
    return _metrics(np.ones(len(codes)), stats, macro_tags)
