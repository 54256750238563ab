import json

from profiler.predict.profiles import aggregate, dialogue_summaries, render, write_profiles

RISK_LOW, RISK_HIGH = "pref.risk.conservative", "pref.risk.high"


def turn(did, idx, text, labels, scores, cid="C1", started_at=None):
    return {"dialogue_id": did, "turn_index": idx, "speaker": "customer", "text": text, "labels": labels,
            "scores": scores, "customer_id": cid, "started_at": started_at}


def fixture(taxonomy):
    assert taxonomy.tag(RISK_LOW).exclusive and taxonomy.tag(RISK_HIGH).dimension_id == taxonomy.tag(RISK_LOW).dimension_id
    # the later dialogue comes first in the file: time order must come from started_at
    return [
        turn("D2", 1, "现在想搏一把", [RISK_HIGH], {RISK_HIGH: 0.9}, started_at="2026-03-01T10:00:00"),
        turn("D2", 3, "没时间", ["objection.refuse.no_time"], {"objection.refuse.no_time": 0.7}, started_at="2026-03-01T10:00:00"),
        turn("D1", 1, "保本的就行", [RISK_LOW], {RISK_LOW: 0.8}, started_at="2026-01-05T09:00:00"),
        turn("D1", 5, "太忙了", ["objection.refuse.no_time"], {"objection.refuse.no_time": 0.95}, started_at="2026-01-05T09:00:00"),
        turn("D3", 1, "嗯", [], {}, cid=None),
    ]


def test_exclusive_dimension_reports_latest_value_and_keeps_history(taxonomy):
    profiles = {p.key: render(p, taxonomy) for p in aggregate(fixture(taxonomy), taxonomy, evidence=3)}
    risk = profiles["C1"]["dimensions"][taxonomy.tag(RISK_LOW).dimension_id]
    assert risk["exclusive"] and risk["current"]["tag"] == RISK_HIGH
    assert [(e["tag"], e["dialogue_id"]) for e in risk["history"]] == [(RISK_LOW, "D1"), (RISK_HIGH, "D2")]
    assert profiles["C1"]["dialogues"] == ["D1", "D2"]
    assert (profiles["C1"]["first_seen"], profiles["C1"]["last_seen"]) == ("2026-01-05T09:00:00", "2026-03-01T10:00:00")


def test_repeated_tags_count_and_keep_best_evidence_first(taxonomy):
    turns = fixture(taxonomy)
    profiles = {p.key: render(p, taxonomy) for p in aggregate(turns, taxonomy, evidence=1)}
    dim = profiles["C1"]["dimensions"][taxonomy.tag("objection.refuse.no_time").dimension_id]
    (entry,) = [t for t in dim["tags"] if t["tag"] == "objection.refuse.no_time"]
    assert entry["count"] == 2 and entry["score"] == 0.95
    assert entry["first_seen"] == "2026-01-05T09:00:00" and entry["last_seen"] == "2026-03-01T10:00:00"
    assert entry["evidence"] == [{"dialogue_id": "D1", "turn_index": 5, "text": "太忙了", "score": 0.95}]
    assert "current" not in dim or dim["exclusive"]


def test_dialogues_without_customer_form_their_own_profile_and_summaries(taxonomy, tmp_path):
    path = tmp_path / "turns.jsonl"
    path.write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in fixture(taxonomy)), encoding="utf-8")
    counts = write_profiles(path, taxonomy, tmp_path)
    profiles = [json.loads(x) for x in (tmp_path / "profiles.jsonl").read_text().splitlines()]
    assert counts == {"profiles": 2, "dialogue_summaries": 3}
    assert [p["profile_key"] for p in profiles] == ["C1", "dialogue:D3"]
    assert profiles[1]["customer_id"] is None and profiles[1]["dimensions"] == {}
    summaries = list(dialogue_summaries(fixture(taxonomy)))
    assert [s["dialogue_id"] for s in summaries] == ["D2", "D1", "D3"]
    assert summaries[0]["tags"] == {RISK_HIGH: {"score": 0.9, "turns": [1]}, "objection.refuse.no_time": {"score": 0.7, "turns": [3]}}


def test_evidence_pointers_of_a_real_run_point_at_real_turns(tiny_model_dir, small_corpus, compose_cfg, tmp_path):
    from profiler.cli.predict import predict

    out = tmp_path / "turns.jsonl"
    predict(compose_cfg("predict", [f"model_dir={tiny_model_dir}", f"input={small_corpus}/test.jsonl",
                                    f"output={out}", f"hydra.run.dir={tmp_path}/h"]))
    turns = {(r["dialogue_id"], r["turn_index"]): r for r in map(json.loads, out.read_text().splitlines())}
    profiles = [json.loads(x) for x in (tmp_path / "profiles.jsonl").read_text().splitlines()]
    checked = 0
    for p in profiles:
        for dim in p["dimensions"].values():
            for tag in dim["tags"]:
                for ev in tag["evidence"]:
                    row = turns[(ev["dialogue_id"], ev["turn_index"])]
                    assert row["text"] == ev["text"] and tag["tag"] in row["labels"]
                    checked += 1
    assert checked > 0
    assert sum(p["customer_turns"] for p in profiles) == len(turns)
