"""Write a synthetic corpus (train/dev/test JSONL) and its data card."""

from __future__ import annotations

import hashlib
import json
import logging
import statistics
from collections import Counter
from importlib import resources
from pathlib import Path

from profiler.jsonl import dumps_line
from profiler.synth.generator import SynthConfig, Turn, generate_split
from profiler.synth.phrasebook import Phrasebook
from profiler.synth.voices import Utterance, load_split, summary, to_dialogues
from profiler.taxonomy import Taxonomy

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


def generate_corpus(taxonomy: Taxonomy, cfg: SynthConfig, phrasebook: Phrasebook | None = None,
                    renames: dict[str, str | None] | None = None) -> dict[str, list[tuple[dict, list[Turn]]]]:
    """train and dev draw on the train phrasings; test only on the held-out phrasings. ``renames``
    (a migration's tag map) lets the phrasebook serve a later taxonomy version."""
    phrasebook = (phrasebook or Phrasebook.bundled()).fit(taxonomy, renames)
    phrasebook.check(taxonomy)
    train_pool, test_pool = phrasebook.split(cfg.held_out_fraction)
    train_pool = train_pool.split(1.0 - cfg.train_phrasing_fraction)[0]   # fraction 1.0: all of it
    pools = {"train": train_pool, "dev": train_pool, "test": test_pool}
    return {split: generate_split(taxonomy, pools[split], cfg, split, seed=cfg.seed * 1000 + i)
            for i, split in enumerate(SPLITS) if cfg.per_tag.get(split, 0) > 0}


def voices_corpus(taxonomy: Taxonomy, cfg: SynthConfig) -> dict[str, list[Utterance]]:
    """The writers' utterances: train writers -> ``train_voices``; held-out writers -> ``dev_voices``
    (``cfg.voices_dev_writers``) and ``test_voices`` (the rest). A train line whose text a held-out
    writer also wrote is dropped, so no held-out text is ever trained on. Bad lines are errors: the
    files ship with the package and must be clean."""
    root = resources.files("profiler.synth").joinpath("voices")
    exclusive = {t: d for d, group in taxonomy.exclusive_groups.items() for t in group}
    loaded = {}
    for split in ("train", "heldout"):
        rows, errors = load_split(root.joinpath(split), list(taxonomy.ids), exclusive)
        if errors:
            raise ValueError(f"{len(errors)} bad voices line(s):\n" + "\n".join(errors[:20]))
        loaded[split] = rows
    held = {u.text for u in loaded["heldout"]}
    dev_writers = set(cfg.voices_dev_writers)
    return {"train_voices": [u for u in loaded["train"]
                             if u.text not in held and _in_share(u.text, cfg.voices_train_fraction)],
            "dev_voices": [u for u in loaded["heldout"] if u.writer in dev_writers],
            "test_voices": [u for u in loaded["heldout"] if u.writer not in dev_writers]}


def _in_share(text: str, share: float) -> bool:
    """A fixed, seed-free choice of ``share`` of all texts (a smaller share is a subset of a larger one)."""
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def split_stats(items: list[tuple[dict, list[Turn]]], taxonomy: Taxonomy) -> dict:
    customer = [t for _, turns in items for t in turns if t.speaker == "customer"]
    tagged = [t for t in customer if t.labels]
    per_tag = Counter(label for t in tagged for label in t.labels)
    lengths = [len(t.text) for _, turns in items for t in turns]
    n_turns = [len(turns) for _, turns in items]
    return {
        "dialogues": len(items),
        "customers": len({d["customer_id"] for d, _ in items}),
        "turns": sum(n_turns),
        "customer_turns": len(customer),
        "turns_per_dialogue": {"min": min(n_turns), "max": max(n_turns), "mean": round(statistics.mean(n_turns), 2)},
        "turn_chars": {"mean": round(statistics.mean(lengths), 1),
                       "p95": sorted(lengths)[int(0.95 * (len(lengths) - 1))], "max": max(lengths)},
        "untagged_share": round(1 - len(tagged) / len(customer), 4),
        "multi_tag_share_of_tagged": round(sum(len(t.labels) > 1 for t in tagged) / len(tagged), 4),
        "context_dependent_share_of_tagged": round(sum(t.context_dependent for t in tagged) / len(tagged), 4),
        "per_tag": {tag_id: per_tag.get(tag_id, 0) for tag_id in taxonomy.ids},
    }


