"""What every entry point shares: building typed objects out of the Hydra config."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from profiler.taxonomy import Taxonomy

if TYPE_CHECKING:
    from profiler.modeling import TaggerSettings

CONFIG_PATH = "pkg://profiler.configs"
VERSION_BASE = "1.3"

# Exit codes of every profiler-* tool (documented in docs/cli.md):
EXIT_OK = 0          # everything was read and written
EXIT_FATAL = 1       # an unexpected error; nothing final was written (profiler-predict: a re-run resumes)
EXIT_USAGE = 2       # a bad or missing setting, a refused resume, a model directory that does not fit
EXIT_REJECTED = 3    # finished, but some input rows were rejected (listed in errors.jsonl)


def run_task(task: Callable[[], int], expected: tuple[type[Exception], ...] = ()) -> None:
    """Run a tool's body and exit with its code; an expected error (a user's mistake, not a bug) is
    one line on stderr and EXIT_USAGE, not a traceback."""
    try:
        code = task()
    except expected as e:
        logging.getLogger("profiler").error("%s", e)
        code = EXIT_USAGE
    sys.exit(code)


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
        sys.exit(EXIT_USAGE)
