"""Dialogues as a ``datasets.Dataset``, and the customer-turn view that models consume.

One example per customer turn, carrying up to ``max_context_turns`` preceding turns (both
speakers) so that "下午吧" can be read as the answer to "您什么时候方便".
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset, Features, List, Value

from profiler.data.contract import ReadReport, read_dialogues
from profiler.taxonomy import Taxonomy

TURN_FEATURES = Features({
    "dialogue_id": Value("string"),
    "customer_id": Value("string"),
    "started_at": Value("string"),
    "turn_index": Value("int32"),
    "text": Value("string"),
    "labels": List(Value("string")),
    "has_labels": Value("bool"),
    "annotated": List(Value("string")),   # tag/dimension ids the labels cover; None = every tag
    "context_speakers": List(Value("string")),
    "context_texts": List(Value("string")),
})


def load_dialogues(paths: str | Path | list, taxonomy: Taxonomy, strict: bool = False) -> tuple[Dataset, ReadReport]:
    """Validated dialogues as a Dataset (one row per dialogue) plus the read report."""
    rows, report = read_dialogues(paths, taxonomy, strict=strict)
    cleaned = [{
        "dialogue_id": d["dialogue_id"],
        "customer_id": d.get("customer_id"),
        "started_at": d.get("started_at"),
        "channel": d.get("channel"),
        "turns": [{"speaker": t["speaker"], "text": t["text"], "labels": t.get("labels"),
                   "annotated": annotated_ids(d, t)} for t in d["turns"]],
    } for d in rows]
    return Dataset.from_list(cleaned), report


def annotated_ids(dialogue: dict, turn: dict) -> list[str] | None:
    """What a turn's labels cover: its own ``annotation`` if it has one, else the dialogue's;
    None means every tag of the taxonomy (data annotated in full, the v1 default)."""
    ann = turn["annotation"] if turn.get("annotation") is not None else dialogue.get("annotation")
    return (ann or {}).get("annotated")


def explode_dialogue(dialogue: dict, max_context_turns: int) -> list[dict]:
    """The customer turns of one dialogue, each with its preceding context."""
    turns = dialogue["turns"]
    out = []
    for i, turn in enumerate(turns):
        if turn["speaker"] != "customer":
            continue
        context = turns[max(0, i - max_context_turns):i] if max_context_turns > 0 else []
        labels = turn.get("labels")
        out.append({
            "dialogue_id": dialogue["dialogue_id"],
            "customer_id": dialogue.get("customer_id"),
            "started_at": dialogue.get("started_at"),
            "turn_index": i,
            "text": turn["text"],
            "labels": list(labels or []),
            "has_labels": labels is not None,
            "annotated": turn.get("annotated"),
            "context_speakers": [t["speaker"] for t in context],
            "context_texts": [t["text"] for t in context],
        })
    return out


def turn_view(dialogues: Dataset, max_context_turns: int) -> Dataset:
    """Explode a dialogue Dataset into customer turns (batched ``map``, order preserved)."""

    def explode(batch: dict) -> dict:
        out: dict[str, list] = {k: [] for k in TURN_FEATURES}
        n = len(batch["dialogue_id"])
        for j in range(n):
            dialogue = {k: batch[k][j] for k in batch}
            for row in explode_dialogue(dialogue, max_context_turns):
                for k, v in row.items():
                    out[k].append(v)
        return out

    return dialogues.map(explode, batched=True, remove_columns=dialogues.column_names,
                         features=TURN_FEATURES, desc="customer turns")
