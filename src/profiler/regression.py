"""Did the warm-started child forget what its parent knew? Old tags' F1, parent vs child, on the
child's evaluation data.

The parent predicts in its own tag space; its decisions are carried into the child's through the
mapping the child was trained with (recorded in the child's config.json): a kept or renamed tag
takes its source's decision, a merged tag holds when any of its sources does. Both are scored on
the same turns and the same annotated pairs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from profiler.evaluation import Evaluation
from profiler.metrics import per_tag_f1, scored_tags
from profiler.migration import sources_of
from profiler.predictor import InferenceSettings, Predictor

log = logging.getLogger(__name__)


def parent_record(model_dir: Path) -> dict | None:
    config = model_dir / "config.json"
    if not config.is_file():
        return None
    return (json.loads(config.read_text()).get("profiler") or {}).get("warm_start")


def regression(ev: Evaluation, min_support: int = 5, parent_dir: str | Path | None = None,
               settings: InferenceSettings | None = None, drop: float = 0.02) -> dict | None:
    """The regression section of metrics.json, or None for a model that was not warm-started (or
    whose parent directory is gone: then a warning says so)."""
    record = parent_record(ev.model_dir)
    if record is None:
        return None
    parent_dir = Path(parent_dir or record["dir"])
    if not (parent_dir / "config.json").is_file():
        log.warning("%s was warm-started from %s, which is not there: no regression section", ev.model_dir,
                    parent_dir)
        return None
    parent = Predictor.from_pretrained(parent_dir, settings=settings)
    _, parent_pred = parent.predict(ev.turns)
    child_tax = ev.predictor.taxonomy
    sources = sources_of(record["mapping"])
    old_cols = [j for j, t in enumerate(child_tax.ids) if t in sources]
    carried = np.zeros_like(ev.pred)
    for j in old_cols:
        carried[:, j] = parent_pred[:, [parent.taxonomy.index[o] for o in sources[child_tax.ids[j]]]].any(axis=1)
    carried &= ev.mask
    f_parent, f_child = per_tag_f1(ev.truth, carried), per_tag_f1(ev.truth, ev.pred)
    support = ev.truth.sum(axis=0)
    scored = [j for j in scored_tags(ev.truth, min_support) if j in set(old_cols)]
    rows = [{"tag": child_tax.ids[j], "parent_tags": sources[child_tax.ids[j]], "support": int(support[j]),
             "parent_f1": float(f_parent[j]), "child_f1": float(f_child[j]),
             "delta": float(f_child[j] - f_parent[j]), "scored": j in scored} for j in old_cols]
    mean = lambda f: float(np.mean(f[scored])) if scored else None  # noqa: E731
    return {"parent": {"dir": str(parent_dir), "taxonomy_version": record["taxonomy_version"],
                       "taxonomy_hash": record["taxonomy_hash"]},
            "old_tags": len(old_cols), "old_tags_scored": len(scored),
            "old_macro_f1": {"parent": mean(f_parent), "child": mean(f_child)},
            "regressed": [r["tag"] for r in rows if r["scored"] and r["delta"] < -drop], "drop": drop,
            "per_tag": sorted(rows, key=lambda r: r["delta"])}
