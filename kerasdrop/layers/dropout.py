"""The standard family: Bernoulli, Gaussian, stochastic-rate and spatial dropout for any tensor, and stochastic
depth (dropout of a residual branch per sample)."""

import keras
from keras import ops

from kerasdrop import _random
from kerasdrop import ops as kd_ops
from kerasdrop._axes import per_channel_shape
from kerasdrop._validation import (
    check_data_format,
    check_noise_shape,
    check_non_negative_float,
    check_positive_int,
    check_rate,
)
from kerasdrop.layers._base import ElementwiseDropout, RateDropout, register


@register
class Dropout(RateDropout):
    """Bernoulli dropout (Hinton et al. 2012; Srivastava et al. 2014), a drop-in for `keras.layers.Dropout`.

    While training each unit is kept with probability ``keep = 1 - rate``. With ``scaling="inverted"`` (the Keras
    convention) kept units are multiplied by ``1/keep`` and the layer is the identity at test time; with
    ``scaling="weight_scaling"`` (the papers' formulation) kept units pass unscaled and the test-time output is
    ``keep * x``. Both give the same expected output in training and at test time.

    Args:
        rate: Float in [0, 1), fraction of the units dropped.
        noise_shape: None or a tuple with one entry per input axis: the shape of the mask, broadcast over the input.
            None entries take the input's size, 1 shares the mask along that axis; e.g. ``(None, 1, None)`` on
            ``(batch, time, features)`` drops the same features at every time step.
        seed: None or int, for reproducible masks. Without one, on PyTorch, masks come from torch's global
            generator, as Keras's ``Dropout`` does there (``keras.utils.set_random_seed`` seeds it).
        scaling: ``"inverted"`` or ``"weight_scaling"``.
        mc: bool, Monte Carlo mode: stochastic on every call (with the training formula).

    Call arguments:
        inputs: float tensor of any rank.
        training: Python bool, whether to drop units.

    Input/output shape: any, unchanged.

    Reference:
        - [Hinton et al., 2012](https://arxiv.org/abs/1207.0580)
        - [Srivastava et al., 2014](https://jmlr.org/papers/v15/srivastava14a.html)
    """

    def __init__(self, rate, noise_shape=None, seed=None, scaling="inverted", mc=False, **kwargs):
        super().__init__(rate=rate, scaling=scaling, seed=seed, mc=mc, **kwargs)
        self.noise_shape = check_noise_shape(noise_shape)

    def check_input_shape(self, input_shape):
        if self.noise_shape is not None:
            _check_broadcastable(self.noise_shape, input_shape)

    def _noise_shape(self, inputs):
        return self.noise_shape

    @property
    def noise_shared_across_batch(self):
        return self.noise_shape is not None and self.noise_shape[0] == 1

    def get_config(self):
        return {**super().get_config(), "noise_shape": self.noise_shape}


def _check_broadcastable(noise_shape, input_shape):
    message = (
        f"Invalid value received for argument `noise_shape`: it must have one entry per input axis, each None, 1 "
        f"or the input's size there. Received: noise_shape={noise_shape} for inputs of shape {tuple(input_shape)}"
    )
    if len(noise_shape) != len(input_shape):
        raise ValueError(message)
    for size, input_size in zip(noise_shape, input_shape, strict=True):
        if size is not None and size != 1 and input_size is not None and size != input_size:
            raise ValueError(message)


