"""Noise on the weights or on the pre-activations of a layer's own kernel.

`DropConnectDense` and `DropConnectConv2D` (Wan et al. 2013) drop individual weights; `StandoutDense` (Ba & Frey
2013) drops units with a probability computed from their own input; `FastDropoutDense` (Wang & Manning 2013)
samples the Gaussian that dropout's pre-activation approaches. Each subclasses `keras.layers.Dense` or
`keras.layers.Conv2D`, so weight names (`kernel`, `bias`), initializers, regularizers and constraints are Keras's.
"""

import keras
from keras import ops

from kerasdrop import ops as kd_ops
from kerasdrop._validation import check_bool, check_choice, check_float, check_positive_int, check_rate
from kerasdrop.layers._base import SCALINGS, StochasticLayer, register
from kerasdrop.layers._kernel_noise import (
    add_bias,
    affine,
    affine_of_joint_draws,
    affine_of_squares,
    apply_kernel_per_sample,
    is_linear,
)

INFERENCES = ("mean", "gaussian")


class _DropConnect(StochasticLayer):
    """DropConnect of the kernel and bias of a ``keras.layers.Dense`` or ``Conv2D`` base."""

    def __init__(
        self,
        *args,
        rate,
        per_sample=False,
        inference="mean",
        inference_samples=64,
        scaling="inverted",
        seed=None,
        mc=False,
        **kwargs,
    ):
        super().__init__(*args, seed=seed, mc=mc, **kwargs)
        self.rate = check_rate("rate", rate)
        self.per_sample = check_bool("per_sample", per_sample)
        self.inference = check_choice("inference", inference, INFERENCES)
        self.inference_samples = check_positive_int("inference_samples", inference_samples)
        self.scaling = check_choice("scaling", scaling, SCALINGS)

    @property
    def noise_shared_across_batch(self):
        return not self.per_sample

    def _sample(self, inputs):
        if self.rate == 0:
            return self.activation(affine(self, inputs, self.kernel, self.bias))
        keep = 1.0 - self.rate
        dtype = self.compute_dtype
        kernel, bias = self.kernel, self.bias
        batch = (ops.shape(inputs)[0],) if self.per_sample else ()
        kernel = kernel * self._mask(batch + tuple(kernel.shape), keep, dtype)
        if bias is not None:
            bias = bias * self._mask(batch + tuple(bias.shape), keep, dtype)
        if self.per_sample:
            outputs = apply_kernel_per_sample(self, inputs, kernel)
            outputs = outputs if bias is None else add_bias(self, outputs, bias)
        else:
            outputs = affine(self, inputs, kernel, bias)
        if self.scaling == "inverted":
            # Rescale the (smaller) output rather than the kernel: (W∘M x + b∘m) / keep.
            outputs = outputs * ops.cast(1.0 / keep, dtype)
        return self.activation(outputs)

    def _mask(self, shape, keep, dtype):
        # A dyadic keep (0.5, 0.75, ...) takes its masks from the bits of few random integers, with exactly the same
        # distribution; drawing one uniform per weight is most of DropConnect's cost on CPU. Per-sample masks have
        # the batch first (under MCDropout's joint draws, one kernel per Monte Carlo sample).
        batch_axis = 0 if self.per_sample else None
        if kd_ops.dyadic_fraction(keep) is not None:
            return kd_ops.packed_bernoulli_mask(shape, keep, self.seed_generator, dtype=dtype, batch_axis=batch_axis)
        return kd_ops.bernoulli_mask(shape, keep, self.seed_generator, dtype, batch_axis=batch_axis)

    def _test_output(self, inputs):
        keep = 1.0 - self.rate
        weight_scaling = self.scaling == "weight_scaling" and self.rate > 0
        mean = affine(self, inputs, self.kernel, self.bias)
        if weight_scaling:
            mean = mean * ops.cast(keep, mean.dtype)
        if self.inference == "mean" or self.rate == 0 or is_linear(self.activation):
            return self.activation(mean)
        # Moment matching (Wan et al. 2013, §3): each pre-activation is a sum of many independent dropped terms, so
        # it is nearly Gaussian with the mean above and variance ((W∘W)(x∘x) + b∘b) times rate/keep (inverted
        # form) or keep·rate (weight scaling). Average the activation over points of that Gaussian: its quantiles
        # at (k + 1/2) / inference_samples, a stratified sample that needs no random numbers (so the test-time
        # output is deterministic, and converts to TensorFlow Lite, which has no stateless random ops).
        factor = keep * self.rate if weight_scaling else self.rate / keep
        variance = affine_of_squares(self, inputs, self.kernel, self.bias, square_weights=True) * factor
        points = kd_ops.gaussian_quantile_points(mean, variance, self.inference_samples)
        return ops.mean(self.activation(points), axis=0)

    def get_config(self):
        return {
            **super().get_config(),
            "rate": self.rate,
            "per_sample": self.per_sample,
            "inference": self.inference,
            "inference_samples": self.inference_samples,
            "scaling": self.scaling,
        }


