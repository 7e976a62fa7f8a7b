"""Variational dropout with learned noise: VariationalDense, SparseVariationalDense, SparseVariationalConv2D."""

import math

import keras
import numpy as np
import pytest
from scipy import integrate, special

import kerasdrop
from kerasdrop.datasets import load_digits
from kerasdrop.layers import variational
from tests import backend, utils
from tests.layers.every_layer import beyond_the_cases, make

# The family's configurations in `tests.layers.every_layer`.
FAMILY = [
    "VariationalDense",
    "VariationalDense-weight",
    "VariationalDense-layer",
    "SparseVariationalDense",
    "SparseVariationalConv2D",
]


def sample_input(name, seed=0, batch=16):
    shape = (batch, 4, 4, 2) if "Conv2D" in name else (batch, 6)
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape).astype("float32")


def set_log_alpha(layer, log_alpha):
    """Gives a sparse variational layer the per-weight ``log α`` wanted: ``log σ² = log α + log θ²``."""
    kernel = utils.to_numpy(layer.kernel).astype("float64")
    layer.log_sigma2.assign(log_alpha + np.log(kernel**2))


def numpy_kl_kingma(log_alpha):
    c1, c2, c3 = 1.16145124, -1.50204118, 0.58629921
    alpha = np.exp(log_alpha)
    return -(0.5 * log_alpha + c1 * alpha + c2 * alpha**2 + c3 * alpha**3)


def numpy_kl_molchanov(log_alpha):
    k1, k2, k3 = 0.63576, 1.87320, 1.48695
    return -(k1 * special.expit(k2 + k3 * log_alpha) - 0.5 * np.log1p(np.exp(-log_alpha)) - k1)


def exact_kl(log_alpha):
    """KL(N(θ, α θ²) || log-uniform) up to a constant: -0.5 log α + E log|1 + sqrt(α) ε|, ε ~ N(0, 1) (SciPy).

    The constant (γ + log 2) / 2 makes it vanish as α grows, the normalisation of Molchanov et al.
    """
    scale = math.sqrt(math.exp(log_alpha))

    def integrand(eps):
        return math.exp(-0.5 * eps * eps) / math.sqrt(2 * math.pi) * math.log(abs(1 + scale * eps))

    singular = -1 / scale
    expectation = integrate.quad(integrand, -np.inf, singular, limit=200)[0]
    expectation += integrate.quad(integrand, singular, np.inf, limit=200)[0]
    return -0.5 * log_alpha + expectation + (np.euler_gamma + math.log(2)) / 2


# ---------------------------------------------------------------- weights, shapes and initial values


@pytest.mark.parametrize(("granularity", "shape"), [("unit", (5,)), ("weight", (6, 5)), ("layer", ())])
def test_variational_dense_weights(granularity, shape):
    layer = kerasdrop.VariationalDense(5, granularity=granularity, initial_rate=0.3)
    layer.build((None, 6))
    assert [w.name for w in layer.weights] == ["kernel", "bias", "log_alpha", "kl_factor"]
    assert tuple(layer.log_alpha.shape) == shape
    np.testing.assert_allclose(layer.dropout_rate(), np.full(shape, 0.3), rtol=1e-6)


def test_sparse_variational_weights():
    dense = kerasdrop.SparseVariationalDense(5)
    dense.build((None, 6))
    conv = kerasdrop.SparseVariationalConv2D(3, 2)
    conv.build((None, 4, 4, 2))
    for layer in (dense, conv):
        assert [w.name for w in layer.weights] == ["kernel", "bias", "log_sigma2", "kl_factor"]
        assert layer.log_sigma2.shape == layer.kernel.shape
        np.testing.assert_array_equal(utils.to_numpy(layer.log_sigma2), -10.0)


# ---------------------------------------------------------------- test time and the training draw


