"""Training throughput and peak memory: profiler's loop vs Hugging Face ``Trainer``.

Same model (the main job's encoder recipe: the train config composed with experiment=cpu_fast, as
scripts/main_job.sh runs it), same train data, batch size, precision, optimizer and number of optimizer
steps; each runner in its own process so peak RSS is its own. Prints a table. Usage:
    python scripts/bench_train.py --data data/synthetic/train.jsonl --steps 60 [optim.lr=1e-4 ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

def recipe(overrides: list[str]):
    """The train config as profiler-train composes it for the main job; a copied recipe drifts (this
    script once benchmarked head_lr 3e-3 while the main job trained with 3e-2)."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
        return compose(config_name="train", overrides=["experiment=cpu_fast", *overrides])


def build(data: str, cache_dir: str, overrides: list[str]):
    import torch

    from profiler.cli.common import build_tagger_settings, build_taxonomy, resolve_base_dir, to_dict
    from profiler.data.labels import load_turns
    from profiler.modeling import TurnTagger, truncate_layers
    from profiler.training.data import encode, label_counts
    from profiler.training.losses import LossSpec
    from profiler.training.optim import OptimSpec

    cfg = recipe(overrides)
    torch.set_num_threads(cfg.trainer.num_threads or 2)
    taxonomy = build_taxonomy(cfg.taxonomy)
    settings = build_tagger_settings(cfg.model)
    model, tokenizer = TurnTagger.from_base(resolve_base_dir(cfg.model, cache_dir), taxonomy, settings)
    if cfg.model.num_layers:
        truncate_layers(model, cfg.model.num_layers)
    k = settings.context.max_turns
    train = encode(load_turns(data, taxonomy, k), tokenizer, settings.context, taxonomy)
    return model, tokenizer, train, label_counts(train), OptimSpec(**to_dict(cfg.optim)), LossSpec(**to_dict(cfg.loss))


def run_ours(data: str, cache_dir: str, steps: int, batch_size: int, overrides: list[str]) -> dict:
    from profiler.training.loop import Trainer, TrainArgs
    from profiler.training.losses import build_loss

    model, tokenizer, train, counts, optim, loss_spec = build(data, cache_dir, overrides)
    loss = build_loss(loss_spec, counts, len(train))
    epochs = steps / ((len(train) + batch_size - 1) // batch_size)
    args = TrainArgs(epochs=epochs, batch_size=batch_size, eval_every=10**9, checkpoint_every=10**9, optim=optim)
    trainer = Trainer(model, tokenizer, loss, train, train.select(range(min(64, len(train)))), args, Path(tempfile.mkdtemp()),
                      save_best=lambda m: None)
    trainer._finished = lambda: trainer.state.step >= steps  # time the loop itself: no evaluation/checkpoints
    trainer.maybe_evaluate = lambda end_of_epoch: None
    trainer.maybe_checkpoint = lambda end_of_epoch: None
    start = time.perf_counter()
    trainer.fit()
    return {"seconds": time.perf_counter() - start, "steps": trainer.state.step}


def run_hf(data: str, cache_dir: str, steps: int, batch_size: int, overrides: list[str]) -> dict:
    import torch
    from transformers import Trainer as HFTrainer
    from transformers import TrainingArguments

    from profiler.inputs import TurnCollator
    from profiler.training.losses import build_loss
    from profiler.training.losses import WithLoss
    from profiler.training.optim import build_optimizer

    model, tokenizer, train, counts, optim, loss_spec = build(data, cache_dir, overrides)
    loss_fn = build_loss(loss_spec, counts, len(train))


    wrapped = WithLoss(model, loss_fn)
    optimizer = build_optimizer(model, optim)
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch_size, max_steps=steps,
                             logging_steps=10**9, save_strategy="no", report_to=[], use_cpu=True,
                             dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True)
    trainer = HFTrainer(model=wrapped, args=args, train_dataset=train.remove_columns(["length"]),
                        data_collator=TurnCollator(tokenizer), optimizers=(optimizer, None))
    start = time.perf_counter()
    trainer.train()
    return {"seconds": time.perf_counter() - start, "steps": trainer.state.global_step}


def child(runner: str, data: str, cache_dir: str, steps: int, batch_size: int, overrides: list[str]) -> None:
    result = {"ours": run_ours, "hf": run_hf}[runner](data, cache_dir, steps, batch_size, overrides)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/synthetic/train.jsonl")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "profiler"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--child", choices=["ours", "hf"])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the train config (model.num_layers=6)")
    a = parser.parse_args()
    if a.child:
        return child(a.child, a.data, a.cache_dir, a.steps, a.batch_size, a.overrides)
    rows = {}
    for runner in ("hf", "ours"):
        out = subprocess.run([sys.executable, __file__, "--child", runner, "--data", a.data, "--cache-dir", a.cache_dir,
                              "--steps", str(a.steps), "--batch-size", str(a.batch_size), *a.overrides],
                             capture_output=True, text=True, check=True).stdout
        rows[runner] = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[7:])
    base = rows["hf"]["steps"] * a.batch_size / rows["hf"]["seconds"]
    cfg = recipe(a.overrides)
    print(f"\nbatch {a.batch_size}, {a.steps} optimizer steps, fp32, {cfg.model.base} "
          f"{cfg.model.num_layers or 'all'} layers, lower {cfg.optim.freeze_layers} frozen, "
          f"lr {cfg.optim.lr} / head {cfg.optim.head_lr} (experiment=cpu_fast {' '.join(a.overrides)})\n")
    print("| runner | samples/s | vs HF Trainer | peak RSS (MB) |\n|---|---|---|---|")
    for name, label in (("hf", "HF Trainer (defaults)"), ("ours", "profiler-train loop")):
        sps = rows[name]["steps"] * a.batch_size / rows[name]["seconds"]
        print(f"| {label} | {sps:.1f} | {sps / base:.2f}x | {rows[name]['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
