"""Batch prediction over dialogue files: streaming, resumable, shardable across processes.

The input is cut into chunks of ``chunk_dialogues`` consecutive records (valid or not), numbered
in input order. Each chunk is scored into its own part file, committed by an atomic rename, so a
chunk is either wholly done or not done at all. Hence:

* resume: a re-run with the same arguments skips committed chunks (kill -9 at any moment loses
  at most the chunks in flight, never duplicates or gaps);
* several processes (``accelerate launch``): process r takes chunks r, r+N, r+2N…; the main process
  concatenates the parts in chunk order, so the output equals a single-process run byte for byte;
* flat memory: one chunk of dialogues is held at a time, whatever the input size.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path

from tqdm.auto import tqdm

from profiler import privacy
from profiler.faults import fault_point
from profiler.jsonl import dumps_line
from profiler.data.contract import Record, expand_paths, iter_records
from profiler.data.lines import count_records
from profiler.predict.output import ScoresSpec, predict_rows
from profiler.modeling import ModelDirError
from profiler.predictor import InferenceSettings, Predictor

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


class ResumeRefused(RuntimeError):
    """Unfinished parts of another run (other model, settings or inputs) sit where this one would write."""


@dataclass(frozen=True)
class PredictJob:
    model_dir: Path
    inputs: list[str]
    output: Path
    chunk_dialogues: int = 256
    scores: ScoresSpec = field(default_factory=ScoresSpec)
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    restart: bool = False         # discard unfinished parts of a different run instead of refusing
    redact_turns: bool = False    # mask phone/ID/card numbers and e-mails in turns.jsonl's text too

    @property
    def parts_dir(self) -> Path:
        return self.output.parent / f".{self.output.name}.parts"

    @property
    def errors_path(self) -> Path:
        return self.output.parent / "errors.jsonl"

    def fingerprint(self, files: list[Path]) -> dict:
        """Everything that must not change between a killed run and its resumption, by name, so a
        refusal can say what changed. The model counts by content (a sha256 of every file that can
        change a score), since weights retrained in place keep the same config.json."""
        settings = {k: v for k, v in asdict(self.inference).items() if k != "device"}  # all that can change a score
        return {"model_path": str(self.model_dir.resolve()), "model_files": model_digest(self.model_dir),
                "inference": settings, "scores": asdict(self.scores), "chunk_dialogues": self.chunk_dialogues,
                "redact_turns": self.redact_turns,
                "inputs": [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]}


def model_digest(model_dir: Path) -> dict[str, str]:
    """sha256 of each top-level file of a model directory or bundle, except its human-readable card
    (about 0.3 s for e5-small's 266 MB on one core, once per run)."""
    out = {}
    for path in sorted(Path(model_dir).iterdir()):
        if path.is_file() and path.suffix not in (".md", ".html", ".png"):
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out[path.name] = h.hexdigest()
    return out


def fingerprint_changes(old: dict, new: dict) -> list[str]:
    """What differs between two fingerprints, in words: ``model file model.safetensors``, ``inference.onnx_variant``."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            label = "model file " if key == "model_files" else f"{key}."
            changes += [f"{label}{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        else:
            changes.append(key)
    return changes


def chunks(records: Iterator[Record], size: int) -> Iterator[tuple[int, list[Record]]]:
    for number, chunk in enumerate(iter(lambda: list(islice(records, size)), [])):
        yield number, chunk


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS after each chunk (glibc only; elsewhere a no-op).
    Batches of ever-different shapes fragment the heap: without this, resident memory crept up
    8% over 66 chunks of a 100k-turn run; with it, 1% (scripts/bench_predict.py)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _atomic_write(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def turn_lines(predictor: Predictor, dialogues: list[dict], scores: ScoresSpec, redact_turns: bool) -> list[str]:
    """The turns.jsonl lines of some valid dialogues: shared by both engines, so their bytes agree."""
    rows = predict_rows(predictor, dialogues, scores)
    if redact_turns:
        for row in rows:
            row["text"] = privacy.redact(row["text"])
    return [dumps_line(row) for row in rows]


def score_chunk(predictor: Predictor, records: list[Record], job: PredictJob, number: int) -> int:
    """Score one chunk into its part files; the turns file is written last: it marks the chunk done."""
    dialogues = [r.dialogue for r in records if r.dialogue is not None]
    lines = turn_lines(predictor, dialogues, job.scores, job.redact_turns)
    errors = [dumps_line(p.to_dict()) for r in records for p in r.problems]
    meta = {"records": len(records), "dialogues": len(dialogues), "rejected": len(records) - len(dialogues),
            "turns": len(lines)}
    _atomic_write(job.parts_dir / f"{number:08d}.errors.jsonl", errors)
    _atomic_write(job.parts_dir / f"{number:08d}.meta.json", [json.dumps(meta)])
    _atomic_write(job.parts_dir / f"{number:08d}.jsonl", lines)
    return len(lines)


def _prepare_parts(job: PredictJob, fingerprint: dict, parts_dir: Path | None = None) -> None:
    parts_dir = parts_dir or job.parts_dir  # the Ray engine keeps its parts elsewhere, under the same rule
    manifest = parts_dir / MANIFEST
    if manifest.is_file():
        old = json.loads(manifest.read_text()).get("fingerprint")
        changes = fingerprint_changes(old if isinstance(old, dict) else {}, fingerprint)
        if not changes:
            log.info("resuming from %s", parts_dir)
            return
        if not job.restart:
            raise ResumeRefused(f"{parts_dir}: unfinished parts of a run with another {', '.join(changes[:6])}; "
                                f"mixing them would give rows from two runs. Re-run with restart=true to discard "
                                f"them, or restore what changed to resume.")
        log.warning("restart=true: discarding %s (changed: %s)", parts_dir, ", ".join(changes[:6]))
        shutil.rmtree(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(manifest, [json.dumps({"fingerprint": fingerprint, "model_dir": str(job.model_dir)})])


def run_predict(job: PredictJob) -> dict:
    """Score every customer turn of every input dialogue into ``job.output``; returns the summary."""
    from accelerate import PartialState
    import torch

    state = PartialState(cpu=not torch.cuda.is_available())
    files = expand_paths(job.inputs)
    inference = job.inference
    if inference.device == "auto" and state.num_processes > 1:
        inference = InferenceSettings(**{**asdict(inference), "device": str(state.device)})
    if not job.model_dir.is_dir():
        raise ModelDirError(f"{job.model_dir}: no such model directory")
    if state.is_main_process:  # before loading the model: a refused resume should cost nothing
        job.output.parent.mkdir(parents=True, exist_ok=True)
        _prepare_parts(job, job.fingerprint(files))
    state.wait_for_everyone()
    predictor = Predictor.from_pretrained(job.model_dir, settings=inference)
    started, done_turns, n_chunks = time.perf_counter(), 0, 0
    # total: input records (dialogues and rejected lines), cheap to count except in gzip files
    bar = tqdm(total=count_records(files), desc=f"predict[{state.process_index}]", unit="dialogue",
               disable=not state.is_local_main_process)
    for number, records in chunks(iter_records(files, None, check_labels=False), job.chunk_dialogues):
        n_chunks = number + 1
        bar.update(len(records))
        if number % state.num_processes != state.process_index or (job.parts_dir / f"{number:08d}.jsonl").exists():
            continue
        n = score_chunk(predictor, records, job, number)
        fault_point(number)  # tests stop a run here (PROFILER_FAULT)
        _release_free_memory()
        done_turns += n
        bar.set_postfix(turns=done_turns, refresh=False)
    bar.close()
    seconds = time.perf_counter() - started
    state.wait_for_everyone()
    if not state.is_main_process:
        return {}
    summary = merge_parts(job, n_chunks)
    summary.update(seconds=round(seconds, 2), turns_scored_now=done_turns,
                   turns_per_second=round(done_turns / seconds, 1) if seconds else None,
                   processes=state.num_processes)
    (job.output.parent / "predict_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def merge_parts(job: PredictJob, n_chunks: int) -> dict:
    """Concatenate the parts in chunk order (atomically), then remove them."""
    totals = {"records": 0, "dialogues": 0, "rejected": 0, "turns": 0}
    missing = [i for i in range(n_chunks) if not (job.parts_dir / f"{i:08d}.jsonl").exists()]
    if missing:
        raise RuntimeError(f"{job.parts_dir}: chunks {missing[:10]} were never written")
    for target, suffix in ((job.output, ".jsonl"), (job.errors_path, ".errors.jsonl")):
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as out:
            for i in range(n_chunks):
                with open(job.parts_dir / f"{i:08d}{suffix}", "rb") as part:
                    shutil.copyfileobj(part, out)
        os.replace(tmp, target)
    for i in range(n_chunks):
        meta = json.loads((job.parts_dir / f"{i:08d}.meta.json").read_text())
        for k in totals:
            totals[k] += meta[k]
    shutil.rmtree(job.parts_dir)
    return {**totals, "output": str(job.output), "errors": str(job.errors_path)}
