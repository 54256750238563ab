"""profiler-synth: write the synthetic corpus (train/dev/test JSONL + data card)."""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from profiler.cli.common import build_taxonomy, to_dict
from profiler.cli.hydra_app import hydra_app
from profiler.migration import Migration
from profiler.synth.corpus import write_corpus
from profiler.synth.generator import SynthConfig
from profiler.synth.noise import NoiseConfig

log = logging.getLogger(__name__)


def build_synth_config(cfg: DictConfig) -> SynthConfig:
    values = to_dict(cfg)
    values["noise"] = NoiseConfig(**values.get("noise", {}))
    return SynthConfig(**values)


def synth(cfg: DictConfig) -> dict:
    renames = Migration.load(cfg.taxonomy.get("migration")).tags
    card = write_corpus(cfg.out_dir, build_taxonomy(cfg.taxonomy), build_synth_config(cfg.synth), renames)
    for split, stats in card["splits"].items():
        log.info("%-5s dialogues=%d customer_turns=%d untagged=%.1f%% context-only=%.1f%% min/tag=%d",
                 split, stats["dialogues"], stats["customer_turns"], 100 * stats["untagged_share"],
                 100 * stats["context_dependent_share_of_tagged"], min(stats["per_tag"].values()))
    log.info("corpus and data card written to %s", cfg.out_dir)
    return card


@hydra_app("synth")
def main(cfg: DictConfig) -> None:
    synth(cfg)


if __name__ == "__main__":
    main()
