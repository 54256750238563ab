"""Label Studio export/import against the server's true output shape.

The fixtures under tests/fixtures/labelstudio/ are real exports of Label Studio 1.23.2, made by
scripts/labelstudio_live.py from synthetic dialogues: ``export.json`` (a round: multi-tag, an
exclusive value, an empty result, a corrected annotation, a skipped and an unopened task, with
``posted.json`` saying what was posted), ``export_invalid.json`` (what the server accepts and we
must refuse) and ``export_min.json`` (the same round as JSON_MIN).
"""

import json
from pathlib import Path

import pytest

from profiler.annotate.labelstudio import NO_CONTEXT, import_export, model_version, task_for
from profiler.cli.annotate import main as annotate_main
from profiler.taxonomy import Taxonomy

FIXTURES = Path(__file__).parent / "fixtures" / "labelstudio"
V1 = Taxonomy.bundled("v1")


def selected(turns, i, **extra):
    return {"dialogue": {"dialogue_id": "d1", "turns": turns}, "turn_index": i, "text": turns[i]["text"],
            "priority": 0.75, "reason": {"tag": "pref.risk.conservative"}, "predicted": ["pref.risk.conservative"],
            **extra}


def test_a_customer_first_turn_gets_a_context_the_dialogue_view_can_render():
    turns = [{"speaker": "customer", "text": "我想问下理财"}, {"speaker": "agent", "text": "您好"},
             {"speaker": "customer", "text": "稳一点的"}]
    first = task_for(selected(turns, 0), V1, ["pref.risk"], None)["data"]["context"]
    # an empty list blanks Label Studio's labelling screen (TypeError in its Paragraphs view)
    assert first == [NO_CONTEXT] and all(isinstance(c[k], str) and c[k] for c in first for k in ("speaker", "text"))
    later = task_for(selected(turns, 2), V1, ["pref.risk"], None)["data"]["context"]
    assert [c["text"] for c in later] == ["我想问下理财", "您好"]
    # the real export: the server kept the customer-first task's context as exported
    real = json.loads((FIXTURES / "export.json").read_text(encoding="utf-8"))
    opening = [t for t in real if t["data"]["turn_index"] == 0]
    assert opening and all(t["data"]["context"] == [NO_CONTEXT] for t in opening)


def test_a_real_export_imports_every_posted_tag_on_its_turn():
    posted = json.loads((FIXTURES / "posted.json").read_text(encoding="utf-8"))
    dialogues, problems = import_export(FIXTURES / "export.json", V1)
    assert problems == []
    turns = {(d["dialogue_id"], i): t for d in dialogues for i, t in enumerate(d["turns"])}
    for p in posted:
        turn = turns.get((p["dialogue_id"], p["turn_index"]), {})
        if p["labels"] is None:   # skipped in Label Studio, or never opened
            assert "annotation" not in turn
        else:
            assert sorted(turn["labels"]) == p["labels"]
            assert turn["annotation"]["annotated"] == ["voice.negative", "pref.risk"]
            assert turn["annotation"]["annotator"].isdigit()      # completed_by is a user id, never an e-mail
    assert {len(p["labels"] or ()) for p in posted} >= {0, 1, 2, 3}   # empty, single, multi-tag results


def test_annotations_the_server_accepted_are_refused_by_task_and_field():
    dialogues, problems = import_export(FIXTURES / "export_invalid.json", V1)
    tasks = json.loads((FIXTURES / "export_invalid.json").read_text(encoding="utf-8"))
    assert [(p.line, p.field) for p in problems] == [
        (1, "annotations[0].result[0].value.choices[0]"),   # display value 保本 instead of the tag id
        (2, "annotations[0].result[0].value.choices"),      # two values in single-choice pref.risk
        (3, "annotations[0].result[0].from_name")]          # a dimension that is not in the round
    for p, task in zip(problems, tasks):
        assert p.file == str(FIXTURES / "export_invalid.json") and f"task {task['id']}," in p.reason
        assert p.dialogue_id == task["data"]["dialogue_id"]
    assert "display value of pref.risk.capital_protected" in problems[0].reason
    assert "single-choice" in problems[1].reason
    assert [d["dialogue_id"] for d in dialogues] == [tasks[3]["data"]["dialogue_id"]]   # the valid task lands


def test_a_json_min_export_is_refused_with_a_pointer_to_json(tmp_path):
    dialogues, problems = import_export(FIXTURES / "export_min.json", V1)
    rows = json.loads((FIXTURES / "export_min.json").read_text(encoding="utf-8"))
    assert dialogues == [] and len(problems) == len(rows)
    assert all('export the project as "JSON"' in p.reason and "JSON_MIN" in p.reason for p in problems)
    csv = tmp_path / "export.csv"
    csv.write_text("dialogue_id,turn_index\nd1,0\n", encoding="utf-8")
    dialogues, problems = import_export(csv, V1)
    assert dialogues == [] and 'export the project as "JSON"' in problems[0].reason


def test_model_version_is_the_models_name_and_taxonomy_hash_not_its_path(tmp_path):
    model = tmp_path / "runs" / "e5-small" / "model"
    model.mkdir(parents=True)
    (model / "taxonomy.tsv").write_text(V1.to_tsv(), encoding="utf-8")
    assert model_version(model) == f"e5-small/model@{V1.hash[:12]}"
    # a selection line written before model_version existed carries the model's absolute path
    line = selected([{"speaker": "customer", "text": "稳一点的"}], 0, model=str(model))
    selection = tmp_path / "selection.jsonl"
    selection.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as code:
        annotate_main(["export", str(selection), "--out-dir", str(tmp_path / "ls"), "--dimensions", "pref.risk"])
    assert code.value.code == 0
    prediction = json.loads((tmp_path / "ls" / "tasks.json").read_text(encoding="utf-8"))[0]["predictions"][0]
    assert prediction["model_version"] == f"e5-small/model@{V1.hash[:12]}"
    assert str(tmp_path) not in json.dumps(prediction)
    assert prediction["score"] == 0.75     # the selection's priority: Label Studio sorts tasks by it
    # and the real server keeps both in its export (the stand-in model of the live run)
    real = json.loads((FIXTURES / "export.json").read_text(encoding="utf-8"))
    kept = [a["prediction"] for t in real for a in t["annotations"] if a.get("prediction")]
    assert kept and all(p["model_version"].endswith(f"@{V1.hash[:12]}") and 0 < p["score"] <= 1 for p in kept)
