import json
import shutil
import subprocess

import numpy as np
import pytest

from profiler.cli.eval import evaluate_models


@pytest.fixture(scope="module")
def reports(tiny_model_dir, small_corpus, tmp_path_factory):
    """profiler-eval over the tiny encoder and a rules baseline, one command."""
    from hydra import compose, initialize_config_module

    from profiler.cli.train import train

    root = tmp_path_factory.mktemp("eval")
    with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
        train(compose(config_name="train", overrides=[
            "model=rules", f"data.train={small_corpus}/train.jsonl", f"data.dev={small_corpus}/dev.jsonl",
            "data.test=null", f"run_dir={root}/rules-run", f"model_dir={root}/rules"]))
        cfg = compose(config_name="eval", overrides=[
            f"model_dir=[{tiny_model_dir},{root}/rules]", f"input={small_corpus}/test.jsonl", f"out_dir={root}/out",
            "bootstrap.resamples=200"])
    result = evaluate_models(cfg)
    return root / "out", result


def test_eval_writes_every_artifact_with_stable_keys(reports):
    out, result = reports
    assert set(result["metrics"]) == {"model", "rules"}
    for name in ("model", "rules"):
        d = out / name
        metrics = json.loads((d / "metrics.json").read_text())
        assert {"schema", "model", "data", "settings", "headline", "ci", "threshold_free", "calibration",
                "per_tag", "per_category", "per_dimension", "flagged_tags"} <= set(metrics)
        assert len(metrics["per_tag"]) == 95
        for key, (lo, hi) in metrics["ci"].items():
            assert lo <= metrics["headline"][key] + 1e-9 and metrics["headline"][key] <= hi + 1e-9, key
        errors = [json.loads(x) for x in (d / "errors.jsonl").read_text().splitlines()]
        assert errors and {"kind", "tag", "probability", "dialogue_id", "turn_index", "text", "context"} <= set(errors[0])
        conf = [e["confidence"] for e in errors]
        assert conf == sorted(conf, reverse=True)
        for row in metrics["per_tag"]:  # every FP and FN is listed (up to the per-tag cap of 50)
            tp = round(row["recall"] * row["support"])
            kinds = [e["kind"] for e in errors if e["tag"] == row["tag"]]
            assert kinds.count("false_negative") == min(50, row["support"] - tp), row["tag"]
            assert kinds.count("false_positive") == min(50, row["predicted"] - tp), row["tag"]
        assert "| micro_f1 |" in (d / "report.md").read_text()
    comparison = (out / "comparison.md").read_text()
    assert "| metric | model | rules |" in comparison
    comp = json.loads((out / "comparison.json").read_text())
    assert comp["headline"]["macro_f1"]["rules"] == result["metrics"]["rules"]["headline"]["macro_f1"]



