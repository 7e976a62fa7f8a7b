"""kerasdrop.metrics' regression metrics and the Gaussian mixtures behind them, against closed forms, SciPy and
NumPy references, numerical integration and binomial bounds on seeded data."""

import math
import types

import keras
import numpy as np
import pytest
from scipy import integrate
from scipy.special import logsumexp, ndtr
from scipy.stats import norm
from sklearn.metrics import root_mean_squared_error

import kerasdrop
from kerasdrop import _gaussian_mixture as mixture
from kerasdrop import metrics
from kerasdrop.mc.outputs import OutputKind
from kerasdrop.mc.result import MCDropoutResult


def mixtures(samples, inputs, outputs=None, seed=0):
    """Seeded means ``(T, N[, d])`` and positive, unequal variances of the same shape."""
    rng = np.random.default_rng(seed)
    shape = (samples, inputs) if outputs is None else (samples, inputs, outputs)
    return rng.normal(size=shape), rng.uniform(0.05, 2.0, size=shape)


def draw_from_mixture(means, variances, seed):
    """One target per input and output drawn from its mixture: a component at random, then its Gaussian."""
    rng = np.random.default_rng(seed)
    component = rng.integers(0, means.shape[0], size=means.shape[1:])
    chosen = np.take_along_axis(means, component[None], axis=0)[0]
    spread = np.sqrt(np.take_along_axis(np.broadcast_to(variances, means.shape), component[None], axis=0)[0])
    return chosen + spread * rng.normal(size=chosen.shape)


def binomial_bound(probability, count):
    """Five standard deviations of the fraction of successes in ``count`` Bernoulli(probability) trials."""
    return 5.0 * math.sqrt(probability * (1.0 - probability) / count)


def regression_result(samples, kept=True):
    """An `MCDropoutResult` of a regression output, as `MCDropout.predict` makes it."""
    samples = np.asarray(samples, dtype="float32")
    return MCDropoutResult(
        samples.mean(0), samples.var(0), samples.shape[0], samples if kept else None, kind=OutputKind("regression", 1)
    )


def gaussian_result(means, variances):
    """What a result of output_type "gaussian" offers these metrics: its sampled means and variances."""
    return types.SimpleNamespace(output_type="gaussian", samples=means, sample_variances=variances)


# Log-likelihood


def reference_log_likelihood(samples, y, variances):
    """Per input, with a loop: log of the mean over samples of the joint Gaussian density of the outputs."""
    variances = np.broadcast_to(variances, samples.shape).reshape(samples.shape[0], samples.shape[1], -1)
    samples = samples.reshape(variances.shape)
    y = y.reshape(len(y), -1)
    per_input = []
    for n in range(samples.shape[1]):
        joint = [norm.logpdf(y[n], samples[t, n], np.sqrt(variances[t, n])).sum() for t in range(samples.shape[0])]
        per_input.append(logsumexp(joint) - math.log(samples.shape[0]))
    return np.array(per_input)


@pytest.mark.parametrize("outputs", [None, 3])
def test_log_likelihood_matches_a_scipy_loop(outputs):
    samples, variances = mixtures(7, 11, outputs)
    y = draw_from_mixture(samples, variances, seed=1)
    expected = reference_log_likelihood(samples, y, variances)
    result = gaussian_result(samples, variances)
    np.testing.assert_allclose(metrics.gaussian_log_likelihood(result, y, reduce="none"), expected, rtol=1e-12)
    assert metrics.gaussian_log_likelihood(result, y) == pytest.approx(expected.mean(), rel=1e-12)
    # A homoscedastic noise variance, a scalar or one per output.
    noise = 0.3 if outputs is None else np.array([0.1, 0.5, 2.0])
    np.testing.assert_allclose(
        metrics.gaussian_log_likelihood(samples, y, noise, reduce="none"),
        reference_log_likelihood(samples, y, noise),
        rtol=1e-12,
    )


