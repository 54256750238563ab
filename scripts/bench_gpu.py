"""The GPU path, measured: predict turns/s per precision and backend against the HF pipeline on the same
device, training samples/s against HF Trainer, peak GPU memory, GPU utilisation during predict, and
whether the CPU side (tokenisation) bounds the predict rate. Prints markdown tables (docs/gpu.md).

On a machine without CUDA the same script runs (tests/test_bench_gpu.py runs it on a tiny model, so it
cannot rot): fp16/bf16 rows say "n/a (no CUDA)", ONNX Runtime runs on its CPU provider and says so.
Training settings come from the composed Hydra train config (``--train`` overrides), not a copied recipe.
Usage on a GPU box:
    python scripts/bench_gpu.py --model models/e5-small-synthetic --bundle bundles/e5-small-synthetic \
        --data data/synthetic/test.jsonl --turns 20000 \
        --train "experiment=gpu_full trainer=gpu data.train=data/synthetic/train.jsonl" --train-steps 100
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import hf_model, replicate, text_pairs  # noqa: E402  (same pairs and weights as bench_predict)

NO_CUDA = "n/a (no CUDA)"


class GpuSampler:
    """nvidia-smi utilisation every 0.2 s while a block runs (mean, in %); None without a GPU."""

    def __init__(self, device: torch.device):
        self.on = device.type == "cuda"
        self.samples: list[float] = []

    def _loop(self) -> None:
        while not self._stop.is_set():
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                  f"--id={torch.cuda.current_device()}"], capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip():
                self.samples.append(float(out.stdout.split()[0]))
            self._stop.wait(0.2)

    def __enter__(self) -> GpuSampler:
        if self.on:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
            torch.cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc) -> None:
        if self.on:
            torch.cuda.synchronize()
            self._stop.set()
            self._thread.join()

    @property
    def util(self) -> str:
        return f"{sum(self.samples) / len(self.samples):.0f}%" if self.samples else "n/a"

    @property
    def peak_mb(self) -> str:
        return f"{torch.cuda.max_memory_allocated() / 2**20:.0f}" if self.on else "n/a"


def load_dialogues(data: Path) -> list[dict]:
    from profiler.data.contract import expand_paths, iter_records

    return [r.dialogue for r in iter_records(expand_paths(data), None, check_labels=False) if r.dialogue]


def predict_row(model_dir: str, dialogues: list[dict], backend: str, precision: str, device: torch.device) -> dict:
    """profiler's own path (Predictor + predict_rows) over chunks of 256 dialogues, as profiler-predict runs."""
    from profiler.predict.output import ScoresSpec, customer_turns, predict_rows
    from profiler.predictor import TURN_COLUMNS, InferenceSettings, Predictor

    settings = InferenceSettings(backend=backend, precision=precision,
                                 device=str(device) if backend == "torch" else "auto")
    p = Predictor.from_pretrained(model_dir, settings=settings)
    predict_rows(p, dialogues[:8], ScoresSpec())  # warm-up: kernels, allocator, ORT session
    turns = 0
    with GpuSampler(device) as gpu:
        start = time.perf_counter()
        for i in range(0, len(dialogues), 256):
            turns += len(predict_rows(p, dialogues[i:i + 256], ScoresSpec()))
        seconds = time.perf_counter() - start
    # the CPU side alone: building and tokenising the same (context, turn) inputs, no model
    cols = {k: [t[k] for t in customer_turns(dialogues, p.context.max_turns)] for k in TURN_COLUMNS}
    start = time.perf_counter()
    p.builder(cols)
    cpu_side = time.perf_counter() - start
    provider = p.model.session.get_providers()[0] if backend == "onnx" else str(device)
    return {"turns_per_s": turns / seconds, "gpu_util": gpu.util, "peak_mb": gpu.peak_mb, "where": provider,
            "tokenise_share": cpu_side / seconds}


def pipeline_row(model_dir: str, data: Path, precision: str, device: torch.device, batch_size: int) -> dict:
    from transformers import pipeline

    pairs, _ = text_pairs(model_dir, data)
    model, tokenizer = hf_model(model_dir)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    pipe = pipeline("text-classification", model=model.to(device=device, dtype=dtype), tokenizer=tokenizer,
                    top_k=None, function_to_apply="sigmoid", device=device, truncation=True, max_length=512)
    pipe(pairs[:8], batch_size=8)
    with GpuSampler(device) as gpu:
        start = time.perf_counter()
        pipe(pairs, batch_size=batch_size)
        seconds = time.perf_counter() - start
    return {"turns_per_s": len(pairs) / seconds, "gpu_util": gpu.util, "peak_mb": gpu.peak_mb, "where": str(device),
            "tokenise_share": None}


def compose_train(overrides: list[str]):
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="profiler.configs", version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def build_training(cfg):
    from profiler.cli.common import build_taxonomy
    from profiler.cli.train import build_encoder_job
    from profiler.training.data import annotated_counts, encode, label_counts, train_turns
    from profiler.training.losses import build_loss
    from profiler.training.run import build_model

    job = build_encoder_job(cfg)
    taxonomy = build_taxonomy(cfg.taxonomy)
    model, tokenizer, _, _ = build_model(job, taxonomy)
    context = model.settings.context
    train = encode(train_turns(job.data, taxonomy, context.max_turns, job.args.seed), tokenizer, context, taxonomy)
    return job, model, tokenizer, train, build_loss(job.loss, label_counts(train), annotated_counts(train))


