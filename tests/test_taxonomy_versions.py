"""Taxonomy versions: diff, migration mapping, dataset migration, partial-label metrics."""

import json

import numpy as np
import pytest

from profiler.cli.taxonomy import main as taxonomy_main
from profiler.metrics import headline
from profiler.migration import Migration, MigrationError, diff, migrate_files
from profiler.taxonomy import Taxonomy

HEADER = "id\tcategory\tdimension\tvalue\texclusive\tdefinition\n"
OLD = "#version=old\n" + HEADER + "".join([
    "a.x.p\tA\t维度X\t甲\tyes\tdef p\n", "a.x.q\tA\t维度X\t乙\tyes\tdef q\n",
    "b.y.m\tB\t维度Y\t子\tno\tdef m\n", "b.y.n\tB\t维度Y\t丑\tno\tdef n\n", "b.y.o\tB\t维度Y\t寅\tno\tdef o\n",
    "b.w.s\tB\t维度W\t卯\tno\tdef s\n"])
NEW = "#version=new\n" + HEADER + "".join([
    "a.x.p\tA\t维度X\t甲\tno\tdef p\n", "a.x.r\tA\t维度X\t丙\tno\tdef r\n",   # exclusivity changed, r added
    "b.y.mm\tB\t维度Y\t子\tno\tdef m\n", "b.y.no\tB\t维度Y\t丑寅\tno\tn or o\n",   # m renamed, n+o merged
    "b.w.s2\tB\t维度W\t辰\tno\tdef s2\n", "c.z.k\tC\t维度Z\t巳\tno\tdef k\n"])   # s renamed + edited; k added


@pytest.fixture()
def pair(tmp_path):
    old, new = Taxonomy.from_text(OLD), Taxonomy.from_text(NEW)
    mapping = tmp_path / "old_to_new.yaml"
    mapping.write_text("from: old\nto: new\ntags:\n  a.x.q: null\n  b.y.m: b.y.mm\n  b.y.n: b.y.no\n"
                       "  b.y.o: b.y.no\n  b.w.s: b.w.s2\n", encoding="utf-8")
    return old, new, mapping


def test_diff_reports_every_kind_of_change_on_a_crafted_pair(pair):
    old, new, mapping = pair
    got = {(c.kind, c.old, c.new) for c in diff(old, new, Migration.load(mapping))}
    assert got == {("dropped", "a.x.q", ""), ("renamed", "b.y.m", "b.y.mm"), ("merged", "b.y.n, b.y.o", "b.y.no"),
                   ("renamed", "b.w.s", "b.w.s2"), ("edited", "b.w.s", "b.w.s2"), ("added", "", "a.x.r"),
                   ("added", "", "c.z.k"), ("exclusivity", "a.x", "a.x")}


def test_diff_without_mapping_infers_renames_from_equal_names_only(pair):
    old, new, _ = pair
    got = {(c.kind, c.old, c.new) for c in diff(old, new)}
    assert ("renamed", "b.y.m", "b.y.mm") in got          # same category/dimension/value names
    assert ("dropped", "b.w.s", "") in got                 # names changed too: not guessed
    assert not any(k == "merged" for k, _, _ in got)


