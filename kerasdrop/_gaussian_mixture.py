"""Equal-weight mixtures of Gaussians, one per input: the predictive distribution of Monte Carlo dropout regression.

With ``T`` sampled means ``μ_t`` and component variances ``σ_t²``, the predictive distribution of one scalar output
is ``p(y) = (1/T) Σ_t N(y; μ_t, σ_t²)``. The variance of a component is the observation noise ``1/τ`` given by the
user (homoscedastic, Gal & Ghahramani 2016), or the variance that the network predicted in that sample (a head that
outputs a mean and a log variance, Kendall & Gal 2017).

Shapes: ``means`` ``(T, N, ...)``, ``variances`` broadcastable to them (every one > 0), targets ``y`` of shape
``means.shape[1:]``; results ``(N, ...)``. Everything is float64 NumPy. The inputs are processed in blocks so that
no temporary array holds more than ``BLOCK_SIZE`` numbers (32 MiB), whatever ``T`` and ``N``.

References:
    - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1506.02142)
    - [Kendall & Gal, 2017](https://arxiv.org/abs/1703.04977)
    - [Grimit et al., 2006](https://doi.org/10.1256/qj.05.235): the CRPS of a Gaussian mixture in closed form.
"""

import math
import numbers

import numpy as np
from scipy.optimize.elementwise import find_root
from scipy.special import logsumexp, ndtr
from scipy.stats import norm

from kerasdrop._validation import check_float, check_numeric_array

BLOCK_SIZE = 2**22  # float64 numbers in one temporary array
PAIR_BLOCK_SIZE = 2**16  # the same in the CRPS's sum over pairs of components
# Up to this many samples the CRPS sums every pair of components; above it, a fixed budget of random pairs.
EXACT_CRPS_MAX_SAMPLES = 2000
CRPS_PAIR_BUDGET = EXACT_CRPS_MAX_SAMPLES**2 // 2  # component pairs per input, as many as the exact sum at the limit
CRPS_SEED = 0
INTERVAL_BRACKET_STDS = 10.0  # the quantile search starts from the components' extremes, ± this many stds


def _message(name, expected, received):
    return f"Invalid value received for argument `{name}`. Expected {expected}. Received: {received}"


def _first_bad(array, bad):
    """The first value of ``array`` where ``bad`` holds, as it reads in a message."""
    return repr(float(array[bad].ravel()[0]))


def finite_array(name, values, min_ndim=0):
    """``values`` as a float64 array of at least ``min_ndim`` axes, none of size 0, and only finite values."""
    array = check_numeric_array(name, values).astype("float64", copy=False)
    if array.ndim < min_ndim or 0 in array.shape:
        raise ValueError(
            _message(name, f"a non-empty array of at least {min_ndim} axes", f"{name} of shape {array.shape}")
        )
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(
            _message(
                name,
                "finite values",
                f"{name} containing {int(bad.sum())} NaN or infinite values, such as {_first_bad(array, bad)}",
            )
        )
    return array


def positive_variances(name, values, shape):
    """``values`` as a float64 array broadcast to ``shape`` (a read-only view), every value finite and > 0."""
    array = check_numeric_array(name, values).astype("float64", copy=False)
    bad = ~(np.isfinite(array) & (array > 0))
    if bad.any():
        value = repr(float(array.ravel()[0])) if array.size == 1 else f"an array containing {_first_bad(array, bad)}"
        raise ValueError(_message(name, "finite variances > 0", f"{name}={value}"))
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise ValueError(
            _message(name, f"a scalar or an array broadcastable to {shape}", f"{name} of shape {array.shape}")
        ) from None


def targets(name, values, shape):
    """``values`` as a float64 array of exactly ``shape``, only finite values; ``(N,)`` is taken for ``(N, 1)``."""
    array, shape = finite_array(name, values), tuple(shape)
    if shape[-1:] == (1,) and array.shape == shape[:-1]:
        array = array[..., None]
    if array.shape != shape:
        raise ValueError(
            _message(
                name,
                f"an array of shape {tuple(shape)}, one value per input and output",
                f"{name} of shape {array.shape}",
            )
        )
    return array


def check_mixture(means, variances):
    """``means`` ``(T, N, ...)`` as float64 and ``variances`` broadcast to them; raises naming the argument."""
    means = finite_array("means", means, min_ndim=2)
    return means, positive_variances("variances", variances, means.shape)


