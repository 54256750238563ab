"""What every entry point shares: building typed objects out of the Hydra config."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from profiler.taxonomy import Taxonomy

CONFIG_PATH = "pkg://profiler.configs"
VERSION_BASE = "1.3"


def build_taxonomy(cfg: DictConfig) -> Taxonomy:
    return Taxonomy.load(path=cfg.get("path"), name=cfg.get("name", "v1"))


def to_dict(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