@pytest.mark.parametrize("granularity", ["unit", "weight", "layer"])
def test_variational_dense_test_output_and_exact_training_draw(granularity):
    """Training: exactly ``x θ + b + sqrt((x∘x)(α θ∘θ) + 1e-8) ε``, ε the normals the layer's seed gives."""
    layer = kerasdrop.VariationalDense(4, activation="tanh", granularity=granularity, max_rate=0.6, seed=5)
    kernel, bias = utils.randomize_weights(layer, (None, 6))
    log_alpha = np.random.default_rng(1).uniform(-3, 1.0, size=layer.log_alpha.shape)
    layer.log_alpha.assign(log_alpha)
    alpha = np.exp(np.minimum(log_alpha, math.log(0.6 / 0.4)))  # the cap at max_rate
    x = sample_input("Dense", batch=20).astype("float64")
    mean = x @ kernel + bias
    np.testing.assert_allclose(utils.to_numpy(layer(x)), np.tanh(mean), rtol=1e-5, atol=1e-6)
    eps = utils.to_numpy(keras.random.normal(mean.shape, seed=keras.random.SeedGenerator(5)))
    variance = x**2 @ (alpha * kernel**2)
    expected = np.tanh(mean + np.sqrt(variance + 1e-8) * eps)
    np.testing.assert_allclose(utils.train_call(layer, x.astype("float32")), expected, rtol=1e-4, atol=1e-5)


def test_sparse_variational_dense_exact_training_draw():
    """The variance is (x∘x) σ² with σ² = α θ² unclipped (additive parameterization), even where log α > 8."""
    layer = kerasdrop.SparseVariationalDense(4, activation="relu", seed=6)
    kernel, bias = utils.randomize_weights(layer, (None, 6))
    log_alpha = np.random.default_rng(2).uniform(-6, 12, size=kernel.shape)
    set_log_alpha(layer, log_alpha)
    x = sample_input("Dense", batch=20).astype("float64")
    mean = x @ kernel + bias
    eps = utils.to_numpy(keras.random.normal(mean.shape, seed=keras.random.SeedGenerator(6)))
    expected = np.maximum(mean + np.sqrt(x**2 @ (np.exp(log_alpha) * kernel**2) + 1e-8) * eps, 0)
    np.testing.assert_allclose(utils.train_call(layer, x.astype("float32")), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_sparse_variational_conv_exact_training_draw(data_format):
    """For a convolution the variance is the convolution of x∘x with σ² = α θ∘θ (NumPy reference convolution)."""
    layer = kerasdrop.SparseVariationalConv2D(3, 2, data_format=data_format, seed=7)
    shape = (None, 4, 4, 2) if data_format == "channels_last" else (None, 2, 4, 4)
    kernel, bias = utils.randomize_weights(layer, shape)
    log_alpha = np.random.default_rng(3).uniform(-6, 2, size=kernel.shape)
    set_log_alpha(layer, log_alpha)
    x = sample_input("Conv2D", batch=2).astype("float64")
    mean = utils.conv2d_valid(x, kernel) + bias
    variance = utils.conv2d_valid(x**2, np.exp(log_alpha) * kernel**2)
    inputs = x if data_format == "channels_last" else x.transpose(0, 3, 1, 2)
    output = utils.train_call(layer, inputs.astype("float32"))
    eps = utils.to_numpy(keras.random.normal(output.shape, seed=keras.random.SeedGenerator(7)))  # layer's layout
    if data_format == "channels_first":
        output, eps = output.transpose(0, 2, 3, 1), eps.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(output, mean + np.sqrt(variance + 1e-8) * eps, rtol=1e-4, atol=1e-5)


def test_training_moments_match_explicit_weight_noise():
    """Local reparameterization has the moments of sampling every weight from N(θ, α θ²) (sampled in NumPy)."""
    layer = kerasdrop.SparseVariationalDense(3, seed=8)
    kernel, bias = utils.randomize_weights(layer, (None, 5))
    log_alpha = np.random.default_rng(4).uniform(-3, 1, size=kernel.shape)
    set_log_alpha(layer, log_alpha)
    x = sample_input("Dense", batch=1)[:, :5].astype("float64")
    n = 20000
    draws = utils.train_call(layer, np.repeat(x, n, axis=0).astype("float32"))
    weights = kernel + np.sqrt(np.exp(log_alpha)) * kernel * np.random.default_rng(5).normal(size=(n, *kernel.shape))
    explicit = np.einsum("i,niu->nu", x[0], weights) + bias
    variance = x[0] ** 2 @ (np.exp(log_alpha) * kernel**2)
    for unit in range(3):
        std = math.sqrt(variance[unit])
        for samples in (draws[:, unit], explicit[:, unit]):
            utils.assert_mean_close(samples, (x @ kernel + bias)[0, unit], std)
            utils.assert_variance_close(samples, variance[unit], 3 * variance[unit] ** 2)


# ---------------------------------------------------------------- KL terms


@pytest.mark.parametrize("granularity", ["unit", "weight", "layer"])
def test_variational_dense_kl_is_kingmas_approximation(granularity):
    """Σ over the 6 x 5 weights of Kingma's KL at chosen log α, including values above the cap (log 1 = 0)."""
    layer = kerasdrop.VariationalDense(5, granularity=granularity, kl_weight=0.25)
    layer.build((None, 6))
    values = {"unit": [-6.0, -3.0, -1.0, 0.0, 0.7], "weight": np.linspace(-7, 2, 30).reshape(6, 5), "layer": -2.5}
    layer.log_alpha.assign(values[granularity])
    log_alpha = np.broadcast_to(np.minimum(values[granularity], 0.0), (6, 5))
    expected = numpy_kl_kingma(log_alpha).sum()
    np.testing.assert_allclose(float(layer.kl_divergence()), expected, rtol=1e-5)
    layer(sample_input("Dense"), training=True)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), 0.25 * expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["SparseVariationalDense", "SparseVariationalConv2D"])
