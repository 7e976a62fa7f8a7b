"""Pooling dropout and Max-Drop: MaxPoolingDropout2D, AvgPoolingDropout2D, MaxDrop2D."""

import functools
import itertools
import math

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop.layers import pooling
from kerasdrop.layers.pooling import sorting_network
from tests import backend, utils
from tests.layers.every_layer import beyond_the_cases, make

# (pool_size, strides, padding) covering odd sizes, overlapping and gapped windows, and both paddings.
GEOMETRIES = [
    ((2, 2), None, "valid"),
    ((2, 2), None, "same"),
    ((3, 3), (2, 2), "valid"),
    ((3, 3), (2, 2), "same"),
    ((3, 2), (1, 2), "same"),
    ((2, 3), (3, 1), "valid"),
    ((2, 2), (3, 3), "same"),
]
FORMATS = ["channels_last", "channels_first"]

# The family's configurations in `tests.layers.every_layer`.
FAMILY = ["MaxPoolingDropout2D", "AvgPoolingDropout2D", "MaxDrop2D", "MaxDrop2D-channel"]


def sample_input(shape=(4, 6, 7, 3), seed=0, low=0.5, high=1.5):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype("float32")


def to_last(x, data_format):
    return x if data_format == "channels_last" else np.transpose(x, (0, 2, 3, 1))


def to_format(x, data_format):
    return x if data_format == "channels_last" else np.transpose(x, (0, 3, 1, 2))


# ---------------------------------------------------------------- NumPy references


def regions(x, pool_size, strides, padding):
    """Pooling regions of a channels_last array: shape (batch, out_rows, out_cols, channels, n), NaN = padding."""
    strides = strides or pool_size
    batch, height, width, channels = x.shape
    starts = []
    for length, pool, stride in zip((height, width), pool_size, strides, strict=True):
        if padding == "valid":
            out, low = (length - pool) // stride + 1, 0
        else:
            out = math.ceil(length / stride)
            low = max((out - 1) * stride + pool - length, 0) // 2
        starts.append([t * stride - low for t in range(out)])
    result = np.full((batch, len(starts[0]), len(starts[1]), channels, pool_size[0] * pool_size[1]), np.nan)
    for (i, top), (j, left) in itertools.product(enumerate(starts[0]), enumerate(starts[1])):
        for k, (di, dj) in enumerate(itertools.product(range(pool_size[0]), range(pool_size[1]))):
            row, col = top + di, left + dj
            if 0 <= row < height and 0 <= col < width:
                result[:, i, j, :, k] = x[:, row, col, :]
    return result


def enumerated_moments(windows, rate, dropped_is_zero=False):
    """First and second moments of the training output, by enumerating every mask of every region.

    ``dropped_is_zero=False``: the largest kept unit (0 when all are dropped), the layer's definition.
    ``dropped_is_zero=True``: the paper's literal ``max(x * mask)`` over the region's real units.
    """
    n = windows.shape[-1]
    real = ~np.isnan(windows)
    mean = np.zeros(windows.shape[:-1])
    second = np.zeros(windows.shape[:-1])
    for bits in itertools.product((False, True), repeat=n):
        kept = np.array(bits) & real
        # Padded positions are not units: a mask that "keeps" one of them has probability 0.
        probability = np.prod(np.where(real, np.where(np.array(bits), 1.0 - rate, rate), np.where(bits, 0.0, 1.0)), -1)
        if dropped_is_zero:
            values = np.where(real, np.where(kept, windows, 0.0), -np.inf).max(-1)
        else:
            values = np.where(kept, windows, -np.inf).max(-1)
            values = np.where(kept.any(-1), values, 0.0)
        mean += probability * values
        second += probability * values**2
    return mean, second


def pwp_numpy(windows, rate):
    """Wu & Gu's weighted pooling, written directly: sort each region, sum keep * rate^(m - i) * a_i."""
    keep = 1.0 - rate
    out = np.zeros(windows.shape[:-1])
    for index in np.ndindex(*out.shape):
        values = np.sort(windows[index][~np.isnan(windows[index])])
        m = values.size
        out[index] = sum(keep * rate ** (m - i) * a for i, a in enumerate(values, start=1))
    return out


def pooled(layer, x, training):
    return utils.to_numpy(layer(x, training=training))


# ---------------------------------------------------------------- sorting network


