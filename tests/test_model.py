import json
import logging

import pytest
import torch

from profiler.data.turns import explode_dialogue
from profiler.encoders.sources import resolve_base
from profiler.inputs import ContextConfig, TurnCollator, TurnInputBuilder
from profiler.modeling import ModelDirError, TaggerSettings, TurnTagger
from profiler.synth.corpus import generate_corpus
from profiler.synth.generator import SynthConfig
from profiler.taxonomy import Taxonomy


@pytest.fixture(scope="module")
def tiny_tokenizer(cache_dir):
    from profiler.encoders.sources import load_tokenizer

    return load_tokenizer(resolve_base("tiny", cache_dir))


def as_batch(rows):
    return {k: [r[k] for r in rows] for k in rows[0]}


DIALOGUE = {"dialogue_id": "d", "turns": [
    {"speaker": "agent", "text": "您好，我是银行的理财经理小王，今天给您来电是想做个回访"},
    {"speaker": "customer", "text": "嗯你说"},
    {"speaker": "agent", "text": "我们最近有款三个月的理财，年化三点一，您要不要了解一下"},
    {"speaker": "customer", "text": "收益还可以吧，我先看看"},
    {"speaker": "agent", "text": "这张卡是您自己在管吗？"},
    {"speaker": "customer", "text": "本人", "labels": ["basic.fund_owner.self"]},
]}


def test_truncation_drops_oldest_context_first_and_keeps_the_target(tiny_tokenizer):
    row = explode_dialogue(DIALOGUE, max_context_turns=5)[-1]
    builder = TurnInputBuilder(tiny_tokenizer, ContextConfig(max_turns=5, max_length=40))
    enc = builder(as_batch([row]))
    text = tiny_tokenizer.decode(enc["input_ids"][0]).replace(" ", "")
    assert len(enc["input_ids"][0]) <= 40
    assert text.endswith("[SEP]客户：本人[SEP]")
    assert "这张卡是您自己在管吗" in text            # the newest context turn survives
    assert "回访" not in text and "三点一" not in text  # the oldest ones went first
    assert builder.truncated_targets == 0


def test_a_target_longer_than_the_limit_is_truncated_and_counted(tiny_tokenizer, caplog):
    row = {"text": "我" * 100, "context_speakers": ["agent"], "context_texts": ["您好"]}
    builder = TurnInputBuilder(tiny_tokenizer, ContextConfig(max_turns=3, max_length=32))
    with caplog.at_level(logging.WARNING):
        enc = builder(as_batch([row, row]))
    assert [len(x) for x in enc["input_ids"]] == [32, 32]
    assert builder.truncated_targets == 2 and "longer than max_length=32" in caplog.text
    assert sum(enc["target_mask"][0]) == 30  # everything but [CLS]/[SEP] is target


def test_context_changes_the_input_of_context_dependent_turns(tiny_tokenizer, taxonomy):
    corpus = generate_corpus(taxonomy, SynthConfig(per_tag={"train": 2}))
    rows, flags = [], []
    for dialogue, turns in corpus["train"][:40]:
        customer = [t for t in turns if t.speaker == "customer"]
        for row, turn in zip(explode_dialogue(dialogue, 3), customer):
            rows.append(row)
            flags.append(turn.context_dependent)
    k0 = TurnInputBuilder(tiny_tokenizer, ContextConfig(max_turns=0))(as_batch(rows))
    k3 = TurnInputBuilder(tiny_tokenizer, ContextConfig(max_turns=3))(as_batch(rows))
    dependent = [i for i, f in enumerate(flags) if f]
    assert len(dependent) >= 10
    for i in dependent:
        assert k0["input_ids"][i] != k3["input_ids"][i]
        assert len(k3["input_ids"][i]) > len(k0["input_ids"][i])
        plain = tiny_tokenizer("客户：" + rows[i]["text"])["input_ids"]
        assert k0["input_ids"][i] == plain  # k=0 is exactly the turn alone
        # the target is marked identically in both layouts
        target_k0 = [t for t, m in zip(k0["input_ids"][i], k0["target_mask"][i]) if m]
        target_k3 = [t for t, m in zip(k3["input_ids"][i], k3["target_mask"][i]) if m]
        assert target_k0 == target_k3


