"""The per-turn output contract of ``profiler-predict`` (JSONL, one line per customer turn)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from profiler.data.turns import explode_dialogue
from profiler.predictor import TURN_COLUMNS
from profiler.taxonomy import Taxonomy


@dataclass(frozen=True)
class ScoresSpec:
    top_k: int | None = None      # keep only the k highest scores per turn
    floor: float | None = None    # keep only scores ≥ floor
    digits: int = 6

    def select(self, probs: np.ndarray, ids: tuple[str, ...]) -> dict[str, float]:
        order = np.argsort(-probs, kind="stable")
        if self.top_k is not None:
            order = order[:self.top_k]
        if self.floor is not None:
            order = order[probs[order] >= self.floor]
        return {ids[j]: round(float(probs[j]), self.digits) for j in order}


def customer_turns(dialogues: list[dict], max_context_turns: int) -> list[dict]:
    """Customer turns of the dialogues in input order, each with its context (labels ignored)."""
    return [t for d in dialogues for t in explode_dialogue(d, max_context_turns)]


def turn_rows(turns: list[dict], probs: np.ndarray, decided: np.ndarray, taxonomy: Taxonomy,
              scores: ScoresSpec, truncated: list[bool] | None = None) -> list[dict]:
    ids = taxonomy.ids
    rows = [{"dialogue_id": turn["dialogue_id"], "turn_index": turn["turn_index"], "speaker": "customer",
             "text": turn["text"], "labels": [ids[j] for j in np.flatnonzero(d)], "scores": scores.select(p, ids),
             "customer_id": turn["customer_id"], "started_at": turn["started_at"]}
            for turn, p, d in zip(turns, probs, decided)]
    for row, cut in zip(rows, truncated or []):
        if cut:  # present only when true, so ordinary rows stay as they were
            row["truncated"] = True
    return rows


def predict_rows(predictor, dialogues: list[dict], scores: ScoresSpec) -> list[dict]:
    """Valid dialogues -> output rows: the one path behind profiler-predict and profiler-serve."""
    turns = customer_turns(dialogues, predictor.context.max_turns)
    if not turns:
        return []
    raw, truncated = predictor.score({k: [t[k] for t in turns] for k in TURN_COLUMNS})
    return turn_rows(turns, predictor.rule.calibrate(raw), predictor.rule.decide(raw), predictor.taxonomy, scores,
                     truncated)
