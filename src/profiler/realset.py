"""Score models on a real-speech set: ``input.jsonl`` (dialogue contract, the last turn of each record
is the customer turn to tag) beside ``gold.jsonl`` (``dialogue_id``, ``turn_index``, ``labels``).

Real sets are small and mostly untagged, so the numbers that matter differ from the synthetic test:
micro-F1 over every tag, macro-F1 over the tags with enough gold items to mean something, and the
share of untagged utterances the model leaves untagged (a tagger that fires on everything is useless
to an analyst even when its recall is high). Predictions go through the one ``Predictor`` path.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from profiler.data.turns import load_dialogues, turn_view
from profiler.predictor import InferenceSettings, Predictor


@dataclass(frozen=True)
class RealScore:
    n: int
    micro_f1: float
    precision: float
    recall: float
    macro_f1: float           # over tags with >= min_support gold items
    clean_on_untagged: float  # untagged items the model leaves untagged
    per_tag_f1: dict[str, float]
    support: dict[str, int]


def read_gold(path: str | Path) -> dict[tuple[str, int], set[str]]:
    gold = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    g = json.loads(line)
                    gold[(g["dialogue_id"], int(g["turn_index"]))] = set(g["labels"])
                except (ValueError, KeyError, TypeError) as e:
                    raise ValueError(f"{path}:{n}: not a gold record ({e})") from e
    return gold


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")


def score(gold: dict[tuple[str, int], set[str]], pred: dict[tuple[str, int], set[str]],
          min_support: int = 5) -> RealScore:
    """A gold item the model gave no prediction for counts as predicted untagged."""
    per: dict[str, list[int]] = {}
    tp = fp = fn = untagged = clean = 0
    for key, gs in gold.items():
        ps = pred.get(key, set())
        for t in gs | ps:
            c = per.setdefault(t, [0, 0, 0])
            c[0] += t in gs and t in ps
            c[1] += t in ps and t not in gs
            c[2] += t in gs and t not in ps
        tp, fp, fn = tp + len(gs & ps), fp + len(ps - gs), fn + len(gs - ps)
        if not gs:
            untagged += 1
            clean += not ps
    support = Counter(t for gs in gold.values() for t in gs)
    frequent = sorted((t for t, c in support.items() if c >= min_support), key=lambda t: (-support[t], t))
    return RealScore(
        n=len(gold), micro_f1=_f1(tp, fp, fn), precision=tp / (tp + fp) if tp + fp else float("nan"),
        recall=tp / (tp + fn) if tp + fn else float("nan"),
        macro_f1=float(np.mean([_f1(*per[t]) for t in frequent])) if frequent else float("nan"),
        clean_on_untagged=clean / untagged if untagged else float("nan"),
        per_tag_f1={t: _f1(*per[t]) for t in frequent}, support={t: support[t] for t in frequent})


def real_paths(real: str | Path) -> tuple[Path, Path]:
    """(input.jsonl, gold.jsonl) of a real set's folder."""
    real = Path(real)
    paths = real / "input.jsonl", real / "gold.jsonl"
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"{p}: a real set is a folder with input.jsonl and gold.jsonl")
    return paths


def real_turns(predictor: Predictor, input_path: str | Path):
    """(gold-file keys, turn view) of every customer turn of a real set's input, as this predictor reads them."""
    dialogues, _ = load_dialogues(input_path, predictor.taxonomy)
    turns = turn_view(dialogues, predictor.context.max_turns)
    return [(d, int(i)) for d, i in zip(turns["dialogue_id"], turns["turn_index"])], turns


def as_sets(keys: list[tuple[str, int]], pred: np.ndarray, ids: list[str]) -> dict[tuple[str, int], set[str]]:
    ids = np.asarray(ids)
    return {k: set(ids[row]) for k, row in zip(keys, pred)}


def predict_sets(model_dir: str | Path, input_path: str | Path,
                 settings: InferenceSettings | None = None) -> dict[tuple[str, int], set[str]]:
    """Every customer turn's predicted tag set, keyed like the gold file."""
    predictor = Predictor.from_pretrained(model_dir, settings=settings)
    keys, turns = real_turns(predictor, input_path)
    return as_sets(keys, predictor.predict(turns)[1], predictor.taxonomy.ids)


def score_model(model_dir: str | Path, real: str | Path, min_support: int = 5,
                settings: InferenceSettings | None = None) -> RealScore:
    input_path, gold_path = real_paths(real)
    return score(read_gold(gold_path), predict_sets(model_dir, input_path, settings), min_support)
