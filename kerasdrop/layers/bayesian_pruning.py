"""Structured Bayesian pruning: Neklyudov, Molchanov, Ashukha & Vetrov 2017.

Each unit (or channel) of a layer's output is multiplied by its own noise ``θ = exp(x)``, where ``x`` follows a
normal distribution ``N(μ, σ²)`` truncated to ``[a, b] = [-20, 0]``: ``θ`` is log-normal, truncated to
``[e^-20, 1]``. The prior on ``log θ`` is uniform on the same interval (a truncated log-uniform prior on ``θ``), so
the KL divergence has a closed form, and ``E[θ]``, ``Var[θ]`` of the truncated log-normal too. Units whose noise is
mostly noise (low signal-to-noise ratio ``E[θ] / std[θ]``) are switched off at test time.

The functions below are written with ``keras.ops`` and are accurate in float32 for every ``μ`` in ``[a, b]`` and
``log σ`` in ``[-20, 5]``, the ranges the layer clips its parameters to: differences of normal CDFs are computed in
log space, in the lower tail through the scaled complementary error function ``erfcx(x) = exp(x²) erfc(x)``, and
every ``where`` keeps both of its branches finite so that gradients never see ``inf * 0``.
"""

import math

import keras
from keras import ops

from kerasdrop import _context, _random
from kerasdrop import ops as kd_ops
from kerasdrop._axes import channel_axis
from kerasdrop._validation import check_data_format, check_non_negative_float
from kerasdrop.layers._base import StochasticLayer, register
from kerasdrop.layers._kl_term import KLTerm

# The truncation interval [a, b] of log θ (Neklyudov et al., §4), for the posterior and the log-uniform prior.
LOG_LOW, LOG_HIGH = -20.0, 0.0
# The ranges mu and log sigma are clipped to before use. The reference code clips both to [-20, 5]; here mu stays in
# [a, b]: a mu above b only pins θ at 1 (as mu = b does) and would put Z = Φ(β) - Φ(α) in a far tail, where the
# closed forms cancel catastrophically. With a <= mu <= b, α <= 0 <= β always. mu starts at b, so its clip passes
# gradients straight through: a step past b is not a trap where mu gets no gradient any more.
MU_RANGE = (LOG_LOW, LOG_HIGH)
LOG_SIGMA_RANGE = (-20.0, 5.0)
# Below this argument erfcx is exp(x²) (1 - erf(x)); above it, a continued fraction of this depth (error < 1e-7).
_ERFCX_SWITCH = 1.5
_ERFCX_DEPTH = 24
# Inverse-CDF sampling keeps its uniform inside [eps, 1 - eps], where float32 erfinv is finite and accurate.
_PROBABILITY_EPS = 1e-6
# Floor under the relative variance Var[θ] / E[θ]² before the SNR's square root.
_RELATIVE_VARIANCE_FLOOR = 1e-30
_SQRT2 = math.sqrt(2.0)
_LOG_SQRT_2PI_E = 0.5 * math.log(2.0 * math.pi * math.e)


def erfcx(x):
    """The scaled complementary error function ``exp(x²) erfc(x)`` for ``x >= 0`` (float32 tensors).

    Near zero it is ``exp(x²) (1 - erf(x))``; in the tail it is the continued fraction
    ``erfcx(x) = 1 / (sqrt(pi) (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))))``, which never overflows.
    """
    small = x < _ERFCX_SWITCH
    # Each branch gets an argument at which it is finite, so that gradients through `where` stay finite too.
    x_small = ops.where(small, x, 0.0)
    x_large = ops.where(small, _ERFCX_SWITCH, x)
    direct = ops.exp(ops.square(x_small)) * (1.0 - ops.erf(x_small))
    fraction = x_large
    for n in range(_ERFCX_DEPTH, 0, -1):
        fraction = x_large + (0.5 * n) / fraction
    return ops.where(small, direct, 1.0 / (math.sqrt(math.pi) * fraction))


def normal_cdf(x):
    """``Φ(x)``, accurate in relative terms in the lower tail (where ``1 + erf`` would lose every digit)."""
    tail = 0.5 * erfcx(ops.abs(x) / _SQRT2) * ops.exp(-0.5 * ops.square(x))
    return ops.where(x < 0, tail, 1.0 - tail)


