"""Evaluate a saved model directory (encoder or baseline) on a dialogue file.

``evaluate`` scores the turns through the one ``Predictor`` path; ``build_metrics`` turns the
result into the stable ``metrics.json`` document that reports, comparisons and model cards read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset

from profiler.bootstrap import dialogue_bootstrap
from profiler.calibration import calibration
from profiler.data.labels import annotation_mask, label_matrix, load_turns
from profiler.metrics import apply_mask, group_table, headline, per_tag_table, scored_tags
from profiler.predictor import InferenceSettings, Predictor
from profiler.taxonomy import Taxonomy

SCHEMA_VERSION = 1


@dataclass
class Evaluation:
    """Scores of one model on one file. ``truth`` and ``pred`` are blank (False) on the pairs that
    were never annotated (``mask`` False): every count and F1 scores annotated pairs only."""

    model_dir: Path
    data: str
    predictor: Predictor
    turns: Dataset
    truth: np.ndarray
    probs: np.ndarray       # calibrated scores (what users see)
    pred: np.ndarray
    mask: np.ndarray
    raw: np.ndarray         # the model's scores before calibration (what thresholds read)


def evaluate(model_dir: str | Path, data: str | Path, strict: bool = False,
             settings: InferenceSettings | None = None) -> Evaluation:
    predictor = Predictor.from_pretrained(model_dir, settings=settings)
    turns = load_turns(data, predictor.taxonomy, predictor.context.max_turns, strict)
    raw = predictor.predict_proba(turns, progress=f"eval {Path(model_dir).name}")
    probs, pred = predictor.rule.calibrate(raw), predictor.rule.decide(raw)
    mask = annotation_mask(turns["annotated"], predictor.taxonomy)
    truth, pred = apply_mask(label_matrix(turns["labels"], predictor.taxonomy.index), pred, mask)
    return Evaluation(Path(model_dir), str(data), predictor, turns, truth, probs, pred, mask, raw)


def evaluate_dir(model_dir: str | Path, data: str | Path, strict: bool = False) -> dict:
    """Headline numbers only (what training writes into the model's metrics.json)."""
    ev = evaluate(model_dir, data, strict)
    return headline(ev.truth, ev.pred, mask=ev.mask)


def confusion_pairs(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """[tags, tags]: turns where tag a was missed while tag b was wrongly predicted ("a read as b")."""
    fn = (truth & ~pred).astype(np.int64)
    fp = (pred & ~truth).astype(np.int64)
    return fn.T @ fp


def build_metrics(ev: Evaluation, min_support: int = 5, resamples: int = 1000, seed: int = 0) -> dict:
    tax, rule = ev.predictor.taxonomy, ev.predictor.rule
    macro_tags = scored_tags(ev.truth, min_support)
    per_tag = per_tag_table(ev.truth, ev.pred, ev.probs, tax, rule.thresholds, min_support, ev.mask)
    aps = [per_tag[j]["average_precision"] for j in macro_tags]
    aucs = [per_tag[j]["roc_auc"] for j in macro_tags if per_tag[j]["roc_auc"] is not None]
    source = ev.model_dir / ("config.json" if (ev.model_dir / "config.json").is_file() else "bundle.json")
    meta = json.loads(source.read_text())
    base = (meta.get("profiler") or {}).get("base") if "profiler" in meta else meta.get("base")
    return {
        "schema": SCHEMA_VERSION,
        "model": {"dir": str(ev.model_dir), "name": ev.model_dir.name, "kind": ev.predictor.kind,
                  "taxonomy_version": tax.version, "taxonomy_hash": tax.hash,
                  "base": base},
        "data": {"path": ev.data, "turns": int(len(ev.truth)),
                 "dialogues": int(len(set(ev.turns["dialogue_id"]))), "positives": int(ev.truth.sum())},
        "settings": {"min_support": min_support, "bootstrap": {"unit": "dialogue", "resamples": resamples,
                                                               "seed": seed, "level": 0.95}},
        "headline": headline(ev.truth, ev.pred, min_support, ev.mask),
        "ci": dialogue_bootstrap(ev.truth, ev.pred, np.asarray(ev.turns["dialogue_id"]), macro_tags,
                                 resamples, seed),
        "threshold_free": {"map": float(np.mean(aps)) if aps else None,
                           "macro_roc_auc": float(np.mean(aucs)) if aucs else None},
        "calibration": calibration(ev.truth, ev.probs, mask=ev.mask, pred=ev.pred),      # the scores users see
        "calibration_raw": calibration(ev.truth, ev.raw, mask=ev.mask, pred=ev.pred),    # before calibration
        "per_tag": per_tag,
        "per_category": group_table(ev.truth, ev.pred, tax, "category", min_support),
        "per_dimension": group_table(ev.truth, ev.pred, tax, "dimension", min_support),
        "flagged_tags": [r["tag"] for r in per_tag if r["low_support"]],
    }
