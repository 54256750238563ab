"""profiler-predict: per-turn tags for every customer turn, then per-customer profiles."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from profiler.cli.common import EXIT_OK, EXIT_REJECTED, run_task, to_dict
from profiler.cli.hydra_app import hydra_app
from profiler.predict.output import ScoresSpec
from profiler.predict.profiles import write_profiles
from profiler.modeling import ModelDirError
from profiler.predict.runner import PredictJob, ResumeRefused, run_predict
from profiler.predictor import InferenceSettings
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)


def build_job(cfg: DictConfig) -> PredictJob:
    inputs = cfg.input if isinstance(cfg.input, str) else list(cfg.input)
    return PredictJob(model_dir=Path(cfg.model_dir), inputs=inputs, output=Path(cfg.output),
                      chunk_dialogues=cfg.chunk_dialogues, scores=ScoresSpec(**to_dict(cfg.scores)),
                      inference=InferenceSettings(**to_dict(cfg.inference)), restart=cfg.restart,
                      redact_turns=cfg.privacy.redact_turns)


def predict(cfg: DictConfig) -> dict:
    if cfg.num_threads:
        torch.set_num_threads(int(cfg.num_threads))
    job = build_job(cfg)
    engine = to_dict(cfg.engine)
    if engine.pop("name") == "ray":
        from profiler.predict.ray_engine import RaySettings, run_ray  # Ray itself is imported in there only

        settings = RaySettings(**engine)
        summary = run_ray(job, settings)
        if settings.merge == "none":  # no turns.jsonl to build profiles from: the parts are the product
            return summary
    else:
        summary = run_predict(job)
    if summary and cfg.profiles:
        taxonomy = Taxonomy.of_model(job.model_dir)
        summary.update(write_profiles(job.output, taxonomy, job.output.parent, cfg.evidence_per_tag,
                                      redact=cfg.privacy.redact))
    if summary:
        log.info("%d dialogues (%d rejected -> %s), %d customer turns -> %s; %s profiles",
                 summary["dialogues"], summary["rejected"], summary["errors"], summary["turns"], summary["output"],
                 summary.get("profiles", "no"))
    return summary


@hydra_app("predict")
def main(cfg: DictConfig) -> None:
    run_task(lambda: EXIT_REJECTED if predict(cfg).get("rejected") else EXIT_OK,
             expected=(ResumeRefused, ModelDirError, FileNotFoundError))


if __name__ == "__main__":
    main()
