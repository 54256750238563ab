"""profiler-train: a dialogue corpus -> a self-describing model directory (encoder or baseline)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from profiler.cli.common import (build_tagger_settings, build_taxonomy,
                                 resolve_base_dir, to_dict)
from profiler.cli.hydra_app import hydra_app
from profiler.inputs import ContextConfig
from profiler.migration import Migration
from profiler.training.data import DataSpec
from profiler.training.loop import TrainArgs
from profiler.training.losses import LossSpec
from profiler.training.optim import OptimSpec

log = logging.getLogger(__name__)


def build_train_args(cfg: DictConfig) -> TrainArgs:
    values = {k: v for k, v in to_dict(cfg.trainer).items() if k != "num_threads"}
    return TrainArgs(**values, seed=cfg.seed, resume=cfg.resume, optim=OptimSpec(**to_dict(cfg.optim)))


def train(cfg: DictConfig) -> dict:
    if cfg.trainer.get("num_threads"):
        torch.set_num_threads(int(cfg.trainer.num_threads))
    taxonomy = build_taxonomy(cfg.taxonomy)
    data = DataSpec(**to_dict(cfg.data))
    context = ContextConfig(**to_dict(cfg.model.context))
    model_dir = Path(cfg.model_dir)
    kind = cfg.model.kind
    if cfg.init_from and kind != "encoder":
        raise ValueError(f"init_from warm-starts encoder models; model.kind={kind} has nothing to start from")
    if kind == "tfidf":
        from profiler.baselines.tfidf import TfidfSpec
        from profiler.training.baselines import train_tfidf

        return train_tfidf(TfidfSpec(**to_dict(cfg.model.tfidf)), data, taxonomy, context, model_dir, cfg.seed,
                           cfg.min_support)
    if kind == "rules":
        from profiler.training.baselines import train_rules

        return train_rules(cfg.model.patterns, data, taxonomy, context, model_dir)
    from profiler.training.run import train_encoder

    return train_encoder(build_encoder_job(cfg), taxonomy, Path(cfg.run_dir), model_dir)


def build_encoder_job(cfg: DictConfig):
    """The encoder job a composed train config describes (also what scripts/bench_gpu.py times)."""
    from profiler.training.run import EncoderJob

    return EncoderJob(data=DataSpec(**to_dict(cfg.data)), base_dir=resolve_base_dir(cfg.model, cfg.paths.cache_dir),
                      settings=build_tagger_settings(cfg.model), loss=LossSpec(**to_dict(cfg.loss)),
                      args=build_train_args(cfg), num_layers=cfg.model.get("num_layers"), min_support=cfg.min_support,
                      init_from=Path(cfg.init_from) if cfg.init_from else None,
                      migration=Migration.load(cfg.taxonomy.get("migration")),
                      watch_tags=tuple(cfg.get("watch_tags") or ()))


@hydra_app("train")
def main(cfg: DictConfig) -> None:
    metrics = train(cfg)
    if metrics:
        log.info("model directory: %s", cfg.model_dir)


if __name__ == "__main__":
    main()
