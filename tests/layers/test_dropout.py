"""The standard family: Dropout, GaussianDropout, StochasticDropout, SpatialDropout1D/2D/3D."""

import math

import keras
import numpy as np
import pytest

import kerasdrop
from tests import backend, utils
from tests.layers.every_layer import make

SPATIAL = {1: kerasdrop.SpatialDropout1D, 2: kerasdrop.SpatialDropout2D, 3: kerasdrop.SpatialDropout3D}

# The family's configurations in `tests.layers.every_layer`.
FAMILY = [
    "Dropout",
    "Dropout-weight_scaling",
    "GaussianDropout",
    "StochasticDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
]
# Inputs larger than the cases' own, for the checks that count dropped units.
INPUT_SHAPES = {
    "SpatialDropout1D": (4, 5, 8),
    "SpatialDropout2D": (4, 5, 5, 8),
    "SpatialDropout3D": (4, 3, 3, 3, 8),
}


def sample_input(name, seed=0):
    shape = INPUT_SHAPES.get(name, (8, 16))
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape).astype("float32")


# ---------------------------------------------------------------- identity at test time and at rate 0


@pytest.mark.parametrize("name", [n for n in FAMILY if n != "Dropout-weight_scaling"])
def test_identity_at_test_time(name):
    x = sample_input(name)
    layer = make(name, seed=1)
    np.testing.assert_array_equal(utils.to_numpy(layer(x)), x)
    np.testing.assert_array_equal(utils.to_numpy(layer(x, training=False)), x)


@pytest.mark.parametrize("scaling", ["inverted", "weight_scaling"])
@pytest.mark.parametrize("cls", [kerasdrop.Dropout, kerasdrop.GaussianDropout, *SPATIAL.values()])
def test_rate_zero_is_exact_identity(cls, scaling):
    name = cls.__name__
    x = sample_input(name)
    kwargs = {"scaling": scaling} if cls is not kerasdrop.GaussianDropout else {}
    layer = cls(0.0, seed=1, **kwargs)
    np.testing.assert_array_equal(utils.train_call(layer, x), x)
    np.testing.assert_array_equal(utils.to_numpy(layer(x)), x)


def test_stochastic_dropout_with_zero_rate_is_identity():
    x = sample_input("StochasticDropout")
    layer = kerasdrop.StochasticDropout(0.0, 0.0, seed=1)
    np.testing.assert_array_equal(utils.train_call(layer, x), x)


def test_weight_scaling_test_output_is_keep_times_x():
    x = sample_input("Dropout")
    layer = kerasdrop.Dropout(0.3, scaling="weight_scaling")
    np.testing.assert_allclose(utils.to_numpy(layer(x)), 0.7 * x, rtol=1e-6)


# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_dropout_statistics_inverted(rate):
    keep = 1.0 - rate
    x = np.ones((200, 500), "float32")
    y = utils.train_call(kerasdrop.Dropout(rate, seed=3), x)
    kept = y != 0
    utils.assert_binomial_count(kept.sum(), x.size, keep)
    np.testing.assert_allclose(y[kept], 1.0 / keep, rtol=1e-6)
    # Unbiased: E[y] = x, Var[y] = rate / keep for x = 1.
    utils.assert_mean_close(y, 1.0, math.sqrt(rate / keep))


@pytest.mark.parametrize("rate", [0.2, 0.7])
def test_dropout_statistics_weight_scaling(rate):
    keep = 1.0 - rate
    x = np.full((200, 500), 2.0, "float32")
    y = utils.train_call(kerasdrop.Dropout(rate, scaling="weight_scaling", seed=4), x)
    assert set(np.unique(y)) <= {0.0, 2.0}
    utils.assert_binomial_count((y != 0).sum(), x.size, keep)
    # Training mean equals the test-time output keep * x.
    test_output = utils.to_numpy(kerasdrop.Dropout(rate, scaling="weight_scaling")(x))
    utils.assert_mean_close(y, test_output.mean(), 2.0 * math.sqrt(keep * rate))


def test_dropout_matches_keras_dropout_statistics():
    """A drop-in for keras.layers.Dropout: same kept fraction, same scale, same test-time output."""
    x = np.ones((100, 400), "float32")
    ours = utils.train_call(kerasdrop.Dropout(0.4, seed=1), x)
    theirs = utils.to_numpy(keras.layers.Dropout(0.4, seed=1)(x, training=True))
    assert set(np.unique(ours)) == set(np.unique(theirs))
    for y in (ours, theirs):
        utils.assert_binomial_count((y != 0).sum(), x.size, 0.6)
    np.testing.assert_array_equal(utils.to_numpy(kerasdrop.Dropout(0.4)(x)), keras.layers.Dropout(0.4)(x))


