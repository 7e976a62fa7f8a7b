"""Structured image dropout: Cutout (DeVries & Taylor 2017), DropBlock (Ghiasi et al. 2018) and Max-Drop (Park &
Kwak 2016), which drops the strongest activations of feature maps.

Pure functions first (the masks), then the layers.
"""

import numbers

import keras
from keras import ops

from kerasdrop import _random
from kerasdrop import ops as kd_ops
from kerasdrop._axes import channel_axis, spatial_axes
from kerasdrop._validation import (
    ArgumentTypeError,
    _message,
    check_choice,
    check_data_format,
    check_float,
    check_positive_int,
    check_rate,
)
from kerasdrop.layers._base import ElementwiseDropout, StochasticLayer, register


def _minimum(a, b):
    """``min`` of two sizes that are Python ints or scalar tensors."""
    if isinstance(a, int) and isinstance(b, int):
        return min(a, b)
    return ops.minimum(a, b)


def cutout_mask(batch, height, width, side, holes, seed):
    """A boolean ``(batch, height, width)`` mask, True inside ``holes`` squares of ``side`` pixels per sample.

    Each square's centre is drawn uniformly among the ``height * width`` pixels, independently for every sample
    and hole; the square covers rows ``[cy - side // 2, cy - side // 2 + side)`` (columns alike), clipped to the
    image, so a centre near the border leaves a partial square. Holes may overlap.
    """
    centres = _random.randint((batch, holes, 1), 0, height * width, seed, dtype="int32", batch_axis=0)
    rows = ops.arange(height, dtype="int32")
    cols = ops.arange(width, dtype="int32")
    top = centres // width - side // 2
    left = centres % width - side // 2
    in_rows = ops.logical_and(rows >= top, rows < top + side)  # (batch, holes, height)
    in_cols = ops.logical_and(cols >= left, cols < left + side)  # (batch, holes, width)
    inside = ops.logical_and(ops.expand_dims(in_rows, 3), ops.expand_dims(in_cols, 2))
    return ops.any(inside, axis=1)


def dropblock_gamma(rate, height, width, block_height, block_width):
    """DropBlock's seed probability: ``gamma = rate / block_area * feat_area / valid_seed_area`` (eq. 1).

    Seeds lie where a whole block fits, so ``gamma * valid_seed_area * block_area = rate * feat_area``: the blocks
    would cover a fraction ``rate`` of the map if they never overlapped.
    """
    sizes = (height, width, block_height, block_width)
    if not all(isinstance(size, int) for size in sizes):  # sizes known only when the graph runs
        height, width, block_height, block_width = (ops.cast(size, "float32") for size in sizes)
    valid_seed_area = (height - block_height + 1) * (width - block_width + 1)
    return rate * (height * width) / (block_height * block_width) / valid_seed_area


def dropblock_keep_mask(shape, rate, block_size, data_format, seed):
    """A float32 mask of ``shape`` (a 4D input's shape): 0 inside the dropped blocks, 1 elsewhere.

    One independent mask per (sample, channel) feature map. Seeds are Bernoulli(``gamma``) on the positions where a
    whole block fits (the reference implementation's ``valid_block_center``); each seed drops the
    ``block_height x block_width`` block whose top-left corner it marks. The block is ``block_size`` clipped to the
    map's sides, as in the reference implementation. Blocks are drawn by zero-padding the seeds by
    ``block - 1`` on both sides and max-pooling with a ``block``-sized window (separably: rows, then columns).
    """
    if data_format == "channels_first":
        batch, channels, height, width = shape
    else:
        batch, height, width, channels = shape
    # Pooling windows must be static: a side unknown when tracing is assumed to be at least block_size.
    block_height = min(block_size, height) if isinstance(height, int) else block_size
    block_width = min(block_size, width) if isinstance(width, int) else block_size
    gamma = dropblock_gamma(rate, height, width, block_height, block_width)
    seeds_height, seeds_width = height - block_height + 1, width - block_width + 1
    if data_format == "channels_first":
        # Each (sample, channel) map is independent: fold channels into the batch, one channel, no transposes.
        seeds = kd_ops.bernoulli_mask((batch, channels, seeds_height, seeds_width), gamma, seed, batch_axis=0)
        seeds = ops.reshape(seeds, (batch * channels, seeds_height, seeds_width, 1))
    else:
        seeds = kd_ops.bernoulli_mask((batch, seeds_height, seeds_width, channels), gamma, seed, batch_axis=0)
    rows = ops.pad(seeds, [[0, 0], [block_height - 1, block_height - 1], [0, 0], [0, 0]])
    rows = ops.max_pool(rows, (block_height, 1), strides=1, padding="valid", data_format="channels_last")
    blocks = ops.pad(rows, [[0, 0], [0, 0], [block_width - 1, block_width - 1], [0, 0]])
    blocks = ops.max_pool(blocks, (1, block_width), strides=1, padding="valid", data_format="channels_last")
    if data_format == "channels_first":
        return ops.reshape(1.0 - blocks, (batch, channels, height, width))
    return 1.0 - blocks


