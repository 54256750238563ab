"""Score model directories on a real-speech set, side by side, in one run.

  python scripts/bench_real.py ../shared/data/real_dev models/e5-small-synthetic models/tfidf models/rules
      [--min-support 5] [--json out.json] [--set inference.max_tokens=...]

A real set is a folder with input.jsonl (dialogue contract; the last turn of each record is the
customer turn to tag) and gold.jsonl. Prints micro-F1, precision, recall, macro-F1 (tags with at
least --min-support gold items), the share of untagged items left untagged, and per-tag F1.
Measure on a real set; never train on one.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import profiler  # noqa: F401  (before anything that might import onnxruntime's own "profiler")
from profiler.predictor import InferenceSettings
from profiler.realset import score_model


def fmt(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def table(names: list[str], scores: list) -> str:
    rows = [("micro-F1", "micro_f1"), ("precision", "precision"), ("recall", "recall"),
            ("macro-F1 (tags with ≥ min-support items)", "macro_f1"), ("untagged left untagged", "clean_on_untagged")]
    out = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    out += [f"| {label} | " + " | ".join(fmt(getattr(s, key)) for s in scores) + " |" for label, key in rows]
    tags = sorted({t for s in scores for t in s.support}, key=lambda t: (-scores[0].support.get(t, 0), t))
    out += ["", "| tag | items | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    out += [f"| `{t}` | {scores[0].support.get(t, 0)} | " + " | ".join(fmt(s.per_tag_f1.get(t)) for s in scores) + " |"
            for t in tags]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("real", help="folder with input.jsonl and gold.jsonl")
    ap.add_argument("model_dirs", nargs="+")
    ap.add_argument("--min-support", type=int, default=5)
    ap.add_argument("--json", help="also write the scores here")
    ap.add_argument("--max-length", type=int, help="tokens per turn at inference (default: each model's own)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scores, names = [], []
    for model_dir in a.model_dirs:
        started = time.perf_counter()
        settings = InferenceSettings(max_length=a.max_length)
        scores.append(score_model(model_dir, a.real, a.min_support, settings))
        names.append(Path(model_dir).name if Path(model_dir).name not in names else str(model_dir))
        logging.getLogger("bench_real").warning("%s scored in %.1f s", model_dir, time.perf_counter() - started)
    print(f"real set: {a.real} ({scores[0].n} items)\n")
    print(table(names, scores))
    if a.json:
        Path(a.json).write_text(json.dumps({n: asdict(s) for n, s in zip(names, scores)}, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
