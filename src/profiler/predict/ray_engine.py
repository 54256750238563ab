"""``profiler-predict engine=ray``: the same prediction, run by Ray Data across a cluster.

Pipeline: a line datasource (one row per chunk: file indices, line numbers, raw lines) -> the
contract validator as a CPU task stage -> a fixed pool of scoring actors (GPU or CPU), each
wrapping the project's own ``Predictor`` and ``predict_rows`` and committing one Parquet part per
chunk -> a merge owned by profiler (``ray_parts``).

Why a row per chunk rather than a row per line: the actor must score exactly the records the local
runner puts in one chunk. Token-budget batching pads by length within a chunk, and a different
batch composition moves scores in the last float bits, so equal chunks are what makes the result
equal engine=local byte for byte. Ray may slice and coalesce blocks as it likes; it never splits a row.

Ray is imported only here, and only when engine=ray is chosen (``pip install 'profiler[cluster]'``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pyarrow as pa
from tqdm.auto import tqdm

from profiler.data.contract import Problem, duplicate_problem, validate_line
from profiler.data.lines import LineError, expand_paths, raw_records
from profiler.jsonl import dumps_line
from profiler.predict import ray_parts
from profiler.predict.runner import PredictJob, _prepare_parts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None          # None: start a local cluster; "auto": join the running one
    actors: int = 1                     # fixed actor pool: autoscaling ramps up too slowly for batch jobs
    gpus_per_actor: float = 0.0         # fractions share a GPU between actors
    cpus_per_actor: float = 1.0
    batch_dialogues: int | None = None  # dialogues per actor call (a chunk); None: the job's chunk_dialogues
    timeout_s: float | None = 1800.0    # no chunk finished for this long: stop (hung actor); re-run resumes
    merge: str = "jsonl"                # jsonl: the local engine's files; none: keep the Parquet parts + manifest
    model_cache: str | None = None      # node-local directory for model copies (None: the system temp dir)
    validate_cpus: float = 0.25         # per validation task: small, so actors never starve the read stage
    fail_after_batches: int | None = None  # test hook: each actor raises after committing this many chunks


def parts_dir_for(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def model_key(model_dir: Path) -> str:
    """Names the node-local copy: any changed file of the model gives a new copy."""
    h = hashlib.sha256()
    for p in sorted(model_dir.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(model_dir)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def local_model_copy(model_dir: Path, key: str, cache_root: str | None) -> Path:
    """Copy the shared model directory to this node once (concurrent actors race to one rename);
    the weights never travel through Ray's object store."""
    root = Path(cache_root or Path(tempfile.gettempdir()) / "profiler-models")
    final = root / key
    if not final.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{key}.{uuid.uuid4().hex}"
        shutil.copytree(model_dir, tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # another actor of this node got there first
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_chunks(files: list[str], chunk_dialogues: int, skip: frozenset[int]):
    """The datasource's read task: records numbered across files in input order, as iter_records does."""
    def table(number: int, rows: list[tuple[int, int, str]]) -> pa.Table:
        return pa.table({"chunk": [number], "file": [[r[0] for r in rows]], "line": [[r[1] for r in rows]],
                         "raw": [[r[2] for r in rows]]})

    rows: list[tuple[int, int, str]] = []
    number = 0
    for index, path in enumerate(files):
        for line, raw in raw_records(Path(path)):
            # Parquet rows arrive as dicts; as JSON text they travel in one string column, and so does
            # a line that could not be read (bad encoding), marked for the validation stage
            if isinstance(raw, LineError):
                raw = UNREADABLE + json.dumps([raw.field, raw.reason], ensure_ascii=False)
            rows.append((index, line, raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)))
            if len(rows) == chunk_dialogues:
                if number not in skip:
                    yield table(number, rows)
                rows, number = [], number + 1
    if rows and number not in skip:
        yield table(number, rows)


def count_records(files: list[str]) -> int:
    return sum(1 for f in files for _ in raw_records(Path(f)))


UNREADABLE = "\x00unreadable\x00"  # prefix of a line the reader could not decode (never valid JSON)

# explicit, so a chunk without a single error (or without a valid id) types like any other
VALIDATED = pa.schema([("chunk", pa.int64()), ("file", pa.list_(pa.int64())), ("line", pa.list_(pa.int64())),
                       ("raw", pa.list_(pa.string())), ("dialogue_id", pa.list_(pa.string())),
                       ("dup", pa.list_(pa.bool_())), ("errors", pa.list_(pa.list_(pa.string())))])


