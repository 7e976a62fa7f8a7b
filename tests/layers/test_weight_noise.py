"""Weight-noise family: DropConnectDense, DropConnectConv2D, StandoutDense, FastDropoutDense."""

import math

import keras
import numpy as np
import pytest
from scipy import special

import kerasdrop
from kerasdrop.datasets import load_digits
from kerasdrop.layers._kernel_noise import apply_kernel, apply_kernel_per_sample
from kerasdrop.ops import normal_quantiles
from tests import backend, utils
from tests.layers.every_layer import beyond_the_cases, make

# The family's configurations in `tests.layers.every_layer`.
FAMILY = [
    "DropConnectDense",
    "DropConnectDense-weight_scaling",
    "DropConnectDense-per_sample",
    "DropConnectDense-gaussian",
    "DropConnectConv2D",
    "DropConnectConv2D-per_sample",
    "StandoutDense",
    "FastDropoutDense",
]


def sample_input(name, seed=0, batch=16):
    shape = (batch, 4, 4, 2) if "Conv2D" in name else (batch, 6)
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape).astype("float32")


def relu(z):
    return np.maximum(z, 0.0)


# ---------------------------------------------------------------- test-time output and rate 0


@pytest.mark.parametrize("scaling", ["inverted", "weight_scaling"])
def test_dropconnect_dense_test_output(scaling):
    layer = kerasdrop.DropConnectDense(4, 0.3, activation="tanh", scaling=scaling)
    kernel, bias = utils.randomize_weights(layer, (None, 6))
    x = sample_input("Dense")
    keep = 0.7 if scaling == "weight_scaling" else 1.0
    np.testing.assert_allclose(utils.to_numpy(layer(x)), np.tanh(keep * (x @ kernel + bias)), rtol=1e-5, atol=1e-6)