@register
class DropConnectDense(_DropConnect, keras.layers.Dense):
    """A `Dense` layer whose weights are dropped while training: DropConnect (Wan et al. 2013).

    While training, ``y = a((W ∘ M) x + b ∘ m_b)`` with ``M, m_b ~ Bernoulli(keep)``, ``keep = 1 - rate``: each
    weight (not each unit) is dropped. One mask serves the whole batch of a call; ``per_sample=True`` draws one per
    sample, exactly as in the paper but at the cost of a ``(batch, in, units)`` mask. With ``scaling="inverted"``
    the pre-activation is divided by ``keep`` while training, so its expectation is ``W x + b``.

    At test time, ``inference="mean"`` gives ``a(W x + b)`` (``a(keep (W x + b))`` with weight scaling).
    ``inference="gaussian"`` is the paper's inference: each pre-activation is treated as Gaussian with the mean and
    variance of the training-time pre-activation, ``u ~ N(W x + b, (rate / keep) ((W ∘ W)(x ∘ x) + b ∘ b))``, and
    the output is the average of ``a(u)`` over ``inference_samples`` points of that Gaussian. The paper draws them
    at random; here they are its quantiles at probabilities ``(k + 1/2) / inference_samples`` (a stratified sample,
    `kerasdrop.ops.normal_quantiles`), so the output is deterministic and far closer to ``E a(u)`` than a random
    sample of the same size. The two inferences agree for a linear activation; for a non-linear one the Gaussian
    inference is closer to the average of the training-mode network.

    Masks are drawn in float32 from one uniform per weight; a dyadic keep probability (0.5, 0.25, 0.75, ...) draws
    them from packed random bits instead (`kerasdrop.ops.packed_bernoulli_mask`), with the same distribution.

    Args:
        units: Positive int, dimensionality of the output.
        rate: Float in [0, 1), probability of dropping each weight.
        activation: Activation function (name or callable); None is linear.
        use_bias: bool, whether the layer has a (dropped) bias.
        per_sample: bool, one mask per sample instead of one per call.
        inference: ``"mean"`` or ``"gaussian"``, the test-time output.
        inference_samples: Positive int, Gaussian points averaged by ``inference="gaussian"``.
        scaling: ``"inverted"`` or ``"weight_scaling"``.
        seed: None or int, for reproducible masks.
        mc: bool, Monte Carlo mode: stochastic on every call, with the training formula.
        **dense_kwargs: any other `keras.layers.Dense` argument (initializers, regularizers, constraints, name...).

    Call arguments:
        inputs: float tensor of shape ``(batch, ..., in)``.
        training: Python bool, whether to drop weights.

    Output shape: ``(batch, ..., units)``.

    Reference:
        - [Wan et al., 2013](https://proceedings.mlr.press/v28/wan13.html)
    """

    def __init__(
        self,
        units,
        rate,
        activation=None,
        use_bias=True,
        per_sample=False,
        inference="mean",
        inference_samples=64,
        scaling="inverted",
        seed=None,
        mc=False,
        **dense_kwargs,
    ):
        super().__init__(
            units=check_positive_int("units", units),
            activation=activation,
            use_bias=check_bool("use_bias", use_bias),
            rate=rate,
            per_sample=per_sample,
            inference=inference,
            inference_samples=inference_samples,
            scaling=scaling,
            seed=seed,
            mc=mc,
            **dense_kwargs,
        )


