"""One source of defaults: a dataclass built with no arguments (scripts, tests, library callers) must
behave like the tool run with its YAML defaults. These fail as soon as one side changes alone."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from profiler.encoders.sources import TinySpec
from profiler.inputs import ContextConfig
from profiler.modeling import TaggerSettings
from profiler.predict.output import ScoresSpec
from profiler.predictor import InferenceSettings
from profiler.training.data import DataSpec


def composed(config: str, *overrides: str) -> dict:
    with initialize_config_module("profiler.configs", version_base="1.3"):
        return OmegaConf.to_container(compose(config, overrides=list(overrides)), resolve=False)


def code_defaults(cls) -> dict:
    out = {}
    for f in fields(cls):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
            out[f.name] = asdict(value) if hasattr(value, "__dataclass_fields__") else value
    return out


@pytest.mark.parametrize("config", ["predict", "eval"])
def test_inference_defaults(config):
    assert code_defaults(InferenceSettings) == composed(config)["inference"]


@pytest.mark.parametrize("config", ["predict", "serve"])
def test_scores_defaults(config):
    assert code_defaults(ScoresSpec) == composed(config)["scores"]


def test_context_defaults():
    # the context group is what every model config starts from
    assert code_defaults(ContextConfig) == composed("train", "model=e5_small")["model"]["context"]
    assert code_defaults(ContextConfig) == composed("train", "model=tfidf")["model"]["context"]


def test_tiny_defaults():
    assert code_defaults(TinySpec) == composed("train", "model=tiny")["model"]["tiny"]


def test_data_defaults():
    data = composed("train")["data"]
    code = code_defaults(DataSpec)
    assert {k: code[k] for k in ("strict", "untagged_keep", "definition_copies")} == \
           {k: data[k] for k in ("strict", "untagged_keep", "definition_copies")}


def test_tagger_settings_defaults():
    model = composed("train", "model=e5_small")["model"]
    code = code_defaults(TaggerSettings)
    assert {"pooling": code["pooling"], "dropout": code["dropout"], "context": code["context"]} == \
           {"pooling": model["pooling"], "dropout": model["dropout"], "context": model["context"]}
