"""Torch model directory -> ONNX export bundle (see ``runtime`` for the layout)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from profiler.export.fusion import fuse_for_ort
from profiler.export.runtime import BUNDLE_FORMAT, BUNDLE_VERSION, GRAPHS
from profiler.modeling import TurnTagger
from profiler.scoring import MODEL_INPUTS

log = logging.getLogger(__name__)


class _Graph(torch.nn.Module):
    """Positional inputs -> probabilities (and logits): the signature ONNX and Triton want."""

    def __init__(self, tagger: TurnTagger, names: list[str], with_logits: bool):
        super().__init__()
        self.tagger, self.names, self.with_logits = tagger, names, with_logits

    def forward(self, *inputs: torch.Tensor):
        logits = self.tagger(**dict(zip(self.names, inputs))).logits
        probs = torch.sigmoid(logits)
        return (probs, logits) if self.with_logits else probs


def input_names(tokenizer) -> list[str]:
    sample = tokenizer("客户：好的", "经理：您好")
    return [n for n in MODEL_INPUTS if n in sample or n == "target_mask"]


def export_graph(model_dir: Path, out_dir: Path, opset: int = 18, with_logits: bool = False,
                 ort_fusions: bool = True) -> dict:
    """Write model.onnx + tokenizer + contract files into ``out_dir``; returns the bundle metadata.
    ``ort_fusions``: rewrite the graph with ONNX Runtime's fused ops (see ``fusion``)."""
    model, tokenizer, taxonomy = TurnTagger.load(model_dir)
    names = input_names(tokenizer)
    outputs = ["probabilities", "logits"] if with_logits else ["probabilities"]
    # two rows of different lengths: a batch of 1 would let the exporter specialise the batch axis
    example = tokenizer(["经理：您好，请问您平时理财吗", "经理：喂"], ["客户：好的", "客户：你说吧我听着"],
                        return_tensors="pt", padding=True)
    example["target_mask"] = (example["token_type_ids"] if "token_type_ids" in example
                              else torch.ones_like(example["input_ids"]))
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("onnx_ir", "onnxscript"):  # one INFO line per folded constant / deduplicated initializer
        logging.getLogger(name).setLevel(logging.WARNING)
    # the dynamo exporter (torch.export): the TorchScript one is deprecated
    torch.onnx.export(_Graph(model, names, with_logits).eval(), tuple(example[n] for n in names),
                      str(out_dir / GRAPHS["fp32"]), input_names=names, output_names=outputs,
                      dynamic_shapes=(tuple({0: batch, 1: sequence} for _ in names),), opset_version=opset,
                      dynamo=True, external_data=False, verbose=False)
    fused = fuse_for_ort(out_dir / GRAPHS["fp32"]) if ort_fusions else {}
    tokenizer.save_pretrained(out_dir)
    for name in ("taxonomy.tsv", "decision.json"):
        shutil.copy2(model_dir / name, out_dir / name)
    config = json.loads((model_dir / "config.json").read_text())
    meta = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "model_name": model_dir.name,
            "source_model_dir": str(model_dir), "base": config["profiler"].get("base"),
            "taxonomy_version": taxonomy.version, "taxonomy_hash": taxonomy.hash,
            "context": config["profiler"]["context"], "pooling": config["profiler"]["pooling"],
            "inputs": names, "outputs": outputs, "opset": opset, "num_labels": len(taxonomy),
            "ort_fusions": fused, "graphs": {"fp32": GRAPHS["fp32"]}}
    write_meta(out_dir, meta)
    log.info("exported %s -> %s (inputs %s)", model_dir, out_dir / GRAPHS["fp32"], names)
    return meta


def write_meta(out_dir: Path, meta: dict) -> None:
    (out_dir / "bundle.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
