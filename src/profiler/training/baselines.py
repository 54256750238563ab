"""Train the baselines through the same interface and into the same directory format."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

from profiler.baselines.common import record_training_data
from profiler.baselines.rules import RulesModel, load_patterns
from profiler.baselines.tfidf import TfidfModel, TfidfSpec
from profiler.decision import DecisionRule, tune
from profiler.data.labels import annotation_mask, label_matrix, load_turns
from profiler.evaluation import evaluate_dir
from profiler.inputs import ContextConfig, context_strings
from profiler.taxonomy import Taxonomy
from profiler.training.data import DataSpec, train_turns

log = logging.getLogger(__name__)


def train_tfidf(spec: TfidfSpec, data: DataSpec, taxonomy: Taxonomy, context: ContextConfig, model_dir: Path,
                seed: int = 13, min_support: int = 5) -> dict:
    k = context.max_turns
    train = train_turns(data, taxonomy, k, seed)
    dev = load_turns(data.dev, taxonomy, k, data.strict)
    model = TfidfModel.fit(list(train["text"]), context_strings(context, train["context_speakers"],
                                                                train["context_texts"]),
                           label_matrix(train["labels"], taxonomy.index), spec, taxonomy,
                           annotation_mask(train["annotated"], taxonomy))
    dev_probs = model.predict_proba(list(dev["text"]), context_strings(context, dev["context_speakers"],
                                                                       dev["context_texts"]))
    model.save(Path(model_dir), context)
    tune(dev_probs, label_matrix(dev["labels"], taxonomy.index), taxonomy, min_support,
         annotation_mask(dev["annotated"], taxonomy)).save(model_dir)
    return finish(Path(model_dir), data)


def train_rules(patterns_path: str | None, data: DataSpec, taxonomy: Taxonomy, context: ContextConfig,
                model_dir: Path) -> dict:
    """Nothing to fit: the patterns are copied into the model directory; a match scores 1.0."""
    RulesModel(load_patterns(patterns_path, taxonomy), taxonomy).save(Path(model_dir), context)
    DecisionRule.default(taxonomy).save(model_dir)
    return finish(Path(model_dir), replace(data, definition_copies=0))  # no definitions were learnt


def finish(model_dir: Path, data: DataSpec) -> dict:
    record_training_data(model_dir, data.record())
    metrics = {"dev": evaluate_dir(model_dir, data.dev, data.strict)}
    if data.test:
        metrics["test"] = evaluate_dir(model_dir, data.test, data.strict)
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log.info("model -> %s | %s", model_dir, {s: round(m["macro_f1"], 4) for s, m in metrics.items()})
    return metrics