def test_log_likelihood_of_one_sample_is_the_gaussian_log_density_even_far_away():
    y = np.array([0.0, 1.0, 1e4])
    mean, variance = np.array([[0.5, 1.0, -1e4]]), 0.25
    expected = -0.5 * np.log(2 * np.pi * variance) - (y - mean[0]) ** 2 / (2 * variance)
    np.testing.assert_allclose(metrics.gaussian_log_likelihood(mean, y, variance, reduce="none"), expected, rtol=1e-13)


def test_log_likelihood_of_several_outputs_is_the_joint_density_of_each_sample():
    """Two samples (0, 0) and (1, 1): at y = (0, 1) each sample is near in one output only, so the joint density is
    lower than the product of the two outputs' mixture densities."""
    samples, y = np.array([[[0.0, 0.0]], [[1.0, 1.0]]]), np.array([[0.0, 1.0]])
    density = norm.pdf(0.0) * norm.pdf(1.0)  # each sample, unit variances
    assert metrics.gaussian_log_likelihood(samples, y, 1.0) == pytest.approx(math.log(density), rel=1e-13)
    marginals = mixture.log_pdf(samples, 1.0, y).sum()
    assert marginals == pytest.approx(2 * math.log((norm.pdf(0.0) + norm.pdf(1.0)) / 2), rel=1e-13)
    assert not np.isclose(marginals, math.log(density), rtol=1e-3)


# CRPS


