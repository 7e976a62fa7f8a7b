"""Variational dropout with learned noise: Kingma et al. 2015 and Molchanov et al. 2017.

Both layers put Gaussian noise of variance ``σ² = α θ²`` on every weight (multiplicative noise
``w = θ (1 + sqrt(α) ε)``), learn it by variational inference with a log-uniform prior, and train with the local
reparameterization trick: instead of sampling weights, sample each pre-activation from its exact Gaussian,
``N(x θ, (x ∘ x) σ²)``. Kingma's layer learns ``α``; Molchanov's learns ``σ²`` itself (the additive
parameterization). The KL divergence to the prior is added to the model's losses with ``add_loss``.

The local reparameterization draws each input's pre-activation on its own: two inputs never see one network. While
`kerasdrop.MCDropout` samples joint draws (every input of a Monte Carlo sample through the same network), the layers
draw what the trick stands for instead, the weights themselves, once per sample, ``w_s ~ N(θ, σ²)``, and apply them
to every input of the sample. Each input's pre-activation then has exactly the same Gaussian as before.

Learned parameters (``kernel`` = θ, ``log_alpha``, ``log_sigma2``) are always read in their float32 variable dtype;
only the products with the inputs run in the compute dtype, so KL terms and pruning masks do not depend on the
dtype policy.
"""

import math

import keras
from keras import ops

from kerasdrop import ops as kd_ops
from kerasdrop._validation import check_choice, check_float, check_non_negative_float, check_positive_int
from kerasdrop.layers._base import StochasticLayer, register
from kerasdrop.layers._kernel_noise import affine, affine_of_joint_draws, affine_of_squares
from kerasdrop.layers._kl_term import KLTerm

GRANULARITIES = ("unit", "weight", "layer")

# Kingma et al. 2015, eq. (12)'s polynomial fit of the negative KL (valid for alpha <= 1).
_KINGMA_C1, _KINGMA_C2, _KINGMA_C3 = 1.16145124, -1.50204118, 0.58629921
# Molchanov et al. 2017, eq. (14): sigmoid fit of the negative KL, valid for every alpha.
_MOLCHANOV_K1, _MOLCHANOV_K2, _MOLCHANOV_K3 = 0.63576, 1.87320, 1.48695
# Molchanov et al. clip log alpha to [-8, 8]; squared weights get this floor before their logarithm.
LOG_ALPHA_CLIP = 8.0
_SQUARE_FLOOR = 1e-16


def kl_kingma(log_alpha):
    """Kingma et al.'s approximation of ``KL(q(w) || p(w))`` per weight, for ``alpha = exp(log_alpha) <= 1``.

    ``-KL ≈ 0.5 log α + c1 α + c2 α² + c3 α³ + C`` with c1 = 1.16145124, c2 = -1.50204118, c3 = 0.58629921. The
    additive constant ``C`` has no gradient and is left out (0), as in the paper's reference code.
    """
    alpha = ops.exp(log_alpha)
    return -(0.5 * log_alpha + _KINGMA_C1 * alpha + _KINGMA_C2 * alpha**2 + _KINGMA_C3 * alpha**3)


def kl_molchanov(log_alpha):
    """Molchanov et al.'s approximation of ``KL(q(w) || p(w))`` per weight, for any alpha.

    ``-KL ≈ k1 sigmoid(k2 + k3 log α) - 0.5 log1p(1/α) - k1`` with k1 = 0.63576, k2 = 1.87320, k3 = 1.48695; the
    constant ``-k1`` makes the KL vanish as alpha grows to infinity. ``log1p(1/α) = softplus(-log α)``.
    """
    negative_kl = (
        _MOLCHANOV_K1 * ops.sigmoid(_MOLCHANOV_K2 + _MOLCHANOV_K3 * log_alpha)
        - 0.5 * ops.softplus(-log_alpha)
        - _MOLCHANOV_K1
    )
    return -negative_kl


def _clipped_log_alpha(kernel, log_sigma2):
    """``(clip(log σ² - log θ², -8, 8), unclipped, θ² + floor)``."""
    square = ops.square(kernel) + _SQUARE_FLOOR
    log_alpha = log_sigma2 - ops.log(square)
    return ops.clip(log_alpha, -LOG_ALPHA_CLIP, LOG_ALPHA_CLIP), log_alpha, square


