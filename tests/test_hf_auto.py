"""A saved tagger directory is a real Hugging Face model: the Auto classes and pipeline() open it
after ``import profiler`` (no remote code) and agree with the Predictor."""

import importlib.util
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, BertModel, pipeline

from profiler.data.turns import explode_dialogue
from profiler.encoders.sources import resolve_base
from profiler.inputs import ContextConfig, TurnCollator
from profiler.model_upgrade import main as upgrade_main
from profiler.model_upgrade import upgrade_model_dir
from profiler.modeling import TaggerSettings, TurnTagger
from profiler.predictor import TURN_COLUMNS, Predictor
from profiler.synth.corpus import generate_corpus
from profiler.synth.generator import SynthConfig
from profiler.tagger_config import MODEL_TYPE, ProfilerTaggerConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(cache_dir, taxonomy, tmp_path_factory) -> Path:
    """A tiny tagger pooling over the target turn (the shipped configs' pooling), with a head whose
    logits spread widely, so a wrong pooling or a lost weight shows in the scores."""
    settings = TaggerSettings(pooling="target_mean", context=ContextConfig(max_turns=3, max_length=96), base="tiny")
    model, tokenizer = TurnTagger.from_base(resolve_base("tiny", cache_dir), taxonomy, settings, seed=5)
    with torch.no_grad():
        model.head.weight.mul_(20.0)
    return model.save(tmp_path_factory.mktemp("hf") / "tagger", tokenizer, taxonomy)


@pytest.fixture(scope="module")
def turns(taxonomy) -> dict[str, list]:
    corpus = generate_corpus(taxonomy, SynthConfig(seed=11, per_tag={"test": 1}))
    rows = [r for d, _ in corpus["test"][:8] for r in explode_dialogue(d, 3)][:12]
    assert all(r["context_texts"] for r in rows)
    rows += [{**r, "context_speakers": [], "context_texts": []} for r in rows[:4]]  # turns read alone
    return {k: [r[k] for r in rows] for k in TURN_COLUMNS}


def encoded_batch(predictor: Predictor, turns: dict) -> dict[str, torch.Tensor]:
    features = predictor.builder(turns)
    n = len(features["input_ids"])
    return TurnCollator(predictor.tokenizer)([{k: features[k][i] for k in features} for i in range(n)])


def test_config_json_is_a_profiler_tagger_config(model_dir, taxonomy):
    raw = json.loads((model_dir / "config.json").read_text())
    assert raw["model_type"] == MODEL_TYPE and raw["architectures"] == ["TurnTagger"]
    assert raw["encoder"]["model_type"] == "bert" and raw["problem_type"] == "multi_label_classification"
    assert "auto_map" not in raw  # what would make transformers ask for remote code
    config = AutoConfig.from_pretrained(model_dir)
    assert isinstance(config, ProfilerTaggerConfig)
    assert [config.id2label[i] for i in range(len(taxonomy))] == list(taxonomy.ids)
    assert config.pooling == "target_mean" and config.context["max_turns"] == 3
    assert config.decision_file == "decision.json" and config.profiler["format_version"] == 2


def test_auto_model_for_sequence_classification_gives_the_predictor_logits(model_dir, turns):
    predictor = Predictor.from_pretrained(model_dir)
    hf, info = AutoModelForSequenceClassification.from_pretrained(model_dir, output_loading_info=True)
    assert isinstance(hf, TurnTagger) and not hf.training
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    batch = encoded_batch(predictor, turns)
    with torch.inference_mode():
        ours = predictor.model(**batch).logits
        theirs = hf(**batch).logits
    assert ours.std() > 0.5, "the head spreads the logits"
    assert (ours - theirs).abs().max() < 1e-5
    # and through the Predictor's own batching: probabilities of the same turns
    assert np.abs(predictor.predict_proba(turns) - torch.sigmoid(theirs).numpy()).max() < 1e-5


def test_target_mask_is_optional_and_changes_pooling_only_when_there_is_context(model_dir, turns):
    predictor = Predictor.from_pretrained(model_dir)
    batch = encoded_batch(predictor, turns)
    no_mask = {k: v for k, v in batch.items() if k != "target_mask"}
    with torch.inference_mode():
        with_mask, without = predictor.model(**batch).logits, predictor.model(**no_mask).logits
    alone = torch.tensor([not c for c in turns["context_texts"]])
    assert alone.any() and (~alone).any()
    assert (with_mask[alone] - without[alone]).abs().max() < 1e-5  # no context: the whole input is the turn
    assert (with_mask[~alone] - without[~alone]).abs().amax(dim=1).min() > 1e-3


