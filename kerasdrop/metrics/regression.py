"""Metrics of regression predictions and of their uncertainty under Monte Carlo dropout: NumPy in, NumPy out.

A model with dropout, sampled ``T`` times by `kerasdrop.MCDropout`, predicts for each input the mixture
``p(y) = (1/T) Σ_t N(y; ŷ_t, σ_t²)`` (Gal & Ghahramani 2016). The spread of the samples ``ŷ_t`` is the model's
(epistemic) uncertainty; ``σ_t²`` is the noise of the observations (aleatoric), which the samples do not show:

- for plain sampled values (an array, or a result of ``output_type="regression"``) pass it as ``noise_variance``,
  ``1/τ`` in Gal & Ghahramani's notation (for example the variance of the residuals on held-out data);
- a result of ``output_type="gaussian"`` (a head that predicts a mean and a log variance, trained with
  `kerasdrop.losses.GaussianNLL`, Kendall & Gal 2017) carries each sample's own variance; ``noise_variance`` must
  then be None.

Shapes: samples ``(T, N)`` or ``(T, N, d)``, targets ``y`` ``(N,)`` or ``(N, d)``. A result must come from
``MCDropout.predict(..., keep_samples=True)``. Every function checks its inputs and raises ``ValueError``
(``TypeError`` for non-numeric arrays) naming the argument and the value: mismatched shapes, NaN or infinite
values, a level outside (0, 1), a noise variance that is not > 0.

References:
    - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1506.02142): the Monte Carlo predictive log-likelihood.
    - [Kendall & Gal, 2017](https://arxiv.org/abs/1703.04977): heteroscedastic heads.
    - [Gneiting & Raftery, 2007](https://doi.org/10.1198/016214506000001437): the CRPS, a proper scoring rule.
    - [Kuleshov et al., 2018](https://arxiv.org/abs/1807.00263): calibration of regression, from the PIT values.
"""

from typing import NamedTuple

import numpy as np

from kerasdrop import _gaussian_mixture
from kerasdrop._gaussian_mixture import finite_array, mixture_components
from kerasdrop._validation import check_choice, check_float

DEFAULT_LEVELS = tuple(round(0.05 * step, 2) for step in range(1, 20))  # 0.05, 0.1, ..., 0.95
REDUCTIONS = ("mean", "none")


def _same_shape(names_and_values):
    """Each value as a finite float64 array of one shape, ``(N,)`` or ``(N, d)``."""
    arrays = [finite_array(name, values, min_ndim=1) for name, values in names_and_values]
    (first_name, _), first = names_and_values[0], arrays[0]
    if first.ndim > 2:
        raise ValueError(
            f"Invalid value received for argument `{first_name}`. Expected an array of shape (N,) or (N, d). "
            f"Received: {first_name} of shape {first.shape}"
        )
    for (name, _), array in zip(names_and_values[1:], arrays[1:], strict=True):
        if array.shape != first.shape:
            raise ValueError(
                f"Invalid value received for argument `{name}`. Expected the shape of `{first_name}`, "
                f"{first.shape}. Received: {name} of shape {array.shape}"
            )
    return arrays


def check_intervals(lower, upper, *others):
    """``lower`` and ``upper`` as finite float64 arrays of one shape, ``(N,)`` or ``(N, d)``, with ``lower <= upper``,
    and the arrays of ``others`` (``(name, value)`` pairs) checked to have that shape; raises naming the argument."""
    lower, upper, *rest = _same_shape([("lower", lower), ("upper", upper), *others])
    crossed = lower > upper
    if crossed.any():
        index = tuple(int(i) for i in np.argwhere(crossed)[0])
        raise ValueError(
            f"Invalid value received for argument `upper`. Expected upper >= lower everywhere. Received: "
            f"upper[{', '.join(map(str, index))}]={float(upper[index])!r} below lower={float(lower[index])!r}"
        )
    return lower, upper, *rest


def _mixture(result_or_samples, y, noise_variance):
    """The mixture's means and variances ``(T, N)`` or ``(T, N, d)`` and the targets ``y`` of ``means.shape[1:]``."""
    means, variances = mixture_components(result_or_samples, noise_variance)
    if means.ndim > 3:
        raise ValueError(
            f"Invalid value received for argument `result_or_samples`. Expected samples of shape (T, N) or "
            f"(T, N, d). Received: samples of shape {means.shape}"
        )
    if y is not None:
        y = _gaussian_mixture.targets("y", y, means.shape[1:])
    return means, variances, y


def _reduce(values, reduce):
    reduce = check_choice("reduce", reduce, REDUCTIONS)
    return float(np.mean(values)) if reduce == "mean" else values


def rmse(y_true, y_pred):
    """Root mean squared error over every entry of ``y_true`` and ``y_pred`` (``(N,)`` or ``(N, d)``, one shape).

    For ``(N, d)`` this is the root of the mean over all ``N·d`` squared errors, as scikit-learn's
    ``root_mean_squared_error(y_true.ravel(), y_pred.ravel())`` (its default on 2-D targets averages the RMSE of
    each output instead).
    """
    y_true, y_pred = _same_shape([("y_true", y_true), ("y_pred", y_pred)])
    return float(np.sqrt(np.mean((y_pred - y_true) ** 2)))