@register
class GaussianDropout(ElementwiseDropout):
    """Multiplicative Gaussian noise with the variance of dropout (Srivastava et al. 2014, §10).

    While training ``y = x * g`` with ``g ~ N(1, rate / (1 - rate))``, the mean and variance of inverted Bernoulli
    dropout at the same rate; identity at test time.

    Args:
        rate: Float in [0, 1), the equivalent drop probability.
        seed: None or int.
        mc: bool, Monte Carlo mode.

    Reference:
        - [Srivastava et al., 2014](https://jmlr.org/papers/v15/srivastava14a.html)
    """

    def __init__(self, rate, seed=None, mc=False, **kwargs):
        super().__init__(seed=seed, mc=mc, **kwargs)
        self.rate = check_rate("rate", rate)

    def _sample(self, inputs):
        return kd_ops.gaussian_dropout(inputs, self.rate, seed=self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


# Park & Kwak clip the sampled rate so that a call never drops (nearly) everything.
_MAX_SAMPLED_RATE = 0.95


@register
class StochasticDropout(ElementwiseDropout):
    """Inverted dropout whose rate is itself random (Park & Kwak 2016).

    On each training call a rate ``r ~ N(mean_rate, stddev^2)`` is drawn, clipped to [0, 0.95], and the input is
    dropped with inverted dropout at rate ``r``. Since the scaling uses the rate actually drawn, every call is
    unbiased and the layer is the identity at test time.

    Args:
        mean_rate: Float in [0, 1), mean of the sampled rate.
        stddev: Float >= 0, standard deviation of the sampled rate.
        noise_shape: as in `Dropout`.
        seed: None or int.
        mc: bool, Monte Carlo mode.

    Reference:
        - [Park & Kwak, 2016](https://doi.org/10.1007/978-3-319-54184-6_12)
    """

    def __init__(self, mean_rate, stddev, noise_shape=None, seed=None, mc=False, **kwargs):
        super().__init__(seed=seed, mc=mc, **kwargs)
        self.mean_rate = check_rate("mean_rate", mean_rate)
        self.stddev = check_non_negative_float("stddev", stddev)
        self.noise_shape = check_noise_shape(noise_shape)

    def check_input_shape(self, input_shape):
        if self.noise_shape is not None:
            _check_broadcastable(self.noise_shape, input_shape)

    @property
    def noise_shared_across_batch(self):
        return True  # one rate per call

    def sample_rate(self):
        """One draw of the call's rate, a float32 scalar tensor in [0, 0.95]."""
        rate = _random.normal((), self.seed_generator, mean=self.mean_rate, stddev=self.stddev, dtype=None)
        return ops.clip(rate, 0.0, _MAX_SAMPLED_RATE)

    def _sample(self, inputs):
        return kd_ops.dropout(inputs, self.sample_rate(), noise_shape=self.noise_shape, seed=self.seed_generator)

    def get_config(self):
        return {
            **super().get_config(),
            "mean_rate": self.mean_rate,
            "stddev": self.stddev,
            "noise_shape": self.noise_shape,
        }


@register
class SpatialDropout1D(RateDropout):
    """Spatial dropout for 1D feature maps (Tompson et al. 2015).

    Drops entire channels: one Bernoulli draw per (sample, channel), shared by every time step, so that strongly
    correlated neighbouring activations cannot stand in for a dropped one. Scaling as in `Dropout`.

    Args:
        rate: Float in [0, 1), fraction of channels dropped.
        data_format: "channels_last" (default: `keras.config.image_data_format()`) or "channels_first".
        seed: None or int.
        scaling: "inverted" or "weight_scaling".
        mc: bool, Monte Carlo mode.

    Input/output shape: `(batch, steps, channels)` (channels_last) or `(batch, channels, steps)` (channels_first).

    Reference:
        - [Tompson et al., 2015](https://arxiv.org/abs/1411.4280)
    """

    def __init__(self, rate, data_format=None, seed=None, scaling="inverted", mc=False, **kwargs):
        super().__init__(rate=rate, scaling=scaling, seed=seed, mc=mc, **kwargs)
        self.data_format = check_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def _noise_shape(self, inputs):
        return per_channel_shape(ops.shape(inputs), self.data_format)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


@register
class SpatialDropout2D(RateDropout):
    """Spatial dropout for 2D feature maps (Tompson et al. 2015).

    Drops entire channels: one Bernoulli draw per (sample, channel), shared by every pixel, so that strongly
    correlated neighbouring activations cannot stand in for a dropped one. Scaling as in `Dropout`.

    Args:
        rate: Float in [0, 1), fraction of channels dropped.
        data_format: "channels_last" (default: `keras.config.image_data_format()`) or "channels_first".
        seed: None or int.
        scaling: "inverted" or "weight_scaling".
        mc: bool, Monte Carlo mode.

    Input/output shape: `(batch, rows, cols, channels)` (channels_last) or
    `(batch, channels, rows, cols)` (channels_first).

    Reference:
        - [Tompson et al., 2015](https://arxiv.org/abs/1411.4280)
    """

    def __init__(self, rate, data_format=None, seed=None, scaling="inverted", mc=False, **kwargs):
        super().__init__(rate=rate, scaling=scaling, seed=seed, mc=mc, **kwargs)
        self.data_format = check_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _noise_shape(self, inputs):
        return per_channel_shape(ops.shape(inputs), self.data_format)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


@register
class SpatialDropout3D(RateDropout):
    """Spatial dropout for 3D feature maps (Tompson et al. 2015).

    Drops entire channels: one Bernoulli draw per (sample, channel), shared by every voxel, so that strongly
    correlated neighbouring activations cannot stand in for a dropped one. Scaling as in `Dropout`.

    Args:
        rate: Float in [0, 1), fraction of channels dropped.
        data_format: "channels_last" (default: `keras.config.image_data_format()`) or "channels_first".
        seed: None or int.
        scaling: "inverted" or "weight_scaling".
        mc: bool, Monte Carlo mode.

    Input/output shape: `(batch, dim1, dim2, dim3, channels)` (channels_last) or
    `(batch, channels, dim1, dim2, dim3)` (channels_first).

    Reference:
        - [Tompson et al., 2015](https://arxiv.org/abs/1411.4280)
    """

    def __init__(self, rate, data_format=None, seed=None, scaling="inverted", mc=False, **kwargs):
        super().__init__(rate=rate, scaling=scaling, seed=seed, mc=mc, **kwargs)
        self.data_format = check_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=5)

    def _noise_shape(self, inputs):
        return per_channel_shape(ops.shape(inputs), self.data_format)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


