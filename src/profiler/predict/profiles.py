"""Turn tags -> per-dialogue summaries and per-customer profiles, with evidence.

Read by a wealth manager before a call, so every claim points back to the turns behind it.

* A customer's profile gathers all their dialogues (dialogues without ``customer_id`` form a
  profile of their own, keyed ``dialogue:<id>``).
* Time order is ``started_at`` when given, then input order, then turn index (dialogues without
  ``started_at`` sort before dated ones).
* For each dimension: every tag found, with its highest score, count, first/last seen and up to
  ``evidence`` turns (highest score first) as (dialogue_id, turn_index, text, score).
* Exclusive dimensions (one value at a time, e.g. risk preference) also report ``current``: the
  value of the latest turn where one was decided, and ``history``: every decided value in time order,
  so a change of mind stays visible.

Only decided labels (after thresholds and exclusive decoding) count; memory grows with the number
of customers × tags found, not with the number of turns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from profiler.jsonl import dumps_line
from profiler import privacy
from profiler.taxonomy import Taxonomy


@dataclass
class TagStats:
    score: float = 0.0
    count: int = 0
    first_seen: str | None = None
    last_seen: str | None = None
    evidence: list[dict] = field(default_factory=list)

    def add(self, turn: dict, score: float, keep: int, redact: bool = True) -> None:
        self.score, self.count = max(self.score, score), self.count + 1
        when = turn.get("started_at")
        if when is not None:
            self.first_seen = min(self.first_seen or when, when)
            self.last_seen = max(self.last_seen or when, when)
        self.evidence.append({"dialogue_id": turn["dialogue_id"], "turn_index": turn["turn_index"],
                              "text": privacy.redact(turn["text"]) if redact else turn["text"], "score": score})
        self.evidence.sort(key=lambda e: -e["score"])  # stable: equal scores keep time order
        del self.evidence[keep:]


@dataclass
class Profile:
    key: str
    customer_id: str | None
    dialogues: dict[str, tuple] = field(default_factory=dict)   # id -> time key
    turns: int = 0
    tags: dict[str, TagStats] = field(default_factory=dict)
    decided: list[tuple] = field(default_factory=list)           # (time key, event) on exclusive dims


def _time_key(turn: dict, seq: int) -> tuple:
    return (turn.get("started_at") or "", seq, turn["turn_index"])


def dialogue_summaries(turns: Iterable[dict]) -> Iterator[dict]:
    """One summary per dialogue (its turns are contiguous in the predict output)."""
    current: dict | None = None
    for turn in turns:
        if current is None or current["dialogue_id"] != turn["dialogue_id"]:
            if current is not None:
                yield current
            current = {"dialogue_id": turn["dialogue_id"], "customer_id": turn.get("customer_id"),
                       "started_at": turn.get("started_at"), "customer_turns": 0, "tags": {}}
        current["customer_turns"] += 1
        for tag in turn["labels"]:
            entry = current["tags"].setdefault(tag, {"score": 0.0, "turns": []})
            entry["score"] = max(entry["score"], turn["scores"].get(tag, 0.0))
            entry["turns"].append(turn["turn_index"])
    if current is not None:
        yield current


class Aggregator:
    """Folds turns into profiles one at a time, so one pass over the predictions feeds both outputs."""

    def __init__(self, taxonomy: Taxonomy, evidence: int = 3, redact: bool = True):
        self.taxonomy, self.evidence, self.redact = taxonomy, evidence, redact
        self.profiles: dict[str, Profile] = {}
        self.seq: dict[str, int] = {}

    def add(self, turn: dict) -> dict:
        cid = turn.get("customer_id")
        key = cid if cid else f"dialogue:{turn['dialogue_id']}"
        profile = self.profiles.setdefault(key, Profile(key, cid))
        self.seq.setdefault(turn["dialogue_id"], len(self.seq))
        when = _time_key(turn, self.seq[turn["dialogue_id"]])
        profile.dialogues.setdefault(turn["dialogue_id"], when[:2])
        profile.turns += 1
        for tag in turn["labels"]:
            profile.tags.setdefault(tag, TagStats()).add(turn, turn["scores"].get(tag, 0.0), self.evidence, self.redact)
            if self.taxonomy.tag(tag).exclusive:
                profile.decided.append((when, {
                    "tag": tag, "value": self.taxonomy.tag(tag).value, "score": turn["scores"].get(tag, 0.0),
                    "dialogue_id": turn["dialogue_id"], "turn_index": turn["turn_index"],
                    "started_at": turn.get("started_at")}))
        return turn


def aggregate(turns: Iterable[dict], taxonomy: Taxonomy, evidence: int = 3, redact: bool = True) -> list[Profile]:
    agg = Aggregator(taxonomy, evidence, redact)
    for turn in turns:
        agg.add(turn)
    return list(agg.profiles.values())


def render(profile: Profile, taxonomy: Taxonomy) -> dict:
    dims: dict[str, dict] = {}
    for tag_id in taxonomy.ids:  # taxonomy order: stable, readable output
        if tag_id not in profile.tags:
            continue
        tag, stats = taxonomy.tag(tag_id), profile.tags[tag_id]
        dim = dims.setdefault(tag.dimension_id, {"category": tag.category, "dimension": tag.dimension,
                                                 "exclusive": tag.exclusive, "tags": []})
        dim["tags"].append({"tag": tag_id, "value": tag.value, "score": stats.score, "count": stats.count,
                            "first_seen": stats.first_seen, "last_seen": stats.last_seen,
                            "evidence": stats.evidence})
    for _, event in sorted(profile.decided, key=lambda x: x[0]):
        dim = dims[taxonomy.tag(event["tag"]).dimension_id]
        dim.setdefault("history", []).append(event)
        dim["current"] = event  # sorted by time: the last one wins
    ordered = sorted(profile.dialogues, key=lambda d: profile.dialogues[d])
    dated = [profile.dialogues[d][0] for d in ordered if profile.dialogues[d][0]]
    return {"profile_key": profile.key, "customer_id": profile.customer_id, "dialogues": ordered,
            "customer_turns": profile.turns, "first_seen": dated[0] if dated else None,
            "last_seen": dated[-1] if dated else None, "dimensions": dims}


def read_turns(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)


def write_profiles(predictions: Path, taxonomy: Taxonomy, out_dir: Path, evidence: int = 3,
                   redact: bool = True) -> dict:
    """``profiles.jsonl`` and ``dialogues.jsonl`` beside the predictions; returns their counts.
    ``redact``: evidence quotes have phone/ID/card numbers and e-mails masked (profiler.privacy)."""
    agg = Aggregator(taxonomy, evidence, redact)
    turns = (agg.add(turn) for turn in read_turns(predictions))  # one read feeds both outputs
    n_dialogues = _write_jsonl(out_dir / "dialogues.jsonl", dialogue_summaries(turns))
    n_profiles = _write_jsonl(out_dir / "profiles.jsonl", (render(p, taxonomy) for p in agg.profiles.values()))
    return {"profiles": n_profiles, "dialogue_summaries": n_dialogues}


def _write_jsonl(path: Path, rows: Iterable[dict]) -> int:
    tmp, n = path.with_name(path.name + ".tmp"), 0
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(dumps_line(row))
            n += 1
    os.replace(tmp, path)
    return n
