"""kerasdrop.MCDropout and layers it does not know that draw noise in training: keras.applications'
``StochasticDepth`` and the user's own layers are sampled, warned about when their training call changes their
state, and left alone when they draw nothing; the model never changes."""

import warnings

import keras
import numpy as np
import pytest
from keras.src.applications import convnext  # StochasticDepth, and ConvNeXt with drop_path_rate

import kerasdrop
from tests import backend, utils

X = np.array([[1.0, -0.5, 2.0, 0.3], [0.2, 1.5, -1.0, 0.8]], "float32")


class Noisy(keras.layers.Layer):
    """Adds N(0, 1) noise in training."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(3)

    def call(self, x, training=False):
        if not training:
            return x
        return x + keras.random.normal(keras.ops.shape(x), seed=self.seed_generator)


class NoisyCounter(Noisy):
    """Adds noise in training, and counts its training calls in a non-trainable variable."""

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def call(self, x, training=False):
        if training:
            self.calls.assign(self.calls + 1.0)
        return super().call(x, training=training)


class Doubler(keras.layers.Layer):
    """Deterministic in training too: doubles its input."""

    def call(self, x, training=False):
        return x * 2.0 if training else x


def _unsampled_warnings(caught):
    return [str(item.message) for item in caught if "does not sample layer" in str(item.message)]


def _user_layers_model():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="dense")(inputs)
    hidden = keras.layers.Dropout(0.25, name="dropout")(hidden)
    hidden = NoisyCounter(name="counter")(hidden)
    hidden = Doubler(name="doubler")(hidden)
    outputs = Noisy(name="noisy")(hidden)
    return keras.Model(inputs, outputs)


def _model_state(model):
    return [utils.to_numpy(variable.value) for variable in model.variables], utils.layer_state(model)


def _assert_same_state(before, after):
    for old, new in zip(before[0], after[0], strict=True):
        np.testing.assert_array_equal(old, new)
    assert before[1] == after[1]


def _tiny_convnext():
    """keras.applications' ConvNeXt, four stages of one block each, with stochastic depth on its residual blocks."""
    keras.utils.set_random_seed(0)
    return convnext.ConvNeXt(
        depths=[1, 1, 1, 1],
        projection_dims=[8, 8, 8, 8],
        drop_path_rate=0.3,
        layer_scale_init_value=1.0,
        input_shape=(32, 32, 3),
        include_top=False,
        pooling="avg",
        weights=None,
    )


def _residual_model():
    inputs = keras.Input((4,))
    branch = keras.layers.Dense(4, activation="tanh", name="branch")(inputs)
    branch = convnext.StochasticDepth(0.3, name="drop_path")(branch)
    outputs = keras.layers.Add()([inputs, branch])
    return keras.Model(inputs, outputs)


_JAX_UNSEEDED = "StochasticDepth draws unseeded random numbers, which JAX cannot trace: it is warned about instead"


@pytest.mark.skipif(backend.BACKEND == "jax", reason=_JAX_UNSEEDED)
def test_convnext_stochastic_depth_moments_match_training_calls():
    model = _tiny_convnext()
    drop_paths = [layer.name for layer in model.layers if isinstance(layer, convnext.StochasticDepth)]
    assert len(drop_paths) == 3  # the first block has rate 0 (the rates rise linearly from 0)
    n = 1500
    mc = kerasdrop.MCDropout(model, samples=n, seed=1)
    assert mc.stochastic_layers == drop_paths
    images = np.linspace(0.0, 255.0, 2 * 32 * 32 * 3, dtype="float32").reshape(2, 32, 32, 3)
    samples = mc.predict(images, verbose=0, keep_samples=True).samples
    # n training calls in one: StochasticDepth draws per row, and nothing else mixes the rows.
    naive = utils.to_numpy(model(np.tile(images, (n, 1, 1, 1)), training=True)).reshape(samples.shape)
    assert np.var(samples, axis=0).min() > 0
    utils.assert_same_distribution(samples, naive)


@pytest.mark.skipif(backend.BACKEND == "jax", reason=_JAX_UNSEEDED)
def test_stochastic_depth_is_sampled_alone():
    model = _residual_model()
    samples = kerasdrop.MCDropout(model, samples=400, seed=2).predict(X, verbose=0, keep_samples=True).samples
    branch = utils.to_numpy(model.get_layer("branch")(X))
    # Each sample keeps the branch (scaled by 1 / 0.7) or drops it, for each row.
    kept = np.isclose(samples, X + branch / 0.7, atol=1e-5).all(-1)
    dropped = np.isclose(samples, X, atol=1e-6).all(-1)
    assert (kept | dropped).all()
    utils.assert_binomial_count(int(kept.sum()), kept.size, 0.7)


@pytest.mark.skipif(backend.BACKEND != "jax", reason="on JAX only: other backends sample StochasticDepth")
def test_unseeded_noise_is_warned_about_on_jax():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="found no noise layer"):
            kerasdrop.MCDropout(_residual_model(), samples=2)
    (message,) = _unsampled_warnings(caught)
    assert "'drop_path'" in message and "SeedGenerator" in message


def test_users_noise_is_sampled_and_stateful_noise_warned_about():
    model = _user_layers_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mc = kerasdrop.MCDropout(model, samples=2000, seed=2)
    (message,) = _unsampled_warnings(caught)
    assert "'counter'" in message and "stochastic_layers=[...]" in message and "kerasdrop layer" in message
    assert mc.stochastic_layers == ["dropout", "noisy"]  # not the counter, nor the doubler (it draws nothing)
    samples = mc.predict(X, verbose=0, keep_samples=True).samples
    assert samples.shape == (2000, *X.shape) and np.var(samples, axis=0).min() > 0


def test_noise_alone_has_unit_variance():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, Noisy(name="noisy")(inputs))
    samples = kerasdrop.MCDropout(model, samples=4000, seed=3).predict(X, verbose=0, keep_samples=True).samples
    utils.assert_mean_close(samples - X, 0.0, 1.0)
    utils.assert_variance_close(samples - X, 1.0, 3.0)


def test_named_layers_are_sampled_even_when_stateful():
    model = _user_layers_model()
    before = _model_state(model)
    mc = kerasdrop.MCDropout(model, samples=50, seed=4, stochastic_layers=["counter"])
    assert mc.stochastic_layers == ["counter"]
    assert np.var(mc.predict(X, verbose=0, keep_samples=True).samples, axis=0).min() > 0
    mc = kerasdrop.MCDropout(model, samples=2, stochastic_layers=[model.get_layer("noisy")])
    assert mc.stochastic_layers == ["noisy"]
    _assert_same_state(before, _model_state(model))


def test_model_is_unchanged_by_probing_and_sampling():
    model = _user_layers_model()
    before = _model_state(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mc = kerasdrop.MCDropout(model, samples=20, seed=5)
        assert mc.stochastic_layers == ["dropout", "noisy"]  # probed: the counter's training call ran, twice
        _assert_same_state(before, _model_state(model))
        mc.predict(X, verbose=0)
    _assert_same_state(before, _model_state(model))


def test_joint_draws_refuse_noise_drawn_in_the_users_code():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, Noisy(name="noisy")(inputs))
    with pytest.raises(ValueError, match="cannot share the noise of 'noisy' \\(Noisy\\)"):
        kerasdrop.MCDropout(model, samples=2, consistent=True)