def test_collator_pads_dynamically_to_the_longest_in_batch(tiny_tokenizer):
    rows = [{"text": t, "context_speakers": [], "context_texts": []} for t in ("好", "我想问一下收益多少", "嗯嗯")]
    enc = TurnInputBuilder(tiny_tokenizer, ContextConfig(max_turns=0, max_length=128))(as_batch(rows))
    collate = TurnCollator(tiny_tokenizer)
    features = [{k: enc[k][i] for k in enc} for i in range(3)]
    full, short = collate(features), collate([features[0], features[2]])
    assert full["input_ids"].shape == (3, max(len(x) for x in enc["input_ids"]))
    assert short["input_ids"].shape[1] == max(len(enc["input_ids"][0]), len(enc["input_ids"][2])) < 128
    assert full["target_mask"].shape == full["input_ids"].shape
    assert full["attention_mask"][0].sum() == len(enc["input_ids"][0])


@pytest.fixture(scope="module")
def context_batch(taxonomy):
    corpus = generate_corpus(taxonomy, SynthConfig(per_tag={"test": 1}))
    rows = [r for d, _ in corpus["test"][:6] for r in explode_dialogue(d, 3)]
    return as_batch(rows[:12])


@pytest.mark.parametrize("source", ["tiny", "local", pytest.param("e5-small", marks=pytest.mark.slow)])
@pytest.mark.parametrize("pooling", ["mean", "target_mean"])
def test_forward_save_reload_gives_identical_logits(source, pooling, cache_dir, local_bert_dir, taxonomy,
                                                    context_batch, tmp_path):
    base = resolve_base(str(local_bert_dir) if source == "local" else source, cache_dir)
    settings = TaggerSettings(pooling=pooling, context=ContextConfig(max_turns=3, max_length=96), base=source)
    model, tokenizer = TurnTagger.from_base(base, taxonomy, settings)
    enc = TurnInputBuilder(tokenizer, settings.context, taxonomy)(context_batch)
    batch = TurnCollator(tokenizer)([{k: enc[k][i] for k in enc} for i in range(len(enc["input_ids"]))])
    assert batch.pop("labels").shape == (12, 95)
    assert batch.pop("label_mask").min() == 1.0  # no annotation field: every pair annotated
    with torch.inference_mode():
        logits = model.eval()(**batch).logits
    assert logits.shape == (12, len(taxonomy))
    model.save(tmp_path, tokenizer, taxonomy)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert [config["id2label"][str(i)] for i in range(95)] == list(taxonomy.ids)
    assert config["profiler"]["taxonomy_hash"] == taxonomy.hash
    assert config["profiler"]["context"]["max_turns"] == 3 and config["profiler"]["pooling"] == pooling
    loaded, tok2, tax2 = TurnTagger.load(tmp_path, expected=taxonomy)
    with torch.inference_mode():
        again = loaded(**batch).logits
    assert torch.equal(logits, again)
    assert tax2.hash == taxonomy.hash and loaded.settings == settings
    assert tok2(context_batch["text"][0])["input_ids"] == tokenizer(context_batch["text"][0])["input_ids"]


@pytest.fixture()
def saved_tiny(cache_dir, taxonomy, tmp_path):
    model, tokenizer = TurnTagger.from_base(resolve_base("tiny", cache_dir), taxonomy, TaggerSettings())
    return model.save(tmp_path / "model", tokenizer, taxonomy)


def test_loading_refuses_a_swapped_taxonomy_file(saved_tiny):
    path = saved_tiny / "taxonomy.tsv"
    path.write_text(path.read_text().replace("basic.funds.idle\t", "basic.funds.spare\t"))
    with pytest.raises(ModelDirError, match="not the taxonomy this model was trained on"):
        TurnTagger.load(saved_tiny)


def test_loading_refuses_a_model_of_another_label_set(saved_tiny, taxonomy):
    other = Taxonomy.from_text(taxonomy.to_tsv().replace("#version=v1", "#version=v9").replace(
        "voice.question.branch\t", "voice.question.atm\t"))
    with pytest.raises(ModelDirError, match="was asked for"):
        TurnTagger.load(saved_tiny, expected=other)


def test_loading_a_directory_that_is_not_a_model_says_so(tmp_path):
    with pytest.raises(ModelDirError, match="config.json is missing"):
        TurnTagger.load(tmp_path)


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="pooling"):
        TaggerSettings(pooling="max")
