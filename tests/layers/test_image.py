"""Structured image dropout: Cutout and DropBlock2D."""

import functools
import itertools

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop.layers.image import dropblock_gamma
from tests import utils
from tests.layers.every_layer import beyond_the_cases, make

FORMATS = ["channels_last", "channels_first"]
FILL = -7.0  # outside the inputs' range, so filled pixels are recognisable

# The family's configurations in `tests.layers.every_layer`.
FAMILY = ["Cutout", "Cutout-fraction", "DropBlock2D"]


def sample_input(shape=(4, 9, 11, 3), seed=0):
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape).astype("float32")


def to_last(x, data_format):
    return x if data_format == "channels_last" else np.transpose(x, (0, 2, 3, 1))


def to_format(x, data_format):
    return x if data_format == "channels_last" else np.transpose(x, (0, 3, 1, 2))


def train(layer, x):
    return utils.train_call(layer, x)


# ---------------------------------------------------------------- Cutout


def clipped_squares(height, width, side):
    """Every square the layer may cut, one per centre: boolean (height * width, height, width)."""
    centres = np.array(list(itertools.product(range(height), range(width))))
    top = centres[:, 0] - side // 2
    left = centres[:, 1] - side // 2
    rows, cols = np.arange(height), np.arange(width)
    in_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)
    in_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)
    return in_rows[:, :, None] & in_cols[:, None, :]


def filled_mask(output, data_format):
    """Per sample, where the fill value was written: the same pixels on every channel (checked here)."""
    filled = to_last(output, data_format) == FILL
    np.testing.assert_array_equal(filled, np.broadcast_to(filled[..., :1], filled.shape))
    return filled[..., 0]


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(("size", "side"), [(4, 4), (5, 5), (0.5, 5)])  # 0.5 of the shorter side 9 -> 4.5 -> 5
def test_cutout_fills_exactly_one_clipped_square_per_sample(size, side, data_format):
    x = sample_input((64, 9, 11, 3))
    layer = kerasdrop.Cutout(size, fill_value=FILL, data_format=data_format, seed=1)
    assert layer.side(9, 11) == side
    output = train(layer, to_format(x, data_format))
    filled = filled_mask(output, data_format)
    candidates = clipped_squares(9, 11, side)
    matches = np.all(filled[:, None] == candidates[None], axis=(2, 3))
    assert np.all(matches.any(axis=1)), "a cut region is not a clipped square"
    np.testing.assert_array_equal(to_last(output, data_format)[~filled], x[~filled])
    # Different places per sample: 64 draws among 99 centres; two samples share a square far less often than not.
    assert len({tuple(np.flatnonzero(m)) for m in filled}) > 32


def test_cutout_holes_are_unions_of_clipped_squares():
    x = sample_input((6, 7, 8, 2))
    output = train(kerasdrop.Cutout(3, holes=2, fill_value=FILL, seed=2), x)
    filled = filled_mask(output, "channels_last")
    candidates = clipped_squares(7, 8, 3)
    unions = (candidates[:, None] | candidates[None, :]).reshape(-1, 7, 8)
    for mask in filled:
        assert np.any(np.all(unions == mask, axis=(1, 2)))


def test_cutout_centres_cover_the_whole_image_uniformly():
    """With size=1 the cut pixel is the centre: every pixel is drawn with probability 1 / (rows * cols)."""
    rows, cols, samples = 5, 7, 7000
    output = train(kerasdrop.Cutout(1, fill_value=FILL, seed=3), np.ones((samples, rows, cols, 1), "float32"))
    filled = output[..., 0] == FILL
    assert np.all(filled.sum(axis=(1, 2)) == 1)
    counts = filled.sum(axis=0)
    assert np.all(counts > 0)
    for count in counts.ravel():
        utils.assert_binomial_count(count, samples, 1.0 / (rows * cols))


def test_cutout_side_from_fraction():
    layer = kerasdrop.Cutout(0.5)
    assert (layer.side(12, 16), layer.side(13, 13), layer.side(16, 9)) == (6, 7, 5)
    assert kerasdrop.Cutout(0.01).side(10, 10) == 1 and kerasdrop.Cutout(1.0).side(10, 12) == 10
    assert kerasdrop.Cutout(4).side(100, 100) == 4


