"""profiler-serve: run the reference HTTP service over an export bundle until interrupted."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from profiler.cli.common import CONFIG_PATH, VERSION_BASE, to_dict
from profiler.predict.output import ScoresSpec
from profiler.serve import ServiceLimits, TaggingService, build_server

log = logging.getLogger(__name__)


@hydra.main(config_path=CONFIG_PATH, config_name="serve", version_base=VERSION_BASE)
def main(cfg: DictConfig) -> None:
    service = TaggingService(Path(cfg.bundle), cfg.variant, ServiceLimits(**to_dict(cfg.limits)),
                             ScoresSpec(**to_dict(cfg.scores)))
    server = build_server(service, cfg.host, cfg.port)
    log.info("serving %s (%s) on http://%s:%d", cfg.bundle, cfg.variant, *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
