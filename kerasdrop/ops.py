"""Pure functions behind the layers: masks and the dropout formulas, written with `keras.ops`/`keras.random`.

Every function takes its randomness from ``seed`` (an int or a ``keras.random.SeedGenerator``), so a layer that
passes its own generator gets a fresh draw on each call. The draws go through `kerasdrop._random`: ``keras.random``,
or TensorFlow's stateful random ops while `kerasdrop.export_tflite` traces a model. Noise is drawn in float32 and
cast to the input's dtype, so masks keep their exact probabilities under float16/bfloat16 policies.
"""

import numbers

import keras
from keras import ops

from kerasdrop import _context, _random


def dtype_size(dtype):
    """Bytes per element of a float dtype (``"bfloat16"`` included, which NumPy alone does not know)."""
    import numpy as np

    dtype = keras.backend.standardize_dtype(dtype)
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def variance_dtype(dtype):
    """The dtype squares and variances are computed in: float64 for float64, float32 for every other float.

    Squares overflow float16 above 256, so a float16 or bfloat16 layer computes its variances in float32.
    """
    return "float64" if keras.backend.standardize_dtype(dtype) == "float64" else "float32"


def resolve_noise_shape(inputs, noise_shape):
    """Concrete mask shape: the entries of ``noise_shape`` with each None replaced by the input's size there."""
    input_shape = ops.shape(inputs)
    if noise_shape is None:
        return input_shape
    return tuple(input_shape[axis] if size is None else size for axis, size in enumerate(noise_shape))


def bernoulli_mask(shape, keep, seed, dtype="float32", batch_axis=None):
    """A tensor of 0s and 1s with ``P(1) = keep``; ``keep`` may be a float or a scalar float32 tensor.

    ``batch_axis``: the axis of ``shape`` that runs over the batch, if any (see `kerasdrop._random`)."""
    uniform = _random.uniform(shape, seed, dtype="float32", batch_axis=batch_axis)
    return ops.cast(ops.less(uniform, keep), dtype)


def dropout(inputs, rate, noise_shape=None, seed=None, scaling="inverted"):
    """Bernoulli dropout of ``inputs`` with drop probability ``rate`` (a float, or a scalar tensor below 1).

    ``scaling="inverted"``: ``x * m / keep``; ``"weight_scaling"``: ``x * m`` (the caller rescales by ``keep`` at
    test time). The mask has shape ``noise_shape`` (None entries take the input's size) and broadcasts over the rest.
    Dropped units are exactly 0, whatever their value (inf and NaN included), as in Keras.
    """
    if isinstance(rate, numbers.Real) and rate == 0:
        return inputs
    keep = 1.0 - rate
    kept = bernoulli_mask(resolve_noise_shape(inputs, noise_shape), keep, seed, dtype="bool", batch_axis=0)
    if scaling == "inverted":
        inputs = inputs * ops.cast(1.0 / keep, inputs.dtype)
    # A selection, not a product with the mask: a dropped unit is exactly 0 even where the input is inf or NaN.
    return ops.where(kept, inputs, ops.zeros_like(inputs))


def gaussian_dropout(inputs, rate, seed=None):
    """Multiplicative Gaussian noise ``x * g``, ``g ~ N(1, rate / keep)``: the variance of inverted dropout."""
    if rate == 0:
        return inputs
    stddev = (rate / (1.0 - rate)) ** 0.5
    noise = _random.normal(ops.shape(inputs), seed, mean=1.0, stddev=stddev, dtype="float32", batch_axis=0)
    return inputs * ops.cast(noise, inputs.dtype)


# Floor under the variance before its square root, so the gradient stays finite where the variance is zero.
_VARIANCE_FLOOR = 1e-8


def _standard_deviation(variance, work):
    """``sqrt(variance + 1e-8)`` in the dtype ``work``; negative rounding errors in ``variance`` count as 0."""
    return ops.sqrt(ops.maximum(ops.cast(variance, work), 0.0) + _VARIANCE_FLOOR)


