"""`TemperatureScaling`: post-hoc calibration of Monte Carlo class probabilities by one temperature (Guo et al.
2017), applied to every sample before the average."""

import math
import warnings

import numpy as np
from scipy import optimize, special

from kerasdrop._validation import _message, check_float
from kerasdrop.calibration import _class_samples
from kerasdrop.mc.moments import entropy
from kerasdrop.mc.result import MCDropoutResult


class TemperatureScaling:
    """One temperature ``τ`` for a classifier's Monte Carlo samples, fitted by the negative log-likelihood of their
    average on held-out data (Guo et al. 2017), then applied to every sample before averaging.

    Each sample's logits ``z_t`` become ``z_t / τ``: ``softmax(z_t / τ)`` for a class distribution,
    ``sigmoid(z_t / τ)`` for each sigmoid unit. The samples hold probabilities, so their logits are read back as
    log-probabilities (``log p``, which differ from the logits by a constant per row that softmax ignores) or
    log-odds (``log p - log(1 - p)``); a probability stored as 0 or 1 is read as the nearest float32 inside (0, 1).
    ``τ > 1`` softens overconfident predictions, ``τ < 1`` sharpens underconfident ones; the argmax of every sample,
    and so the accuracy of a single sample, does not change.

    The temperature minimises the validation negative log-likelihood of the calibrated Monte Carlo prediction,
    ``-(1/N) Σ_n log((1/T) Σ_t p_t(y_n | x_n; τ))``, computed with ``scipy.special.logsumexp``, over ``log τ`` in
    ``log(bounds)`` with `scipy.optimize.minimize_scalar` (Brent's bounded method). A minimum at a bound is warned
    about: widen ``bounds``.

    Args:
        bounds: ``(low, high)``, ``0 < low < 1 < high``: the temperatures searched.
        xatol: the tolerance of ``log τ``.

    Attributes:
        temperature: the fitted ``τ`` (float), None before `fit`.
        nll_before, nll_after: the validation negative log-likelihood at ``τ = 1`` and at the fitted ``τ``.

    Example:

    ```python
    mc = kerasdrop.MCDropout(model, samples=30, seed=0)
    scaling = kerasdrop.calibration.TemperatureScaling().fit(mc.predict(x_val, keep_samples=True), y_val)
    calibrated = scaling.transform(mc.predict(x_test, keep_samples=True))
    calibrated.mean, calibrated.mutual_information()
    ```

    Reference:
        - [Guo et al., 2017](https://arxiv.org/abs/1706.04599)
    """

    def __init__(self, bounds=(0.01, 100.0), xatol=1e-6):
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise ValueError(_message("bounds", "a pair (low, high) with 0 < low < 1 < high", bounds))
        low = check_float(
            "bounds",
            bounds[0],
            low=0.0,
            high=1.0,
            low_inclusive=False,
            high_inclusive=False,
            expected="a pair (low, high) with 0 < low < 1 < high",
        )
        high = check_float(
            "bounds", bounds[1], low=1.0, low_inclusive=False, expected="a pair (low, high) with 0 < low < 1 < high"
        )
        self.bounds = (low, high)
        self.xatol = check_float("xatol", xatol, low=0.0, low_inclusive=False)
        self.temperature = None
        self.nll_before = self.nll_after = None

    def fit(self, result_or_samples, labels):
        """Fits the temperature on validation samples and their labels; returns ``self``.

        Args:
            result_or_samples: an `MCDropoutResult` of a classifier predicted with ``keep_samples=True``, or samples
                ``(T, N, C)`` of class probabilities, or ``(T, N)`` of the positive class's probability.
            labels: int class indices ``(N,)``; for sigmoid outputs 0/1 labels of the shape of one sample.
        """
        samples = _class_samples.read("result_or_samples", result_or_samples)
        labels = _class_samples.labels_for("labels", labels, samples)
        logits = _class_samples.log_probabilities(samples)

        def nll(log_temperature):
            return negative_log_likelihood(logits, labels, samples.entropy, math.exp(log_temperature))

        bounds = (math.log(self.bounds[0]), math.log(self.bounds[1]))
        found = optimize.minimize_scalar(nll, bounds=bounds, method="bounded", options={"xatol": self.xatol})
        if min(abs(found.x - bounds[0]), abs(found.x - bounds[1])) < 10 * self.xatol:
            warnings.warn(
                f"TemperatureScaling: the validation NLL is lowest at the bound τ = {math.exp(found.x):.4g} of "
                f"bounds={self.bounds}; widen `bounds` (the predictions may carry no information, or the labels may "
                "not be those of the inputs).",
                RuntimeWarning,
                stacklevel=2,
            )
        self.temperature = math.exp(found.x)
        self.nll_before, self.nll_after = float(nll(0.0)), float(found.fun)
        return self

    def transform(self, result_or_samples):
        """The calibrated `MCDropoutResult` (output_type "probabilities", samples kept): every sample's logits
        divided by the temperature, then the moments and entropies as `MCDropout.predict` computes them."""
        if self.temperature is None:
            raise ValueError("This TemperatureScaling is not fitted yet: call `fit(result_or_samples, labels)` first.")
        samples = _class_samples.read("result_or_samples", result_or_samples)
        scaled = probabilities(_class_samples.log_probabilities(samples) / self.temperature, samples.entropy)
        return MCDropoutResult(
            scaled.mean(axis=0).astype("float32"),
            scaled.var(axis=0).astype("float32"),
            scaled.shape[0],
            samples=scaled.astype("float32"),
            expected_entropy=entropy(scaled, samples.entropy, xp=np).mean(axis=0).astype("float32"),
            kind=samples.kind,
            consistent=samples.consistent,
        )

    def __repr__(self):
        fitted = "not fitted" if self.temperature is None else f"temperature={self.temperature:.4g}"
        return f"TemperatureScaling({fitted})"


def probabilities(logits, kind):
    """Softmax over the last axis (a class distribution) or sigmoid of each value (Bernoulli outputs)."""
    return special.softmax(logits, axis=-1) if kind == "categorical" else special.expit(logits)


def negative_log_likelihood(logits, labels, kind, temperature):
    """``-(1/N) Σ_n log((1/T) Σ_t p_t(y_n))`` of samples' ``logits`` ``(T, N, ...)`` divided by ``temperature``."""
    scaled = logits / temperature
    if kind == "categorical":
        log_p = special.log_softmax(scaled, axis=-1)
        per_sample = np.take_along_axis(log_p, labels[None, :, None], axis=-1)[..., 0]
    else:  # log sigmoid(±z): the label's side of each unit, the units independent
        signed = np.where(labels[None] == 1, scaled, -scaled)
        per_sample = -np.logaddexp(0.0, -signed)
        per_sample = per_sample.reshape(per_sample.shape[0], per_sample.shape[1], -1).sum(axis=-1)
    log_mean = special.logsumexp(per_sample, axis=0) - math.log(per_sample.shape[0])
    return float(-np.mean(log_mean))
