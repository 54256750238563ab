"""Label Studio round trip: selected turns -> tasks + labeling config; Label Studio's JSON export ->
dialogues in our contract, validated, with annotator and time kept.

One task is one customer turn. The annotator sees the preceding turns as a dialogue (``Paragraphs``)
and the turn itself, and one ``Choices`` block per dimension of this round: exclusive dimensions as
radio buttons, the others as checkboxes. Each ``Choice`` shows the Chinese value and stores the tag
id (``alias``), so the export carries tag ids. A dimension shown but left empty means "annotated,
none of these": the imported turn records the round's dimensions as ``annotation.annotated``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from xml.etree import ElementTree as ET

from profiler.data.contract import Problem, validate_line
from profiler.taxonomy import Taxonomy

SPEAKER_NAMES = {"agent": "经理", "customer": "客户"}
OBJECT_NAME = "turn"
# Label Studio's dialogue view (Paragraphs) throws on an empty list and leaves the labelling screen
# blank (seen in 1.23.2); the server accepts such tasks silently. Inbound calls often open with the
# customer, so a turn with no preceding turns gets this one-line placeholder as its context.
NO_CONTEXT = {"speaker": "—", "text": "（对话由客户开始，此前没有对话 / the customer speaks first）"}


def labeling_config(taxonomy: Taxonomy, dimensions: Iterable[str]) -> str:
    """The Label Studio XML for the given dimensions, grouped under their category headers."""
    root = ET.Element("View")
    ET.SubElement(root, "Header", value="对话上下文 (context)")
    ET.SubElement(root, "Paragraphs", name="context", value="$context", layout="dialogue",
                  nameKey="speaker", textKey="text")
    ET.SubElement(root, "Header", value="请标注这句客户话语 (the customer turn to tag)")
    ET.SubElement(root, "Text", name=OBJECT_NAME, value="$text")
    dims = set(dimensions)
    for category, tag_ids in taxonomy.categories.items():
        cat_dims = [d for d in dict.fromkeys(taxonomy.tag(t).dimension_id for t in tag_ids) if d in dims]
        if not cat_dims:
            continue
        view = ET.SubElement(root, "View")
        ET.SubElement(view, "Header", value=category)
        for dim in cat_dims:
            members = [taxonomy.tag(t) for t in taxonomy.dimensions[dim]]
            exclusive = members[0].exclusive
            ET.SubElement(view, "Header", value=f"{members[0].dimension} ({'单选' if exclusive else '多选'})", size="6")
            choices = ET.SubElement(view, "Choices", name=dim, toName=OBJECT_NAME, showInline="true",
                                    choice="single-radio" if exclusive else "multiple")
            for tag in members:
                ET.SubElement(choices, "Choice", value=tag.value, alias=tag.id, hint=tag.definition)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def task_for(selected: dict, taxonomy: Taxonomy, dimensions: list[str], model_version: str | None) -> dict:
    """One Label Studio task from a ``profiler-annotate select`` line. ``model_version`` names the
    model whose decisions become the task's prediction (None: no pre-annotation); the prediction's
    ``score`` is the selection's priority, so Label Studio can sort tasks by it."""
    d, i = selected["dialogue"], selected["turn_index"]
    turns = [{"speaker": t["speaker"], "text": t["text"]} for t in d["turns"]]  # earlier labels are not shown
    context = [{"speaker": SPEAKER_NAMES[t["speaker"]], "text": t["text"]} for t in turns[:i]] or [NO_CONTEXT]
    data = {"dialogue_id": d["dialogue_id"], "turn_index": i, "text": turns[i]["text"], "context": context,
            "turns": turns, "customer_id": d.get("customer_id"), "started_at": d.get("started_at"),
            "channel": d.get("channel"), "dimensions": dimensions, "taxonomy_version": taxonomy.version,
            "taxonomy_hash": taxonomy.hash, "selection_reason": selected.get("reason")}
    task: dict = {"data": data}
    predicted = [t for t in selected.get("predicted", []) if t in taxonomy and taxonomy.tag(t).dimension_id in dimensions]
    if model_version is not None:  # pre-annotation: annotators correct the model instead of starting blank
        by_dim: dict[str, list[str]] = {}
        for t in predicted:
            by_dim.setdefault(taxonomy.tag(t).dimension_id, []).append(t)
        prediction: dict = {"model_version": model_version, "result": [
            {"from_name": dim, "to_name": OBJECT_NAME, "type": "choices", "value": {"choices": tags}}
            for dim, tags in by_dim.items()]}
        if selected.get("priority") is not None:
            prediction["score"] = float(selected["priority"])
        task["predictions"] = [prediction]
    return task


def model_version(model_dir: str | Path, taxonomy_hash: str | None = None) -> str:
    """``name@hash12``: the model directory's name and its taxonomy hash. Not the path: it is the
    user's file system, and it changes when the model is copied while the model does not."""
    path = Path(model_dir)
    if taxonomy_hash is None and (path / "taxonomy.tsv").is_file():
        taxonomy_hash = Taxonomy.of_model(path).hash
    name = path.name if path.name != "model" else f"{path.parent.name}/{path.name}"  # runs/<run>/model
    return f"{name}@{taxonomy_hash[:12]}" if taxonomy_hash else name


def _annotator(completed_by) -> str:
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or completed_by.get("id"))
    return str(completed_by)