def validate_chunks(batch: pa.Table, files: list[str], duplicates: dict[str, str]) -> pa.Table:
    """CPU stage: the contract validator on every record; the raw line travels on only when valid."""
    out: dict[str, list] = {"chunk": [], "file": [], "line": [], "raw": [], "dialogue_id": [], "dup": [],
                            "errors": []}
    for chunk, fidx, lines, raws in zip(*(batch[c].to_pylist() for c in ("chunk", "file", "line", "raw"))):
        ids, dups, errors, kept = [], [], [], []
        for f, line, raw in zip(fidx, lines, raws):
            if raw.startswith(UNREADABLE):
                field, reason = json.loads(raw[len(UNREADABLE):])
                obj, problems = None, [Problem(files[f], line, field, reason)]
            else:
                obj, problems = validate_line(raw, files[f], line, None, check_labels=False)
            first = duplicates.get(f"{f}:{line}")
            if obj is not None and first is not None:
                problems = [duplicate_problem(files[f], line, obj["dialogue_id"], first)]
            ids.append(obj["dialogue_id"] if obj is not None else None)
            dups.append(first is not None and obj is not None)
            errors.append([dumps_line(p.to_dict()) for p in problems])
            kept.append(raw if not problems else "")
        for key, value in zip(out, (chunk, fidx, lines, kept, ids, dups, errors)):
            out[key].append(value)
    return pa.table(out, schema=VALIDATED)


class ScoreActor:
    """One model per actor, loaded once from its node-local copy; one committed part per chunk."""

    def __init__(self, model_dir: str, key: str, cache_root: str | None, inference: dict, scores: dict,
                 parts_dir: str, num_threads: int | None, fail_after: int | None, redact_turns: bool = False):
        import torch

        from profiler.predict.output import ScoresSpec
        from profiler.predictor import InferenceSettings, Predictor

        if num_threads:
            torch.set_num_threads(num_threads)
        local = local_model_copy(Path(model_dir), key, cache_root)
        self.predictor = Predictor.from_pretrained(local, settings=InferenceSettings(**inference))
        self.scores, self.parts_dir, self.fail_after, self.done = ScoresSpec(**scores), Path(parts_dir), fail_after, 0
        self.redact_turns = redact_turns

    def __call__(self, batch: pa.Table) -> pa.Table:
        from profiler.predict.runner import turn_lines

        summary: dict[str, list] = {"chunk": [], "records": [], "turns": []}
        for row in batch.to_pylist():
            if self.fail_after is not None and self.done >= self.fail_after:
                raise RuntimeError(f"fault injection: actor stops after {self.done} chunks")
            dialogues = [json.loads(raw) for raw in row["raw"] if raw]
            lines = turn_lines(self.predictor, dialogues, self.scores, self.redact_turns)
            records, at = [], 0
            for f, line, raw, did, dup, errors in zip(row["file"], row["line"], row["raw"], row["dialogue_id"],
                                                      row["dup"], row["errors"]):
                # one output line per customer turn, in dialogue order (as explode_dialogue makes them)
                n = sum(t["speaker"] == "customer" for t in json.loads(raw)["turns"]) if raw else 0
                records.append((f, line, did, dup, errors, lines[at:at + n]))
                at += n
            assert at == len(lines), "turn rows and dialogues out of step"
            ray_parts.write_part(self.parts_dir, row["chunk"], ray_parts.part_table(records))
            self.done += 1
            for key, value in zip(summary, (row["chunk"], len(records), len(lines))):
                summary[key].append(value)
        return pa.table(summary)