@pytest.mark.parametrize("n", range(1, 17))
def test_sorting_network_sorts_every_binary_input(n):
    """0-1 principle: a comparator network that sorts every 0/1 sequence sorts every sequence."""
    values = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype("int8")
    for i, j in sorting_network(n):
        values[:, i], values[:, j] = np.minimum(values[:, i], values[:, j]), np.maximum(values[:, i], values[:, j])
    assert np.all(np.diff(values, axis=1) >= 0)


# ---------------------------------------------------------------- max-pooling dropout: test time


@pytest.mark.parametrize("block_bytes", [None, 100], ids=["whole", "row-blocks"])
@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(("pool_size", "strides", "padding"), GEOMETRIES)
def test_probabilistic_weighted_pooling_is_enumerated_expectation(
    pool_size, strides, padding, data_format, block_bytes, monkeypatch
):
    """Non-negative inputs: PWP = E[max(x * mask)] over every mask of each region (the paper's claim).

    With ``block_bytes`` lowered, the output is computed in blocks of rows (uneven ones included), as large outputs
    are: every block edge must give the same values.
    """
    if block_bytes is not None:
        monkeypatch.setattr(pooling, "_BLOCK_BYTES", block_bytes)
    rate = 0.3
    x = sample_input((2, 7, 5, 3), low=0.0, high=2.0)
    x[0, 0, 0, 0] = 0.0  # ties and zeros
    x[1, 2, :, 1] = 1.0
    layer = kerasdrop.MaxPoolingDropout2D(rate, pool_size, strides, padding, data_format=data_format)
    output = to_last(pooled(layer, to_format(x, data_format), training=False), data_format)
    windows = regions(x, pool_size, strides, padding)
    expected, _ = enumerated_moments(windows, rate, dropped_is_zero=True)
    np.testing.assert_allclose(output, expected, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(output, pwp_numpy(windows, rate), rtol=2e-6, atol=1e-6)


def test_row_blocks_follow_the_pooled_size(monkeypatch):
    """Blocks of about `_BLOCK_BYTES` of output, at most one per output row; a batch of 32 when it is unknown."""
    monkeypatch.setattr(pooling, "_BLOCK_BYTES", 1024)
    blocks = functools.partial(pooling._row_blocks, pool_size=(2, 2), strides=(2, 2), padding="valid")
    # 8 x 4 pooled outputs x 3 channels x 4 bytes = 384 bytes per example.
    assert blocks(keras.KerasTensor((1, 16, 8, 3)), data_format="channels_last") == 1
    assert blocks(keras.KerasTensor((8, 16, 8, 3)), data_format="channels_last") == 3
    assert blocks(keras.KerasTensor((8, 3, 16, 8)), data_format="channels_first") == 3
    assert blocks(keras.KerasTensor((None, 16, 8, 3)), data_format="channels_last") == 8  # 32 * 384 / 1024 = 12
    assert blocks(keras.KerasTensor((8, None, 8, 3)), data_format="channels_last") == 1
    assert blocks(keras.KerasTensor((8, 16, 8, 3), dtype="float16"), data_format="channels_last") == 2


def traced_with_unknown_batch(function, example):
    """``function`` traced for inputs shaped like ``example`` but with an unknown batch size: a ``tf.function`` with
    batch None on TensorFlow, a ``jax.export`` with a symbolic batch (as Keras's JAX export does) on JAX."""
    if backend.BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function, input_signature=[tf.TensorSpec((None, *example.shape[1:]), example.dtype)])
    import jax

    (batch,) = jax.export.symbolic_shape("batch")
    spec = jax.ShapeDtypeStruct((batch, *example.shape[1:]), example.dtype)
    return jax.export.export(jax.jit(function))(spec).call


@pytest.mark.skipif(
    backend.BACKEND == "torch", reason="PyTorch runs a layer on tensors of known shape: no trace has an unknown batch"
)
def test_row_blocks_with_unknown_batch(monkeypatch):
    """Traced with an unknown batch (as in fit and predict on TensorFlow, or a JAX export), the blocked output still
    matches the formula."""
    monkeypatch.setattr(pooling, "_BLOCK_BYTES", 100)
    x = sample_input((3, 8, 6, 2), low=-1.0, high=1.0)
    layer = kerasdrop.MaxPoolingDropout2D(0.3)
    blocks, row_blocks = [], pooling._row_blocks

    def recorded_row_blocks(*args):
        blocks.append(row_blocks(*args))
        return blocks[-1]

    monkeypatch.setattr(pooling, "_row_blocks", recorded_row_blocks)
    traced = traced_with_unknown_batch(lambda v: layer(v), x)
    expected = pwp_numpy(regions(x, (2, 2), (2, 2), "valid"), 0.3)
    np.testing.assert_allclose(utils.to_numpy(traced(x)), expected, rtol=2e-6, atol=1e-6)
    # Sized for 32 examples of 96 bytes of output in blocks of 100 bytes: one block per output row (a batch of 3
    # known while tracing would give 3 blocks).
    assert blocks == [4]