def test_pipeline_scores_a_turn_as_the_predictor_does_without_context(model_dir, turns):
    predictor = Predictor.from_pretrained(model_dir)
    texts = turns["text"][:6]
    alone = {"text": texts, "context_speakers": [[] for _ in texts], "context_texts": [[] for _ in texts]}
    expected = predictor.predict_proba(alone)
    pipe = pipeline("text-classification", model=str(model_dir), function_to_apply="sigmoid", top_k=None)
    # the model reads a turn as "客户：<text>" (config.profiler.context.customer_marker)
    marker = AutoConfig.from_pretrained(model_dir).context["customer_marker"]
    outputs = pipe([marker + t for t in texts])
    assert len(outputs) == len(texts)
    for text, row, output in zip(texts, expected, outputs):
        scores = {d["label"]: d["score"] for d in output}
        assert len(scores) == len(predictor.taxonomy)
        got = np.array([scores[t] for t in predictor.taxonomy.ids])
        assert np.abs(got - row).max() < 1e-5, text


def test_auto_model_gives_the_fine_tuned_encoder(model_dir, turns):
    predictor = Predictor.from_pretrained(model_dir)
    encoder = AutoModel.from_pretrained(model_dir)
    assert type(encoder) is BertModel and encoder.pooler is None
    batch = encoded_batch(predictor, turns)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
    with torch.inference_mode():
        ours = predictor.model.encoder(**inputs).last_hidden_state
        theirs = encoder.eval()(**inputs).last_hidden_state
    assert torch.equal(ours, theirs)


@pytest.mark.slow  # a fresh interpreter (subprocess)
def test_import_profiler_alone_registers_the_auto_classes(model_dir):
    code = ("import sys, profiler; from transformers import AutoModelForSequenceClassification as A; "
            "m = A.from_pretrained(sys.argv[1]); print(type(m).__name__, m.config.model_type)")
    out = subprocess.run([sys.executable, "-c", code, str(model_dir)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["TurnTagger", MODEL_TYPE]


def write_format_1(model_dir: Path) -> None:
    """Rewrite config.json the way profiler < 0.2 saved it: the encoder's config with the task
    fields and the profiler block mixed in. The weights file was the same."""
    raw = json.loads((model_dir / "config.json").read_text())
    meta = {k: v for k, v in raw["profiler"].items() if k not in ("special_token_ids", "decision")}
    old = {**raw["encoder"], "architectures": ["BertModel"], "problem_type": raw["problem_type"],
           "id2label": raw["id2label"], "label2id": raw["label2id"], "profiler": {**meta, "format_version": 1}}
    (model_dir / "config.json").write_text(json.dumps(old, indent=2))


def test_old_directories_load_with_a_warning_and_convert_in_place(model_dir, turns, tmp_path, caplog):
    import shutil

    old = Path(shutil.copytree(model_dir, tmp_path / "old"))
    write_format_1(old)
    expected = Predictor.from_pretrained(model_dir).predict_proba(turns)
    with caplog.at_level(logging.WARNING, logger="profiler.model_upgrade"):
        probs = Predictor.from_pretrained(old).predict_proba(turns)
    assert "python -m profiler.model_upgrade" in caplog.text
    assert np.abs(probs - expected).max() < 1e-6
    assert type(AutoModelForSequenceClassification.from_pretrained(old)) is not TurnTagger  # why converting matters

    upgrade_main([str(old)])
    assert (old / "config.v1.json").is_file() and not upgrade_model_dir(old)  # converted once
    hf = AutoModelForSequenceClassification.from_pretrained(old)
    assert isinstance(hf, TurnTagger)
    predictor = Predictor.from_pretrained(model_dir)
    batch = encoded_batch(predictor, turns)
    with torch.inference_mode():
        assert (hf(**batch).logits - predictor.model(**batch).logits).abs().max() < 1e-5
    # the converted config carries what the saved one does, so "no target mask" pools the same way
    assert AutoConfig.from_pretrained(old).to_dict() == AutoConfig.from_pretrained(model_dir).to_dict() | {
        "_name_or_path": AutoConfig.from_pretrained(old).to_dict()["_name_or_path"]}


def test_bench_predict_baseline_opens_the_directory_with_the_auto_classes(model_dir, turns):
    spec = importlib.util.spec_from_file_location("bench_predict", REPO / "scripts" / "bench_predict.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    model, tokenizer = bench.hf_model(str(model_dir))
    assert isinstance(model, TurnTagger)
    predictor = Predictor.from_pretrained(model_dir)
    batch = encoded_batch(predictor, turns)
    with torch.inference_mode():
        assert (model(**batch).logits - predictor.model(**batch).logits).abs().max() < 1e-5
    assert "bert." not in (REPO / "scripts" / "bench_predict.py").read_text()  # no key remapping left
