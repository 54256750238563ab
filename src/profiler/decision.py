"""The decision layer: probabilities -> tag sets. One implementation, used by evaluation,
prediction and export alike, and saved inside every model directory (``decision.json``).

The rule:
1. Per-tag thresholds are tuned on dev: for each tag, the threshold on a fixed grid that maximises
   that tag's F1 (ties: the one closest to 0.5). A tag with fewer than ``min_support`` positive dev
   turns is too noisy to tune and uses the global threshold instead.
2. The global threshold is the grid value that maximises micro-F1 over all tags on dev.
3. Exclusive dimensions (e.g. 保本/稳健/中风险/高风险): among the values above their thresholds,
   only the one with the highest probability is kept.
4. The scores shown to users are calibrated on the same dev pairs (per-tag Platt scaling, see
   ``profiler.calibration``); the rule itself reads the raw scores.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from profiler.calibration import apply_platt, fit_platt
from profiler.taxonomy import Taxonomy

# fine steps at the low end: rare tags with calibrated probabilities often need thresholds below 0.05
GRID = np.round(np.concatenate([[0.002, 0.005, 0.01, 0.015], np.arange(0.02, 0.99, 0.02)]), 3)
DECISION_FILE = "decision.json"


@dataclass
class DecisionRule:
    thresholds: list[float]
    global_threshold: float
    exclusive_groups: list[list[int]]
    min_support: int
    tuned: list[bool]
    taxonomy_hash: str
    calibration: dict | None = None   # per-tag Platt map of the raw scores (profiler.calibration); None: raw

    def calibrate(self, probs: np.ndarray) -> np.ndarray:
        """The scores users see (turns.jsonl, profiles, the service): raw scores mapped so that a
        score of 0.8 comes true about 80% of the time on dev. Decisions use the raw scores."""
        return apply_platt(probs, self.calibration)

    @classmethod
    def default(cls, taxonomy: Taxonomy, threshold: float = 0.5) -> DecisionRule:
        return cls([threshold] * len(taxonomy), threshold, exclusive_indices(taxonomy), 0,
                   [False] * len(taxonomy), taxonomy.hash)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """[n, tags] probabilities -> [n, tags] booleans after thresholds and exclusive decoding."""
        above = probs >= np.asarray(self.thresholds)[None, :]
        for group in self.exclusive_groups:
            sub = above[:, group]
            several = sub.sum(axis=1) > 1
            if several.any():
                masked = np.where(sub, probs[:, group], -1.0)
                winner = masked.argmax(axis=1)
                keep = np.zeros_like(sub)
                keep[np.arange(len(sub)), winner] = True
                above[:, group] = np.where(several[:, None], keep, sub)
        return above

    def save(self, model_dir: str | Path, filename: str = DECISION_FILE) -> None:
        Path(model_dir, filename).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, model_dir: str | Path, taxonomy: Taxonomy, filename: str = DECISION_FILE) -> DecisionRule:
        path = Path(model_dir, filename)
        if not path.is_file():
            return cls.default(taxonomy)
        rule = cls(**json.loads(path.read_text()))
        if rule.taxonomy_hash != taxonomy.hash or len(rule.thresholds) != len(taxonomy):
            raise ValueError(f"{path}: decision rule was tuned for another taxonomy ({rule.taxonomy_hash[:12]})")
        return rule


def exclusive_indices(taxonomy: Taxonomy) -> list[list[int]]:
    return [[taxonomy.index[t] for t in ids] for ids in taxonomy.exclusive_groups.values()]


def _counts_per_threshold(probs: np.ndarray, truth: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(true positives, predicted positives), each [grid, tags], counted in chunks of turns so that
    memory stays bounded (a [grid × turns × tags] array would not fit for 100k-turn dev sets)."""
    tp = np.zeros((len(GRID), probs.shape[1]), dtype=np.int64)
    pp = np.zeros_like(tp)
    for i in range(0, len(probs), chunk):
        pred = probs[None, i:i + chunk] >= GRID[:, None, None]
        tp += (pred & truth[None, i:i + chunk]).sum(axis=1)
        pp += pred.sum(axis=1)
    return tp, pp


def tune(probs: np.ndarray, truth: np.ndarray, taxonomy: Taxonomy, min_support: int = 5,
         mask: np.ndarray | None = None) -> DecisionRule:
    """``mask`` (True = annotated): never-annotated pairs count neither as positives nor as predictions."""
    truth = truth.astype(bool)
    if mask is not None:
        truth, probs = truth & mask, np.where(mask, probs, 0.0)  # 0.0 is below every grid value
    tp, pp = _counts_per_threshold(probs, truth)
    support = truth.sum(axis=0)
    f1 = 2 * tp / np.maximum(pp + support[None], 1)              # [grid, tags]
    micro = 2 * tp.sum(axis=1) / np.maximum(pp.sum(axis=1) + support.sum(), 1)
    global_t = float(GRID[_best(micro)])
    tuned = support >= min_support
    thresholds = [float(GRID[_best(f1[:, j])]) if tuned[j] else global_t for j in range(probs.shape[1])]
    calibration = fit_platt(probs, truth, mask) if truth.any() else None
    return DecisionRule(thresholds, global_t, exclusive_indices(taxonomy), min_support,
                        [bool(x) for x in tuned], taxonomy.hash, calibration)


def _best(scores: np.ndarray) -> int:
    """Index of the best score; among ties, the grid value nearest 0.5 (the least extreme)."""
    best = np.flatnonzero(np.isclose(scores, scores.max()))
    return int(best[np.argmin(np.abs(GRID[best] - 0.5))])
