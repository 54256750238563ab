"""Scores a user can read as probabilities: per-tag Platt scaling fitted on dev, and honest
measures of how far a score is from the rate at which it comes true.

Why Platt per tag, shrunk to one shared fit: a multi-label head trained with class weights and
synthetic data is over-confident on some tags and timid on others, so one temperature for all is
not enough; but most tags have a handful of dev positives, so each tag's (slope, intercept) is
pulled towards the shared one by ``prior`` pseudo-observations. The map is increasing in the raw
score, so per-tag rankings (AP, AUC) are untouched; decisions are still taken on the raw scores
by the tuned thresholds, so the tag sets do not change either.

Why not plain ECE: 98% of (turn, tag) pairs score under 0.1 and are rightly negative, so a global
equal-width ECE is tiny even when a score of 0.8 comes true half the time. The report also gives
ECE over equal-mass bins, the mean of per-tag ECEs, and the reliability of predicted positives.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


def _fit(x: np.ndarray, y: np.ndarray, prior: tuple[float, float] | None, strength: float) -> tuple[float, float]:
    """(slope, intercept) minimising the log loss of sigmoid(slope * x + intercept), plus a pull
    of ``strength`` towards ``prior``. The slope stays positive, so the map keeps the order."""
    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * x + theta[1]
        nll = np.sum(np.logaddexp(0, z) - y * z)
        err = 1 / (1 + np.exp(-z)) - y
        grad = np.array([np.sum(err * x), np.sum(err)])
        if prior is not None:
            d = theta - np.asarray(prior)
            nll += strength * float(d @ d)
            grad += 2 * strength * d
        return float(nll), grad

    start = np.asarray(prior if prior is not None else (1.0, 0.0), dtype=float)
    res = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0.05, 20.0), (-20.0, 20.0)])
    return float(res.x[0]), float(res.x[1])


def fit_platt(probs: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None,
              prior_strength: float = 20.0) -> dict:
    """Per-tag (slope, intercept) on the logit of the raw scores, fitted on annotated dev pairs."""
    keep = np.ones(probs.shape, bool) if mask is None else mask.astype(bool)
    x, y = _logit(probs), truth.astype(float)
    shared = _fit(x[keep], y[keep], None, 0.0)
    slopes, intercepts = [], []
    for j in range(probs.shape[1]):
        sel = keep[:, j]
        a, b = _fit(x[sel, j], y[sel, j], shared, prior_strength) if sel.any() else shared
        slopes.append(round(a, 6))
        intercepts.append(round(b, 6))
    return {"method": "platt", "slope": slopes, "intercept": intercepts, "shared": list(shared),
            "prior_strength": prior_strength, "dev_positives": [int(v) for v in (truth & keep).sum(axis=0)]}


def apply_platt(probs: np.ndarray, params: dict | None) -> np.ndarray:
    if not params:
        return probs
    z = np.asarray(params["slope"])[None, :] * _logit(probs) + np.asarray(params["intercept"])[None, :]
    return (1 / (1 + np.exp(-z))).astype(probs.dtype)


# --- measuring -------------------------------------------------------------------------------
def _bins(p: np.ndarray, y: np.ndarray, edges: np.ndarray) -> tuple[list[dict], float]:
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    table, ece = [], 0.0
    for b in range(len(edges) - 1):
        sel = which == b
        n = int(sel.sum())
        conf = float(p[sel].mean()) if n else None
        freq = float(y[sel].mean()) if n else None
        if n:
            ece += n / max(len(p), 1) * abs(conf - freq)
        table.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": n, "mean_probability": conf,
                      "positive_rate": freq})
    return table, float(ece)


def calibration(truth: np.ndarray, probs: np.ndarray, bins: int = 10, mask: np.ndarray | None = None,
                pred: np.ndarray | None = None) -> dict:
    """ECE (equal-width bins, over every annotated pair: the classic, flattering number), ECE over
    equal-mass bins, the mean per-tag ECE over tags with a positive, and the reliability of the
    pairs the model tagged (``positives``: scores of predicted tags against how often they are right)."""
    keep = np.ones(probs.shape, bool) if mask is None else mask.astype(bool)
    p, y = probs[keep].astype(float), truth[keep].astype(float)
    width = np.linspace(0, 1, bins + 1)
    table, ece = _bins(p, y, width)
    mass = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1))) if len(p) else width
    mass[0], mass[-1] = 0.0, 1.0
    _, adaptive = _bins(p, y, mass)
    per_tag = [_bins(probs[keep[:, j], j].astype(float), truth[keep[:, j], j].astype(float), width)[1]
               for j in range(probs.shape[1]) if (truth[:, j] & keep[:, j]).any()]
    out = {"ece": ece, "adaptive_ece": adaptive, "per_tag_ece": float(np.mean(per_tag)) if per_tag else None,
           "bins": table}
    if pred is not None:
        chosen = pred.astype(bool) & keep
        pos_table, pos_ece = _bins(probs[chosen].astype(float), truth[chosen].astype(float), width)
        out["positives"] = {"count": int(chosen.sum()), "precision": float(truth[chosen].mean()) if chosen.any()
                            else None, "mean_score": float(probs[chosen].mean()) if chosen.any() else None,
                            "ece": pos_ece, "bins": pos_table}
    return out