def test_cutout_identity_at_test_time_and_size_of_whole_image():
    x = sample_input()
    np.testing.assert_array_equal(utils.to_numpy(kerasdrop.Cutout(3, seed=1)(x)), x)
    output = train(kerasdrop.Cutout(1.0, fill_value=FILL, seed=1), x)  # side 9, the shorter side: allowed
    assert np.all((output == FILL).any(axis=(1, 2)))


def test_cutout_with_unknown_image_size():
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, kerasdrop.Cutout(0.5, fill_value=FILL, mc=True, seed=1)(inputs))
    for shape in ((8, 6, 10, 2), (8, 12, 12, 2)):
        filled = model.predict(np.ones(shape, "float32"), verbose=0)[..., 0] == FILL
        side = int(0.5 * min(shape[1:3]) + 0.5)
        candidates = clipped_squares(shape[1], shape[2], side)
        assert np.all(np.all(filled[:, None] == candidates[None], axis=(2, 3)).any(axis=1))


# ---------------------------------------------------------------- DropBlock


def seed_intervals(length, block):
    """For each position, the range [low, high] of seed positions whose block covers it (seeds in 0..L-block)."""
    positions = np.arange(length)
    return np.maximum(positions - block + 1, 0), np.minimum(positions, length - block)


def dropped_moments(height, width, block_size, rate):
    """Exact mean and variance of the number of dropped units in one map, from independent Bernoulli(gamma) seeds.

    Unit u is kept iff none of the seeds covering it fires: P = (1-gamma)^|S_u|; two units are both kept with
    probability (1-gamma)^|S_u union S_v|, with |S_u union S_v| = |S_u| + |S_v| - |S_u intersect S_v|.
    """
    block_height, block_width = min(block_size, height), min(block_size, width)
    gamma = dropblock_gamma(rate, height, width, block_height, block_width)
    (row_low, row_high), (col_low, col_high) = seed_intervals(height, block_height), seed_intervals(width, block_width)
    low = np.stack(np.meshgrid(row_low, col_low, indexing="ij"), -1).reshape(-1, 2)
    high = np.stack(np.meshgrid(row_high, col_high, indexing="ij"), -1).reshape(-1, 2)
    sizes = np.prod(high - low + 1, axis=-1)
    overlap = np.prod(
        np.maximum(np.minimum(high[:, None], high[None]) - np.maximum(low[:, None], low[None]) + 1, 0), axis=-1
    )
    kept = (1 - gamma) ** sizes
    both_kept = (1 - gamma) ** (sizes[:, None] + sizes[None] - overlap)
    return (1 - kept).sum(), (both_kept - np.outer(kept, kept)).sum(), gamma


def is_union_of_blocks(dropped, block_height, block_width):
    """True when the dropped pixels are exactly a union of whole blocks lying inside the map."""
    height, width = dropped.shape
    covered = np.zeros_like(dropped)
    for top, left in itertools.product(range(height - block_height + 1), range(width - block_width + 1)):
        if dropped[top : top + block_height, left : left + block_width].all():
            covered[top : top + block_height, left : left + block_width] = True
    return np.array_equal(covered, dropped)


@pytest.mark.parametrize("data_format", FORMATS)
@pytest.mark.parametrize(("shape", "block_size"), [((9, 11), 3), ((8, 8), 4), ((5, 9), 7), ((5, 5), 7)])
def test_dropblock_drops_whole_blocks(shape, block_size, data_format):
    x = np.ones((8, *shape, 6), "float32")
    layer = kerasdrop.DropBlock2D(0.25, block_size, data_format=data_format, seed=4)
    dropped = to_last(train(layer, to_format(x, data_format)), data_format) == 0
    maps = np.moveaxis(dropped, -1, 1).reshape(-1, *shape)
    block = (min(block_size, shape[0]), min(block_size, shape[1]))
    assert all(is_union_of_blocks(m, *block) for m in maps)
    assert 0 < dropped.mean() < 1
    # One mask per (sample, channel): channels of one sample differ.
    assert any(not np.array_equal(maps[6 * i], maps[6 * i + 1]) for i in range(8))


