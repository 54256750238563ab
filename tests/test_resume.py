"""Real processes: kill -9 mid-run then resume; and a 2-process accelerate launch (gloo, CPU)."""

import json
import os
import signal
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from tests.conftest import tiny_train_overrides


def train_cmd(corpus, cache_dir, run_dir, *extra):
    return [*tiny_train_overrides(corpus, cache_dir, run_dir, "trainer.checkpoint_every=8", "trainer.eval_every=8",
                                  "trainer.epochs=3", *extra), f"hydra.run.dir={run_dir}"]


def comparable(run_dir):
    metrics = json.loads((run_dir / "model" / "metrics.json").read_text())
    for key in ("train_seconds", "train_samples_per_second"):
        metrics.pop(key)
    return metrics


@pytest.mark.slow
def test_kill_and_resume_ends_exactly_like_an_uninterrupted_run(small_corpus, cache_dir, tmp_path):
    python = [sys.executable, "-m", "profiler.cli.train"]
    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(python + train_cmd(small_corpus, cache_dir, full), check=True, capture_output=True)

    # SIGKILL right after the step-24 checkpoint (a test hook, not a race with the clock); step 24 lies
    # inside the first epoch: the resumed run must restart mid-epoch
    run = subprocess.run(python + train_cmd(small_corpus, cache_dir, killed), capture_output=True,
                         env={**os.environ, "PROFILER_FAULT": "kill:24"})
    assert run.returncode == -signal.SIGKILL
    assert not (killed / "model" / "metrics.json").exists(), "the run finished before it could be killed"

    subprocess.run(python + train_cmd(small_corpus, cache_dir, killed, "resume=true"), check=True,
                   capture_output=True)
    assert comparable(killed) == comparable(full)
    assert (killed / "model" / "decision.json").read_text() == (full / "model" / "decision.json").read_text()
    a, b = load_file(full / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    history = [json.loads(x) for x in (killed / "metrics_history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == sorted({h["step"] for h in history}), "no duplicated evaluations"


@pytest.mark.slow
def test_two_process_cpu_run_matches_one_process(small_corpus, cache_dir, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    base = [sys.executable, "-m", "profiler.cli.train"]
    subprocess.run(base + train_cmd(small_corpus, cache_dir, one, "trainer.batch_size=16"), check=True,
                   capture_output=True)
    # --multi_gpu is accelerate's torchrun launcher; on a CPU-only machine the processes join a gloo group
    # (--cpu would pick the single-process launcher unless MPI is configured)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "profiler.cli.train"]
    run = subprocess.run(launch + train_cmd(small_corpus, cache_dir, two, "trainer.batch_size=8"),
                         capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 processes" in (two / "train.log").read_text(), "the run must really be distributed"
    m1, m2 = comparable(one), comparable(two)
    assert m2["steps"] == m1["steps"], "same global batch (2 x 8 = 16): same number of optimizer steps"
    for split in ("dev", "test"):
        assert m2[split]["turns"] == m1[split]["turns"]
        for key in ("micro_f1", "macro_f1"):
            assert m2[split][key] == pytest.approx(m1[split][key], abs=0.08), (split, key, m1[split], m2[split])
