"""Every metric against numbers computed by hand on a 6-turn, 3-dialogue, 4-tag fixture:
an exclusive dimension (a.x: one/two), a plain tag b.y.z and a tag b.y.w with no positives."""

import numpy as np
import pytest

from profiler.bootstrap import CI_METRICS, dialogue_bootstrap, point_estimates
from profiler.calibration import calibration
from profiler.metrics import group_table, headline, per_tag_table, scored_tags
from profiler.taxonomy import Taxonomy

TSV = """#version=t
id\tcategory\tdimension\tvalue\texclusive\tdefinition
a.x.one\tA\tX\t一\tyes\tone
a.x.two\tA\tX\t二\tyes\ttwo
b.y.z\tB\tY\tz\tno\tz
b.y.w\tB\tY\tw\tno\tw
"""
#          x1 x2 z  w
TRUTH = [[1, 0, 0, 0],   # D1 t0  exact
         [0, 1, 0, 0],   # D1 t1  x2 read as x1 (exclusive confusion)
         [0, 0, 1, 0],   # D2 t2  z right, w false positive
         [0, 0, 0, 0],   # D2 t3  untagged, nothing predicted
         [1, 0, 1, 0],   # D3 t4  z missed
         [0, 0, 0, 0]]   # D3 t5  untagged, z false positive
PRED = [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]]
GROUPS = np.array(["D1", "D1", "D2", "D2", "D3", "D3"])
X1_PROBS = [0.9, 0.8, 0.1, 0.2, 0.7, 0.3]


@pytest.fixture()
def fx():
    tax = Taxonomy.from_text(TSV)
    truth, pred = np.array(TRUTH, bool), np.array(PRED, bool)
    probs = np.where(pred, 0.6, 0.4)
    probs[:, 0] = X1_PROBS
    return tax, truth, pred, probs


def test_headline_by_hand(fx):
    _, truth, pred, _ = fx
    h = headline(truth, pred)
    assert h["micro_precision"] == pytest.approx(3 / 6) and h["micro_recall"] == pytest.approx(3 / 5)
    assert h["micro_f1"] == pytest.approx(6 / 11)
    # macro over tags with support ≥ 1: x1 0.8, x2 0.0, z 0.5; w (no positives) is left out, not a zero
    assert h["macro_f1"] == pytest.approx((0.8 + 0 + 0.5) / 3)
    assert h["macro_precision"] == pytest.approx((2 / 3 + 0 + 0.5) / 3)
    assert h["macro_recall"] == pytest.approx((1 + 0 + 0.5) / 3)
    # per turn: 1, 0, 2/3, 1 (nothing expected, nothing said), 2/3, 0
    assert h["samples_f1"] == pytest.approx((1 + 0 + 2 / 3 + 1 + 2 / 3 + 0) / 6)
    assert h["subset_accuracy"] == pytest.approx(2 / 6)
    assert h["hamming_loss"] == pytest.approx(5 / 24)
    assert h["untagged_fpr"] == pytest.approx(1 / 2)
    assert h["tags_evaluated"] == 3 and h["turns"] == 6
    assert headline(truth, pred, min_support=2)["macro_f1"] == pytest.approx((0.8 + 0.5) / 2)


def test_per_tag_threshold_free_and_flags(fx):
    tax, truth, pred, probs = fx
    rows = {r["tag"]: r for r in per_tag_table(truth, pred, probs, tax, [0.5] * 4, min_support=2)}
    x1 = rows["a.x.one"]
    assert (x1["precision"], x1["recall"], x1["support"], x1["predicted"]) == (pytest.approx(2 / 3), 1.0, 2, 3)
    assert x1["f1"] == pytest.approx(0.8)
    assert x1["average_precision"] == pytest.approx((1 + 2 / 3) / 2)   # ranks: pos, neg, pos
    assert x1["roc_auc"] == pytest.approx(7 / 8)
    assert rows["a.x.two"]["low_support"] and not x1["low_support"]
    w = rows["b.y.w"]
    assert w["support"] == 0 and w["predicted"] == 1 and w["f1"] == 0.0
    assert w["average_precision"] is None and w["roc_auc"] is None and w["low_support"]
    assert list(scored_tags(truth, 2)) == [0, 2]


def test_dimension_and_category_aggregates(fx):
    tax, truth, pred, _ = fx
    dims = group_table(truth, pred, tax, "dimension", min_support=1)
    assert dims["a.x"]["micro_f1"] == pytest.approx(4 / 6)      # tp 2, fp 1, fn 1
    assert dims["a.x"]["macro_f1"] == pytest.approx(0.4)         # (0.8 + 0) / 2
    assert dims["b.y"]["micro_f1"] == pytest.approx(2 / 5)       # tp 1, fp 2, fn 1
    assert dims["b.y"]["macro_f1"] == pytest.approx(0.5)         # w has no positives: not averaged
    assert dims["b.y"]["tags_scored"] == 1 and dims["b.y"]["support"] == 2
    assert group_table(truth, pred, tax, "category", 1)["A"] == dims["a.x"]


def test_calibration_by_hand():
    probs = np.array([[0.05], [0.05], [0.95], [0.95]])
    truth = np.array([[0], [1], [1], [1]])
    cal = calibration(truth, probs)
    assert cal["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert cal["bins"][0]["count"] == 2 and cal["bins"][0]["positive_rate"] == 0.5
    assert cal["bins"][9]["mean_probability"] == pytest.approx(0.95) and cal["bins"][5]["count"] == 0


def test_bootstrap_point_estimate_matches_headline_and_ci_contains_it(fx):
    _, truth, pred, _ = fx
    tags = scored_tags(truth)
    point, h = point_estimates(truth, pred, GROUPS, tags), headline(truth, pred)
    for key in CI_METRICS:
        assert point[key] == pytest.approx(h[key]), key
    ci = dialogue_bootstrap(truth, pred, GROUPS, tags, n_resamples=300, seed=7)
    for key in CI_METRICS:
        assert ci[key][0] <= h[key] + 1e-9 <= ci[key][1] + 2e-9, key
    assert ci == dialogue_bootstrap(truth, pred, GROUPS, tags, n_resamples=300, seed=7)
    assert ci != dialogue_bootstrap(truth, pred, GROUPS, tags, n_resamples=300, seed=8)


def test_bootstrap_resamples_dialogues_not_turns():
    """Two dialogues, each all-right or all-wrong: any replicate's subset accuracy is k/2 for whole
    dialogues; resampling turns would also produce other values."""
    truth = np.array([[1, 0]] * 4, bool)
    pred = np.array([[1, 0]] * 2 + [[0, 1]] * 2, bool)
    ci = dialogue_bootstrap(truth, pred, np.array(["A", "A", "B", "B"]), np.array([0]), n_resamples=200, seed=1)
    assert set(ci["subset_accuracy"]) <= {0.0, 0.5, 1.0}
