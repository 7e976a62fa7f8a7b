"""StructuredBayesianPruning: closed forms against SciPy, sampling, test-time pruning, contract checks."""

import math

import keras
import numpy as np
import pytest
from keras import ops
from scipy import special, stats

import kerasdrop
from kerasdrop.layers import bayesian_pruning as sbp
from tests import backend, utils

A, B = -20.0, 0.0
# (mu, log_sigma) pairs inside the layer's ranges: near-deterministic, wide, near each bound, half-truncated.
MODERATE = [(-0.3, -4.0), (0.0, -5.0), (-3.0, 0.0), (-10.0, 2.0), (-1.0, -1.0), (-19.0, -1.0), (-5.0, 3.0)]
# The corners of the parameter box and a few points near them, where naive formulas overflow or cancel.
EXTREME_MU = np.array([-20, -20, 0, 0, -10, -10, -1e-3, -19.999, -20, 0], "float32")
EXTREME_LOG_SIGMA = np.array([-20, 5, -20, 5, -20, 5, -20, -20, -8, -8], "float32")


def truncated(mu, log_sigma):
    """SciPy's truncated normal of log θ: an implementation independent of the one under test."""
    sigma = math.exp(log_sigma)
    return stats.truncnorm((A - mu) / sigma, (B - mu) / sigma, loc=mu, scale=sigma)


def integrated_moments(mu, log_sigma):
    """E[θ], E[θ²] by numerical integration over the truncated normal (for sigma not much below 0.01)."""
    dist = truncated(mu, log_sigma)
    return dist.expect(np.exp), dist.expect(lambda x: np.exp(2.0 * x))


def reference_moments(mu, log_sigma):
    """E[θ^k] = exp(k μ + k² σ² / 2) (Φ(β - kσ) - Φ(α - kσ)) / Z for k = 1, 2, in float64 with SciPy's log_ndtr."""
    sigma = math.exp(log_sigma)
    alpha, beta = (A - mu) / sigma, (B - mu) / sigma
    log_z = reference_log_interval(alpha, beta)
    return tuple(
        math.exp(k * mu + 0.5 * (k * sigma) ** 2 + reference_log_interval(alpha - k * sigma, beta - k * sigma) - log_z)
        for k in (1, 2)
    )


def mean_tolerance(log_sigma):
    """Relative error of the float32 E[θ]: log E[θ] sums terms of size σ², each exact to ~1e-7 relative."""
    return 1e-5 + 2e-7 * np.exp(2.0 * np.asarray(log_sigma))


def snr_tolerance(snr):
    """Relative error of the float32 SNR: Var/E² ≈ 1/SNR² comes out of a difference of logs that is exact to ~1e-7."""
    return 1e-4 + 1e-7 * snr**2


def reference_log_interval(low, high):
    """log(Φ(high) - Φ(low)) in float64 from SciPy's log_ndtr, in the tail where it is accurate."""
    low, high = np.where(low + high > 0, -high, low), np.where(low + high > 0, -low, high)
    return special.log_ndtr(high) + np.log1p(-np.exp(special.log_ndtr(low) - special.log_ndtr(high)))


def numpy(x):
    return utils.to_numpy(x).astype("float64")


# ---------------------------------------------------------------- closed forms


def test_erfcx_matches_scipy():
    x = np.concatenate([np.linspace(0, 6, 241), [10.0, 100.0, 1e4, 1e8, 1e10]]).astype("float32")
    np.testing.assert_allclose(numpy(sbp.erfcx(x)), special.erfcx(x.astype("float64")), rtol=2e-5)


def test_normal_cdf_is_accurate_in_the_lower_tail():
    x = np.array([-12.0, -9.0, -6.0, -2.0, 0.0, 1.5, 7.0], "float32")
    np.testing.assert_allclose(numpy(sbp.normal_cdf(x)), special.ndtr(x.astype("float64")), rtol=2e-5)


