"""Parquet parts of a Ray prediction run, and the merge that turns them into the JSONL outputs.

One part per chunk (``chunk_dialogues`` consecutive records, numbered as in the local runner),
written by the scoring actor and committed by an atomic rename. A part holds one row per record
(``kind`` r: its dialogue id, whether it was rejected as a duplicate), one per problem (e) and one
per customer turn (t); ``text`` is the finished output line, so score dicts of any shape never
touch the Arrow schema. Sorting by (file, line, seq) restores input order; dropping repeated keys
makes the outputs exactly-once even when Ray re-runs a chunk (at-least-once) and two copies land.

No Ray import here: the merge is plain pyarrow, run by the driver.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

SCHEMA = pa.schema([("file", pa.int32()), ("line", pa.int64()), ("seq", pa.int32()), ("kind", pa.string()),
                    ("dialogue_id", pa.string()), ("dup", pa.bool_()), ("text", pa.string())])
DUPLICATES = "duplicates.json"
_PART = re.compile(r"^(\d{8})(\..+)?\.parquet$")


def part_table(records: list[tuple[int, int, str | None, bool, list[str], list[str]]]) -> pa.Table:
    """records: (file index, line, dialogue id or None, rejected as duplicate, error lines, turn lines)."""
    cols: dict[str, list] = {name: [] for name in SCHEMA.names}
    for file, line, did, dup, errors, turns in records:
        rows = [(0, "r", "")] + [(i + 1, "e", e) for i, e in enumerate(errors)] + \
               [(i + 1, "t", t) for i, t in enumerate(turns)]
        for seq, kind, text in rows:
            for name, value in zip(SCHEMA.names, (file, line, seq, kind, did, dup, text)):
                cols[name].append(value)
    return pa.Table.from_pydict(cols, schema=SCHEMA)


def write_part(parts_dir: Path, chunk: int, table: pa.Table) -> Path:
    """Commit one chunk: a unique temporary name, then a rename, so a retried chunk racing its first
    attempt replaces a whole file with a whole file."""
    final = parts_dir / f"{chunk:08d}.parquet"
    tmp = parts_dir / f".{chunk:08d}.{uuid.uuid4().hex}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, final)
    return final


def committed_chunks(parts_dir: Path) -> set[int]:
    if not parts_dir.is_dir():
        return set()
    return {int(m.group(1)) for p in parts_dir.iterdir() if (m := _PART.match(p.name))}


def _chunk_files(parts_dir: Path, chunk: int) -> list[Path]:
    # a stray extra copy (a retry written under another name by a tool or a user) is merged, then dropped
    return sorted(p for p in parts_dir.glob(f"{chunk:08d}*.parquet") if _PART.match(p.name))


def read_chunk(parts_dir: Path, chunk: int, columns: list[str] | None = None) -> pa.Table:
    """One chunk's rows in (file, line, seq) order, each key once."""
    table = pa.concat_tables([pq.read_table(p, columns=columns) for p in _chunk_files(parts_dir, chunk)])
    table = table.take(pc.sort_indices(table, [("file", "ascending"), ("line", "ascending"), ("seq", "ascending")]))
    keys = np.stack([table[c].to_numpy() for c in ("file", "line", "seq")], axis=1)
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = (keys[1:] != keys[:-1]).any(axis=1)
    return table.filter(pa.array(keep))


def missing_chunks(parts_dir: Path, n_chunks: int) -> list[int]:
    done = committed_chunks(parts_dir)
    return [i for i in range(n_chunks) if i not in done]


def scan_duplicates(parts_dir: Path, n_chunks: int, files: list[str]) -> tuple[dict[str, str], set[int]]:
    """Duplicate dialogue ids as the local reader rejects them (first valid record wins, across all
    files), and the chunks that were scored without knowing about one of them. Validation runs in
    parallel and cannot see earlier chunks, so duplicates are found here, and a stale chunk is scored
    again: its batches must hold exactly the records the local runner scored, or padding changes the
    floats. Returns ({"file:line": "path:first_line"}, stale chunk numbers)."""
    seen: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    stale: set[int] = set()
    for chunk in range(n_chunks):
        t = read_chunk(parts_dir, chunk, ["file", "line", "seq", "kind", "dialogue_id", "dup"])
        t = t.filter(pc.equal(t["kind"], "r"))
        for file, line, did, dup in zip(*(t[c].to_pylist() for c in ("file", "line", "dialogue_id", "dup"))):
            if did is None:
                continue
            is_dup = did in seen
            if is_dup:
                duplicates[f"{file}:{line}"] = seen[did]
            else:
                seen[did] = f"{files[file]}:{line}"
            if is_dup != dup:
                stale.add(chunk)
    return duplicates, stale