class _ImageLayer(StochasticLayer):
    """Base of the image layers: 4D float inputs, output of the input's shape, `data_format`, identity at test."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = check_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _image_size(self, shape):
        rows, cols = spatial_axes(self.data_format)
        return shape[rows], shape[cols]

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        return input_shape

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


def _check_cutout_size(value):
    expected = "a positive integer (pixels) or a float in (0, 1] (fraction of the shorter image side)"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return check_positive_int("size", value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return check_float("size", value, 0.0, 1.0, low_inclusive=False, expected=expected)
    raise ArgumentTypeError(_message("size", expected, value))


@register
class Cutout(_ImageLayer):
    """Cutout: masks out random squares of each image (DeVries & Taylor 2017).

    While training, each sample gets ``holes`` squares of side ``size`` set to ``fill_value`` on every channel.
    Each centre is drawn uniformly over all the image's pixels, independently per sample and per hole, so a square
    may lie partly outside the image, where it is clipped (the paper's choice: this lets the whole image, borders
    included, be cut out as often as the centre). Identity at test time. No rescaling.

    Args:
        size: int, side of the squares in pixels (at most the shorter image side); or float in (0, 1], a fraction
            of the shorter image side, rounded to the nearest pixel (halves up) and at least 1.
        holes: positive int, number of squares per sample (they may overlap).
        fill_value: float, value written into the squares (0 for images normalised to zero mean, as in the paper).
        data_format: ``"channels_last"`` (default: `keras.config.image_data_format()`) or ``"channels_first"``.
        seed: None or int, for reproducible masks.
        mc: bool, Monte Carlo mode: stochastic on every call.

    Call arguments:
        inputs: 4D float tensor.
        training: Python bool, whether to cut out squares.

    Input/output shape: `(batch, rows, cols, channels)` (channels_last) or `(batch, channels, rows, cols)`.

    Reference:
        - [DeVries & Taylor, 2017](https://arxiv.org/abs/1708.04552)
    """

    def __init__(self, size, holes=1, fill_value=0.0, data_format=None, seed=None, mc=False, **kwargs):
        super().__init__(data_format=data_format, seed=seed, mc=mc, **kwargs)
        self.size = _check_cutout_size(size)
        self.holes = check_positive_int("holes", holes)
        self.fill_value = check_float("fill_value", fill_value)

    def check_input_shape(self, input_shape):
        self._check_fits(*self._image_size(input_shape))

    def _check_fits(self, height, width):
        if isinstance(self.size, int) and isinstance(height, int) and isinstance(width, int):
            if self.size > min(height, width):
                raise ValueError(
                    f"Invalid value received for argument `size`: the cutout square ({self.size} pixels) is larger "
                    f"than the image ({height}x{width}, data_format={self.data_format!r}). Received: size={self.size}"
                )

    def side(self, height, width):
        """Side of the squares in pixels for an image of ``height x width`` (ints or scalar tensors)."""
        if isinstance(self.size, int):
            return self.size
        shorter = _minimum(height, width)
        if isinstance(shorter, int):
            return max(1, int(self.size * shorter + 0.5))
        side = ops.cast(ops.floor(self.size * ops.cast(shorter, "float32") + 0.5), "int32")
        return ops.maximum(side, 1)

    def _sample(self, inputs):
        shape = ops.shape(inputs)
        height, width = self._image_size(shape)
        self._check_fits(height, width)
        inside = cutout_mask(shape[0], height, width, self.side(height, width), self.holes, self.seed_generator)
        inside = ops.expand_dims(inside, channel_axis(self.data_format, 4))
        return ops.where(inside, ops.cast(self.fill_value, inputs.dtype), inputs)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "holes": self.holes, "fill_value": self.fill_value}


@register
class DropBlock2D(_ImageLayer):
    """DropBlock: drops contiguous square blocks of each feature map (Ghiasi et al. 2018).

    While training, block seeds are drawn with probability ``gamma`` at every position of each (sample, channel)
    map where a whole ``block_size x block_size`` block fits, and each seed zeroes its block, so that dropped units
    come in whole blocks. ``gamma = rate / block_size^2 * feat_area / valid_seed_area`` (the paper's eq. 1) would
    drop exactly a fraction ``rate`` if blocks never overlapped; since they may, the expected dropped fraction is

        ``E = mean over units u of 1 - (1 - gamma)^c(u)``, ``c(u)`` = number of seed positions whose block covers u,

    which satisfies ``rate * (1 - (block_size^2 - 1) * gamma / 2) <= E <= rate`` (union bound above, the
    second-order Bonferroni bound below); e.g. rate=0.1, block_size=7 on 32x32 maps: gamma=0.0031,
    0.0926 <= E <= 0.1, and exactly E=0.0941. Kept units are multiplied by ``count / count_kept`` over the whole
    batch, so the mean of a constant input is kept exactly. A ``block_size`` larger than a map's side is reduced to
    that side (as in the reference implementation). Identity at test time.

    Args:
        rate: Float in [0, 1), the target fraction of units dropped.
        block_size: positive int, side of the dropped blocks.
        data_format: ``"channels_last"`` (default: `keras.config.image_data_format()`) or ``"channels_first"``.
        seed: None or int, for reproducible masks.
        mc: bool, Monte Carlo mode: stochastic on every call.

    Call arguments:
        inputs: 4D float tensor.
        training: Python bool, whether to drop blocks.

    Input/output shape: `(batch, rows, cols, channels)` (channels_last) or `(batch, channels, rows, cols)`.

    Reference:
        - [Ghiasi et al., 2018](https://arxiv.org/abs/1810.12890)
        - [Reference implementation](https://github.com/tensorflow/tpu/blob/master/models/official/resnet/resnet_model.py)
    """

    def __init__(self, rate, block_size=7, data_format=None, seed=None, mc=False, **kwargs):
        super().__init__(data_format=data_format, seed=seed, mc=mc, **kwargs)
        self.rate = check_rate("rate", rate)
        self.block_size = check_positive_int("block_size", block_size)

    def _sample(self, inputs):
        if self.rate == 0:
            return inputs
        shape = ops.shape(inputs)
        keep_mask = dropblock_keep_mask(shape, self.rate, self.block_size, self.data_format, self.seed_generator)
        # count / count_kept in float32: the counts overflow float16; an all-dropped batch gives zeros, not NaN.
        count = ops.cast(ops.size(keep_mask), "float32")
        scale = count / ops.maximum(ops.sum(keep_mask), 1.0)
        scaled = inputs * ops.cast(scale, inputs.dtype)
        return ops.where(keep_mask > 0, scaled, ops.zeros_like(inputs))  # dropped units exactly 0, inf included

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "block_size": self.block_size}


MAXDROP_MODES = ("spatial", "channel")


@register
class MaxDrop2D(ElementwiseDropout):
    """Max-Drop: drops the strongest activations (Park & Kwak 2016).

    While training:
        - ``mode="spatial"``: the maximum of each (sample, channel) feature map is set to 0 with probability
          ``rate`` (one draw per feature map);
        - ``mode="channel"``: at each (sample, position), the maximum across channels is set to 0 with probability
          ``rate`` (one draw per position).

    Every other unit passes unchanged and there is no rescaling; at test time the maxima are multiplied by
    ``keep = 1 - rate``, their expected training value. Units tied for the maximum are dropped (and scaled)
    together.

    Args:
        rate: Float in [0, 1), probability of dropping each maximum.
        mode: ``"spatial"`` or ``"channel"``.
        data_format: ``"channels_last"`` (default: `keras.config.image_data_format()`) or ``"channels_first"``.
        seed: None or int, for reproducible masks.
        mc: bool, Monte Carlo mode: stochastic on every call (with the training formula).

    Call arguments:
        inputs: 4D float tensor.
        training: Python bool, whether to drop maxima.

    Input/output shape: `(batch, rows, cols, channels)` (channels_last) or `(batch, channels, rows, cols)`.

    Reference:
        - [Park & Kwak, 2016](https://doi.org/10.1007/978-3-319-54184-6_12)
    """

    def __init__(self, rate, mode="spatial", data_format=None, seed=None, mc=False, **kwargs):
        super().__init__(seed=seed, mc=mc, **kwargs)
        self.rate = check_rate("rate", rate)
        self.mode = check_choice("mode", mode, MAXDROP_MODES)
        self.data_format = check_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _reduced_axes(self):
        """Axes over which a maximum is taken: the spatial axes ("spatial") or the channel axis ("channel")."""
        if self.mode == "spatial":
            return spatial_axes(self.data_format)
        return (channel_axis(self.data_format, 4),)

    def _maxima(self, inputs):
        axes = self._reduced_axes()
        # `initial` makes the maximum of an empty batch defined (an empty result) instead of an error.
        maxima = ops.max(inputs, axis=axes, keepdims=True, initial=float("-inf"))
        return ops.equal(inputs, maxima), axes

    def _test_output(self, inputs):
        if self.rate == 0:
            return inputs
        maxima, _ = self._maxima(inputs)
        return ops.where(maxima, inputs * (1.0 - self.rate), inputs)

    def _sample(self, inputs):
        maxima, axes = self._maxima(inputs)
        shape = ops.shape(inputs)
        noise_shape = tuple(1 if axis in axes else shape[axis] for axis in range(4))
        # P(True) = rate
        dropped = kd_ops.bernoulli_mask(noise_shape, self.rate, self.seed_generator, dtype="bool", batch_axis=0)
        return ops.where(ops.logical_and(maxima, dropped), ops.zeros_like(inputs), inputs)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "mode": self.mode, "data_format": self.data_format}
