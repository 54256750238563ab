"""metrics.json + errors.jsonl + report.md + self-contained report.html for one evaluation."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jinja2
import numpy as np

from profiler.jsonl import dumps_line
from profiler.evaluation import Evaluation, confusion_pairs
from profiler.report import plots
from profiler.report.errors import error_rows

log = logging.getLogger(__name__)
HEADLINE_KEYS = ("micro_f1", "macro_f1", "samples_f1", "micro_precision", "micro_recall", "macro_precision",
                 "macro_recall", "subset_accuracy", "hamming_loss", "untagged_fpr")
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("profiler.report", "templates"),
                          autoescape=jinja2.select_autoescape(["html.j2"]), keep_trailing_newline=True)


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def tag_names(taxonomy) -> dict[str, str]:
    """Tag id -> its Chinese name (dimension：value), which reviewers read faster than the id."""
    return {t.id: f"{t.dimension}：{t.value}" for t in taxonomy.tags}


def images(ev: Evaluation, metrics: dict, worst: int = 6, confused: int = 20) -> dict[str, str]:
    per_tag = metrics["per_tag"]
    scored = [j for j, r in enumerate(per_tag) if r["support"] > 0 and not r["low_support"]]
    worst_tags = sorted(scored, key=lambda j: per_tag[j]["f1"])[:worst]
    pairs = confusion_pairs(ev.truth, ev.pred)
    involvement = pairs.sum(axis=0) + pairs.sum(axis=1)
    top = sorted(np.argsort(-involvement, kind="stable")[:confused])
    ids = ev.predictor.taxonomy.ids
    return {"f1_bars": plots.f1_bars(per_tag),
            "pr_curves": plots.pr_curves(ev.truth, ev.probs, [(j, ids[j]) for j in worst_tags], ev.mask),
            "reliability": plots.reliability(metrics["calibration"]),
            "confusion": plots.confusion(pairs[np.ix_(top, top)], [ids[j] for j in top])}


def write_report(ev: Evaluation, metrics: dict, out_dir: Path, errors_per_tag: int = 50,
                 errors_shown: int = 30, redact: bool = True) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    errors = error_rows(ev.turns, ev.truth, ev.probs, ev.pred, ev.predictor.taxonomy, errors_per_tag, redact)
    paths = {name: out_dir / name for name in ("metrics.json", "errors.jsonl", "report.md", "report.html")}
    paths["metrics.json"].write_text(json.dumps(metrics, indent=1, ensure_ascii=False), encoding="utf-8")
    with open(paths["errors.jsonl"], "w", encoding="utf-8") as f:
        f.writelines(dumps_line(e) for e in errors)
    context = {"m": metrics, "headline_keys": HEADLINE_KEYS, "fmt": fmt, "errors": errors[:errors_shown],
               "per_tag": sorted((r for r in metrics["per_tag"] if r["support"] or r["predicted"]),
                                 key=lambda r: r["f1"]),
               "names": tag_names(ev.predictor.taxonomy), "tags_total": len(metrics["per_tag"]),
               # a small eval set leaves tags without a positive turn: say so rather than let them vanish
               "tags_unevaluated": sum(1 for r in metrics["per_tag"] if not r["support"])}
    paths["report.md"].write_text(_ENV.get_template("report.md.j2").render(**context), encoding="utf-8")
    html = _ENV.get_template("report.html.j2").render(**context, images=images(ev, metrics))
    paths["report.html"].write_text(html, encoding="utf-8")
    log.info("report -> %s", paths["report.html"])
    return paths
