"""kerasdrop.metrics against closed forms, hand-computed cases and an independent loop implementation."""

import math

import numpy as np
import pytest

from kerasdrop import metrics

LN2 = math.log(2.0)


def loop_entropy(row):
    """Entropy of one probability vector, written as a plain loop (independent of the vectorised code)."""
    return -sum(p * math.log(p) for p in row if p > 0)


def random_probs(shape, seed=0):
    logits = np.random.default_rng(seed).normal(size=shape) * 2.0
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------- entropies and mutual information


def test_entropy_closed_forms():
    np.testing.assert_allclose(metrics.predictive_entropy([[0.5, 0.5]]), [LN2], rtol=1e-12)
    np.testing.assert_allclose(metrics.predictive_entropy(np.full((2, 10), 0.1)), [math.log(10)] * 2, rtol=1e-12)
    np.testing.assert_array_equal(metrics.predictive_entropy([[1.0, 0.0, 0.0]]), [0.0])  # 0 log 0 = 0, no NaN
    np.testing.assert_allclose(metrics.entropy([0.25, 0.25, 0.5]), 1.5 * LN2, rtol=1e-12)


def test_entropy_matches_loop_on_random_rows():
    probs = random_probs((20, 7))
    expected = [loop_entropy(row) for row in probs]
    np.testing.assert_allclose(metrics.predictive_entropy(probs), expected, rtol=1e-10)
    np.testing.assert_allclose(metrics.entropy(probs[None]), [expected], rtol=1e-10)


def test_two_members_that_disagree_completely_have_mutual_information_ln2():
    samples = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])
    np.testing.assert_allclose(metrics.mutual_information(samples), [LN2], rtol=1e-12)
    np.testing.assert_array_equal(metrics.expected_entropy(samples), [0.0])
    np.testing.assert_allclose(metrics.predictive_entropy(samples.mean(axis=0)), [LN2], rtol=1e-12)


def test_identical_members_have_zero_mutual_information():
    member = random_probs((5, 4))
    samples = np.stack([member] * 6)
    np.testing.assert_allclose(metrics.mutual_information(samples), 0.0, atol=1e-12)
    np.testing.assert_allclose(metrics.expected_entropy(samples), metrics.predictive_entropy(member), rtol=1e-12)


def test_mutual_information_is_predictive_minus_expected_entropy():
    samples = random_probs((8, 30, 5), seed=1)
    predictive = [loop_entropy(row) for row in samples.mean(axis=0)]
    expected = [np.mean([loop_entropy(samples[t, n]) for t in range(8)]) for n in range(30)]
    np.testing.assert_allclose(metrics.expected_entropy(samples), expected, rtol=1e-10)
    np.testing.assert_allclose(metrics.mutual_information(samples), np.subtract(predictive, expected), atol=1e-12)
    assert np.all(metrics.mutual_information(samples) > 0)  # Jensen: strictly positive when members differ


# ---------------------------------------------------------------- calibration


def test_ece_hand_computed_two_bins():
    # bins of width 0.25; rows 1-2 in (0.5, 0.75]: accuracy 1/2, confidence 0.65; row 3 in (0.75, 1]: accuracy 1,
    # confidence 0.9. ECE = 2/3 * |0.5 - 0.65| + 1/3 * |1 - 0.9| = 0.1 + 0.1/3
    probs = [[0.6, 0.4], [0.3, 0.7], [0.9, 0.1]]
    labels = [0, 0, 0]
    assert metrics.expected_calibration_error(probs, labels, bins=4) == pytest.approx(0.1 + 0.1 / 3, abs=1e-12)
    curve = metrics.calibration_curve(probs, labels, bins=4)
    np.testing.assert_array_equal(curve.counts, [0, 0, 2, 1])
    np.testing.assert_allclose(curve.accuracy[2:], [0.5, 1.0])
    np.testing.assert_allclose(curve.confidence[2:], [0.65, 0.9])
    assert np.all(np.isnan(curve.accuracy[:2])) and np.all(np.isnan(curve.confidence[:2]))
    np.testing.assert_allclose(curve.edges, [0, 0.25, 0.5, 0.75, 1.0])