@pytest.mark.parametrize("rate", [0.2, 0.5])
def test_gaussian_dropout_moments(rate):
    variance = rate / (1.0 - rate)
    x = np.ones((300, 300), "float32")
    y = utils.train_call(kerasdrop.GaussianDropout(rate, seed=5), x)
    utils.assert_mean_close(y, 1.0, math.sqrt(variance))
    utils.assert_variance_close(y, variance, 3.0 * variance**2)  # normal: mu4 = 3 sigma^4


def test_stochastic_dropout_rate_per_call_and_unbiased():
    """Each call drops one rate's worth of units; rates vary across calls with the given spread; E[y] = x."""
    mean_rate, stddev = 0.4, 0.1
    layer = kerasdrop.StochasticDropout(mean_rate, stddev, seed=6)
    x = np.ones((100, 100), "float32")
    rates, means = [], []
    for _ in range(60):
        y = utils.train_call(layer, x)
        kept = y[y != 0]
        # One rate per call: all kept units share one scale 1 / (1 - r).
        np.testing.assert_allclose(kept, kept[0], rtol=1e-6)
        rates.append(1.0 - 1.0 / kept[0])
        means.append(y.mean())
    rates = np.array(rates)
    utils.assert_mean_close(rates, mean_rate, stddev)
    assert np.all((rates >= 0) & (rates <= 0.95 + 1e-6))
    # The sample sd of n normal draws has standard error ~ sd / sqrt(2 (n - 1)).
    assert abs(rates.std(ddof=1) - stddev) < utils.SIGMAS * stddev / math.sqrt(2 * (len(rates) - 1))
    utils.assert_mean_close(means, 1.0, math.sqrt(0.95 / 0.05) / 100)  # sd of a mean of 1e4 units, worst rate


def test_stochastic_dropout_clips_rate():
    layer = kerasdrop.StochasticDropout(0.9, 0.5, seed=1)
    rates = np.array([float(layer.sample_rate()) for _ in range(200)])
    assert rates.min() == 0.0 and rates.max() == pytest.approx(0.95)
    assert np.all((rates >= 0) & (rates <= 0.95))


# ---------------------------------------------------------------- structure


def test_noise_shape_shares_mask_over_broadcast_axes():
    x = np.ones((6, 7, 9), "float32")
    y = utils.train_call(kerasdrop.Dropout(0.5, noise_shape=(None, 1, None), seed=2), x)
    np.testing.assert_array_equal(y, np.broadcast_to(y[:, :1, :], y.shape))
    assert 0 < (y == 0).mean() < 1


def test_noise_shape_with_explicit_sizes():
    x = np.ones((6, 7, 9), "float32")
    y = utils.train_call(kerasdrop.Dropout(0.5, noise_shape=(1, 7, 1), seed=2), x)
    np.testing.assert_array_equal(y, np.broadcast_to(y[:1, :, :1], y.shape))


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_spatial_dropout_drops_whole_channels(rank, data_format):
    spatial = (5,) * rank
    channels = 32
    shape = (16, *spatial, channels) if data_format == "channels_last" else (16, channels, *spatial)
    x = np.ones(shape, "float32")
    y = utils.train_call(SPATIAL[rank](0.5, data_format=data_format, seed=3), x)
    channel_axis = -1 if data_format == "channels_last" else 1
    y = np.moveaxis(y, channel_axis, 1).reshape(16, channels, -1)
    # Every (sample, channel) map is all dropped or all kept at 1 / keep.
    per_map = y[:, :, :1]
    np.testing.assert_array_equal(y, np.broadcast_to(per_map, y.shape))
    assert set(np.unique(per_map)) <= {0.0, 2.0}
    utils.assert_binomial_count((per_map != 0).sum(), 16 * channels, 0.5)


def test_spatial_dropout_default_data_format_follows_keras_config():
    assert kerasdrop.SpatialDropout2D(0.5).data_format == keras.config.image_data_format()


def test_spatial_dropout_weight_scaling():
    x = np.ones((4, 3, 3, 8), "float32")
    layer = kerasdrop.SpatialDropout2D(0.25, scaling="weight_scaling", seed=1)
    assert set(np.unique(utils.train_call(layer, x))) <= {0.0, 1.0}
    np.testing.assert_allclose(utils.to_numpy(layer(x)), 0.75 * x)


