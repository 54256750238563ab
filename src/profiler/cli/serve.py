"""profiler-serve: run the reference HTTP service over an export bundle until interrupted."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from profiler.cli.common import to_dict
from profiler.cli.hydra_app import hydra_app
from profiler.predict.output import ScoresSpec
from profiler.serve import ServiceLimits, TaggingService, build_server

log = logging.getLogger(__name__)


@hydra_app("serve")
def main(cfg: DictConfig) -> None:
    service = TaggingService(Path(cfg.bundle), cfg.variant, ServiceLimits(**to_dict(cfg.limits)),
                             ScoresSpec(**to_dict(cfg.scores)))
    log.info("serving %s (%s) on http://%s:%d", cfg.bundle, cfg.variant, cfg.host, cfg.port)
    build_server(service, cfg.host, cfg.port, cfg.backlog).run()  # uvicorn handles Ctrl-C / SIGTERM


if __name__ == "__main__":
    main()