@pytest.mark.parametrize(
    ("low", "high"),
    [(-1.0, 1.0), (-0.1, 0.2), (-5.0, 0.3), (-40.0, -30.0), (-1e6, -3.0), (2.0, 9.0), (30.0, 1e4), (-1e9, 1e9)],
)
def test_log_normal_interval_matches_scipy(low, high):
    result = float(numpy(sbp.log_normal_interval(np.float32(low), np.float32(high))))
    expected = float(reference_log_interval(np.float64(low), np.float64(high)))
    assert result == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(("mu", "log_sigma"), MODERATE)
def test_kl_matches_closed_form_entropy(mu, log_sigma):
    """KL(q || log-uniform on [a, b]) = log(b - a) - H(q), with SciPy's entropy of the truncated normal."""
    expected = math.log(B - A) - float(truncated(mu, log_sigma).entropy())
    result = float(numpy(sbp.truncated_log_normal_kl(np.float32(mu), np.float32(log_sigma))))
    assert result == pytest.approx(expected, rel=1e-5, abs=2e-6)


@pytest.mark.parametrize(("mu", "log_sigma"), MODERATE)
def test_mean_and_snr_match_numerical_integration(mu, log_sigma):
    first, second = integrated_moments(mu, log_sigma)
    expected_snr = first / math.sqrt(second - first**2)
    mean, snr = (float(numpy(t)) for t in sbp.truncated_log_normal_mean_and_snr(np.float32(mu), np.float32(log_sigma)))
    assert mean == pytest.approx(first, rel=mean_tolerance(log_sigma))
    assert snr == pytest.approx(expected_snr, rel=snr_tolerance(expected_snr))
    # The float64 closed form used as reference elsewhere agrees with the integral.
    assert reference_moments(mu, log_sigma) == pytest.approx((first, second), rel=1e-7)


def test_kl_limits():
    """Near-deterministic posteriors cost about -log σ; a posterior equal to the prior (σ → ∞) costs nothing."""
    sharp = numpy(sbp.truncated_log_normal_kl(np.float32(-10.0), np.float32(-20.0)))
    assert sharp == pytest.approx(20.0 + math.log(20.0) - 0.5 * math.log(2 * math.pi * math.e), rel=1e-6)
    flat = numpy(sbp.truncated_log_normal_kl(np.float32(-10.0), np.float32(5.0)))
    assert 0.0 <= flat < 1e-5


def test_extreme_parameters_stay_finite_with_finite_gradients():
    mu, log_sigma = keras.Variable(EXTREME_MU), keras.Variable(EXTREME_LOG_SIGMA)

    def outputs():
        kl = sbp.truncated_log_normal_kl(mu, log_sigma)
        mean, snr = sbp.truncated_log_normal_mean_and_snr(mu, log_sigma)
        theta = sbp.sample_truncated_log_normal(mu, log_sigma, (200, len(EXTREME_MU)), seed=1)
        return kl, mean, snr, theta

    def total():
        kl, mean, _, theta = outputs()
        return ops.sum(kl) + ops.sum(mean) + ops.sum(theta)

    kl, mean, snr, theta = (numpy(value) for value in outputs())
    for value in (kl, mean, snr, theta, *backend.gradients(total, [mu, log_sigma])):
        assert np.all(np.isfinite(utils.to_numpy(value)))
    assert np.all(kl >= -1e-6)
    assert np.all((mean > 0) & (mean <= 1))
    assert np.all((theta >= math.exp(A) * 0.999) & (theta <= 1.0))


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize(("mu", "log_sigma"), [(-1.0, -1.0), (-3.0, 0.0), (-10.0, 2.0)])
def test_samples_follow_the_truncated_log_normal(mu, log_sigma):
    n = 40_000
    log_theta = np.log(numpy(sbp.sample_truncated_log_normal(np.float32(mu), np.float32(log_sigma), (n,), seed=2)))
    dist = truncated(mu, log_sigma)
    assert log_theta.min() >= A and log_theta.max() <= B
    utils.assert_mean_close(log_theta, dist.mean(), dist.std())
    utils.assert_variance_close(log_theta, dist.var(), dist.expect(lambda x: (x - dist.mean()) ** 4))
    # θ itself: E[θ] from the closed form, standard deviation E[θ] / SNR.
    mean, snr = (float(numpy(t)) for t in sbp.truncated_log_normal_mean_and_snr(np.float32(mu), np.float32(log_sigma)))
    utils.assert_mean_close(np.exp(log_theta), mean, mean / snr)
    # Kolmogorov-Smirnov against SciPy's CDF: the 5-sigma-like critical value at n draws is about 1.95 / sqrt(n).
    assert stats.kstest(log_theta, dist.cdf).statistic < 1.95 / math.sqrt(n)