def log_normal_interval(low, high):
    """``log(Φ(high) - Φ(low))`` for ``low < high``, finite for any finite arguments.

    By symmetry the interval is moved so that ``low + high <= 0``. If it then lies in the lower tail
    (``high <= 0``), ``Φ(high) - Φ(low) = ½ exp(-high²/2) [erfcx(-high/√2) - erfcx(-low/√2) exp((high² - low²)/2)]``
    with a bracket of moderate size; otherwise it straddles zero and ``½ (erf(high/√2) - erf(low/√2))`` adds two
    non-negative terms.
    """
    flip = (low + high) > 0
    low, high = ops.where(flip, -high, low), ops.where(flip, -low, high)
    tail_high = ops.minimum(high, 0.0)
    bracket = erfcx(-tail_high / _SQRT2) - erfcx(-low / _SQRT2) * ops.exp(0.5 * (tail_high - low) * (tail_high + low))
    tail = -0.5 * ops.square(tail_high) + ops.log(0.5 * bracket)
    straddle = ops.log(0.5 * (ops.erf(ops.maximum(high, 0.0) / _SQRT2) - ops.erf(low / _SQRT2)))
    return ops.where(high <= 0, tail, straddle)


def _standardized_bounds(mu, sigma):
    return (LOG_LOW - mu) / sigma, (LOG_HIGH - mu) / sigma


def truncated_log_normal_kl(mu, log_sigma):
    """``KL(q || p)`` per unit: ``q`` = log-normal truncated to ``[e^a, e^b]``, ``p`` = log-uniform on the same range.

    With ``α = (a - μ)/σ``, ``β = (b - μ)/σ``, ``Z = Φ(β) - Φ(α)`` and ``φ`` the standard normal density, the KL is
    minus the entropy of the truncated normal ``log θ`` plus ``log(b - a)``:
    ``KL = -log σ - log Z - (α φ(α) - β φ(β)) / (2 Z) + log(b - a) - ½ log(2 π e)``.
    """
    sigma = ops.exp(log_sigma)
    alpha, beta = _standardized_bounds(mu, sigma)
    log_z = log_normal_interval(alpha, beta)

    def pdf_term(x):  # x φ(x) / Z, with φ(x) / Z formed in log space
        return x * ops.exp(-0.5 * ops.square(x) - log_z) / math.sqrt(2.0 * math.pi)

    entropy_terms = -log_sigma - log_z - 0.5 * (pdf_term(alpha) - pdf_term(beta))
    return entropy_terms + math.log(LOG_HIGH - LOG_LOW) - _LOG_SQRT_2PI_E


def _log_moment(mu, sigma, log_z, alpha, beta, k):
    """``log E[θ^k]`` of the truncated log-normal: ``k μ + k² σ²/2 + log(Φ(β - kσ) - Φ(α - kσ)) - log Z``."""
    shifted = log_normal_interval(alpha - k * sigma, beta - k * sigma)
    return k * mu + 0.5 * k * k * ops.square(sigma) + shifted - log_z


def truncated_log_normal_mean_and_snr(mu, log_sigma):
    """``E[θ]`` and the signal-to-noise ratio ``E[θ] / std[θ]`` of the truncated log-normal, per unit.

    ``std[θ] / E[θ] = sqrt(exp(log E[θ²] - 2 log E[θ]) - 1)``, where ``μ`` cancels exactly.
    """
    sigma = ops.exp(log_sigma)
    alpha, beta = _standardized_bounds(mu, sigma)
    log_z = log_normal_interval(alpha, beta)
    log_mean = _log_moment(mu, sigma, log_z, alpha, beta, 1)
    log_second = _log_moment(mu, sigma, log_z, alpha, beta, 2)
    relative_variance = ops.expm1(log_second - 2.0 * log_mean)
    snr = ops.rsqrt(ops.maximum(relative_variance, _RELATIVE_VARIANCE_FLOOR))
    return ops.exp(log_mean), snr


