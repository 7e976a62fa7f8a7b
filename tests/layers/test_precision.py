"""Every layer under float16 and bfloat16 policies, fed activations up to 1e4.

Squares of such activations (1e8) overflow float16, whose largest value is 65504; the layers compute squares and
variances in float32, so their outputs stay finite and agree with the float32 layer to low-precision rounding.

The recurrent layers get inputs of one sign (5e3 to 1e4 in magnitude) and kernels whose columns each have one sign:
every gate's input product is then a sum of terms of one sign, as precise relatively as its terms, and (unless
dropout removed every term) at least 5e3 x 0.025 = 125 in magnitude, so that its gate saturates as in float32. With
terms of both signs, a product that cancels to near zero keeps the low-precision rounding of its terms (about 0.5 in
float16 at this scale) and sets a gate far from its float32 value; whether a draw of weights does that depends on
the backend's random generator. So these weights are NumPy's, the same on every backend, and the recurrent kernel is
seeded, the same for the float32 layer and the low-precision one.
"""

import keras
import numpy as np
import pytest

from tests import utils
from tests.layers.every_layer import CASES, IDS, RECURRENT

FLOAT16_MAX = 65504.0
# Inputs up to 1e4 in magnitude; kernels small enough that every float32 output fits float16 (checked below).
INPUT_SCALE = 1e4
KERNEL_SCALE = 0.05
# About five rounding units of each dtype (float16: 2**-10 = 9.8e-4; bfloat16: 2**-7 = 7.8e-3), of the largest output.
RELATIVE_TOLERANCE = {"mixed_float16": 5e-3, "mixed_bfloat16": 3e-2}
MODES = ("training", "test", "mc")


def _one_signed_columns(shape, dtype=None):
    """Kernel entries of magnitude KERNEL_SCALE / 2 to KERNEL_SCALE, one sign per column (output unit)."""
    rng = np.random.default_rng(4)
    kernel = rng.uniform(KERNEL_SCALE / 2, KERNEL_SCALE, shape) * rng.choice([-1.0, 1.0], size=shape[-1])
    return keras.ops.convert_to_tensor(kernel, dtype=dtype)


def _layer(case, policy, mode):
    kwargs = {"dtype": policy, "seed": 3, "mc": mode == "mc"}
    if case.id in RECURRENT:
        kwargs["kernel_initializer"] = _one_signed_columns
        kwargs["recurrent_initializer"] = keras.initializers.Orthogonal(seed=5)
    elif case.has_kernel:
        kwargs["kernel_initializer"] = keras.initializers.RandomUniform(-KERNEL_SCALE, KERNEL_SCALE, seed=4)
    return case.make(**kwargs)


def _input(case):
    rng = np.random.default_rng(0)
    if case.id in RECURRENT:
        return rng.uniform(INPUT_SCALE / 2, INPUT_SCALE, case.input_shape).astype("float32")
    return rng.uniform(-INPUT_SCALE, INPUT_SCALE, case.input_shape).astype("float32")


def _output(case, policy, mode, x):
    """The layer's output and the losses it added (its KL terms or regularisers), as float32 NumPy arrays."""
    layer = _layer(case, policy, mode)
    output = layer(x, training=mode == "training")
    assert keras.backend.standardize_dtype(output.dtype) == layer.compute_dtype
    losses = [utils.to_numpy(keras.ops.cast(loss, "float32")) for loss in layer.losses]
    return utils.to_numpy(keras.ops.cast(output, "float32")), losses


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("policy", sorted(RELATIVE_TOLERANCE))
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_large_activations_stay_finite_in_low_precision(case, policy, mode):
    x = _input(case)
    reference, reference_losses = _output(case, "float32", mode, x)
    scale = np.max(np.abs(reference))
    assert np.all(np.isfinite(reference)) and 0 < scale < 0.9 * FLOAT16_MAX, "the test's float32 outputs must fit"
    low, losses = _output(case, policy, mode, x)
    assert np.all(np.isfinite(low)), f"{np.mean(~np.isfinite(low)):.0%} of the outputs are NaN or inf"
    # KL terms and regularisers come from the float32 variables whatever the policy: the same values.
    assert len(losses) == len(reference_losses)
    for loss, expected in zip(losses, reference_losses, strict=True):
        np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # Relative to the largest output, and to 1 for bounded outputs (an LSTM's saturated gates round to 0 or 1).
    np.testing.assert_allclose(low, reference, rtol=0, atol=RELATIVE_TOLERANCE[policy] * max(scale, 1.0))