def sample_gaussian(mean, variance, seed=None, sample_shape=()):
    """``mean + sqrt(variance) * eps`` with ``eps ~ N(0, 1)``: the reparameterised draw of the weight-noise layers.

    ``eps`` has shape ``sample_shape + mean.shape`` (leading axes give independent draws). The draw and the square
    root are computed in float32 (float64 for float64 inputs) whatever the input dtype, with a floor of 1e-8 under
    the variance; the result has the dtype of ``mean``.
    """
    dtype = keras.backend.standardize_dtype(mean.dtype)
    work = variance_dtype(dtype)
    shape = tuple(sample_shape) + tuple(ops.shape(mean))
    eps = _random.normal(shape, seed, dtype="float32")
    std = _standard_deviation(variance, work)
    return ops.cast(ops.cast(mean, work) + std * ops.cast(eps, work), dtype)


# Giles's single-precision approximation of erf⁻¹ ("Approximating the erfinv function", GPU Computing Gems, 2011),
# the one XLA uses for float32: a polynomial in w - 2.5 for w = -log(1 - x²) < 5, in sqrt(w) - 3 beyond, times x.
_ERFINV_CENTRAL = (
    2.81022636e-08,
    3.43273939e-07,
    -3.5233877e-06,
    -4.39150654e-06,
    0.00021858087,
    -0.00125372503,
    -0.00417768164,
    0.246640727,
    1.50140941,
)
_ERFINV_TAIL = (
    -0.000200214257,
    0.000100950558,
    0.00134934322,
    -0.00367342844,
    0.00573950773,
    -0.0076224613,
    0.00943887047,
    1.00167406,
    2.83297682,
)


def _horner(coefficients, w):
    """``c_0 w^(n-1) + c_1 w^(n-2) + ... + c_(n-1)`` for ``coefficients = (c_0, ..., c_(n-1))``, by Horner's rule."""
    p = ops.full_like(w, coefficients[0])
    for coefficient in coefficients[1:]:
        p = coefficient + p * w
    return p


def erfinv_polynomial(x):
    """``erf⁻¹(x)`` of a float32 tensor with ``|x| < 1`` from log, square root and polynomials only.

    Giles's single-precision approximation (as XLA computes float32 ``erfinv``), for graphs that must avoid
    ``tf.math.erfinv``, which TensorFlow Lite has no builtin for. For ``|x| <= 1 - 2e-6`` (the range
    `kerasdrop.StructuredBayesianPruning` samples in) its relative error is below 3e-7 (measured against float64 on
    2·10⁶ points; TensorFlow's CPU ``erfinv`` is off by up to 1.3% near ``|x| = 2e-6`` there).
    """
    w = -ops.log((1.0 - x) * (1.0 + x))
    central = _horner(_ERFINV_CENTRAL, w - 2.5)
    tail = _horner(_ERFINV_TAIL, ops.sqrt(ops.maximum(w, 5.0)) - 3.0)
    return ops.where(w < 5.0, central, tail) * x


def normal_quantiles(count):
    """The ``count`` quantiles of N(0, 1) at probabilities ``(k + 1/2) / count``, ``k = 0, ..., count - 1``.

    A stratified sample of N(0, 1), each of ``count`` equally likely strata represented by its midpoint: the points
    are symmetric about 0, and ``mean(f(mu + sigma * z))`` approximates ``E f(mu + sigma Z)``, ``Z ~ N(0, 1)``,
    without random numbers. For an L-Lipschitz ``f`` the error is at most ``L sigma W1``, with ``W1`` the Wasserstein
    distance from the points to N(0, 1), ``2 sum_k phi(z_k) - 2 sum_{j=1}^{count-1} phi(Phi^-1(j / count))``: 0.024
    for 64 points, where a random sample of 64 has a standard error of ``0.125 L sigma``. Returns a float64 NumPy
    array, ascending.
    """
    import statistics

    import numpy as np

    normal = statistics.NormalDist()
    return np.array([normal.inv_cdf((k + 0.5) / count) for k in range(count)])


def gaussian_quantile_points(mean, variance, count):
    """``mean + sqrt(variance) * z_k`` for the ``count`` points ``z_k`` of `normal_quantiles`, stacked on a new axis 0.

    The deterministic counterpart of ``sample_gaussian(mean, variance, seed, (count,))``, with the same dtypes: the
    points are computed in float32 (float64 for float64 inputs) with a floor of 1e-8 under the variance, and have the
    dtype of ``mean``.
    """
    dtype = keras.backend.standardize_dtype(mean.dtype)
    work = variance_dtype(dtype)
    nodes = normal_quantiles(count).reshape((count,) + (1,) * len(mean.shape))
    std = _standard_deviation(variance, work)
    return ops.cast(ops.cast(mean, work) + std * ops.convert_to_tensor(nodes, dtype=work), dtype)


