"""The writers' corpus (voices): it loads clean, covers every tag with positives and hard negatives in
every register, keeps held-out writers apart, and becomes contract dialogues the trainer reads."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources

import pytest

from profiler.data.contract import validate_line
from profiler.synth.corpus import voices_corpus
from profiler.synth.generator import SynthConfig
from profiler.synth.voices import REGISTERS, load_split, parse_file, summary, to_dialogues

ROOT = resources.files("profiler.synth").joinpath("voices")
MIN_POSITIVES = 100         # distinct train utterances carrying each tag (the brief's floor: 100, 60 for the rarest)


@pytest.fixture(scope="module")
def exclusive(taxonomy):
    return {t: d for d, group in taxonomy.exclusive_groups.items() for t in group}


@pytest.fixture(scope="module")
def voices(taxonomy):
    return voices_corpus(taxonomy, SynthConfig())


@pytest.fixture(scope="module")
def train_summary(voices, taxonomy):
    return summary(voices["train_voices"], list(taxonomy.ids))


def test_every_bundled_line_is_valid(taxonomy, exclusive):
    for split in ("train", "heldout"):
        rows, errors = load_split(ROOT.joinpath(split), list(taxonomy.ids), exclusive)
        assert errors == [], errors[:5]
        assert rows


def test_every_tag_has_enough_distinct_positives_and_hard_negatives(train_summary):
    per_tag = train_summary["per_tag"]
    positives = {t: c["positive"] for t, c in per_tag.items()}
    assert min(positives.values()) >= MIN_POSITIVES, sorted(positives.items(), key=lambda kv: kv[1])[:5]
    # hard negatives (the tag's key words without its meaning): about as many as positives, for every tag
    thin = {t: c for t, c in per_tag.items() if c["negative"] < 0.95 * c["positive"]}
    assert not thin, thin
    assert sum(c["negative"] for c in per_tag.values()) >= sum(positives.values())


def test_untagged_turns_are_at_least_half_and_every_register_is_well_represented(voices):
    for name, rows in voices.items():
        assert sum(not u.labels for u in rows) >= 0.5 * len(rows), name
        registers = Counter(u.register for u in rows)
        assert set(registers) == set(REGISTERS), name
        assert min(registers.values()) >= 0.06 * len(rows), (name, registers)
    multi = sum(len(u.labels) > 1 for u in voices["train_voices"])
    assert multi >= 500


def test_held_out_writers_are_disjoint_from_train_writers(voices):
    train_writers = {u.writer for u in voices["train_voices"]}
    held_writers = {u.writer for name in ("dev_voices", "test_voices") for u in voices[name]}
    assert train_writers and held_writers and not train_writers & held_writers
    assert len(train_writers) >= 5
    train_texts = {u.text for u in voices["train_voices"]}
    for name in ("dev_voices", "test_voices"):
        assert not train_texts & {u.text for u in voices[name]}, name
    assert {u.writer for u in voices["dev_voices"]}.isdisjoint({u.writer for u in voices["test_voices"]})


def test_a_bad_line_names_file_line_and_field_and_the_good_lines_survive(taxonomy, exclusive, tmp_path):
    path = tmp_path / "w99.part.tsv"
    lines = [
        "call\tvoice.question.fee\t-\t-\t那个你们这个手续费怎么收的",
        "im\t-\tvoice.question.fee\t-\t手续费已经退回来了 谢谢",
        "im\tvoice.question.nonsense\t-\t-\t这一行的标签不存在",
        "sms\t-\t-\t-\t这一行的语体不存在",
        "app\tbasic.experience.novice,basic.experience.expert\t-\t-\t两个互斥的值",
        "app\tvoice.question.fee\tvoice.question.fee\t-\t既是正例又是反例",
        "forum\t-\t-\t-",
        "# a comment line",
        "app\t-\t-\t您好请问有什么可以帮您\t密码忘了怎么重置",
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"app\t-\t-\t-\t\xff\xfe\n")
    rows, errors = parse_file(path, list(taxonomy.ids), exclusive)
    assert [u.text for u in rows] == ["那个你们这个手续费怎么收的", "手续费已经退回来了 谢谢", "密码忘了怎么重置"]
    assert [u.kind for u in rows] == ["positive", "negative", "untagged"]
    assert rows[2].agent == "您好请问有什么可以帮您" and rows[0].agent is None and rows[0].writer == "w99"
    expected = {3: "labels: unknown", 4: "register:", 5: "exclusive", 6: "neg_for:", 7: "fields", 10: "not UTF-8"}
    assert len(errors) == len(expected)
    for (line, needle), error in zip(sorted(expected.items()), errors):
        assert error.startswith(f"{path}:{line}: ") and needle in error, error


def test_voices_become_contract_dialogues_with_their_labels_and_agent_turns(voices, taxonomy):
    rows = voices["dev_voices"][:400]
    dialogues = to_dialogues(rows, "dev_voices", taxonomy.version, seed=1, agent_lines=("您看怎么样？",))
    assert len(dialogues) == len(rows)
    for i, (d, u) in enumerate(zip(dialogues, rows)):
        assert validate_line(json.dumps(d, ensure_ascii=False), "x.jsonl", i + 1, taxonomy)[1] == [], d
        assert d["turns"][-1] == {"speaker": "customer", "text": u.text, "labels": list(u.labels)}
        if u.agent:
            assert d["turns"][0] == {"speaker": "agent", "text": u.agent}
        elif u.register != "call":
            assert len(d["turns"]) == 1   # app questions and posts stand alone
    framed = [d for d, u in zip(dialogues, rows) if u.register == "call" and not u.agent]
    with_agent = sum(len(d["turns"]) == 2 for d in framed)
    assert 0 < with_agent < len(framed)   # call lines appear with and without a preceding agent turn


def test_the_corpus_writes_voices_files_and_their_data_card(small_corpus, taxonomy):
    card = json.loads((small_corpus / "data_card.json").read_text(encoding="utf-8"))
    for name in ("train_voices", "dev_voices", "test_voices"):
        lines = (small_corpus / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == card["voices"][name]["utterances"] > 0
        assert set(card["voices"][name]["registers"]) == set(REGISTERS)
    md = (small_corpus / "data_card.md").read_text(encoding="utf-8")
    assert "## Voices" in md and "`voice.negative.complaint`" in md and "writers" in md


@pytest.mark.parametrize("with_voices", [True, False])
def test_the_model_card_says_when_the_voices_corpus_was_trained_on(with_voices, compose_cfg, small_corpus, cache_dir,
                                                                   tmp_path):
    from profiler.cli.train import train
    from profiler.report.card import card_from_files, render_card
    from tests.conftest import tiny_train_overrides

    files = [f"{small_corpus}/train.jsonl"] + ([f"{small_corpus}/train_voices.jsonl"] if with_voices else [])
    train(compose_cfg("train", tiny_train_overrides(small_corpus, cache_dir, tmp_path, "model=rules",
                                                    f"data.train=[{','.join(files)}]", "data.test=null")))
    card = render_card(card_from_files(tmp_path / "model"))
    assert ("voices corpus" in card) == with_voices
    assert all(f in card for f in files)


def test_the_writers_check_script_needs_no_install_and_fails_on_a_bad_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    good, bad = tmp_path / "w98.a.tsv", tmp_path / "w98.b.tsv"
    good.write_text("app\tvoice.question.fee\t-\t-\t年费怎么收\n", encoding="utf-8")
    bad.write_text("app\tvoice.question.fee\t-\t-\t年费怎么收\nsms\t-\t-\t-\t不存在的语体\n", encoding="utf-8")
    taxonomy = repo / "configs" / "taxonomy" / "v1.tsv"
    script = [sys.executable, "-S", str(repo / "scripts" / "check_voices.py"), str(taxonomy)]  # -S: no site-packages
    ok = subprocess.run([*script, str(good)], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("1 distinct utterances, 0 bad line(s)")
    assert "voice.question.fee\t1\t0" in ok.stdout
    failed = subprocess.run([*script, str(good), str(bad)], capture_output=True, text=True)
    assert failed.returncode == 1 and failed.stdout.startswith(f"{bad}:2: register:")
    assert "1 distinct utterances, 1 bad line(s)" in failed.stdout   # the duplicate text is counted once
