"""Moving between taxonomy versions: the tag mapping, the diff table, and dataset migration.

A migration file (YAML) lists the old ids whose fate is not "same id in the new version":

    from: v1
    to: v2
    tags:
      basic.platform.third_party: basic.platform.internet_finance   # rename
      voice.positive.system_easy: voice.positive.system_good        # merge (two old ids,
      voice.positive.system_smooth: voice.positive.system_good      #  one new id)
      some.old.tag: null                                            # dropped

An old id that is neither listed nor present in the new taxonomy is an error naming it: nothing is
migrated by guesswork. Migrated data records what it was annotated for (``annotation.annotated``):
the images of the old tags only, so tags that are new in this version are masked, not "absent".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from profiler.jsonl import dumps_line
from profiler.data.contract import ReadReport, iter_records, validate_line
from profiler.taxonomy import Taxonomy


class MigrationError(ValueError):
    """A mapping that does not account for every old tag, or points at tags that do not exist."""


@dataclass(frozen=True)
class Migration:
    tags: dict[str, str | None] = field(default_factory=dict)   # old id -> new id | None (dropped)
    source: str | None = None                                   # the old version's name, if stated
    target: str | None = None
    origin: str = "<identity>"

    @classmethod
    def load(cls, ref: str | Path | None) -> Migration:
        """A YAML path, a bundled name (``v1_to_v2``: configs/taxonomy/v1_to_v2.yaml) or None (identity)."""
        if ref is None:
            return cls()
        path = Path(ref)
        if path.is_file():
            text, origin = path.read_text(encoding="utf-8"), str(path)
        else:
            bundled = resources.files("profiler.configs").joinpath("taxonomy", f"{ref}.yaml")
            if not bundled.is_file():
                raise MigrationError(f"{ref}: no such migration file (nor a bundled one)")
            text, origin = bundled.read_text(encoding="utf-8"), f"taxonomy/{ref}.yaml"
        doc = yaml.safe_load(text) or {}
        tags = doc.get("tags") or {}
        if not isinstance(tags, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                                 for k, v in tags.items()):
            raise MigrationError(f"{origin}: 'tags' must map old tag ids to a new tag id or null")
        return cls(tags=dict(tags), source=doc.get("from"), target=doc.get("to"), origin=origin)

    def resolve(self, old: Taxonomy, new: Taxonomy) -> dict[str, str | None]:
        """The fate of every old tag; raises naming every unmapped old tag and every unknown id."""
        if self.source and self.source != old.version:
            raise MigrationError(f"{self.origin}: maps from {self.source}, but the old taxonomy is {old.version}")
        if self.target and self.target != new.version:
            raise MigrationError(f"{self.origin}: maps to {self.target}, but the new taxonomy is {new.version}")
        stray = sorted(k for k in self.tags if k not in old)
        bad_targets = sorted({v for v in self.tags.values() if v is not None and v not in new})
        unmapped = [t for t in old.ids if t not in self.tags and t not in new]
        problems = []
        if unmapped:
            problems.append(f"{len(unmapped)} {old.version} tag(s) are not in {new.version} and not mapped: "
                            f"{', '.join(unmapped)} (map each to a {new.version} id or to null)")
        if bad_targets:
            problems.append(f"mapped to ids unknown in {new.version}: {', '.join(bad_targets)}")
        if stray:
            problems.append(f"lists ids unknown in {old.version}: {', '.join(stray)}")
        if problems:
            raise MigrationError(f"{self.origin}: " + "; ".join(problems))
        return {t: self.tags[t] if t in self.tags else t for t in old.ids}


def sources_of(mapping: dict[str, str | None]) -> dict[str, list[str]]:
    """New id -> the old ids that map onto it (one: kept/renamed; several: merged)."""
    out: dict[str, list[str]] = {}
    for old_id, new_id in mapping.items():
        if new_id is not None:
            out.setdefault(new_id, []).append(old_id)
    return out


def covered_tags(mapping: dict[str, str | None], annotated_old: frozenset[str]) -> frozenset[str]:
    """New tags whose truth is known from data annotated for ``annotated_old``. A merged tag is known
    only when all of its sources were annotated (otherwise its "absent" is a guess)."""
    return frozenset(new for new, olds in sources_of(mapping).items() if all(o in annotated_old for o in olds))


def migrate_labels(labels: list[str], mapping: dict[str, str | None]) -> list[str]:
    out: list[str] = []
    for tag in labels:
        new = mapping[tag]
        if new is not None and new not in out:
            out.append(new)
    return out


# --- data ----------------------------------------------------------------------------------------
def migrate_dialogue(dialogue: dict, old: Taxonomy, new: Taxonomy, mapping: dict[str, str | None]) -> dict:
    """One dialogue labelled under ``old`` -> the same dialogue under ``new``: labels mapped, and
    every ``annotation`` rewritten to name the new tags its labels cover (the new tags stay masked)."""

    def annotation(ann: dict | None, positives: list[str] = ()) -> dict:
        ids = (ann or {}).get("annotated")
        covered = covered_tags(mapping, old.expand(ids) if ids is not None else frozenset(old.ids))
        return {**(ann or {}), "taxonomy_version": new.version, "migrated_from": old.version,
                "annotated": new.compress(covered | set(positives))}

    whole = annotation(dialogue.get("annotation"))
    turns = []
    for turn in dialogue["turns"]:
        turn = dict(turn)
        own = turn.get("annotation")
        if turn.get("labels") is not None:
            turn["labels"] = migrate_labels(turn["labels"], mapping)
            # a merged tag whose sources were only partly annotated is still known where it holds
            if own is not None or not new.expand(whole["annotated"]) >= set(turn["labels"]):
                turn["annotation"] = annotation(own if own is not None else dialogue.get("annotation"),
                                                turn["labels"])
        elif own is not None:
            turn["annotation"] = annotation(own)
        turns.append(turn)
    return {**dialogue, "annotation": whole, "turns": turns}


def migrate_files(inputs: list[Path], output: Path, old: Taxonomy, new: Taxonomy, migration: Migration) -> ReadReport:
    """Migrate dialogue files into one JSONL. A dialogue that is invalid under ``old``, or becomes
    invalid under ``new`` (two values of an exclusive dimension after a merge), is reported with its
    file, line and field; every other dialogue is written."""
    mapping = migration.resolve(old, new)  # unmapped tags: an error before anything is written
    report = ReadReport()
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        for record in iter_records(inputs, old):
            report.lines += 1
            problems = record.problems
            if not problems:
                migrated = migrate_dialogue(record.dialogue, old, new, mapping)
                _, problems = validate_line(migrated, record.file, record.line, new)
            if problems:
                report.problems.extend(problems)
                continue
            report.kept += 1
            f.write(dumps_line(migrated))
    return report


# --- diff --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    kind: str          # added | dropped | renamed | merged | exclusivity | moved | edited
    old: str
    new: str
    detail: str = ""


def diff(old: Taxonomy, new: Taxonomy, migration: Migration | None = None) -> list[Change]:
    """What changed between two versions. With a migration file renames and merges are exact;
    without one, a removed and an added tag with the same category/dimension/value names are
    reported as an (inferred) rename, and other removed tags as dropped."""
    if migration is not None:
        mapping, inferred = migration.resolve(old, new), False
    else:
        mapping, inferred = _infer_mapping(old, new), True
    changes: list[Change] = []
    sources = sources_of(mapping)
    for new_id, olds in sources.items():
        if len(olds) > 1:
            changes.append(Change("merged", ", ".join(olds), new_id, f"{len(olds)} tags -> 1"))
        elif olds[0] != new_id:
            changes.append(Change("renamed", olds[0], new_id, "inferred from equal names" if inferred else ""))
    changes += [Change("dropped", o, "", "no mapping given" if inferred else "") for o, n in mapping.items()
                if n is None]
    changes += [Change("added", "", t, f"{new.tag(t).dimension}/{new.tag(t).value}") for t in new.ids
                if t not in sources]
    for new_id, olds in sources.items():
        a, b = old.tag(olds[0]), new.tag(new_id)
        if a.dimension_id != b.dimension_id and len(olds) == 1:
            changes.append(Change("moved", a.id, b.id, f"{a.dimension_id} -> {b.dimension_id}"))
        elif len(olds) == 1 and (a.value, a.definition, a.dimension) != (b.value, b.definition, b.dimension):
            changes.append(Change("edited", a.id, b.id, f"{a.dimension}/{a.value} -> {b.dimension}/{b.value}"))
    for dim in old.dimensions.keys() & new.dimensions.keys():
        was, now = old.tag(old.dimensions[dim][0]).exclusive, new.tag(new.dimensions[dim][0]).exclusive
        if was != now:
            changes.append(Change("exclusivity", dim, dim, f"{'yes' if was else 'no'} -> {'yes' if now else 'no'}"))
    return changes


def _infer_mapping(old: Taxonomy, new: Taxonomy) -> dict[str, str | None]:
    key = lambda t: (t.category, t.dimension, t.value)  # noqa: E731
    added = {key(new.tag(t)): t for t in new.ids if t not in old}
    return {t: t if t in new else added.get(key(old.tag(t))) for t in old.ids}


def diff_markdown(changes: list[Change], old: Taxonomy, new: Taxonomy) -> str:
    counts = {k: sum(c.kind == k for c in changes) for k in
              ("added", "dropped", "renamed", "merged", "exclusivity", "moved", "edited")}
    head = (f"# Taxonomy diff {old.version} ({len(old)} tags, {old.hash[:12]}) -> {new.version} "
            f"({len(new)} tags, {new.hash[:12]})\n\n" + ", ".join(f"{k}: {v}" for k, v in counts.items()) + "\n")
    rows = ["| change | old | new | detail |", "|---|---|---|---|"]
    rows += [f"| {c.kind} | {c.old and f'`{c.old}`'} | {c.new and f'`{c.new}`'} | {c.detail} |" for c in changes]
    return head + "\n" + "\n".join(rows) + "\n"
