"""profiler-validate: check dialogue files against the contract; exit 3 if anything is rejected."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from profiler.cli.common import EXIT_OK, EXIT_REJECTED, build_taxonomy, run_task
from profiler.cli.hydra_app import hydra_app
from profiler.data.contract import ContractError, ReadReport, iter_dialogues
from profiler.data.lines import expand_paths

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


@hydra_app("validate")
def main(cfg: DictConfig) -> None:
    # strict mode raises ContractError listing every problem: rows were rejected, not a usage error
    def body() -> int:
        try:
            return EXIT_REJECTED if validate(cfg).rejected else EXIT_OK
        except ContractError as e:
            log.error("%s", e)
            return EXIT_REJECTED

    run_task(body, expected=(FileNotFoundError,))


if __name__ == "__main__":
    main()