def test_ece_perfectly_calibrated_and_overconfident():
    probs = np.array([[0.75, 0.25]] * 4)
    assert metrics.expected_calibration_error(probs, [0, 0, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    confident = np.array([[1.0, 0.0, 0.0]] * 4)
    assert metrics.expected_calibration_error(confident, [0, 1, 0, 2]) == pytest.approx(0.5, abs=1e-12)


def test_confidence_on_a_bin_edge_goes_to_the_lower_bin():
    curve = metrics.calibration_curve([[0.5, 0.5], [0.6, 0.4], [0.2, 0.8]], [0, 0, 1], bins=5)
    # edges 0, .2, .4, .6, .8, 1: 0.5 -> (0.4, 0.6]; 0.6 -> (0.4, 0.6]; 0.8 -> (0.6, 0.8]
    np.testing.assert_array_equal(curve.counts, [0, 0, 2, 1, 0])


def test_ece_matches_loop_on_random_predictions():
    probs = random_probs((300, 4), seed=2)
    labels = np.random.default_rng(3).integers(0, 4, 300)
    bins = 10
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        rows = [i for i in range(300) if low < probs[i].max() <= high]
        if rows:
            accuracy = np.mean([probs[i].argmax() == labels[i] for i in rows])
            confidence = np.mean([probs[i].max() for i in rows])
            total += len(rows) / 300 * abs(accuracy - confidence)
    assert metrics.expected_calibration_error(probs, labels, bins=bins) == pytest.approx(total, abs=1e-12)


# ---------------------------------------------------------------- NLL and Brier


def test_negative_log_likelihood_hand_computed():
    probs = [[0.8, 0.2], [0.4, 0.6]]
    assert metrics.negative_log_likelihood(probs, [0, 0]) == pytest.approx(-(math.log(0.8) + math.log(0.4)) / 2)
    assert metrics.negative_log_likelihood([[1.0, 0.0]], [1]) == pytest.approx(-math.log(1e-12))
    assert metrics.negative_log_likelihood([[1.0, 0.0]], [1], eps=1e-3) == pytest.approx(-math.log(1e-3))


def test_brier_score_hand_computed():
    assert metrics.brier_score([[0.8, 0.2]], [0]) == pytest.approx(0.08)
    assert metrics.brier_score([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [0, 1]) == pytest.approx(0.0)
    assert metrics.brier_score([[1.0, 0.0]], [1]) == pytest.approx(2.0)
    assert metrics.brier_score([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], [2, 2]) == pytest.approx(
        ((0.25 + 0.09 + 0.64) + (0.01 + 0.01 + 0.04)) / 2
    )


def test_float_labels_with_integer_values_are_accepted():
    assert metrics.brier_score([[0.8, 0.2]], np.array([0.0])) == pytest.approx(0.08)


def test_float16_rows_may_be_off_by_float16_rounding():
    probs = np.array([[0.3335, 0.3335, 0.3335]], dtype="float16")  # sums to 1.0005 in float16
    assert metrics.predictive_entropy(probs)[0] == pytest.approx(math.log(3), abs=2e-3)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "function, args, match",
    [
        (metrics.predictive_entropy, ([0.5, 0.5],), r"shape \(N, C\)"),
        (metrics.expected_entropy, ([[0.5, 0.5]],), r"shape \(T, N, C\)"),
        (metrics.mutual_information, ([[0.5, 0.5]],), r"shape \(T, N, C\)"),
        (metrics.predictive_entropy, ([[2.0, -1.0]],), r"probabilities in \[0, 1\]"),
        (metrics.predictive_entropy, ([[0.5, 0.6]],), "sum to 1"),
        (metrics.predictive_entropy, (np.array([[0.5, 0.505]], "float32"),), "sum to 1"),
        (metrics.predictive_entropy, ([[np.nan, 1.0]],), "NaN"),
        (metrics.negative_log_likelihood, ([[0.5, 0.5]], [2]), r"labels in \[0, 2\)"),
        (metrics.negative_log_likelihood, ([[0.5, 0.5]], [-1]), r"labels in \[0, 2\)"),
        (metrics.brier_score, ([[0.5, 0.5]], [0, 1]), r"shape \(1,\)"),
        (metrics.brier_score, ([[0.5, 0.5]], [[1, 0]]), "one-hot"),
        (metrics.brier_score, ([[0.5, 0.5]], [0.5]), "integer class labels"),
        (metrics.expected_calibration_error, ([[0.5, 0.5]], [0], 0), "`bins`"),
        (metrics.expected_calibration_error, (np.zeros((0, 3)), []), "no rows"),
        (metrics.negative_log_likelihood, ([[0.5, 0.5]], [0], 0.0), "`eps`"),
    ],
)
def test_bad_inputs_raise_value_error(function, args, match):
    with pytest.raises(ValueError, match=match):
        function(*args)


@pytest.mark.parametrize(
    "function, args",
    [
        (metrics.predictive_entropy, ([["a", "b"]],)),
        (metrics.brier_score, ([[0.5, 0.5]], ["0"])),
        (metrics.expected_calibration_error, ([[0.5, 0.5]], [0], 1.5)),
    ],
)
def test_wrong_types_raise_type_error(function, args):
    with pytest.raises(TypeError):
        function(*args)


def test_accuracy_and_classification_scores_by_hand():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    labels = np.array([0, 1, 1, 0])
    assert metrics.accuracy(probs, labels) == 0.75  # rows 0, 1 right; row 2 wrong; a tie goes to class 0
    scores = metrics.classification_scores(probs, labels)
    assert scores == {
        "accuracy": 0.75,
        "nll": metrics.negative_log_likelihood(probs, labels),
        "ece": metrics.expected_calibration_error(probs, labels),
        "brier": metrics.brier_score(probs, labels),
    }
    assert scores["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.4, 0.5])))
    with pytest.raises(ValueError):
        metrics.accuracy(probs, np.array([0, 1, 2, 0]))