def test_dropconnect_conv_test_output():
    layer = kerasdrop.DropConnectConv2D(3, 2, 0.3, activation="relu")
    kernel, bias = utils.randomize_weights(layer, (None, 4, 4, 2))
    x = sample_input("Conv2D")
    np.testing.assert_allclose(
        utils.to_numpy(layer(x)), relu(utils.conv2d_valid(x, kernel) + bias), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", ["DropConnectDense", "DropConnectConv2D", "FastDropoutDense"])
def test_rate_zero_is_the_plain_layer(name):
    x = sample_input(name)
    layer = make(name, rate=0.0, activation="relu")
    utils.randomize_weights(layer, x.shape)
    if "Conv" in name:
        plain = keras.layers.Conv2D(layer.filters, layer.kernel_size, activation="relu")
    else:
        plain = keras.layers.Dense(layer.units, "relu")
    plain.build(x.shape)
    plain.set_weights(layer.get_weights())
    np.testing.assert_array_equal(utils.train_call(layer, x), utils.to_numpy(plain(x)))
    np.testing.assert_array_equal(utils.to_numpy(layer(x)), utils.to_numpy(plain(x)))


# ---------------------------------------------------------------- DropConnect: the mask is on the weights


# rate 0.25 has a dyadic keep (3/4): its masks come from packed random bits; rate 0.4 from one uniform per weight.
@pytest.mark.parametrize("rate", [0.4, 0.25])
def test_dropconnect_dense_drops_whole_weights_shared_over_the_batch(rate):
    """Identity rows reveal the call's mask M (each entry 0 or W/keep); the other rows of the batch used the same M."""
    units, inputs, keep = 7, 10, 1.0 - rate
    layer = kerasdrop.DropConnectDense(units, rate, use_bias=False, seed=2)
    kernel, _ = utils.randomize_weights(layer, (None, inputs))
    rng = np.random.default_rng(1)
    probe = np.concatenate([np.eye(inputs), rng.normal(size=(5, inputs))]).astype("float32")
    masks = []
    for _ in range(40):
        y = utils.train_call(layer, probe)
        mask = y[:inputs] * keep / kernel
        np.testing.assert_allclose(mask, np.round(mask), atol=1e-5)
        mask = np.round(mask)
        assert set(np.unique(mask)) <= {0.0, 1.0}
        np.testing.assert_allclose(y[inputs:], probe[inputs:] @ (kernel * mask) / keep, rtol=1e-5, atol=1e-5)
        masks.append(mask)
    masks = np.array(masks)
    utils.assert_binomial_count(masks.sum(), masks.size, keep)
    assert len({mask.tobytes() for mask in masks}) == len(masks), "a mask was repeated"


def test_dropconnect_dense_per_sample_masks():
    """With per_sample=True, samples with the same input get different weight masks."""
    units, inputs, keep, batch = 7, 10, 0.5, 300
    layer = kerasdrop.DropConnectDense(units, 0.5, use_bias=False, per_sample=True, seed=3)
    kernel, _ = utils.randomize_weights(layer, (None, inputs))
    rows = np.arange(batch) % inputs
    y = utils.train_call(layer, np.eye(inputs, dtype="float32")[rows])
    mask = y * keep / kernel[rows]
    np.testing.assert_allclose(mask, np.round(mask), atol=1e-5)
    utils.assert_binomial_count(np.round(mask).sum(), mask.size, keep)
    for row in range(inputs):
        same_input = np.round(mask[rows == row])
        assert len({m.tobytes() for m in same_input}) > len(same_input) // 2


@pytest.mark.parametrize("per_sample", [False, True])
def test_dropconnect_bias_is_dropped(per_sample):
    units, keep, batch = 40, 0.5, 6
    layer = kerasdrop.DropConnectDense(units, 0.5, per_sample=per_sample, seed=4)
    _, bias = utils.randomize_weights(layer, (None, 3))
    kept = []
    for _ in range(20):
        y = utils.train_call(layer, np.zeros((batch, 3), "float32"))
        mask = y * keep / bias
        np.testing.assert_allclose(mask, np.round(mask), atol=1e-5)
        if not per_sample:
            np.testing.assert_array_equal(y, np.broadcast_to(y[:1], y.shape))
        kept.append(np.round(mask))
    kept = np.array(kept) if per_sample else np.array(kept)[:, 0]
    utils.assert_binomial_count(kept.sum(), kept.size, keep)


@pytest.mark.parametrize("per_sample", [False, True])
def test_dropconnect_conv_drops_kernel_entries(per_sample):
    """One-hot images through a 3x3 valid convolution read single kernel entries: each is 0 or W/keep."""
    keep, filters = 0.5, 4
    layer = kerasdrop.DropConnectConv2D(filters, 3, 0.5, use_bias=False, per_sample=per_sample, seed=5)
    kernel, _ = utils.randomize_weights(layer, (None, 3, 3, 2))
    entries = 3 * 3 * 2
    probe = np.eye(entries, dtype="float32").reshape(entries, 3, 3, 2)
    rng = np.random.default_rng(0)
    probe = np.concatenate([probe, rng.normal(size=(3, 3, 3, 2)).astype("float32")])
    y = utils.train_call(layer, probe).reshape(len(probe), filters)
    mask = y[:entries] * keep / kernel.reshape(entries, filters)
    np.testing.assert_allclose(mask, np.round(mask), atol=1e-5)
    utils.assert_binomial_count(np.round(mask).sum(), mask.size, keep)
    if not per_sample:  # the same mask for the whole batch
        masked = kernel * np.round(mask).reshape(kernel.shape)
        expected = utils.conv2d_valid(probe[entries:], masked)[:, 0, 0] / keep
        np.testing.assert_allclose(y[entries:], expected, rtol=1e-5, atol=1e-5)


def test_per_sample_conv_matches_convolution():
    """The batched patch product behind per_sample=True is the layer's convolution (strides, padding, dilation)."""
    rng = np.random.default_rng(0)
    for kwargs in ({"strides": 2, "padding": "same"}, {"dilation_rate": 2}, {"data_format": "channels_first"}):
        layer = kerasdrop.DropConnectConv2D(3, 3, 0.5, **kwargs)
        shape = (2, 2, 7, 7) if kwargs.get("data_format") == "channels_first" else (2, 7, 7, 2)
        x = rng.normal(size=shape).astype("float32")
        layer.build(x.shape)
        kernels = rng.normal(size=(2, *layer.kernel.shape)).astype("float32")
        per_sample = utils.to_numpy(apply_kernel_per_sample(layer, x, kernels))
        for n in range(2):
            expected = utils.to_numpy(apply_kernel(layer, x[n : n + 1], kernels[n]))
            np.testing.assert_allclose(per_sample[n : n + 1], expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- DropConnect: statistics


@pytest.mark.parametrize(
    ("scaling", "per_sample"), [("inverted", False), ("weight_scaling", False), ("inverted", True)]
)
def test_dropconnect_dense_training_mean_is_test_output(scaling, per_sample):
    rate, keep = 0.4, 0.6
    layer = kerasdrop.DropConnectDense(6, rate, scaling=scaling, per_sample=per_sample, seed=6)
    kernel, bias = utils.randomize_weights(layer, (None, 8))
    x = sample_input("Dense", batch=3)[:, :1].repeat(8, axis=1) * np.linspace(0.5, 1.5, 8, dtype="float32")
    draws = np.stack([utils.train_call(layer, x) for _ in range(300)])
    terms = (x.astype("float64") ** 2) @ kernel**2 + bias**2
    variance = terms * (rate / keep if scaling == "inverted" else keep * rate)
    utils.assert_means_close(draws, utils.to_numpy(layer(x)), np.sqrt(variance))


def test_dropconnect_conv_training_mean_is_test_output():
    rate, keep = 0.3, 0.7
    layer = kerasdrop.DropConnectConv2D(3, 2, rate, seed=7)
    kernel, bias = utils.randomize_weights(layer, (None, 4, 4, 2))
    x = sample_input("Conv2D", batch=2)
    draws = np.stack([utils.train_call(layer, x) for _ in range(300)])
    variance = (utils.conv2d_valid(x.astype("float64") ** 2, kernel**2) + bias**2) * rate / keep
    utils.assert_means_close(draws, utils.to_numpy(layer(x)), np.sqrt(variance))


def _pre_activation_moments(x, kernel, bias, rate):
    """Mean, variance and Wasserstein bound of DropConnect's (inverted) pre-activation for one input ``x``."""
    keep = 1.0 - rate
    terms = np.concatenate([x[:, None] * kernel, bias[None, :]])  # (in + 1, units): the dropped summands
    mean = terms.sum(axis=0)
    variance = rate / keep * (terms**2).sum(axis=0)
    # E|c (m - keep) / keep|^3 for m ~ Bernoulli(keep).
    third = np.abs(terms) ** 3 * keep * rate * (rate**2 + keep**2) / keep**3
    return mean, variance, third.sum(axis=0) / variance


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_dropconnect_gaussian_inference_matches_monte_carlo_average(activation):
    """``inference="gaussian"`` agrees with the average of the training-mode layer, within a derived tolerance.

    The pre-activation S of a unit is a sum of independent dropped terms X_i with variance s². Stein's method gives
    the Wasserstein distance to the Gaussian G with its moments: W1(S, G) <= Σ E|X_i - E X_i|³ / s² (Chen,
    Goldstein & Shao 2011, Cor. 4.2). For an L-Lipschitz activation (relu: L = 1, sigmoid: L = 1/4),
    |E a(S) - E a(G)| <= L W1. Both sides are estimated by averages (n training draws, S Gaussian draws) whose
    variance is at most L² s² / n and L² s² / S (Var f(X) <= L² Var X). Tolerance: L W1 + 5 L s sqrt(1/n + 1/S).
    """
    rate, inputs, units, samples, draws = 0.5, 64, 16, 4000, 4000
    lipschitz = {"relu": 1.0, "sigmoid": 0.25}[activation]
    layer = kerasdrop.DropConnectDense(
        units, rate, activation=activation, inference="gaussian", inference_samples=samples, per_sample=True, seed=8
    )
    kernel, bias = utils.randomize_weights(layer, (None, inputs), bias_scale=0.3)
    x = np.random.default_rng(2).uniform(0, 1, size=(1, inputs)).astype("float32")
    gaussian = utils.to_numpy(layer(x))[0]
    # per_sample=True: every row of the tiled batch draws its own mask, i.e. `draws` independent training calls.
    monte_carlo = utils.train_call(layer, np.repeat(x, draws, axis=0)).mean(axis=0)
    mean, variance, wasserstein = _pre_activation_moments(x[0].astype("float64"), kernel, bias, rate)
    std = np.sqrt(variance)
    tolerance = lipschitz * wasserstein + 5 * lipschitz * std * math.sqrt(1 / draws + 1 / samples)
    assert np.all(np.abs(gaussian - monte_carlo) <= tolerance), np.abs(gaussian - monte_carlo) / tolerance
    # The Gaussian inference computes E a(G) for G ~ N(mean, variance): compare with the integral in closed form
    # (relu) or by Gauss-Hermite quadrature (sigmoid).
    if activation == "relu":
        ratio = mean / std
        expected = mean * special.ndtr(ratio) + std * np.exp(-0.5 * ratio**2) / math.sqrt(2 * math.pi)
    else:
        nodes, weights = np.polynomial.hermite_e.hermegauss(80)
        expected = (special.expit(mean[:, None] + std[:, None] * nodes) * weights).sum(axis=1) / math.sqrt(2 * math.pi)
    np.testing.assert_array_less(np.abs(gaussian - expected), 5 * lipschitz * std / math.sqrt(samples))
    # ... and it is closer to the training average than the plain mean inference a(W x + b).
    plain = utils.to_numpy(keras.activations.get(activation)(mean))
    assert np.abs(gaussian - monte_carlo).mean() < np.abs(plain - monte_carlo).mean()


def test_dropconnect_gaussian_inference_of_a_linear_layer_is_the_mean():
    layer = kerasdrop.DropConnectDense(4, 0.5, inference="gaussian", seed=1)
    kernel, bias = utils.randomize_weights(layer, (None, 6))
    x = sample_input("Dense")
    np.testing.assert_allclose(utils.to_numpy(layer(x)), x @ kernel + bias, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scaling", ["inverted", "weight_scaling"])
def test_dropconnect_conv_gaussian_inference(scaling):
    """Conv Gaussian inference is E relu(G), G ~ N(conv(x, W) + b, factor (conv(x², W²) + b²)) (closed form)."""
    rate, keep, samples = 0.4, 0.6, 3000
    layer = kerasdrop.DropConnectConv2D(
        3, 2, rate, activation="relu", inference="gaussian", inference_samples=samples, scaling=scaling, seed=9
    )
    kernel, bias = utils.randomize_weights(layer, (None, 4, 4, 2))
    x = sample_input("Conv2D", batch=2).astype("float64")
    mean = utils.conv2d_valid(x, kernel) + bias
    variance = utils.conv2d_valid(x**2, kernel**2) + bias**2
    if scaling == "inverted":
        variance *= rate / keep
    else:
        mean, variance = keep * mean, keep * rate * variance
    std = np.sqrt(variance)
    expected = mean * special.ndtr(mean / std) + std * np.exp(-0.5 * (mean / std) ** 2) / math.sqrt(2 * math.pi)
    output = utils.to_numpy(layer(x.astype("float32")))
    np.testing.assert_array_less(np.abs(output - expected), 5 * std / math.sqrt(samples))


def _normal_pdf(z):
    return np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)


def _quantile_rule_wasserstein(count):
    """W1 between the points of `kerasdrop.ops.normal_quantiles` and N(0, 1), exactly.

    On stratum ``[a, b]`` of probability around midpoint ``z``, ``∫ |Φ⁻¹(u) - z| du = 2 φ(z) - φ(Φ⁻¹(a)) - φ(Φ⁻¹(b))``
    (as ``∫_a^b Φ⁻¹(u) du = φ(Φ⁻¹(a)) - φ(Φ⁻¹(b))``); summed over the strata, with ``φ(±inf) = 0``.
    """
    midpoints = normal_quantiles(count)
    boundaries = special.ndtri(np.arange(1, count) / count)
    return 2 * _normal_pdf(midpoints).sum() - 2 * _normal_pdf(boundaries).sum()


@pytest.mark.parametrize("samples", [1, 8, 64])
def test_dropconnect_gaussian_inference_is_the_quantile_rule(samples):
    """Gaussian inference averages relu over the quantiles of its Gaussian: the same output on every call, within
    ``σ W1`` of the closed form ``E relu(G)`` (relu is 1-Lipschitz; W1 of the points to N(0, 1), computed exactly).
    """
    rate, inputs, units = 0.5, 32, 12
    layer = kerasdrop.DropConnectDense(
        units, rate, activation="relu", inference="gaussian", inference_samples=samples, seed=3
    )
    kernel, bias = utils.randomize_weights(layer, (None, inputs), bias_scale=0.3)
    x = np.random.default_rng(4).uniform(-1, 1, size=(2, inputs)).astype("float32")
    first, second = utils.to_numpy(layer(x)), utils.to_numpy(layer(x))
    np.testing.assert_array_equal(first, second)
    for row, output in zip(x.astype("float64"), first, strict=True):
        mean, variance, _ = _pre_activation_moments(row, kernel, bias, rate)
        std = np.sqrt(variance)
        expected = mean * special.ndtr(mean / std) + std * _normal_pdf(mean / std)
        bound = std * _quantile_rule_wasserstein(samples) + 1e-5 * (1 + np.abs(expected))
        np.testing.assert_array_less(np.abs(output - expected), bound)


# ---------------------------------------------------------------- Standout


def test_standout_keep_probability_and_test_output_follow_the_formula():
    layer = kerasdrop.StandoutDense(5, alpha=0.7, beta=-0.3)
    kernel, bias = utils.randomize_weights(layer, (None, 6))
    x = sample_input("Dense")
    z = x @ kernel + bias
    keep = special.expit(0.7 * z - 0.3)
    np.testing.assert_allclose(utils.to_numpy(layer.keep_probability(x)), keep, rtol=1e-5)
    np.testing.assert_allclose(utils.to_numpy(layer(x)), keep * relu(z), rtol=1e-5, atol=1e-6)


def test_standout_training_output_is_bernoulli_of_the_keep_probability():
    """Exactly ``m ∘ a(z)`` with ``m = [u < π]``, u the uniforms the layer's seed gives (drawn again here)."""
    layer = kerasdrop.StandoutDense(5, activation="tanh", alpha=2.0, beta=0.5, seed=11)
    kernel, bias = utils.randomize_weights(layer, (None, 6))
    x = sample_input("Dense", batch=50)
    z = x @ kernel + bias
    uniform = utils.to_numpy(keras.random.uniform(z.shape, seed=keras.random.SeedGenerator(11)))
    expected = (uniform < special.expit(2.0 * z + 0.5)) * np.tanh(z)
    np.testing.assert_allclose(utils.train_call(layer, x), expected, rtol=1e-5, atol=1e-6)


def test_standout_statistics():
    layer = kerasdrop.StandoutDense(5, beta=0.2, seed=12)
    kernel, bias = utils.randomize_weights(layer, (None, 6))
    x = sample_input("Dense", batch=3)
    z = x @ kernel + bias
    keep = special.expit(z + 0.2)
    draws = np.stack([utils.train_call(layer, x) for _ in range(400)])
    utils.assert_means_close(draws, keep * relu(z), relu(z) * np.sqrt(keep * (1 - keep)))
    kept = draws[:, relu(z) > 0] != 0
    utils.assert_binomial_count(kept.sum(), kept.size, keep[relu(z) > 0].mean())


# ---------------------------------------------------------------- Fast dropout


def test_fast_dropout_test_output_and_exact_training_draw():
    rate = 0.3
    layer = kerasdrop.FastDropoutDense(4, rate, activation="sigmoid", seed=13)
    kernel, bias = utils.randomize_weights(layer, (None, 6))
    x = sample_input("Dense", batch=20)
    mean = x @ kernel + bias
    np.testing.assert_allclose(utils.to_numpy(layer(x)), special.expit(mean), rtol=1e-5)
    variance = rate / (1 - rate) * (x.astype("float64") ** 2 @ kernel**2)
    eps = utils.to_numpy(keras.random.normal(mean.shape, seed=keras.random.SeedGenerator(13)))
    expected = special.expit(mean + np.sqrt(variance + 1e-8) * eps)
    np.testing.assert_allclose(utils.train_call(layer, x), expected, rtol=1e-5, atol=1e-6)


def test_fast_dropout_moments_match_bernoulli_dropout_then_dense():
    """Fast dropout's pre-activation has the mean and variance of real inverted dropout of the inputs + Dense."""
    rate, keep, inputs, units, n = 0.3, 0.7, 40, 3, 20000
    fast = kerasdrop.FastDropoutDense(units, rate, seed=14)
    kernel, bias = utils.randomize_weights(fast, (None, inputs))
    dense = keras.layers.Dense(units)
    dense.build((None, inputs))
    dense.set_weights(fast.get_weights())
    x = np.random.default_rng(3).uniform(0.2, 1.0, size=(1, inputs))
    batch = np.repeat(x, n, axis=0).astype("float32")
    fast_draws = utils.train_call(fast, batch)
    bernoulli_draws = utils.to_numpy(dense(kerasdrop.Dropout(rate, seed=15)(batch, training=True)))
    # Exact moments of Σ_i c_i m_i / keep (c_i = x_i W_ij) in NumPy; the fourth central moment from cumulants:
    # κ4 of a Bernoulli(keep) scaled by a is a⁴ keep rate (1 - 6 keep rate), and μ4 = κ4 + 3 σ⁴.
    terms = x[0][:, None] * kernel
    mean = terms.sum(axis=0) + bias
    variance = rate / keep * (terms**2).sum(axis=0)
    kappa4 = ((terms / keep) ** 4 * keep * rate * (1 - 6 * keep * rate)).sum(axis=0)
    for unit in range(units):
        std = math.sqrt(variance[unit])
        fourth_moments = (3 * variance[unit] ** 2, kappa4[unit] + 3 * variance[unit] ** 2)
        for draws, fourth in zip((fast_draws, bernoulli_draws), fourth_moments, strict=True):
            utils.assert_mean_close(draws[:, unit], mean[unit], std)
            utils.assert_variance_close(draws[:, unit], variance[unit], fourth)
        difference = fast_draws[:, unit].mean() - bernoulli_draws[:, unit].mean()
        assert abs(difference) <= 5 * std * math.sqrt(2 / n)


# ---------------------------------------------------------------- gradients (finite differences, noise held fixed)


def _fixed_noise_loss(layer, x):
    """``Σ y ∘ r`` of a training call; the seed state is reset first, so every evaluation draws the same noise."""
    state = utils.to_numpy(layer.seed_generator.state)
    weights = np.random.default_rng(0).normal(size=utils.train_call(layer, x).shape)

    def loss():
        layer.seed_generator.state.assign(state)
        return keras.ops.sum(keras.ops.multiply(layer(x, training=True), weights))

    return loss


@pytest.mark.parametrize(
    "name",
    ["DropConnectDense", "DropConnectDense-per_sample", "DropConnectConv2D", "StandoutDense", "FastDropoutDense"],
)
def test_gradients_match_finite_differences(name):
    with backend.float64():
        x = sample_input(name, batch=2).astype("float64")
        layer = make(name, activation="tanh", seed=21, dtype="float64", bias_initializer="ones")
        layer.build(x.shape)
        utils.assert_gradients_match_finite_differences(_fixed_noise_loss(layer, x), [layer.kernel, layer.bias])


def test_standout_has_no_gradient_through_the_keep_probability():
    """With the mask fixed, d(Σ m a(z))/dW only goes through a(z): the keep probability is a stop_gradient."""
    layer = kerasdrop.StandoutDense(3, activation="linear", seed=22)
    kernel, bias = utils.randomize_weights(layer, (None, 4))
    x = sample_input("Dense", batch=5)[:, :4]
    state = utils.to_numpy(layer.seed_generator.state)

    def output():
        layer.seed_generator.state.assign(state)
        return layer(x, training=True)

    (gradient,) = backend.gradients(lambda: keras.ops.sum(output()), [layer.kernel])
    mask = (utils.to_numpy(output()) != 0).astype("float64")
    assert 0 < mask.sum() < mask.size
    np.testing.assert_allclose(utils.to_numpy(gradient), x.T @ mask, rtol=1e-5)


# ---------------------------------------------------------------- fresh noise, seeds, Monte Carlo mode
# For every layer (and each fit step): tests/layers/test_contract.py; here the configurations it has no case of.


@pytest.mark.parametrize("name", beyond_the_cases(FAMILY))
def test_stochastic_layer_contract(name):
    """Fresh noise each call (eager and compiled), same seed same noise, mc at test time, config round trip."""

    def factory(**kwargs):  # a seeded initializer: two layers with the same seed must also share their weights
        return make(name, **{"kernel_initializer": keras.initializers.GlorotUniform(seed=0), **kwargs})

    utils.assert_stochastic_layer_contract(factory, sample_input(name))


@pytest.mark.slow
def test_mc_stays_stochastic_through_predict_reload_and_export(tmp_path):
    branches = {
        "DropConnectDense": [keras.layers.Flatten(), kerasdrop.DropConnectDense(4, 0.5, mc=True)],
        "DropConnectDense-gaussian": [
            keras.layers.Flatten(),
            kerasdrop.DropConnectDense(4, 0.5, activation="relu", inference="gaussian", mc=True),
        ],
        "DropConnectConv2D": kerasdrop.DropConnectConv2D(2, 2, 0.5, mc=True),
        "StandoutDense": [keras.layers.Flatten(), kerasdrop.StandoutDense(4, mc=True, bias_initializer="ones")],
        "FastDropoutDense": [keras.layers.Flatten(), kerasdrop.FastDropoutDense(4, 0.5, mc=True)],
    }
    utils.assert_mc_branches_stay_stochastic(branches, sample_input("Conv2D"), tmp_path)


@pytest.mark.parametrize(
    ("name", "shared"),
    [
        ("DropConnectDense", True),
        ("DropConnectDense-per_sample", False),
        ("DropConnectConv2D", True),
        ("DropConnectConv2D-per_sample", False),
        ("StandoutDense", False),
        ("FastDropoutDense", False),
    ],
)
def test_noise_shared_across_batch(name, shared):
    assert make(name).noise_shared_across_batch is shared


# ---------------------------------------------------------------- config and saving


@pytest.mark.slow
def test_keras_file_round_trip(tmp_path):
    inputs = keras.Input((4, 4, 2))
    x = kerasdrop.DropConnectConv2D(3, 2, 0.3, per_sample=True, scaling="weight_scaling", seed=1)(inputs)
    x = keras.layers.Flatten()(x)
    x = kerasdrop.DropConnectDense(6, 0.2, activation="relu", inference="gaussian", inference_samples=8)(x)
    x = kerasdrop.StandoutDense(5, alpha=0.5, beta=0.1)(x)
    outputs = kerasdrop.FastDropoutDense(2, 0.4, kernel_regularizer="l2")(x)
    model = keras.Model(inputs, outputs)
    reloaded = utils.save_and_load(model, tmp_path)
    assert [type(layer) for layer in reloaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.get_config() for layer in reloaded.layers] == [layer.get_config() for layer in model.layers]
    for before, after in zip(model.weights, reloaded.weights, strict=True):
        np.testing.assert_array_equal(utils.to_numpy(before), utils.to_numpy(after))
    assert [w.name for w in model.layers[1].weights] == ["kernel", "bias"]


# ---------------------------------------------------------------- dtypes and numerics


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", FAMILY)
def test_dtype_policies(name, policy):
    layer = make(name, dtype=policy)
    utils.assert_dtype_policy(lambda dtype: layer, sample_input(name), policy)
    output = layer(sample_input(name))  # test time too (Gaussian inference samples in float32)
    assert np.all(np.isfinite(utils.to_numpy(keras.ops.cast(output, "float32"))))


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_no_nan_at_rate_close_to_one(policy):
    x = sample_input("Dense")
    for layer in (
        kerasdrop.DropConnectDense(5, 0.999, dtype=policy, activation="relu", inference="gaussian", seed=1),
        kerasdrop.DropConnectDense(5, 0.999, dtype=policy, scaling="weight_scaling", per_sample=True, seed=1),
        kerasdrop.FastDropoutDense(5, 0.999, dtype=policy, activation="sigmoid", seed=1),
        kerasdrop.StandoutDense(5, alpha=100.0, beta=-100.0, dtype=policy, seed=1),
    ):
        for output in (layer(x, training=True), layer(x)):
            assert np.all(np.isfinite(utils.to_numpy(keras.ops.cast(output, "float32"))))


def test_fast_dropout_gradient_is_finite_at_zero_input():
    """The variance (x∘x)(W∘W) is zero for a zero input; its square root must not give an infinite gradient."""
    layer = kerasdrop.FastDropoutDense(3, 0.5, seed=1)
    x = np.zeros((2, 4), "float32")
    layer.build(x.shape)
    gradients = backend.gradients(lambda: keras.ops.sum(layer(x, training=True)), layer.trainable_weights)
    assert len(gradients) == 2
    for gradient in gradients:
        assert np.all(np.isfinite(utils.to_numpy(gradient)))


# ---------------------------------------------------------------- training on digits


@pytest.mark.slow
@pytest.mark.parametrize("name", ["DropConnectDense", "DropConnectConv2D", "StandoutDense", "FastDropoutDense"])
def test_trains_on_digits(name):
    keras.utils.set_random_seed(0)
    conv = "Conv2D" in name
    (x, y), (x_test, y_test) = load_digits("image" if conv else "flat")
    layer = make(name, **({"filters": 8, "kernel_size": 3} if conv else {"units": 32}), activation="relu", seed=1)
    model = keras.Sequential([keras.Input(x.shape[1:]), layer, keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    utils.assert_classifies_digits(model, x_test, y_test)


# ---------------------------------------------------------------- errors


BAD_RATES = [
    (1.0, ValueError),
    (-0.1, ValueError),
    (float("nan"), ValueError),
    (True, TypeError),
    ("0.5", TypeError),
    (None, TypeError),
]


@pytest.mark.parametrize(("rate", "error"), BAD_RATES)
@pytest.mark.parametrize("name", ["DropConnectDense", "DropConnectConv2D", "FastDropoutDense"])
def test_bad_rate(name, rate, error):
    with pytest.raises(error, match=r"argument `rate`.*Received: rate="):
        make(name, rate=rate)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"units": 0}, ValueError, "units"),
        ({"units": 2.5}, TypeError, "units"),
        ({"units": None}, TypeError, "units"),
        ({"per_sample": 1}, TypeError, "per_sample"),
        ({"inference": "median"}, ValueError, "inference"),
        ({"inference": None}, TypeError, "inference"),
        ({"inference_samples": 0}, ValueError, "inference_samples"),
        ({"inference_samples": 1.5}, TypeError, "inference_samples"),
        ({"scaling": "weights"}, ValueError, "scaling"),
        ({"use_bias": "yes"}, TypeError, "use_bias"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"mc": 1}, TypeError, "mc"),
    ],
)
def test_dropconnect_dense_bad_arguments(kwargs, error, argument):
    with pytest.raises(error, match=f"argument `{argument}`"):
        make("DropConnectDense", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"filters": 0}, ValueError, "filters"),
        ({"filters": "8"}, TypeError, "filters"),
        ({"inference": "mode"}, ValueError, "inference"),
        ({"per_sample": True, "groups": 2, "filters": 4}, ValueError, "per_sample"),
    ],
)
def test_dropconnect_conv_bad_arguments(kwargs, error, argument):
    with pytest.raises(error, match=f"argument `{argument}`"):
        make("DropConnectConv2D", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"alpha": float("inf")}, ValueError, "alpha"),
        ({"alpha": "1"}, TypeError, "alpha"),
        ({"beta": float("nan")}, ValueError, "beta"),
        ({"beta": None}, TypeError, "beta"),
        ({"units": -1}, ValueError, "units"),
    ],
)
def test_standout_bad_arguments(kwargs, error, argument):
    with pytest.raises(error, match=f"argument `{argument}`"):
        make("StandoutDense", **kwargs)


def test_fast_dropout_bad_units():
    with pytest.raises(ValueError, match="argument `units`"):
        kerasdrop.FastDropoutDense(0, 0.5)


@pytest.mark.parametrize("name", FAMILY)
def test_integer_inputs_raise(name):
    with pytest.raises(TypeError, match="floating-point inputs"):
        make(name)(sample_input(name).astype("int32"), training=True)


def test_wrong_input_rank_raises_value_error():
    with pytest.raises(ValueError):
        kerasdrop.DropConnectConv2D(2, 2, 0.5)(np.ones((2, 4, 4), "float32"))
    with pytest.raises(ValueError):
        kerasdrop.DropConnectDense(2, 0.5)(np.ones((4,), "float32"))
