"""Serving speed of the export formats: torch fp32 vs ONNX fp32 vs ONNX int8, same turns, one run.

Each backend goes through the same Predictor path (token-budget batches, thresholds, exclusive
decoding); F1 is printed beside each so a speed-up is never read without its accuracy cost.
Usage:
    python scripts/bench_export.py --model models/e5-small-synthetic --bundle bundles/e5-small-synthetic \
        --data data/synthetic/test.jsonl
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="the torch model directory")
    ap.add_argument("--bundle", required=True, help="its export bundle from profiler-export format=int8 (to "
                    "measure an int8 graph that fails its gate, export it with gate.max_f1_drop=100)")
    ap.add_argument("--data", default="data/synthetic/test.jsonl", help="labelled dialogues")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-turns", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per backend, interleaved; the median is "
                    "reported (single passes on a shared 2-core machine varied by up to 20%%)")
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)   # before torch/ORT create their thread pools
    import numpy as np
    import torch

    from profiler.evaluation import label_matrix
    from profiler.export.runtime import GRAPHS
    from profiler.metrics import headline
    from profiler.predictor import InferenceSettings, Predictor
    from profiler.training.data import load_turns

    torch.set_num_threads(a.threads)
    bundle = Path(a.bundle)
    if not (bundle / GRAPHS["int8"]).is_file():
        raise SystemExit(f"{bundle} has no int8 graph: export it with format=int8")
    runs = {"torch fp32": (a.model, InferenceSettings(device="cpu")),
            "ONNX fp32": (bundle, InferenceSettings(backend="onnx")),
            "ONNX int8": (bundle, InferenceSettings(backend="onnx", onnx_variant="int8"))}
    predictors, turns, truth = {}, None, None
    for name, (path, settings) in runs.items():
        predictors[name] = Predictor.from_pretrained(path, settings=settings)
        if turns is None:
            turns = load_turns(a.data, predictors[name].taxonomy, predictors[name].context.max_turns)
            if a.max_turns:
                turns = turns.select(range(min(a.max_turns, len(turns))))
            truth = label_matrix(turns["labels"], predictors[name].taxonomy.index)
        predictors[name].predict(turns.select(range(min(64, len(turns)))))  # warm-up: thread pools, allocator
    speeds: dict[str, list[float]] = {name: [] for name in runs}
    decided = {}
    for _ in range(a.repeats):   # interleaved, so a slow spell of the machine hits every backend alike
        for name, predictor in predictors.items():
            start = time.perf_counter()
            _, decided[name] = predictor.predict(turns)
            speeds[name].append(len(turns) / (time.perf_counter() - start))
    rows = {name: (float(np.median(speeds[name])), headline(truth, decided[name])) for name in runs}
    base = rows["torch fp32"][0]
    print(f"\n{len(turns)} customer turns from {a.data}, {a.threads} threads, median of {a.repeats} passes\n")
    print("| backend | turns/s | vs torch fp32 | passes (turns/s) | micro-F1 | macro-F1 |\n|---|---|---|---|---|---|")
    for name, (tps, h) in rows.items():
        passes = ", ".join(f"{x:.0f}" for x in speeds[name])
        print(f"| {name} | {tps:.1f} | {tps / base:.2f}x | {passes} | {h['micro_f1']:.4f} | {h['macro_f1']:.4f} |")


if __name__ == "__main__":
    main()
