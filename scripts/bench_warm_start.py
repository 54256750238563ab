"""Warm start vs from scratch after a taxonomy change (v1 -> v2), in one run.

  python scripts/bench_warm_start.py [--model e5_small|tiny] [--per-tag 24] [--out runs/bench_warm_start]

1. A v1 corpus and a smaller v2 corpus ("the new annotation round": every v2 tag, KYC included).
2. The parent: trained on v1.
3. The child data: the v1 train split migrated to v2 (KYC masked, never "absent") + the v2 round.
4. Two children on the same data and settings: from the base encoder, and with init_from=parent.
   Each logs its dev macro-F1 over the old tags (watch_tags) at regular evaluations.
5. The table: the parent's old-tag macro-F1 on the same v2 dev set (its decisions carried through
   the mapping, the same fixed 0.5 threshold as the training-time evaluations), the first step at
   which each child is within 1 point of it, their ratio, and each child's test macro-F1 (tuned
   thresholds, tags with >= 5 positives) over the old tags and over the new (KYC) tags.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_module

import profiler  # noqa: F401  (before anything that might import onnxruntime's own "profiler")
from profiler.cli.train import train
from profiler.evaluation import annotation_mask, build_metrics, evaluate, label_matrix
from profiler.metrics import headline
from profiler.migration import Migration, migrate_files, sources_of
from profiler.predictor import Predictor
from profiler.synth.corpus import write_corpus
from profiler.synth.generator import SynthConfig
from profiler.taxonomy import Taxonomy
from profiler.training.data import load_turns

log = logging.getLogger("bench_warm_start")
V1, V2 = Taxonomy.bundled("v1"), Taxonomy.bundled("v2")


def corpora(out: Path, per_tag: int, dev_per_tag: int) -> dict[str, Path]:
    migration = Migration.load("v1_to_v2")
    write_corpus(out / "v1", V1, SynthConfig(seed=13, per_tag={"train": per_tag, "dev": dev_per_tag, "test": 8}))
    write_corpus(out / "v2", V2, SynthConfig(seed=14, per_tag={"train": max(per_tag // 3, 8), "dev": dev_per_tag,
                                                                "test": 8}), migration.tags)
    migrate_files([out / "v1" / "train.jsonl"], out / "v1_as_v2.jsonl", V1, V2, migration)
    rows = (out / "v1_as_v2.jsonl").read_text(encoding="utf-8").splitlines()
    for line in (out / "v2" / "train.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        rows.append(json.dumps({**d, "dialogue_id": "round2-" + d["dialogue_id"]}, ensure_ascii=False))
    (out / "child_train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {"v1": out / "v1", "v2": out / "v2", "child_train": out / "child_train.jsonl"}


def run(overrides: list[str]) -> dict:
    with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    started = time.perf_counter()
    metrics = train(cfg)
    metrics["wall_s"] = time.perf_counter() - started
    return metrics


def model_overrides(model: str, epochs: int) -> list[str]:
    if model == "tiny":
        return ["model=tiny", f"trainer.epochs={epochs}", "optim.lr=3e-3", "optim.head_lr=1e-2",
                "model.context.max_length=64"]
    return ["experiment=cpu_fast", f"trainer.epochs={epochs}"]


def test_macro_f1(per_tag: list[dict], tags: list[str], min_support: int = 5) -> tuple[float | None, int]:
    """Macro-F1 over those of ``tags`` with enough test positives, and how many that is."""
    wanted = set(tags)
    f1s = [r["f1"] for r in per_tag if r["tag"] in wanted and r["support"] >= min_support]
    return (float(np.mean(f1s)) if f1s else None), len(f1s)


def parent_old_f1(parent: Path, dev: Path, old_tags: list[str]) -> float:
    """The parent's macro-F1 over the old tags of the v2 dev set, decisions at 0.5 carried through the mapping."""
    predictor = Predictor.from_pretrained(parent)
    turns = load_turns(dev, V2, predictor.context.max_turns)
    probs = predictor.predict_proba(turns)
    sources = sources_of(Migration.load("v1_to_v2").resolve(V1, V2))
    cols = [V2.index[t] for t in old_tags]
    carried = np.stack([(probs[:, [V1.index[o] for o in sources[t]]] >= 0.5).any(axis=1) for t in old_tags], axis=1)
    truth = label_matrix(turns["labels"], V2.index)[:, cols]
    mask = annotation_mask(turns["annotated"], V2)[:, cols]
    return headline(truth, carried, mask=mask)["macro_f1"]