@pytest.mark.parametrize(("pool_size", "strides", "padding"), [GEOMETRIES[1], GEOMETRIES[3], GEOMETRIES[4]])
def test_probabilistic_weighted_pooling_with_negative_inputs(pool_size, strides, padding):
    """Any sign: PWP is the expectation of the largest kept unit (0 if all are dropped); padding never counts."""
    rate = 0.4
    x = sample_input((2, 5, 7, 2), low=-2.0, high=1.0)
    x[:, :2, :2, :] = -1.0 - x[:, :2, :2, :]  # an all-negative corner, next to the "same" padding
    layer = kerasdrop.MaxPoolingDropout2D(rate, pool_size, strides, padding)
    windows = regions(x, pool_size, strides, padding)
    expected, _ = enumerated_moments(windows, rate)
    np.testing.assert_allclose(pooled(layer, x, training=False), expected, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(("pool_size", "strides", "padding"), GEOMETRIES[:4])
def test_scaled_inference_is_keep_times_max(pool_size, strides, padding, data_format):
    x = sample_input((2, 7, 5, 3), low=-1.0, high=1.0)
    layer = kerasdrop.MaxPoolingDropout2D(0.25, pool_size, strides, padding, data_format, inference="scaled")
    keras_max = keras.layers.MaxPooling2D(pool_size, strides, padding, data_format)
    x = to_format(x, data_format)
    np.testing.assert_allclose(pooled(layer, x, False), 0.75 * utils.to_numpy(keras_max(x)), rtol=1e-6)


def test_rate_zero_is_max_pooling():
    x = sample_input(low=-1.0)
    expected = utils.to_numpy(keras.layers.MaxPooling2D(2, padding="same")(x))
    for inference in ("probabilistic", "scaled"):
        layer = kerasdrop.MaxPoolingDropout2D(0.0, padding="same", inference=inference, seed=1)
        np.testing.assert_array_equal(pooled(layer, x, False), expected)
        np.testing.assert_array_equal(pooled(layer, x, True), expected)


# ---------------------------------------------------------------- max-pooling dropout: training


@pytest.mark.parametrize(
    ("pool_size", "strides", "padding", "low"), [((2, 2), None, "valid", 0.0), ((3, 2), (1, 2), "same", -1.0)]
)
def test_training_mean_converges_to_probabilistic_weighted_pooling(pool_size, strides, padding, low):
    """The mean of many training outputs lies within 5 sigma (exact sigma, from the enumeration) of PWP."""
    rate, copies = 0.35, 4000
    x = sample_input((1, 4, 5, 2), seed=3, low=low, high=1.0)
    layer = kerasdrop.MaxPoolingDropout2D(rate, pool_size, strides, padding, seed=5)
    samples = pooled(layer, np.repeat(x, copies, axis=0), training=True)
    test_output = pooled(layer, x, training=False)[0]
    mean, second = enumerated_moments(regions(x, pool_size, strides, padding), rate)
    np.testing.assert_allclose(test_output, mean[0], rtol=2e-6, atol=1e-6)
    utils.assert_means_close(samples, test_output, np.sqrt(np.maximum(second[0] - mean[0] ** 2, 0.0)))


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(("pool_size", "strides", "padding"), GEOMETRIES)
def test_training_output_is_largest_kept_unit(pool_size, strides, padding, data_format):
    """Each training output is 0 or a real unit of its region; the region's max survives with probability keep."""
    rate = 0.3
    x = sample_input((40, 7, 5, 3), low=-1.0, high=1.0)
    layer = kerasdrop.MaxPoolingDropout2D(rate, pool_size, strides, padding, data_format=data_format, seed=2)
    output = to_last(pooled(layer, to_format(x, data_format), training=True), data_format)
    windows = regions(x, pool_size, strides, padding)
    member = np.any(windows == output[..., None], axis=-1)
    assert np.all(member | (output == 0))
    assert np.all((output <= np.nanmax(windows, -1)) | (output == 0))
    utils.assert_binomial_count((output == np.nanmax(windows, -1)).sum(), output.size, 1.0 - rate)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(("pool_size", "strides", "padding"), GEOMETRIES)
@pytest.mark.parametrize("name", ["MaxPoolingDropout2D", "AvgPoolingDropout2D"])
def test_output_shape_matches_keras_pooling(name, pool_size, strides, padding, data_format):
    x = to_format(sample_input((2, 7, 5, 3)), data_format)
    layer = make(name, pool_size=pool_size, strides=strides, padding=padding, data_format=data_format)
    keras_cls = keras.layers.MaxPooling2D if name == "MaxPoolingDropout2D" else keras.layers.AveragePooling2D
    expected = keras_cls(pool_size, strides, padding, data_format).compute_output_shape(x.shape)
    assert layer.compute_output_shape(x.shape) == expected
    assert pooled(layer, x, True).shape == expected
    assert pooled(layer, x, False).shape == expected


def test_unknown_spatial_sizes():
    """Rows and columns unknown when tracing (None): shapes come from keras.ops.shape at run time."""
    x = sample_input((2, 7, 5, 3))
    for layer in (
        kerasdrop.MaxPoolingDropout2D(0.3, 3, 2, "same"),
        kerasdrop.AvgPoolingDropout2D(0.3, 3, 2, "same"),
        kerasdrop.MaxDrop2D(0.3),
    ):
        inputs = keras.Input((None, None, 3))
        model = keras.Model(inputs, layer(inputs))
        np.testing.assert_allclose(model.predict(x, verbose=0), pooled(layer, x, False), rtol=1e-6)


# ---------------------------------------------------------------- average-pooling dropout


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(("pool_size", "strides", "padding"), GEOMETRIES[:4])
def test_avg_pooling_dropout_test_output_is_average_pooling(pool_size, strides, padding, data_format):
    x = to_format(sample_input((2, 7, 5, 3)), data_format)
    layer = kerasdrop.AvgPoolingDropout2D(0.4, pool_size, strides, padding, data_format)
    expected = keras.layers.AveragePooling2D(pool_size, strides, padding, data_format)(x)
    np.testing.assert_allclose(pooled(layer, x, False), utils.to_numpy(expected), rtol=1e-6)


@pytest.mark.parametrize(("pool_size", "strides", "padding"), [GEOMETRIES[0], GEOMETRIES[3]])
def test_avg_pooling_dropout_training_expectation_is_test_output(pool_size, strides, padding):
    """E[avg_pool(x * m) / keep] = avg_pool(x), within 5 sigma; sigma^2 = rate / keep * sum(x_i^2) / m^2."""
    rate, copies = 0.4, 3000
    x = sample_input((1, 5, 6, 2), seed=4)
    layer = kerasdrop.AvgPoolingDropout2D(rate, pool_size, strides, padding, seed=3)
    samples = pooled(layer, np.repeat(x, copies, axis=0), training=True)
    windows = regions(x, pool_size, strides, padding)[0]
    count = (~np.isnan(windows)).sum(-1)
    np.testing.assert_allclose(pooled(layer, x, False)[0], np.nanmean(windows, -1), rtol=1e-6)
    utils.assert_means_close(
        samples, np.nanmean(windows, -1), np.sqrt(rate / (1 - rate) * np.nansum(windows**2, -1)) / count
    )


def test_avg_pooling_dropout_training_values():
    """With x = 1 and 2x2 regions, each output is (kept units) / (4 keep)."""
    keep = 0.75
    output = pooled(kerasdrop.AvgPoolingDropout2D(1 - keep, seed=1), np.ones((50, 8, 8, 4), "float32"), True)
    kept = np.rint(output * 4 * keep)
    np.testing.assert_allclose(output * 4 * keep, kept, atol=1e-5)
    utils.assert_binomial_count(kept.sum(), output.size * 4, keep)


# ---------------------------------------------------------------- Max-Drop


def maxima_mask(x, mode, data_format):
    axes = (1, 2) if mode == "spatial" else (3,)
    x = to_last(x, data_format)
    return to_format(x == x.max(axis=axes, keepdims=True), data_format)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("mode", ["spatial", "channel"])
def test_max_drop_only_drops_maxima_at_rate(mode, data_format):
    rate = 0.3
    x = to_format(sample_input((64, 5, 7, 6), low=-1.0), data_format)
    layer = kerasdrop.MaxDrop2D(rate, mode=mode, data_format=data_format, seed=4)
    output = pooled(layer, x, True)
    maxima = maxima_mask(x, mode, data_format)
    changed = output != x
    assert np.all(maxima[changed]) and np.all(output[changed] == 0)
    np.testing.assert_array_equal(output[~maxima], x[~maxima])
    # One draw per map (spatial) or per position (channel): the number of dropped maxima is binomial.
    utils.assert_binomial_count(changed.sum(), int(maxima.sum()), rate)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize("mode", ["spatial", "channel"])
def test_max_drop_test_time_scales_maxima_by_keep(mode, data_format):
    x = to_format(sample_input((4, 5, 7, 6), low=-1.0), data_format)
    layer = kerasdrop.MaxDrop2D(0.3, mode=mode, data_format=data_format)
    maxima = maxima_mask(x, mode, data_format)
    np.testing.assert_allclose(pooled(layer, x, False), np.where(maxima, 0.7 * x, x), rtol=1e-6)


def test_max_drop_ties_are_dropped_together_and_rate_zero_is_identity():
    x = np.ones((200, 3, 3, 2), "float32")  # every unit of a map is its maximum
    output = pooled(kerasdrop.MaxDrop2D(0.5, seed=1), x, True)
    per_map = output.reshape(200, 9, 2)
    np.testing.assert_array_equal(per_map, np.broadcast_to(per_map[:, :1], per_map.shape))
    x = sample_input()
    for training in (True, False):
        np.testing.assert_array_equal(pooled(kerasdrop.MaxDrop2D(0.0, seed=1), x, training), x)


# ---------------------------------------------------------------- fresh noise, seeds, mc
# For every layer (and each fit step): tests/layers/test_contract.py; here the configurations it has no case of.


@pytest.mark.parametrize("name", beyond_the_cases(FAMILY))
def test_stochastic_layer_contract(name):
    """Fresh noise eagerly and compiled; same seed same noise; mc at test time; config round trip."""
    utils.assert_stochastic_layer_contract(functools.partial(make, name), sample_input())


@pytest.mark.slow
def test_mc_through_predict_reload_and_export(tmp_path):
    branches = {name: make(name, mc=True) for name in FAMILY}
    utils.assert_mc_branches_stay_stochastic(branches, sample_input(), tmp_path)


# ---------------------------------------------------------------- config and saving


def test_config_round_trip_with_every_argument():
    layer = kerasdrop.MaxPoolingDropout2D(0.2, (3, 2), (1, 2), "same", "channels_first", "scaled", seed=1)
    utils.assert_config_round_trip(layer)
    assert layer.get_config()["strides"] == (1, 2) and layer.get_config()["inference"] == "scaled"
    assert kerasdrop.AvgPoolingDropout2D(0.2, 3).strides == (3, 3)


@pytest.mark.slow
def test_keras_file_round_trip_keeps_layers_and_outputs(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((3, 9, 8)),
            kerasdrop.MaxDrop2D(0.2, mode="channel", data_format="channels_first", seed=1),
            kerasdrop.MaxPoolingDropout2D(0.3, 3, 2, "same", "channels_first", seed=2),
            kerasdrop.AvgPoolingDropout2D(0.1, (1, 2), padding="same", data_format="channels_first"),
            keras.layers.Flatten(),
        ]
    )
    utils.assert_keras_file_round_trip(model, sample_input((4, 3, 9, 8)), tmp_path)


