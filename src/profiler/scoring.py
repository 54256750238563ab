"""Turn scoring with a trained encoder: the one forward path shared by training-time evaluation,
``profiler-eval`` and ``profiler-predict``."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable

import numpy as np
import torch

from profiler.batching import token_budget_batches
from profiler.inputs import TurnCollator
from profiler.progress import Progress

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "target_mask")
PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


@torch.inference_mode()
def forward_probs(model: torch.nn.Module, batches: Iterable[dict], precision: str = "fp32") -> Iterable[torch.Tensor]:
    """Sigmoid probabilities per batch (multi-label: never softmax), in fp32 whatever the precision."""
    model.eval()
    for batch in batches:
        inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
        device = inputs["input_ids"].device
        dtype = PRECISIONS[precision]
        cast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with cast:
            logits = model(**inputs).logits
        yield torch.sigmoid(logits.float())


def score_features(forward: Callable[[Iterable[dict]], Iterable], tokenizer, features: dict[str, list],
                   n_tags: int, max_tokens: int = 8192, max_batch_size: int = 256,
                   device: torch.device | str = "cpu", progress: str | None = None) -> np.ndarray:
    """Probabilities [turns, tags] in the order of ``features`` (columns from ``TurnInputBuilder``).

    Batches are packed by token budget over length-sorted turns, and the order restored. ``forward``
    maps padded batches to probabilities: the torch model (``forward_probs``) or an ONNX Runtime
    session (``profiler.export.runtime``), so both backends share everything else. ``progress``:
    the label of a progress bar over the turns (None: silent).
    """
    n = len(features["input_ids"])
    out = np.empty((n, n_tags), dtype=np.float32)
    if n == 0:
        return out
    batches = token_budget_batches([len(x) for x in features["input_ids"]], max_tokens, max_batch_size)
    collate = TurnCollator(tokenizer)
    columns = [c for c in MODEL_INPUTS if c in features]

    def tensors():
        for idx in batches:
            rows = [{c: features[c][i] for c in columns} for i in idx]
            yield {k: v.to(device) for k, v in collate(rows).items()}

    with Progress(progress, n) as bar:
        for idx, probs in zip(batches, forward(tensors())):
            out[idx] = probs.cpu().numpy() if isinstance(probs, torch.Tensor) else probs
            bar.update(len(idx))
    return out


def torch_forward(model: torch.nn.Module, precision: str = "fp32") -> Callable[[Iterable[dict]], Iterable]:
    return functools.partial(forward_probs, model, precision=precision)