# ---------------------------------------------------------------- stochastic depth


@pytest.mark.parametrize("shape", [(4000,), (2000, 3), (1000, 3, 4), (500, 2, 3, 4), (400, 2, 2, 3, 2)])
@pytest.mark.parametrize("scaling", ["inverted", "weight_scaling"])
def test_drop_path_drops_whole_samples(shape, scaling):
    """One draw per sample, constant over every other axis; the count of dropped samples is Binomial(n, rate)."""
    rate = 0.25
    x = np.random.default_rng(0).uniform(1.0, 2.0, size=shape).astype("float32")
    y = utils.train_call(kerasdrop.DropPath(rate, scaling=scaling, seed=5), x).reshape(shape[0], -1)
    ratio = y / x.reshape(shape[0], -1)
    kept_value = 1.0 / (1.0 - rate) if scaling == "inverted" else 1.0
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:, :1], ratio.shape), rtol=1e-6)
    assert np.all((ratio[:, 0] == 0) | np.isclose(ratio[:, 0], kept_value, rtol=1e-6))
    utils.assert_binomial_count(int((ratio[:, 0] == 0).sum()), shape[0], rate)


def test_drop_path_at_test_time_is_identity_or_keep_times_x():
    x = np.random.default_rng(1).normal(size=(3, 4, 5)).astype("float32")
    np.testing.assert_array_equal(utils.to_numpy(kerasdrop.DropPath(0.3)(x)), x)
    np.testing.assert_allclose(utils.to_numpy(kerasdrop.DropPath(0.3, scaling="weight_scaling")(x)), 0.7 * x)
    assert kerasdrop.StochasticDepth is kerasdrop.DropPath


def test_drop_path_in_a_residual_block_gives_the_identity_for_dropped_samples():
    inputs = keras.Input((6,))
    branch = keras.layers.Dense(6, kernel_initializer="ones")(inputs)
    model = keras.Model(inputs, keras.layers.Add()([inputs, kerasdrop.DropPath(0.5, seed=2)(branch)]))
    x = np.random.default_rng(2).normal(size=(400, 6)).astype("float32")
    y = utils.to_numpy(model(x, training=True))
    dropped = np.all(y == x, axis=1)
    kept = np.all(np.isclose(y, x + 2.0 * x.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-5), axis=1)
    assert np.all(dropped | kept)
    utils.assert_binomial_count(int(dropped.sum()), 400, 0.5)


def test_drop_path_rates_follow_the_linear_schedule():
    assert kerasdrop.drop_path_rates(5, 0.2) == [0.2 * i / 4 for i in range(5)]
    assert kerasdrop.drop_path_rates(5, 0.2)[0] == 0.0 and kerasdrop.drop_path_rates(5, 0.2)[-1] == 0.2
    assert kerasdrop.drop_path_rates(1, 0.5) == [0.0]
    assert all(isinstance(rate, float) for rate in kerasdrop.drop_path_rates(3, 0.1))
    for kwargs, name in [({"depth": 0, "max_rate": 0.1}, "depth"), ({"depth": 3, "max_rate": 1.0}, "max_rate")]:
        with pytest.raises(ValueError, match=name):
            kerasdrop.drop_path_rates(**kwargs)
    with pytest.raises(TypeError, match="depth"):
        kerasdrop.drop_path_rates(2.5, 0.1)


def test_drop_path_refuses_scalars():
    with pytest.raises(ValueError, match="rank >= 1"):
        kerasdrop.DropPath(0.5)(np.float32(1.0), training=True)


# ---------------------------------------------------------------- seeds, non-finite inputs
# New noise at each call and each fit step, and the same noise from the same seed: tests/layers/test_contract.py.


def test_different_seeds_differ():
    x = sample_input("Dropout")
    a = utils.train_call(kerasdrop.Dropout(0.5, seed=1), x)
    b = utils.train_call(kerasdrop.Dropout(0.5, seed=2), x)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", [n for n in FAMILY if n != "GaussianDropout"])
def test_dropped_inf_and_nan_are_zero(name):
    utils.assert_dropped_non_finite_values_are_zero(make(name, seed=3), sample_input(name))


class FrozenMaskDense(keras.layers.Dense):
    """A Dense layer whose input mask repeats at every step (an int seed): what the `fit` check must catch, even
    though its weights would change under a training optimizer and `fit` would reorder a shuffled batch."""

    def call(self, inputs, training=False):
        if training:
            inputs = keras.random.dropout(inputs, 0.5, seed=7)
        return super().call(inputs)


