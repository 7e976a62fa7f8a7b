"""Pooling dropout (Wu & Gu 2015): max and average pooling with dropout inside the pooling regions.

Pure functions first (pooling windows, a sorting network, probabilistic weighted pooling), then the layers.
"""

import keras
import numpy as np
from keras import ops

from kerasdrop import ops as kd_ops
from kerasdrop._axes import spatial_axes
from kerasdrop._validation import check_choice, check_data_format, check_int_tuple, check_rate
from kerasdrop.layers._base import StochasticLayer, register

PADDINGS = ("valid", "same")
INFERENCES = ("probabilistic", "scaled")


def lowest_value(dtype):
    """The lowest finite value of a float dtype, as a Python float."""
    dtype = keras.backend.standardize_dtype(dtype)
    if dtype == "bfloat16":
        return -3.3895313892515355e38  # -(2 - 2**-7) * 2**127
    return float(np.finfo(dtype).min)


def _window_geometry(length, pool, stride, padding):
    """Output length and (low, high) padding of one spatial axis, with TensorFlow's "same" convention.

    ``length`` is a Python int, or a scalar tensor for a dimension unknown when tracing.
    """
    if padding == "valid":
        return (length - pool) // stride + 1, (0, 0)
    out = (length + stride - 1) // stride
    total = (out - 1) * stride + pool - length
    total = max(total, 0) if isinstance(total, int) else ops.maximum(total, 0)
    return out, (total // 2, total - total // 2)


def pooling_output_length(length, pool, stride, padding):
    """Static output length of one spatial axis, or None when ``length`` is None."""
    return None if length is None else _window_geometry(length, pool, stride, padding)[0]


def _non_negative(value):
    return max(value, 0) if isinstance(value, int) else ops.maximum(value, 0)


def pool_windows(inputs, pool_size, strides, padding, data_format, row_blocks=1):
    """The pooling regions, for ``row_blocks`` consecutive blocks of output rows (1 block: the whole output).

    For each block, a list of ``pool_h * pool_w`` tensors of that block of the pooled output's shape: entry
    ``k = i * pool_w + j`` holds, at each output position, the input at offset ``(i, j)`` of its region.
    ``row_blocks > 1`` needs a static number of output rows.
    With ``padding="same"`` the input is padded with ``-inf``, so padded positions can never be mistaken for
    activations. Returns ``(blocks, most_padded)``: ``most_padded`` bounds the number of ``-inf`` entries in any
    one region (0 when nothing is padded). The Python loops run over the offsets of a region, never over positions.

    Strided slices are slow on CPU, so each spatial axis of length ``stride * (out + q)`` is reshaped to
    ``(out + q, stride)``: the unit at ``offset + stride * t`` is then entry ``(t + offset // stride, offset %
    stride)``, and every window is a plain slice of one reshaped tensor. The rows' phase axis and the columns' group
    axis are adjacent in memory and merged into one (row phase ``r`` and column group ``g`` at ``r * groups + g``),
    so the reshaped tensor has 5 axes, not 6: TensorFlow Lite slices tensors of at most 5 axes.
    """
    axes = spatial_axes(data_format)
    shape = ops.shape(inputs)
    pad_width = [[0, 0] for _ in range(4)]
    crop = [slice(None)] * 4
    reshaped = list(shape)
    per_axis = []  # (output length, [(start, phase) for each offset of the window])
    least_real = 1  # fewest real (unpadded) units in a region
    for axis, pool, stride in zip(axes, pool_size, strides, strict=True):
        out, (low, high) = _window_geometry(shape[axis], pool, stride, padding)
        total = low + high
        least_real *= pool - total if isinstance(total, int) else 1
        groups = out + (pool - 1) // stride
        needed = stride * groups
        # Pad "same" with -inf, then to a multiple of the stride (those extra units are never read), or crop.
        pad_width[axis] = [low, high + _non_negative(needed - shape[axis] - total)]
        crop[axis] = slice(0, needed)
        reshaped[axis] = (groups, stride)
        per_axis.append((out, [divmod(offset, stride) for offset in range(pool)]))
    if any(not isinstance(size, int) or size != 0 for pads in pad_width for size in pads):
        inputs = ops.pad(inputs, pad_width, constant_values=float("-inf"))
    if any(not isinstance(shape[axis], int) or shape[axis] + sum(pad_width[axis]) != crop[axis].stop for axis in axes):
        inputs = inputs[tuple(crop)]
    first = axes[0]  # the rows' axis; the columns' axis is first + 1
    (row_groups, row_stride), (col_groups, col_stride) = reshaped[first], reshaped[first + 1]
    new_shape = [*reshaped[:first], row_groups, row_stride * col_groups, col_stride, *reshaped[first + 2 :]]
    inputs = ops.reshape(inputs, new_shape)
    (out_rows, row_offsets), (out_cols, col_offsets) = per_axis

    def windows(rows):
        selected = []
        for row_start, row_phase in row_offsets:
            for col_start, col_phase in col_offsets:
                index = [slice(None)] * len(new_shape)
                index[first] = slice(row_start + rows.start, row_start + rows.stop)
                merged_start = col_start if row_phase == 0 else row_phase * col_groups + col_start
                index[first + 1] = slice(merged_start, merged_start + out_cols)
                index[first + 2] = col_phase
                selected.append(inputs[tuple(index)])
        return selected

    most_padded = pool_size[0] * pool_size[1] - least_real
    if row_blocks == 1:
        return [windows(slice(0, out_rows))], most_padded
    size = -(-out_rows // row_blocks)
    return [windows(slice(start, min(start + size, out_rows))) for start in range(0, out_rows, size)], most_padded


def average_pool(inputs, pool_size, strides, padding, data_format):
    """`keras.ops.average_pool` that, with ``padding="same"``, divides by the number of real units of each region on
    every backend, as TensorFlow and JAX do.

    Keras's PyTorch backend pads an uneven "same" padding (more at the end than at the start) by repeating the edge
    values, which then count in the average. There the input is padded with zeros instead and its average pool is
    divided by the average pool of the indicator of real units.
    """
    if padding != "same" or keras.backend.backend() != "torch":
        return ops.average_pool(inputs, pool_size, strides, padding, data_format)
    axes = spatial_axes(data_format)
    shape = ops.shape(inputs)
    pad_width = [[0, 0] for _ in range(4)]
    real_shape = [1, 1, 1, 1]
    for axis, pool, stride in zip(axes, pool_size, strides, strict=True):
        pad_width[axis] = list(_window_geometry(shape[axis], pool, stride, padding)[1])
        real_shape[axis] = shape[axis]
    if all(pad_width[axis][0] == pad_width[axis][1] for axis in axes):
        return ops.average_pool(inputs, pool_size, strides, padding, data_format)
    sums = ops.average_pool(ops.pad(inputs, pad_width), pool_size, strides, "valid", data_format)
    real = ops.pad(ops.ones(real_shape, inputs.dtype), pad_width)
    return sums / ops.average_pool(real, pool_size, strides, "valid", data_format)


def sorting_network(n):
    """Comparator pairs ``(i, j)``, ``i < j``, of Batcher's odd-even merge sort for ``n`` inputs.

    Applying ``(min, max)`` to each pair in turn sorts any ``n`` values in ascending order; for ``n`` that is not a
    power of two, comparators that would touch indices ``>= n`` are left out (as if those were ``+inf``).
    """
    pairs = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def sort_tensors(values):
    """Sorts a list of same-shaped tensors elementwise: ``out[0] <= out[1] <= ...`` at every position."""
    values = list(values)
    for i, j in sorting_network(len(values)):
        values[i], values[j] = ops.minimum(values[i], values[j]), ops.maximum(values[i], values[j])
    return values


# Probabilistic weighted pooling runs on blocks of output rows small enough to stay in a core's cache (why, and what
# it gains: docs/design.md). The batch is often unknown while tracing (Keras's predict and fit trace with batch None
# on TensorFlow; JAX's export traces with a symbolic batch, which has no integer size either): blocks are then sized
# for a batch of 32, Keras's default batch size.
_BLOCK_BYTES = 256 * 1024
_ASSUMED_BATCH = 32
_MAX_BLOCKS = 32


def _row_blocks(inputs, pool_size, strides, padding, data_format):
    """How many blocks of output rows `probabilistic_weighted_pooling` works on (1 when a size is unknown)."""
    rows_axis, cols_axis = spatial_axes(data_format)
    shape = list(inputs.shape)
    rows = pooling_output_length(shape[rows_axis], pool_size[0], strides[0], padding)
    cols = pooling_output_length(shape[cols_axis], pool_size[1], strides[1], padding)
    channels = shape[1 if data_format == "channels_first" else 3]
    if rows is None or cols is None or channels is None:
        return 1
    batch = shape[0] if isinstance(shape[0], int) else _ASSUMED_BATCH
    pooled_bytes = batch * rows * cols * channels * kd_ops.dtype_size(inputs.dtype)
    return int(min(rows, _MAX_BLOCKS, max(1, -(-pooled_bytes // _BLOCK_BYTES))))


def probabilistic_weighted_pooling(inputs, rate, pool_size, strides=None, padding="valid", data_format=None):
    """Probabilistic weighted pooling (Wu & Gu 2015, eq. 11), the test-time output of max-pooling dropout.

    For a region with activations sorted ``a_1 <= ... <= a_n``, output ``sum_i keep * rate^(n - i) * a_i``:
    ``keep * rate^(n - i)`` is the probability that ``a_i`` is the largest unit kept (``a_i`` kept, every larger
    unit dropped), and the remaining probability ``rate^n`` (every unit dropped) goes to the output 0. This is the
    exact expectation of `MaxPoolingDropout2D`'s training output for any real inputs. With ``padding="same"`` the
    padded positions are not units: a region with ``m < n`` units uses the weights of its ``m`` units only.

    Args:
        inputs: 4D float tensor.
        rate: float in [0, 1), drop probability (the paper's ``p`` is the retain probability ``1 - rate``).
        pool_size, strides, padding, data_format: as in `keras.ops.max_pool` (tuples of 2 ints, "valid"/"same").

    Returns:
        The pooled tensor, of the shape `keras.ops.max_pool` gives.
    """
    data_format = check_data_format(data_format)
    strides = pool_size if strides is None else strides
    if rate == 0:
        return ops.max_pool(inputs, pool_size, strides, padding, data_format)
    row_blocks = _row_blocks(inputs, pool_size, strides, padding, data_format)
    blocks, most_padded = pool_windows(inputs, pool_size, strides, padding, data_format, row_blocks)
    pooled = [_weighted_pool(windows, rate, most_padded) for windows in blocks]
    return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=spatial_axes(data_format)[0])


def _weighted_pool(windows, rate, most_padded):
    """``sum_i keep * rate^(n - i) * a_i`` over the sorted windows (``most_padded`` of them may hold -inf)."""
    ordered = sort_tensors(windows)
    # Padded entries are -inf and sort first: they are not units, so they contribute 0.
    for i in range(most_padded):
        ordered[i] = ops.where(ops.equal(ordered[i], float("-inf")), ops.zeros_like(ordered[i]), ordered[i])
    # Horner's scheme for sum_i keep * rate^(n - 1 - i) * ordered[i] (0-based): no underflow of rate^k in float16.
    total = ordered[0]
    for value in ordered[1:]:
        total = total * rate + value
    return total * (1.0 - rate)


class _PoolingDropout(StochasticLayer):
    """Base of the pooling dropout layers: `rate`, pooling geometry, shape checks and config."""

    def __init__(self, rate, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.pool_size = check_int_tuple("pool_size", pool_size, 2)
        self.strides = self.pool_size if strides is None else check_int_tuple("strides", strides, 2)
        self.padding = check_choice("padding", padding, PADDINGS)
        self.data_format = check_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def check_input_shape(self, input_shape):
        if self.padding == "valid":
            for axis, pool in zip(spatial_axes(self.data_format), self.pool_size, strict=True):
                if input_shape[axis] is not None and input_shape[axis] < pool:
                    raise ValueError(
                        f"{type(self).__name__} with padding='valid' needs spatial sizes >= pool_size="
                        f"{self.pool_size}. Received inputs of shape {tuple(input_shape)} "
                        f"(data_format={self.data_format!r}); use padding='same' or a smaller pool_size."
                    )

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        output_shape = list(input_shape)
        for axis, pool, stride in zip(spatial_axes(self.data_format), self.pool_size, self.strides, strict=True):
            output_shape[axis] = pooling_output_length(input_shape[axis], pool, stride, self.padding)
        return tuple(output_shape)

    def _pool(self, inputs, pool):
        return pool(inputs, self.pool_size, self.strides, self.padding, self.data_format)

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
            "data_format": self.data_format,
        }


@register
class MaxPoolingDropout2D(_PoolingDropout):
    """Max-pooling dropout with probabilistic weighted pooling at test time (Wu & Gu 2015).

    While training, each input unit of a pooling region is kept with probability ``keep = 1 - rate`` and the
    region outputs the largest kept unit, with no rescaling: max-pooling picks unit ``a_i`` (sorted
    ``a_1 <= ... <= a_n``) with probability ``keep * rate^(n - i)``, a multinomial choice among the region's units.
    Dropped units are left out of the max (rather than set to 0) and a region whose units are all dropped outputs 0
    (an input equal to the dtype's lowest finite value, e.g. -65504 in float16, counts as dropped).
    For the paper's non-negative (post-ReLU) inputs this is exactly ``max_pool(x * mask)``; for negative inputs it
    keeps "the largest kept unit", and the probabilistic weighted pooling below stays the exact expectation of the
    training output (with dropped units set to 0 instead, any dropped unit would beat an all-negative region).

    At test time:
        - ``inference="probabilistic"`` (probabilistic weighted pooling, the paper's eq. 11):
          ``sum_i keep * rate^(n - i) * a_i``, the exact expectation of the training output, for any real inputs.
        - ``inference="scaled"``: ``keep * max(a)``, the scaling used by standard dropout.

    With ``padding="same"``, padded positions are not units: they are never picked in training and carry no weight
    in probabilistic weighted pooling.

    Args:
        rate: Float in [0, 1), probability of dropping each input unit.
        pool_size: int or tuple of 2 ints, size of the pooling regions.
        strides: None (= ``pool_size``), an int or a tuple of 2 ints.
        padding: ``"valid"`` or ``"same"`` (as in `keras.layers.MaxPooling2D`).
        data_format: ``"channels_last"`` (default: `keras.config.image_data_format()`) or ``"channels_first"``.
        inference: ``"probabilistic"`` or ``"scaled"``, the test-time pooling.
        seed: None or int, for reproducible masks.
        mc: bool, Monte Carlo mode: stochastic on every call (with the training formula).

    Call arguments:
        inputs: 4D float tensor.
        training: Python bool, whether to drop units.

    Input shape: `(batch, rows, cols, channels)` (channels_last) or `(batch, channels, rows, cols)`.
    Output shape: as `keras.layers.MaxPooling2D` with the same pool_size, strides and padding.

    Reference:
        - [Wu & Gu, 2015](https://arxiv.org/abs/1512.01400)
    """

    def __init__(
        self,
        rate,
        pool_size=(2, 2),
        strides=None,
        padding="valid",
        data_format=None,
        inference="probabilistic",
        seed=None,
        mc=False,
        **kwargs,
    ):
        super().__init__(rate, pool_size, strides, padding, data_format, seed=seed, mc=mc, **kwargs)
        self.inference = check_choice("inference", inference, INFERENCES)

    def _test_output(self, inputs):
        if self.inference == "scaled":
            pooled = self._pool(inputs, ops.max_pool)
            return pooled if self.rate == 0 else pooled * (1.0 - self.rate)
        return probabilistic_weighted_pooling(
            inputs, self.rate, self.pool_size, self.strides, self.padding, self.data_format
        )

    def _sample(self, inputs):
        if self.rate == 0:
            return self._pool(inputs, ops.max_pool)
        kept = kd_ops.bernoulli_mask(
            ops.shape(inputs), 1.0 - self.rate, self.seed_generator, dtype="bool", batch_axis=0
        )
        # Dropped units become the lowest finite value (not -inf: oneDNN's max-pooling turns -inf into it anyway),
        # so they are never the max of a region with a kept unit; a region with none outputs 0.
        lowest = lowest_value(inputs.dtype)
        pooled = self._pool(ops.where(kept, inputs, lowest), ops.max_pool)
        return ops.where(ops.equal(pooled, lowest), ops.zeros_like(pooled), pooled)

    def get_config(self):
        return {**super().get_config(), "inference": self.inference}


@register
class AvgPoolingDropout2D(_PoolingDropout):
    """Average pooling of dropped-out inputs, rescaled so that its expectation is plain average pooling.

    While training, each input unit is kept with probability ``keep = 1 - rate``, the masked input is average-pooled
    and divided by ``keep``: by linearity the expected output is exactly ``average_pool(x)``, the test-time output.
    With ``padding="same"`` Keras's average pooling divides by the number of real units in each region (on
    TensorFlow and JAX; Keras's PyTorch backend counts repeated edge values where the padding is uneven), and so does
    this layer, on every backend.

    Args:
        rate: Float in [0, 1), probability of dropping each input unit.
        pool_size: int or tuple of 2 ints, size of the pooling regions.
        strides: None (= ``pool_size``), an int or a tuple of 2 ints.
        padding: ``"valid"`` or ``"same"`` (as in `keras.layers.AveragePooling2D`).
        data_format: ``"channels_last"`` (default: `keras.config.image_data_format()`) or ``"channels_first"``.
        seed: None or int, for reproducible masks.
        mc: bool, Monte Carlo mode: stochastic on every call (with the training formula).

    Call arguments:
        inputs: 4D float tensor.
        training: Python bool, whether to drop units.

    Input shape: `(batch, rows, cols, channels)` (channels_last) or `(batch, channels, rows, cols)`.
    Output shape: as `keras.layers.AveragePooling2D` with the same pool_size, strides and padding.

    Reference:
        - [Wu & Gu, 2015](https://arxiv.org/abs/1512.01400) (pooling dropout, §3)
    """

    def _test_output(self, inputs):
        return self._pool(inputs, average_pool)

    def _sample(self, inputs):
        if self.rate == 0:
            return self._test_output(inputs)
        masked = kd_ops.dropout(inputs, self.rate, seed=self.seed_generator, scaling="weight_scaling")
        # Rescale after pooling: the pooled tensor is the smaller one.
        return self._pool(masked, average_pool) * (1.0 / (1.0 - self.rate))