@register
class DropConnectConv2D(_DropConnect, keras.layers.Conv2D):
    """A `Conv2D` layer whose kernel entries and biases are dropped while training: DropConnect (Wan et al. 2013).

    The convolutional form of `DropConnectDense`: a mask on the ``(rows, cols, in, filters)`` kernel and on the bias,
    one per call (or one per sample with ``per_sample=True``, computed as a batched product of image patches with
    each sample's kernel). Test time as in `DropConnectDense`: ``inference="mean"`` or ``"gaussian"``, whose variance
    is the convolution of ``x ∘ x`` with ``W ∘ W``, plus ``b ∘ b``, times ``rate / keep``.

    Args:
        filters: Positive int, number of output channels.
        kernel_size: int or tuple of 2 ints.
        rate: Float in [0, 1), probability of dropping each kernel entry and bias.
        per_sample, inference, inference_samples, scaling, seed, mc: as in `DropConnectDense`.
        **conv_kwargs: any other `keras.layers.Conv2D` argument (strides, padding, data_format, dilation_rate,
            activation, use_bias, initializers...). ``per_sample=True`` needs ``groups=1``.

    Call arguments:
        inputs: float tensor of shape ``(batch, rows, cols, channels)`` (or channels first).
        training: Python bool, whether to drop weights.

    Reference:
        - [Wan et al., 2013](https://proceedings.mlr.press/v28/wan13.html)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        rate,
        per_sample=False,
        inference="mean",
        inference_samples=64,
        scaling="inverted",
        seed=None,
        mc=False,
        **conv_kwargs,
    ):
        super().__init__(
            filters=check_positive_int("filters", filters),
            kernel_size=kernel_size,
            rate=rate,
            per_sample=per_sample,
            inference=inference,
            inference_samples=inference_samples,
            scaling=scaling,
            seed=seed,
            mc=mc,
            **conv_kwargs,
        )
        if self.per_sample and self.groups != 1:
            raise ValueError(
                f"Invalid value received for argument `per_sample`. Expected False with grouped convolutions. "
                f"Received: per_sample=True with groups={self.groups}"
            )


@register
class StandoutDense(StochasticLayer, keras.layers.Dense):
    """A `Dense` layer with adaptive dropout of its units: Standout (Ba & Frey 2013).

    Each unit is kept with a probability computed from its own pre-activation: ``z = W x + b``,
    ``π = sigmoid(alpha · z + beta)``. While training ``y = m ∘ a(z)`` with ``m ~ Bernoulli(π)``; at test time
    ``y = π ∘ a(z)``, the expectation of the training output. As in the paper's shared-weight form, the standout
    network reuses the layer's weights scaled by ``alpha`` and shifted by ``beta``; no gradient flows through ``π``
    (``stop_gradient(z)``), so only ``a(z)`` is learned by backpropagation.

    Args:
        units: Positive int, dimensionality of the output.
        activation: Activation function, ``"relu"`` by default.
        alpha: Float, scale of the pre-activation in the keep probability.
        beta: Float, offset of the keep probability's logit.
        seed: None or int.
        mc: bool, Monte Carlo mode.
        **dense_kwargs: any other `keras.layers.Dense` argument.

    Call arguments:
        inputs: float tensor of shape ``(batch, ..., in)``.
        training: Python bool, whether to sample the noise (always sampled with ``mc=True``).

    Reference:
        - [Ba & Frey, 2013](https://papers.nips.cc/paper/5032-adaptive-dropout-for-training-deep-neural-networks)
    """

    def __init__(self, units, activation="relu", alpha=1.0, beta=0.0, seed=None, mc=False, **dense_kwargs):
        super().__init__(
            units=check_positive_int("units", units), activation=activation, seed=seed, mc=mc, **dense_kwargs
        )
        self.alpha = check_float("alpha", alpha)
        self.beta = check_float("beta", beta)

    def keep_probability(self, inputs):
        """``π = sigmoid(alpha · z + beta)`` for ``z = W x + b``: each unit's keep probability, in float32."""
        return self._keep_probability(affine(self, inputs, self.kernel, self.bias))

    def _keep_probability(self, z):
        return ops.sigmoid(self.alpha * ops.cast(ops.stop_gradient(z), "float32") + self.beta)

    def _test_output(self, inputs):
        z = affine(self, inputs, self.kernel, self.bias)
        return self.activation(z) * ops.cast(self._keep_probability(z), z.dtype)

    def _sample(self, inputs):
        z = affine(self, inputs, self.kernel, self.bias)
        mask = kd_ops.bernoulli_mask(
            ops.shape(z), self._keep_probability(z), self.seed_generator, z.dtype, batch_axis=0
        )
        return self.activation(z) * mask

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta}


