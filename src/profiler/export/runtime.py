"""The ONNX Runtime side of an export bundle: everything a serving process needs, nothing from
training. A bundle directory holds:

  model.onnx / model.int8.onnx   the graph: token ids + masks -> per-tag probabilities (and logits if asked)
  tokenizer files                the exact tokenizer used in training
  taxonomy.tsv, decision.json    the label contract and the tuned thresholds + exclusive decoding
  decision.int8.json             the same rule re-tuned on dev for the int8 graph (its probabilities differ)
  bundle.json                    format, taxonomy hash, context settings, graph inputs/outputs, gate results
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from profiler.decision import DecisionRule
from profiler.encoders.sources import load_tokenizer
from profiler.inputs import ContextConfig
from profiler.modeling import ModelDirError
from profiler.taxonomy import Taxonomy

BUNDLE_FORMAT = "profiler-onnx-bundle"
BUNDLE_VERSION = 1
GRAPHS = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
DECISIONS = {"fp32": "decision.json", "int8": "decision.int8.json"}


class OnnxModel:
    """An ONNX Runtime session that maps padded batches to probabilities (see ``scoring.score_features``)."""

    def __init__(self, graph: Path | bytes, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or int(os.environ.get("OMP_NUM_THREADS", 0))
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(graph if isinstance(graph, bytes) else str(graph), options,
                                            providers=providers)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def feeds(self, batch: dict) -> dict[str, np.ndarray]:
        return {name: batch[name].cpu().numpy().astype(np.int64) for name in self.inputs}

    def forward(self, batches: Iterable[dict]) -> Iterable[np.ndarray]:
        for batch in batches:
            yield self.session.run(["probabilities"], self.feeds(batch))[0]


def read_bundle_meta(bundle_dir: Path) -> dict:
    path = bundle_dir / "bundle.json"
    if not path.is_file():
        raise ModelDirError(f"{bundle_dir}: bundle.json is missing; is this an export bundle (profiler-export)?")
    meta = json.loads(path.read_text())
    if meta.get("format") != BUNDLE_FORMAT or meta.get("version") != BUNDLE_VERSION:
        raise ModelDirError(f"{path}: not a {BUNDLE_FORMAT} v{BUNDLE_VERSION} (got {meta.get('format')} "
                            f"v{meta.get('version')})")
    return meta


def load_bundle(bundle_dir: str | Path, variant: str = "fp32", expected: Taxonomy | None = None,
                threads: int | None = None) -> tuple:
    """(kind, model, taxonomy, rule, context, tokenizer): the arguments of ``Predictor``."""
    bundle_dir = Path(bundle_dir)
    meta = read_bundle_meta(bundle_dir)
    taxonomy = Taxonomy.of_model(bundle_dir)
    if taxonomy.hash != meta["taxonomy_hash"] or (expected is not None and expected.hash != taxonomy.hash):
        raise ModelDirError(f"{bundle_dir}: taxonomy.tsv (hash {taxonomy.hash[:12]}) does not match the bundle's "
                            f"record ({meta['taxonomy_hash'][:12]}) or the expected taxonomy")
    if variant not in GRAPHS or not (bundle_dir / GRAPHS[variant]).is_file():
        raise ModelDirError(f"{bundle_dir}: no {variant} graph in this bundle (have: "
                            f"{[v for v, f in GRAPHS.items() if (bundle_dir / f).is_file()]})")
    model = OnnxModel(bundle_dir / GRAPHS[variant], threads)
    rule = DecisionRule.load(bundle_dir, taxonomy, _decision_file(bundle_dir, variant))
    return ("onnx", model, taxonomy, rule, ContextConfig(**meta["context"]), load_tokenizer(bundle_dir))


def _decision_file(bundle_dir: Path, variant: str) -> str:
    """A graph's own thresholds when the bundle has them; bundles from before per-graph tuning do not."""
    return DECISIONS[variant] if (bundle_dir / DECISIONS[variant]).is_file() else DECISIONS["fp32"]
