import numpy as np
import pytest

from profiler.decision import GRID, DecisionRule, tune


def test_exclusive_decoding_keeps_only_the_most_probable_value(taxonomy):
    rule = DecisionRule.default(taxonomy, threshold=0.5)
    risk = [taxonomy.index[t] for t in taxonomy.exclusive_groups["pref.risk"]]
    probs = np.zeros((3, len(taxonomy)))
    probs[0, risk] = [0.9, 0.8, 0.1, 0.6]    # three above threshold -> only the 0.9 survives
    probs[1, risk] = [0.2, 0.7, 0.1, 0.1]    # one above -> unchanged
    probs[2, risk] = [0.6, 0.6, 0.1, 0.1]    # a tie -> exactly one survives
    other = taxonomy.index["voice.question.fee"]
    probs[0, other] = 0.99                   # non-exclusive tags are untouched
    out = rule.decide(probs)
    assert out[0, risk].tolist() == [True, False, False, False] and out[0, other]
    assert out[1, risk].tolist() == [False, True, False, False]
    assert out[2, risk].sum() == 1


def test_decoding_never_emits_two_values_of_an_exclusive_dimension(taxonomy):
    rng = np.random.default_rng(0)
    probs = rng.random((2000, len(taxonomy)))
    rule = DecisionRule.default(taxonomy, threshold=0.3)
    out = rule.decide(probs)
    for group in rule.exclusive_groups:
        assert out[:, group].sum(axis=1).max() == 1
    plain = probs >= 0.3
    non_exclusive = [j for j in range(len(taxonomy)) if not any(j in g for g in rule.exclusive_groups)]
    assert (out[:, non_exclusive] == plain[:, non_exclusive]).all()


def test_tuning_picks_each_tags_best_threshold_and_falls_back_for_rare_tags(taxonomy):
    n, t = 200, len(taxonomy)
    truth = np.zeros((n, t), dtype=bool)
    probs = np.full((n, t), 0.01)
    a, b = taxonomy.index["voice.question.fee"], taxonomy.index["voice.question.branch"]
    truth[:50, a] = True
    probs[:50, a] = 0.3            # positives score 0.3, negatives 0.01..0.2: best cut is in (0.2, 0.3]
    probs[50:100, a] = 0.2
    truth[:3, b] = True            # 3 positives < min_support 5: global threshold
    probs[:3, b] = 0.9
    rule = tune(probs, truth, taxonomy, min_support=5)
    assert 0.2 < rule.thresholds[a] <= 0.3 and rule.tuned[a]
    assert not rule.tuned[b] and rule.thresholds[b] == rule.global_threshold
    assert rule.global_threshold in GRID
    assert (rule.decide(probs)[:, a] == truth[:, a]).all()


def test_rule_round_trips_through_the_model_directory(taxonomy, tmp_path):
    rule = DecisionRule.default(taxonomy, threshold=0.37)
    rule.thresholds[5] = 0.81
    rule.save(tmp_path)
    assert DecisionRule.load(tmp_path, taxonomy) == rule
    other = taxonomy.__class__.from_text(taxonomy.to_tsv().replace("voice.question.branch\t", "voice.question.x\t"))
    with pytest.raises(ValueError, match="another taxonomy"):
        DecisionRule.load(tmp_path, other)
