"""AdamW with plain or layer-wise learning rates, and an optional frozen embedding layer."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

_LAYER = re.compile(r"\.layers?\.(\d+)\.")


@dataclass(frozen=True)
class OptimSpec:
    lr: float = 5e-5                  # encoder learning rate (top layer when layer_decay < 1)
    head_lr: float = 1e-3             # the freshly initialised head learns faster
    weight_decay: float = 0.01
    layer_decay: float = 1.0          # 1.0 = plain; e.g. 0.8: each layer down gets 0.8x the lr above
    warmup_ratio: float = 0.06
    schedule: str = "linear"          # linear | cosine (transformers.get_scheduler names)
    freeze_embeddings: bool = False   # a big CPU speed-up: the embedding matrix is most of e5's parameters
    freeze_layers: int = 0            # also freeze the lowest N transformer layers (keeps pre-trained
                                      # semantics; backward only runs through the layers above)


def layer_depth(name: str, n_layers: int) -> int:
    """0 for embeddings, i+1 for encoder layer i, n_layers+1 for everything above (head, pooler)."""
    if "embeddings" in name:
        return 0
    match = _LAYER.search(name)
    return int(match.group(1)) + 1 if match else n_layers + 1


def build_optimizer(model: torch.nn.Module, spec: OptimSpec) -> torch.optim.Optimizer:
    n_layers = model.encoder.config.num_hidden_layers
    if spec.freeze_embeddings or spec.freeze_layers:
        for p in model.encoder.get_input_embeddings().parameters():
            p.requires_grad_(False)
    if spec.freeze_layers:
        for name, p in model.named_parameters():
            if not name.startswith("head.") and layer_depth(name, n_layers) <= spec.freeze_layers:
                p.requires_grad_(False)
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if name.startswith("head."):
            lr = spec.head_lr
        else:
            lr = spec.lr * spec.layer_decay ** (n_layers - min(layer_depth(name, n_layers), n_layers))
        decay = 0.0 if param.ndim == 1 else spec.weight_decay  # no decay on biases and LayerNorm
        groups.setdefault((lr, decay), []).append(param)
    return torch.optim.AdamW([{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()])
