"""profiler-export's work: graph -> parity gate -> optional int8 (+ its own thresholds) + gate ->
Triton layout -> bundle.

The bundle is assembled in a temporary directory and renamed into place only when every gate
passed; a failed export leaves ``<out>.rejected/`` (for inspection) and raises, so nothing
unverified can be picked up by a deployment script.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from profiler.decision import tune
from profiler.export.bundle import export_graph, write_meta
from profiler.export.gates import ExportGateError, GateSpec, f1_gate, parity
from profiler.export.quantize import RangeProbe, quantize_int8
from profiler.export.runtime import DECISIONS, GRAPHS
from profiler.export.triton import write_triton_repo
from profiler.metrics import headline
from profiler.predictor import InferenceSettings, Predictor

log = logging.getLogger(__name__)
FORMATS = ("onnx", "int8")


@dataclass(frozen=True)
class ExportJob:
    model_dir: Path
    out_dir: Path
    dev: str | list[str]              # labelled dialogue file(s) for the gates
    format: str = "int8"              # onnx: fp32 graph; int8: fp32 + int8 graphs
    opset: int = 18
    ort_fusions: bool = True          # ONNX Runtime's fused attention/LayerNorm/GELU ops (false: plain opset graph)
    with_logits: bool = False
    gate: GateSpec = field(default_factory=GateSpec)
    gate_max_turns: int | None = None # score only the first N dev turns in the gates (None: all)
    int8_keep_fp32: int = 2           # MatMuls with the widest input range (over mean |x|) that stay fp32
    probe_max_turns: int = 256        # dev turns those ranges are measured on
    triton_max_batch_size: int = 64


def _gate_turns(job: ExportJob, predictor: Predictor):
    from profiler.data.labels import annotation_mask, label_matrix, load_turns

    turns = load_turns(job.dev, predictor.taxonomy, predictor.context.max_turns)
    if job.gate_max_turns:
        turns = turns.select(range(min(job.gate_max_turns, len(turns))))
    taxonomy = predictor.taxonomy
    return turns, label_matrix(turns["labels"], taxonomy.index), annotation_mask(turns["annotated"], taxonomy)


def outlier_matmuls(graph: Path, fp32: Predictor, turns, keep: int, max_turns: int) -> list[tuple[str, float]]:
    if keep <= 0:
        return []
    probe = RangeProbe(graph)
    Predictor("onnx", probe, fp32.taxonomy, fp32.rule, fp32.context, fp32.tokenizer,
              fp32.settings).predict_proba(turns.select(range(min(max_turns, len(turns)))),
                                           progress="int8: MatMul range probe")
    ranking = probe.ranking()
    log.info("MatMul inputs, widest range/mean |x| first: %s",
             ", ".join(f"{node} {ratio:.0f}" for node, ratio in ranking[:8]))
    return ranking[:keep]


def quantize_and_tune(bundle: Path, fp32: Predictor, keep: list[str], turns, truth: np.ndarray,
                      mask: np.ndarray | None) -> tuple[Predictor, np.ndarray]:
    """Quantize ``bundle``'s fp32 graph (``keep``: MatMuls left fp32) and give the int8 graph its own
    thresholds, tuned on ``turns`` by the rule fp32's were tuned by. Returns (int8 predictor with that
    rule, its probabilities on ``turns``)."""
    quantize_int8(bundle / GRAPHS["fp32"], bundle / GRAPHS["int8"], keep)
    int8 = Predictor.from_pretrained(bundle, settings=InferenceSettings(backend="onnx", onnx_variant="int8"))
    probs = int8.predict_proba(turns, progress="int8 gate: onnx int8")
    int8.rule = tune(probs, truth, fp32.taxonomy, fp32.rule.min_support, mask)
    int8.rule.save(bundle, DECISIONS["int8"])
    return int8, probs


def _int8(job: ExportJob, tmp: Path, fp32: Predictor, fp32_probs: np.ndarray, turns, truth: np.ndarray,
          mask: np.ndarray) -> dict:
    """Quantize with the outlier MatMuls kept fp32, tune the int8 graph's own thresholds, gate."""
    keep = outlier_matmuls(tmp / GRAPHS["fp32"], fp32, turns, job.int8_keep_fp32, job.probe_max_turns)
    int8, probs = quantize_and_tune(tmp, fp32, [node for node, _ in keep], turns, truth, mask)
    gate = f1_gate(truth, fp32.rule.decide(fp32_probs), int8.rule.decide(probs), fp32.taxonomy.ids, job.gate, mask)
    at_fp32 = headline(truth, fp32.rule.decide(probs), mask=mask)["macro_f1"]
    log.info("for reference: int8 under the fp32 thresholds scores macro-F1 %.4f on the same dev turns", at_fp32)
    return {**gate, "macro_f1_int8_at_fp32_thresholds": at_fp32, "decision": DECISIONS["int8"],
            "kept_fp32": [{"node": node, "range_over_mean_abs": round(ratio, 1)} for node, ratio in keep]}


def _reject(tmp: Path, out_dir: Path, message: str) -> None:
    rejected = out_dir.with_name(out_dir.name + ".rejected")
    shutil.rmtree(rejected, ignore_errors=True)
    tmp.rename(rejected)
    raise ExportGateError(f"{message}; nothing was exported (inspect {rejected})")


def export_model(job: ExportJob) -> dict:
    if job.format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {job.format!r}")
    tmp = job.out_dir.with_name(f".{job.out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    meta = export_graph(job.model_dir, tmp, job.opset, job.with_logits, job.ort_fusions)
    reference = Predictor.from_pretrained(job.model_dir, settings=InferenceSettings(device="cpu"))
    fp32 = Predictor.from_pretrained(tmp, settings=InferenceSettings(backend="onnx"))
    turns, truth, mask = _gate_turns(job, reference)
    meta["parity"], fp32_probs = parity(reference, fp32, turns, job.gate)
    meta["gate_data"] = {"path": job.dev, "turns": len(turns)}
    write_meta(tmp, meta)
    if not meta["parity"]["passed"]:
        hint = "; ort_fusions=false exports the unfused graph" if job.ort_fusions else ""
        _reject(tmp, job.out_dir, f"ONNX parity gate failed: {meta['parity']}{hint}")
    if job.format == "int8":
        meta["int8"] = _int8(job, tmp, fp32, fp32_probs, turns, truth, mask)
        meta["graphs"]["int8"] = GRAPHS["int8"]
        write_meta(tmp, meta)
        if not meta["int8"]["passed"]:
            _reject(tmp, job.out_dir, f"int8 gate failed: macro-F1 dropped {meta['int8']['drop_points']:.2f} "
                                      f"points (limit {job.gate.max_f1_drop})")
    write_triton_repo(tmp, meta, job.triton_max_batch_size)
    meta["gate"] = asdict(job.gate)
    write_meta(tmp, meta)
    shutil.rmtree(job.out_dir, ignore_errors=True)
    tmp.rename(job.out_dir)
    log.info("bundle -> %s", job.out_dir)
    return meta
