"""The dialogue data contract: one dialogue per JSONL line, validated line by line.

A bad dialogue never takes the good ones down with it: in lenient mode it is reported (file,
line, field, reason) and skipped; in strict mode the whole read fails after listing every
problem, so a user fixes a file in one round trip.

Partial labels: an optional ``annotation`` object on a dialogue or a turn (the turn's wins) says
what the labels cover (``annotated``: tag or dimension ids; absent = every tag), under which
taxonomy version, by whom and when. Pairs outside it were never annotated and are masked.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from profiler.jsonl import dumps_line
from profiler.data.lines import LineError, expand_paths, raw_records
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SPEAKERS = ("agent", "customer")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    field: str
    reason: str
    dialogue_id: str | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ContractError(ValueError):
    """Raised in strict mode; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} contract violation(s):\n{shown}{more}")


@dataclass
class ReadReport:
    """What a read saw: how many lines were read, kept, and why the others were rejected."""

    lines: int = 0
    kept: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({(p.file, p.line) for p in self.problems})

    def write_jsonl(self, path: str | Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for p in self.problems:
                f.write(dumps_line(p.to_dict()))


class _Checker:
    """Collects the problems of one line so every field is reported, not just the first."""

    def __init__(self, file: str, line: int, taxonomy: Taxonomy | None, check_labels: bool = True):
        self.file, self.line, self.taxonomy, self.check_labels = file, line, taxonomy, check_labels
        self.problems: list[Problem] = []
        self.dialogue_id: str | None = None
        self.dialogue_annotated: frozenset[str] | None = None

    def add(self, field_name: str, reason: str) -> None:
        self.problems.append(Problem(self.file, self.line, field_name, reason, self.dialogue_id))

    def optional_str(self, obj: dict, key: str, where: str = "") -> None:
        if obj.get(key) is not None and not isinstance(obj[key], str):
            self.add(f"{where}{key}", f"must be a string, got {type(obj[key]).__name__}")

    def dialogue(self, obj: Any) -> None:
        if not isinstance(obj, dict):
            self.add("<root>", f"a dialogue must be a JSON object, got {type(obj).__name__}")
            return
        did = obj.get("dialogue_id")
        if not isinstance(did, str) or not did.strip():
            self.add("dialogue_id", "missing" if did is None else "must be a non-empty string")
        else:
            self.dialogue_id = did
        for key in ("customer_id", "channel", "started_at"):
            self.optional_str(obj, key)
        if isinstance(obj.get("started_at"), str):
            try:
                datetime.fromisoformat(obj["started_at"])
            except ValueError:
                self.add("started_at", f"not an ISO-8601 timestamp: {obj['started_at']!r}")
        self.dialogue_annotated = self.annotation(obj.get("annotation"), "annotation")
        turns = obj.get("turns")
        if not isinstance(turns, list) or not turns:
            self.add("turns", "missing" if turns is None else "must be a non-empty list of turns")
            return
        for i, turn in enumerate(turns):
            self.turn(turn, f"turns[{i}]")

    def annotation(self, ann: Any, where: str) -> frozenset[str] | None:
        """Check an ``annotation`` object; return the tag ids it covers (None: all of them)."""
        if ann is None:
            return None
        if not isinstance(ann, dict):
            self.add(where, f"must be an object, got {type(ann).__name__}")
            return None
        for key in ("taxonomy_version", "annotator", "annotated_at", "source"):
            self.optional_str(ann, key, f"{where}.")
        if isinstance(ann.get("annotated_at"), str):
            try:
                datetime.fromisoformat(ann["annotated_at"].replace("Z", "+00:00"))
            except ValueError:
                self.add(f"{where}.annotated_at", f"not an ISO-8601 timestamp: {ann['annotated_at']!r}")
        tax, version = self.taxonomy, ann.get("taxonomy_version")
        if tax is not None and self.check_labels and isinstance(version, str) and version != tax.version:
            self.add(f"{where}.taxonomy_version", f"annotated under taxonomy {version}, read as {tax.version}: "
                                                  f"migrate it first (profiler-taxonomy migrate)")
        annotated = ann.get("annotated")
        if annotated is None:
            return None
        if not isinstance(annotated, list) or not all(isinstance(x, str) for x in annotated):
            self.add(f"{where}.annotated", "must be a list of tag or dimension ids")
            return None
        if tax is None or not self.check_labels:
            return None
        unknown = [x for x in annotated if x not in tax and x not in tax.dimensions]
        if unknown:
            self.add(f"{where}.annotated", f"unknown tag/dimension id(s): {', '.join(unknown)}")
            return None
        return tax.expand(annotated)

    def turn(self, turn: Any, where: str) -> None:
        if not isinstance(turn, dict):
            self.add(where, f"a turn must be an object, got {type(turn).__name__}")
            return
        speaker = turn.get("speaker")
        if speaker not in SPEAKERS:
            self.add(f"{where}.speaker", "missing" if speaker is None
                     else f"unknown speaker {speaker!r} (expected one of {', '.join(SPEAKERS)})")
        text = turn.get("text")
        if not isinstance(text, str):
            self.add(f"{where}.text", "missing" if text is None else "must be a string")
        elif not text.strip():
            self.add(f"{where}.text", "empty text")
        elif not has_visible_text(text):
            self.add(f"{where}.text", "no visible characters (only zero-width, BOM or control characters)")
        labels = turn.get("labels")
        if labels is None or not self.check_labels:
            return
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            self.add(f"{where}.labels", "must be a list of tag id strings")
            return
        if labels and speaker == "agent":
            self.add(f"{where}.labels", "agent turns carry no tags; only customer turns are tagged")
        annotated = self.annotation(turn.get("annotation"), f"{where}.annotation")
        annotated = annotated if turn.get("annotation") is not None else self.dialogue_annotated
        if self.taxonomy is not None:
            self.labels(labels, f"{where}.labels")
            outside = [t for t in labels if t in self.taxonomy and annotated is not None and t not in annotated]
            if outside:
                self.add(f"{where}.labels", f"tag(s) outside the annotated set: {', '.join(outside)}")

    def labels(self, labels: list[str], where: str) -> None:
        tax = self.taxonomy
        for j, tag_id in enumerate(labels):
            if tag_id not in tax:
                near = tax.nearest(tag_id)
                hint = f"; nearest known: {', '.join(near)}" if near else ""
                self.add(f"{where}[{j}]", f"unknown tag id {tag_id!r}{hint}")
        for dim, members in tax.exclusive_groups.items():
            hit = [t for t in labels if t in members]
            if len(hit) > 1:
                self.add(where, f"exclusive dimension {dim} has {len(hit)} values on one turn: {', '.join(hit)}")


def has_visible_text(text: str) -> bool:
    """False for text made only of whitespace, format (ZWSP, ZWJ, BOM…) and control characters,
    which a model would score as an empty turn."""
    return any(not ch.isspace() and unicodedata.category(ch) not in ("Cf", "Cc") for ch in text)


def validate_line(raw: str | dict, file: str, line: int, taxonomy: Taxonomy | None,
                  check_labels: bool = True) -> tuple[dict | None, list[Problem]]:
    """Parse (unless already parsed, as Parquet rows are) and check one record."""
    if isinstance(raw, dict):
        obj = raw
    else:
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as e:
            return None, [Problem(file, line, "<json>", f"malformed JSON: {e.msg} at column {e.colno}")]
    checker = _Checker(file, line, taxonomy, check_labels)
    checker.dialogue(obj)
    return (None if checker.problems else obj), checker.problems


@dataclass
class Record:
    """One input record (a JSONL line or a Parquet row) and what validation made of it."""

    seq: int                    # 0-based position among all records of the read; stable across runs
    file: str
    line: int                   # 1-based line (JSONL) or row (Parquet) number
    dialogue: dict | None       # None when rejected
    problems: list[Problem]


def duplicate_problem(file: str, line: int, dialogue_id: str, first_at: str) -> Problem:
    """A valid record whose id an earlier valid record of the same read already used."""
    return Problem(file, line, "dialogue_id", f"duplicate dialogue_id {dialogue_id!r} (first at {first_at})",
                   dialogue_id)


def iter_records(paths: Iterable[str | Path], taxonomy: Taxonomy | None, check_labels: bool = True) -> Iterator[Record]:
    """Every record of every file, streamed, validated. Duplicate dialogue ids are rejected across
    all files of one read (the first one wins)."""
    seen: dict[str, str] = {}
    seq = 0
    for path in paths:
        empty = True
        for lineno, raw in raw_records(Path(path)):
            empty = False
            if isinstance(raw, LineError):
                obj, problems = None, [Problem(str(path), lineno, raw.field, raw.reason)]
            else:
                obj, problems = validate_line(raw, str(path), lineno, taxonomy, check_labels)
            if obj is not None and obj["dialogue_id"] in seen:
                problems = [duplicate_problem(str(path), lineno, obj["dialogue_id"], seen[obj["dialogue_id"]])]
            if not problems:
                seen[obj["dialogue_id"]] = f"{path}:{lineno}"
            yield Record(seq, str(path), lineno, None if problems else obj, problems)
            seq += 1
        if empty:
            log.warning("%s: empty file, no dialogues in it", path)


def iter_dialogues(paths: Iterable[str | Path], taxonomy: Taxonomy | None, report: ReadReport,
                   strict: bool = False, check_labels: bool = True) -> Iterator[dict]:
    """Stream valid dialogues; problems go to ``report`` (strict: raised at the end, all of them)."""
    for record in iter_records(paths, taxonomy, check_labels):
        report.lines += 1
        if record.problems:
            report.problems.extend(record.problems)
            for p in record.problems:
                log.warning("rejected %s", p)
            continue
        report.kept += 1
        yield record.dialogue
    if strict and report.problems:
        raise ContractError(report.problems)


def read_dialogues(paths: str | Path | Iterable[str | Path], taxonomy: Taxonomy | None,
                   strict: bool = False) -> tuple[list[dict], ReadReport]:
    """Read whole files into memory (training-sized corpora); streaming readers use iter_dialogues."""
    report = ReadReport()
    return list(iter_dialogues(expand_paths(paths), taxonomy, report, strict)), report
