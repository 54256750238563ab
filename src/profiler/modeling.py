"""The turn tagger: a pre-trained encoder, a pooling step and one logit per tag.

A saved model is a self-describing directory that needs nothing else to load:

  config.json        the encoder's config plus problem_type="multi_label_classification",
                     id2label/label2id in taxonomy order, and a ``profiler`` block (taxonomy hash,
                     pooling, context settings, decision rules once tuned)
  model.safetensors  encoder + head weights (never pickled)
  tokenizer files    exactly the tokenizer used in training
  taxonomy.tsv       the label contract; its hash must equal the one in config.json
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model
from torch import nn
from transformers import AutoConfig, AutoModel, PreTrainedModel

from profiler.encoders.sources import load_base, load_tokenizer
from profiler.inputs import ContextConfig
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
POOLINGS = ("mean", "cls", "target_mean")


class ModelDirError(RuntimeError):
    """A model directory that cannot be trusted or does not fit what the caller expects."""


@dataclass(frozen=True)
class TaggerSettings:
    pooling: str = "mean"        # mean: all tokens (e5's pre-training); cls; target_mean: the target turn's tokens
    dropout: float = 0.1
    context: ContextConfig = field(default_factory=ContextConfig)
    base: str = ""               # where the encoder came from, for the record

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")


class TurnTagger(nn.Module):
    def __init__(self, encoder: PreTrainedModel, num_labels: int, settings: TaggerSettings):
        super().__init__()
        self.encoder, self.settings = encoder, settings
        self.dropout = nn.Dropout(settings.dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                target_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **kwargs).last_hidden_state
        return self.head(self.dropout(self.pool(hidden, attention_mask, target_mask)))

    def pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor, target_mask: torch.Tensor | None) -> torch.Tensor:
        if self.settings.pooling == "cls":
            return hidden[:, 0]
        mask = target_mask if self.settings.pooling == "target_mean" and target_mask is not None else attention_mask
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    # --- construction --------------------------------------------------------------------
    @classmethod
    def from_base(cls, base_dir: str | Path, taxonomy: Taxonomy, settings: TaggerSettings,
                  seed: int = 0) -> tuple[TurnTagger, Any]:
        encoder, tokenizer = load_base(base_dir)
        torch.manual_seed(seed)  # the head's init is part of a reproducible run
        return cls(encoder, len(taxonomy), settings), tokenizer

    # --- the self-describing directory ---------------------------------------------------
    def save(self, out_dir: str | Path, tokenizer, taxonomy: Taxonomy, extra: dict | None = None) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        config = self.encoder.config
        config.problem_type = "multi_label_classification"
        config.id2label = dict(enumerate(taxonomy.ids))
        config.label2id = {t: i for i, t in enumerate(taxonomy.ids)}
        config.profiler = {
            "format_version": FORMAT_VERSION, "taxonomy_version": taxonomy.version,
            "taxonomy_hash": taxonomy.hash, "pooling": self.settings.pooling, "dropout": self.settings.dropout,
            "context": asdict(self.settings.context), "base": self.settings.base, **(extra or {}),
        }
        config.save_pretrained(out)
        save_model(self, str(out / "model.safetensors"), metadata={"format": "pt", "taxonomy_hash": taxonomy.hash})
        tokenizer.save_pretrained(out)
        taxonomy.save(out / "taxonomy.tsv")
        return out

    @classmethod
    def load(cls, model_dir: str | Path, expected: Taxonomy | None = None) -> tuple[TurnTagger, Any, Taxonomy]:
        """Load a saved tagger; refuses a directory whose taxonomy does not match its own record
        (or the caller's ``expected`` taxonomy)."""
        model_dir = Path(model_dir)
        for name in ("config.json", "model.safetensors", "taxonomy.tsv"):
            if not (model_dir / name).is_file():
                raise ModelDirError(f"{model_dir}: {name} is missing; is this a profiler model directory?")
        meta = json.loads((model_dir / "config.json").read_text()).get("profiler")
        if not meta:
            raise ModelDirError(f"{model_dir}: config.json has no 'profiler' block; not a profiler model directory")
        taxonomy = Taxonomy.from_tsv(model_dir / "taxonomy.tsv")
        check_taxonomy(model_dir, meta, taxonomy, expected)
        config = AutoConfig.from_pretrained(model_dir, local_files_only=True)
        try:
            encoder = AutoModel.from_config(config, add_pooling_layer=False)
        except TypeError:
            encoder = AutoModel.from_config(config)
        settings = TaggerSettings(pooling=meta["pooling"], dropout=meta["dropout"],
                                  context=ContextConfig(**meta["context"]), base=meta.get("base", ""))
        model = cls(encoder, len(taxonomy), settings)
        missing, unexpected = load_model(model, str(model_dir / "model.safetensors"), strict=False)
        if missing or unexpected:
            raise ModelDirError(f"{model_dir}: weights do not fit the config (missing {missing[:5]}, "
                                f"unexpected {unexpected[:5]})")
        return model.eval(), load_tokenizer(model_dir), taxonomy


def check_taxonomy(model_dir: Path, meta: dict, taxonomy: Taxonomy, expected: Taxonomy | None) -> None:
    if taxonomy.hash != meta.get("taxonomy_hash"):
        raise ModelDirError(
            f"{model_dir}: taxonomy.tsv (hash {taxonomy.hash[:12]}) is not the taxonomy this model was trained "
            f"on (config.json records {str(meta.get('taxonomy_hash'))[:12]}). The file was edited or swapped; "
            f"restore it, or retrain/migrate the model for the new label set.")
    if expected is not None and expected.hash != taxonomy.hash:
        raise ModelDirError(
            f"{model_dir}: trained on taxonomy {taxonomy.version} ({taxonomy.hash[:12]}) but "
            f"{expected.version} ({expected.hash[:12]}) was asked for; tag ids/order differ, so its logits "
            f"would be read against the wrong tags.")


def truncate_layers(model: TurnTagger, num_layers: int) -> None:
    """Keep the lowest ``num_layers`` transformer layers (a 2x CPU speed-up at 6 of 12 layers)."""
    stack = getattr(getattr(model.encoder, "encoder", None), "layer", None)
    if not isinstance(stack, nn.ModuleList):
        raise ValueError(f"num_layers is supported for BERT-like encoders only, not {type(model.encoder).__name__}")
    if not 0 < num_layers <= len(stack):
        raise ValueError(f"num_layers={num_layers} but the encoder has {len(stack)} layers")
    model.encoder.encoder.layer = stack[:num_layers]
    model.encoder.config.num_hidden_layers = num_layers
