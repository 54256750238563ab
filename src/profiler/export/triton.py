"""A Triton Inference Server model repository for the bundle's ONNX graph(s).

Triton runs the graph only: tokenization (with the context turns), thresholds and exclusive
decoding live in the bundle's runtime (``profiler.export.runtime`` + ``Predictor``), so a Triton
deployment puts that pre/post-processing in its client or in an ensemble/Python backend.
Dynamic batching needs requests of one sequence length (pad client-side to a few bucket widths).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

_TEMPLATE = """name: "{name}"
backend: "onnxruntime"
max_batch_size: {max_batch}
{inputs}
output [
  {{ name: "probabilities" data_type: TYPE_FP32 dims: [ {labels} ] }}{logits}
]
dynamic_batching {{
  max_queue_delay_microseconds: 2000
}}
instance_group [ {{ kind: KIND_AUTO }} ]
"""


def write_triton_repo(bundle_dir: Path, meta: dict, max_batch: int = 64) -> Path:
    root = bundle_dir / "triton"
    inputs = "input [\n" + ",\n".join(f'  {{ name: "{n}" data_type: TYPE_INT64 dims: [ -1 ] }}'
                                        for n in meta["inputs"]) + "\n]"
    logits = (f',\n  {{ name: "logits" data_type: TYPE_FP32 dims: [ {meta["num_labels"]} ] }}'
              if "logits" in meta["outputs"] else "")
    for variant, graph in meta["graphs"].items():
        name = f"profiler_{variant}"
        version = root / name / "1"
        version.mkdir(parents=True, exist_ok=True)
        target = version / "model.onnx"
        target.unlink(missing_ok=True)
        try:
            os.link(bundle_dir / graph, target)  # same bytes, no second copy on disk
        except OSError:
            shutil.copy2(bundle_dir / graph, target)
        (root / name / "config.pbtxt").write_text(_TEMPLATE.format(
            name=name, max_batch=max_batch, inputs=inputs, labels=meta["num_labels"], logits=logits))
    return root
