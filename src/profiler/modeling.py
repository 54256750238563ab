"""The turn tagger: a pre-trained encoder, a pooling step and one logit per tag, as a Hugging Face
``PreTrainedModel`` (``TurnTagger``, config ``ProfilerTaggerConfig``, model_type "profiler-tagger").

A saved model is a self-describing directory that needs nothing else to load:

  config.json        ProfilerTaggerConfig: architectures=["TurnTagger"], problem_type
                     "multi_label_classification", id2label/label2id in taxonomy order, the encoder's
                     config under ``encoder`` and the ``profiler`` block (taxonomy hash, pooling, context
                     settings, decision file, ...)
  model.safetensors  encoder.* (the base model prefix) + head.* (never pickled)
  tokenizer files    exactly the tokenizer used in training
  taxonomy.tsv       the label contract; its hash must equal the one in config.json

After ``import profiler`` the HF Auto classes open it (see ``profiler.hf_auto``): no remote code.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_model
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers.initialization import no_init_weights
from transformers.modeling_outputs import SequenceClassifierOutput

from profiler.encoders.sources import load_base, load_tokenizer
from profiler.inputs import ContextConfig
from profiler.tagger_config import DECISION_FILE, FORMAT_VERSION, MODEL_TYPE, ProfilerTaggerConfig
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)

POOLINGS = ("mean", "cls", "target_mean")


class ModelDirError(RuntimeError):
    """A model directory that cannot be trusted or does not fit what the caller expects."""


@dataclass(frozen=True)
class TaggerSettings:
    pooling: str = "target_mean" # target_mean: the target turn's tokens; mean: all tokens (e5's pre-training); cls
    dropout: float = 0.1
    context: ContextConfig = field(default_factory=ContextConfig)
    base: str = ""               # where the encoder came from, for the record

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")

    @classmethod
    def from_config(cls, config: ProfilerTaggerConfig) -> TaggerSettings:
        p = config.profiler or {}
        return cls(pooling=p.get("pooling", "mean"), dropout=p.get("dropout", 0.1),
                   context=ContextConfig(**p.get("context", {})), base=p.get("base", ""))


def special_token_ids(tokenizer) -> list[int]:
    """The ids the tokenizer adds around turns ([CLS]/[SEP], <s>/</s>, padding): never part of a turn."""
    ids = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id,
           tokenizer.pad_token_id}
    return sorted(i for i in ids - {None, tokenizer.unk_token_id})


def build_encoder(config) -> PreTrainedModel:
    try:  # the pooler is unused (we pool ourselves); not every architecture takes this argument
        return AutoModel.from_config(config, add_pooling_layer=False)
    except TypeError:
        return AutoModel.from_config(config)


class TurnTagger(PreTrainedModel):
    config_class = ProfilerTaggerConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    _supports_sdpa = True   # attention is the encoder's own; these only let HF pass its choice through
    _supports_flash_attn = True
    _supports_flex_attn = True

    def __init__(self, config: ProfilerTaggerConfig, encoder: PreTrainedModel | None = None):
        super().__init__(config)
        self.encoder = encoder if encoder is not None else build_encoder(config.encoder)
        config.encoder = self.encoder.config  # one object: truncate_layers' edits are what gets saved
        self.settings = TaggerSettings.from_config(config)
        self.dropout = nn.Dropout(self.settings.dropout)
        self.head = nn.Linear(self.encoder.config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                target_mask: torch.Tensor | None = None, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs: Any) -> SequenceClassifierOutput:
        """``target_mask`` marks the target turn's tokens (``TurnInputBuilder`` makes it); without one
        the whole input is the target turn (every token but the special ones)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        logits = self.head(self.dropout(self.pool(hidden, input_ids, attention_mask, target_mask)))
        loss = None
        if labels is not None:  # multi-label: one sigmoid per tag (training uses its own masked losses)
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def pool(self, hidden: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             target_mask: torch.Tensor | None) -> torch.Tensor:
        if self.settings.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask
        if self.settings.pooling == "target_mean":
            mask = target_mask if target_mask is not None else self.whole_input_mask(input_ids, attention_mask)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def whole_input_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # exactly the target mask TurnInputBuilder gives a turn encoded with no context
        special = torch.tensor(self.config.special_token_ids, dtype=input_ids.dtype, device=input_ids.device)
        return attention_mask * ~torch.isin(input_ids, special)

    # --- construction --------------------------------------------------------------------
    @classmethod
    def build(cls, encoder: PreTrainedModel, taxonomy: Taxonomy, settings: TaggerSettings, tokenizer,
              seed: int = 0) -> TurnTagger:
        """A pre-trained encoder with a fresh head for ``taxonomy``."""
        attn = encoder.config._attn_implementation
        config = ProfilerTaggerConfig(
            encoder=encoder.config, problem_type="multi_label_classification",
            id2label=dict(enumerate(taxonomy.ids)), label2id={t: i for i, t in enumerate(taxonomy.ids)},
            profiler=settings_block(settings, tokenizer))
        config._attn_implementation = attn  # a new parent config resets its sub-configs' choice to None
        with no_init_weights():  # post_init would re-initialise the pre-trained encoder
            model = cls(config, encoder=encoder)
        torch.manual_seed(seed)  # the head's init is part of a reproducible run
        model.head.reset_parameters()
        return model

    @classmethod
    def from_base(cls, base_dir: str | Path, taxonomy: Taxonomy, settings: TaggerSettings,
                  seed: int = 0) -> tuple[TurnTagger, Any]:
        encoder, tokenizer = load_base(base_dir)
        return cls.build(encoder, taxonomy, settings, tokenizer, seed), tokenizer

    # --- the self-describing directory ---------------------------------------------------
    def save(self, out_dir: str | Path, tokenizer, taxonomy: Taxonomy, extra: dict | None = None) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        config = self.config
        config.problem_type = "multi_label_classification"
        config.id2label = dict(enumerate(taxonomy.ids))
        config.label2id = {t: i for i, t in enumerate(taxonomy.ids)}
        config.architectures = [type(self).__name__]
        config.profiler = {**settings_block(self.settings, tokenizer), "taxonomy_version": taxonomy.version,
                           "taxonomy_hash": taxonomy.hash, "decision": DECISION_FILE, **(extra or {})}
        config.save_pretrained(out)
        save_model(self, str(out / "model.safetensors"), metadata={"format": "pt", "taxonomy_hash": taxonomy.hash})
        tokenizer.save_pretrained(out)
        taxonomy.save(out / "taxonomy.tsv")
        return out

    @classmethod
    def load(cls, model_dir: str | Path, expected: Taxonomy | None = None) -> tuple[TurnTagger, Any, Taxonomy]:
        """Load a saved tagger; refuses a directory whose taxonomy does not match its own record
        (or the caller's ``expected`` taxonomy). A format-1 directory is converted in memory."""
        from profiler.model_upgrade import read_config

        model_dir = Path(model_dir)
        for name in ("config.json", "model.safetensors", "taxonomy.tsv"):
            if not (model_dir / name).is_file():
                raise ModelDirError(f"{model_dir}: {name} is missing; is this a profiler model directory?")
        meta = json.loads((model_dir / "config.json").read_text()).get("profiler")
        if not meta:
            raise ModelDirError(f"{model_dir}: config.json has no 'profiler' block; not a profiler model directory")
        taxonomy = Taxonomy.from_tsv(model_dir / "taxonomy.tsv")
        check_taxonomy(model_dir, meta, taxonomy, expected)
        model, info = cls.from_pretrained(model_dir, config=read_config(model_dir), local_files_only=True,
                                          use_safetensors=True, dtype=torch.float32, output_loading_info=True)
        if info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]:
            raise ModelDirError(f"{model_dir}: weights do not fit the config (missing {sorted(info['missing_keys'])[:5]}, "
                                f"unexpected {sorted(info['unexpected_keys'])[:5]}, "
                                f"mismatched {sorted(info['mismatched_keys'])[:5]})")
        return model.eval(), load_tokenizer(model_dir), taxonomy


def settings_block(settings: TaggerSettings, tokenizer) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "kind": "encoder", "pooling": settings.pooling,
            "dropout": settings.dropout, "context": asdict(settings.context), "base": settings.base,
            "special_token_ids": special_token_ids(tokenizer)}


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


__all__ = ["MODEL_TYPE", "ModelDirError", "TaggerSettings", "TurnTagger", "check_taxonomy", "truncate_layers"]