@register
class FastDropoutDense(StochasticLayer, keras.layers.Dense):
    """A `Dense` layer trained with fast dropout (Wang & Manning 2013).

    Dropping the inputs of a unit makes its pre-activation a sum of many independent terms, nearly Gaussian.
    Fast dropout samples that Gaussian directly instead of a Bernoulli mask per input: with inverted dropout of the
    inputs, ``μ = W x + b`` and ``σ² = (rate / keep) (W ∘ W)(x ∘ x)`` (the bias is not dropped), and while training
    the output is ``a(μ + σ ε)`` with one ``ε ~ N(0, 1)`` per unit: one normal draw per output instead of one
    Bernoulli per input. At test time ``a(μ)``.

    That Gaussian is also the pre-activation of a layer whose weights carry multiplicative Gaussian noise,
    ``W ∘ g`` with ``g ~ N(1, rate / keep)`` per weight. While `kerasdrop.MCDropout` samples joint draws (every
    input of a Monte Carlo sample through the same network), the layer draws such a kernel once per sample and
    applies it to every input of the sample: each input's pre-activation keeps exactly the Gaussian above.

    Args:
        units: Positive int, dimensionality of the output.
        rate: Float in [0, 1), the dropout rate of the inputs being approximated.
        activation: Activation function; None is linear.
        seed: None or int.
        mc: bool, Monte Carlo mode.
        **dense_kwargs: any other `keras.layers.Dense` argument.

    Call arguments:
        inputs: float tensor of shape ``(batch, ..., in)``.
        training: Python bool, whether to sample the noise (always sampled with ``mc=True``).

    Reference:
        - [Wang & Manning, 2013](https://proceedings.mlr.press/v28/wang13a.html)
    """

    def __init__(self, units, rate, activation=None, seed=None, mc=False, **dense_kwargs):
        super().__init__(
            units=check_positive_int("units", units), activation=activation, seed=seed, mc=mc, **dense_kwargs
        )
        self.rate = check_rate("rate", rate)

    def _test_output(self, inputs):
        return self.activation(affine(self, inputs, self.kernel, self.bias))

    def _sample(self, inputs):
        if self.rate == 0:
            return self.activation(affine(self, inputs, self.kernel, self.bias))
        # Joint draws: W ∘ g, g ~ N(1, rate / keep) per weight, drawn once per Monte Carlo sample.
        joint = affine_of_joint_draws(self, inputs, self._draw_kernels, self.bias)
        if joint is not None:
            return self.activation(joint)
        mean = affine(self, inputs, self.kernel, self.bias)
        variance = affine_of_squares(self, inputs, self.kernel, square_weights=True) * (self.rate / (1.0 - self.rate))
        return self.activation(kd_ops.sample_gaussian(mean, variance, self.seed_generator))

    def _draw_kernels(self, noise):
        scale = (self.rate / (1.0 - self.rate)) ** 0.5
        return ops.cast(self.kernel, noise.dtype) * (1.0 + scale * noise)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}
