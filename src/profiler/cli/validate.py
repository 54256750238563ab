"""profiler-validate: check dialogue files against the contract; exit 1 if anything is rejected."""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from profiler.cli.common import CONFIG_PATH, VERSION_BASE, build_taxonomy
from profiler.data.contract import ContractError, ReadReport, expand_paths, iter_dialogues

log = logging.getLogger(__name__)


def validate(cfg: DictConfig) -> ReadReport:
    report = ReadReport()
    try:
        for _ in iter_dialogues(expand_paths(cfg.input), build_taxonomy(cfg.taxonomy), report, strict=cfg.strict):
            pass
    finally:
        report.write_jsonl(cfg.errors)
    log.info("%d dialogues read, %d valid, %d rejected; problems -> %s",
             report.lines, report.kept, report.rejected, cfg.errors)
    return report


@hydra.main(config_path=CONFIG_PATH, config_name="validate", version_base=VERSION_BASE)
def main(cfg: DictConfig) -> None:
    try:
        report = validate(cfg)
    except ContractError as e:
        log.error("%s", e)
        sys.exit(1)
    sys.exit(1 if report.rejected else 0)


if __name__ == "__main__":
    main()
