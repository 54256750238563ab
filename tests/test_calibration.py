"""Calibrated scores: a score of p comes true about p of the time, the tag sets do not change,
and the report shows what the flattering global ECE hides."""

import numpy as np
import pytest

from profiler.calibration import apply_platt, calibration, fit_platt
from profiler.decision import DecisionRule, tune


def overconfident(n=4000, tags=6, seed=0):
    """Raw scores whose true rate is far below what they claim (as an over-confident head's are)."""
    rng = np.random.default_rng(seed)
    true_p = rng.beta(0.3, 3.0, size=(n, tags))
    truth = rng.random((n, tags)) < true_p
    raw = 1 / (1 + np.exp(-(3.0 * np.log(true_p / (1 - true_p)) + 2.0)))   # sharper and shifted up
    return raw, truth


def test_platt_fitted_on_dev_calibrates_held_out_scores():
    raw, truth = overconfident(seed=0)
    params = fit_platt(raw, truth)
    test_raw, test_truth = overconfident(seed=1)
    before = calibration(test_truth, test_raw, pred=test_raw >= 0.5)
    after = calibration(test_truth, apply_platt(test_raw, params), pred=test_raw >= 0.5)
    assert after["adaptive_ece"] < before["adaptive_ece"] / 3
    assert after["per_tag_ece"] < before["per_tag_ece"] / 2
    assert abs(after["positives"]["mean_score"] - after["positives"]["precision"]) < 0.05
    assert before["positives"]["mean_score"] - before["positives"]["precision"] > 0.15


def test_calibration_keeps_every_decision_and_every_ranking(taxonomy):
    rng = np.random.default_rng(3)
    raw = rng.random((500, len(taxonomy))) ** 4
    truth = rng.random((500, len(taxonomy))) < raw
    rule = tune(raw, truth, taxonomy)
    assert rule.calibration is not None
    calibrated = rule.calibrate(raw)
    for j in range(raw.shape[1]):   # increasing map per tag: same order
        order = np.argsort(raw[:, j], kind="stable")
        assert np.all(np.diff(calibrated[order, j]) >= -1e-7)
    assert not np.allclose(calibrated, raw)
    saved = DecisionRule(**{**rule.__dict__})
    assert np.array_equal(saved.decide(raw), rule.decide(raw))


def test_rare_tags_are_pulled_towards_the_shared_fit():
    raw, truth = overconfident(n=3000, tags=3, seed=5)
    truth[:, 2] = False
    truth[:2, 2] = True   # two positives: too few to trust a fit of its own
    params = fit_platt(raw, truth, prior_strength=20.0)
    shared_slope = params["shared"][0]
    assert abs(params["slope"][2] - shared_slope) < abs(params["slope"][0] - shared_slope) + 0.5


def test_global_ece_flatters_where_adaptive_and_positive_reliability_do_not():
    # 98% of pairs: score 0.01, rightly negative; 2%: score 0.85, right only half the time
    n = 5000
    probs = np.full((n, 1), 0.01)
    truth = np.zeros((n, 1), bool)
    probs[:100] = 0.85
    truth[:50] = True
    cal = calibration(truth, probs, pred=probs >= 0.5)
    assert cal["ece"] < 0.02   # looks excellent
    assert cal["positives"]["precision"] == pytest.approx(0.5)
    assert cal["positives"]["ece"] == pytest.approx(0.35)