@pytest.mark.slow
def test_fresh_noise_check_fails_when_the_noise_repeats():
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    with pytest.raises(AssertionError, match="repeated the same noise"):
        utils.assert_fresh_noise_in_fit(FrozenMaskDense(4), x)


# ---------------------------------------------------------------- Monte Carlo mode


@pytest.mark.parametrize("name", FAMILY)
def test_mc_layer_is_stochastic_without_training(name):
    x = sample_input(name)
    layer = make(name, mc=True)
    assert not np.array_equal(utils.to_numpy(layer(x)), utils.to_numpy(layer(x)))


def test_mc_uses_training_formula_with_weight_scaling():
    x = np.ones((50, 50), "float32")
    y = utils.to_numpy(kerasdrop.Dropout(0.5, scaling="weight_scaling", mc=True, seed=1)(x))
    assert set(np.unique(y)) == {0.0, 1.0}


def _mlp(layer):
    return keras.Sequential([keras.Input((16,)), keras.layers.Dense(8), layer, keras.layers.Dense(3)])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Dropout", "GaussianDropout", "StochasticDropout"])
def test_mc_stays_stochastic_through_predict_reload_and_export(name, tmp_path):
    utils.assert_mc_stays_stochastic(_mlp(make(name, mc=True)), sample_input("Dropout"), tmp_path)


@pytest.mark.slow
def test_spatial_mc_stays_stochastic_through_predict_reload_and_export(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, 3),
            kerasdrop.SpatialDropout2D(0.5, mc=True),
            keras.layers.Flatten(),
        ]
    )
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 3)).astype("float32")
    utils.assert_mc_stays_stochastic(model, x, tmp_path)


def test_functional_training_true_is_not_mc():
    """The Keras 3 pitfall we fix: `layer(x, training=True)` in a functional model is deterministic in predict."""
    inputs = keras.Input((16,))
    outputs = kerasdrop.Dropout(0.5)(inputs, training=True)
    model = keras.Model(inputs, outputs)
    x = sample_input("Dropout")
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    kerasdrop.set_mc(model, True)
    assert not np.array_equal(model.predict(x, verbose=0), x)


def test_mc_flag_is_saved_in_config():
    layer = kerasdrop.Dropout(0.5, mc=True)
    assert layer.get_config()["mc"] is True
    assert kerasdrop.Dropout.from_config(layer.get_config()).mc is True


# ---------------------------------------------------------------- config and saving


@pytest.mark.parametrize("name", FAMILY)
def test_config_round_trip(name):
    utils.assert_config_round_trip(make(name, seed=3, mc=True, name="noise"))


def test_config_round_trip_with_noise_shape_and_data_format():
    utils.assert_config_round_trip(kerasdrop.Dropout(0.3, noise_shape=(None, 1, 4), scaling="weight_scaling"))
    utils.assert_config_round_trip(kerasdrop.SpatialDropout2D(0.3, data_format="channels_first"))


@pytest.mark.slow
def test_keras_file_round_trip_keeps_layers_and_outputs(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 3)),
            keras.layers.Conv2D(4, 3),
            kerasdrop.SpatialDropout2D(0.2, scaling="weight_scaling", seed=1),
            keras.layers.Flatten(),
            kerasdrop.Dropout(0.3, noise_shape=(None, 1), seed=2),
            kerasdrop.GaussianDropout(0.2),
            kerasdrop.StochasticDropout(0.3, 0.05),
            keras.layers.Dense(2),
        ]
    )
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 3)).astype("float32")
    reloaded = utils.save_and_load(model, tmp_path)
    assert [type(layer) for layer in reloaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.get_config() for layer in reloaded.layers] == [layer.get_config() for layer in model.layers]
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


# ---------------------------------------------------------------- dtypes and numerics


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", FAMILY)
def test_dtype_policies(name, policy):
    utils.assert_dtype_policy(lambda **kw: make(name, **kw), sample_input(name), policy)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "bfloat16"])
def test_no_nan_at_rate_close_to_one(policy):
    x = np.ones((64, 256), "float32")
    for layer in (
        kerasdrop.Dropout(0.999, dtype=policy, seed=1),
        kerasdrop.Dropout(0.999, scaling="weight_scaling", dtype=policy, seed=1),
        kerasdrop.GaussianDropout(0.999, dtype=policy, seed=1),
        kerasdrop.StochasticDropout(0.999, 0.5, dtype=policy, seed=1),
        kerasdrop.SpatialDropout1D(0.999, dtype=policy, seed=1),
    ):
        xin = x.reshape(64, 16, 16) if isinstance(layer, kerasdrop.SpatialDropout1D) else x
        for output in (layer(xin, training=True), layer(xin)):
            assert np.all(np.isfinite(utils.to_numpy(keras.ops.cast(output, "float32"))))