def _input_blocks(means):
    """Slices of the inputs (axis 1) of ``means`` ``(T, N, ...)``, each within `BLOCK_SIZE` numbers (one input at
    least)."""
    step = max(1, BLOCK_SIZE // math.prod(means.shape[:1] + means.shape[2:]))
    return [slice(start, start + step) for start in range(0, means.shape[1], step)]


def log_pdf(means, variances, y, event_ndim=0):
    """Log density of the mixture at ``y``: ``logsumexp_t log N(y; μ_t, σ_t²) − log T``.

    Args:
        means: array ``(T, N, ...)``.
        variances: array broadcastable to ``means``, every value > 0.
        y: array ``means.shape[1:]``.
        event_ndim: how many trailing axes form one joint outcome. Each sample is one joint draw over them, so
            their log densities are summed inside the logsumexp: ``log (1/T) Σ_t Π_d N(y_d; μ_td, σ_td²)``.

    Returns:
        float64 array ``means.shape[1 : means.ndim - event_ndim]``.
    """
    means, variances = check_mixture(means, variances)
    y = targets("y", y, means.shape[1:])
    if (
        not isinstance(event_ndim, numbers.Integral)
        or isinstance(event_ndim, bool)
        or not 0 <= event_ndim <= means.ndim - 2
    ):
        raise ValueError(_message("event_ndim", f"an integer from 0 to {means.ndim - 2}", f"event_ndim={event_ndim!r}"))
    event_axes = tuple(range(means.ndim - event_ndim, means.ndim))
    result = np.empty(means.shape[1 : means.ndim - event_ndim])
    for rows in _input_blocks(means):
        log_densities = norm.logpdf(y[rows], loc=means[:, rows], scale=np.sqrt(variances[:, rows]))
        result[rows] = logsumexp(log_densities.sum(axis=event_axes), axis=0) - math.log(means.shape[0])
    return result


def _mean_over_samples(function, means, variances, y):
    """``(1/T) Σ_t function(y − μ_t, σ_t)`` per input, in blocks."""
    result = np.empty(means.shape[1:])
    for rows in _input_blocks(means):
        result[rows] = function(y[rows] - means[:, rows], np.sqrt(variances[:, rows])).mean(axis=0)
    return result


def cdf(means, variances, y):
    """``F(y) = (1/T) Σ_t Φ((y − μ_t) / σ_t)`` per input and output: array ``means.shape[1:]``."""
    means, variances = check_mixture(means, variances)
    y = targets("y", y, means.shape[1:])
    return _mean_over_samples(lambda residual, std: ndtr(residual / std), means, variances, y)


def central_interval(means, variances, level):
    """The central interval of probability ``level`` of each input's mixture: its quantiles ``(1 ∓ level) / 2``.

    Each quantile is the root of a monotone function found by `scipy.optimize.elementwise.find_root` (Chandrupatla's
    bracketing method, to float64 precision) in the bracket from the lowest ``μ_t − 10 σ_t`` to the highest
    ``μ_t + 10 σ_t``, where the mixture's CDF is within ``Φ(−10) ≈ 8e-24`` of 0 and 1: less than any tail
    ``(1 − level) / 2`` of a float64 ``level`` below 1. The upper quantile is found from the survival function
    ``1 − F``, which keeps its precision in the upper tail.

    Returns:
        ``(lower, upper)``, float64 arrays ``means.shape[1:]``.
    """
    means, variances = check_mixture(means, variances)
    level = check_float("level", level, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    tail = (1.0 - level) / 2.0
    lower, upper = np.empty(means.shape[1:]), np.empty(means.shape[1:])
    samples = means.shape[0]
    for rows in _input_blocks(means):
        centre = means[:, rows].reshape(samples, -1)
        std = np.sqrt(variances[:, rows]).reshape(samples, -1)
        block_lower, block_upper = _quantiles(centre, std, tail)
        lower[rows] = block_lower.reshape(lower[rows].shape)
        upper[rows] = block_upper.reshape(upper[rows].shape)
    return lower, upper


def _quantiles(centre, std, tail):
    """Quantiles ``tail`` and ``1 − tail`` of the mixture of each column of ``centre`` and ``std`` ``(T, columns)``."""
    bracket = ((centre - INTERVAL_BRACKET_STDS * std).min(axis=0), (centre + INTERVAL_BRACKET_STDS * std).max(axis=0))

    # find_root hands f the abscissae still searched for and, beside them, their columns.
    def below(x, column):
        return ndtr((x - centre[:, column]) / std[:, column]).mean(axis=0) - tail

    def above(x, column):
        return tail - ndtr((centre[:, column] - x) / std[:, column]).mean(axis=0)

    columns = np.arange(centre.shape[1])
    return _root(below, bracket, columns), _root(above, bracket, columns)


def _root(function, bracket, columns):
    found = find_root(function, bracket, args=(columns,))
    if not np.all(found.success):
        raise RuntimeError(
            f"The quantile search of a central interval failed for {int((~found.success).sum())} of "
            f"{found.success.size} outputs (scipy.optimize.elementwise.find_root statuses "
            f"{sorted(set(found.status[~found.success].tolist()))})."
        )
    return found.x


def _crps_kernel(mean, std):
    """``A(m, s²) = m (2Φ(m/s) − 1) + 2 s φ(m/s)`` = ``E|X|`` for ``X ~ N(m, s²)``.

    φ is written out: `scipy.stats.norm.pdf` checks its arguments at every call, ten times slower here, where the
    pairs of components make this the inner loop.
    """
    z = mean / std
    return mean * (2.0 * ndtr(z) - 1.0) + std * math.sqrt(2.0 / math.pi) * np.exp(-0.5 * z * z)


def crps_pair_shifts(samples):
    """The pairs of components that `crps` sums, as shifts ``s`` (component ``t`` paired with ``(t + s) mod T``)
    and the weight of each, so that ``Σ_s w_s Σ_t A_{t, t+s}`` is (an unbiased estimate of) ``Σ_{i≠j} A_ij``.

    Exact up to `EXACT_CRPS_MAX_SAMPLES` samples: the shifts ``1 .. T//2``, each also standing for ``T − s`` (``A``
    is even in ``μ_i − μ_j``). Above, ``CRPS_PAIR_BUDGET // T`` shifts drawn without replacement from ``1 .. T−1``
    with a fixed seed, each of weight ``(T − 1) / count``: every ordered pair ``i ≠ j`` lies on exactly one shift,
    so the estimate is unbiased.
    """
    if samples <= EXACT_CRPS_MAX_SAMPLES:
        shifts = np.arange(1, samples // 2 + 1)
        weights = np.where(2 * shifts == samples, 1.0, 2.0)
        return shifts, weights
    count = max(1, CRPS_PAIR_BUDGET // samples)
    shifts = np.random.default_rng(CRPS_SEED).choice(np.arange(1, samples), size=count, replace=False)
    return np.sort(shifts), np.full(count, (samples - 1) / count)


def _pair_term(centre, variance):
    """``(1/T²) Σ_i Σ_j A(μ_i − μ_j, σ_i² + σ_j²)`` per column of ``centre`` and ``variance`` ``(T, columns)``."""
    samples, columns = centre.shape
    # The diagonal, A(0, 2σ²) = 2σ / √π, then the other pairs: a few columns and shifts at a time, in arrays small
    # enough to stay in the processor's cache (twice as fast as blocks of BLOCK_SIZE).
    total = (2.0 / math.sqrt(math.pi)) * np.sqrt(variance).sum(axis=0)
    shifts, weights = crps_pair_shifts(samples)
    width = max(1, PAIR_BLOCK_SIZE // samples)
    group = max(1, PAIR_BLOCK_SIZE // (samples * width))
    for first in range(0, columns, width):
        block = slice(first, first + width)
        mean, var = centre[:, block], variance[:, block]
        for start in range(0, len(shifts), group):
            partner = (np.arange(samples) + shifts[start : start + group, None]) % samples  # (shifts, T)
            values = _crps_kernel(mean - mean[partner], np.sqrt(var + var[partner]))
            total[block] += np.einsum("s,stc->c", weights[start : start + group], values)
    return total / samples**2


def crps(means, variances, y):
    """Continuous ranked probability score of each input's mixture at ``y`` (lower is better; its units are y's).

    ``CRPS(F, y) = ∫ (F(x) − 1{x ≥ y})² dx``, in closed form for a mixture of Gaussians with weights ``w_i = 1/T``
    (Grimit et al. 2006): ``Σ_i w_i A(y − μ_i, σ_i²) − ½ Σ_i Σ_j w_i w_j A(μ_i − μ_j, σ_i² + σ_j²)`` with
    ``A(m, s²) = m (2Φ(m/s) − 1) + 2 s φ(m/s)``. The pair term costs ``T²`` per input and is summed in blocks of at
    most `BLOCK_SIZE` numbers: exactly up to ``T = 2000`` (`EXACT_CRPS_MAX_SAMPLES`); for more samples it is an
    unbiased estimate over ``2,000,000 / T`` random shifts of the pairing (seed 0, the same at every call), each shift
    ``T`` pairs, so the cost per input stays that of ``T = 2000`` (see `crps_pair_shifts`).

    Returns:
        float64 array ``means.shape[1:]``.
    """
    means, variances = check_mixture(means, variances)
    y = targets("y", y, means.shape[1:])
    observed = _mean_over_samples(_crps_kernel, means, variances, y)
    pairs = np.empty(means.shape[1:])
    samples = means.shape[0]
    for rows in _input_blocks(means):
        centre = means[:, rows].reshape(samples, -1)
        pairs[rows] = _pair_term(centre, variances[:, rows].reshape(samples, -1)).reshape(pairs[rows].shape)
    return observed - 0.5 * pairs


MIXTURE_OUTPUT_TYPES = ("regression", "gaussian")


def no_noise_variance_for_a_head(noise_variance):
    """Raises unless ``noise_variance`` is None: a "gaussian" head predicts its own variances."""
    if noise_variance is not None:
        raise ValueError(
            f"Invalid value received for argument `noise_variance`: a result of output_type 'gaussian' carries each "
            f"sample's predicted variance (`result.sample_variances`), which already models the observation noise; "
            f"pass noise_variance=None. Received: noise_variance={noise_variance!r}"
        )


def mixture_components(result_or_samples, noise_variance=None):
    """The means and variances ``(T, N, ...)`` of the predictive mixture of Monte Carlo samples or of a result.

    Args:
        result_or_samples: an array ``(T, N, ...)`` of sampled predictions, or an `MCDropoutResult` of
            ``MCDropout.predict(..., keep_samples=True)``, read through its attributes ``output_type``, ``samples``
            and, for ``output_type="gaussian"`` (a head of means and log variances), ``sample_variances``.
        noise_variance: the observation noise variance ``1/τ``, the variance of every component: a float > 0 or an
            array > 0 broadcastable to the samples (one per output, say). Needed for samples and for results of
            output_type "regression"; must be None for "gaussian" results, whose sampled variances already model
            the noise.

    Returns:
        ``(means, variances)``: float64 ``means`` and ``variances`` broadcast to them (a read-only view).
    """
    if not hasattr(result_or_samples, "output_type"):
        means = finite_array("result_or_samples", result_or_samples, min_ndim=2)
        return means, noise_variances(noise_variance, means.shape, "the samples")
    output_type = result_or_samples.output_type
    if output_type not in MIXTURE_OUTPUT_TYPES:
        raise ValueError(
            f"Invalid value received for argument `result_or_samples`: an MCDropoutResult with "
            f"output_type={output_type!r}. A predictive Gaussian mixture needs output_type 'regression' (sampled "
            f"values) or 'gaussian' (sampled means and variances); score class probabilities with "
            f"kerasdrop.metrics.negative_log_likelihood, brier_score or expected_calibration_error on `result.mean`."
        )
    means = _kept(result_or_samples, "samples", output_type)
    noise = component_noise(output_type, noise_variance, means.shape, "a result of output_type 'regression'")
    if noise is not None:
        return means, noise
    variances = _kept(result_or_samples, "sample_variances", output_type)
    if variances.shape != means.shape:
        raise ValueError(
            f"Invalid value received for argument `result_or_samples`: its sample_variances of shape "
            f"{variances.shape} do not match its samples of shape {means.shape}."
        )
    return means, positive_variances("result.sample_variances", variances, means.shape)


def _kept(result, attribute, output_type):
    values = getattr(result, attribute, None)
    if values is None:
        raise ValueError(
            f"Invalid value received for argument `result_or_samples`: an MCDropoutResult of output_type "
            f"{output_type!r} without `{attribute}`. The predictive distribution needs every sample: pass "
            f"keep_samples=True to MCDropout.predict."
        )
    return finite_array(f"result.{attribute}", values, min_ndim=2)


def component_noise(output_type, noise_variance, shape, what):
    """The checked noise variance of each component (see `noise_variances`) for output type "regression"; None
    for "gaussian", which predicts its own variances and refuses a ``noise_variance``."""
    if output_type == "gaussian":
        no_noise_variance_for_a_head(noise_variance)
        return None
    return noise_variances(noise_variance, shape, what)


def noise_variances(noise_variance, shape, what):
    """``noise_variance`` (the observation noise ``1/τ`` that ``what`` needs) checked > 0 and broadcast to
    ``shape``; None refused, naming what it would leave out."""
    if noise_variance is None:
        raise ValueError(
            f"Invalid value received for argument `noise_variance`: {what} need the observation noise variance 1/τ "
            f"(a float > 0, or an array broadcastable to {shape}), the variance of each Gaussian around a sample. "
            f"`result.variance` alone is only the epistemic part, the spread of the samples. Received: "
            f"noise_variance=None"
        )
    return positive_variances("noise_variance", noise_variance, shape)
