"""Training throughput and peak memory: profiler's loop vs Hugging Face ``Trainer``.

Same model (the main job's encoder recipe), same train data, batch size, precision, optimizer
and number of optimizer steps; each runner in its own process so peak RSS is its own. Prints a
table. Usage:
    python scripts/bench_train.py --data data/synthetic/train.jsonl --steps 60
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

RECIPE = dict(num_layers=12, max_turns=2, max_length=96, lr=2e-4, head_lr=3e-3, freeze_embeddings=True,
              freeze_layers=8)  # the main job's experiment=cpu_fast


def build(data: str, cache_dir: str):
    import torch

    from profiler.encoders.sources import resolve_base
    from profiler.inputs import ContextConfig
    from profiler.modeling import TaggerSettings, TurnTagger, truncate_layers
    from profiler.taxonomy import Taxonomy
    from profiler.training.data import encode, label_counts, load_turns

    torch.set_num_threads(2)
    taxonomy = Taxonomy.bundled()
    settings = TaggerSettings(pooling="target_mean",
                              context=ContextConfig(max_turns=RECIPE["max_turns"], max_length=RECIPE["max_length"]))
    model, tokenizer = TurnTagger.from_base(resolve_base("e5-small", cache_dir), taxonomy, settings)
    truncate_layers(model, RECIPE["num_layers"])
    train = encode(load_turns(data, taxonomy, RECIPE["max_turns"]), tokenizer, settings.context, taxonomy)
    return model, tokenizer, train, label_counts(train)


def run_ours(data: str, cache_dir: str, steps: int, batch_size: int) -> dict:
    from profiler.training.loop import Trainer, TrainArgs
    from profiler.training.losses import LossSpec, build_loss
    from profiler.training.optim import OptimSpec

    model, tokenizer, train, counts = build(data, cache_dir)
    loss = build_loss(LossSpec("bce_pos_weight"), counts, len(train))
    epochs = steps / ((len(train) + batch_size - 1) // batch_size)
    optim = OptimSpec(lr=RECIPE["lr"], head_lr=RECIPE["head_lr"], freeze_embeddings=RECIPE["freeze_embeddings"],
                       freeze_layers=RECIPE["freeze_layers"])
    args = TrainArgs(epochs=epochs, batch_size=batch_size, eval_every=10**9, checkpoint_every=10**9, optim=optim)
    trainer = Trainer(model, tokenizer, loss, train, train.select(range(64)), args, Path(tempfile.mkdtemp()),
                      save_best=lambda m: None)
    trainer._finished = lambda: trainer.state.step >= steps  # time the loop itself: no evaluation/checkpoints
    trainer.maybe_evaluate = lambda end_of_epoch: None
    trainer.maybe_checkpoint = lambda end_of_epoch: None
    start = time.perf_counter()
    trainer.fit()
    return {"seconds": time.perf_counter() - start, "steps": trainer.state.step}


def run_hf(data: str, cache_dir: str, steps: int, batch_size: int) -> dict:
    import torch
    from transformers import Trainer as HFTrainer
    from transformers import TrainingArguments

    from profiler.inputs import TurnCollator
    from profiler.training.losses import LossSpec, build_loss
    from profiler.training.optim import OptimSpec, build_optimizer

    model, tokenizer, train, counts = build(data, cache_dir)
    loss_fn = build_loss(LossSpec("bce_pos_weight"), counts, len(train))

    class WithLoss(torch.nn.Module):  # HF Trainer wants the loss from forward()
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, labels=None, label_mask=None, num_items_in_batch=None, **inputs):
            logits = self.inner(**inputs).logits
            return {"loss": loss_fn(logits, labels, label_mask), "logits": logits}

    wrapped = WithLoss(model)
    optimizer = build_optimizer(model, OptimSpec(lr=RECIPE["lr"], head_lr=RECIPE["head_lr"],
                                                 freeze_embeddings=RECIPE["freeze_embeddings"],
                       freeze_layers=RECIPE["freeze_layers"]))
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=batch_size, max_steps=steps,
                             logging_steps=10**9, save_strategy="no", report_to=[], use_cpu=True,
                             dataloader_num_workers=0, remove_unused_columns=False, disable_tqdm=True)
    trainer = HFTrainer(model=wrapped, args=args, train_dataset=train.remove_columns(["length"]),
                        data_collator=TurnCollator(tokenizer), optimizers=(optimizer, None))
    start = time.perf_counter()
    trainer.train()
    return {"seconds": time.perf_counter() - start, "steps": trainer.state.global_step}


def child(runner: str, data: str, cache_dir: str, steps: int, batch_size: int) -> None:
    result = {"ours": run_ours, "hf": run_hf}[runner](data, cache_dir, steps, batch_size)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/synthetic/train.jsonl")
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "profiler"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--child", choices=["ours", "hf"])
    a = parser.parse_args()
    if a.child:
        return child(a.child, a.data, a.cache_dir, a.steps, a.batch_size)
    rows = {}
    for runner in ("hf", "ours"):
        out = subprocess.run([sys.executable, __file__, "--child", runner, "--data", a.data, "--cache-dir", a.cache_dir,
                              "--steps", str(a.steps), "--batch-size", str(a.batch_size)],
                             capture_output=True, text=True, check=True).stdout
        rows[runner] = json.loads(next(x for x in out.splitlines() if x.startswith("RESULT "))[7:])
    base = rows["hf"]["steps"] * a.batch_size / rows["hf"]["seconds"]
    print(f"\nbatch {a.batch_size}, {a.steps} optimizer steps, fp32, e5-small {RECIPE['num_layers']} layers, lower {RECIPE['freeze_layers']} frozen\n")
    print("| runner | samples/s | vs HF Trainer | peak RSS (MB) |\n|---|---|---|---|")
    for name, label in (("hf", "HF Trainer (defaults)"), ("ours", "profiler-train loop")):
        sps = rows[name]["steps"] * a.batch_size / rows[name]["seconds"]
        print(f"| {label} | {sps:.1f} | {sps / base:.2f}x | {rows[name]['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