def sample_truncated_log_normal(mu, log_sigma, shape, seed):
    """Draws ``θ = exp(x)``, ``x ~ N(μ, σ²)`` truncated to ``[a, b]``, by the inverse CDF; ``shape`` broadcasts ``μ``.

    ``x = μ + σ Φ⁻¹(Φ(α) + u Z)`` with ``u ~ U(0, 1)``; the argument of ``Φ⁻¹`` is kept in ``[1e-6, 1 - 1e-6]``
    and ``x`` in ``[a, b]``, so that no draw is infinite (draws further than ~4.75 σ out in a tail land there).
    While `kerasdrop.export_tflite` traces the layer, ``erf⁻¹`` is `kerasdrop.ops.erfinv_polynomial` (TensorFlow Lite
    has no builtin for ``tf.math.erfinv``).
    """
    sigma = ops.exp(log_sigma)
    alpha, beta = _standardized_bounds(mu, sigma)
    z = ops.exp(log_normal_interval(alpha, beta))
    uniform = _random.uniform(shape, seed, dtype="float32", batch_axis=0)
    probability = ops.clip(normal_cdf(alpha) + uniform * z, _PROBABILITY_EPS, 1.0 - _PROBABILITY_EPS)
    erfinv = kd_ops.erfinv_polynomial if _context.stateful_draws() else ops.erfinv
    x = mu + sigma * _SQRT2 * erfinv(2.0 * probability - 1.0)
    return ops.exp(ops.clip(x, LOG_LOW, LOG_HIGH))