def steps_to_reach(history: list[dict], target: float) -> int | None:
    return next((h["step"] for h in history if h["dev_watched_macro_f1"] >= target), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=["e5_small", "tiny"], default="e5_small")
    ap.add_argument("--per-tag", type=int, default=24, help="positive train turns per v1 tag")
    ap.add_argument("--dev-per-tag", type=int, default=6, help="dev positives per tag (the learning curves' dev set)")
    ap.add_argument("--epochs", type=int, default=4, help="epochs of every run (parent and children)")
    ap.add_argument("--evals", type=int, default=16, help="dev evaluations per child run")
    ap.add_argument("--out", default="runs/bench_warm_start")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)
    paths = corpora(out / "data", args.per_tag, args.dev_per_tag)
    base = model_overrides(args.model, args.epochs)
    parent = run([*base, f"data.train={paths['v1']}/train.jsonl", f"data.dev={paths['v1']}/dev.jsonl",
                  "data.test=null", f"run_dir={out}/parent", f"model_dir={out}/parent/model"])
    old_tags = [t for t in V2.ids if t in sources_of(Migration.load("v1_to_v2").resolve(V1, V2))]
    target = parent_old_f1(out / "parent" / "model", paths["v2"] / "dev.jsonl", old_tags)
    every = max(1, parent["steps"] * 3 // 2 // args.evals)  # the children see 1.5x the parent's data
    children = {}
    for name, extra in (("scratch", []), ("warm", [f"init_from={out}/parent/model"])):
        run_dir = out / name
        metrics = run([*base, "taxonomy=v2", f"data.train={paths['child_train']}", f"data.dev={paths['v2']}/dev.jsonl",
                       "data.test=null", f"run_dir={run_dir}", f"model_dir={run_dir}/model", f"trainer.eval_every={every}",
                       "trainer.patience=1000", f"watch_tags=[{','.join(old_tags)}]",
                       *extra])
        history = [json.loads(x) for x in (run_dir / "metrics_history.jsonl").read_text().splitlines()]
        ev = evaluate(run_dir / "model", paths["v2"] / "test.jsonl")
        per_tag = build_metrics(ev, resamples=10)["per_tag"]
        kyc_tags = [t for t in V2.ids if t.startswith("kyc.")]
        children[name] = {"history": history, "steps": metrics["steps"], "wall_s": metrics["wall_s"],
                          "reach": steps_to_reach(history, target - 0.01),
                          "final_old": history[-1]["dev_watched_macro_f1"],
                          "old_test": test_macro_f1(per_tag, old_tags), "kyc_test": test_macro_f1(per_tag, kyc_tags)}
    report(children, target, every, args, out)


def report(children: dict, target: float, every: int, args: argparse.Namespace, out: Path) -> None:
    s, w = children["scratch"], children["warm"]
    ratio = (w["reach"] / s["reach"]) if s["reach"] and w["reach"] is not None else None
    lines = [f"model={args.model} per_tag={args.per_tag} epochs={args.epochs}; dev evaluations every {every} optimizer steps; "
             f"parent old-tag macro-F1 (v2 dev, 0.5 threshold) = {target:.4f}; target = parent - 1 point", "",
             "| child | steps run | first step within 1 pt of parent | old-tag dev macro-F1 at the end | "
             "old-tag test macro-F1 | KYC test macro-F1 | train wall s |", "|---|---|---|---|---|---|---|"]
    for name, c in children.items():
        cells = [f"{f1:.4f} ({n} tags)" if f1 is not None else "n/a" for f1, n in (c["old_test"], c["kyc_test"])]
        lines.append(f"| {name} | {c['steps']} | {c['reach'] if c['reach'] is not None else 'never'} | "
                     f"{c['final_old']:.4f} | {' | '.join(cells)} | {c['wall_s']:.0f} |")
    lines += ["", f"warm / scratch steps to reach: {ratio:.2f} (target <= 0.30)" if ratio is not None else
              "warm / scratch steps to reach: n/a (a child never reached the parent)", "",
              "old-tag dev macro-F1 per evaluation (step: scratch / warm):"]
    for hs, hw in zip(s["history"], w["history"]):
        lines.append(f"  {hs['step']:5d}: {hs['dev_watched_macro_f1']:.4f} / {hw['dev_watched_macro_f1']:.4f}")
    text = "\n".join(lines)
    (out / "table.md").write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
