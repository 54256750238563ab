"""The inference-side levers of one trained model, measured on a real set and the synthetic test in one run:
which dev split tunes the thresholds, how many tokens of a turn are read, and whether the rules baseline's
tags are added to the encoder's.

  python scripts/sweep_decision.py --model models/e5-small-synthetic --rules models/rules \
      --real ../shared/data/real_dev --test data/synthetic/test.jsonl \
      --dev synthetic=data/synthetic/dev.jsonl --dev voices=data/synthetic/dev_voices.jsonl \
      --dev both=data/synthetic/dev.jsonl,data/synthetic/dev_voices.jsonl --max-lengths 96,128,192

No variant is tuned on the real set: thresholds come from a dev split, the real set only scores.
"""

from __future__ import annotations

import argparse
import logging
import math

import numpy as np

import profiler  # noqa: F401  (before anything that might import onnxruntime's own "profiler")
from profiler.decision import tune
from profiler.evaluation import annotation_mask, label_matrix
from profiler.metrics import apply_mask, headline
from profiler.predictor import InferenceSettings, Predictor
from profiler.realset import as_sets, read_gold, real_paths, real_turns, score
from profiler.training.data import load_turns


def fmt(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.3f}"


class Scored:
    """A model's probabilities on the real set, the synthetic test and each dev split."""

    def __init__(self, predictor: Predictor, real: str, test: str, devs: dict[str, list[str]]):
        self.predictor = predictor
        input_path, gold_path = real_paths(real)
        self.gold = read_gold(gold_path)
        self.real_keys, turns = real_turns(predictor, input_path)
        self.real_probs = predictor.predict_proba(turns)
        self.test = self._labelled(test)
        self.devs = {name: self._labelled(paths) for name, paths in devs.items()}

    def _labelled(self, paths) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tax = self.predictor.taxonomy
        turns = load_turns(paths, tax, self.predictor.context.max_turns)
        mask = annotation_mask(turns["annotated"], tax)
        return self.predictor.predict_proba(turns), label_matrix(turns["labels"], tax.index), mask

    def row(self, rule, extra_real: np.ndarray | None = None, extra_test: np.ndarray | None = None) -> list[str]:
        real_pred = rule.decide(self.real_probs)
        test_probs, test_truth, test_mask = self.test
        test_pred = rule.decide(test_probs)
        if extra_real is not None:
            real_pred, test_pred = real_pred | extra_real, test_pred | extra_test
        real = score(self.gold, as_sets(self.real_keys, real_pred, self.predictor.taxonomy.ids))
        truth, pred = apply_mask(test_truth, test_pred, test_mask)
        synth = headline(truth, pred)
        return [fmt(real.micro_f1), fmt(real.macro_f1), fmt(real.clean_on_untagged),
                fmt(synth["micro_f1"]), fmt(synth["macro_f1"])]

    def tuned(self, dev: str, min_support: int = 5):
        probs, truth, mask = self.devs[dev]
        return tune(probs, truth, self.predictor.taxonomy, min_support, mask)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--rules", help="a rules model directory whose tags are added to the encoder's (union)")
    ap.add_argument("--real", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--dev", action="append", default=[], help="NAME=FILE[,FILE]: a dev split to tune thresholds on")
    ap.add_argument("--max-lengths", default="", help="comma-separated inference lengths to try")
    ap.add_argument("--min-supports", default="5", help="comma-separated dev positives a tag needs for its own "
                                                        "threshold (fewer: the global one)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    devs = {d.split("=", 1)[0]: d.split("=", 1)[1].split(",") for d in a.dev}
    head = ["| variant | real micro-F1 | real macro-F1 | real untagged clean | synthetic test micro-F1 | "
            "synthetic test macro-F1 |", "|---|---|---|---|---|---|"]
    rows = []
    base = Scored(Predictor.from_pretrained(a.model), a.real, a.test, devs)
    rows.append(["model's own decision.json", *base.row(base.predictor.rule)])
    for name in devs:
        for min_support in map(int, a.min_supports.split(",")):
            rows.append([f"thresholds tuned on dev={name} (per tag from {min_support} positives)",
                         *base.row(base.tuned(name, min_support))])
    if a.rules:
        rules = Scored(Predictor.from_pretrained(a.rules), a.real, a.test, {})
        extra_real = rules.predictor.rule.decide(rules.real_probs)
        extra_test = rules.predictor.rule.decide(rules.test[0])
        rows.append(["model's own decision.json ∪ rules", *base.row(base.predictor.rule, extra_real, extra_test)])
    for length in filter(None, a.max_lengths.split(",")):
        s = Scored(Predictor.from_pretrained(a.model, settings=InferenceSettings(max_length=int(length))),
                   a.real, a.test, {})
        rows.append([f"inference max_length={length}", *s.row(s.predictor.rule)])
    print("\n".join(head + ["| " + " | ".join(r) + " |" for r in rows]))


if __name__ == "__main__":
    main()
