"""Scoring on a real-speech set: the numbers bench_real prints, on hand-checked cases and end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from profiler.cli.train import train
from profiler.realset import read_gold, score, score_model
from tests.conftest import tiny_train_overrides

REPO_SCRIPTS = __import__("pathlib").Path(__file__).resolve().parents[1] / "scripts"


def test_score_counts_micro_macro_and_untagged_left_clean():
    gold = {("a", 0): {"x"}, ("b", 0): {"x", "y"}, ("c", 0): set(), ("d", 0): set(), ("e", 0): {"x"}}
    pred = {("a", 0): {"x"}, ("b", 0): {"x"}, ("c", 0): {"y"}, ("e", 0): set()}   # d: no prediction at all
    s = score(gold, pred, min_support=2)
    # tp: a.x, b.x = 2; fp: c.y = 1; fn: b.y, e.x = 2
    assert s.micro_f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 4)
    assert s.support == {"x": 3}                     # y has 1 gold item: below min_support, not in macro
    assert s.macro_f1 == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))
    assert s.clean_on_untagged == pytest.approx(0.5)  # c got a tag, d (unpredicted) stayed clean
    assert s.n == 5


def test_a_malformed_gold_line_names_its_line(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text('{"dialogue_id": "a", "turn_index": 0, "labels": []}\n{"dialogue_id": "b"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"gold.jsonl:2: not a gold record"):
        read_gold(path)


@pytest.fixture()
def real_like_set(small_corpus, tmp_path):
    """A folder in the real-set layout, made from held-out writers' utterances (never real text)."""
    inputs, gold = [], []
    for line in (small_corpus / "test_voices.jsonl").read_text(encoding="utf-8").splitlines()[:120]:
        d = json.loads(line)
        last = len(d["turns"]) - 1
        gold.append({"dialogue_id": d["dialogue_id"], "turn_index": last, "labels": d["turns"][last].pop("labels")})
        for t in d["turns"]:
            t.pop("labels", None)
        inputs.append(d)
    out = tmp_path / "real_like"
    out.mkdir()
    (out / "input.jsonl").write_text("\n".join(json.dumps(d, ensure_ascii=False) for d in inputs) + "\n", encoding="utf-8")
    (out / "gold.jsonl").write_text("\n".join(json.dumps(g, ensure_ascii=False) for g in gold) + "\n", encoding="utf-8")
    return out


@pytest.mark.slow
def test_bench_real_prints_every_model_side_by_side(real_like_set, tiny_model_dir, small_corpus, cache_dir,
                                                     compose_cfg, tmp_path):
    train(compose_cfg("train", tiny_train_overrides(small_corpus, cache_dir, tmp_path / "run", "model=rules",
                                                    f"model_dir={tmp_path}/rules", "data.test=null")))
    rules = tmp_path / "rules"
    out = tmp_path / "scores.json"
    res = subprocess.run([sys.executable, str(REPO_SCRIPTS / "bench_real.py"), str(real_like_set), str(tiny_model_dir),
                          str(rules), "--json", str(out)], check=True, capture_output=True, text=True)
    header = res.stdout.splitlines()[2]
    assert header == f"| metric | {tiny_model_dir.name} | rules |"
    for label in ("micro-F1", "macro-F1", "untagged left untagged", "| tag | items |"):
        assert label in res.stdout
    scores = json.loads(out.read_text(encoding="utf-8"))
    direct = score_model(tiny_model_dir, real_like_set)
    assert scores[tiny_model_dir.name]["micro_f1"] == pytest.approx(direct.micro_f1)
    assert scores["rules"]["n"] == 120
    assert all(0 <= s["clean_on_untagged"] <= 1 or math.isnan(s["clean_on_untagged"]) for s in scores.values())