def test_sparse_variational_kl_is_molchanovs_approximation_with_the_clip(name):
    values = np.array([-12.0, -8.0, -5.0, -1.0, 0.0, 2.0, 3.0, 8.0, 12.0, 30.0])
    layer = make(name, kl_weight=0.5)
    layer.build(sample_input(name).shape)
    size = int(np.prod(layer.kernel.shape))
    log_alpha = np.resize(values, size).reshape(layer.kernel.shape)
    layer.kernel.assign(np.ones(layer.kernel.shape))  # θ = 1: log α = log σ²
    layer.log_sigma2.assign(log_alpha)
    clipped = np.clip(log_alpha, -8, 8)
    np.testing.assert_allclose(utils.to_numpy(layer.effective_log_alpha()), clipped, rtol=1e-6, atol=1e-6)
    expected = numpy_kl_molchanov(clipped).sum()
    np.testing.assert_allclose(float(layer.kl_divergence()), expected, rtol=1e-5)
    layer(sample_input(name))
    np.testing.assert_allclose(float(layer.losses[0]), 0.5 * expected, rtol=1e-5)


@pytest.mark.parametrize("name", ["SparseVariationalDense", "SparseVariationalConv2D"])
def test_sparse_kl_gradient_is_the_formulas_gradient_on_both_sides_of_the_clip(name):
    """The KL's written-out gradient equals automatic differentiation of Σ kl_molchanov(clip(log σ² - log θ²))."""
    with backend.float64():
        layer = make(name, dtype="float64")
        layer.build(sample_input(name).shape)
        rng = np.random.default_rng(4)
        kernel = rng.normal(size=layer.kernel.shape) * 0.1
        log_alpha = np.resize([-12.0, -8.5, -7.9, -3.0, 0.0, 2.0, 7.9, 8.5, 12.0, 20.0], kernel.size)
        log_alpha = log_alpha.reshape(kernel.shape)
        layer.kernel.assign(kernel)
        layer.log_sigma2.assign(log_alpha + np.log(kernel**2))

        def reference():
            square = keras.ops.square(layer.kernel) + 1e-16
            clipped = keras.ops.clip(layer.log_sigma2 - keras.ops.log(square), -8.0, 8.0)
            return keras.ops.sum(variational.kl_molchanov(clipped))

        results = []
        for kl in (layer.kl_divergence, reference):
            results.append([kl(), *backend.gradients(kl, [layer.kernel, layer.log_sigma2])])
        for ours, expected in zip(*results, strict=True):
            assert keras.backend.standardize_dtype(ours.dtype) == "float64"
            np.testing.assert_allclose(utils.to_numpy(ours), utils.to_numpy(expected), rtol=1e-9, atol=1e-12)
        assert np.all(utils.to_numpy(results[0][2])[np.abs(log_alpha) > 8] == 0)  # no gradient through the clip


