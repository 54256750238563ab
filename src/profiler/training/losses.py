"""Multi-label losses. All return sum over tags, mean over turns, and take an optional mask of
(turn, tag) pairs that count (pairs that were never annotated must not teach "absent").

Rare tags are the failure mode of multi-label training (peers' users report all-zero output for
them), hence pos_weight from train frequencies, focal loss and asymmetric loss (ASL).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _reduce(per_pair: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is not None:
        per_pair = per_pair * mask
    return per_pair.sum(dim=1).mean()


class BCELoss(nn.Module):
    def __init__(self, pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        pw = None if self.pos_weight is None else self.pos_weight.to(logits.dtype)
        return _reduce(F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pw, reduction="none"), mask)


class FocalLoss(nn.Module):
    """Lin et al. 2017: down-weights easy pairs by (1 - p_t)^gamma."""

    def __init__(self, gamma: float = 2.0, alpha: float | None = None):
        super().__init__()
        self.gamma, self.alpha = gamma, alpha

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        p_t = torch.exp(-bce)
        loss = (1 - p_t) ** self.gamma * bce
        if self.alpha is not None:
            loss = loss * (self.alpha * targets + (1 - self.alpha) * (1 - targets))
        return _reduce(loss, mask)


class AsymmetricLoss(nn.Module):
    """Ridnik et al. 2021 (ASL): focusing only on negatives (gamma_neg) plus a probability margin
    that discards very easy negatives, the usual multi-label imbalance (few positives per turn)."""

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05, eps: float = 1e-8):
        super().__init__()
        self.gamma_pos, self.gamma_neg, self.clip, self.eps = gamma_pos, gamma_neg, clip, eps

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        p = torch.sigmoid(logits.float())
        p_neg = (p - self.clip).clamp(min=0) if self.clip > 0 else p
        pos = targets * (1 - p) ** self.gamma_pos * torch.log(p.clamp(min=self.eps))
        neg = (1 - targets) * p_neg ** self.gamma_neg * torch.log((1 - p_neg).clamp(min=self.eps))
        return _reduce(-(pos + neg), mask)


@dataclass(frozen=True)
class LossSpec:
    name: str = "bce"                 # bce | bce_pos_weight | focal | asl
    pos_weight_max: float = 20.0      # clip of negatives/positives per tag
    pos_weight_power: float = 0.5     # soften the ratio: (neg/pos) ** power
    gamma: float = 2.0                # focal
    alpha: float | None = None        # focal
    gamma_pos: float = 0.0            # asl
    gamma_neg: float = 4.0            # asl
    clip: float = 0.05                # asl


def pos_weight_from_counts(positives: torch.Tensor, total: int | torch.Tensor, spec: LossSpec) -> torch.Tensor:
    """(negatives / positives) ** power, clipped to [1, pos_weight_max]; tags with no positive get the max.
    ``total``: turns, or per tag the turns annotated for it (partial labels)."""
    ratio = (total - positives).float() / positives.float().clamp(min=1)
    ratio = torch.where(positives > 0, ratio, torch.full_like(ratio, spec.pos_weight_max))
    return ratio.pow(spec.pos_weight_power).clamp(1.0, spec.pos_weight_max)


def build_loss(spec: LossSpec, positives: torch.Tensor | None = None,
               total: int | torch.Tensor = 0) -> nn.Module:
    if spec.name == "bce":
        return BCELoss()
    if spec.name == "bce_pos_weight":
        if positives is None:
            raise ValueError("bce_pos_weight needs the train label counts")
        return BCELoss(pos_weight_from_counts(positives, total, spec))
    if spec.name == "focal":
        return FocalLoss(spec.gamma, spec.alpha)
    if spec.name == "asl":
        return AsymmetricLoss(spec.gamma_pos, spec.gamma_neg, spec.clip)
    raise ValueError(f"unknown loss {spec.name!r}; expected bce, bce_pos_weight, focal or asl")


class WithLoss(nn.Module):
    """A tagger whose forward returns {"loss", "logits"}, as Hugging Face's Trainer wants it: for
    the benchmarks that compare our training loop with HF Trainer on the same model and loss."""

    def __init__(self, inner: nn.Module, loss_fn: nn.Module):
        super().__init__()
        self.inner, self.loss_fn = inner, loss_fn

    def forward(self, labels=None, label_mask=None, num_items_in_batch=None, **inputs) -> dict:
        logits = self.inner(**inputs).logits
        return {"loss": self.loss_fn(logits, labels, label_mask), "logits": logits}
