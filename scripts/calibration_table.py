"""Are the scores believable? Reliability before and after the model's dev-fitted calibration.

For each evaluation set (labelled dialogue files, and real_dev when given): the classic global ECE,
ECE over equal-mass bins, the mean per-tag ECE, and for the tags the model predicted, their mean
score against the share that were right, per score bin. "raw" is the network's sigmoid, "calibrated"
what turns.jsonl, profiles and the service report (decision.json's per-tag Platt map).

    python scripts/calibration_table.py models/e5-small-synthetic data/synthetic/test.jsonl \
        data/synthetic/test_voices.jsonl --real ../shared/data/real_dev
    python scripts/calibration_table.py MODEL DEV --fit     # (re)fit the map on DEV into decision.json first
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from profiler.calibration import calibration, fit_platt
from profiler.evaluation import evaluate
from profiler.predictor import Predictor


def real_eval(model_dir: str, real: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, raw scores, decisions) on the real set: every gold turn, all tags annotated."""
    from profiler.realset import read_gold, real_paths, real_turns

    input_path, gold_path = real_paths(real)
    predictor = Predictor.from_pretrained(model_dir)
    keys, turns = real_turns(predictor, input_path)
    gold = read_gold(gold_path)
    raw = predictor.predict_proba(turns)
    index = predictor.taxonomy.index
    truth = np.zeros(raw.shape, bool)
    for i, key in enumerate(keys):
        for tag in gold.get(key, ()):
            truth[i, index[tag]] = True
    return truth, raw, predictor.rule.decide(raw)


def rows(name: str, truth, raw, pred, rule, mask=None) -> list[str]:
    out = []
    for label, probs in (("raw", raw), ("calibrated", rule.calibrate(raw))):
        c = calibration(truth, probs, mask=mask, pred=pred)
        pos = c["positives"]
        bins = "; ".join(f"{b['lo']:.1f}–{b['hi']:.1f}: {b['count']} at {100 * b['positive_rate']:.0f}%"
                         for b in pos["bins"] if b["count"])
        out.append(f"| {name} | {label} | {c['ece']:.4f} | {c['adaptive_ece']:.4f} | {c['per_tag_ece']:.4f} | "
                   f"{pos['count']} | {pos['mean_score']:.3f} | {pos['precision']:.3f} | {bins} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("data", nargs="+", help="labelled dialogue files (with --fit: the first one is dev)")
    ap.add_argument("--real", help="the real_dev directory (gold.jsonl + input), measured, never fitted on")
    ap.add_argument("--fit", action="store_true", help="fit the calibration on the first file into decision.json")
    args = ap.parse_args()
    data = list(args.data)
    if args.fit:
        dev = evaluate(args.model_dir, data.pop(0))
        rule = dev.predictor.rule
        rule.calibration = fit_platt(dev.raw, dev.truth, dev.mask)
        rule.save(args.model_dir)
    table = ["| set | scores | global ECE | adaptive ECE | per-tag ECE | predicted tags | mean score | share right | "
             "predicted tags by score bin: count at share right |", "|---|---|---|---|---|---|---|---|---|"]
    for path in data:
        ev = evaluate(args.model_dir, path)
        table += rows(Path(path).name, ev.truth, ev.raw, ev.pred, ev.predictor.rule, ev.mask)
    if args.real:
        truth, raw, pred = real_eval(args.model_dir, args.real)
        table += rows("real_dev", truth, raw, pred, Predictor.from_pretrained(args.model_dir).rule)
    print(f"model {args.model_dir}\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