# Random bits a packed mask takes from each random integer (``randint`` below 2**30), as three 10-bit table indices.
_PACKED_WORD_BITS = 30
_PACKED_INDEX_BITS = 10


def dyadic_fraction(keep, max_bits=_PACKED_INDEX_BITS):
    """``(numerator, bits)`` with ``keep == numerator / 2**bits`` exactly and ``bits <= max_bits``, or None.

    A keep probability of this form (0.5, 0.25, 0.75, 0.875, ...) can be drawn exactly from ``bits`` random bits.
    """
    for bits in range(1, max_bits + 1):
        numerator = keep * 2**bits
        if numerator == int(numerator):
            return int(numerator), bits
    return None


def _packed_table(numerator, bits, scale, dtype):
    """Row ``v``: the masks that index ``v`` encodes, ``group`` fields of ``bits`` bits, each kept when < numerator."""
    import numpy as np

    group = _PACKED_INDEX_BITS // bits
    values = np.arange(2 ** (group * bits))[:, None] >> (bits * np.arange(group))[None, :]
    kept = (values & (2**bits - 1)) < numerator
    return ops.convert_to_tensor((kept * scale).astype("float32"), dtype=dtype)


def packed_bernoulli_mask(shape, keep, seed, scale=1.0, dtype="float32", batch_axis=None):
    """A Bernoulli(keep) mask times ``scale`` that draws many masks from each random integer; exact for dyadic keep.

    ``keep`` must be a float of the form ``numerator / 2**bits`` with ``bits <= 10`` (see `dyadic_fraction`). Each
    random integer gives 30 independent uniform bits, read as three 10-bit indices into a table of mask patterns;
    ``keep = 0.5`` thus takes 30 masks from one draw where `bernoulli_mask` takes one, which makes Monte Carlo
    sampling several times cheaper. The distribution is exactly that of `bernoulli_mask` (which quantises ``keep``
    to float32 resolution instead). While `kerasdrop.export_tflite` traces a model (TensorFlow's stateful draws,
    see `kerasdrop._random`) it is `bernoulli_mask` times ``scale``: TensorFlow Lite has no random integers and no
    bitwise and among its builtins.

    Args:
        shape: the mask's shape (ints or scalar tensors).
        keep: Python float, the probability of a 1.
        seed: int or ``keras.random.SeedGenerator``.
        scale: value of the kept entries (``1 / keep`` for inverted dropout).
        dtype: dtype of the mask.
        batch_axis: the axis of ``shape`` that runs over the batch, if any (see `kerasdrop._random`).
    """
    if batch_axis is not None:
        return _random.shared_over_batch(
            shape, batch_axis, lambda part: packed_bernoulli_mask(part, keep, seed, scale, dtype)
        )
    fraction = dyadic_fraction(keep)
    if fraction is None:
        raise ValueError(f"packed_bernoulli_mask needs keep = k / 2**bits with bits <= 10. Received: keep={keep}")
    if _context.stateful_draws():
        mask = bernoulli_mask(shape, keep, seed, dtype=dtype)
        if scale == 1.0 or keras.backend.standardize_dtype(dtype) == "bool":
            return mask
        return mask * ops.cast(scale, dtype)
    numerator, bits = fraction
    table = _packed_table(numerator, bits, scale, dtype)
    per_index = _PACKED_INDEX_BITS // bits
    per_word = per_index * (_PACKED_WORD_BITS // _PACKED_INDEX_BITS)
    size = 1
    for dim in shape:
        size = size * dim
    words = _random.randint(((size + per_word - 1) // per_word, 1), 0, 2**_PACKED_WORD_BITS, seed, "int32")
    shifts = ops.arange(0, _PACKED_WORD_BITS, _PACKED_INDEX_BITS, dtype="int32")
    indices = ops.bitwise_and(ops.right_shift(words, shifts), 2 ** (per_index * bits) - 1)
    masks = ops.reshape(ops.take(table, ops.reshape(indices, (-1,)), axis=0), (-1,))
    return ops.reshape(masks[:size], shape)