@pytest.mark.parametrize(("shape", "block_size", "rate"), [((12, 12), 3, 0.2), ((9, 13), 5, 0.5), ((16, 16), 7, 0.1)])
def test_dropblock_dropped_fraction_matches_exact_expectation(shape, block_size, rate):
    """The dropped fraction is within 5 sigma of its exact expectation, itself within the documented bounds."""
    samples, channels = 64, 16
    layer = kerasdrop.DropBlock2D(rate, block_size, seed=5)
    output = train(layer, np.ones((samples, *shape, channels), "float32"))
    mean, variance, gamma = dropped_moments(*shape, block_size, rate)
    area = shape[0] * shape[1]
    block_area = min(block_size, shape[0]) * min(block_size, shape[1])
    # Union bound above, second-order Bonferroni below: rate (1 - (block_area - 1) gamma / 2) <= E <= rate.
    assert rate * (1 - (block_area - 1) * gamma / 2) <= mean / area <= rate
    per_map = (output == 0).sum(axis=(1, 2)).ravel()
    utils.assert_mean_close(per_map, mean, np.sqrt(variance))


def test_dropblock_documented_example():
    """rate=0.1, block_size=7 on 32x32: gamma = 0.0031, 0.0926 <= E <= 0.1, E = 0.0941 (class docstring)."""
    mean, _, gamma = dropped_moments(32, 32, 7, 0.1)
    assert round(gamma, 4) == 0.0031
    assert round(0.1 * (1 - 48 * gamma / 2), 4) == 0.0926 and round(mean / 1024, 4) == 0.0941


def test_dropblock_block_covering_the_map_drops_whole_maps_at_rate():
    """block_size >= both sides: gamma = rate and each map is dropped whole, with probability rate."""
    output = train(kerasdrop.DropBlock2D(0.3, 7, seed=6), np.ones((200, 5, 5, 10), "float32"))
    per_map = (output == 0).reshape(200, 25, 10)
    np.testing.assert_array_equal(per_map, np.broadcast_to(per_map[:, :1], per_map.shape))
    utils.assert_binomial_count(per_map[:, 0].sum(), 2000, 0.3)


@pytest.mark.parametrize("data_format", FORMATS)
def test_dropblock_rescales_by_count_over_count_kept(data_format):
    x = to_format(sample_input((16, 10, 10, 4)), data_format)
    output = train(kerasdrop.DropBlock2D(0.3, 3, data_format=data_format, seed=7), x)
    kept = output != 0
    np.testing.assert_allclose(output[kept] / x[kept], x.size / kept.sum(), rtol=1e-5)
    ones = train(kerasdrop.DropBlock2D(0.3, 3, data_format=data_format, seed=7), np.ones_like(x))
    np.testing.assert_allclose(ones.mean(), 1.0, rtol=1e-5)  # the mean of a constant input is kept


def test_dropblock_identity_at_test_time_and_rate_zero():
    x = sample_input()
    np.testing.assert_array_equal(utils.to_numpy(kerasdrop.DropBlock2D(0.5, 3)(x)), x)
    np.testing.assert_array_equal(train(kerasdrop.DropBlock2D(0.0, 3, seed=1), x), x)


def test_dropblock_with_unknown_image_size():
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, kerasdrop.DropBlock2D(0.3, 3, mc=True, seed=1)(inputs))
    for shape in ((8, 7, 9, 4), (8, 12, 12, 4)):
        dropped = model.predict(np.ones(shape, "float32"), verbose=0) == 0
        assert 0 < dropped.mean() < 1
        assert all(is_union_of_blocks(m, 3, 3) for m in np.moveaxis(dropped, -1, 1).reshape(-1, *shape[1:3]))


def test_dropblock_float16_counts_do_not_overflow():
    """262144 units (more than float16's largest value): the scale is computed in float32."""
    layer = kerasdrop.DropBlock2D(0.2, 5, dtype="mixed_float16", seed=8)
    output = utils.to_numpy(keras.ops.cast(layer(np.ones((16, 32, 32, 16), "float32"), training=True), "float32"))
    assert np.all(np.isfinite(output))
    np.testing.assert_allclose(output.mean(), 1.0, rtol=2e-3)


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


def test_config_keeps_size_type():
    assert kerasdrop.Cutout.from_config(kerasdrop.Cutout(1.0).get_config()).side(10, 12) == 10
    assert kerasdrop.Cutout.from_config(kerasdrop.Cutout(1).get_config()).side(10, 12) == 1