def _latest(annotations: list[dict]) -> tuple[int, dict] | None:
    done = [(k, a) for k, a in enumerate(annotations) if not a.get("was_cancelled")]
    if not done:
        return None
    return max(done, key=lambda ka: ka[1].get("updated_at") or ka[1].get("created_at") or "")


class _TaskReader:
    """Turns one exported task into (dialogue_id, turn_index, labels, annotation) or problems."""

    def __init__(self, path: str, taxonomy: Taxonomy):
        self.path, self.taxonomy = path, taxonomy

    def read(self, n: int, task: dict) -> tuple[dict | None, list[Problem]]:
        problem = lambda field, reason: Problem(self.path, n, field, reason, task.get("data", {}).get("dialogue_id"))  # noqa: E731
        data = task.get("data") or {}
        if "data" not in task and "dialogue_id" in task:  # JSON_MIN flattens data and results into the task
            return None, [Problem(self.path, n, "data", "this is Label Studio's JSON_MIN export, which drops the "
                                  "annotation details: export the project as \"JSON\" instead", task["dialogue_id"])]
        missing = [k for k in ("dialogue_id", "turn_index", "turns", "dimensions") if k not in data]
        if missing:
            return None, [problem("data", f"not a profiler task (missing {', '.join(missing)})")]
        if data.get("taxonomy_version") != self.taxonomy.version:
            return None, [problem("data.taxonomy_version", f"task was made for {data.get('taxonomy_version')}, "
                                                           f"importing as {self.taxonomy.version}")]
        i, turns = data["turn_index"], data["turns"]
        if not (isinstance(i, int) and 0 <= i < len(turns) and turns[i].get("speaker") == "customer"):
            return None, [problem("data.turn_index", f"{i!r} is not a customer turn of this dialogue")]
        latest = _latest(task.get("annotations") or [])
        if latest is None:
            return None, []  # skipped or cancelled in Label Studio: nothing to import, nothing wrong
        k, ann = latest
        labels, problems = [], []
        # Label Studio does not check results against the config (1.23.2 stores display values, two
        # values of a single-choice dimension, unknown from_names): every check is ours, per field.
        task_ref = f"task {task.get('id')}, annotation {ann.get('id')}"
        for r, result in enumerate(ann.get("result") or []):
            where = f"annotations[{k}].result[{r}]"
            dim = result.get("from_name")
            if result.get("type") != "choices":
                continue
            if dim not in data["dimensions"]:
                problems.append(problem(f"{where}.from_name", f"{task_ref}: {dim!r} is not a dimension of this round"))
                continue
            choices = (result.get("value") or {}).get("choices") or []
            for c, tag in enumerate(choices):
                if tag not in self.taxonomy or self.taxonomy.tag(tag).dimension_id != dim:
                    shown = [t for t in self.taxonomy.dimensions.get(dim, ()) if self.taxonomy.tag(t).value == tag]
                    hint = f" (the display value of {shown[0]}; the config stores tag ids)" if shown else ""
                    problems.append(problem(f"{where}.value.choices[{c}]",
                                            f"{task_ref}: {tag!r} is not a tag of {dim}{hint}"))
                elif tag not in labels:
                    labels.append(tag)
            if dim in self.taxonomy.exclusive_groups and len(set(choices)) > 1:
                problems.append(problem(f"{where}.value.choices", f"{task_ref}: {dim} is single-choice, got "
                                        f"{len(set(choices))} values: {', '.join(map(str, choices))}"))
        if problems:
            return None, problems
        annotation = {"taxonomy_version": self.taxonomy.version, "annotated": list(data["dimensions"]),
                      "annotator": _annotator(ann.get("completed_by")),
                      "annotated_at": ann.get("updated_at") or ann.get("created_at"),
                      "source": f"label-studio:task={task.get('id')}:annotation={ann.get('id')}"}
        return {"data": data, "labels": labels, "annotation": annotation}, []


def import_export(path: str | Path, taxonomy: Taxonomy) -> tuple[list[dict], list[Problem]]:
    """Label Studio JSON export -> (dialogues in the contract, problems). Each problem names the
    file, the task's position (as ``line``) and the field; every other task is imported. Tasks
    without a completed annotation (skipped, cancelled) are left out silently."""
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:  # CSV, TSV or CoNLL: the other export formats
        return [], [Problem(str(path), e.lineno, "<root>", f"not JSON ({e.msg}): export the project as \"JSON\"")]
    if not isinstance(tasks, list):
        return [], [Problem(str(path), 0, "<root>", "a Label Studio JSON export is a list of tasks")]
    reader, problems = _TaskReader(str(path), taxonomy), []
    dialogues: dict[str, dict] = {}
    first_line: dict[str, int] = {}
    for n, task in enumerate(tasks, start=1):
        item, found = reader.read(n, task)
        problems += found
        if item is None:
            continue
        data = item["data"]
        d = dialogues.setdefault(data["dialogue_id"], {
            "dialogue_id": data["dialogue_id"], "customer_id": data.get("customer_id"),
            "started_at": data.get("started_at"), "channel": data.get("channel"),
            "turns": [dict(t) for t in data["turns"]]})
        first_line.setdefault(data["dialogue_id"], n)
        turn = d["turns"][data["turn_index"]]
        turn["labels"], turn["annotation"] = item["labels"], item["annotation"]
    out = []
    for did, d in dialogues.items():
        d = {k: v for k, v in d.items() if v is not None}
        obj, found = validate_line(d, str(path), first_line[did], taxonomy)
        problems += found
        if obj is not None:
            out.append(obj)
    return out, problems
