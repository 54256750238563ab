"""Customer utterances written by independent writers (``voices/<split>/<writer>.*.tsv``).

The phrasebook gives each tag a handful of short wordings in one style; real customers use many
registers. Each voices file holds one writer's utterances, a line each, tab-separated:

    register  labels  neg_for  agent  text

- register: call (phone call as ASR transcribes it), im (WeChat/IM), complaint (written complaint or
  social-media post), app (typed into an app or online service), forum (forum comment);
- labels: comma-separated tag ids the utterance carries, ``-`` for none;
- neg_for: tags whose key words the utterance uses without their meaning (a hard negative), ``-``;
- agent: the agent turn before it, ``-`` when the utterance stands alone;
- text: the customer's words.

Lines starting with ``#`` are comments. The split is the folder: ``train`` writers never saw the
``heldout`` writers' text and the other way round. This module needs only the standard library, so
writers can check a file before the package is installed: ``python3 scripts/check_voices.py TAXONOMY.tsv FILE...``.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REGISTERS = ("call", "im", "complaint", "app", "forum")
CHANNELS = {"call": "call", "im": "wechat", "complaint": "complaint", "app": "app", "forum": "forum"}
FIELDS = ("register", "labels", "neg_for", "agent", "text")


class VoicesError(ValueError):
    pass


@dataclass(frozen=True)
class Utterance:
    writer: str
    register: str
    labels: tuple[str, ...]
    neg_for: tuple[str, ...]
    agent: str | None
    text: str
    source: str      # file:line, for errors and provenance

    @property
    def kind(self) -> str:
        return "positive" if self.labels else "negative" if self.neg_for else "untagged"


def read_taxonomy(path: str | Path) -> tuple[list[str], dict[str, str]]:
    """(tag ids, tag id -> exclusive dimension id) from a taxonomy TSV, without the package."""
    ids, exclusive = [], {}
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"):
            ids.append(row["id"])
            if row["exclusive"].strip().lower() in ("yes", "true", "1"):
                exclusive[row["id"]] = row["id"].rsplit(".", 1)[0]
    return ids, exclusive


def _tags(field: str) -> tuple[str, ...]:
    field = field.strip()
    return () if field in ("", "-") else tuple(dict.fromkeys(t.strip() for t in field.split(",") if t.strip()))


def parse_file(path, ids: list[str], exclusive: dict[str, str]) -> tuple[list[Utterance], list[str]]:
    """Every valid line of one writer's file (a Path or Traversable), and an error naming
    file:line:field for each bad one."""
    known = set(ids)
    writer = path.name.split(".")[0]
    rows, errors = [], []
    for n, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        where = f"{path}:{n}"
        try:
            line = raw.decode("utf-8").lstrip("\ufeff").rstrip("\r")
        except UnicodeDecodeError as e:
            errors.append(f"{where}: not UTF-8 ({e.reason} at byte {e.start})")
            continue
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != len(FIELDS):
            errors.append(f"{where}: {len(parts)} tab-separated fields, expected {len(FIELDS)} ({', '.join(FIELDS)})")
            continue
        register, labels, neg_for, agent, text = (p.strip() for p in parts)
        labels_t, neg_t = _tags(labels), _tags(neg_for)
        problem = None
        if register not in REGISTERS:
            problem = f"register: {register!r} is not one of {', '.join(REGISTERS)}"
        elif unknown := [t for t in labels_t if t not in known]:
            problem = f"labels: unknown tag id(s) {unknown}"
        elif unknown := [t for t in neg_t if t not in known]:
            problem = f"neg_for: unknown tag id(s) {unknown}"
        elif both := sorted(set(labels_t) & set(neg_t)):
            problem = f"neg_for: {both} also in labels"
        elif clash := [d for d, c in Counter(exclusive[t] for t in labels_t if t in exclusive).items() if c > 1]:
            problem = f"labels: two values of exclusive dimension(s) {clash}"
        elif not text or text == "-":
            problem = "text: empty"
        if problem:
            errors.append(f"{where}: {problem}")
            continue
        rows.append(Utterance(writer, register, labels_t, neg_t, None if agent in ("", "-") else agent, text, where))
    return rows, errors


def load_split(folder, ids: list[str], exclusive: dict[str, str]) -> tuple[list[Utterance], list[str]]:
    """All writers' files of one split (a folder: a Path or an importlib Traversable)."""
    return load_files(sorted((p for p in folder.iterdir() if p.name.endswith(".tsv")), key=lambda p: p.name),
                      ids, exclusive)


def load_files(paths, ids: list[str], exclusive: dict[str, str]) -> tuple[list[Utterance], list[str]]:
    """Every valid line of these files, a text written twice (by one writer or two) kept once, and the
    errors of the bad lines."""
    rows, errors, seen = [], [], set()
    for path in paths:
        got, bad = parse_file(path, ids, exclusive)
        errors += bad
        for u in got:
            if u.text not in seen:
                seen.add(u.text)
                rows.append(u)
    return rows, errors


def to_dialogues(rows: list[Utterance], split: str, taxonomy_version: str, seed: int,
                 agent_lines: tuple[str, ...] = (), id_prefix: str = "") -> list[dict]:
    """One contract dialogue per utterance: the writer's agent turn if there is one; a phone-call
    line without one gets a frame agent turn half the time, so the model sees call turns both with
    and without context (real calls have it; app questions and posts stand alone)."""
    rng = random.Random(seed)
    out = []
    for i, u in enumerate(rows):
        agent = u.agent
        if agent is None and u.register == "call" and agent_lines and rng.random() < 0.5:
            agent = rng.choice(agent_lines)
        turns = ([{"speaker": "agent", "text": agent}] if agent else []) + \
            [{"speaker": "customer", "text": u.text, "labels": list(u.labels)}]
        out.append({"dialogue_id": f"{id_prefix}voices-{split}-{u.writer}-{i:06d}",
                    "customer_id": f"{id_prefix}voices-{split}-{u.writer}-C{i:06d}",
                    "channel": CHANNELS[u.register], "annotation": {"taxonomy_version": taxonomy_version},
                    "turns": turns})
    return out


def summary(rows: list[Utterance], ids: list[str]) -> dict:
    pos = Counter(t for u in rows for t in u.labels)
    neg = Counter(t for u in rows for t in u.neg_for)
    return {"utterances": len(rows), "kinds": dict(Counter(u.kind for u in rows)),
            "untagged_share": round(sum(not u.labels for u in rows) / max(len(rows), 1), 4),
            "multi_tag": sum(len(u.labels) > 1 for u in rows),
            "registers": dict(Counter(u.register for u in rows)), "writers": dict(Counter(u.writer for u in rows)),
            "per_tag": {t: {"positive": pos.get(t, 0), "negative": neg.get(t, 0)} for t in ids}}