@ops.custom_gradient
def sparse_kl_divergence(kernel, log_sigma2):
    """``Σ kl_molchanov(log α)`` over the weights, ``log α = clip(log σ² - log θ², -8, 8)``, with its gradient.

    The same value and gradient as differentiating `kl_molchanov` of the clipped log alpha, in fewer passes over the
    weights (this is most of a sparse layer's training step): with ``q = sigmoid(log α)``,
    ``softplus(-log α) = -log q`` and its derivative is ``q - 1``; the constant ``k1`` is taken out of the sum.
    """
    log_alpha, unclipped, square = _clipped_log_alpha(kernel, log_sigma2)
    s = ops.sigmoid(_MOLCHANOV_K2 + _MOLCHANOV_K3 * log_alpha)
    q = ops.sigmoid(log_alpha)
    total = _MOLCHANOV_K1 * (math.prod(kernel.shape) - ops.sum(s)) - 0.5 * ops.sum(ops.log(q))

    def gradient(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        # d KL / d log α = -k1 k3 s (1 - s) - 0.5 (1 - q), zero where the clip is active.
        slope = (_MOLCHANOV_K1 * _MOLCHANOV_K3 * upstream) * (s * (s - 1.0)) + (0.5 * upstream) * (q - 1.0)
        slope = ops.where(ops.equal(log_alpha, unclipped), slope, 0.0)
        # log α = log σ² - log(θ² + floor): d/dθ = -2θ / (θ² + floor), d/d log σ² = 1.
        return slope * (-2.0 * kernel / square), slope

    return total, gradient


class _LocalReparameterization(KLTerm, StochasticLayer):
    """Gaussian weight noise ``w ~ N(θ, σ²)`` sampled through the pre-activations, with a KL penalty.

    Subclasses give ``kl_divergence()``, ``_weight_variance()`` (σ² of every kernel entry, float32),
    ``_draw_kernels(noise)`` (for joint draws: kernels from ``N(θ, σ²)``, one per standard normal ``noise`` of
    shape ``(copies, *θ.shape)``) and ``_test_kernel()``.

    Every weight stays out of autocasting: under a mixed policy the KL terms and the pruning masks are computed from
    the float32 variables, and the layer casts what it multiplies with the inputs to its compute dtype itself.
    """

    def __init__(self, *args, kl_weight=1.0, seed=None, mc=False, **kwargs):
        super().__init__(*args, seed=seed, mc=mc, **kwargs)
        self.kl_weight = check_non_negative_float("kl_weight", kl_weight)

    def add_weight(self, *args, autocast=True, **kwargs):
        return super().add_weight(*args, autocast=False, **kwargs)

    def _test_kernel(self):
        return self.kernel

    def _add_losses(self, inputs):
        if self.kl_weight > 0:
            self.add_kl_loss(self.kl_weight * self.kl_divergence())

    def _bias(self):
        return None if self.bias is None else ops.cast(self.bias, self.compute_dtype)

    def _test_output(self, inputs):
        return self.activation(affine(self, inputs, ops.cast(self._test_kernel(), self.compute_dtype), self._bias()))

    def _sample(self, inputs):
        # Joint draws: one weight draw per Monte Carlo sample, shared by the inputs of that sample.
        joint = affine_of_joint_draws(self, inputs, self._draw_kernels, self._bias())
        if joint is not None:
            return self.activation(joint)
        mean = affine(self, inputs, ops.cast(self.kernel, self.compute_dtype), self._bias())
        # Local reparameterization: x w with w ~ N(θ, σ²) independent is N(x θ, (x ∘ x) σ²).
        variance = affine_of_squares(self, inputs, self._weight_variance())
        return self.activation(kd_ops.sample_gaussian(mean, variance, self.seed_generator))

    def get_config(self):
        return {**super().get_config(), "kl_weight": self.kl_weight}


@register
class VariationalDense(_LocalReparameterization, keras.layers.Dense):
    """A `Dense` layer with variational Gaussian dropout and a learned rate (Kingma, Salimans & Welling 2015).

    Every weight carries multiplicative noise ``w = θ (1 + sqrt(α) ε)``: Gaussian dropout at rate
    ``α / (1 + α)``, with ``α = exp(log_alpha)`` learned. ``log_alpha`` has shape ``(units,)`` (one rate per output
    unit, ``granularity="unit"``), ``(in, units)`` (``"weight"``) or ``()`` (``"layer"``). Training uses the local
    reparameterization trick: the pre-activation is sampled from ``N(x θ + b, (x ∘ x)(α θ ∘ θ))``. The layer adds
    ``kl_weight · Σ_weights KL(α)`` with Kingma's approximation (see `kl_kingma`) to the model's losses; since
    Keras averages the data loss over a batch, ``kl_weight = 1 / (number of training samples)`` gives the
    per-sample ELBO. ``α`` is capped at ``max_rate / (1 - max_rate)`` (1 by default), where the approximation holds.
    At test time ``a(x θ + b)``. While `kerasdrop.MCDropout` samples joint draws, the weights are drawn instead,
    ``θ (1 + sqrt(α) ε)`` once per Monte Carlo sample, and serve every input of the sample (the same Gaussian per
    input); the bias is not drawn.

    Args:
        units: Positive int, dimensionality of the output.
        activation: Activation function; None is linear.
        granularity: ``"unit"``, ``"weight"`` or ``"layer"``: how many rates are learned.
        initial_rate: Float in (0, 1), the dropout rate ``α / (1 + α)`` at initialisation; at most ``max_rate``.
        max_rate: Float in (0, 1), the largest rate (the cap on α).
        kl_weight: Float >= 0, the weight of the KL term in the loss.
        seed: None or int.
        mc: bool, Monte Carlo mode.
        **dense_kwargs: any other `keras.layers.Dense` argument (use_bias, initializers, regularizers, ...).

    Call arguments:
        inputs: float tensor of shape ``(batch, ..., in)``.
        training: Python bool, whether to sample the noise (always sampled with ``mc=True``).

    Weights: ``kernel`` (θ), ``bias``, ``log_alpha`` and ``kl_factor`` (non-trainable, 1 unless
    `kerasdrop.callbacks.KLWarmup` is warming the KL term up).

    Reference:
        - [Kingma, Salimans & Welling, 2015](https://arxiv.org/abs/1506.02557)
    """

    def __init__(
        self,
        units,
        activation=None,
        granularity="unit",
        initial_rate=0.5,
        max_rate=0.5,
        kl_weight=1.0,
        seed=None,
        mc=False,
        **dense_kwargs,
    ):
        super().__init__(
            units=check_positive_int("units", units),
            activation=activation,
            kl_weight=kl_weight,
            seed=seed,
            mc=mc,
            **dense_kwargs,
        )
        self.granularity = check_choice("granularity", granularity, GRANULARITIES)
        self.max_rate = check_float("max_rate", max_rate, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        self.initial_rate = check_float(
            "initial_rate",
            initial_rate,
            0.0,
            self.max_rate,
            low_inclusive=False,
            expected=f"a float in (0, max_rate={self.max_rate:g}]",
        )

    def build(self, input_shape):
        super().build(input_shape)
        shape = {"unit": (self.units,), "weight": tuple(self.kernel.shape), "layer": ()}[self.granularity]
        initial = math.log(self.initial_rate / (1.0 - self.initial_rate))
        self.log_alpha = self.add_weight(
            name="log_alpha", shape=shape, initializer=keras.initializers.Constant(initial)
        )
        self.build_kl_factor()

    def effective_log_alpha(self):
        """The log alpha the layer uses: ``log_alpha`` capped at ``log(max_rate / (1 - max_rate))``, float32."""
        cap = math.log(self.max_rate / (1.0 - self.max_rate))
        return ops.minimum(self.log_alpha, cap)

    def _weight_variance(self):
        return ops.exp(self.effective_log_alpha()) * ops.square(self.kernel)

    def _draw_kernels(self, noise):
        # w = θ (1 + sqrt(α) ε): mean θ, variance α θ², as in _weight_variance (α broadcasts by granularity).
        scale = ops.cast(ops.exp(0.5 * self.effective_log_alpha()), noise.dtype)
        return ops.cast(self.kernel, noise.dtype) * (1.0 + scale * noise)

    def dropout_rate(self):
        """The learned rates ``α / (1 + α)`` as a NumPy array of the shape of ``log_alpha``."""
        return ops.convert_to_numpy(ops.sigmoid(self.effective_log_alpha()))

    def kl_divergence(self):
        """``Σ KL`` over the kernel's weights, a float32 scalar (the loss added is ``kl_weight`` times this)."""
        # Kingma's approximation summed over the weights: a shared alpha counts once per weight it serves.
        kl = kl_kingma(self.effective_log_alpha())
        return ops.sum(kl) * (math.prod(self.kernel.shape) / math.prod(kl.shape))

    def get_config(self):
        return {
            **super().get_config(),
            "granularity": self.granularity,
            "initial_rate": self.initial_rate,
            "max_rate": self.max_rate,
        }


class _SparseVariational(_LocalReparameterization):
    """Sparse variational dropout: a learned ``log σ²`` per weight, ``log α = log σ² - log θ²`` clipped to ±8.

    Training uses the paper's additive parameterization ``w = θ + σ ε``: the variance of the pre-activations is
    ``(x ∘ x) σ²`` with ``σ² = exp(log σ²)`` itself, so the noise does not feed back into the gradient of ``θ``; the
    clipped ``log α`` serves the KL term and the pruning threshold.
    """

    def __init__(self, *args, threshold=3.0, kl_weight=1.0, seed=None, mc=False, **kwargs):
        super().__init__(*args, kl_weight=kl_weight, seed=seed, mc=mc, **kwargs)
        self.threshold = check_float("threshold", threshold)

    def build(self, input_shape):
        super().build(input_shape)
        self.log_sigma2 = self.add_weight(
            name="log_sigma2", shape=tuple(self.kernel.shape), initializer=keras.initializers.Constant(-10.0)
        )
        self.build_kl_factor()

    def effective_log_alpha(self):
        """``clip(log σ² - log θ², -8, 8)`` per weight, float32."""
        return _clipped_log_alpha(self.kernel, self.log_sigma2)[0]

    def kl_divergence(self):
        """``Σ KL`` over the kernel's weights, a float32 scalar (the loss added is ``kl_weight`` times this)."""
        # Read as tensors (a cast to their own dtype): the custom gradient is with respect to its inputs.
        kernel, log_sigma2 = (ops.cast(variable, variable.dtype) for variable in (self.kernel, self.log_sigma2))
        return sparse_kl_divergence(kernel, log_sigma2)

    def _weight_variance(self):
        return ops.exp(self.log_sigma2)

    def _draw_kernels(self, noise):
        # w = θ + σ ε with σ = sqrt(exp(log σ²)), unclipped as in _weight_variance.
        scale = ops.cast(ops.exp(0.5 * self.log_sigma2), noise.dtype)
        return ops.cast(self.kernel, noise.dtype) + scale * noise

    def weight_mask(self):
        """Boolean tensor of the kernel's shape: True for the weights kept at test time (``log α <= threshold``)."""
        return ops.less_equal(self.effective_log_alpha(), self.threshold)

    def pruned_kernel(self):
        """The test-time kernel: θ with the pruned weights (``log α > threshold``) set to exactly zero (float32)."""
        return self._test_kernel()

    def _test_kernel(self):
        kernel = ops.convert_to_tensor(self.kernel)
        return ops.where(self.weight_mask(), kernel, ops.zeros(kernel.shape, kernel.dtype))

    def sparsity(self):
        """The fraction of kernel weights pruned at test time, a Python float in [0, 1]."""
        return 1.0 - float(ops.convert_to_numpy(ops.mean(ops.cast(self.weight_mask(), "float32"))))

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


@register
class SparseVariationalDense(_SparseVariational, keras.layers.Dense):
    """A `Dense` layer with sparse variational dropout (Molchanov, Ashukha & Vetrov 2017).

    Every weight has its own Gaussian noise ``w ~ N(θ, σ²)`` with learned ``θ`` (``kernel``) and ``log σ²``
    (``log_sigma2``, initialised to -10), i.e. multiplicative noise of variance ``α = σ² / θ²``;
    ``log α = log σ² - log θ²`` is clipped to [-8, 8]. Training samples the pre-activations with the local
    reparameterization trick, ``N(x θ + b, (x ∘ x) σ²)`` (the paper's additive parameterization: ``σ²`` is not
    clipped, ``log α`` only enters the KL and the pruning); while `kerasdrop.MCDropout` samples joint draws, the
    layer draws the weights instead, ``θ + σ ε`` once per Monte Carlo sample for every input of the sample (the
    same Gaussian per input, the bias not drawn). It adds ``kl_weight · Σ_weights KL(α)`` with Molchanov's
    approximation (see `kl_molchanov`) to the losses; use ``kl_weight = 1 / (number of training samples)`` for the
    per-sample ELBO. Trained from random weights with that weight, warm the term up with
    `kerasdrop.callbacks.KLWarmup` over the first half of training (``KLWarmup(100)`` in 200 epochs): without it
    the KL term prunes the weights before they learn anything. Weights whose ``log α`` grows past ``threshold``
    carry only noise: at test time they are exactly zero. ``sparsity()`` gives the fraction pruned,
    ``weight_mask()`` the boolean keep-mask and ``pruned_kernel()`` the test-time kernel (what
    `kerasdrop.compression.sparsify` copies into a plain layer).

    Args:
        units: Positive int, dimensionality of the output.
        activation: Activation function; None is linear.
        threshold: Float, weights with ``log α > threshold`` are pruned at test time (3 in the paper).
        kl_weight: Float >= 0, the weight of the KL term in the loss.
        seed: None or int.
        mc: bool, Monte Carlo mode (samples with the unpruned weights, as in training).
        **dense_kwargs: any other `keras.layers.Dense` argument.

    Call arguments:
        inputs: float tensor of shape ``(batch, ..., in)``.
        training: Python bool, whether to sample the noise (always sampled with ``mc=True``).

    Weights: ``kernel`` (θ), ``bias``, ``log_sigma2`` and ``kl_factor`` (non-trainable, 1 unless
    `kerasdrop.callbacks.KLWarmup` is warming the KL term up).

    Reference:
        - [Molchanov, Ashukha & Vetrov, 2017](https://arxiv.org/abs/1701.05369)
    """

    def __init__(self, units, activation=None, threshold=3.0, kl_weight=1.0, seed=None, mc=False, **dense_kwargs):
        super().__init__(
            units=check_positive_int("units", units),
            activation=activation,
            threshold=threshold,
            kl_weight=kl_weight,
            seed=seed,
            mc=mc,
            **dense_kwargs,
        )


@register
class SparseVariationalConv2D(_SparseVariational, keras.layers.Conv2D):
    """A `Conv2D` layer with sparse variational dropout on every kernel entry (Molchanov et al. 2017).

    Every weight has its own Gaussian noise ``w ~ N(θ, σ²)`` with learned ``θ`` (``kernel``) and ``log σ²``
    (``log_sigma2``, initialised to -10), i.e. multiplicative noise of variance ``α = σ² / θ²``;
    ``log α = log σ² - log θ²`` is clipped to [-8, 8]. Training samples the pre-activations with the local
    reparameterization trick, ``N(x θ + b, (x ∘ x) σ²)`` (the paper's additive parameterization: ``σ²`` is not
    clipped, ``log α`` only enters the KL and the pruning); while `kerasdrop.MCDropout` samples joint draws, the
    layer draws the weights instead, ``θ + σ ε`` once per Monte Carlo sample for every input of the sample (the
    same Gaussian per input, the bias not drawn). It adds ``kl_weight · Σ_weights KL(α)`` with Molchanov's
    approximation (see `kl_molchanov`) to the losses; use ``kl_weight = 1 / (number of training samples)`` for the
    per-sample ELBO. Trained from random weights with that weight, warm the term up with
    `kerasdrop.callbacks.KLWarmup` over the first half of training (``KLWarmup(100)`` in 200 epochs): without it
    the KL term prunes the weights before they learn anything. Weights whose ``log α`` grows past ``threshold``
    carry only noise: at test time they are exactly zero. ``sparsity()`` gives the fraction pruned,
    ``weight_mask()`` the boolean keep-mask and ``pruned_kernel()`` the test-time kernel (what
    `kerasdrop.compression.sparsify` copies into a plain layer).

    For a convolution the variance of the pre-activation is the convolution of ``x ∘ x`` with ``σ²``; under joint
    draws each Monte Carlo sample's kernel convolves the inputs of that sample (one grouped convolution for all).

    Args:
        filters: Positive int, number of output channels.
        kernel_size: int or tuple of 2 ints.
        threshold, kl_weight, seed, mc: as in `SparseVariationalDense`.
        **conv_kwargs: any other `keras.layers.Conv2D` argument (strides, padding, data_format, activation, ...).

    Call arguments:
        inputs: float tensor of shape ``(batch, rows, cols, channels)`` (or channels first).
        training: Python bool, whether to sample the noise (always sampled with ``mc=True``).

    Weights: ``kernel`` (θ), ``bias``, ``log_sigma2`` and ``kl_factor`` (non-trainable, 1 unless
    `kerasdrop.callbacks.KLWarmup` is warming the KL term up).

    Reference:
        - [Molchanov, Ashukha & Vetrov, 2017](https://arxiv.org/abs/1701.05369)
    """

    def __init__(self, filters, kernel_size, threshold=3.0, kl_weight=1.0, seed=None, mc=False, **conv_kwargs):
        super().__init__(
            filters=check_positive_int("filters", filters),
            kernel_size=kernel_size,
            threshold=threshold,
            kl_weight=kl_weight,
            seed=seed,
            mc=mc,
            **conv_kwargs,
        )