# ---------------------------------------------------------------- dtypes and numerics


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", FAMILY)
def test_dtype_policies(name, policy):
    x = sample_input(low=-1.0)
    padding = {"padding": "same"} if "Pooling" in name else {}
    utils.assert_dtype_policy(lambda **kw: make(name, **padding, **kw), x, policy)
    layer = make(name, dtype=policy, **padding)
    test_output = layer(x)
    assert keras.backend.standardize_dtype(test_output.dtype) == layer.compute_dtype
    assert np.all(np.isfinite(utils.to_numpy(keras.ops.cast(test_output, "float32"))))


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "bfloat16"])
def test_no_nan_at_rate_close_to_one(policy):
    x = sample_input((8, 7, 5, 4), low=-1.0)
    for layer in (
        kerasdrop.MaxPoolingDropout2D(0.999, 3, 2, "same", dtype=policy, seed=1),
        kerasdrop.AvgPoolingDropout2D(0.999, dtype=policy, seed=1),
        kerasdrop.MaxDrop2D(0.999, dtype=policy, seed=1),
    ):
        for output in (layer(x, training=True), layer(x)):
            assert np.all(np.isfinite(utils.to_numpy(keras.ops.cast(output, "float32"))))


def test_gradient_reaches_the_selected_unit_only():
    x = sample_input((2, 4, 4, 1))
    y, gradient = utils.training_output_and_input_gradient(kerasdrop.MaxPoolingDropout2D(0.5, seed=1), x)
    # One unit per region with a nonzero output gets gradient 1: the largest kept one.
    assert gradient.sum() == (y != 0).sum() and set(np.unique(gradient)) <= {0.0, 1.0}
    np.testing.assert_array_equal(np.sort(x[gradient == 1]), np.sort(y[y != 0]))