def write_corpus(out_dir: str | Path, taxonomy: Taxonomy, cfg: SynthConfig,
                 renames: dict[str, str | None] | None = None) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = generate_corpus(taxonomy, cfg, renames=renames)
    card = {"taxonomy_version": taxonomy.version, "taxonomy_hash": taxonomy.hash, "seed": cfg.seed,
            "held_out_fraction": cfg.held_out_fraction,
            "train_phrasing_fraction": cfg.train_phrasing_fraction, "splits": {}}
    for split, items in corpus.items():
        path = out_dir / f"{split}.jsonl"
        _write_jsonl(path, [dialogue for dialogue, _ in items])
        card["splits"][split] = split_stats(items, taxonomy)
        log.info("%s: %d dialogues -> %s", split, len(items), path)
    if cfg.voices and taxonomy.hash != Taxonomy.bundled("v1").hash:
        log.warning("voices are labelled under taxonomy v1, not %s: not written (migrate the v1 corpus's "
                    "*_voices.jsonl with profiler-taxonomy instead)", taxonomy.version)
    elif cfg.voices:
        frame = Phrasebook.bundled().frame
        agent_lines = frame["agent_prompt"] + frame["agent_statement"]
        card["voices"] = {}
        for i, (name, rows) in enumerate(voices_corpus(taxonomy, cfg).items()):
            _write_jsonl(out_dir / f"{name}.jsonl",
                         to_dialogues(rows, name, taxonomy.version, cfg.seed * 1000 + 10 + i, agent_lines, cfg.id_prefix))
            card["voices"][name] = summary(rows, list(taxonomy.ids))
            log.info("%s: %d utterances -> %s", name, len(rows), out_dir / f"{name}.jsonl")
    (out_dir / "data_card.json").write_text(json.dumps(card, ensure_ascii=False, indent=2), encoding="utf-8")
    (out_dir / "data_card.md").write_text(render_card(card, taxonomy), encoding="utf-8")
    return card


def _write_jsonl(path: Path, dialogues: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for dialogue in dialogues:
            f.write(dumps_line(dialogue))


def render_card(card: dict, taxonomy: Taxonomy) -> str:
    splits = list(card["splits"])
    rows = ["| | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for key in ("dialogues", "customers", "turns", "customer_turns", "untagged_share",
                "multi_tag_share_of_tagged", "context_dependent_share_of_tagged"):
        rows.append(f"| {key} | " + " | ".join(str(card["splits"][s][key]) for s in splits) + " |")
    for key in ("turns_per_dialogue", "turn_chars"):
        rows.append(f"| {key} | " + " | ".join(json.dumps(card["splits"][s][key]) for s in splits) + " |")
    tag_rows = ["| tag | name | " + " | ".join(splits) + " |", "|---|---|" + "---|" * len(splits)]
    for tag in taxonomy.tags:
        counts = " | ".join(str(card["splits"][s]["per_tag"][tag.id]) for s in splits)
        tag_rows.append(f"| `{tag.id}` | {tag.dimension}/{tag.value} | {counts} |")
    return "\n".join([
        "# Data card: synthetic bank-call corpus", "",
        "Generated by `profiler-synth` from the bundled phrasebook. **Synthetic**: written by the team, not "
        "real customers. The test split uses only held-out phrasings (never seen in train/dev), so it measures "
        "generalisation to new wordings of the same tags, not transfer to real speech.", "",
        f"- taxonomy: {card['taxonomy_version']} (`{card['taxonomy_hash'][:16]}`)",
        f"- seed: {card['seed']}; held-out phrasing fraction: {card['held_out_fraction']}", "",
        "## Splits", "", *rows, "", "## Positive customer turns per tag", "", *tag_rows, "",
        *(render_voices(card["voices"], taxonomy) if card.get("voices") else [])])


def render_voices(voices: dict, taxonomy: Taxonomy) -> list[str]:
    """The writers' corpus: totals, registers and writers per file, positives/hard negatives per tag."""
    names = list(voices)
    head = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    rows = [f"| {key} | " + " | ".join(str(voices[n][key]) for n in names) + " |"
            for key in ("utterances", "untagged_share", "multi_tag")]
    for key in ("kinds", "registers", "writers"):
        rows.append(f"| {key} | " + " | ".join(
            ", ".join(f"{k} {v}" for k, v in sorted(voices[n][key].items())) for n in names) + " |")
    tag_rows = ["| tag | name | " + " | ".join(f"{n} +/−" for n in names) + " |", "|---|---|" + "---|" * len(names)]
    for tag in taxonomy.tags:
        cells = [f"{voices[n]['per_tag'][tag.id]['positive']} / {voices[n]['per_tag'][tag.id]['negative']}"
                 for n in names]
        tag_rows.append(f"| `{tag.id}` | {tag.dimension}/{tag.value} | " + " | ".join(cells) + " |")
    return ["## Voices: utterances by independent writers", "",
            "Written by hand by separate writers, each with its own persona and registers, following the "
            "labelling guidelines (brief: `docs/voices_brief.md`; files: `src/profiler/synth/voices/`). "
            "Held-out writers never saw the train writers' text: `dev_voices` tunes thresholds, `test_voices` "
            "measures. A hard negative (−) uses a tag's key words without its meaning.", "",
            *head, *rows, "", "### Positives / hard negatives per tag", "", *tag_rows, ""]