def load_duplicates(parts_dir: Path) -> dict[str, str]:
    path = parts_dir / DUPLICATES
    return json.loads(path.read_text()) if path.is_file() else {}


def save_duplicates(parts_dir: Path, duplicates: dict[str, str]) -> None:
    tmp = parts_dir / (DUPLICATES + ".tmp")
    tmp.write_text(json.dumps(duplicates))
    os.replace(tmp, parts_dir / DUPLICATES)


def _check_complete(parts_dir: Path, n_chunks: int) -> None:
    missing = missing_chunks(parts_dir, n_chunks)
    if missing:
        raise RuntimeError(f"{parts_dir}: chunks {missing[:10]} were never written; re-run to resume")


def totals(parts_dir: Path, n_chunks: int) -> dict:
    out = {"records": 0, "dialogues": 0, "rejected": 0, "turns": 0}
    for chunk in range(n_chunks):
        t = read_chunk(parts_dir, chunk, ["file", "line", "seq", "kind", "dialogue_id", "dup"])
        kinds = t["kind"].to_numpy(zero_copy_only=False)
        records = kinds == "r"
        valid = records & ~t["dialogue_id"].is_null().to_numpy(zero_copy_only=False) & \
            ~t["dup"].to_numpy(zero_copy_only=False)
        out["records"] += int(records.sum())
        out["dialogues"] += int(valid.sum())
        out["turns"] += int((kinds == "t").sum())
    out["rejected"] = out["records"] - out["dialogues"]
    return out


def merge(parts_dir: Path, n_chunks: int, output: Path, errors_path: Path) -> dict:
    """turns.jsonl and errors.jsonl in input order (atomic renames), then the parts are removed."""
    _check_complete(parts_dir, n_chunks)
    counts = totals(parts_dir, n_chunks)
    tmp_out, tmp_err = output.with_name(output.name + ".tmp"), errors_path.with_name(errors_path.name + ".tmp")
    with open(tmp_out, "w", encoding="utf-8") as out, open(tmp_err, "w", encoding="utf-8") as err:
        for chunk in range(n_chunks):
            t = read_chunk(parts_dir, chunk, ["file", "line", "seq", "kind", "text"])
            for kind, text in zip(t["kind"].to_pylist(), t["text"].to_pylist()):
                if kind == "t":
                    out.write(text)
                elif kind == "e":
                    err.write(text)
    os.replace(tmp_out, output)
    os.replace(tmp_err, errors_path)
    shutil.rmtree(parts_dir)
    return {**counts, "output": str(output), "errors": str(errors_path)}


def write_dataset_manifest(parts_dir: Path, n_chunks: int, files: list[str]) -> dict:
    """merge=none: keep the Parquet dataset and say how to read it (manifest.json keeps the fingerprint,
    so a later re-run still resumes against it)."""
    _check_complete(parts_dir, n_chunks)
    for tmp in parts_dir.glob(".*.tmp"):  # left by actors killed mid-write; their chunks were redone
        tmp.unlink()
    counts = totals(parts_dir, n_chunks)
    path = parts_dir / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    manifest.update(complete=True, chunks=n_chunks, files=files, **counts,
                    parts=[p.name for c in range(n_chunks) for p in _chunk_files(parts_dir, c)],
                    read_as="sort by (file, line, seq) and keep the first row of each key; kind t: text is a "
                            "turns.jsonl line, kind e: an errors.jsonl line (file is an index into files)")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    os.replace(tmp, path)
    return {**counts, "output": str(parts_dir), "errors": str(parts_dir)}