# ---------------------------------------------------------------- errors


BAD_RATES = [(1.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError), (True, TypeError), ("0.5", TypeError)]
BAD_SIZES = [
    (0, ValueError),
    (-1, ValueError),
    ((2, 0), ValueError),
    ((2,), ValueError),
    ((2, 1.5), TypeError),
    ("2", TypeError),
    (1.5, TypeError),
]


@pytest.mark.parametrize(("rate", "error"), BAD_RATES)
@pytest.mark.parametrize("name", ["MaxPoolingDropout2D", "AvgPoolingDropout2D", "MaxDrop2D"])
def test_bad_rate(name, rate, error):
    with pytest.raises(error, match=r"argument `rate`.*Received: rate="):
        make(name, rate=rate)


@pytest.mark.parametrize(("value", "error"), BAD_SIZES)
@pytest.mark.parametrize("argument", ["pool_size", "strides"])
@pytest.mark.parametrize("name", ["MaxPoolingDropout2D", "AvgPoolingDropout2D"])
def test_bad_pool_size_and_strides(name, argument, value, error):
    with pytest.raises(error, match=f"argument `{argument}`.*Received: {argument}="):
        make(name, **{argument: value})


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("padding", "full", ValueError),
        ("padding", "SAME", ValueError),
        ("padding", None, TypeError),
        ("data_format", "NHWC", ValueError),
        ("inference", "mean", ValueError),
        ("inference", None, TypeError),
        ("seed", 1.5, TypeError),
        ("mc", 1, TypeError),
    ],
)
def test_bad_pooling_arguments(argument, value, error):
    with pytest.raises(error, match=f"`{argument}`"):
        kerasdrop.MaxPoolingDropout2D(0.5, **{argument: value})