def test_kl_approximations_match_the_exact_kl():
    """Both published fits against the KL integrated numerically: Molchanov's within 0.01 everywhere; Kingma's
    (fitted for α <= 1) within 0.025 of a constant offset (its additive constant is left out)."""
    grid = np.array([-8.0, -6.0, -4.0, -3.0, -2.0, -1.0, -0.5, 0.0, 1.0, 2.0, 4.0, 8.0])
    exact = np.array([exact_kl(value) for value in grid])
    molchanov = utils.to_numpy(variational.kl_molchanov(keras.ops.convert_to_tensor(grid)))
    np.testing.assert_allclose(molchanov, exact, atol=0.01)
    below_one = grid <= 0
    kingma = utils.to_numpy(variational.kl_kingma(keras.ops.convert_to_tensor(grid[below_one])))
    offset = kingma - exact[below_one]
    np.testing.assert_allclose(offset, offset.mean(), atol=0.025)
    np.testing.assert_allclose(kingma, numpy_kl_kingma(grid[below_one]), rtol=1e-6)


@pytest.mark.slow
def test_losses_in_model_and_in_fit():
    """The KL terms are in `model.losses`, and `fit` minimises them: with a zero data loss, the logged loss is the
    sum of the KL terms, and training raises log α."""
    dense = kerasdrop.VariationalDense(4, kl_weight=0.01, initial_rate=0.2)
    sparse = kerasdrop.SparseVariationalDense(3, kl_weight=0.02, seed=1)
    model = keras.Sequential([keras.Input((6,)), dense, sparse])
    x = sample_input("Dense", batch=8)
    model(x, training=True)
    expected = 0.01 * float(dense.kl_divergence()) + 0.02 * float(sparse.kl_divergence())
    assert len(model.losses) == 2
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-6)

    def zero(y_true, y_pred):
        return keras.ops.mean(y_pred * 0.0, axis=-1)

    model.compile(keras.optimizers.SGD(0.0), zero)
    logged = model.fit(x, np.zeros((8, 3)), batch_size=8, epochs=1, verbose=0).history["loss"][0]
    np.testing.assert_allclose(logged, expected, rtol=1e-5)
    model.compile(keras.optimizers.Adam(0.05), zero)
    log_alpha_before = utils.to_numpy(sparse.effective_log_alpha()).mean(), utils.to_numpy(dense.log_alpha).mean()
    history = model.fit(x, np.zeros((8, 3)), batch_size=8, epochs=5, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert utils.to_numpy(sparse.effective_log_alpha()).mean() > log_alpha_before[0]
    assert utils.to_numpy(dense.log_alpha).mean() > log_alpha_before[1]


def test_zero_kl_weight_adds_no_loss():
    layer = kerasdrop.SparseVariationalDense(3, kl_weight=0.0)
    layer(sample_input("Dense"), training=True)
    assert layer.losses == []


# ---------------------------------------------------------------- pruning


@pytest.mark.parametrize("name", ["SparseVariationalDense", "SparseVariationalConv2D"])
def test_pruned_weights_contribute_exactly_zero_at_test_time(name):
    x = sample_input(name, batch=4)
    layer = make(name, threshold=3.0, activation="relu")
    kernel, bias = utils.randomize_weights(layer, x.shape)
    log_alpha = np.random.default_rng(6).uniform(-6, 7.5, size=kernel.shape)
    set_log_alpha(layer, log_alpha)
    keep = log_alpha <= 3.0
    assert 0 < keep.mean() < 1
    np.testing.assert_array_equal(utils.to_numpy(layer.weight_mask()), keep)
    np.testing.assert_allclose(utils.to_numpy(layer.pruned_kernel()), kernel * keep, rtol=1e-6)
    assert np.all(utils.to_numpy(layer.pruned_kernel())[~keep] == 0.0)
    assert layer.sparsity() == pytest.approx(1 - keep.mean())
    linear = utils.conv2d_valid(x, kernel * keep) if "Conv" in name else x @ (kernel * keep)
    before = utils.to_numpy(layer(x))
    np.testing.assert_allclose(before, np.maximum(linear + bias, 0), rtol=1e-5, atol=1e-5)
    # Scale the pruned weights (and their σ², so log α stays above the threshold): the test output is unchanged.
    factor = np.where(keep, 1.0, 3.0)
    layer.kernel.assign(kernel * factor)
    layer.log_sigma2.assign(utils.to_numpy(layer.log_sigma2) + 2 * np.log(factor))
    np.testing.assert_array_equal(utils.to_numpy(layer(x)), before)


def test_threshold_is_inclusive_and_configurable():
    layer = kerasdrop.SparseVariationalDense(2, threshold=0.5)
    layer.build((None, 2))
    layer.kernel.assign(np.ones((2, 2)))
    layer.log_sigma2.assign([[0.5, 0.50001], [-3.0, 9.0]])
    np.testing.assert_array_equal(utils.to_numpy(layer.weight_mask()), [[True, False], [True, False]])
    assert layer.sparsity() == 0.5


def test_fresh_layer_prunes_only_tiny_weights():
    """log σ² starts at -10, so a fresh layer prunes exactly the weights with log α = -10 - log θ² > 3."""
    layer = kerasdrop.SparseVariationalDense(64, kernel_initializer=keras.initializers.RandomUniform(-0.01, 0.01, 1))
    layer.build((None, 32))
    kernel = utils.to_numpy(layer.kernel).astype("float64")
    pruned = -10.0 - np.log(kernel**2) > 3.0
    assert 0 < pruned.mean() < 0.5
    np.testing.assert_array_equal(utils.to_numpy(layer.weight_mask()), ~pruned)
    assert layer.sparsity() == pytest.approx(pruned.mean())


# ---------------------------------------------------------------- gradients (finite differences, noise held fixed)


@pytest.mark.parametrize(
    "name", ["VariationalDense-weight", "VariationalDense", "SparseVariationalDense", "SparseVariationalConv2D"]
)
def test_gradients_match_finite_differences(name):
    """d/d(θ, b, log α or log σ²) of Σ y∘r + KL, the noise ε held fixed by resetting the seed state."""
    with backend.float64():
        x = sample_input(name, batch=2).astype("float64")
        layer = make(name, activation="tanh", seed=21, dtype="float64", kl_weight=0.1)
        utils.randomize_weights(layer, x.shape)
        if "Sparse" in name:
            set_log_alpha(layer, np.random.default_rng(0).uniform(-4, 4, size=layer.kernel.shape))
            learned = layer.log_sigma2
        else:
            layer.log_alpha.assign(np.random.default_rng(0).uniform(-3, -0.5, size=layer.log_alpha.shape))
            learned = layer.log_alpha
        state = utils.to_numpy(layer.seed_generator.state)
        weights = np.random.default_rng(1).normal(size=utils.train_call(layer, x).shape)

        def loss():
            layer.seed_generator.state.assign(state)
            y = layer(x, training=True)
            return keras.ops.sum(keras.ops.multiply(y, weights)) + keras.ops.sum(layer.losses)

        utils.assert_gradients_match_finite_differences(loss, [layer.kernel, layer.bias, learned], rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------- fresh noise, seeds, Monte Carlo mode
# For every layer (and each fit step): tests/layers/test_contract.py; here the configurations it has no case of.


@pytest.mark.parametrize("name", beyond_the_cases(FAMILY))
def test_stochastic_layer_contract(name):
    """Fresh noise each call (eager and compiled), same seed same noise, mc at test time, config round trip."""

    def factory(**kwargs):  # a seeded initializer: two layers with the same seed must also share their weights
        return make(name, **{"kernel_initializer": keras.initializers.GlorotUniform(seed=0), **kwargs})

    utils.assert_stochastic_layer_contract(factory, sample_input(name))
    assert not factory().noise_shared_across_batch


@pytest.mark.slow
def test_mc_stays_stochastic_through_predict_reload_and_export(tmp_path):
    branches = {
        "VariationalDense": [keras.layers.Flatten(), kerasdrop.VariationalDense(4, mc=True)],
        "SparseVariationalDense": [keras.layers.Flatten(), kerasdrop.SparseVariationalDense(4, mc=True)],
        "SparseVariationalConv2D": kerasdrop.SparseVariationalConv2D(2, 2, mc=True),
    }
    utils.assert_mc_branches_stay_stochastic(branches, sample_input("Conv2D"), tmp_path)


def test_mc_mode_samples_with_the_unpruned_weights():
    """Monte Carlo mode uses the training formula: a weight pruned at test time still carries its noise."""
    layer = kerasdrop.SparseVariationalDense(1, mc=True, seed=3, use_bias=False)
    layer.build((None, 1))
    layer.kernel.assign([[1.0]])
    layer.log_sigma2.assign([[5.0]])  # log α = 5 > 3: pruned at test time
    draws = utils.train_call(layer, np.ones((2000, 1), "float32"))
    utils.assert_mean_close(draws, 1.0, math.exp(2.5))
    layer.mc = False
    np.testing.assert_array_equal(utils.to_numpy(layer(np.ones((2, 1), "float32"))), 0.0)


# ---------------------------------------------------------------- config and saving


def test_config_keeps_every_argument():
    config = kerasdrop.VariationalDense(3, granularity="weight", initial_rate=0.2, max_rate=0.4).get_config()
    assert (config["granularity"], config["initial_rate"], config["max_rate"]) == ("weight", 0.2, 0.4)
    assert kerasdrop.SparseVariationalConv2D(2, 3, threshold=2.5, strides=2).get_config()["threshold"] == 2.5


@pytest.mark.slow
def test_keras_file_round_trip_keeps_learned_values(tmp_path):
    """After training, log_alpha and log_sigma2 (and θ) reload bit for bit, and so do the sparse predictions."""
    keras.utils.set_random_seed(0)
    x = sample_input("Conv2D", batch=32)
    model = keras.Sequential(
        [
            keras.Input((4, 4, 2)),
            kerasdrop.SparseVariationalConv2D(3, 2, kl_weight=1e-2, seed=1),
            keras.layers.Flatten(),
            kerasdrop.VariationalDense(4, granularity="weight", kl_weight=1e-2, activation="relu"),
            kerasdrop.SparseVariationalDense(2, threshold=2.0, kl_weight=1e-2),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), "mse")
    model.fit(x, np.ones((32, 2)), epochs=3, verbose=0)
    assert not np.all(utils.to_numpy(model.layers[0].log_sigma2) == -10.0)  # learned
    reloaded = utils.save_and_load(model, tmp_path)
    assert [layer.get_config() for layer in reloaded.layers] == [layer.get_config() for layer in model.layers]
    for before, after in zip(model.weights, reloaded.weights, strict=True):
        assert before.name == after.name
        np.testing.assert_array_equal(utils.to_numpy(before), utils.to_numpy(after))
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert reloaded.layers[-1].sparsity() == model.layers[-1].sparsity()


# ---------------------------------------------------------------- dtypes and numerics


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", FAMILY)
def test_dtype_policies(name, policy):
    layer = make(name, dtype=policy)
    utils.assert_dtype_policy(lambda dtype: layer, sample_input(name), policy)
    assert np.all(np.isfinite(utils.to_numpy(keras.ops.cast(layer(sample_input(name)), "float32"))))
    (kl,) = layer.losses
    assert keras.backend.standardize_dtype(kl.dtype) == ("float32" if policy.startswith("mixed") else policy)
    assert np.isfinite(float(keras.ops.cast(kl, "float32")))


@pytest.mark.parametrize("name", ["VariationalDense", "SparseVariationalDense"])
def test_mixed_policy_keeps_learned_parameters_in_float32(name):
    """Under mixed_float16 the KL and the pruning mask come from the float32 variables, unchanged by the policy."""
    reference = make(name, seed=1)
    mixed = make(name, seed=1, dtype="mixed_float16")
    x = sample_input(name)
    for layer in (reference, mixed):
        utils.randomize_weights(layer, x.shape, seed=4)
        layer(x, training=True)
    assert [keras.backend.standardize_dtype(w.dtype) for w in mixed.weights] == ["float32"] * 4
    np.testing.assert_allclose(float(mixed.losses[0]), float(reference.losses[0]), rtol=1e-6)
    if "Sparse" in name:
        np.testing.assert_array_equal(utils.to_numpy(mixed.weight_mask()), utils.to_numpy(reference.weight_mask()))


def test_no_nan_with_zero_weights_and_extreme_parameters():
    x = np.zeros((3, 5), "float32")
    for layer in (
        kerasdrop.SparseVariationalDense(4, kernel_initializer="zeros", dtype="mixed_float16"),
        kerasdrop.VariationalDense(4, granularity="weight", initial_rate=1e-6, dtype="mixed_float16"),
        kerasdrop.SparseVariationalDense(4, kernel_initializer="zeros"),
    ):
        layer.build(x.shape)
        state = utils.to_numpy(layer.seed_generator.state)

        def loss(layer=layer, state=state):  # the same draw for the loss and its gradient
            layer.seed_generator.state.assign(state)
            return keras.ops.sum(keras.ops.cast(layer(x, training=True), "float32")) + sum(layer.losses)

        assert np.isfinite(float(loss()))
        for gradient in backend.gradients(loss, layer.trainable_weights):
            assert np.all(np.isfinite(utils.to_numpy(gradient)))


# ---------------------------------------------------------------- training on digits


@pytest.mark.slow
@pytest.mark.parametrize("name", ["VariationalDense", "SparseVariationalDense", "SparseVariationalConv2D"])
def test_trains_on_digits(name):
    keras.utils.set_random_seed(0)
    conv = "Conv2D" in name
    (x, y), (x_test, y_test) = load_digits("image" if conv else "flat")
    size = {"filters": 8, "kernel_size": 3} if conv else {"units": 32}
    layer = make(name, **size, activation="relu", kl_weight=1.0 / len(x), seed=1)
    model = keras.Sequential([keras.Input(x.shape[1:]), layer, keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    utils.assert_classifies_digits(model, x_test, y_test)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"units": 0}, ValueError, "units"),
        ({"units": "4"}, TypeError, "units"),
        ({"granularity": "neuron"}, ValueError, "granularity"),
        ({"granularity": None}, TypeError, "granularity"),
        ({"initial_rate": 0.0}, ValueError, "initial_rate"),
        ({"initial_rate": 0.6}, ValueError, "initial_rate"),  # above max_rate = 0.5
        ({"initial_rate": float("nan")}, ValueError, "initial_rate"),
        ({"initial_rate": "0.5"}, TypeError, "initial_rate"),
        ({"max_rate": 1.0}, ValueError, "max_rate"),
        ({"max_rate": 0.0}, ValueError, "max_rate"),
        ({"max_rate": True}, TypeError, "max_rate"),
        ({"kl_weight": -1.0}, ValueError, "kl_weight"),
        ({"kl_weight": float("inf")}, ValueError, "kl_weight"),
        ({"kl_weight": None}, TypeError, "kl_weight"),
        ({"seed": "1"}, TypeError, "seed"),
        ({"mc": "yes"}, TypeError, "mc"),
    ],
)
def test_variational_dense_bad_arguments(kwargs, error, argument):
    with pytest.raises(error, match=f"argument `{argument}`.*Received: {argument}="):
        make("VariationalDense", **kwargs)


