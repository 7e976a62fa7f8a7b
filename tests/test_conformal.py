"""kerasdrop.calibration.SplitConformal: the finite-sample quantile against a direct computation, the coverage of
every score over 200 seeded draws of calibration and test data (bounds computed from n), the sets and intervals on
MCDropout results, and clear errors."""

import math

import keras
import numpy as np
import pytest
from scipy.special import softmax

import kerasdrop
from kerasdrop.calibration import SplitConformal
from kerasdrop.calibration.conformal import class_scores, conformal_quantile

TRIALS, N_CALIBRATION, N_TEST = 200, 300, 400


@pytest.mark.parametrize("n, alpha", [(9, 0.1), (10, 0.1), (99, 0.05), (100, 0.05), (57, 0.2), (1000, 0.01)])
def test_the_quantile_is_the_kth_smallest_score(n, alpha):
    scores = np.random.default_rng(n).normal(size=n)
    k = math.ceil((n + 1) * (1 - alpha) - 1e-9)
    assert conformal_quantile(scores, alpha) == np.sort(scores)[k - 1]
    assert conformal_quantile(scores, alpha) == np.quantile(scores, k / n, method="inverted_cdf")


def test_the_kth_smallest_for_integer_products():
    # (9 + 1)(1 - 0.1) = 9 exactly: the 9th smallest of 9, not a 10th that does not exist.
    assert conformal_quantile(np.arange(9.0), 0.1) == 8.0
    with pytest.raises(ValueError, match=r"at least 9 calibration points.*got 8"):
        conformal_quantile(np.arange(8.0), 0.1)


def _classification_data(rng, n, classes=5):
    """An overconfident model: labels from softmax(z), Monte Carlo samples softmax(3 (z + noise_t))."""
    z = 1.5 * rng.normal(size=(n, classes))
    labels = (rng.uniform(size=(n, 1)) > np.cumsum(softmax(z, axis=-1), axis=-1)).sum(axis=-1)
    samples = softmax(3.0 * (z[None] + 0.3 * rng.normal(size=(6, n, classes))), axis=-1)
    return samples, labels


def _regression_data(rng, n):
    """Noise of std 0.2 + |x|; Monte Carlo samples whose spread grows with |x| too."""
    x = rng.uniform(-2, 2, size=n)
    y = np.sin(x) + (0.2 + np.abs(x)) * rng.normal(size=n)
    samples = np.sin(x)[None] + 0.1 * (0.2 + np.abs(x)) * rng.normal(size=(8, n))
    return samples, y


def _coverage(score, alpha, seed=0):
    """Per trial, the coverage of fresh test points by a conformal predictor fitted on fresh calibration points."""
    rng = np.random.default_rng(seed)
    coverage, sizes = [], []
    for _ in range(TRIALS):
        data = _classification_data if score in ("lac", "aps") else _regression_data
        calibration, test = data(rng, N_CALIBRATION), data(rng, N_TEST)
        conformal = SplitConformal(alpha, score).fit(*calibration)
        if score in ("lac", "aps"):
            sets = conformal.predict_sets(test[0])
            coverage.append(sets[np.arange(N_TEST), test[1]].mean())
            sizes.append(sets.sum(axis=1).mean())
        else:
            lower, upper = conformal.predict_interval(test[0])
            coverage.append(np.mean((lower <= test[1]) & (test[1] <= upper)))
            sizes.append(np.mean(upper - lower))
    return np.array(coverage), np.array(sizes)


@pytest.mark.parametrize("alpha", [0.1, 0.2])
@pytest.mark.parametrize("score", ["lac", "aps", "absolute", "normalized"])
def test_coverage_is_at_least_one_minus_alpha_and_at_most_that_plus_one_over_n_plus_one(score, alpha):
    coverage, _ = _coverage(score, alpha)
    # A trial's coverage is Beta-distributed around its mean (the calibration's rank, variance about
    # α(1 − α)/(n + 2)) plus the binomial noise of the test points: 3 standard errors of the mean of the trials.
    standard_error = math.sqrt(alpha * (1 - alpha) * (1 / (N_CALIBRATION + 2) + 1 / N_TEST) / TRIALS)
    assert coverage.mean() >= 1 - alpha - 3 * standard_error
    assert coverage.mean() <= 1 - alpha + 1 / (N_CALIBRATION + 1) + 3 * standard_error


def test_normalized_intervals_follow_the_monte_carlo_spread():
    rng = np.random.default_rng(7)
    samples, y = _regression_data(rng, 2000)
    conformal = SplitConformal(0.1, "normalized").fit(samples, y)
    lower, upper = conformal.predict_interval(samples)
    width = upper - lower
    np.testing.assert_allclose(width, 2 * conformal.quantile * samples.std(axis=0), rtol=1e-12)
    absolute = SplitConformal(0.1, "absolute").fit(samples, y)
    lower_a, upper_a = absolute.predict_interval(samples)
    np.testing.assert_allclose(upper_a - lower_a, 2 * absolute.quantile, rtol=1e-12)


