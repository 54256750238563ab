"""The fine-tuning loop, on accelerate: one code path for CPU, one GPU and several processes
(``accelerate launch``). It receives built objects, never a config.

Resumability: a checkpoint holds model, optimizer, scheduler and RNG states (accelerate's
``save_state``) plus ``trainer_state.json`` (step, epoch, position in the epoch, best score,
history). Batch order depends only on (seed, epoch), so ``resume`` skips the batches already seen
and ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets import Dataset
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from profiler.faults import fault_point
from profiler.inputs import TurnCollator
from profiler.metrics import headline
from profiler.scoring import forward_probs
from profiler.training.data import EpochBatchSampler
from profiler.training.optim import OptimSpec, build_optimizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainArgs:
    epochs: float = 3.0
    max_steps: int | None = None     # stop after this many optimizer steps, whatever the epochs: a time
                                     # budget that holds as the corpus grows (the schedule decays to it)
    batch_size: int = 32             # per process
    eval_batch_size: int = 64
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    precision: str = "auto"          # auto (bf16 on CUDA if supported, else fp32) | no | bf16 | fp16
    eval_every: int = 0              # optimizer steps; 0 = at the end of each epoch
    patience: int = 3                # evaluations without dev macro-F1 improvement before stopping
    checkpoint_every: int = 0        # optimizer steps; 0 = at the end of each epoch
    keep_checkpoints: int = 2
    log_every: int = 20
    seed: int = 13
    resume: bool = False
    optim: OptimSpec = field(default_factory=OptimSpec)


@dataclass
class TrainState:
    step: int = 0
    micro_batches: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_macro_f1: float = -1.0
    best_step: int = 0
    bad_evals: int = 0
    stopped_early: bool = False
    history: list[dict] = field(default_factory=list)


def resolve_precision(precision: str) -> str:
    if precision != "auto":
        return precision
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"  # bf16 autocast on CPUs without AVX-512 BF16 runs ~20x slower than fp32 (measured)


def planned_steps(steps_per_epoch: int, args: TrainArgs) -> int:
    steps = max(1, int(steps_per_epoch * args.epochs))
    return min(steps, args.max_steps) if args.max_steps else steps


class Trainer:
    def __init__(self, model: torch.nn.Module, tokenizer, loss_fn: torch.nn.Module, train: Dataset, dev: Dataset,
                 args: TrainArgs, run_dir: Path, save_best, watch: list[int] | None = None):
        self.args, self.run_dir, self.save_best = args, Path(run_dir), save_best
        self.watch = watch or []  # tag columns whose own dev macro-F1 is logged (old tags after a warm start)
        # cpu=True without CUDA: otherwise processes started by `accelerate launch` on a CPU-only
        # machine each train alone instead of joining one gloo process group
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                                       mixed_precision=resolve_precision(args.precision),
                                       gradient_accumulation_steps=args.grad_accum,
                                       log_with="tensorboard", project_dir=str(self.run_dir))
        set_seed(args.seed)
        collate = TurnCollator(tokenizer)
        columns = [c for c in train.column_names if c != "length"]
        sampler = EpochBatchSampler(train["length"], args.batch_size, args.seed)
        train_dl = DataLoader(train.select_columns(columns), batch_sampler=sampler, collate_fn=collate)
        dev_dl = DataLoader(dev.select_columns(columns), batch_size=args.eval_batch_size, collate_fn=collate)
        self.steps_per_epoch = math.ceil(len(sampler) / args.grad_accum / self.accelerator.num_processes)
        self.total_steps = planned_steps(self.steps_per_epoch, args)
        optimizer = build_optimizer(model, args.optim)
        n_proc = self.accelerator.num_processes  # accelerate steps the scheduler once per process
        scheduler = get_scheduler(args.optim.schedule, optimizer,
                                  num_warmup_steps=int(args.optim.warmup_ratio * self.total_steps) * n_proc,
                                  num_training_steps=self.total_steps * n_proc)
        (self.model, self.optimizer, self.train_dl, self.dev_dl, self.scheduler) = self.accelerator.prepare(
            model, optimizer, train_dl, dev_dl, scheduler)
        self.loss_fn = loss_fn.to(self.accelerator.device)
        self.state = TrainState()
        self.ckpt_root = self.run_dir / "checkpoints"

    # --- evaluation ----------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        probs, labels, masks, losses = [], [], [], []
        for batch in self.dev_dl:  # one pass: each batch's labels stay beside its probabilities
            p = next(forward_probs(self.model, [batch]))
            logits = torch.logit(p.clamp(1e-7, 1 - 1e-7))
            mask = batch.get("label_mask", torch.ones_like(batch["labels"]))
            losses.append(self.loss_fn(logits, batch["labels"], mask).reshape(1))
            p, y, m = self.accelerator.gather_for_metrics((p, batch["labels"], mask))
            probs.append(p.cpu().numpy())
            labels.append(y.cpu().numpy())
            masks.append(m.cpu().numpy())
        self.model.train()
        truth, scores = np.concatenate(labels) > 0.5, np.concatenate(probs)
        # fixed 0.5 here: tuned thresholds come after training; never-annotated pairs are not scored
        mask = np.concatenate(masks) > 0.5
        metrics = headline(truth, scores >= 0.5, mask=mask)
        if self.watch:
            w = self.watch
            metrics["watched_macro_f1"] = headline(truth[:, w], scores[:, w] >= 0.5, mask=mask[:, w])["macro_f1"]
        metrics["dev_loss"] = float(self.accelerator.gather(torch.cat(losses)).mean())
        return metrics

    def maybe_evaluate(self, end_of_epoch: bool) -> None:
        every = self.args.eval_every
        if not ((every and self.state.step % every == 0) or (not every and end_of_epoch)):
            return
        if self.state.history and self.state.history[-1]["step"] == self.state.step:
            return  # an epoch that ends on an eval_every step: evaluated once, not twice
        metrics = self.evaluate()
        state = self.state
        record = {"step": state.step, "epoch": state.epoch, **{f"dev_{k}" if not k.startswith("dev_") else k: v
                                                                for k, v in metrics.items()}}
        state.history.append(record)
        self.accelerator.log(record, step=state.step)
        if metrics["macro_f1"] > state.best_macro_f1:
            state.best_macro_f1, state.best_step, state.bad_evals = metrics["macro_f1"], state.step, 0
            if self.accelerator.is_main_process:
                self.save_best(self.accelerator.unwrap_model(self.model))
        else:
            state.bad_evals += 1
            state.stopped_early = state.bad_evals >= self.args.patience
        log.info("step %d: dev macro-F1 %.4f micro-F1 %.4f loss %.4f (best %.4f @ %d)", state.step,
                 metrics["macro_f1"], metrics["micro_f1"], metrics["dev_loss"], state.best_macro_f1, state.best_step)
        if self.accelerator.is_main_process:
            with open(self.run_dir / "metrics_history.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
        self.accelerator.wait_for_everyone()

    # --- checkpoints ---------------------------------------------------------------------
    def checkpoint(self) -> None:
        path = self.ckpt_root / f"step-{self.state.step:07d}"
        self.accelerator.save_state(str(path))
        if self.accelerator.is_main_process:
            (path / "trainer_state.json").write_text(json.dumps(asdict(self.state)))
            for old in sorted(self.ckpt_root.glob("step-*"))[:-self.args.keep_checkpoints]:
                shutil.rmtree(old, ignore_errors=True)
        self.accelerator.wait_for_everyone()
        fault_point(self.state.step)  # tests kill a run here (PROFILER_FAULT)

    def maybe_checkpoint(self, end_of_epoch: bool) -> None:
        every = self.args.checkpoint_every
        if (every and self.state.step % every == 0) or (not every and end_of_epoch):
            self.checkpoint()

    def restore(self) -> None:
        done = sorted(p for p in self.ckpt_root.glob("step-*") if (p / "trainer_state.json").is_file())
        if not done:
            log.info("resume requested but no checkpoint in %s; starting fresh", self.ckpt_root)
            return
        with _rng_restore_watch() as failed:
            self.accelerator.load_state(str(done[-1]))
        if failed:
            log.warning("%s: the RNG state file could not be read, so this resumed run will not repeat the "
                        "uninterrupted one bit for bit (dropout and shuffling draw new numbers)", done[-1])
        self.state = TrainState(**json.loads((done[-1] / "trainer_state.json").read_text()))
        log.info("resumed from %s (step %d, epoch %d, batch %d)", done[-1], self.state.step, self.state.epoch,
                 self.state.batch_in_epoch)

    # --- the loop ------------------------------------------------------------------------
    def fit(self) -> TrainState:
        args, acc = self.args, self.accelerator
        if args.resume:
            self.restore()
        if acc.is_main_process:  # resumed: evaluations after the checkpoint are redone; fresh: none yet
            lines = "".join(json.dumps(r) + "\n" for r in self.state.history)
            (self.run_dir / "metrics_history.jsonl").write_text(lines)
        acc.init_trackers("tensorboard", config={"total_steps": self.total_steps, "seed": args.seed})
        bar = tqdm(total=self.total_steps, initial=self.state.step, desc="train",
                   disable=not acc.is_local_main_process)
        self.model.train()
        while not self._finished():
            skip = self.state.batch_in_epoch
            loader = acc.skip_first_batches(self.train_dl, skip) if skip else self.train_dl
            # accelerate's loader re-applies its own count of iterations as the epoch when iterated;
            # a resumed process has iterated nothing yet, so tell it the epoch, and tell our sampler
            loader.set_epoch(self.state.epoch)
            self._set_epoch(loader, self.state.epoch)
            for batch in loader:
                self._step(batch, bar)
                if self._finished():
                    break
            else:
                self.state.epoch += 1
                self.state.batch_in_epoch = 0
                self.maybe_evaluate(end_of_epoch=True)
                self.maybe_checkpoint(end_of_epoch=True)
        if not self.state.history or self.state.history[-1]["step"] != self.state.step:
            self.maybe_evaluate(end_of_epoch=True)  # a run that stops mid-epoch still ends evaluated
        bar.close()
        acc.end_training()
        return self.state

    def _finished(self) -> bool:
        s = self.state
        return s.stopped_early or s.step >= self.total_steps or s.epoch >= math.ceil(self.args.epochs)

    @staticmethod
    def _set_epoch(loader: DataLoader, epoch: int) -> None:
        sampler = loader.batch_sampler
        while not isinstance(sampler, EpochBatchSampler):  # accelerate wraps it for sharding
            sampler = sampler.batch_sampler
        sampler.set_epoch(epoch)

    def _step(self, batch: dict, bar) -> None:
        acc, args, state = self.accelerator, self.args, self.state
        # Dropout noise is a function of (seed, process, micro-batch) only. Restoring RNG state is not
        # enough: creating a DataLoader iterator draws from the global RNG, and a resumed run creates
        # it mid-epoch where an uninterrupted one did not.
        torch.manual_seed(args.seed * 1_000_003 + acc.process_index * 7_919 + state.micro_batches)
        state.micro_batches += 1
        with acc.accumulate(self.model):
            labels, mask = batch.pop("labels"), batch.pop("label_mask", None)
            loss = self.loss_fn(self.model(**batch).logits.float(), labels, mask)
            acc.backward(loss)
            if acc.sync_gradients and args.max_grad_norm:
                acc.clip_grad_norm_(self.model.parameters(), args.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
        state.batch_in_epoch += 1
        if not acc.sync_gradients:
            return
        state.step += 1
        bar.update(1)
        if state.step % args.log_every == 0:
            record = {"train_loss": loss.item(), "lr": self.scheduler.get_last_lr()[0]}
            acc.log(record, step=state.step)
            bar.set_postfix(loss=f"{record['train_loss']:.3f}")
        self.maybe_evaluate(end_of_epoch=False)
        if not self._finished():
            self.maybe_checkpoint(end_of_epoch=False)


@contextlib.contextmanager
def _rng_restore_watch():
    """accelerate logs an unreadable RNG-state file at INFO and carries on; catch that message so
    the loss of bit-identical resumption is a warning the user sees."""
    failed: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "Could not load random states" in record.getMessage():
                failed.append(record.getMessage())

    logger, handler = logging.getLogger("accelerate.checkpointing"), Catch()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(level or logging.INFO, logging.INFO))
    try:
        yield failed
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