def gaussian_log_likelihood(result_or_samples, y, noise_variance=None, reduce="mean"):
    """Monte Carlo predictive log-likelihood of ``y`` (Gal & Ghahramani 2016), in nats; higher is better.

    Per input, ``log (1/T) Σ_t N(y; ŷ_t, σ_t²)`` = ``logsumexp_t log N(y; ŷ_t, σ_t²) − log T``. With ``d`` outputs
    every sample is one joint draw: its log densities are summed over the outputs inside the logsumexp, the log
    density of the whole vector ``y_n`` under the mixture of diagonal Gaussians.

    Args:
        result_or_samples: samples ``(T, N)`` or ``(T, N, d)``, or a result kept with ``keep_samples=True``.
        y: targets ``(N,)`` or ``(N, d)``.
        noise_variance: ``1/τ``, float > 0 or array broadcastable to the samples; see the module docstring.
        reduce: "mean" (a float, the mean over inputs) or "none" (``(N,)``).
    """
    means, variances, y = _mixture(result_or_samples, y, noise_variance)
    return _reduce(_gaussian_mixture.log_pdf(means, variances, y, event_ndim=means.ndim - 2), reduce)


def crps(result_or_samples, y, noise_variance=None, reduce="mean"):
    """Continuous ranked probability score ``∫ (F(x) − 1{x ≥ y})² dx`` of the predictive mixture; lower is better.

    In y's units; for a point prediction it is the absolute error. Computed in closed form (Grimit et al. 2006),
    exactly up to ``T = 2000`` samples and above by an unbiased, seeded estimate of its pair term over a fixed
    budget of pairs: see `kerasdrop._gaussian_mixture.crps`.

    Args:
        result_or_samples: samples ``(T, N)`` or ``(T, N, d)``, or a result kept with ``keep_samples=True``.
        y: targets ``(N,)`` or ``(N, d)``.
        noise_variance: ``1/τ``, float > 0 or array broadcastable to the samples; see the module docstring.
        reduce: "mean" (a float, over every input and output) or "none" (an array of y's shape, per output).
    """
    means, variances, y = _mixture(result_or_samples, y, noise_variance)
    return _reduce(_gaussian_mixture.crps(means, variances, y), reduce)


def predictive_interval(result_or_samples, level=0.95, noise_variance=None):
    """The central interval holding probability ``level`` of each predictive mixture: its quantiles
    ``(1 ∓ level) / 2``, found to float64 precision.

    Returns:
        ``(lower, upper)``, float64 arrays ``(N,)`` or ``(N, d)``.
    """
    means, variances, _ = _mixture(result_or_samples, None, noise_variance)
    return _gaussian_mixture.central_interval(means, variances, level)


def interval_coverage(y, lower, upper):
    """Prediction interval coverage probability (PICP): the fraction of the entries of ``y`` with
    ``lower <= y <= upper``. About ``level`` for calibrated central intervals of that level."""
    lower, upper, y = check_intervals(lower, upper, ("y", y))
    return float(np.mean((lower <= y) & (y <= upper)))


def mean_interval_width(lower, upper):
    """Mean of ``upper − lower`` over every entry (in y's units): how sharp the intervals are."""
    lower, upper = check_intervals(lower, upper)
    return float(np.mean(upper - lower))


class RegressionCalibrationCurve(NamedTuple):
    """``expected``: the levels of the central intervals; ``observed``: the fraction of targets inside each."""

    expected: np.ndarray
    observed: np.ndarray


def _check_levels(levels):
    array = finite_array("levels", levels, min_ndim=1)
    if array.ndim != 1:
        raise ValueError(
            f"Invalid value received for argument `levels`. Expected a 1-D sequence of levels. Received: levels of "
            f"shape {array.shape}"
        )
    for level in array:
        check_float("levels", float(level), 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    return array


def regression_calibration_curve(result_or_samples, y, noise_variance=None, levels=DEFAULT_LEVELS):
    """Observed coverage of the central intervals of the predictive distribution at each level (Kuleshov et al.
    2018).

    A target lies in the central interval of level ``p`` exactly when its PIT value ``F(y)`` (the predictive CDF
    at ``y``, per output) does: ``|2 F(y) − 1| <= p``. For a calibrated model the observed fraction is ``p`` at every
    level (the diagonal); below it the intervals are too narrow (overconfident), above it too wide.

    Args:
        result_or_samples: samples ``(T, N)`` or ``(T, N, d)``, or a result kept with ``keep_samples=True``.
        y: targets ``(N,)`` or ``(N, d)``.
        noise_variance: ``1/τ``, float > 0 or array broadcastable to the samples; see the module docstring.
        levels: levels in (0, 1), by default 0.05, 0.10, ..., 0.95.

    Returns:
        `RegressionCalibrationCurve` ``(expected, observed)``: the levels, and the fraction of the ``N·d`` targets
        inside the interval of each.
    """
    levels = _check_levels(levels)
    means, variances, y = _mixture(result_or_samples, y, noise_variance)
    distance = np.abs(2.0 * _gaussian_mixture.cdf(means, variances, y) - 1.0).ravel()
    observed = np.mean(distance[:, None] <= levels[None, :], axis=0)
    return RegressionCalibrationCurve(levels, observed)
