import json

import pytest

from profiler.data.contract import ContractError, read_dialogues
from profiler.data.turns import explode_dialogue, load_dialogues, turn_view


def dialogue(did, turns=None, **extra):
    turns = turns or [{"speaker": "agent", "text": "您一般什么时候方便？"},
                      {"speaker": "customer", "text": "下午吧", "labels": ["basic.contact_time.afternoon"]}]
    return {"dialogue_id": did, "turns": turns, **extra}


# (line content, expected field, expected words in the reason); each line is one bad dialogue
BAD = [
    ('{"dialogue_id": "x1", "turns": [', "<json>", "malformed JSON"),
    (json.dumps({"turns": dialogue("x")["turns"]}), "dialogue_id", "missing"),
    (json.dumps(dialogue(7)), "dialogue_id", "non-empty string"),
    (json.dumps(dialogue("b3", customer_id=5)), "customer_id", "must be a string"),
    (json.dumps(dialogue("b4", started_at="yesterday")), "started_at", "ISO-8601"),
    (json.dumps({"dialogue_id": "b5"}), "turns", "missing"),
    (json.dumps(dialogue("b6", [{"speaker": "bot", "text": "您好"}])), "turns[0].speaker", "unknown speaker 'bot'"),
    (json.dumps(dialogue("b7", [{"speaker": "customer", "text": "   "}])), "turns[0].text", "empty text"),
    (json.dumps(dialogue("b8", [{"speaker": "customer", "text": 3}])), "turns[0].text", "must be a string"),
    (json.dumps(dialogue("b9", [{"speaker": "customer", "text": "好", "labels": ["pref.risk.conservativ"]}])),
     "turns[0].labels[0]", "nearest known: pref.risk.conservative"),
    (json.dumps(dialogue("b10", [{"speaker": "customer", "text": "稳一点，能博一下",
                                  "labels": ["pref.risk.conservative", "pref.risk.high"]}])),
     "turns[0].labels", "exclusive dimension pref.risk"),
    (json.dumps(dialogue("b11", [{"speaker": "agent", "text": "您好", "labels": ["voice.positive.praise"]}])),
     "turns[0].labels", "agent turns carry no tags"),
    (json.dumps(dialogue("ok1")), "dialogue_id", "duplicate dialogue_id 'ok1'"),
    ("[1, 2]", "<root>", "JSON object"),
]


@pytest.fixture()
def bad_file(tmp_path):
    lines = [json.dumps(dialogue("ok1"))]
    for content, _, _ in BAD:
        lines.append(content)
    lines.append(json.dumps(dialogue("ok2", customer_id="c9", started_at="2026-03-01T10:00:00+08:00")))
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_lenient_read_reports_every_problem_with_file_line_field_and_keeps_valid(bad_file, taxonomy):
    rows, report = read_dialogues(bad_file, taxonomy, strict=False)
    assert [r["dialogue_id"] for r in rows] == ["ok1", "ok2"]
    assert report.lines == len(BAD) + 2 and report.kept == 2 and report.rejected == len(BAD)
    by_line = {p.line: p for p in report.problems}
    for offset, (_, field, words) in enumerate(BAD, start=2):
        problem = by_line[offset]
        assert problem.file == str(bad_file)
        assert problem.field == field, (offset, problem)
        assert words in problem.reason, (offset, problem)
        assert str(problem).startswith(f"{bad_file}:{offset}: {field}: ")


def test_strict_read_fails_listing_all_problems(bad_file, taxonomy):
    with pytest.raises(ContractError) as err:
        read_dialogues(bad_file, taxonomy, strict=True)
    assert len(err.value.problems) == len(BAD)
    assert f"{bad_file}:2: <json>" in str(err.value)


def test_problems_are_written_as_jsonl(bad_file, taxonomy, tmp_path):
    _, report = read_dialogues(bad_file, taxonomy)
    report.write_jsonl(tmp_path / "errors.jsonl")
    written = [json.loads(x) for x in (tmp_path / "errors.jsonl").read_text().splitlines()]
    assert {w["line"] for w in written} == set(range(2, len(BAD) + 2))
    assert all({"file", "line", "field", "reason"} <= set(w) for w in written)


def test_turn_view_gives_one_example_per_customer_turn_with_context(tmp_path, taxonomy):
    turns = [{"speaker": "agent", "text": "您好"}, {"speaker": "customer", "text": "嗯", "labels": []},
             {"speaker": "agent", "text": "这张卡是您自己在管吗？"},
             {"speaker": "customer", "text": "本人", "labels": ["basic.fund_owner.self"]},
             {"speaker": "agent", "text": "好的"}, {"speaker": "customer", "text": "嗯嗯"}]
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(dialogue("d1", turns, customer_id="c1")) + "\n", encoding="utf-8")
    dialogues, report = load_dialogues(path, taxonomy)
    view = turn_view(dialogues, max_context_turns=2)
    assert report.kept == 1 and len(view) == 3
    assert view["turn_index"] == [1, 3, 5]
    assert view[1]["context_texts"] == ["嗯", "这张卡是您自己在管吗？"]
    assert view[1]["context_speakers"] == ["customer", "agent"]
    assert view[1]["labels"] == ["basic.fund_owner.self"] and view[1]["has_labels"]
    assert view[2]["has_labels"] is False  # no "labels" key: unannotated, not "no tag"
    assert explode_dialogue(dialogues[0], 0)[1]["context_texts"] == []