def test_report_names_each_tag_in_chinese_and_counts_unevaluated_tags(reports, small_corpus, tmp_path):
    import re

    from hydra import compose, initialize_config_module

    from profiler.taxonomy import Taxonomy

    out, result = reports
    taxonomy = Taxonomy.bundled()
    html = (out / "model" / "report.html").read_text(encoding="utf-8")
    rows = re.findall(r'<tr(?: class="flag")?><td>([\w.]+) <span class="zh">([^<]+)</span>', html)
    assert rows, "no per-tag rows"
    for tag_id, name in rows:  # the id, then its dimension and value as the taxonomy writes them
        tag = taxonomy.tags[taxonomy.index[tag_id]]
        assert name == f"{tag.dimension}：{tag.value}"
    assert all(r["support"] for r in result["metrics"]["model"]["per_tag"])
    assert "not evaluated" not in html  # every tag has a positive turn in the full test split

    small = tmp_path / "few.jsonl"  # a handful of dialogues cannot cover 95 tags
    small.write_text("".join((small_corpus / "test.jsonl").read_text(encoding="utf-8").splitlines(True)[:6]),
                     encoding="utf-8")
    with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
        cfg = compose(config_name="eval", overrides=[f"model_dir={out.parent}/rules", f"input={small}",
                                                     f"out_dir={tmp_path}/out", "bootstrap.resamples=20"])
    per_tag = evaluate_models(cfg)["metrics"]["rules"]["per_tag"]
    missing = sum(1 for r in per_tag if r["support"] == 0)
    assert 0 < missing < len(per_tag)
    line = f"{missing} of {len(per_tag)} tags had no positive turn in this eval set and are not evaluated."
    assert line in (tmp_path / "out" / "rules" / "report.html").read_text(encoding="utf-8")
    assert line in (tmp_path / "out" / "rules" / "report.md").read_text(encoding="utf-8")

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no headless Chromium installed (.ci/run installs it)")
def test_html_report_renders_in_headless_chromium(reports, tmp_path):
    from PIL import Image

    report = reports[0] / "model" / "report.html"
    flags = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    for element in ('id="headline"', 'id="per-tag"', 'id="errors"', 'id="f1-bars"', 'id="pr-curves"',
                    'id="reliability"', 'id="confusion"'):
        assert element in dom, element
    assert dom.count("data:image/png;base64,") == 4

    def blue_pixels(html_path):
        shot = tmp_path / f"{html_path.stem}.png"
        subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2400", html_path.as_uri()],
                       capture_output=True, timeout=120, check=True)
        rgb = np.asarray(Image.open(shot).convert("RGB")).astype(int)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        return int(((b > 150) & (r < 100) & (g > 90) & (g < 150)).sum())  # the F1 bars' blue

    without = tmp_path / "noimg.html"
    without.write_text(report.read_text(encoding="utf-8").replace("data:image/png;base64,", "data:,"),
                       encoding="utf-8")
    assert blue_pixels(report) > 2000 > blue_pixels(without), "the embedded figures were not drawn"


@pytest.mark.slow
def test_error_analysis_notebook_executes_and_is_stored_without_outputs(reports, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    from tests.conftest import REPO

    path = REPO / "notebooks" / "error_analysis.ipynb"
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), "strip outputs before committing"
    monkeypatch.setenv("PROFILER_REPORT_DIR", str(reports[0] / "model"))
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "micro_f1" in text and "false_positive" in text


def test_notebook_default_report_is_what_the_main_job_writes():
    import re

    from tests.conftest import REPO

    reports_dir = re.search(r"^REPORTS=\$\{REPORTS:-([^}]+)\}", (REPO / "scripts" / "main_job.sh").read_text(), re.M)
    source = (REPO / "notebooks" / "error_analysis.ipynb").read_text(encoding="utf-8")
    default = re.search(r'PROFILER_REPORT_DIR\\", \\"([^"\\]+)\\"', source)
    assert reports_dir and default
    assert default.group(1) == f"{reports_dir.group(1)}/e5-small-synthetic"


@pytest.mark.slow
def test_notebook_runs_as_documented_with_nbconvert(reports, tmp_path):
    """`jupyter nbconvert --execute` from the repository root, no environment variable: the notebook
    finds the main job's report on its own."""
    import os
    import sys

    from tests.conftest import REPO

    (tmp_path / "notebooks").mkdir()
    shutil.copy(REPO / "notebooks" / "error_analysis.ipynb", tmp_path / "notebooks")
    shutil.copytree(reports[0] / "model", tmp_path / "reports" / "test" / "e5-small-synthetic")
    env = {k: v for k, v in os.environ.items() if k != "PROFILER_REPORT_DIR"}
    run = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
                          "notebooks/error_analysis.ipynb", "--output-dir", str(tmp_path / "out")],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    executed = (tmp_path / "out" / "error_analysis.ipynb").read_text(encoding="utf-8")
    assert "micro_f1" in executed and "false_positive" in executed