def test_class_scores_by_hand():
    probs = np.array([[0.5, 0.2, 0.3], [0.1, 0.6, 0.3]])
    np.testing.assert_allclose(class_scores(probs, "lac"), 1 - probs)
    np.testing.assert_allclose(class_scores(probs, "aps"), [[0.5, 1.0, 0.8], [1.0, 0.6, 0.9]])


def _model(units, activation):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = kerasdrop.Dropout(0.3)(keras.layers.Dense(16, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(hidden))


def test_sets_and_intervals_of_mc_dropout_results():
    x = np.random.default_rng(8).normal(size=(60, 4)).astype("float32")
    classifier = kerasdrop.MCDropout(_model(3, "softmax"), samples=10, seed=0).predict(x, verbose=0)
    labels = classifier.mean.argmax(axis=-1)
    conformal = SplitConformal(0.2, "aps").fit(classifier, labels)
    assert conformal.n_calibration == 60
    sets = conformal.predict_sets(classifier)
    assert sets.shape == (60, 3) and sets.dtype == bool
    np.testing.assert_array_equal(sets, class_scores(classifier.mean.astype("float64"), "aps") <= conformal.quantile)
    binary = kerasdrop.MCDropout(_model(1, "sigmoid"), samples=10, seed=0).predict(x, verbose=0)
    binary_sets = SplitConformal(0.2, "lac").fit(binary, (binary.mean[:, 0] > 0.5).astype(int)).predict_sets(binary)
    assert binary_sets.shape == (60, 2)
    regression = kerasdrop.MCDropout(_model(2, None), samples=10, seed=0, output_type="regression").predict(
        x, verbose=0
    )
    conformal = SplitConformal(0.2, "normalized").fit(regression, regression.mean + 0.1, noise_variance=0.01)
    assert conformal.quantile.shape == (2,)  # one quantile per output
    lower, upper = conformal.predict_interval(regression, noise_variance=0.01)
    np.testing.assert_allclose(upper - regression.mean, regression.mean - lower, rtol=1e-5, atol=1e-6)
    gaussian = kerasdrop.MCDropout(_model(2, None), samples=10, seed=0, output_type="gaussian").predict(x, verbose=0)
    conformal = SplitConformal(0.2, "normalized").fit(gaussian, gaussian.mean[:, 0])
    lower, upper = conformal.predict_interval(gaussian)
    expected = conformal.quantile * np.sqrt(gaussian.predictive_variance().astype("float64"))
    np.testing.assert_allclose(upper - gaussian.mean, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SplitConformal(alpha=1.0), r"alpha"),
        (lambda: SplitConformal(alpha=0.0), r"alpha"),
        (lambda: SplitConformal(score="quantile"), r"score"),
        (lambda: SplitConformal().predict_sets(np.full((2, 3, 2), 0.5)), "not fitted"),
        (lambda: SplitConformal(0.5, "absolute").fit(np.zeros((2, 5)), np.zeros(5)).predict_sets(None), "intervals"),
        (lambda: SplitConformal(0.5, "lac").fit(np.full((2, 5, 2), 0.5), np.zeros(5)).predict_interval(None), "sets"),
        (lambda: SplitConformal(0.5, "lac").fit(np.full((2, 5, 2), 0.5), np.full(5, 2)), r"labels in \[0, 2\)"),
        (lambda: SplitConformal(0.5, "lac").fit(np.full((2, 5, 2), 0.7), np.zeros(5)), "sum to 1"),
        (lambda: SplitConformal(0.5, "normalized").fit(np.ones((3, 5)), np.zeros(5)), "std, which is 0"),
        (lambda: SplitConformal(0.5, "absolute").fit(np.ones((3, 5)), np.zeros(4)), r"shape \(5,\)"),
        (lambda: SplitConformal(0.5, "absolute").fit(np.ones((3, 5)), np.zeros(5), noise_variance=1.0), "only"),
        (lambda: SplitConformal(0.5, "normalized").fit(np.ones((3, 5)), np.zeros(5), noise_variance=-1.0), "> 0"),
        (lambda: SplitConformal(0.5, "absolute").fit(np.ones(5), np.zeros(5)), r"\(T, N\)"),
    ],
)
def test_bad_input_raises_naming_it(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_scores_that_do_not_fit_the_output_type_are_refused():
    x = np.ones((12, 4), "float32")
    classifier = kerasdrop.MCDropout(_model(3, "softmax"), samples=3).predict(x, verbose=0)
    with pytest.raises(ValueError, match=r"output_type='probabilities'.*'lac' or 'aps'"):
        SplitConformal(0.5, "absolute").fit(classifier, np.zeros(12))
    regression = kerasdrop.MCDropout(_model(1, None), samples=3, output_type="regression").predict(x, verbose=0)
    with pytest.raises(ValueError, match=r"output_type='regression'.*class probabilities"):
        SplitConformal(0.5, "lac").fit(regression, np.zeros(12, int))
    labels = kerasdrop.MCDropout(_model(3, "sigmoid"), samples=3).predict(x, verbose=0)
    with pytest.raises(ValueError, match="3 sigmoid units"):
        SplitConformal(0.5, "aps").fit(labels, np.zeros(12, int))
