import json
import subprocess
import sys

import pytest

from profiler.cli.synth import synth
from profiler.cli.validate import validate


def test_synth_from_composed_config(compose_cfg, tmp_path):
    cfg = compose_cfg("synth", [f"out_dir={tmp_path}", "synth.per_tag.train=4", "synth.per_tag.dev=2",
                                "synth.per_tag.test=2", "synth.noise.asr_rate=0.5"])
    card = synth(cfg)
    assert {"train.jsonl", "dev.jsonl", "test.jsonl", "data_card.md", "data_card.json"} <= {
        p.name for p in tmp_path.iterdir()}
    assert min(card["splits"]["train"]["per_tag"].values()) >= 4


def test_validate_reports_bad_lines_and_keeps_going(compose_cfg, tmp_path):
    path = tmp_path / "in.jsonl"
    good = {"dialogue_id": "g", "turns": [{"speaker": "customer", "text": "不用了", "labels": []}]}
    path.write_text(json.dumps(good) + "\n{oops\n", encoding="utf-8")
    cfg = compose_cfg("validate", [f"input={path}", f"errors={tmp_path / 'errors.jsonl'}"])
    report = validate(cfg)
    assert report.kept == 1 and report.rejected == 1
    assert json.loads((tmp_path / "errors.jsonl").read_text())["line"] == 2


@pytest.mark.slow
def test_installed_console_script_exit_code_says_whether_anything_was_rejected(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"dialogue_id": "a", "turns": [{"speaker": "robot", "text": "x"}]}\n', encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "profiler.cli.validate", f"input={path}",
                          f"paths.output_root={tmp_path}/outputs"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 3
    assert "1 rejected" in run.stderr + run.stdout
    strict = subprocess.run([sys.executable, "-m", "profiler.cli.validate", f"input={path}", "strict=true",
                             f"paths.output_root={tmp_path}/outputs"], capture_output=True, text=True, cwd=tmp_path)
    assert strict.returncode == 3 and f"{path}:1: turns[0].speaker" in strict.stderr + strict.stdout


@pytest.mark.slow
def test_prepare_builds_and_checks_the_default_encoder(compose_cfg, cache_dir):
    from profiler.cli.prepare import prepare

    base = prepare(compose_cfg("prepare", [f"paths.cache_dir={cache_dir}"]))
    assert (base / "profiler_source.json").is_file()
    tiny = prepare(compose_cfg("prepare", ["model=tiny", f"paths.cache_dir={cache_dir}"]))
    assert tiny.name.startswith("tiny-h64-l2")


def test_local_model_config_requires_a_path(compose_cfg, local_bert_dir, cache_dir):
    import pytest
    from omegaconf.errors import MissingMandatoryValue

    from profiler.cli.prepare import prepare

    with pytest.raises(MissingMandatoryValue):
        prepare(compose_cfg("prepare", ["model=local", f"paths.cache_dir={cache_dir}"]))
    assert prepare(compose_cfg("prepare", ["model=local", f"model.base={local_bert_dir}",
                                           f"paths.cache_dir={cache_dir}"])) == local_bert_dir