def sbp_layer(mu, log_sigma, **kwargs):
    layer = kerasdrop.StructuredBayesianPruning(**kwargs)
    layer.build((None, len(mu)))
    layer.set_weights([np.asarray(mu, "float32"), np.asarray(log_sigma, "float32")])
    return layer


def test_training_multiplies_each_unit_by_its_own_noise():
    mu, log_sigma = [-0.2, -2.0, -8.0], [-3.0, -1.0, 1.0]
    layer = sbp_layer(mu, log_sigma, seed=3)
    x = np.full((20_000, 3), 2.0, "float32")
    theta = utils.train_call(layer, x) / 2.0
    for unit in range(3):
        mean, snr = (
            float(numpy(t))
            for t in sbp.truncated_log_normal_mean_and_snr(np.float32(mu[unit]), np.float32(log_sigma[unit]))
        )
        utils.assert_mean_close(theta[:, unit], mean, mean / snr)
    assert len(np.unique(theta[:, 0])) > 19_000  # a new draw for every sample


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_noise_is_shared_over_the_positions_of_a_feature_map(data_format):
    shape = (6, 4, 5, 3) if data_format == "channels_last" else (6, 3, 4, 5)
    layer = kerasdrop.StructuredBayesianPruning(data_format=data_format, seed=4)
    theta = utils.train_call(layer, np.ones(shape, "float32"))
    theta = np.moveaxis(theta, -1 if data_format == "channels_last" else 1, 1).reshape(6, 3, -1)
    np.testing.assert_array_equal(theta, np.broadcast_to(theta[:, :, :1], theta.shape))
    assert len(np.unique(theta[:, :, 0])) == 18  # every (sample, channel) has its own draw
    assert [tuple(w.shape) for w in layer.weights] == [(3,), (3,), ()]


# ---------------------------------------------------------------- test time


def test_test_time_multiplies_by_mean_and_zeroes_low_snr_units():
    mu = [-0.2, -2.0, -10.0, -0.5, -3.0]
    log_sigma = [-4.0, -1.0, 3.0, -6.0, 0.0]
    layer = sbp_layer(mu, log_sigma, threshold=1.0)
    first_second = [reference_moments(m, s) for m, s in zip(mu, log_sigma, strict=True)]
    means = np.array([first for first, _ in first_second])
    snrs = np.array([first / math.sqrt(second - first**2) for first, second in first_second])
    keep = snrs >= 1.0
    assert keep.tolist() == [True, True, False, True, False]  # units 2 and 4 carry mostly noise
    x = np.random.default_rng(0).normal(size=(7, 5)).astype("float32")
    y = utils.to_numpy(layer(x))
    tolerance = mean_tolerance(max(log_sigma))
    np.testing.assert_allclose(y, x * np.where(keep, means, 0.0), rtol=tolerance)
    assert np.all(y[:, ~keep] == 0.0)
    np.testing.assert_array_equal(utils.to_numpy(layer.unit_mask()), keep)
    np.testing.assert_allclose(numpy(layer.snr()), snrs, rtol=snr_tolerance(snrs.max()))
    np.testing.assert_allclose(numpy(layer.expected_multiplier()), means, rtol=tolerance)
    np.testing.assert_allclose(numpy(layer.test_multiplier()), np.where(keep, means, 0.0), rtol=tolerance)
    assert layer.sparsity() == pytest.approx(0.4)
    # A higher threshold switches off more units.
    assert sbp_layer(mu, log_sigma, threshold=5.0).sparsity() == pytest.approx(0.6)


