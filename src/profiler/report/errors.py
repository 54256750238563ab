"""The error table: every false positive and false negative, with the turn's dialogue context,
most confident mistakes first (those are the ones worth reading: label noise or a real blind spot)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from profiler import privacy
from profiler.taxonomy import Taxonomy


def error_rows(turns: Mapping[str, Sequence], truth: np.ndarray, probs: np.ndarray, pred: np.ndarray,
               taxonomy: Taxonomy, per_tag_limit: int | None = 50, redact: bool = True) -> list[dict]:
    """FP rows sorted by probability (high first), FN rows by probability (low first), at most
    ``per_tag_limit`` of each kind per tag; then all rows by how confident the mistake was.
    ``redact``: phone/ID/card numbers and e-mails in the quoted turns are masked (profiler.privacy)."""
    ids = taxonomy.ids
    clean = privacy.redact if redact else (lambda text: text)
    rows: list[dict] = []
    for j, tag in enumerate(ids):
        for kind, mask, order in (("false_positive", pred[:, j] & ~truth[:, j], -1),
                                  ("false_negative", truth[:, j] & ~pred[:, j], 1)):
            idx = np.flatnonzero(mask)
            idx = idx[np.argsort(order * probs[idx, j], kind="stable")][:per_tag_limit]
            rows.extend(_row(turns, i, tag, kind, float(probs[i, j]), truth, pred, ids, clean) for i in idx)
    rows.sort(key=lambda r: -r["confidence"])
    return rows


def _row(turns: Mapping[str, Sequence], i: int, tag: str, kind: str, p: float, truth: np.ndarray,
         pred: np.ndarray, ids: tuple[str, ...], clean: Callable[[str], str]) -> dict:
    i = int(i)
    return {"kind": kind, "tag": tag, "probability": round(p, 6),
            "confidence": round(p if kind == "false_positive" else 1 - p, 6),
            "dialogue_id": turns["dialogue_id"][i], "turn_index": int(turns["turn_index"][i]),
            "text": clean(turns["text"][i]),
            "context": [{"speaker": s, "text": clean(t)} for s, t in zip(turns["context_speakers"][i],
                                                                  turns["context_texts"][i])],
            "true_labels": [ids[k] for k in np.flatnonzero(truth[i])],
            "predicted_labels": [ids[k] for k in np.flatnonzero(pred[i])]}
