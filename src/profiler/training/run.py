"""Train an encoder tagger end to end: data -> fine-tuning -> tuned decision layer -> model dir."""

from __future__ import annotations

import json
import os
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from profiler.decision import tune
from profiler.metrics import headline
from profiler.modeling import TaggerSettings, TurnTagger, truncate_layers
from profiler.evaluation import evaluate_dir
from profiler.scoring import score_features, torch_forward
from profiler.taxonomy import Taxonomy
from profiler.migration import Migration
from profiler.training.data import DataSpec, annotated_counts, encode, label_counts, load_turns, train_turns
from profiler.training.loop import Trainer, TrainArgs
from profiler.training.losses import LossSpec, build_loss
from profiler.training.warm_start import warm_start

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderJob:
    data: DataSpec
    base_dir: Path
    settings: TaggerSettings
    loss: LossSpec
    args: TrainArgs
    num_layers: int | None = None     # keep only the lowest N encoder layers
    min_support: int = 5              # decision layer: fewer dev positives -> global threshold
    init_from: Path | None = None     # warm start: a parent model directory (encoder + kept head rows)
    migration: Migration = field(default_factory=Migration)  # parent taxonomy -> this one
    watch_tags: tuple[str, ...] = ()  # tag/dimension ids whose dev macro-F1 each evaluation also logs


def init_head_bias(model: TurnTagger, positives: torch.Tensor, total: int | torch.Tensor,
                   rows: torch.Tensor | None = None) -> None:
    """Start each tag's logit at the log-odds of its train frequency (the prior-probability init of
    Lin et al. 2017): otherwise the first hundreds of steps only push 95 biases from p=0.5 down.
    ``total`` may be per tag (turns annotated for it); ``rows`` limits the init to some tags."""
    total = torch.as_tensor(total, dtype=torch.float32).clamp(min=1)
    prior = (positives.float() / total).clamp(1e-4, 0.5)
    rows = torch.ones(len(prior), dtype=torch.bool) if rows is None else rows
    with torch.no_grad():
        model.head.bias[rows] = torch.log(prior / (1 - prior))[rows]


def build_model(job: EncoderJob, taxonomy: Taxonomy) -> tuple[TurnTagger, Any, torch.Tensor, dict]:
    """(model, tokenizer, head rows to initialise from the train prior, record for config.json)."""
    if job.init_from:
        model, tokenizer, parent, is_new = warm_start(job.init_from, taxonomy, job.migration, job.args.seed)
        if job.num_layers:
            log.warning("num_layers is ignored with init_from: the parent's encoder is kept as it is")
        return model, tokenizer, is_new, {"warm_start": parent}
    model, tokenizer = TurnTagger.from_base(job.base_dir, taxonomy, job.settings, seed=job.args.seed)
    if job.num_layers:
        truncate_layers(model, job.num_layers)
    return model, tokenizer, torch.ones(len(taxonomy), dtype=torch.bool), {}


def train_encoder(job: EncoderJob, taxonomy: Taxonomy, run_dir: Path, model_dir: Path) -> dict:
    run_dir, model_dir = Path(run_dir), Path(model_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer, fresh_rows, record = build_model(job, taxonomy)
    context = model.settings.context  # a warm start reads inputs exactly as its parent did
    k = context.max_turns
    train = train_turns(job.data, taxonomy, k, job.args.seed)
    encoded = {"train": encode(train, tokenizer, context, taxonomy),
               "dev": encode(load_turns(job.data.dev, taxonomy, k, job.data.strict), tokenizer, context, taxonomy)}
    counts, annotated = label_counts(encoded["train"]), annotated_counts(encoded["train"])
    log.info("train: %d turns (%d tags never seen, %d never annotated), dev: %d turns; %d processes",
             len(encoded["train"]), int((counts == 0).sum()), int((annotated == 0).sum()), len(encoded["dev"]),
             int(os.environ.get("WORLD_SIZE", "1")))
    init_head_bias(model, counts, annotated, fresh_rows)
    loss_fn = build_loss(job.loss, counts, annotated)
    best_dir = run_dir / "best"
    save_best = lambda m: m.save(best_dir, tokenizer, taxonomy)  # noqa: E731
    watch = sorted(taxonomy.index[t] for t in taxonomy.expand(job.watch_tags))
    trainer = Trainer(model, tokenizer, loss_fn, encoded["train"], encoded["dev"], job.args, run_dir, save_best, watch)
    started = time.perf_counter()
    state = trainer.fit()
    seconds = time.perf_counter() - started
    if not trainer.accelerator.is_main_process:
        return {}
    best, _, _ = TurnTagger.load(best_dir, expected=taxonomy)
    dev_probs = score_features(torch_forward(best), tokenizer, encoded["dev"].to_dict(), len(taxonomy))
    dev_truth, dev_mask = np.asarray(encoded["dev"]["labels"]) > 0.5, np.asarray(encoded["dev"]["label_mask"]) > 0.5
    rule = tune(dev_probs, dev_truth, taxonomy, job.min_support, dev_mask)
    extra = {**record, "kind": "encoder", "trained_steps": state.step, "best_step": state.best_step,
             "train_args": json.loads(json.dumps(asdict(job.args), default=str)), "loss": asdict(job.loss),
             "num_layers": job.num_layers, "decision": "decision.json",
             "data": job.data.record()}
    best.save(model_dir, tokenizer, taxonomy, extra=extra)
    rule.save(model_dir)
    metrics = {"dev": headline(dev_truth, rule.decide(dev_probs), mask=dev_mask),
               "best_step": state.best_step, "steps": state.step, "stopped_early": state.stopped_early,
               "train_seconds": round(seconds, 1),
               "train_samples_per_second": round(state.step * job.args.batch_size * job.args.grad_accum / seconds, 2)}
    if job.data.test:
        metrics["test"] = evaluate_dir(model_dir, job.data.test, job.data.strict)  # the path users run
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log.info("model -> %s | dev macro-F1 %.4f%s", model_dir, metrics["dev"]["macro_f1"],
             f" | test micro-F1 {metrics['test']['micro_f1']:.4f} macro-F1 {metrics['test']['macro_f1']:.4f}"
             if "test" in metrics else "")
    return metrics