def test_low_precision_keeps_exact_keep_probability():
    """Masks are drawn in float32, so bfloat16 inputs still keep units with probability keep (0.999 is 1 in bf16)."""
    x = np.ones((500, 400), "float32")
    y = utils.to_numpy(keras.ops.cast(kerasdrop.Dropout(0.99, dtype="bfloat16", seed=2)(x, training=True), "float32"))
    utils.assert_binomial_count((y != 0).sum(), x.size, 0.01)


def test_gradient_flows_through_kept_units_only():
    y, gradient = utils.training_output_and_input_gradient(kerasdrop.Dropout(0.5, seed=1), np.ones((10, 20), "float32"))
    assert 0 < np.count_nonzero(y) < y.size
    np.testing.assert_allclose(gradient, y)  # d(x m / keep)/dx = m / keep = y for x = 1


# ---------------------------------------------------------------- errors


BAD_RATES = [
    (1.0, ValueError),
    (1.5, ValueError),
    (-0.1, ValueError),
    (float("nan"), ValueError),
    (float("inf"), ValueError),
    (True, TypeError),
    ("0.5", TypeError),
    (None, TypeError),
]


@pytest.mark.parametrize(("rate", "error"), BAD_RATES)
@pytest.mark.parametrize(
    "cls", [kerasdrop.Dropout, kerasdrop.GaussianDropout, *SPATIAL.values()], ids=lambda c: getattr(c, "__name__", c)
)
def test_bad_rate(cls, rate, error):
    with pytest.raises(error, match=r"argument `rate`.*Received: rate="):
        cls(rate)


@pytest.mark.parametrize(("rate", "error"), BAD_RATES)
def test_bad_mean_rate(rate, error):
    with pytest.raises(error, match="`mean_rate`"):
        kerasdrop.StochasticDropout(rate, 0.1)


@pytest.mark.parametrize(("stddev", "error"), [(-0.1, ValueError), (float("nan"), ValueError), ("x", TypeError)])
def test_bad_stddev(stddev, error):
    with pytest.raises(error, match="`stddev`"):
        kerasdrop.StochasticDropout(0.5, stddev)


def test_error_message_format():
    with pytest.raises(ValueError) as info:
        kerasdrop.Dropout(1.5)
    assert str(info.value) == (
        "Invalid value received for argument `rate`. Expected a float value between 0 and 1 (1 excluded). "
        "Received: rate=1.5"
    )


@pytest.mark.parametrize(("seed", "error"), [(1.5, TypeError), ("1", TypeError), (True, TypeError), ([1], TypeError)])
def test_bad_seed(seed, error):
    with pytest.raises(error, match="`seed`"):
        kerasdrop.Dropout(0.5, seed=seed)


@pytest.mark.parametrize("mc", [1, "yes", None])
def test_bad_mc(mc):
    with pytest.raises(TypeError, match="`mc`"):
        kerasdrop.Dropout(0.5, mc=mc)


@pytest.mark.parametrize(("scaling", "error"), [("weights", ValueError), ("", ValueError), (None, TypeError)])
def test_bad_scaling(scaling, error):
    with pytest.raises(error, match="`scaling`"):
        kerasdrop.Dropout(0.5, scaling=scaling)
    with pytest.raises(error, match="`scaling`"):
        kerasdrop.SpatialDropout2D(0.5, scaling=scaling)


@pytest.mark.parametrize(
    ("noise_shape", "error"),
    [((0, 1), ValueError), ((-1, None), ValueError), ((1.5,), TypeError), ("abc", TypeError), (5, TypeError)],
)
def test_bad_noise_shape(noise_shape, error):
    with pytest.raises(error, match="`noise_shape`"):
        kerasdrop.Dropout(0.5, noise_shape=noise_shape)


@pytest.mark.parametrize("noise_shape", [(None, 3), (None,), (None, 1, 1)])
def test_noise_shape_not_broadcastable(noise_shape):
    with pytest.raises(ValueError, match="noise_shape"):
        kerasdrop.Dropout(0.5, noise_shape=noise_shape)(np.ones((2, 5), "float32"), training=True)
    with pytest.raises(ValueError, match="noise_shape"):
        keras.Sequential([keras.Input((5,)), kerasdrop.Dropout(0.5, noise_shape=noise_shape)])
    with pytest.raises(ValueError, match="noise_shape"):
        kerasdrop.StochasticDropout(0.3, 0.1, noise_shape=noise_shape)(np.ones((2, 5), "float32"), training=True)


