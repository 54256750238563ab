"""How many MatMuls to keep fp32 in the int8 graph: one quantization per setting, same bundle, one run.

For each ``--keep`` count, the top MatMuls of the export's own ranking (input range over mean |x| on
dev turns) stay fp32 and the rest is quantized exactly as ``profiler-export format=int8`` does. The
table gives the int8 logit error on dev, dev macro-F1 under the fp32 thresholds and under the int8
graph's own dev-tuned thresholds (what the gate compares), test macro-F1 under its own thresholds,
and turns/s on the test turns.
Usage:
    python scripts/sweep_int8.py --bundle bundles/e5-small-synthetic --dev data/synthetic/dev.jsonl \
        --test data/synthetic/test.jsonl --keep 0,1,2,4,12
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True, help="an export bundle (its fp32 graph is quantized)")
    ap.add_argument("--dev", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--keep", default="0,1,2,4,12")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--probe-turns", type=int, default=256, help="dev turns the ranking is measured on "
                    "(profiler-export's probe_max_turns)")
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)   # before ORT creates its thread pools
    import numpy as np
    from scipy.special import logit

    from profiler.evaluation import annotation_mask, label_matrix
    from profiler.export.run import outlier_matmuls, quantize_and_tune
    from profiler.export.runtime import GRAPHS
    from profiler.metrics import headline
    from profiler.predictor import InferenceSettings, Predictor
    from profiler.training.data import load_turns

    fp32 = Predictor.from_pretrained(a.bundle, settings=InferenceSettings(backend="onnx"))
    tax = fp32.taxonomy
    data = {}
    for split, path in (("dev", a.dev), ("test", a.test)):
        turns = load_turns(path, tax, fp32.context.max_turns)
        data[split] = (turns, label_matrix(turns["labels"], tax.index), fp32.predict_proba(turns),
                       annotation_mask(turns["annotated"], tax))
    work = Path(tempfile.mkdtemp()) / "bundle"
    shutil.copytree(a.bundle, work)
    counts = [int(k) for k in a.keep.split(",")]
    ranking = outlier_matmuls(work / GRAPHS["fp32"], fp32, data["dev"][0], max(counts), a.probe_turns)
    print(f"\nfp32: dev macro-F1 {headline(data['dev'][1], fp32.rule.decide(data['dev'][2]))['macro_f1']:.4f}, "
          f"test {headline(data['test'][1], fp32.rule.decide(data['test'][2]))['macro_f1']:.4f}\n")
    print("| MatMuls kept fp32 | logit error (dev) | dev macro-F1, fp32 thresholds | dev macro-F1, own thresholds "
          "| test macro-F1, own thresholds | turns/s (test) |\n|---|---|---|---|---|---|")
    for keep in counts:
        turns, truth, ref, mask = data["dev"]
        int8, dev = quantize_and_tune(work, fp32, [node for node, _ in ranking[:keep]], turns, truth, mask)
        own = int8.rule
        int8.predict_proba(data["test"][0].select(range(64)))   # warm-up
        start = time.perf_counter()
        test = int8.predict_proba(data["test"][0])
        tps = len(test) / (time.perf_counter() - start)
        print(f"| {keep} | {np.std(logit(np.clip(dev, 1e-7, 1 - 1e-7)) - logit(np.clip(ref, 1e-7, 1 - 1e-7))):.3f} "
              f"| {headline(truth, fp32.rule.decide(dev), mask=mask)['macro_f1']:.4f} "
              f"| {headline(truth, own.decide(dev), mask=mask)['macro_f1']:.4f} "
              f"| {headline(data['test'][1], own.decide(test))['macro_f1']:.4f} | {tps:.1f} |", flush=True)


if __name__ == "__main__":
    main()
