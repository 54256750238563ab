"""The tag taxonomy: the label contract between the business and every model artifact.

A taxonomy file is a TSV with a ``#version=...`` first line and the columns
``id category dimension value exclusive definition``. Tag ids are an interface: their
order is the order of the model's logits, so it is part of the content hash.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

COLUMNS = ("id", "category", "dimension", "value", "exclusive", "definition")
MODEL_FILE = "taxonomy.tsv"   # the copy every model directory and export bundle carries


class TaxonomyError(ValueError):
    """A taxonomy file that breaks the contract."""


@dataclass(frozen=True)
class Tag:
    id: str
    category: str
    dimension: str
    value: str
    exclusive: bool
    definition: str

    @property
    def dimension_id(self) -> str:
        """``basic.fund_owner.self`` -> ``basic.fund_owner``."""
        return self.id.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Taxonomy:
    version: str
    tags: tuple[Tag, ...]

    @classmethod
    def from_tsv(cls, path: str | Path) -> Taxonomy:
        path = Path(path)
        if not path.is_file():
            raise TaxonomyError(f"{path}: taxonomy file not found")
        return cls.from_text(path.read_text(encoding="utf-8"), source=str(path))

    @classmethod
    def bundled(cls, name: str = "v1") -> Taxonomy:
        """A taxonomy shipped in the package's config tree (``configs/taxonomy/<name>.tsv``)."""
        ref = resources.files("profiler.configs").joinpath("taxonomy", f"{name}.tsv")
        return cls.from_text(ref.read_text(encoding="utf-8"), source=f"taxonomy/{name}.tsv")

    @classmethod
    def load(cls, path: str | Path | None = None, name: str = "v1") -> Taxonomy:
        """A taxonomy config's (``configs/taxonomy/*.yaml``): its own file, else a bundled one by name."""
        return cls.from_tsv(path) if path else cls.bundled(name)

    @classmethod
    def of_model(cls, model_dir: str | Path) -> Taxonomy:
        """The taxonomy a model directory or export bundle was trained on: the copy it carries, never a
        config's (a model answers in its own label set whatever the current taxonomy says)."""
        return cls.from_tsv(Path(model_dir) / MODEL_FILE)

    @classmethod
    def from_text(cls, text: str, source: str = "<taxonomy>") -> Taxonomy:
        lines = text.splitlines()
        if not lines or not lines[0].startswith("#version="):
            raise TaxonomyError(f"{source}:1: first line must be '#version=<name>'")
        version = lines[0].split("=", 1)[1].strip()
        rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:])), delimiter="\t"))
        if not rows or tuple(rows[0].keys()) != COLUMNS:
            raise TaxonomyError(f"{source}:2: header must be the columns {', '.join(COLUMNS)}")
        tags = tuple(_parse_row(row, source, lineno) for lineno, row in enumerate(rows, start=3))
        taxonomy = cls(version=version, tags=tags)
        taxonomy._check(source)
        return taxonomy

    def _check(self, source: str) -> None:
        seen: set[str] = set()
        dim_names: dict[str, str] = {}
        for tag in self.tags:
            if tag.id in seen:
                raise TaxonomyError(f"{source}: duplicate tag id {tag.id!r}")
            seen.add(tag.id)
            if dim_names.setdefault(tag.dimension_id, tag.dimension) != tag.dimension:
                raise TaxonomyError(f"{source}: tag {tag.id!r} names dimension {tag.dimension!r} "
                                    f"but {tag.dimension_id!r} is {dim_names[tag.dimension_id]!r}")
        for dim, members in self.dimensions.items():
            flags = {self.tag(i).exclusive for i in members}
            if len(flags) > 1:
                raise TaxonomyError(f"{source}: dimension {dim!r} mixes exclusive and non-exclusive tags")

    # --- lookups -------------------------------------------------------------------------
    @cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tags)

    @cached_property
    def index(self) -> dict[str, int]:
        return {tag_id: i for i, tag_id in enumerate(self.ids)}

    def tag(self, tag_id: str) -> Tag:
        return self.tags[self.index[tag_id]]

    def __len__(self) -> int:
        return len(self.tags)

    def __contains__(self, tag_id: object) -> bool:
        return tag_id in self.index

    @cached_property
    def categories(self) -> dict[str, tuple[str, ...]]:
        return _group(self.tags, lambda t: t.category)

    @cached_property
    def dimensions(self) -> dict[str, tuple[str, ...]]:
        """Dimension id -> its tag ids, in taxonomy order."""
        return _group(self.tags, lambda t: t.dimension_id)

    @cached_property
    def exclusive_groups(self) -> dict[str, tuple[str, ...]]:
        """Dimensions in which at most one value may hold on a turn."""
        return {d: ids for d, ids in self.dimensions.items() if self.tag(ids[0]).exclusive}

    def expand(self, ids: list[str] | tuple[str, ...]) -> frozenset[str]:
        """Tag ids and dimension ids (``basic.platform`` = all its values) -> the set of tag ids.
        Raises ``KeyError`` naming the first id that is neither."""
        out: set[str] = set()
        for x in ids:
            if x in self.index:
                out.add(x)
            elif x in self.dimensions:
                out.update(self.dimensions[x])
            else:
                raise KeyError(x)
        return frozenset(out)

    def compress(self, tag_ids: frozenset[str] | set[str]) -> list[str]:
        """The inverse of ``expand``: whole dimensions as dimension ids, the rest as tag ids."""
        out: list[str] = []
        for dim, members in self.dimensions.items():
            hit = [t for t in members if t in tag_ids]
            out.extend([dim] if len(hit) == len(members) else hit)
        return out

    def nearest(self, unknown: str, n: int = 3) -> list[str]:
        return difflib.get_close_matches(unknown, self.ids, n=n, cutoff=0.5)

    # --- identity ------------------------------------------------------------------------
    @cached_property
    def hash(self) -> str:
        """sha256 over what a trained head depends on: id order, dimension grouping,
        exclusivity. Editing a Chinese name or a definition does not invalidate models."""
        payload = [[t.id, t.dimension_id, t.exclusive] for t in self.tags]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()

    def to_tsv(self) -> str:
        out = io.StringIO()
        out.write(f"#version={self.version}\n")
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for t in self.tags:
            writer.writerow([t.id, t.category, t.dimension, t.value,
                             "yes" if t.exclusive else "no", t.definition])
        return out.getvalue()

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_tsv(), encoding="utf-8")


def _parse_row(row: dict[str, str], source: str, lineno: int) -> Tag:
    for col in COLUMNS:
        if not (row.get(col) or "").strip():
            raise TaxonomyError(f"{source}:{lineno}: field {col!r} is empty")
    if row["exclusive"] not in ("yes", "no"):
        raise TaxonomyError(f"{source}:{lineno}: field 'exclusive' must be yes/no, got {row['exclusive']!r}")
    if row["id"].count(".") < 2:
        raise TaxonomyError(f"{source}:{lineno}: field 'id' must look like category.dimension.value")
    return Tag(id=row["id"].strip(), category=row["category"].strip(), dimension=row["dimension"].strip(),
               value=row["value"].strip(), exclusive=row["exclusive"] == "yes",
               definition=row["definition"].strip())


def _group(tags: tuple[Tag, ...], key) -> dict[str, tuple[str, ...]]:
    groups: dict[str, list[str]] = {}
    for tag in tags:
        groups.setdefault(key(tag), []).append(tag.id)
    return {k: tuple(v) for k, v in groups.items()}
