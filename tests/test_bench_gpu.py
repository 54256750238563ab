"""scripts/bench_gpu.py runs end to end on CPU with the tiny model, so the GPU benchmark cannot rot
between GPU runs: CUDA-only rows say so, every other row is a real measurement."""

import pytest
import importlib.util
import json

from tests.conftest import REPO, tiny_train_overrides


def load_script():
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "scripts" / "bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # a benchmark: trains twice, ~11 s
def test_bench_gpu_runs_on_cpu_with_the_tiny_model(tiny_model_dir, small_corpus, cache_dir, tmp_path, capsys):
    bench = load_script()
    train = " ".join(tiny_train_overrides(small_corpus, cache_dir, tmp_path / "run", "trainer=gpu"))
    result = bench.main(["--model", str(tiny_model_dir), "--data", str(small_corpus / "dev.jsonl"), "--turns", "120",
                         "--device", "cpu", "--train", train, "--train-steps", "2", "--json", str(tmp_path / "r.json")])
    table = capsys.readouterr().out
    predict = result["predict"]
    assert predict["profiler torch fp16"] == predict["HF pipeline bf16"] == bench.NO_CUDA
    for name in ("profiler torch fp32", "HF pipeline fp32"):
        assert predict[name]["turns_per_s"] > 0 and predict[name]["where"] == "cpu", name
    assert 0 < predict["profiler torch fp32"]["tokenise_share"] < 5
    for name in ("profiler-train loop", "HF Trainer"):
        assert result["train"][name]["samples_per_s"] > 0, name
    assert "| profiler torch bf16 | n/a (no CUDA) |" in table and "| HF Trainer |" in table
    assert json.loads((tmp_path / "r.json").read_text())["turns"] >= 120