@register
class StructuredBayesianPruning(KLTerm, StochasticLayer):
    """Multiplicative log-normal noise per unit or channel, learned to switch units off (Neklyudov et al. 2017).

    Placed after a dense or convolutional layer, it multiplies each unit (each channel of a feature map) by
    ``θ = exp(x)``, ``x ~ N(μ, σ²)`` truncated to ``[-20, 0]``, with ``μ`` and ``log σ`` learned per unit; while
    training a new ``θ`` is drawn for every sample and unit, shared by every position of a feature map. The prior on
    ``log θ`` is uniform on ``[-20, 0]``, and ``kl_weight · Σ_units KL(q(θ) || p(θ))`` (closed form, see
    `truncated_log_normal_kl`) is added to the model's losses at each call; since Keras averages the data loss over
    a batch, ``kl_weight = 1 / (number of training samples)`` gives the per-sample ELBO; trained from scratch, warm
    it up with `kerasdrop.callbacks.KLWarmup` over the first half of training. At test time each unit is
    multiplied by ``E[θ]``, and units whose signal-to-noise ratio ``E[θ] / std[θ]`` is below ``threshold`` are set
    to zero: they can be removed from the network (`kerasdrop.compression.compress`). As in the paper's code, ``μ``
    starts at 0 and ``log σ`` at -5 (``θ`` close to 1); when used, ``log σ`` is clipped to [-20, 5] and ``μ`` to
    [-20, 0].

    Args:
        kl_weight: Float >= 0, the weight of the KL term in the loss.
        threshold: Float >= 0, units with a signal-to-noise ratio below it are zero at test time (1 in the paper).
        data_format: ``"channels_last"`` or ``"channels_first"``, where the channel axis of a feature map is
            (default: ``keras.config.image_data_format()``). Inputs of rank 2 always use their last axis.
        seed: None or int.
        mc: bool, Monte Carlo mode (sample ``θ`` on every call).

    Call arguments:
        inputs: float tensor of rank >= 2: ``(batch, units)`` or a feature map.
        training: Python bool, whether to sample the noise.

    Input/output shape: any rank >= 2 with a known channel size, unchanged.

    Weights: ``mu`` and ``log_sigma``, shape ``(channels,)``, kept in float32 under mixed policies, and the scalar
    ``kl_factor`` (non-trainable, 1 unless `kerasdrop.callbacks.KLWarmup` is warming the KL term up).

    Reference:
        - [Neklyudov et al., 2017](https://arxiv.org/abs/1705.07283)
    """

    def __init__(self, kl_weight=1.0, threshold=1.0, data_format=None, seed=None, mc=False, **kwargs):
        super().__init__(seed=seed, mc=mc, **kwargs)
        self.kl_weight = check_non_negative_float("kl_weight", kl_weight)
        self.threshold = check_non_negative_float("threshold", threshold)
        self.data_format = check_data_format(data_format)
        self.supports_masking = True

    def channel_axis(self, rank):
        """The axis of the units: the last one, or axis 1 for ``channels_first`` feature maps (rank >= 3)."""
        return channel_axis(self.data_format, rank)

    def build(self, input_shape):
        rank = len(input_shape)
        if rank < 2:
            raise ValueError(
                f"Layer {self.name!r} (StructuredBayesianPruning) expects inputs of rank >= 2 (batch, ..., units). "
                f"Received inputs of shape {tuple(input_shape)}"
            )
        axis = self.channel_axis(rank)
        channels = input_shape[axis]
        if channels is None:
            raise ValueError(
                f"Layer {self.name!r} (StructuredBayesianPruning) needs a known number of units on axis {axis} "
                f"(data_format={self.data_format!r}). Received inputs of shape {tuple(input_shape)}"
            )
        # autocast=False: the distribution is always computed from float32 parameters, whatever the policy.
        self.mu = self.add_weight(name="mu", shape=(channels,), initializer="zeros", autocast=False)
        self.log_sigma = self.add_weight(
            name="log_sigma", shape=(channels,), initializer=keras.initializers.Constant(-5.0), autocast=False
        )
        self.build_kl_factor()
        self.input_spec = keras.layers.InputSpec(ndim=rank, axes={axis: channels})
        super().build(input_shape)

    def _distribution_parameters(self):
        """``μ`` and ``log σ`` as float32 tensors, clipped as in the reference implementation."""
        mu = ops.cast(self.mu, "float32")
        mu = mu - ops.stop_gradient(mu - ops.clip(mu, *MU_RANGE))  # clipped value, identity gradient
        log_sigma = ops.clip(ops.cast(self.log_sigma, "float32"), *LOG_SIGMA_RANGE)
        return mu, log_sigma

    def kl_divergence(self):
        """``Σ_units KL(q(θ) || p(θ))``, a float32 scalar (not multiplied by ``kl_weight``)."""
        return ops.sum(truncated_log_normal_kl(*self._distribution_parameters()))

    def expected_multiplier(self):
        """``E[θ]`` per unit, float32, shape ``(channels,)``."""
        return truncated_log_normal_mean_and_snr(*self._distribution_parameters())[0]

    def snr(self):
        """The signal-to-noise ratio ``E[θ] / std[θ]`` per unit, float32, shape ``(channels,)``."""
        return truncated_log_normal_mean_and_snr(*self._distribution_parameters())[1]

    def unit_mask(self):
        """Boolean tensor of shape ``(channels,)``: True for the units kept at test time (SNR >= threshold)."""
        return ops.greater_equal(self.snr(), self.threshold)

    def test_multiplier(self):
        """The test-time factor of each unit: ``E[θ]``, or 0 for a unit switched off; float32, ``(channels,)``."""
        mean, snr = truncated_log_normal_mean_and_snr(*self._distribution_parameters())
        return ops.where(ops.greater_equal(snr, self.threshold), mean, ops.zeros_like(mean))

    def sparsity(self):
        """The fraction of units switched off at test time, a Python float in [0, 1]."""
        return 1.0 - float(ops.convert_to_numpy(ops.mean(ops.cast(self.unit_mask(), "float32"))))

    def _add_losses(self, inputs):
        if self.kl_weight > 0:
            self.add_kl_loss(self.kl_weight * self.kl_divergence())

    def _parameter_shape(self, inputs):
        """The shape that broadcasts one value per unit over ``inputs``."""
        rank = len(inputs.shape)
        shape = [1] * rank
        shape[self.channel_axis(rank)] = self.mu.shape[0]
        return shape

    def _test_output(self, inputs):
        multiplier = ops.reshape(self.test_multiplier(), self._parameter_shape(inputs))
        return inputs * ops.cast(multiplier, inputs.dtype)

    def _sample(self, inputs):
        # One draw per (sample, unit), shared by every position of a feature map.
        parameter_shape = self._parameter_shape(inputs)
        noise_shape = [ops.shape(inputs)[0], *parameter_shape[1:]]
        mu, log_sigma = (ops.reshape(value, parameter_shape) for value in self._distribution_parameters())
        multiplier = sample_truncated_log_normal(mu, log_sigma, noise_shape, self.seed_generator)
        return inputs * ops.cast(multiplier, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "kl_weight": self.kl_weight,
            "threshold": self.threshold,
            "data_format": self.data_format,
        }