def _execute(job: PredictJob, settings: RaySettings, files: list[str], parts_dir: Path,
             duplicates: dict[str, str], pending_records: int) -> int:
    import ray
    from ray.data import ActorPoolStrategy, Datasource, ReadTask
    from ray.data.block import BlockMetadata

    class LineDatasource(Datasource):
        """One read task: reading is ~100x faster than scoring, and chunk numbers are sequential."""

        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context=None) -> list[ReadTask]:
            skip = frozenset(ray_parts.committed_chunks(parts_dir))
            meta = BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=files)
            size = job.chunk_dialogues
            return [ReadTask(lambda: read_chunks(files, size, skip), meta)]

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # ours has the record total
    ctx.print_on_execution_start = False
    ds = ray.data.read_datasource(LineDatasource(), num_cpus=settings.validate_cpus)
    ds = ds.map_batches(validate_chunks, batch_format="pyarrow", batch_size=1, num_cpus=settings.validate_cpus,
                        fn_kwargs={"files": files, "duplicates": duplicates})
    inference = asdict(job.inference)
    ds = ds.map_batches(
        ScoreActor, batch_format="pyarrow", batch_size=1, compute=ActorPoolStrategy(size=settings.actors),
        num_cpus=settings.cpus_per_actor, num_gpus=settings.gpus_per_actor or None,
        fn_constructor_kwargs={
            "model_dir": str(job.model_dir.resolve()), "key": model_key(job.model_dir), "inference": inference,
            "cache_root": settings.model_cache, "scores": asdict(job.scores), "parts_dir": str(parts_dir.resolve()),
            "num_threads": max(1, int(settings.cpus_per_actor)), "fail_after": settings.fail_after_batches,
            "redact_turns": job.redact_turns})
    return _drain(ds, settings.timeout_s, pending_records)


def _drain(ds, timeout_s: float | None, total: int) -> int:
    """Pull the per-chunk summaries; a watchdog ends the run when none arrives for timeout_s."""
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                q.put(("rows", batch))
            q.put(("end", None))
        except BaseException as e:  # handed to the main thread, which raises it
            q.put(("error", e))

    threading.Thread(target=pump, daemon=True, name="ray-predict-drain").start()
    turns = 0
    with tqdm(total=total, desc="predict[ray]", unit="record") as bar:
        while True:
            try:
                kind, item = q.get(timeout=timeout_s)
            except queue.Empty:
                raise TimeoutError(f"no chunk finished in {timeout_s}s (a hung actor?); committed parts are kept: "
                                   f"re-run the same command to resume") from None
            if kind == "error":
                raise item
            if kind == "end":
                return turns
            bar.update(sum(item["records"].to_pylist()))
            turns += sum(item["turns"].to_pylist())


def run_ray(job: PredictJob, settings: RaySettings) -> dict:
    try:
        import ray
    except ImportError as e:
        raise ImportError("engine=ray needs the cluster extra: pip install 'profiler[cluster]'") from e
    if settings.merge not in ("jsonl", "none"):
        raise ValueError(f"engine.merge must be jsonl or none, got {settings.merge!r}")
    if settings.batch_dialogues:
        job = replace(job, chunk_dialogues=settings.batch_dialogues)  # in the fingerprint, like chunk_dialogues
    paths = expand_paths(job.inputs)
    files = [str(p) for p in paths]
    parts_dir = parts_dir_for(job.output)
    job.output.parent.mkdir(parents=True, exist_ok=True)
    _prepare_parts(job, job.fingerprint(paths), parts_dir)
    n_records = count_records(files)
    n_chunks = -(-n_records // job.chunk_dialogues)
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=settings.address, include_dashboard=False, logging_level=logging.WARNING)
    started, turns_now = time.perf_counter(), 0
    try:
        # a second round only when a duplicate id turned up in a chunk scored before it was known
        for _ in range(3):
            duplicates = ray_parts.load_duplicates(parts_dir)
            missing = ray_parts.missing_chunks(parts_dir, n_chunks)
            if missing:
                pending = sum(min(job.chunk_dialogues, n_records - c * job.chunk_dialogues) for c in missing)
                turns_now += _execute(job, settings, files, parts_dir, duplicates, pending)
            found, stale = ray_parts.scan_duplicates(parts_dir, n_chunks, files)
            if not stale:
                break
            log.info("%d duplicate dialogue id(s) found; scoring %d chunk(s) again without them", len(found),
                     len(stale))
            ray_parts.save_duplicates(parts_dir, found)
            for chunk in stale:
                for p in parts_dir.glob(f"{chunk:08d}*.parquet"):
                    p.unlink()
        else:
            raise RuntimeError(f"{parts_dir}: duplicate resolution did not settle")
    finally:
        if started_here:
            ray.shutdown()
    seconds = time.perf_counter() - started
    if settings.merge == "none":
        summary = ray_parts.write_dataset_manifest(parts_dir, n_chunks, files)
    else:
        summary = ray_parts.merge(parts_dir, n_chunks, job.output, job.errors_path)
    summary.update(seconds=round(seconds, 2), turns_scored_now=turns_now, engine="ray", actors=settings.actors,
                   turns_per_second=round(turns_now / seconds, 1) if seconds else None)
    (job.output.parent / "predict_summary.json").write_text(json.dumps(summary, indent=2))
    return summary