def test_initial_layer_is_close_to_identity_and_keeps_every_unit():
    layer = kerasdrop.StructuredBayesianPruning()
    x = np.ones((2, 10), "float32")
    y = utils.to_numpy(layer(x))
    np.testing.assert_allclose(y, 0.99464651 * x, rtol=1e-6)  # E[θ] of N(0, e^-10) truncated above at 0
    assert layer.sparsity() == 0.0


def test_extreme_weights_give_finite_outputs_in_train_and_test():
    layer = sbp_layer(EXTREME_MU, EXTREME_LOG_SIGMA, seed=1)
    x = np.ones((16, len(EXTREME_MU)), "float32")
    for output in (layer(x, training=True), layer(x)):
        assert np.all(np.isfinite(utils.to_numpy(output)))


# ---------------------------------------------------------------- KL loss and gradients


def test_kl_is_added_to_the_losses():
    mu, log_sigma = [-1.0, -3.0, -10.0], [-1.0, 0.0, 2.0]
    expected = sum(math.log(B - A) - truncated(m, s).entropy() for m, s in zip(mu, log_sigma, strict=True))
    layer = sbp_layer(mu, log_sigma, kl_weight=0.25)
    layer(np.ones((2, 3), "float32"), training=True)
    assert len(layer.losses) == 1
    assert float(layer.losses[0]) == pytest.approx(0.25 * expected, rel=1e-5)
    assert float(layer.kl_divergence()) == pytest.approx(expected, rel=1e-5)
    silent = sbp_layer(mu, log_sigma, kl_weight=0.0)
    silent(np.ones((2, 3), "float32"), training=True)
    assert silent.losses == []


def test_kl_gradient_matches_finite_differences():
    mu, log_sigma = np.array([-1.0, -3.0, -10.0]), np.array([-1.0, 0.5, 2.0])
    layer = sbp_layer(mu, log_sigma)
    grad_mu, grad_log_sigma = (numpy(g) for g in backend.gradients(layer.kl_divergence, [layer.mu, layer.log_sigma]))

    def kl_ref(m, s):
        return math.log(B - A) - truncated(m, s).entropy()

    h = 1e-4
    for unit in range(3):
        m, s = mu[unit], log_sigma[unit]
        assert grad_mu[unit] == pytest.approx((kl_ref(m + h, s) - kl_ref(m - h, s)) / (2 * h), rel=1e-3, abs=1e-4)
        assert grad_log_sigma[unit] == pytest.approx(
            (kl_ref(m, s + h) - kl_ref(m, s - h)) / (2 * h), rel=1e-3, abs=1e-4
        )


def test_sample_gradient_matches_finite_differences_with_fixed_noise():
    """With the same seed the uniform draws are the same, so the sample is a smooth function of mu and log sigma."""
    mu, log_sigma = np.array([-1.0, -3.0]), np.array([-1.0, 0.0])
    x = np.random.default_rng(1).uniform(0.5, 1.5, size=(64, 2)).astype("float32")
    layer = sbp_layer(mu, log_sigma, seed=7)
    gradients = [
        numpy(g) for g in backend.gradients(lambda: ops.sum(layer(x, training=True)), [layer.mu, layer.log_sigma])
    ]
    h = 1e-2
    for index, gradient in enumerate(gradients):
        for unit in range(2):
            values = []
            for sign in (1, -1):
                params = [mu.copy(), log_sigma.copy()]
                params[index][unit] += sign * h
                values.append(float(np.sum(utils.train_call(sbp_layer(*params, seed=7), x), dtype="float64")))
            assert gradient[unit] == pytest.approx((values[0] - values[1]) / (2 * h), rel=2e-2)


# ---------------------------------------------------------------- test time, mc, saving
# New noise at each call and each fit step, and seeds: tests/layers/test_contract.py.


def factory(**kwargs):
    return kerasdrop.StructuredBayesianPruning(**kwargs)


X = np.random.default_rng(5).uniform(0.5, 1.5, size=(8, 16)).astype("float32")