@pytest.mark.parametrize("z", [0.0, 0.3, -1.7, 4.0])
def test_crps_of_one_gaussian_is_its_closed_form(z):
    sigma, mu = 1.7, 0.4
    y = mu + z * sigma
    expected = sigma * (z * (2 * ndtr(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))
    assert metrics.crps([[mu]], [y], sigma**2) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def crps_by_integration(means, variances, y):
    """``∫ (F(x) − 1{x ≥ y})² dx`` of one mixture, split at y, with `scipy.integrate.quad`."""

    def F(x):
        return float(np.mean(ndtr((x - means) / np.sqrt(variances))))

    below = integrate.quad(lambda x: F(x) ** 2, -np.inf, y, epsabs=1e-13, epsrel=1e-12)[0]
    above = integrate.quad(lambda x: (1.0 - F(x)) ** 2, y, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
    return below + above


def test_crps_of_a_mixture_matches_numerical_integration():
    means, variances = mixtures(4, 5, seed=2)
    y = np.array([-3.0, -0.2, 0.0, 0.7, 2.5])
    values = metrics.crps(gaussian_result(means, variances), y, reduce="none")
    expected = [crps_by_integration(means[:, n], variances[:, n], y[n]) for n in range(5)]
    np.testing.assert_allclose(values, expected, rtol=1e-8)


def test_crps_without_noise_is_the_energy_form_of_the_samples():
    """For point samples (variance → 0) the CRPS is ``E|X − y| − ½ E|X − X'|`` over the samples."""
    rng = np.random.default_rng(3)
    samples, y = rng.normal(size=(300, 4, 2)), rng.normal(size=(4, 2))
    expected = np.abs(samples - y).mean(0) - 0.5 * np.abs(samples[:, None] - samples[None, :]).mean((0, 1))
    np.testing.assert_allclose(metrics.crps(samples, y, 1e-20, reduce="none"), expected, rtol=1e-9)
    assert metrics.crps(samples, y, 1e-20) == pytest.approx(expected.mean(), rel=1e-9)


def expected_absolute_value(mean, std):
    """``E|X|`` for ``X ~ N(mean, std²)``: ``m (2Φ(m/s) − 1) + 2 s φ(m/s)``."""
    return mean * (2 * ndtr(mean / std) - 1) + 2 * std * norm.pdf(mean / std)


def all_pair_sums(means, variances):
    """Per input, every ``Σ_t A(μ_t − μ_(t+s), σ_t² + σ_(t+s)²)`` for the shifts ``s = 0 .. T−1``: ``(T, N)``."""
    samples = means.shape[0]
    partner = (np.arange(samples)[None, :] + np.arange(samples)[:, None]) % samples  # (shift, t)
    return expected_absolute_value(means[None] - means[partner], np.sqrt(variances[None] + variances[partner])).sum(1)


def test_crps_pairs_are_every_shift_up_to_the_limit():
    """Up to the limit, the shifts 1 .. T//2, each standing for itself and T − s: every ordered pair i ≠ j once."""
    for samples in (2, 7, 10, mixture.EXACT_CRPS_MAX_SAMPLES):
        shifts, weights = mixture.crps_pair_shifts(samples)
        np.testing.assert_array_equal(shifts, np.arange(1, samples // 2 + 1))
        covered = np.zeros(samples)
        for shift, weight in zip(shifts, weights, strict=True):
            covered[shift] += weight / 2
            covered[samples - shift] += weight / 2
        np.testing.assert_array_equal(covered[1:], np.ones(samples - 1))


@pytest.mark.parametrize("samples, limit", [(300, 100), (mixture.EXACT_CRPS_MAX_SAMPLES + 1, None)])
def test_crps_above_the_limit_is_an_unbiased_estimate_within_its_standard_deviation(samples, limit, monkeypatch):
    """Above the limit `count` shifts are drawn without replacement from the T − 1 non-zero ones: the pair term is a
    sample mean from a finite population, whose variance the test computes from every shift's exact sum. Once with
    a lower limit (a small budget, a large variance), once at the library's limit."""
    if limit is not None:
        monkeypatch.setattr(mixture, "EXACT_CRPS_MAX_SAMPLES", limit)
        monkeypatch.setattr(mixture, "CRPS_PAIR_BUDGET", limit**2 // 2)
    rng = np.random.default_rng(4)
    inputs = 3 if limit else 1
    means, variances = rng.normal(size=(samples, inputs)), rng.uniform(0.05, 0.5, size=(samples, inputs))
    y = rng.normal(size=inputs)
    shift_sums = all_pair_sums(means, variances)  # (shift, input)
    first_term = expected_absolute_value(y - means, np.sqrt(variances)).mean(axis=0)
    exact = first_term - 0.5 * shift_sums.sum(axis=0) / samples**2
    value = mixture.crps(means, variances, y)
    shifts, weights = mixture.crps_pair_shifts(samples)
    count = mixture.CRPS_PAIR_BUDGET // samples
    assert len(set(shifts.tolist())) == count < samples - 1 and shifts.min() >= 1 and shifts.max() <= samples - 1
    # Unbiased: each of the T − 1 shifts is drawn with probability count / (T − 1) and weighs (T − 1) / count.
    np.testing.assert_allclose(weights, (samples - 1) / count, rtol=1e-15)
    population = shift_sums[1:] * (samples - 1) / samples**2  # each shift's estimate of the off-diagonal term
    variance = population.var(axis=0) / count * (samples - 1 - count) / (samples - 2)
    sd = 0.5 * np.sqrt(variance)
    assert np.all(sd > 0)
    assert np.all(np.abs(value - exact) < 5 * sd), (value - exact) / sd
    np.testing.assert_array_equal(mixture.crps(means, variances, y), value)  # the same shifts at every call


def test_crps_is_lower_for_a_sharper_correct_forecast_and_penalises_overconfidence():
    """A proper score: on data drawn from N(0, 1), the forecast N(0, 1) scores better than N(0, 0.1²) or N(0, 3²)."""
    count = 4000
    y = np.random.default_rng(5).normal(size=count)
    scores = {scale: metrics.crps(np.zeros((1, count)), y, scale**2, reduce="none") for scale in (0.1, 1.0, 3.0)}
    # E CRPS(N(0, 1), Y) for Y ~ N(0, 1) is E|X − Y| − ½ E|X − X'| = 2/√π − 1/√π.
    assert abs(scores[1.0].mean() - 1 / math.sqrt(math.pi)) < 5 * scores[1.0].std() / math.sqrt(count)
    assert scores[1.0].mean() < scores[0.1].mean() and scores[1.0].mean() < scores[3.0].mean()


# Intervals, coverage and calibration


@pytest.mark.parametrize("level", [0.5, 0.9, 0.99, 1 - 1e-9, 1 - 1e-13])
def test_interval_ends_are_the_mixture_quantiles(level):
    means, variances = mixtures(9, 6, 2, seed=6)
    means[:, 0] *= 1e3  # components far apart
    lower, upper = metrics.predictive_interval(gaussian_result(means, variances), level)
    assert lower.shape == upper.shape == (6, 2)
    np.testing.assert_allclose(mixture.cdf(means, variances, lower), (1 - level) / 2, rtol=0, atol=1e-8)
    np.testing.assert_allclose(mixture.cdf(means, variances, upper), (1 + level) / 2, rtol=0, atol=1e-8)
    # relative precision in both tails: F(lower) and 1 − F(upper) (the survival function) are (1 − level) / 2
    survival = np.mean(ndtr((means - upper) / np.sqrt(variances)), axis=0)
    np.testing.assert_allclose(survival, (1 - level) / 2, rtol=1e-6)
    np.testing.assert_allclose(mixture.cdf(means, variances, lower), (1 - level) / 2, rtol=1e-6)


def test_interval_of_one_gaussian_is_mean_plus_minus_its_quantile():
    lower, upper = metrics.predictive_interval(np.array([[1.0, -2.0]]), 0.95, noise_variance=4.0)
    half = 2.0 * norm.ppf(0.975)
    np.testing.assert_allclose(lower, [1.0 - half, -2.0 - half], rtol=1e-12)
    np.testing.assert_allclose(upper, [1.0 + half, -2.0 + half], rtol=1e-12)


def test_coverage_of_correct_intervals_on_seeded_data_is_the_level():
    count, level = 4000, 0.9
    means, variances = mixtures(20, count, seed=7)
    y = draw_from_mixture(means, variances, seed=8)
    lower, upper = metrics.predictive_interval(gaussian_result(means, variances), level)
    assert abs(metrics.interval_coverage(y, lower, upper) - level) < binomial_bound(level, count)
    assert metrics.mean_interval_width(lower, upper) == pytest.approx(np.mean(upper - lower), rel=1e-15)


def test_calibration_curve_of_a_correct_model_follows_the_diagonal_and_an_overconfident_one_falls_below():
    count, noise = 3000, 0.5
    rng = np.random.default_rng(9)
    samples = rng.normal(size=(30, count, 2))
    y = draw_from_mixture(samples, noise, seed=10)
    curve = metrics.regression_calibration_curve(samples, y, noise)
    np.testing.assert_allclose(curve.expected, np.arange(1, 20) / 20, rtol=1e-12)
    size = y.size
    bounds = [binomial_bound(level, size) for level in curve.expected]
    assert np.all(np.abs(curve.observed - curve.expected) < bounds), curve.observed - curve.expected
    # With a quarter of the noise variance, far fewer targets fall inside each interval.
    narrow = metrics.regression_calibration_curve(samples, y, noise / 4, levels=[0.5, 0.9])
    assert np.all(narrow.observed < narrow.expected - np.array([binomial_bound(0.5, size), binomial_bound(0.9, size)]))


def test_calibration_curve_counts_the_pit_values_inside_each_central_interval():
    """By hand: one Gaussian N(0, 1) per input; targets at known PIT values."""
    pit = np.array([0.5, 0.6, 0.2, 0.97, 0.01])
    curve = metrics.regression_calibration_curve(np.zeros((1, 5)), norm.ppf(pit), 1.0, levels=[0.1, 0.25, 0.7, 0.95])
    # |2·PIT − 1| = 0, 0.2, 0.6, 0.94, 0.98
    np.testing.assert_allclose(curve.observed, [1 / 5, 2 / 5, 3 / 5, 4 / 5], rtol=1e-12)


def test_interval_coverage_and_width_by_hand():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    lower, upper = np.array([0.0, 1.5, 1.0, 3.5]), np.array([1.0, 2.0, 2.0, 4.0])
    assert metrics.interval_coverage(y, lower, upper) == 0.5  # ends included: y = 0 and y = 2 are inside
    assert metrics.mean_interval_width(lower, upper) == 0.75


def test_rmse_matches_scikit_learn():
    rng = np.random.default_rng(11)
    y_true, y_pred = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    assert metrics.rmse(y_true[:, 0], y_pred[:, 0]) == pytest.approx(
        root_mean_squared_error(y_true[:, 0], y_pred[:, 0]), rel=1e-14
    )
    assert metrics.rmse(y_true, y_pred) == pytest.approx(root_mean_squared_error(y_true.ravel(), y_pred.ravel()))


# Blocks: the same numbers whatever the block size.


def test_results_do_not_depend_on_the_block_size(monkeypatch):
    means, variances = mixtures(13, 9, 2, seed=12)
    y = draw_from_mixture(means, variances, seed=13)

    def everything():
        return [
            mixture.log_pdf(means, variances, y),
            mixture.log_pdf(means, variances, y, event_ndim=1),
            mixture.cdf(means, variances, y),
            mixture.crps(means, variances, y),
            *mixture.central_interval(means, variances, 0.8),
        ]

    whole = everything()
    monkeypatch.setattr(mixture, "BLOCK_SIZE", 20)  # one input (26 numbers) at a time
    monkeypatch.setattr(mixture, "PAIR_BLOCK_SIZE", 20)  # one column and one shift at a time
    for blocked, reference in zip(everything(), whole, strict=True):
        np.testing.assert_allclose(blocked, reference, rtol=1e-13)


# Result objects


def test_a_regression_result_scores_as_its_kept_samples():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(16, activation="relu"), kerasdrop.Dropout(0.3), keras.layers.Dense(2)]
    )
    x = np.random.default_rng(14).normal(size=(20, 3)).astype("float32")
    result = kerasdrop.MCDropout(model, samples=8, seed=0).predict(x, verbose=0, keep_samples=True)
    assert result.output_type == "regression" and result.samples.shape == (8, 20, 2)
    y = result.mean + 0.1
    for name in ("gaussian_log_likelihood", "crps"):
        function = getattr(metrics, name)
        assert function(result, y, 0.2) == function(result.samples, y, 0.2)
    np.testing.assert_array_equal(
        metrics.regression_calibration_curve(result, y, 0.2).observed,
        metrics.regression_calibration_curve(result.samples, y, 0.2).observed,
    )
    lower, upper = metrics.predictive_interval(result, 0.9, noise_variance=0.2)
    np.testing.assert_array_equal(lower, metrics.predictive_interval(result.samples, 0.9, 0.2)[0])
    assert np.all(lower < result.mean) and np.all(result.mean < upper)


def test_targets_of_one_output_may_leave_out_its_axis_of_one():
    samples = np.random.default_rng(18).normal(size=(6, 9, 1))
    y = samples[0, :, 0] + 0.3
    for name in ("gaussian_log_likelihood", "crps"):
        function = getattr(metrics, name)
        np.testing.assert_array_equal(
            function(samples, y, 0.5, reduce="none"), function(samples, y[:, None], 0.5, reduce="none")
        )
    with pytest.raises(ValueError, match=r"an array of shape \(9, 1\).*y of shape \(9, 2\)"):
        metrics.crps(samples, np.stack([y, y], axis=1), 0.5)


def test_a_gaussian_result_uses_its_sampled_variances():
    means, variances = mixtures(5, 8, seed=15)
    y = draw_from_mixture(means, variances, seed=16)
    components = mixture.mixture_components(gaussian_result(means, variances))
    np.testing.assert_array_equal(components[0], means)
    np.testing.assert_array_equal(components[1], variances)
    np.testing.assert_allclose(
        metrics.crps(gaussian_result(means, variances), y), mixture.crps(means, variances, y).mean(), rtol=1e-12
    )


def test_result_errors_name_what_is_missing():
    samples = np.random.default_rng(17).normal(size=(4, 6))
    with pytest.raises(ValueError, match=r"`noise_variance`.*`result.variance` alone is only the epistemic part"):
        metrics.gaussian_log_likelihood(regression_result(samples), samples[0])
    with pytest.raises(ValueError, match=r"`noise_variance`.*Received: noise_variance=None"):
        metrics.crps(samples, samples[0])
    with pytest.raises(ValueError, match=r"without `samples`.*keep_samples=True"):
        metrics.crps(regression_result(samples, kept=False), samples[0], 1.0)
    gaussian = gaussian_result(samples, np.ones_like(samples))
    with pytest.raises(ValueError, match=r"`noise_variance`.*already models the observation noise.*=0.5"):
        metrics.crps(gaussian, samples[0], noise_variance=0.5)
    with pytest.raises(ValueError, match=r"without `sample_variances`.*keep_samples=True"):
        metrics.crps(gaussian_result(samples, None), samples[0])
    with pytest.raises(ValueError, match=r"`result.sample_variances`.*> 0.*containing 0.0"):
        metrics.crps(gaussian_result(samples, np.where(samples > 0, 1.0, 0.0)), samples[0])
    probabilities = MCDropoutResult(
        np.full((6, 2), 0.5), np.zeros((6, 2)), 4, np.full((4, 6, 2), 0.5), kind=OutputKind("probabilities", 2)
    )
    with pytest.raises(ValueError, match=r"`result_or_samples`.*output_type='probabilities'"):
        metrics.regression_calibration_curve(probabilities, np.zeros((6, 2)), 1.0)


# Bad input


GOOD_SAMPLES, GOOD_Y = np.zeros((3, 4)), np.zeros(4)

BAD_CALLS = {
    "samples of one axis": (lambda: metrics.crps(np.zeros(4), GOOD_Y, 1.0), r"`result_or_samples`.*shape \(4,\)"),
    "samples of four axes": (
        lambda: metrics.crps(np.zeros((3, 4, 1, 1)), np.zeros((4, 1, 1)), 1.0),
        r"`result_or_samples`.*\(T, N\) or \(T, N, d\).*\(3, 4, 1, 1\)",
    ),
    "empty samples": (lambda: metrics.crps(np.zeros((0, 4)), GOOD_Y, 1.0), r"`result_or_samples`.*non-empty"),
    "NaN sample": (
        lambda: metrics.gaussian_log_likelihood([[0.0, np.nan]], [0.0, 0.0], 1.0),
        r"`result_or_samples`.*1 NaN or infinite values, such as nan",
    ),
    "y of another shape": (
        lambda: metrics.crps(GOOD_SAMPLES, np.zeros(5), 1.0),
        r"`y`.*shape \(4,\).*Received: y of shape \(5,\)",
    ),
    "y (N, 1) for samples (T, N)": (
        lambda: metrics.gaussian_log_likelihood(GOOD_SAMPLES, np.zeros((4, 1)), 1.0),
        r"`y`.*\(4,\).*Received: y of shape \(4, 1\)",
    ),
    "NaN target": (
        lambda: metrics.regression_calibration_curve(GOOD_SAMPLES, [0.0, np.nan, 0.0, 0.0], 1.0),
        r"`y`.*NaN or infinite values, such as nan",
    ),
    "zero noise": (lambda: metrics.crps(GOOD_SAMPLES, GOOD_Y, 0.0), r"`noise_variance`.*> 0.*noise_variance=0.0"),
    "negative noise": (lambda: metrics.crps(GOOD_SAMPLES, GOOD_Y, -1), r"`noise_variance`.*noise_variance=-1.0"),
    "NaN noise": (lambda: metrics.crps(GOOD_SAMPLES, GOOD_Y, np.nan), r"`noise_variance`.*noise_variance=nan"),
    "infinite noise": (lambda: metrics.crps(GOOD_SAMPLES, GOOD_Y, np.inf), r"`noise_variance`.*noise_variance=inf"),
    "a zero in the noise array": (
        lambda: metrics.crps(np.zeros((3, 4, 2)), np.zeros((4, 2)), [1.0, 0.0]),
        r"`noise_variance`.*containing 0.0",
    ),
    "noise of another shape": (
        lambda: metrics.crps(GOOD_SAMPLES, GOOD_Y, np.ones(3)),
        r"`noise_variance`.*broadcastable to \(3, 4\).*shape \(3,\)",
    ),
    "unknown reduce": (
        lambda: metrics.crps(GOOD_SAMPLES, GOOD_Y, 1.0, reduce="sum"),
        r"`reduce`.*'mean', 'none'.*reduce='sum'",
    ),
    "level 0": (lambda: metrics.predictive_interval(GOOD_SAMPLES, 0.0, 1.0), r"`level`.*\(0, 1\).*level=0.0"),
    "level 1": (lambda: metrics.predictive_interval(GOOD_SAMPLES, 1, 1.0), r"`level`.*level=1"),
    "level NaN": (lambda: metrics.predictive_interval(GOOD_SAMPLES, np.nan, 1.0), r"`level`.*level=nan"),
    "a level above 1": (
        lambda: metrics.regression_calibration_curve(GOOD_SAMPLES, GOOD_Y, 1.0, levels=[0.5, 1.5]),
        r"`levels`.*\(0, 1\).*levels=1.5",
    ),
    "levels of two axes": (
        lambda: metrics.regression_calibration_curve(GOOD_SAMPLES, GOOD_Y, 1.0, levels=[[0.5]]),
        r"`levels`.*1-D.*\(1, 1\)",
    ),
    "lower above upper": (
        lambda: metrics.interval_coverage([0.0, 0.0], [0.0, 1.0], [1.0, 0.5]),
        r"`upper`.*upper >= lower.*upper\[1\]=0.5 below lower=1.0",
    ),
    "bounds of other shapes": (
        lambda: metrics.mean_interval_width([0.0, 0.0], [1.0, 1.0, 1.0]),
        r"`upper`.*\(2,\).*shape \(3,\)",
    ),
    "y of another shape than the bounds": (
        lambda: metrics.interval_coverage([0.0], [0.0, 0.0], [1.0, 1.0]),
        r"`y`.*\(2,\).*shape \(1,\)",
    ),
    "rmse of other shapes": (lambda: metrics.rmse([0.0, 1.0], [[0.0, 1.0]]), r"`y_pred`.*\(2,\).*shape \(1, 2\)"),
    "rmse of three axes": (lambda: metrics.rmse(np.zeros((2, 2, 2)), np.zeros((2, 2, 2))), r"`y_true`.*\(N, d\)"),
    "non-positive mixture variances": (
        lambda: mixture.crps(GOOD_SAMPLES, -1.0, GOOD_Y),
        r"`variances`.*> 0.*variances=-1.0",
    ),
    "event axes beyond the outputs": (
        lambda: mixture.log_pdf(GOOD_SAMPLES, 1.0, GOOD_Y, event_ndim=1),
        r"`event_ndim`.*from 0 to 0.*event_ndim=1",
    ),
}


@pytest.mark.parametrize("call, message", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_input_raises_naming_the_argument_and_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_non_numeric_input_is_a_type_error():
    with pytest.raises(TypeError, match="`result_or_samples`. Expected a numeric array"):
        metrics.crps([["a", "b"]], [0.0, 0.0], 1.0)
    with pytest.raises(TypeError, match="`noise_variance`. Expected a numeric array"):
        metrics.crps(GOOD_SAMPLES, GOOD_Y, "1")


def test_the_metrics_package_exports_both_families():
    from kerasdrop.metrics import check_probabilities, entropy_of  # noqa: F401  (what kerasdrop.acquisition imports)

    for name in metrics.__all__:
        assert callable(getattr(metrics, name)), name
    new = {"rmse", "gaussian_log_likelihood", "crps", "interval_coverage", "mean_interval_width"}
    new |= {"predictive_interval", "regression_calibration_curve", "RegressionCalibrationCurve"}
    assert new <= set(metrics.__all__)
    assert {"entropy", "expected_calibration_error", "classification_scores", "CalibrationCurve"} <= set(
        metrics.__all__
    )
