"""profiler-predict never mixes two runs, survives bad bytes and fatal errors, and says what it cut."""

import gzip
import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from profiler.cli.predict import predict
from profiler.faults import InjectedFault
from profiler.predict.runner import ResumeRefused

PREDICT = [sys.executable, "-m", "profiler.cli.predict"]


def rows(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def run(compose_cfg, model_dir, data, out, *extra):
    return predict(compose_cfg("predict", [f"model_dir={model_dir}", f"input={data}", f"output={out}",
                                           f"hydra.run.dir={out.parent}/hydra", "chunk_dialogues=4", *extra]))


@pytest.fixture()
def model_copy(tiny_model_dir, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(tiny_model_dir, out)
    return out


def change_weights(model_dir):
    """Retrained in place: same config.json, other weights."""
    weights = load_file(model_dir / "model.safetensors")
    head = next(k for k in weights if k.endswith("bias") and weights[k].numel() == 95)
    weights[head] = weights[head] + 0.5
    save_file(weights, str(model_dir / "model.safetensors"), metadata={"format": "pt"})


def test_a_fatal_error_midway_resumes_on_rerun_without_manual_cleanup(tiny_model_dir, small_corpus, compose_cfg,
                                                                        tmp_path, monkeypatch):
    data = small_corpus / "dev.jsonl"
    run(compose_cfg, tiny_model_dir, data, tmp_path / "ref" / "turns.jsonl")
    out = tmp_path / "run" / "turns.jsonl"
    monkeypatch.setenv("PROFILER_FAULT", "raise:2")
    with pytest.raises(InjectedFault):
        run(compose_cfg, tiny_model_dir, data, out)
    monkeypatch.delenv("PROFILER_FAULT")
    summary = run(compose_cfg, tiny_model_dir, data, out)
    assert out.read_bytes() == (tmp_path / "ref" / "turns.jsonl").read_bytes()
    assert 0 < summary["turns_scored_now"] < summary["turns"], "the three committed chunks were kept"


def test_resume_with_changed_weights_under_the_same_config_is_refused(model_copy, small_corpus, compose_cfg,
                                                                     tmp_path, monkeypatch):
    data, out = small_corpus / "dev.jsonl", tmp_path / "run" / "turns.jsonl"
    monkeypatch.setenv("PROFILER_FAULT", "raise:1")
    with pytest.raises(InjectedFault):
        run(compose_cfg, model_copy, data, out)
    monkeypatch.delenv("PROFILER_FAULT")
    change_weights(model_copy)
    with pytest.raises(ResumeRefused, match="model file model.safetensors"):
        run(compose_cfg, model_copy, data, out)
    # restart=true discards the stale parts: the output is wholly the new model's
    run(compose_cfg, model_copy, data, out, "restart=true")
    run(compose_cfg, model_copy, data, tmp_path / "fresh" / "turns.jsonl")
    assert out.read_bytes() == (tmp_path / "fresh" / "turns.jsonl").read_bytes()


@pytest.mark.parametrize("changed, expected", [
    ("inference.onnx_variant=int8", "inference.onnx_variant"),
    ("inference.max_tokens=999", "inference.max_tokens"),
    ("inference.max_batch_size=3", "inference.max_batch_size"),
    ("inference.backend=onnx", "inference.backend"),
])
def test_resume_with_other_inference_settings_is_refused_naming_them(tiny_model_dir, small_corpus, compose_cfg,
                                                                     tmp_path, monkeypatch, changed, expected):
    data, out = small_corpus / "dev.jsonl", tmp_path / "run" / "turns.jsonl"
    monkeypatch.setenv("PROFILER_FAULT", "raise:0")
    with pytest.raises(InjectedFault):
        run(compose_cfg, tiny_model_dir, data, out)
    monkeypatch.delenv("PROFILER_FAULT")
    with pytest.raises(ResumeRefused, match=expected.replace(".", r"\.")):
        run(compose_cfg, tiny_model_dir, data, out, changed)


def test_an_int8_decision_file_counts_as_part_of_the_model(model_copy):
    from profiler.predict.runner import PredictJob, fingerprint_changes

    job = PredictJob(model_copy, [], model_copy / "out.jsonl")
    before = job.fingerprint([])
    (model_copy / "decision.int8.json").write_text("{}")
    assert fingerprint_changes(before, job.fingerprint([])) == ["model file decision.int8.json"]


def test_bad_bytes_cost_one_line_and_gzip_input_gives_the_same_rows(tiny_model_dir, small_corpus, compose_cfg,
                                                                    tmp_path):
    good = (small_corpus / "dev.jsonl").read_bytes().splitlines(keepends=True)[:6]
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\xef\xbb\xbf" + good[0] + good[1] + "客户说：不需要\n".encode("gbk") + b"".join(good[2:]))
    summary = run(compose_cfg, tiny_model_dir, mixed, tmp_path / "a" / "turns.jsonl")
    errors = rows(tmp_path / "a" / "errors.jsonl")
    assert summary["dialogues"] == 6 and summary["rejected"] == 1
    assert [(e["line"], e["field"]) for e in errors] == [(3, "<encoding>")] and errors[0]["file"] == str(mixed)
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(b"".join(good))
    zipped = tmp_path / "zipped.jsonl.gz"
    zipped.write_bytes(gzip.compress(b"".join(good)))
    run(compose_cfg, tiny_model_dir, plain, tmp_path / "b" / "turns.jsonl")
    run(compose_cfg, tiny_model_dir, zipped, tmp_path / "c" / "turns.jsonl")
    assert (tmp_path / "c" / "turns.jsonl").read_bytes() == (tmp_path / "b" / "turns.jsonl").read_bytes() \
        == (tmp_path / "a" / "turns.jsonl").read_bytes()


def test_long_turns_are_flagged_truncated_and_line_separators_are_escaped(tiny_model_dir, compose_cfg, tmp_path):
    data = tmp_path / "in.jsonl"
    long_text = "我想了解一下理财产品的收益和风险，" * 20
    dialogue = {"dialogue_id": "d1", "turns": [{"speaker": "agent", "text": "您好"},
                                               {"speaker": "customer", "text": "好的\u2028谢谢\u0085再见\u2029"},
                                               {"speaker": "customer", "text": long_text}]}
    data.write_text(json.dumps(dialogue, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "o" / "turns.jsonl"
    run(compose_cfg, tiny_model_dir, data, out, "inference.max_length=32")
    raw = out.read_bytes()
    assert "\u2028".encode() not in raw and "\u0085".encode() not in raw and b"\\u2028" in raw
    assert len(raw.decode("utf-8").splitlines()) == 2   # every splitter sees two records
    short, cut = rows(out)
    assert short["text"] == "好的\u2028谢谢\u0085再见\u2029" and "truncated" not in short
    assert cut["truncated"] is True and cut["text"] == long_text


def test_profiles_mask_personal_numbers_unless_told_not_to(tiny_model_dir, compose_cfg, tmp_path):
    data = tmp_path / "in.jsonl"
    text = "不需要，别再打我手机13812345678了，有事发邮件到wang.li@example.com"
    dialogue = {"dialogue_id": "d1", "turns": [{"speaker": "customer", "text": text}]}
    data.write_text(json.dumps(dialogue, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "o" / "turns.jsonl"
    run(compose_cfg, tiny_model_dir, data, out, "scores.floor=0", "privacy.redact_turns=true")
    assert rows(out)[0]["text"] == "不需要，别再打我手机[PHONE]了，有事发邮件到[EMAIL]"
    run(compose_cfg, tiny_model_dir, data, tmp_path / "raw" / "turns.jsonl")
    assert rows(tmp_path / "raw" / "turns.jsonl")[0]["text"] == text   # turns.jsonl: raw text by default


@pytest.mark.slow
def test_exit_codes_tell_success_rejected_rows_and_usage_errors_apart(tiny_model_dir, small_corpus, tmp_path):
    good = small_corpus / "dev.jsonl"
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(good.read_bytes().splitlines(keepends=True)[0] + b"{oops\n")

    def cli(model_dir, data, name):
        return subprocess.run([*PREDICT, f"model_dir={model_dir}", f"input={data}",
                               f"output={tmp_path / name / 'turns.jsonl'}", f"hydra.run.dir={tmp_path / name}"],
                              capture_output=True, text=True)

    assert cli(tiny_model_dir, good, "ok").returncode == 0
    assert cli(tiny_model_dir, mixed, "mixed").returncode == 3
    missing = cli(tmp_path / "nope", good, "missing")
    said = missing.stdout + missing.stderr
    assert missing.returncode == 2 and "Traceback" not in said and "nope: no such model directory" in said