@pytest.mark.slow
def test_mc_stays_stochastic_through_predict_reload_and_export(tmp_path):
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8), factory(mc=True), keras.layers.Dense(3)])
    utils.assert_mc_stays_stochastic(model, X, tmp_path)


def test_test_time_is_deterministic_and_mc_is_not():
    layer = factory(seed=1)
    np.testing.assert_array_equal(utils.to_numpy(layer(X)), utils.to_numpy(layer(X)))
    layer.mc = True
    assert not np.array_equal(utils.to_numpy(layer(X)), utils.to_numpy(layer(X)))


def test_config_round_trip():
    utils.assert_config_round_trip(
        factory(kl_weight=0.01, threshold=2.0, data_format="channels_first", seed=3, mc=True)
    )


@pytest.mark.slow
def test_keras_file_round_trip_keeps_weights_and_outputs(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(5, 3, activation="relu"),
            factory(kl_weight=1e-3, threshold=1.5, seed=2, name="sbp_conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(4),
            factory(name="sbp_dense"),
        ]
    )
    model.get_layer("sbp_conv").set_weights([np.linspace(-6, 0, 5), np.linspace(-3, 2, 5)])
    reloaded = utils.save_and_load(model, tmp_path)
    for name in ("sbp_conv", "sbp_dense"):
        layer = reloaded.get_layer(name)
        assert type(layer) is kerasdrop.StructuredBayesianPruning
        assert [w.path.split("/")[-1] for w in layer.weights] == ["mu", "log_sigma", "kl_factor"]
        for ours, theirs in zip(layer.get_weights(), model.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(ours, theirs)
    x = np.random.default_rng(0).normal(size=(3, 6, 6, 2)).astype("float32")
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert reloaded.get_layer("sbp_conv").sparsity() == model.get_layer("sbp_conv").sparsity() > 0


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
def test_dtype_policies(policy):
    layer = kerasdrop.StructuredBayesianPruning(dtype=policy, seed=1)
    utils.assert_dtype_policy(lambda **kw: layer, X, policy)
    test_output = layer(X)
    assert keras.backend.standardize_dtype(test_output.dtype) == layer.compute_dtype
    assert np.all(np.isfinite(utils.to_numpy(keras.ops.cast(test_output, "float32"))))
    if policy.startswith("mixed"):
        assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    assert keras.backend.standardize_dtype(layer.losses[-1].dtype) == "float32"


@pytest.mark.slow
def test_mixed_precision_model_trains_with_finite_loss():
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(8, dtype="mixed_float16"),
            factory(kl_weight=1e-2, dtype="mixed_float16"),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(X, np.zeros((8, 8), "float32"), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kl_weight": -1.0}, ValueError, "`kl_weight`.*Received: kl_weight=-1.0"),
        ({"kl_weight": float("nan")}, ValueError, "`kl_weight`"),
        ({"kl_weight": "1"}, TypeError, "`kl_weight`"),
        ({"kl_weight": True}, TypeError, "`kl_weight`"),
        ({"kl_weight": None}, TypeError, "`kl_weight`"),
        ({"threshold": float("inf")}, ValueError, "`threshold`"),
        ({"threshold": float("nan")}, ValueError, "`threshold`"),
        ({"threshold": -0.5}, ValueError, "`threshold`"),
        ({"threshold": "high"}, TypeError, "`threshold`"),
        ({"data_format": "NHWC"}, ValueError, "`data_format`"),
        ({"data_format": 1}, TypeError, "`data_format`"),
        ({"seed": 1.5}, TypeError, "`seed`"),
        ({"seed": "1"}, TypeError, "`seed`"),
        ({"mc": 1}, TypeError, "`mc`"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        kerasdrop.StructuredBayesianPruning(**kwargs)


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match="rank >= 2"):
        factory()(np.ones((4,), "float32"))
    with pytest.raises(ValueError, match="known number of units"):
        factory().build((None, None))
    with pytest.raises(TypeError, match="floating-point"):
        factory()(np.ones((2, 3), "int32"))
    layer = factory()
    layer(np.ones((2, 3), "float32"))
    with pytest.raises(ValueError):
        layer(np.ones((2, 4), "float32"))