@pytest.mark.slow
def test_keras_file_round_trip_keeps_layers_and_outputs(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((3, 9, 11)),
            kerasdrop.Cutout(0.3, holes=3, fill_value=0.5, data_format="channels_first", seed=1),
            kerasdrop.DropBlock2D(0.2, 4, data_format="channels_first", seed=2),
            keras.layers.Flatten(),
        ]
    )
    utils.assert_keras_file_round_trip(model, sample_input((4, 3, 9, 11)), tmp_path)


# ---------------------------------------------------------------- dtypes and numerics


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", FAMILY)
def test_dtype_policies(name, policy):
    utils.assert_dtype_policy(functools.partial(make, name), sample_input(), policy)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "bfloat16"])
def test_no_nan_at_rate_close_to_one(policy):
    """Even when every unit is dropped (count_kept = 0) the output is finite: zeros."""
    x = sample_input((4, 6, 6, 3))
    for block_size in (1, 3, 6):
        output = kerasdrop.DropBlock2D(0.999, block_size, dtype=policy, seed=1)(x, training=True)
        assert np.all(np.isfinite(utils.to_numpy(keras.ops.cast(output, "float32"))))


def test_dropblock_drops_inf_and_nan_to_zero():
    utils.assert_dropped_non_finite_values_are_zero(make("DropBlock2D", seed=2), sample_input())


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("size", "error"),
    [(0, ValueError), (-2, ValueError), (0.0, ValueError), (1.5, ValueError), (float("nan"), ValueError)]
    + [(True, TypeError), ("3", TypeError), (None, TypeError), ((3, 3), TypeError)],
)
def test_bad_cutout_size(size, error):
    with pytest.raises(error, match=r"argument `size`.*Received: size="):
        kerasdrop.Cutout(size)


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("holes", 0, ValueError),
        ("holes", -1, ValueError),
        ("holes", 1.5, TypeError),
        ("holes", True, TypeError),
        ("fill_value", float("nan"), ValueError),
        ("fill_value", float("inf"), ValueError),
        ("fill_value", "0", TypeError),
        ("data_format", "NCHW", ValueError),
        ("seed", "1", TypeError),
        ("mc", None, TypeError),
    ],
)
def test_bad_cutout_arguments(argument, value, error):
    with pytest.raises(error, match=f"`{argument}`"):
        kerasdrop.Cutout(3, **{argument: value})


@pytest.mark.parametrize("data_format", FORMATS)
def test_cutout_larger_than_the_image(data_format):
    x = to_format(np.ones((2, 8, 10, 3), "float32"), data_format)
    with pytest.raises(ValueError, match=r"larger than the image \(8x10"):
        kerasdrop.Cutout(9, data_format=data_format)(x, training=True)
    with pytest.raises(ValueError, match="larger than the image"):
        keras.Sequential([keras.Input(x.shape[1:]), kerasdrop.Cutout(11, data_format=data_format)])
    assert train(kerasdrop.Cutout(8, data_format=data_format, seed=1), x).shape == x.shape


@pytest.mark.parametrize(
    ("argument", "value", "error"),
    [
        ("rate", 1.0, ValueError),
        ("rate", -0.5, ValueError),
        ("rate", "0.1", TypeError),
        ("block_size", 0, ValueError),
        ("block_size", -3, ValueError),
        ("block_size", 2.5, TypeError),
        ("block_size", True, TypeError),
        ("block_size", (3, 3), TypeError),
        ("data_format", "channels", ValueError),
    ],
)
def test_bad_dropblock_arguments(argument, value, error):
    with pytest.raises(error, match=f"argument `{argument}`.*Received: {argument}="):
        kerasdrop.DropBlock2D(**{"rate": 0.1, **{argument: value}})


@pytest.mark.parametrize("shape", [(2, 6, 3), (2, 6, 6, 6, 3)])
@pytest.mark.parametrize("name", FAMILY)
def test_wrong_rank(name, shape):
    with pytest.raises(ValueError, match="ndim=4"):
        make(name)(np.ones(shape, "float32"))


@pytest.mark.parametrize("name", FAMILY)
def test_integer_inputs_raise(name):
    with pytest.raises(TypeError, match="floating-point inputs"):
        make(name)(np.ones((2, 6, 6, 3), "int32"), training=True)
