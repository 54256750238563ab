"""The generator's language, kept as data (``phrasebook/*.yaml``) so it can grow without code.

Per tag:
  say     self-contained customer phrasings (slots like ``{bank}`` are filled at render time)
  reply   elliptical answers that only mean this tag after the dimension's question
  ask     agent yes/no questions after which a bare "对/有/可以" means this tag
  ask_no  agent questions after which a bare "没有/不用" means this tag
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from importlib import resources

import yaml

from profiler.taxonomy import Taxonomy

TAG_KINDS = ("say", "reply", "ask", "ask_no")
PHRASEBOOK_FILES = ("basic.yaml", "pref.yaml", "objection.yaml", "voice.yaml", "kyc.yaml")


class PhrasebookError(ValueError):
    pass


@dataclass(frozen=True)
class TagPhrases:
    say: tuple[str, ...] = ()
    reply: tuple[str, ...] = ()
    ask: tuple[str, ...] = ()
    ask_no: tuple[str, ...] = ()


@dataclass(frozen=True)
class Phrasebook:
    tags: dict[str, TagPhrases]
    dimension_asks: dict[str, tuple[str, ...]]
    frame: dict[str, tuple[str, ...]]
    slots: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def bundled(cls) -> Phrasebook:
        root = resources.files("profiler.synth").joinpath("phrasebook")
        load = lambda name: yaml.safe_load(root.joinpath(name).read_text(encoding="utf-8"))  # noqa: E731
        tags: dict[str, TagPhrases] = {}
        asks: dict[str, tuple[str, ...]] = {}
        for name in PHRASEBOOK_FILES:
            doc = load(name)
            asks.update({d: tuple(v) for d, v in doc.pop("dimensions", {}).items()})
            for tag_id, kinds in doc.items():
                unknown = set(kinds) - set(TAG_KINDS)
                if unknown:
                    raise PhrasebookError(f"phrasebook/{name}: {tag_id} has unknown keys {sorted(unknown)}")
                tags[tag_id] = TagPhrases(**{k: tuple(str(x) for x in v) for k, v in kinds.items()})
        frame = {k: tuple(str(x) for x in v) for k, v in load("frame.yaml").items()}
        slots = {k: tuple(str(x) for x in v) for k, v in load("slots.yaml").items()}
        return cls(tags=tags, dimension_asks=asks, frame=frame, slots=slots)

    def fit(self, taxonomy: Taxonomy, renames: dict[str, str | None] | None = None) -> Phrasebook:
        """The phrasebook of one taxonomy version: its tags only, and a tag the phrasebook does not
        know by its id takes the phrasings of the ids that migrate into it (``renames``: a migration's
        old id -> new id), so a rename or a merge needs no new phrasings."""
        sources: dict[str, list[str]] = {}
        for old, new in (renames or {}).items():
            if new is not None:
                sources.setdefault(new, []).append(old)
        tags = {}
        for tag_id in taxonomy.ids:
            if tag_id in self.tags:
                tags[tag_id] = self.tags[tag_id]
            elif all(o in self.tags for o in sources.get(tag_id, [None])):
                parts = [self.tags[o] for o in sources[tag_id]]
                tags[tag_id] = TagPhrases(**{k: tuple(x for p in parts for x in getattr(p, k)) for k in TAG_KINDS})
        return replace(self, tags=tags)

    def check(self, taxonomy: Taxonomy, min_say: int = 4) -> None:
        """Every taxonomy tag has enough phrasings to hold some out; no phrasing names an unknown tag."""
        missing = [t for t in taxonomy.ids if t not in self.tags]
        extra = [t for t in self.tags if t not in taxonomy]
        thin = [t for t in taxonomy.ids if t in self.tags and len(self.tags[t].say) < min_say]
        if missing or extra or thin:
            raise PhrasebookError(f"phrasebook does not fit taxonomy {taxonomy.version}: missing={missing} "
                                  f"unknown={extra} fewer than {min_say} phrasings={thin}")

    def split(self, held_out_fraction: float) -> tuple[Phrasebook, Phrasebook]:
        """(train pool, held-out pool). The split depends only on the phrasing text, never on the
        seed, so a test split is held out the same way for every corpus size and seed."""
        train_tags, test_tags = {}, {}
        for tag_id, p in self.tags.items():
            parts = {k: _split(getattr(p, k), held_out_fraction) for k in TAG_KINDS}
            train_tags[tag_id] = TagPhrases(**{k: v[0] for k, v in parts.items()})
            test_tags[tag_id] = TagPhrases(**{k: v[1] for k, v in parts.items()})
        asks = {d: _split(v, held_out_fraction) for d, v in self.dimension_asks.items()}
        frame = {k: _split(v, held_out_fraction) for k, v in self.frame.items()}
        train = replace(self, tags=train_tags, dimension_asks={d: v[0] for d, v in asks.items()},
                        frame={k: v[0] for k, v in frame.items()})
        test = replace(self, tags=test_tags, dimension_asks={d: v[1] for d, v in asks.items()},
                       frame={k: v[1] for k, v in frame.items()})
        return train, test


def phrase_id(kind: str, text: str) -> str:
    return f"{kind}:{hashlib.sha1(text.encode()).hexdigest()[:10]}"


def _split(items: tuple[str, ...], fraction: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Lists of one stay in train (nothing to hold out); otherwise at least one goes each way."""
    if len(items) < 2 or fraction <= 0:
        return tuple(items), ()
    ranked = sorted(items, key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    n_held = min(len(items) - 1, max(1, round(len(items) * fraction)))
    held = set(ranked[:n_held])
    return tuple(x for x in items if x not in held), tuple(x for x in items if x in held)
