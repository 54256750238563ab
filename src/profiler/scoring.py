"""Turn scoring with a trained encoder: the one forward path shared by training-time evaluation,
``profiler-eval`` and prediction."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from datasets import Dataset

from profiler.inputs import TurnCollator

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "target_mask")


@torch.inference_mode()
def forward_probs(model: torch.nn.Module, batches: Iterable[dict]) -> Iterable[torch.Tensor]:
    """Sigmoid probabilities per batch (multi-label: never softmax)."""
    model.eval()
    for batch in batches:
        inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
        yield torch.sigmoid(model(**inputs).float())


def score_encoded(model: torch.nn.Module, tokenizer, encoded: Dataset, batch_size: int = 64,
                  device: torch.device | str = "cpu") -> np.ndarray:
    """Probabilities [turns, tags] in the dataset's order; batches are formed over length-sorted
    turns so padding stays small, and the order is restored afterwards."""
    lengths = np.asarray(encoded["length"]) if "length" in encoded.column_names else \
        np.asarray([len(x) for x in encoded["input_ids"]])
    order = np.argsort(-lengths, kind="stable")
    collate = TurnCollator(tokenizer)
    columns = [c for c in encoded.column_names if c in MODEL_INPUTS]
    rows = encoded.select_columns(columns)

    def batches():
        for i in range(0, len(order), batch_size):
            feats = rows.select(order[i:i + batch_size])
            yield {k: v.to(device) for k, v in collate(list(feats)).items()}

    out = np.empty((len(encoded), model.head.out_features), dtype=np.float32)
    start = 0
    for probs in forward_probs(model, batches()):
        idx = order[start:start + len(probs)]
        out[idx] = probs.cpu().numpy()
        start += len(probs)
    return out