@pytest.mark.parametrize(("mode", "error"), [("pixel", ValueError), ("", ValueError), (None, TypeError)])
def test_bad_max_drop_mode(mode, error):
    with pytest.raises(error, match="`mode`"):
        kerasdrop.MaxDrop2D(0.5, mode=mode)


@pytest.mark.parametrize("shape", [(2, 6, 3), (2, 6, 6, 6, 3)])
@pytest.mark.parametrize("name", FAMILY)
def test_wrong_rank(name, shape):
    with pytest.raises(ValueError, match="ndim=4"):
        make(name)(np.ones(shape, "float32"))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("name", FAMILY)
def test_empty_batch_gives_an_empty_output(name, training):
    layer = make(name)
    output = utils.to_numpy(layer(np.ones((0, 6, 6, 3), "float32"), training=training))
    reference = keras.layers.MaxPooling2D() if "Pooling" in name else keras.layers.Identity()
    assert output.shape == tuple(reference.compute_output_shape((0, 6, 6, 3)))


@pytest.mark.parametrize("name", ["MaxPoolingDropout2D", "AvgPoolingDropout2D"])
def test_valid_pooling_larger_than_input(name):
    with pytest.raises(ValueError, match="spatial sizes >= pool_size"):
        make(name, pool_size=(3, 3))(np.ones((2, 2, 5, 3), "float32"))
    same = make(name, pool_size=(3, 3), padding="same")
    assert pooled(same, np.ones((2, 2, 5, 3), "float32"), True).shape == (2, 1, 2, 3)


@pytest.mark.parametrize("name", FAMILY)
def test_integer_inputs_raise(name):
    with pytest.raises(TypeError, match="floating-point inputs"):
        make(name)(np.ones((2, 4, 4, 3), "int32"), training=True)