@register
class DropPath(RateDropout):
    """Stochastic depth (Huang et al. 2016): drops the whole output of a residual branch for some samples.

    Put it at the end of a residual branch, ``x + DropPath(rate)(branch(x))``: while training, the branch output of
    each sample is dropped with probability ``rate`` (one Bernoulli draw per sample, shared by every other axis,
    mask shape ``(batch, 1, ..., 1)``), so that sample sees the block as the identity; kept outputs are multiplied by
    ``1/keep`` (``scaling="inverted"``, the identity at test time) or left unscaled (``"weight_scaling"``, the
    paper's formulation: ``keep · x`` at test time). Deeper blocks usually get higher rates: see
    `drop_path_rates`. Also exported as ``StochasticDepth``.

    Args:
        rate: Float in [0, 1), the probability of dropping a sample's branch output.
        seed: None or int, for reproducible masks. Without one, on PyTorch, masks come from torch's global
            generator, as for `Dropout`.
        scaling: ``"inverted"`` or ``"weight_scaling"``.
        mc: bool, Monte Carlo mode: stochastic on every call (with the training formula).

    Call arguments:
        inputs: float tensor of rank >= 1, the output of a residual branch, batch first.
        training: Python bool, whether to drop.

    Input/output shape: any rank >= 1, unchanged.

    Reference:
        - [Huang et al., 2016](https://arxiv.org/abs/1603.09382)
    """

    def __init__(self, rate, seed=None, scaling="inverted", mc=False, **kwargs):
        super().__init__(rate=rate, scaling=scaling, seed=seed, mc=mc, **kwargs)

    def check_input_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ValueError(
                f"Layer {self.name!r} (DropPath) expects inputs of rank >= 1 with the batch first. "
                f"Received inputs of shape {tuple(input_shape)}"
            )

    def _noise_shape(self, inputs):
        return (ops.shape(inputs)[0], *([1] * (len(inputs.shape) - 1)))


StochasticDepth = DropPath


def drop_path_rates(depth, max_rate):
    """The linear stochastic-depth schedule of Huang et al. 2016: ``max_rate · i / (depth - 1)`` for block ``i``.

    The first of ``depth`` residual blocks gets 0 and the last ``max_rate`` (one block: ``[0.0]``), for
    ``[DropPath(rate) for rate in drop_path_rates(depth, max_rate)]``.

    Args:
        depth: positive int, the number of residual blocks.
        max_rate: float in [0, 1), the rate of the last block.

    Returns:
        A list of ``depth`` Python floats.
    """
    depth = check_positive_int("depth", depth)
    max_rate = check_rate("max_rate", max_rate)
    if depth == 1:
        return [0.0]
    return [max_rate * index / (depth - 1) for index in range(depth)]
