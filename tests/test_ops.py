"""`kerasdrop.ops`: packed Bernoulli masks (the Monte Carlo sampler's fast dyadic dropout) and the polynomial erf⁻¹
used in TensorFlow Lite."""

import math
import statistics

import keras
import numpy as np
import pytest

from kerasdrop import ops as kd_ops
from tests import backend, utils

# ---------------------------------------------------------------- packed Bernoulli masks


def test_dyadic_fraction():
    assert kd_ops.dyadic_fraction(0.5) == (1, 1)
    assert kd_ops.dyadic_fraction(0.75) == (3, 2)
    assert kd_ops.dyadic_fraction(0.875) == (7, 3)
    assert kd_ops.dyadic_fraction(3 / 1024) == (3, 10)
    for keep in (0.7, 0.9, 1 / 2048, 1 / 3):
        assert kd_ops.dyadic_fraction(keep) is None
    with pytest.raises(ValueError, match="keep=0.7"):
        kd_ops.packed_bernoulli_mask((4,), 0.7, seed=0)


@pytest.mark.parametrize("keep", [0.5, 0.75, 0.875, 3 / 1024])
def test_packed_mask_is_bernoulli_with_independent_neighbours(keep):
    shape = (300, 401)  # not a multiple of the 30 masks a word gives: the tail is cut
    mask = utils.to_numpy(kd_ops.packed_bernoulli_mask(shape, keep, keras.random.SeedGenerator(1), scale=1 / keep))
    assert mask.shape == shape
    np.testing.assert_array_equal(np.unique(mask), [0.0, np.float32(1 / keep)])
    kept = (mask > 0).ravel()
    utils.assert_binomial_count(kept.sum(), kept.size, keep)
    # Bits of one random integer, of neighbouring table indices, and of neighbouring integers must be independent:
    # pairs at lags 1 (same field group), 10 (next index), 30 (next integer) are both kept with probability keep^2.
    for lag in (1, 10, 30):
        utils.assert_binomial_count(np.sum(kept[:-lag] & kept[lag:]), kept.size - lag, keep * keep)


def test_packed_mask_draws_new_masks_each_call_and_works_in_a_graph():
    generator = keras.random.SeedGenerator(2)
    function = backend.compiled(
        lambda x: x * kd_ops.packed_bernoulli_mask(keras.ops.shape(x), 0.5, generator, scale=2.0), [generator.state]
    )
    x = keras.ops.ones((64, 33))
    first, second = utils.to_numpy(function(x)), utils.to_numpy(function(x))
    assert not np.array_equal(first, second)
    assert set(np.unique(first)) == {0.0, 2.0}


# ---------------------------------------------------------------- erf⁻¹ for TensorFlow Lite


@backend.tensorflow_only("the polynomial erf⁻¹ serves only the TensorFlow Lite export")
def test_erfinv_polynomial_matches_the_inverse_error_function():
    """`kerasdrop.ops.erfinv_polynomial`, StructuredBayesianPruning's erf⁻¹ in TensorFlow Lite, within 3e-7 relative
    error where the layer uses it (``|x| <= 1 - 2e-6``); the exact values from ``statistics.NormalDist``."""
    x = np.concatenate([np.linspace(-1 + 2e-6, 1 - 2e-6, 4001), [-1e-6, 1e-6, 0.5, -0.999, 0.999]]).astype("float32")
    x = x[x != 0]
    normal = statistics.NormalDist()
    exact = np.array([normal.inv_cdf((float(value) + 1.0) / 2.0) / math.sqrt(2.0) for value in x])
    ours = keras.ops.convert_to_numpy(kd_ops.erfinv_polynomial(keras.ops.convert_to_tensor(x)))
    np.testing.assert_allclose(ours, exact, rtol=3e-7, atol=0)
