"""CLI comfort: a missing or out-of-range setting is one line and exit code 2; --help explains each
key and lists only the config groups the tool reads."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from profiler.cli.hydra_app import UsageError, check_config, help_text

HYDRA_TOOLS = ["synth", "validate", "prepare", "train", "predict", "eval", "export", "serve"]


def test_missing_required_value_names_the_key_and_what_it_wants(compose_cfg):
    cfg = compose_cfg("predict", ["input=calls/", "output=out/turns.jsonl"])
    with pytest.raises(UsageError) as err:
        check_config(cfg, "predict")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("model_dir is required") and "model directory" in message and "--help" in message


@pytest.mark.parametrize("config, override, key, allowed", [
    ("predict", "inference.backend=onx", "inference.backend", "torch, onnx"),
    ("eval", "inference.precision=fp8", "inference.precision", "fp32, fp16, bf16"),
    ("serve", "variant=int4", "variant", "fp32, int8"),
    ("export", "format=tflite", "format", "onnx, int8, card"),
    ("train", "model.pooling=max", "model.pooling", "mean, cls, target_mean"),
])
def test_bad_enum_value_is_one_line_with_the_allowed_values(compose_cfg, config, override, key, allowed):
    required = {"predict": ["model_dir=m", "input=i", "output=o"], "eval": ["model_dir=m", "input=i"],
                "serve": ["bundle=b"], "export": ["model_dir=m"], "train": []}[config]
    cfg = compose_cfg(config, [*required, override])
    with pytest.raises(UsageError) as err:
        check_config(cfg, config)
    value = override.split("=", 1)[1]
    assert str(err.value) == f"{key}: {value!r} is not one of {allowed}"


@pytest.mark.parametrize("config", ["predict", "eval", "serve", "export", "train"])
def test_defaults_pass_the_checks(compose_cfg, config):
    required = {"predict": ["model_dir=m", "input=i", "output=o"], "eval": ["model_dir=m", "input=i"],
                "serve": ["bundle=b"], "export": ["model_dir=m"], "train": []}[config]
    check_config(compose_cfg(config, required), config)  # raises on a default outside its own allowed set


def test_help_lists_only_the_groups_a_tool_reads():
    predict = help_text("predict")
    for foreign in ("model:", "optim:", "loss:", "trainer:", "taxonomy:", "experiment:"):
        assert foreign not in predict
    assert "inference:" in predict and "scores:" in predict and "backend: torch" in predict
    train = help_text("train")
    assert re.search(r"^  model: .*tiny.*\(default: e5_small\)$", train, re.M)
    assert "inference:" not in train and "v1_to_v2" not in train  # a migration map is not a taxonomy choice


@pytest.mark.parametrize("tool", HYDRA_TOOLS)
def test_help_explains_every_key(tool):
    text = help_text(tool)
    assert text.startswith(f"profiler-{tool}")
    # what --help shows as settings is valid YAML: the keys a user can override, nothing invented
    body = text.split("The settings, with their defaults:", 1)[1].split("\nConfig groups", 1)[0].split("\nHydra:")[0]
    assert isinstance(yaml.safe_load(body), dict)
    keys = [line for line in body.splitlines() if re.match(r"^\s*\w+:", line)]
    assert keys and all("#" in line for line in keys), [k for k in keys if "#" not in k]  # each key is explained


@pytest.mark.slow
def test_console_script_errors_are_one_line_and_exit_2(tmp_path):
    common = [f"paths.output_root={tmp_path}/outputs"]
    run = subprocess.run([sys.executable, "-m", "profiler.cli.predict", "input=x", "output=y", *common],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "profiler-predict: model_dir is required (any profiler model directory (encoder, tfidf or rules)): "
        "add model_dir=... (see profiler-predict --help)"]
    run = subprocess.run([sys.executable, "-m", "profiler.cli.eval", "model_dir=m", "input=i",
                          "inference.backend=onx", *common], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert (run.returncode, run.stderr.strip()) == (2, "profiler-eval: inference.backend: 'onx' is not one of torch, onnx")
    run = subprocess.run([sys.executable, "-m", "profiler.cli.predict", "--help"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0 and "inference:" in run.stdout and "optim:" not in run.stdout


def test_scoring_shows_a_bar_with_total_and_logs_progress(tiny_model_dir, small_corpus, capsys, caplog):
    import logging

    from profiler.data.labels import load_turns
    from profiler.predictor import Predictor

    predictor = Predictor.from_pretrained(tiny_model_dir)
    turns = load_turns(small_corpus / "dev.jsonl", predictor.taxonomy, predictor.context.max_turns)
    n = len(turns)
    with caplog.at_level(logging.INFO, logger="profiler.progress"):
        predictor.predict_proba(turns, progress="eval tiny")
    bar = capsys.readouterr().err
    assert f"eval tiny: 100%" in bar and f"{n}/{n}" in bar  # a total, hence a percentage and an ETA
    quarters = [r.getMessage() for r in caplog.records if "/" in r.getMessage()]
    assert len(quarters) == 4 and quarters[-1].startswith(f"eval tiny: {n}/{n} turns (100%)")
    caplog.clear()
    predictor.predict_proba(turns)  # no label: silent (training-time evaluation, the service)
    assert "%" not in capsys.readouterr().err and not caplog.records
