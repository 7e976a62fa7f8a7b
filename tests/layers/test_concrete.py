"""Concrete dropout: ConcreteDropout and ConcreteSpatialDropout2D (Gal, Hron & Kendall 2017)."""

import math

import keras
import numpy as np
import pytest
from scipy import special

import kerasdrop
from kerasdrop.datasets import load_digits
from tests import backend, utils
from tests.layers.every_layer import make

FLOOR = 1e-7  # u is drawn in [1e-7, 1)

# The family's configurations in `tests.layers.every_layer`.
FAMILY = ["ConcreteDropout", "ConcreteSpatialDropout2D"]


def sample_input(name, seed=0, batch=16):
    shape = (batch, 4, 4, 2) if "Spatial" in name else (batch, 6)
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape).astype("float32")


def identity_wrapped(cls, channels, **kwargs):
    """A Concrete wrapper around a layer that returns its input (a 1x1 conv / dense with identity kernel)."""
    data_format = kwargs.get("data_format", "channels_last")
    spatial = cls is kerasdrop.ConcreteSpatialDropout2D
    inner = keras.layers.Conv2D(channels, 1, use_bias=False, data_format=data_format) if spatial else None
    inner = inner or keras.layers.Dense(channels, use_bias=False)
    layer = cls(inner, **kwargs)
    shape = (None, 3, 3, channels) if inner.__class__ is keras.layers.Conv2D else (None, channels)
    if kwargs.get("data_format") == "channels_first":
        shape = (None, channels, 3, 3)
    layer.build(shape)
    inner.kernel.assign(np.eye(channels).reshape(inner.kernel.shape))
    return layer


def logit(p):
    return math.log(p) - math.log1p(-p)


# ---------------------------------------------------------------- the relaxed mask and the regulariser


