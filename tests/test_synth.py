import json
from collections import defaultdict

import pytest

from profiler.data.contract import read_dialogues
from profiler.synth.corpus import generate_corpus, split_stats, write_corpus
from profiler.synth.generator import SynthConfig
from profiler.synth.noise import TO_TRADITIONAL


@pytest.fixture(scope="module")
def corpus(taxonomy):
    return generate_corpus(taxonomy, SynthConfig())  # the default size, as shipped


def test_default_size_covers_every_tag(corpus, taxonomy):
    stats = {split: split_stats(items, taxonomy) for split, items in corpus.items()}
    assert min(stats["train"]["per_tag"].values()) >= 60
    assert min(stats["test"]["per_tag"].values()) >= 15
    assert min(stats["dev"]["per_tag"].values()) >= 15


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_shares_of_untagged_multi_tag_and_context_only_turns(corpus, taxonomy, split):
    stats = split_stats(corpus[split], taxonomy)
    assert stats["untagged_share"] >= 0.30
    assert stats["context_dependent_share_of_tagged"] >= 0.15
    assert stats["multi_tag_share_of_tagged"] >= 0.10
    assert 4 <= stats["turns_per_dialogue"]["min"] and stats["turns_per_dialogue"]["max"] <= 20


def test_context_only_turns_really_need_the_context(corpus):
    """The same customer words carry different tags depending on the agent turn before them."""
    tags_by_text = defaultdict(set)
    for _, turns in corpus["train"]:
        for t in turns:
            if t.context_dependent:
                tags_by_text[t.text].add(tuple(t.labels))
    ambiguous = [text for text, tags in tags_by_text.items() if len(tags) >= 3]
    assert len(ambiguous) >= 5, "bare answers like 对/没有 should mean different tags after different questions"


def test_only_customer_turns_carry_tags_and_all_dialogues_satisfy_the_contract(corpus, taxonomy, tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d, _ in corpus["test"]), encoding="utf-8")
    rows, report = read_dialogues(path, taxonomy, strict=True)
    assert report.kept == len(corpus["test"]) and not report.problems
    assert all("labels" not in t for d in rows for t in d["turns"] if t["speaker"] == "agent")


def test_held_out_phrasings_never_occur_in_train(corpus):
    def phrasings(split):
        return {p for _, turns in corpus[split] for t in turns if t.labels for p in t.phrases if ":" in p}

    def tagged_texts(split):
        return {t.text for _, turns in corpus[split] for t in turns if t.labels}

    train, test = phrasings("train") | phrasings("dev"), phrasings("test")
    assert test and not (train & test)
    overlap = tagged_texts("test") & (tagged_texts("train") | tagged_texts("dev"))
    assert not overlap, sorted(overlap)[:10]


def test_train_phrasing_fraction_thins_train_and_leaves_test_alone(corpus, taxonomy):
    def phrasings(items):
        return {p for _, turns in items for t in turns if t.labels for p in t.phrases if "/say:" in p}

    half = generate_corpus(taxonomy, SynthConfig(train_phrasing_fraction=0.5))
    full_train, half_train = phrasings(corpus["train"]), phrasings(half["train"])
    assert half_train < full_train and len(half_train) <= 0.7 * len(full_train)
    assert phrasings(half["dev"]) <= half_train
    assert [d for d, _ in half["test"]] == [d for d, _ in corpus["test"]], "the test split is the same corpus"


def test_spoken_style_noise_is_present(corpus):
    texts = [t.text for _, turns in corpus["train"] for t in turns if t.speaker == "customer"]
    traditional = {chr(v) for v in TO_TRADITIONAL.values()}
    assert sum(any(c in traditional for c in x) for x in texts) > 20
    assert sum(("App" in x or "APP" in x or "VIP" in x or "OK" in x) for x in texts) > 20
    assert sum(not any(p in x for p in "，。？！") for x in texts) / len(texts) > 0.4
    assert sum(x.startswith(("嗯", "呃", "那个", "就是")) for x in texts) > 200


def test_generation_is_deterministic_for_a_seed(taxonomy, tmp_path):
    small = dict(per_tag={"train": 5, "dev": 2, "test": 2})
    write_corpus(tmp_path / "a", taxonomy, SynthConfig(seed=7, **small))
    write_corpus(tmp_path / "b", taxonomy, SynthConfig(seed=7, **small))
    write_corpus(tmp_path / "c", taxonomy, SynthConfig(seed=8, **small))
    for name in ("train.jsonl", "dev.jsonl", "test.jsonl", "data_card.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()
    card = json.loads((tmp_path / "a" / "data_card.json").read_text())
    assert card["taxonomy_hash"] == taxonomy.hash
    assert "| `voice.question.branch` |" in (tmp_path / "a" / "data_card.md").read_text()
