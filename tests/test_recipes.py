"""The two training recipes: the CPU main job stays inside its measured time budget whatever the corpus
size, and the GPU recipe keeps the GPU trainer's settings and the whole corpus."""

from __future__ import annotations

import math

from profiler.cli.train import build_train_args
from profiler.synth.corpus import write_corpus
from profiler.synth.generator import SynthConfig
from profiler.training.loop import planned_steps

# Measured on the project's 2-core machine: 850 steps of the cpu_fast recipe train in about 8 minutes,
# which keeps the main job under 15 minutes to the end of evaluation (README, docs/real_speech.md).
STEP_BUDGET = 850


def test_cpu_main_job_config_stays_inside_its_time_budget(compose_cfg, taxonomy, tmp_path):
    cfg = compose_cfg("train", ["experiment=cpu_fast"])
    # what a step costs: 32 turns of at most 128 tokens, backward through 4 of 12 layers
    assert cfg.trainer.batch_size <= 32 and cfg.trainer.grad_accum == 1
    assert cfg.model.context.max_length <= 128
    assert cfg.optim.freeze_embeddings and cfg.optim.freeze_layers >= 8 and cfg.model.get("num_layers") in (None, 12)
    card = write_corpus(tmp_path, taxonomy, SynthConfig())   # the default corpus the main job writes
    turns = card["splits"]["train"]["customer_turns"] + card["voices"]["train_voices"]["utterances"]
    epoch_steps = math.ceil(turns * cfg.data.untagged_keep / cfg.trainer.batch_size)
    assert epoch_steps > STEP_BUDGET   # the corpus outgrew an epoch in budget: the step cap is what holds it
    assert planned_steps(epoch_steps, build_train_args(cfg)) <= STEP_BUDGET


def test_gpu_recipe_keeps_the_gpu_trainer_and_trains_everything(compose_cfg):
    cfg = compose_cfg("train", ["experiment=gpu_full", "trainer=gpu"])
    assert cfg.trainer.batch_size == 64 and cfg.trainer.get("num_threads") is None
    assert cfg.trainer.max_steps is None and cfg.data.untagged_keep == 1.0
    assert cfg.optim.freeze_layers == 0 and not cfg.optim.freeze_embeddings
    assert cfg.model.context.max_length >= 256
    assert any("voices" in str(p) for p in cfg.data.train) and any("voices" in str(p) for p in cfg.data.dev)


def test_an_experiment_never_pins_the_gpu_trainer_back_to_cpu_settings(compose_cfg):
    gpu = compose_cfg("train", ["trainer=gpu"]).trainer
    for overrides in (["trainer=gpu", "experiment=cpu_fast"], ["experiment=cpu_fast", "trainer=gpu"],
                      ["trainer=gpu", "experiment=gpu_full"]):
        trainer = compose_cfg("train", overrides).trainer
        for key in ("batch_size", "eval_batch_size", "precision", "num_threads", "max_steps"):
            assert trainer[key] == gpu[key], (overrides, key)
    cpu = compose_cfg("train", ["experiment=cpu_fast"]).trainer   # alone, the CPU main job keeps its pins
    assert (cpu.batch_size, cpu.num_threads, cpu.max_steps, cpu.epochs) == (32, 2, 850, 1)
