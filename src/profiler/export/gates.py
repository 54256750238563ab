"""Export gates: an exported graph ships only if it provably behaves like the torch model.

* Parity (fp32 ONNX vs torch): max |Δprobability| ≤ ``max_abs_diff`` and identical decided tag sets
  on ≥ ``min_label_agreement`` of the turns.
* int8 (dynamic quantization vs fp32 ONNX): dev macro-F1 may drop by at most ``max_f1_drop`` (in
  F1 points, i.e. 1.0 = 0.01); the per-tag table is logged either way, because a small macro drop can
  hide one tag that collapsed. Each graph is scored under its own decision rule, both tuned on dev by
  the same procedure: the fp32 thresholds sit exactly on dev's F1 optima, so scoring int8 with them
  charges int8 for any shift at all (fp32 logits plus N(0, 0.5) noise lost 3.2 points on dev that
  way, but 0.7 on test).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from profiler.metrics import apply_mask, headline, per_tag_f1
from profiler.predictor import Predictor

log = logging.getLogger(__name__)


class ExportGateError(RuntimeError):
    """The exported artefact does not match the model closely enough to be served."""


@dataclass(frozen=True)
class GateSpec:
    max_abs_diff: float = 1e-4
    min_label_agreement: float = 0.999
    max_f1_drop: float = 1.0          # F1 points


def parity(reference: Predictor, exported: Predictor, turns, spec: GateSpec) -> tuple[dict, np.ndarray]:
    """(result, the exported graph's raw probabilities on ``turns``, for the gates after this one).
    Raw, not calibrated: the later gates decide with thresholds, which read raw scores."""
    ref_p = reference.predict_proba(turns, progress="parity gate: torch")
    exp_p = exported.predict_proba(turns, progress="parity gate: onnx fp32")
    ref_d, exp_d = reference.rule.decide(ref_p), exported.rule.decide(exp_p)
    diff = float(np.abs(ref_p - exp_p).max()) if len(ref_p) else 0.0
    agree = float((ref_d == exp_d).all(axis=1).mean()) if len(ref_d) else 1.0
    result = {"turns": int(len(ref_p)), "max_abs_diff": diff, "label_agreement": agree,
              "passed": diff <= spec.max_abs_diff and agree >= spec.min_label_agreement,
              "thresholds": {"max_abs_diff": spec.max_abs_diff, "min_label_agreement": spec.min_label_agreement}}
    log.info("parity on %d turns: max |dp| %.2e, identical tag sets %.4f%% -> %s", result["turns"], diff,
             100 * agree, "pass" if result["passed"] else "FAIL")
    return result, exp_p


def f1_gate(truth: np.ndarray, fp32: np.ndarray, int8: np.ndarray, tags: list[str], spec: GateSpec,
            mask: np.ndarray | None = None) -> dict:
    """``fp32`` and ``int8``: each graph's decided tag matrix under its own dev-tuned decision rule;
    ``mask`` (True = annotated) keeps never-annotated pairs out of every count."""
    (truth, fp32), (_, int8) = apply_mask(truth, fp32, mask), apply_mask(truth, int8, mask)
    m32, m8 = headline(truth, fp32)["macro_f1"], headline(truth, int8)["macro_f1"]
    drop = 100 * (m32 - m8)
    f32, f8 = per_tag_f1(truth, fp32), per_tag_f1(truth, int8)
    support = truth.sum(axis=0)
    table = [{"tag": t, "support": int(s), "f1_fp32": float(a), "f1_int8": float(b), "delta": float(b - a)}
             for t, s, a, b in zip(tags, support, f32, f8) if s > 0]
    table.sort(key=lambda r: r["delta"])
    lines = [f"{'tag':45s} {'support':>7s} {'fp32':>6s} {'int8':>6s} {'delta':>7s}"]
    lines += [f"{r['tag']:45s} {r['support']:7d} {r['f1_fp32']:6.3f} {r['f1_int8']:6.3f} {r['delta']:+7.3f}"
              for r in table]
    log.info("int8 vs fp32 per tag (worst first):\n%s", "\n".join(lines))
    result = {"turns": int(len(truth)), "macro_f1_fp32": m32, "macro_f1_int8": m8, "drop_points": drop,
              "max_drop_points": spec.max_f1_drop, "passed": drop <= spec.max_f1_drop, "per_tag": table}
    log.info("int8 gate: macro-F1 %.4f -> %.4f (drop %.2f points, limit %.2f) -> %s", m32, m8, drop,
             spec.max_f1_drop, "pass" if result["passed"] else "FAIL")
    return result
