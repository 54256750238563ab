"""profiler-export: ONNX bundle (fp32, int8) behind parity and accuracy gates, Triton layout, model card.
``format=card`` writes only the model card (e.g. for a baseline, which has no graph to export)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

from profiler.cli.common import to_dict
from profiler.cli.hydra_app import hydra_app
from profiler.export.gates import ExportGateError, GateSpec
from profiler.export.run import ExportJob, export_model
from profiler.report.card import card_from_files, write_card

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> dict:
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    model_dir = Path(cfg.model_dir)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path("bundles") / model_dir.name
    meta: dict = {}
    if cfg.format != "card":
        if not cfg.dev:
            raise ValueError("dev=<labelled dialogue file> is required: the export gates score it")
        dev = cfg.dev if isinstance(cfg.dev, str) else to_dict(cfg.dev)   # a file or a list of files
        job = ExportJob(model_dir=model_dir, out_dir=out_dir, dev=dev, format=cfg.format, opset=cfg.opset,
                        ort_fusions=cfg.ort_fusions, with_logits=cfg.with_logits, gate=GateSpec(**to_dict(cfg.gate)),
                        gate_max_turns=cfg.gate_max_turns, int8_keep_fp32=cfg.int8_keep_fp32,
                        probe_max_turns=cfg.probe_max_turns, triton_max_batch_size=cfg.triton_max_batch_size)
        meta = export_model(job)
    evaluation = Path(cfg.card.evaluation) if cfg.card.evaluation else None
    card = write_card(card_from_files(model_dir, evaluation, out_dir if meta else None), Path(cfg.card.dir))
    log.info("model card -> %s", card)
    return {"bundle": str(out_dir) if meta else None, "card": str(card), **meta}


@hydra_app("export")
def main(cfg: DictConfig) -> None:
    try:
        result = export(cfg)
    except ExportGateError as e:
        log.error("%s", e)
        sys.exit(1)
    if result["bundle"]:
        log.info("bundle: %s", result["bundle"])


if __name__ == "__main__":
    main()