def train_ours(cfg, steps: int, device: torch.device) -> dict:
    from profiler.training.loop import Trainer

    job, model, tokenizer, train, loss = build_training(cfg)
    trainer = Trainer(model, tokenizer, loss, train, train.select(range(min(64, len(train)))), job.args,
                      Path(tempfile.mkdtemp()), save_best=lambda m: None)
    trainer._finished = lambda: trainer.state.step >= steps  # the loop itself: no evaluation, no checkpoints
    trainer.maybe_evaluate = lambda end_of_epoch: None
    trainer.maybe_checkpoint = lambda end_of_epoch: None
    with GpuSampler(device) as gpu:
        start = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - start
    samples = trainer.state.step * job.args.batch_size * job.args.grad_accum
    return {"samples_per_s": samples / seconds, "peak_mb": gpu.peak_mb, "gpu_util": gpu.util,
            "precision": str(trainer.accelerator.mixed_precision)}


def train_hf(cfg, steps: int, device: torch.device) -> dict:
    from transformers import Trainer as HFTrainer
    from transformers import TrainingArguments

    from profiler.inputs import TurnCollator
    from profiler.training.losses import WithLoss
    from profiler.training.optim import build_optimizer

    job, model, tokenizer, train, loss_fn = build_training(cfg)


    cuda = device.type == "cuda"
    bf16 = cuda and torch.cuda.is_bf16_supported()
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=job.args.batch_size,
                             gradient_accumulation_steps=job.args.grad_accum, max_steps=steps, bf16=bf16,
                             use_cpu=not cuda, logging_steps=10**9, save_strategy="no", report_to=[],
                             remove_unused_columns=False, disable_tqdm=True)
    trainer = HFTrainer(model=WithLoss(model, loss_fn), args=args, train_dataset=train.remove_columns(["length"]),
                        data_collator=TurnCollator(tokenizer), optimizers=(build_optimizer(model, job.args.optim), None))
    with GpuSampler(device) as gpu:
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    samples = trainer.state.global_step * job.args.batch_size * job.args.grad_accum
    return {"samples_per_s": samples / seconds, "peak_mb": gpu.peak_mb, "gpu_util": gpu.util,
            "precision": "bf16" if bf16 else "fp32"}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a profiler model directory")
    ap.add_argument("--bundle", help="its ONNX export bundle (profiler-export): adds ONNX Runtime rows")
    ap.add_argument("--data", required=True, help="dialogues to predict on (replicated up to --turns)")
    ap.add_argument("--turns", type=int, default=20000)
    ap.add_argument("--device", default="auto", help="auto | cuda | cuda:1 | cpu")
    ap.add_argument("--precisions", default="fp32,fp16,bf16")
    ap.add_argument("--pipeline-batch", type=int, default=64)
    ap.add_argument("--train", default="experiment=gpu_full trainer=gpu",
                    help="train config overrides (space separated); empty: no training rows")
    ap.add_argument("--train-steps", type=int, default=100)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args(argv)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if a.device == "auto" else a.device))
    data = Path(tempfile.mkdtemp()) / "gpu-bench.jsonl"
    n = replicate(Path(a.data), a.turns, data)
    dialogues = load_dialogues(data)
    result: dict = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                    "turns": n, "predict": {}, "train": {}}
    for precision in a.precisions.split(","):
        cuda_only = precision != "fp32" and device.type != "cuda"
        result["predict"][f"profiler torch {precision}"] = NO_CUDA if cuda_only else \
            predict_row(a.model, dialogues, "torch", precision, device)
        result["predict"][f"HF pipeline {precision}"] = NO_CUDA if cuda_only else \
            pipeline_row(a.model, data, precision, device, a.pipeline_batch)
    if a.bundle:
        # the bundle holds fp32 and int8 graphs; ORT picks CUDA when its GPU package is installed
        for variant in ("fp32",):
            result["predict"][f"profiler ONNX Runtime {variant}"] = predict_row(a.bundle, dialogues, "onnx", variant,
                                                                               device)
    if a.train:
        cfg = compose_train(shlex.split(a.train))
        result["train"]["profiler-train loop"] = train_ours(cfg, a.train_steps, device)
        result["train"]["HF Trainer"] = train_hf(cfg, a.train_steps, device)
    print_tables(result, a)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    return result


def print_tables(result: dict, a: argparse.Namespace) -> None:
    print(f"\n{result['turns']} customer turns on {result['device']}, model {a.model}\n")
    print("| predict | turns/s | runs on | GPU util | peak GPU MB | tokenisation / predict time |\n|---|---|---|---|---|---|")
    for name, r in result["predict"].items():
        if isinstance(r, str):
            print(f"| {name} | {r} | | | | |")
            continue
        share = "-" if r["tokenise_share"] is None else f"{r['tokenise_share']:.1%}" + \
            (" (CPU-bound)" if r["tokenise_share"] > 0.5 else "")
        print(f"| {name} | {r['turns_per_s']:.1f} | {r['where']} | {r['gpu_util']} | {r['peak_mb']} | {share} |")
    if result["train"]:
        base = result["train"]["HF Trainer"]["samples_per_s"]
        print(f"\ntraining, {a.train_steps} optimizer steps, config: {a.train}\n")
        print("| train | samples/s | vs HF Trainer | precision | GPU util | peak GPU MB |\n|---|---|---|---|---|---|")
        for name, r in result["train"].items():
            print(f"| {name} | {r['samples_per_s']:.1f} | {r['samples_per_s'] / base:.2f}x | {r['precision']} | "
                  f"{r['gpu_util']} | {r['peak_mb']} |")


if __name__ == "__main__":
    main()
