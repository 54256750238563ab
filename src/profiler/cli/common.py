"""What every entry point shares: building typed objects out of the Hydra config."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from profiler.taxonomy import Taxonomy

if TYPE_CHECKING:
    from profiler.modeling import TaggerSettings

CONFIG_PATH = "pkg://profiler.configs"
VERSION_BASE = "1.3"


def build_taxonomy(cfg: DictConfig) -> Taxonomy:
    return Taxonomy.load(path=cfg.get("path"), name=cfg.get("name", "v1"))


def to_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def build_tagger_settings(model_cfg: DictConfig) -> TaggerSettings:
    from profiler.inputs import ContextConfig
    from profiler.modeling import TaggerSettings

    return TaggerSettings(pooling=model_cfg.pooling, dropout=model_cfg.dropout,
                          context=ContextConfig(**to_dict(model_cfg.context)), base=str(model_cfg.base))


def resolve_base_dir(model_cfg: DictConfig, cache_dir: str) -> Path:
    from profiler.encoders.sources import TinySpec, resolve_base

    tiny = TinySpec(**to_dict(model_cfg.tiny)) if model_cfg.get("tiny") else None
    return resolve_base(str(model_cfg.base), cache_dir, prune_vocab=model_cfg.get("prune_vocab", True), tiny=tiny)


def run_subcommand(ap: argparse.ArgumentParser, argv: list[str] | None, errors: tuple[type[Exception], ...]) -> None:
    """The argparse tools (subcommands over files): run the chosen one; an expected error is one
    line on stderr and exit code 2, not a traceback."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = ap.parse_args(argv)
    try:
        sys.exit(args.func(args))
    except errors as e:
        logging.getLogger(ap.prog).error("%s", e)
        sys.exit(2)