@pytest.mark.parametrize(
    ("data_format", "error"), [("NHWC", ValueError), ("channels_middle", ValueError), (3, TypeError)]
)
def test_bad_data_format(data_format, error):
    with pytest.raises(error, match="`data_format`"):
        kerasdrop.SpatialDropout2D(0.5, data_format=data_format)


@pytest.mark.parametrize(("rank", "shape"), [(1, (2, 3)), (2, (2, 3, 4)), (3, (2, 3, 4, 5))])
def test_spatial_wrong_rank(rank, shape):
    with pytest.raises(ValueError, match="ndim"):
        SPATIAL[rank](0.5)(np.ones(shape, "float32"))


@pytest.mark.parametrize("name", FAMILY)
def test_integer_inputs_raise(name):
    x = sample_input(name).astype("int32")
    with pytest.raises(TypeError, match="floating-point inputs"):
        make(name)(x, training=True)


def test_noise_shared_across_batch_flags():
    assert not kerasdrop.Dropout(0.5).noise_shared_across_batch
    assert not kerasdrop.Dropout(0.5, noise_shape=(None, 1)).noise_shared_across_batch
    assert kerasdrop.Dropout(0.5, noise_shape=(1, None)).noise_shared_across_batch
    assert kerasdrop.StochasticDropout(0.5, 0.1).noise_shared_across_batch
    assert not kerasdrop.SpatialDropout2D(0.5).noise_shared_across_batch
    assert not kerasdrop.GaussianDropout(0.5).noise_shared_across_batch
    assert not kerasdrop.DropPath(0.5).noise_shared_across_batch


# ---------------------------------------------------------------- properties over random arguments

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(rate=st.floats(0.0, 0.99), seed=st.integers(0, 2**31 - 1), weight_scaling=st.booleans())
def test_every_output_is_zero_or_the_scaled_input(rate, seed, weight_scaling):
    x = np.random.default_rng(seed).uniform(0.5, 1.5, size=(7, 9)).astype("float32")
    scaling = "weight_scaling" if weight_scaling else "inverted"
    y = utils.train_call(kerasdrop.Dropout(rate, seed=seed, scaling=scaling), x)
    scale = 1.0 if weight_scaling else 1.0 / (1.0 - rate)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] * scale, rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(rate=st.one_of(st.floats().filter(lambda r: not 0.0 <= r < 1.0), st.integers().filter(lambda r: r not in (0,))))
def test_any_rate_outside_unit_interval_is_refused(rate):
    with pytest.raises(ValueError, match=r"Received: rate="):
        kerasdrop.Dropout(rate)


# ---------------------------------------------------------------- PyTorch: unseeded masks from torch's generator


@pytest.mark.skipif(backend.BACKEND != "torch", reason="only PyTorch draws unseeded masks from a global generator")
def test_unseeded_layers_on_torch_draw_from_the_global_generator_seeded_by_keras():
    x = np.ones((200, 500), "float32")
    layer = kerasdrop.Dropout(0.3)
    state = utils.to_numpy(layer.seed_generator.state).copy()
    keras.utils.set_random_seed(3)
    first = utils.train_call(layer, x)
    np.testing.assert_array_equal(utils.to_numpy(layer.seed_generator.state), state)  # the layer's state is not read
    keras.utils.set_random_seed(3)
    np.testing.assert_array_equal(utils.train_call(kerasdrop.Dropout(0.3), x), first)
    utils.assert_binomial_count(np.count_nonzero(first), first.size, 0.7)
    assert set(np.unique(first)) == {0.0, np.float32(1.0) * np.float32(1.0 / 0.7)}
    import torch

    inputs = torch.ones((20, 30), requires_grad=True)
    output = layer(inputs, training=True)
    output.sum().backward()
    np.testing.assert_array_equal(inputs.grad.numpy(), (output.detach().numpy() != 0) * np.float32(1.0 / 0.7))
    spatial = utils.train_call(kerasdrop.SpatialDropout2D(0.5, seed=None), np.ones((40, 3, 3, 8), "float32"))
    assert np.all(spatial == spatial[:, :1, :1, :]) and set(np.unique(spatial)) == {0.0, 2.0}
