"""Token-budget batching: the main inference speed lever on CPU and GPU alike.

Turns are sorted by length (longest first) and packed so that ``batch size × longest length``
stays within ``max_tokens``: short turns travel in big batches, long ones in small batches, and
padding (wasted compute) stays near zero. Callers restore the original order afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def token_budget_batches(lengths: Sequence[int], max_tokens: int, max_batch_size: int) -> list[np.ndarray]:
    """Index arrays into ``lengths``; each batch's padded size (rows × its longest row) ≤ max_tokens
    (a single row longer than the budget still forms a batch of one)."""
    if max_tokens < 1 or max_batch_size < 1:
        raise ValueError(f"max_tokens and max_batch_size must be ≥ 1, got {max_tokens}, {max_batch_size}")
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = int(lengths[order[start]])  # sorted descending: the first row is the widest
        size = max(1, min(max_batch_size, max_tokens // max(longest, 1)))
        batches.append(order[start:start + size])
        start += size
    return batches
