import csv
import os
import subprocess
import sys

import pytest

from profiler.taxonomy import Taxonomy, TaxonomyError
from tests.conftest import SPEC

EXPECTED_EXCLUSIVE = {"basic.fund_owner", "basic.experience", "pref.risk", "pref.promotion"}


def test_bundled_taxonomy_has_the_95_contract_ids(taxonomy):
    assert len(taxonomy) == 95 and len(set(taxonomy.ids)) == 95
    assert taxonomy.version == "v1"
    assert taxonomy.ids[0] == "basic.fund_owner.self" and taxonomy.ids[-1] == "voice.question.branch"
    assert set(taxonomy.categories) == {"基本信息", "客户偏好", "客户异议", "客户心声"}
    assert set(taxonomy.exclusive_groups) == EXPECTED_EXCLUSIVE
    assert taxonomy.exclusive_groups["pref.risk"] == (
        "pref.risk.capital_protected", "pref.risk.conservative", "pref.risk.medium", "pref.risk.high")
    assert taxonomy.tag("pref.contact.wecom").dimension == "沟通方式偏好"


@pytest.mark.skipif(not SPEC.exists(), reason="the product spec lives beside the checkout, in ../shared")
def test_bundled_taxonomy_equals_the_spec_row_for_row(taxonomy):
    with open(SPEC, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert [r["id"] for r in rows] == list(taxonomy.ids)
    for row, tag in zip(rows, taxonomy.tags):
        assert (row["category"], row["dimension"], row["value"], row["definition"]) == \
               (tag.category, tag.dimension, tag.value, tag.definition)
        assert (row["exclusive"] == "yes") == tag.exclusive


@pytest.mark.slow  # a second interpreter (subprocess)
def test_hash_is_stable_across_processes(taxonomy):
    code = "from profiler.taxonomy import Taxonomy; print(Taxonomy.bundled().hash)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == taxonomy.hash and len(taxonomy.hash) == 64


def _edit(taxonomy: Taxonomy, old: str, new: str) -> Taxonomy:
    text = taxonomy.to_tsv()
    assert old in text
    return Taxonomy.from_text(text.replace(old, new, 1))


def test_hash_changes_with_ids_order_and_exclusivity_but_not_wording(taxonomy):
    assert Taxonomy.from_text(taxonomy.to_tsv()).hash == taxonomy.hash
    renamed = _edit(taxonomy, "basic.funds.idle\t", "basic.funds.spare\t")
    lines = taxonomy.to_tsv().splitlines()
    lines[2], lines[3] = lines[3], lines[2]
    reordered = Taxonomy.from_text("\n".join(lines))
    reworded = _edit(taxonomy, "没投资过/不懂理财/第一次买", "完全没有投资经验")
    assert renamed.hash != taxonomy.hash
    assert reordered.hash != taxonomy.hash
    assert reworded.hash == taxonomy.hash


def test_exclusivity_change_of_a_whole_dimension_changes_hash(taxonomy):
    text = taxonomy.to_tsv()
    for value in ("是", "否"):
        text = text.replace(f"活动/礼品偏好\t{value}\tyes", f"活动/礼品偏好\t{value}\tno")
    changed = Taxonomy.from_text(text)
    assert "pref.promotion" not in changed.exclusive_groups
    assert changed.hash != taxonomy.hash


@pytest.mark.parametrize("old,new,message", [
    ("basic.fund_owner.other\t", "basic.fund_owner.self\t", "duplicate tag id"),
    ("投资经验\t小白\tyes", "投资经验\t小白\tno", "mixes exclusive"),
    ("#version=v1", "version v1", "#version="),
    ("\tyes\t客户本人", "\tmaybe\t客户本人", "yes/no"),
])
def test_broken_taxonomy_files_are_refused_with_a_reason(taxonomy, old, new, message):
    with pytest.raises(TaxonomyError, match=message):
        Taxonomy.from_text(taxonomy.to_tsv().replace(old, new, 1))


def test_nearest_ids_for_typos(taxonomy):
    assert taxonomy.nearest("pref.risk.conservativ")[0] == "pref.risk.conservative"


def test_a_model_directory_answers_in_its_own_taxonomy_not_the_configs(tmp_path):
    from profiler.taxonomy import Taxonomy

    v2 = Taxonomy.bundled("v2")
    v2.save(tmp_path / "taxonomy.tsv")  # what every model directory and bundle carries
    assert Taxonomy.of_model(tmp_path).hash == v2.hash != Taxonomy.load().hash