def test_diff_cli_prints_the_table_for_the_bundled_versions(capsys):
    with pytest.raises(SystemExit) as exit_:
        taxonomy_main(["diff", "v1", "v2", "--migration", "v1_to_v2"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "| renamed | `basic.platform.third_party` | `basic.platform.internet_finance` |" in out
    assert "| merged | `voice.positive.system_easy, voice.positive.system_smooth` | `voice.positive.system_good`" in out
    assert out.count("| added |") == 25 and "dropped: 0" in out


def test_unmapped_tags_are_an_error_that_names_them(pair):
    old, new, _ = pair
    with pytest.raises(MigrationError) as e:
        Migration(tags={"b.y.m": "b.y.mm"}).resolve(old, new)
    for tag in ("a.x.q", "b.y.n", "b.y.o", "b.w.s"):
        assert tag in str(e.value)
    with pytest.raises(MigrationError, match="unknown in new: b.y.zz"):
        Migration(tags={"a.x.q": None, "b.y.m": "b.y.zz", "b.y.n": None, "b.y.o": None, "b.w.s": None}).resolve(old, new)


def _dialogue(did: str, labels: list[str], annotation: dict | None = None) -> dict:
    d = {"dialogue_id": did, "turns": [{"speaker": "agent", "text": "您好"},
                                       {"speaker": "customer", "text": "我用支付宝，App也好用", "labels": labels}]}
    return {**d, "annotation": annotation} if annotation else d


def test_v1_dataset_migrates_to_v2_and_new_tags_stay_unannotated(tmp_path):
    v1, v2 = Taxonomy.bundled("v1"), Taxonomy.bundled("v2")
    src = tmp_path / "v1.jsonl"
    rows = [_dialogue("d1", ["basic.platform.third_party", "voice.positive.system_easy", "voice.positive.system_smooth"]),
            _dialogue("d2", ["no.such.tag"]),                                   # invalid under v1: reported
            _dialogue("d3", ["voice.positive.system_easy"], {"annotated": ["voice.positive.system_easy"]})]
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "v2.jsonl"
    report = migrate_files([src], out, v1, v2, Migration.load("v1_to_v2"))
    assert (report.lines, report.kept) == (3, 2)
    assert [(p.line, p.field) for p in report.problems] == [(2, "turns[1].labels[0]")]
    d1, d3 = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert d1["turns"][1]["labels"] == ["basic.platform.internet_finance", "voice.positive.system_good"]
    annotated = v2.expand(d1["annotation"]["annotated"])
    assert d1["annotation"]["taxonomy_version"] == "v2" and "voice.positive" in d1["annotation"]["annotated"]
    assert annotated == frozenset(t for t in v2.ids if not t.startswith("kyc."))
    # half of a merge annotated: the merged tag's "absent" would be a guess, so the dialogue does not
    # cover it; the one turn where it holds is known, and says so in its own annotation
    assert d3["annotation"]["annotated"] == []
    assert d3["turns"][1]["labels"] == ["voice.positive.system_good"]
    assert d3["turns"][1]["annotation"]["annotated"] == ["voice.positive.system_good"]


def test_unmigrated_v1_data_is_refused_under_v2(tmp_path):
    from profiler.data.contract import validate_line

    _, problems = validate_line(_dialogue("d", [], {"taxonomy_version": "v1"}), "f.jsonl", 7, Taxonomy.bundled("v2"))
    assert [(p.line, p.field) for p in problems] == [(7, "annotation.taxonomy_version")]
    assert "profiler-taxonomy migrate" in problems[0].reason
    _, problems = validate_line(_dialogue("d", ["basic.funds.idle"], {"annotated": ["pref.risk"]}), "f.jsonl", 1,
                                Taxonomy.bundled("v1"))
    assert [p.field for p in problems] == ["turns[1].labels"] and "outside the annotated set" in problems[0].reason


def test_metrics_score_annotated_pairs_only():
    rng = np.random.default_rng(0)
    truth, pred = rng.random((40, 5)) < 0.3, rng.random((40, 5)) < 0.3
    mask = np.ones_like(truth)
    mask[:20, 3:] = False                      # tags 3-4 annotated on the last 20 turns only
    noisy = pred.copy()
    noisy[:20, 3:] = True                      # predictions on unannotated pairs must not count
    got = headline(truth, noisy, mask=mask)
    ref_truth, ref_pred = truth.copy(), pred.copy()
    ref_truth[:20, 3:] = ref_pred[:20, 3:] = False
    ref = headline(ref_truth, ref_pred)
    assert got["micro_f1"] == ref["micro_f1"] and got["macro_f1"] == ref["macro_f1"]
    assert got["hamming_loss"] == pytest.approx((ref_truth != ref_pred).sum() / mask.sum())
    assert headline(truth, noisy)["micro_f1"] != got["micro_f1"]


def test_generator_writes_v2_corpora_with_every_new_dimension(tmp_path):
    from profiler.data.contract import read_dialogues
    from profiler.synth.corpus import write_corpus
    from profiler.synth.generator import SynthConfig
    from profiler.synth.phrasebook import Phrasebook

    v1, v2 = Taxonomy.bundled("v1"), Taxonomy.bundled("v2")
    renames = Migration.load("v1_to_v2").tags
    card = write_corpus(tmp_path, v2, SynthConfig(seed=2, per_tag={"train": 4, "dev": 0, "test": 2},
                                                  id_prefix="new-"), renames)
    assert min(card["splits"]["train"]["per_tag"].values()) >= 4 and min(card["splits"]["test"]["per_tag"].values()) >= 2
    dialogues, report = read_dialogues(tmp_path / "train.jsonl", v2, strict=True)
    assert report.kept == len(dialogues) and dialogues[0]["dialogue_id"].startswith("new-train-")
    assert all(d["annotation"] == {"taxonomy_version": "v2"} for d in dialogues)
    book = Phrasebook.bundled()
    merged = book.fit(v2, renames).tags["voice.positive.system_good"].say
    assert set(merged) == set(book.tags["voice.positive.system_easy"].say) | set(book.tags["voice.positive.system_smooth"].say)
    assert set(book.fit(v1).tags) == set(v1.ids)       # the KYC phrasings stay out of v1 corpora