@pytest.mark.parametrize("name", ["SparseVariationalDense", "SparseVariationalConv2D"])
@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"threshold": float("nan")}, ValueError, "threshold"),
        ({"threshold": float("inf")}, ValueError, "threshold"),
        ({"threshold": "3"}, TypeError, "threshold"),
        ({"kl_weight": -0.1}, ValueError, "kl_weight"),
        ({"seed": 2.0}, TypeError, "seed"),
    ],
)
def test_sparse_variational_bad_arguments(name, kwargs, error, argument):
    with pytest.raises(error, match=f"argument `{argument}`"):
        make(name, **kwargs)


@pytest.mark.parametrize(("kwargs", "error"), [({"filters": 0}, ValueError), ({"filters": 2.0}, TypeError)])
def test_sparse_variational_conv_bad_filters(kwargs, error):
    with pytest.raises(error, match="argument `filters`"):
        make("SparseVariationalConv2D", **kwargs)


@pytest.mark.parametrize("name", FAMILY)
def test_integer_inputs_raise(name):
    with pytest.raises(TypeError, match="floating-point inputs"):
        make(name)(sample_input(name).astype("int32"), training=True)


def test_wrong_input_rank_raises_value_error():
    with pytest.raises(ValueError):
        kerasdrop.SparseVariationalConv2D(2, 2)(np.ones((2, 4, 4), "float32"))
    with pytest.raises(ValueError):
        kerasdrop.VariationalDense(2)(np.ones((4,), "float32"))
