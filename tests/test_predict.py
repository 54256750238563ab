import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from profiler.cli.predict import predict
from profiler.data.turns import explode_dialogue
from profiler.modeling import ModelDirError
from profiler.predictor import Predictor

PREDICT = [sys.executable, "-m", "profiler.cli.predict"]


def read_jsonl(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def overrides(model_dir, data, out, *extra):
    return [f"model_dir={model_dir}", f"input={data}", f"output={out}", f"hydra.run.dir={out.parent}/hydra", *extra]


@pytest.fixture(scope="module")
def big_input(small_corpus, tmp_path_factory):
    """All splits of the small corpus, three times over under fresh ids: enough chunks to kill mid-run."""
    out = tmp_path_factory.mktemp("big") / "calls.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for copy in range(3):
            for split in ("train", "dev", "test"):
                for d in read_jsonl(small_corpus / f"{split}.jsonl"):
                    d["dialogue_id"] = f"{copy}-{d['dialogue_id']}"
                    f.write(json.dumps(d, ensure_ascii=False) + "\n")
    return out


def test_output_equals_one_by_one_reference_in_input_order(tiny_model_dir, small_corpus, compose_cfg, tmp_path):
    out = tmp_path / "turns.jsonl"
    summary = predict(compose_cfg("predict", overrides(tiny_model_dir, small_corpus / "dev.jsonl", out,
                                                        "chunk_dialogues=7", "inference.max_tokens=600")))
    got = read_jsonl(out)
    predictor = Predictor.from_pretrained(tiny_model_dir)
    expected = [t for d in read_jsonl(small_corpus / "dev.jsonl") for t in explode_dialogue(d, predictor.context.max_turns)]
    assert summary["turns"] == len(got) == len(expected) and summary["rejected"] == 0
    for row, turn in zip(got, expected):
        probs, decided = predictor.predict({k: [turn[k]] for k in ("text", "context_speakers", "context_texts")})
        assert (row["dialogue_id"], row["turn_index"], row["text"]) == (turn["dialogue_id"], turn["turn_index"],
                                                                      turn["text"])
        assert row["labels"] == [predictor.taxonomy.ids[j] for j in np.flatnonzero(decided[0])]
        scores = np.array([row["scores"][t] for t in predictor.taxonomy.ids])
        assert np.abs(scores - probs[0]).max() < 1e-5  # batching with padding vs alone: same numbers


def test_bad_lines_are_reported_and_valid_dialogues_survive(tiny_model_dir, small_corpus, compose_cfg, tmp_path):
    good = read_jsonl(small_corpus / "dev.jsonl")[:3]
    bad_file = tmp_path / "mixed.jsonl"
    lines = [json.dumps(good[0], ensure_ascii=False), "{not json", json.dumps({"dialogue_id": "x", "turns": []}),
             json.dumps(good[1], ensure_ascii=False), json.dumps(good[1], ensure_ascii=False),
             json.dumps({**good[2], "turns": [{"speaker": "robot", "text": "hi"}]}, ensure_ascii=False)]
    bad_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "turns.jsonl"
    summary = predict(compose_cfg("predict", overrides(tiny_model_dir, bad_file, out, "chunk_dialogues=2")))
    errors = read_jsonl(out.parent / "errors.jsonl")
    assert sorted({(e["line"], e["field"]) for e in errors}) == [
        (2, "<json>"), (3, "turns"), (5, "dialogue_id"), (6, "turns[0].speaker")]
    assert all(e["file"] == str(bad_file) for e in errors)
    assert summary["rejected"] == 4 and summary["dialogues"] == 2
    assert {r["dialogue_id"] for r in read_jsonl(out)} == {good[0]["dialogue_id"], good[1]["dialogue_id"]}


def test_labels_in_the_input_are_ignored_and_scores_can_be_limited(tiny_model_dir, small_corpus, compose_cfg,
                                                                  tmp_path):
    d = read_jsonl(small_corpus / "dev.jsonl")[0]
    d["turns"][1]["labels"] = ["no.such.tag"]   # would be rejected by validation for training
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps(d, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "turns.jsonl"
    predict(compose_cfg("predict", overrides(tiny_model_dir, src, out, "scores.top_k=3", "profiles=false")))
    rows = read_jsonl(out)
    assert rows and all(len(r["scores"]) == 3 for r in rows)
    assert all(list(r["scores"].values()) == sorted(r["scores"].values(), reverse=True) for r in rows)


def test_parquet_input_gives_the_jsonl_output(tiny_model_dir, small_corpus, compose_cfg, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = read_jsonl(small_corpus / "test.jsonl")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "test.parquet")
    a, b = tmp_path / "a" / "turns.jsonl", tmp_path / "b" / "turns.jsonl"
    predict(compose_cfg("predict", overrides(tiny_model_dir, small_corpus / "test.jsonl", a)))
    predict(compose_cfg("predict", overrides(tiny_model_dir, tmp_path / "test.parquet", b)))
    assert a.read_bytes() == b.read_bytes()


def test_model_dir_whose_taxonomy_does_not_match_is_refused(tiny_model_dir, small_corpus, compose_cfg, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(tiny_model_dir, broken)
    tsv = (broken / "taxonomy.tsv").read_text(encoding="utf-8").splitlines()
    tsv[2], tsv[3] = tsv[3], tsv[2]            # swap two tag rows: the logits would be misread
    (broken / "taxonomy.tsv").write_text("\n".join(tsv) + "\n", encoding="utf-8")
    with pytest.raises(ModelDirError, match="hash"):
        predict(compose_cfg("predict", overrides(broken, small_corpus / "dev.jsonl", tmp_path / "o.jsonl")))


def _cli(model_dir, data, out, *extra):
    return [*PREDICT, *overrides(model_dir, data, out, *extra)]


@pytest.mark.slow
def test_kill_and_resume_equals_an_uninterrupted_run(tiny_model_dir, big_input, tmp_path):
    ref, out = tmp_path / "ref" / "turns.jsonl", tmp_path / "run" / "turns.jsonl"
    args = ("chunk_dialogues=2", "num_threads=1")
    subprocess.run(_cli(tiny_model_dir, big_input, ref, *args), check=True, capture_output=True)
    # SIGKILL right after chunk 7 is committed (a test hook in the runner, not a race with the clock)
    killed = subprocess.run(_cli(tiny_model_dir, big_input, out, *args), capture_output=True,
                            env={**os.environ, "PROFILER_FAULT": "kill:7"})
    parts = out.parent / ".turns.jsonl.parts"
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists() and len(list(parts.glob("*[0-9].jsonl"))) == 8, "the run must be killed midway"
    subprocess.run(_cli(tiny_model_dir, big_input, out, *args), check=True, capture_output=True)
    assert out.read_bytes() == ref.read_bytes()
    summary = json.loads((out.parent / "predict_summary.json").read_text())
    assert summary["turns_scored_now"] < summary["turns"], "finished chunks were not redone"
    assert (out.parent / "profiles.jsonl").read_bytes() == (ref.parent / "profiles.jsonl").read_bytes()
    assert not parts.exists()


@pytest.mark.slow
def test_two_processes_write_what_one_process_writes(tiny_model_dir, small_corpus, tmp_path):
    one, two = tmp_path / "one" / "turns.jsonl", tmp_path / "two" / "turns.jsonl"
    data = small_corpus / "dev.jsonl"
    subprocess.run(_cli(tiny_model_dir, data, one, "chunk_dialogues=5"), check=True, capture_output=True)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "profiler.cli.predict"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run([*launch, *overrides(tiny_model_dir, data, two, "chunk_dialogues=5")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((two.parent / "predict_summary.json").read_text())
    assert summary["processes"] == 2
    assert two.read_bytes() == one.read_bytes()
    assert (two.parent / "profiles.jsonl").read_bytes() == (one.parent / "profiles.jsonl").read_bytes()


def test_token_budget_batches_cover_every_turn_once_within_budget():
    from profiler.batching import token_budget_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 120, size=500).tolist() + [700]   # one turn longer than the budget
    batches = token_budget_batches(lengths, max_tokens=512, max_batch_size=64)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    for b in batches:
        widest = max(lengths[i] for i in b)
        assert len(b) <= 64 and (len(b) * widest <= 512 or len(b) == 1)
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)   # length-sorted: little padding
    with pytest.raises(ValueError):
        token_budget_batches(lengths, 0, 8)