def test_training_output_follows_the_relaxed_mask_formula():
    """Exactly ``layer(x ∘ (1 - z) / (1 - rate))`` with ``z = sigmoid((logit(rate) + log u - log(1 - u)) / t)``,
    u the uniforms the layer's seed gives (drawn again here)."""
    rate, temperature = 0.3, 0.2
    inner = keras.layers.Dense(4)
    layer = kerasdrop.ConcreteDropout(inner, temperature=temperature, init_min=rate, init_max=rate, seed=5)
    layer.build((None, 6))
    kernel, bias = utils.randomize_weights(inner, (None, 6))
    assert layer.rate == pytest.approx(rate, rel=1e-6)
    x = sample_input("ConcreteDropout")
    u = utils.to_numpy(keras.random.uniform(x.shape, FLOOR, 1.0, seed=keras.random.SeedGenerator(5))).astype("float64")
    z = special.expit((logit(rate) + np.log(u) - np.log1p(-u)) / temperature)
    expected = (x * (1 - z) / (1 - rate)) @ kernel + bias
    np.testing.assert_allclose(utils.train_call(layer, x), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(utils.to_numpy(layer(x)), x @ kernel + bias, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_relaxed_mask_statistics(rate):
    """``t logit(z) - logit(rate)`` is standard logistic (mean 0, variance π²/3, μ4 = 7π⁴/15), and z > 1/2 (dropped)
    with probability ``rate``."""
    layer = identity_wrapped(kerasdrop.ConcreteDropout, 50, init_min=rate, init_max=rate, temperature=1.0, seed=6)
    z = utils.to_numpy(layer.relaxed_mask(np.ones((400, 50), "float32"))).astype("float64")
    logistic = np.log(z) - np.log1p(-z) - logit(rate)
    utils.assert_mean_close(logistic, 0.0, math.pi / math.sqrt(3))
    utils.assert_variance_close(logistic, math.pi**2 / 3, 7 * math.pi**4 / 15)
    utils.assert_binomial_count((z > 0.5).sum(), z.size, rate)


def test_low_temperature_mask_is_nearly_binary():
    layer = identity_wrapped(kerasdrop.ConcreteDropout, 50, init_min=0.2, init_max=0.2, temperature=0.01, seed=7)
    scale = utils.train_call(layer, np.ones((400, 50), "float32"))
    dropped = scale < 0.5 / 0.8
    assert np.mean(np.abs(scale[~dropped] - 1 / 0.8) < 0.05) > 0.95
    assert np.mean(scale[dropped] < 0.05) > 0.95
    utils.assert_binomial_count(dropped.sum(), dropped.size, 0.2)


@pytest.mark.parametrize(
    ("cls", "input_shape", "units"),
    [
        (kerasdrop.ConcreteDropout, (None, 6), 6),
        (kerasdrop.ConcreteDropout, (None, 3, 5), 15),  # every non-batch entry is a dropped unit
        (kerasdrop.ConcreteSpatialDropout2D, (None, 4, 4, 2), 2),  # one unit per channel
    ],
)
def test_regulariser_follows_the_formula(cls, input_shape, units):
    inner = keras.layers.Conv2D(3, 2) if cls is kerasdrop.ConcreteSpatialDropout2D else keras.layers.Dense(4)
    layer = cls(inner, weight_regularizer=1e-2, dropout_regularizer=3e-2, init_min=0.25, init_max=0.25)
    layer.build(input_shape)
    kernel, _ = utils.randomize_weights(inner, input_shape)
    x = np.ones((2, *input_shape[1:]), "float32")
    layer(x, training=True)
    p = 1 / (1 + math.exp(-float(layer.p_logit)))
    expected = 1e-2 * (kernel**2).sum() / (1 - p) + 3e-2 * units * (p * math.log(p) + (1 - p) * math.log(1 - p))
    (loss,) = layer.losses
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_regularisers_of_the_elbo_for_n_samples():
    """``l² / (τ N)`` and ``2 / (τ N)``; the layer takes them as its arguments and keeps them in its config."""
    assert kerasdrop.concrete_regularizers(1000) == {"weight_regularizer": 1e-8 / 1000, "dropout_regularizer": 2e-3}
    regularizers = kerasdrop.concrete_regularizers(500, length_scale=0.5, precision=4.0)
    assert regularizers == {"weight_regularizer": 0.25 / 2000, "dropout_regularizer": 2 / 2000}
    config = kerasdrop.ConcreteDropout(keras.layers.Dense(2), **regularizers).get_config()
    assert {key: config[key] for key in regularizers} == regularizers
    for kwargs, name in [
        ({"train_size": 0}, "train_size"),
        ({"train_size": 10.5}, "train_size"),
        ({"train_size": 10, "length_scale": 0.0}, "length_scale"),
        ({"train_size": 10, "precision": -1.0}, "precision"),
    ]:
        with pytest.raises((TypeError, ValueError), match=name):
            kerasdrop.concrete_regularizers(**kwargs)


def test_regulariser_counts_the_kernels_of_a_wrapped_model():
    inner = keras.Sequential([keras.layers.Dense(5), keras.layers.Dense(2)])
    layer = kerasdrop.ConcreteDropout(inner, weight_regularizer=1.0, dropout_regularizer=0.0)
    layer.build((None, 3))
    squares = sum(float(np.sum(utils.to_numpy(w) ** 2)) for w in inner.trainable_weights if w.name == "kernel")
    assert len(layer.kernels()) == 2
    layer(np.ones((1, 3), "float32"))
    np.testing.assert_allclose(float(layer.losses[0]), squares / (1 - layer.rate), rtol=1e-5)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_spatial_mask_is_shared_over_positions(data_format):
    layer = identity_wrapped(kerasdrop.ConcreteSpatialDropout2D, 8, data_format=data_format, temperature=1.0, seed=8)
    shape = (16, 3, 3, 8) if data_format == "channels_last" else (16, 8, 3, 3)
    scale = utils.train_call(layer, np.ones(shape, "float32"))
    if data_format == "channels_first":
        scale = scale.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(scale, np.broadcast_to(scale[:, :1, :1, :], scale.shape), rtol=1e-6)
    per_map = scale[:, 0, 0, :]
    assert len(np.unique(per_map.round(5))) > 100  # a different relaxed value for each (sample, channel)


# ---------------------------------------------------------------- the learned rate


def test_learned_rate_receives_the_finite_difference_gradient():
    """Gradients of Σ y∘r + regulariser for p_logit and the wrapped kernel, noise held fixed, in float64."""
    with backend.float64():
        inner = keras.layers.Dense(3, activation="tanh", dtype="float64")
        layer = kerasdrop.ConcreteDropout(
            inner, weight_regularizer=0.1, dropout_regularizer=0.2, temperature=0.5, seed=9, dtype="float64"
        )
        x = sample_input("ConcreteDropout", batch=3).astype("float64")
        layer.build(x.shape)
        state = utils.to_numpy(layer.seed_generator.state)
        weights = np.random.default_rng(1).normal(size=(3, 3))

        def loss():
            layer.seed_generator.state.assign(state)
            return keras.ops.sum(keras.ops.multiply(layer(x, training=True), weights)) + keras.ops.sum(layer.losses)

        utils.assert_gradients_match_finite_differences(loss, [layer.p_logit, inner.kernel], rtol=1e-4, atol=1e-8)
        (gradient,) = backend.gradients(loss, [layer.p_logit])
        assert abs(float(gradient)) > 1e-3


@pytest.mark.slow
def test_rate_changes_in_training_and_is_saved_exactly(tmp_path):
    keras.utils.set_random_seed(0)
    (x, y), (x_test, y_test) = load_digits("flat")
    concrete = kerasdrop.ConcreteDropout(
        keras.layers.Dense(32, activation="relu"), weight_regularizer=1e-6, dropout_regularizer=2.0 / len(x), seed=1
    )
    model = keras.Sequential([keras.Input((64,)), concrete, keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = concrete.rate
    assert initial == pytest.approx(0.1, rel=1e-5)
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    utils.assert_classifies_digits(model, x_test, y_test)
    assert abs(concrete.rate - initial) > 1e-3
    reloaded = utils.save_and_load(model, tmp_path)
    restored = reloaded.layers[0]
    assert isinstance(restored, kerasdrop.ConcreteDropout) and isinstance(restored.layer, keras.layers.Dense)
    assert restored.rate == concrete.rate
    np.testing.assert_array_equal(utils.to_numpy(restored.p_logit), utils.to_numpy(concrete.p_logit))
    for before, after in zip(model.weights, reloaded.weights, strict=True):
        np.testing.assert_array_equal(utils.to_numpy(before), utils.to_numpy(after))
    np.testing.assert_array_equal(reloaded.predict(x[:20], verbose=0), model.predict(x[:20], verbose=0))


@pytest.mark.slow
def test_spatial_variant_trains_on_digits():
    keras.utils.set_random_seed(0)
    (x, y), (x_test, y_test) = load_digits("image")
    concrete = kerasdrop.ConcreteSpatialDropout2D(
        keras.layers.Conv2D(8, 3, activation="relu"), dropout_regularizer=2.0 / len(x), seed=1
    )
    model = keras.Sequential([keras.Input((8, 8, 1)), concrete, keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = concrete.rate
    model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    utils.assert_classifies_digits(model, x_test, y_test)
    assert concrete.rate != initial


def test_rate_property_and_initial_range():
    layer = kerasdrop.ConcreteDropout(keras.layers.Dense(2), init_min=0.2, init_max=0.4, seed=3)
    layer.build((None, 3))
    assert isinstance(layer.rate, float)
    assert 0.2 - 1e-6 <= layer.rate <= 0.4 + 1e-6
    assert layer.rate == pytest.approx(float(special.expit(utils.to_numpy(layer.p_logit))), rel=1e-6)


def test_wrapper_exposes_its_weights():
    inner = keras.layers.Dense(2)
    layer = kerasdrop.ConcreteDropout(inner)
    layer.build((None, 3))
    assert sorted(w.name for w in layer.trainable_weights) == ["bias", "kernel", "p_logit"]
    assert layer.p_logit.name == "p_logit" and tuple(layer.p_logit.shape) == ()
    assert [w.name for w in layer.layer.weights] == ["kernel", "bias"]
    assert [w.name for w in layer.non_trainable_weights] == ["kl_factor"]


# ---------------------------------------------------------------- Monte Carlo mode
# New noise at each call and each fit step, seeds, mc and saving: tests/layers/test_contract.py.


@pytest.mark.parametrize("name", FAMILY)
def test_noise_is_drawn_per_example(name):
    assert not make(name).noise_shared_across_batch


@pytest.mark.slow
def test_mc_stays_stochastic_through_predict_reload_and_export(tmp_path):
    branches = {
        "ConcreteDropout": [keras.layers.Flatten(), kerasdrop.ConcreteDropout(keras.layers.Dense(4), mc=True)],
        "ConcreteSpatialDropout2D": kerasdrop.ConcreteSpatialDropout2D(keras.layers.Conv2D(2, 2), mc=True),
    }
    utils.assert_mc_branches_stay_stochastic(branches, sample_input("ConcreteSpatialDropout2D"), tmp_path)


# ---------------------------------------------------------------- config


def test_config_keeps_arguments_and_the_wrapped_layer():
    inner = keras.layers.Conv2D(2, 2, data_format="channels_first", name="inner")
    layer = kerasdrop.ConcreteSpatialDropout2D(inner, data_format="channels_first", temperature=0.5, init_max=0.2)
    config = layer.get_config()
    assert (config["data_format"], config["temperature"], config["init_max"]) == ("channels_first", 0.5, 0.2)
    utils.assert_config_round_trip(layer)
    restored = kerasdrop.ConcreteSpatialDropout2D.from_config(config)
    assert type(restored.layer) is keras.layers.Conv2D and restored.layer.get_config() == inner.get_config()
    assert "layer" in config  # from_config left the given dict intact


# ---------------------------------------------------------------- dtypes


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", FAMILY)
def test_dtype_policies(name, policy):
    layer = make(name, dtype=policy)
    utils.assert_dtype_policy(lambda dtype: layer, sample_input(name), policy)
    assert keras.backend.standardize_dtype(layer.p_logit.dtype) == layer.variable_dtype
    (loss,) = layer.losses
    if policy.startswith("mixed"):
        assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    assert np.isfinite(float(keras.ops.cast(loss, "float32")))


def test_no_nan_at_extreme_rates():
    x = sample_input("ConcreteDropout")
    for rate in (1e-6, 0.999):
        layer = kerasdrop.ConcreteDropout(keras.layers.Dense(3), init_min=rate, init_max=rate, temperature=0.01, seed=1)
        layer.build(x.shape)
        state = utils.to_numpy(layer.seed_generator.state)

        def loss(layer=layer, state=state):  # the same draw for the loss and its gradient
            layer.seed_generator.state.assign(state)
            return keras.ops.sum(layer(x, training=True)) + sum(layer.losses)

        assert np.isfinite(float(loss()))
        for gradient in backend.gradients(loss, layer.trainable_weights):
            assert np.all(np.isfinite(utils.to_numpy(gradient)))


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("cls", [kerasdrop.ConcreteDropout, kerasdrop.ConcreteSpatialDropout2D])
@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"weight_regularizer": -1e-6}, ValueError, "weight_regularizer"),
        ({"weight_regularizer": "1"}, TypeError, "weight_regularizer"),
        ({"dropout_regularizer": float("nan")}, ValueError, "dropout_regularizer"),
        ({"init_min": 0.0}, ValueError, "init_min"),
        ({"init_min": 1.0}, ValueError, "init_min"),
        ({"init_max": 1.5}, ValueError, "init_max"),
        ({"init_max": None}, TypeError, "init_max"),
        ({"init_min": 0.5, "init_max": 0.2}, ValueError, "init_min"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"temperature": True}, TypeError, "temperature"),
        ({"seed": 0.5}, TypeError, "seed"),
        ({"mc": None}, TypeError, "mc"),
    ],
)
def test_bad_arguments(cls, kwargs, error, argument):
    with pytest.raises(error, match=f"argument `{argument}`"):
        cls(keras.layers.Dense(2), **kwargs)


@pytest.mark.parametrize("layer", ["dense", None, keras.layers.Dense])
def test_layer_must_be_a_keras_layer(layer):
    with pytest.raises(TypeError, match="argument `layer`"):
        kerasdrop.ConcreteDropout(layer)


def test_layer_without_kernel_raises_at_build():
    with pytest.raises(ValueError, match="no trainable weight named `kernel`"):
        kerasdrop.ConcreteDropout(keras.layers.Activation("relu"))(np.ones((2, 3), "float32"))


def test_spatial_bad_data_format_and_rank():
    with pytest.raises(ValueError, match="argument `data_format`"):
        kerasdrop.ConcreteSpatialDropout2D(keras.layers.Conv2D(2, 2), data_format="NHWC")
    with pytest.raises(ValueError, match="ndim"):
        kerasdrop.ConcreteSpatialDropout2D(keras.layers.Conv2D(2, 2))(np.ones((2, 4, 4), "float32"))


@pytest.mark.parametrize("name", FAMILY)
def test_integer_inputs_raise(name):
    with pytest.raises(TypeError, match="floating-point inputs"):
        make(name)(sample_input(name).astype("int32"), training=True)
