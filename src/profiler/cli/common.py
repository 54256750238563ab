"""What every entry point shares: building typed objects out of the Hydra config."""

from __future__ import annotations

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
