"""profiler-eval: metrics.json, errors.jsonl, report.md/html per model, and a comparison table."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig

from profiler.cli.common import to_dict
from profiler.cli.hydra_app import hydra_app
from profiler.evaluation import build_metrics, evaluate
from profiler.predictor import InferenceSettings
from profiler.regression import regression
from profiler.report.compare import comparison, comparison_markdown
from profiler.report.render import write_report

log = logging.getLogger(__name__)


def report_names(model_dirs: list[Path]) -> list[str]:
    """Directory names, made unique (runs often all save into a directory called ``model``)."""
    names = [p.name for p in model_dirs]
    return [n if names.count(n) == 1 else f"{p.parent.name}-{n}" for n, p in zip(names, model_dirs)]


def evaluate_models(cfg: DictConfig) -> dict:
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    dirs = [Path(p) for p in (cfg.model_dir if isinstance(cfg.model_dir, ListConfig) else [cfg.model_dir])]
    out_dir, settings = Path(cfg.out_dir), InferenceSettings(**to_dict(cfg.inference))
    all_metrics: dict[str, dict] = {}
    for name, model_dir in zip(report_names(dirs), dirs):
        ev = evaluate(model_dir, cfg.input, cfg.strict, settings)
        metrics = build_metrics(ev, cfg.min_support, cfg.bootstrap.resamples, cfg.bootstrap.seed)
        section = regression(ev, cfg.min_support, cfg.get("parent_dir"), settings)
        if section is not None:  # a warm-started model: old tags under the parent vs under this model
            metrics["regression"] = section
        paths = write_report(ev, metrics, out_dir / name, cfg.errors_per_tag, redact=cfg.privacy.redact)
        all_metrics[name] = metrics
        h = metrics["headline"]
        log.info("%s: micro-F1 %.4f macro-F1 %.4f -> %s", name, h["micro_f1"], h["macro_f1"], paths["report.html"])
    comp = comparison(all_metrics)
    (out_dir / "comparison.json").write_text(json.dumps(comp, indent=1, ensure_ascii=False), encoding="utf-8")
    (out_dir / "comparison.md").write_text(comparison_markdown(comp), encoding="utf-8")
    return {"out_dir": str(out_dir), "metrics": all_metrics, "comparison": comp}


@hydra_app("eval")
def main(cfg: DictConfig) -> None:
    result = evaluate_models(cfg)
    print(comparison_markdown(result["comparison"]))  # the headline table is this command's product
    log.info("reports in %s", result["out_dir"])


if __name__ == "__main__":
    main()
