"""`SplitConformal`: prediction sets and intervals with a finite-sample coverage guarantee, from Monte Carlo
predictions and a held-out calibration set (split conformal prediction)."""

import math

import numpy as np

from kerasdrop import _gaussian_mixture
from kerasdrop._validation import check_choice, check_float, check_numeric_array
from kerasdrop.calibration import _class_samples
from kerasdrop.mc.result import MCDropoutResult
from kerasdrop.metrics.classification import check_labels

CLASSIFICATION_SCORES = ("lac", "aps")
REGRESSION_SCORES = ("absolute", "normalized")


class SplitConformal:
    """Split conformal prediction (Vovk et al. 2005; Angelopoulos & Bates 2021) on Monte Carlo predictions.

    `fit` computes a nonconformity score for each of ``n`` held-out calibration points and keeps ``q``, the
    ``k``-th smallest with ``k = ceil((n + 1)(1 - alpha))`` (the empirical quantile of level ``k / n``). On any
    point exchangeable with them, the set or interval built from ``q`` holds the true label with probability at
    least ``1 - alpha``, whatever the model (and at most ``1 - alpha + 1 / (n + 1)`` when the scores have no ties).
    It needs ``n >= 1 / alpha - 1`` points, else ``k > n``.

    Scores (``score``), from the Monte Carlo mean:
        - ``"lac"``: ``1 - p(y)``; the set holds every class of probability at least ``1 - q`` (Sadinle et al. 2019:
          the smallest sets on average).
        - ``"aps"``: the probability mass of the classes at least as probable as ``y``, ``y`` included (adaptive
          prediction sets, Romano et al. 2020): the set holds the most probable classes while their mass is at most
          ``q``, so its size follows the model's uncertainty. Not randomised: the guarantee holds as stated, and a
          confident prediction may give an empty set.
        - ``"absolute"`` (regression): ``|y - mean|``; the interval ``mean ± q``.
        - ``"normalized"`` (regression): ``|y - mean| / σ`` with ``σ`` the Monte Carlo predictive standard
          deviation (``sqrt(variance + noise_variance)``; for a "gaussian" head its predictive variance); the
          interval ``mean ± q σ``, wider where the model is less certain. Each output of a multi-output regression
          gets its own ``q``.

    Class probabilities come from an `MCDropoutResult` of a classifier (output_type "probabilities" or "logits",
    or a `TemperatureScaling` result) or samples ``(T, N, C)``; a single sigmoid unit is the two classes
    ``[1 - p, p]``. Regression predictions come from a result of output_type "regression" or "gaussian", or samples
    ``(T, N)`` or ``(T, N, d)``.

    Args:
        alpha: float in (0, 1), the miscoverage allowed: sets and intervals cover ``1 - alpha``.
        score: one of ``"lac"``, ``"aps"`` (classification), ``"absolute"``, ``"normalized"`` (regression).

    Attributes:
        quantile: ``q`` after `fit` (a float; per output, an array, for a multi-output regression), else None.
        n_calibration: ``n`` after `fit`.

    Example:

    ```python
    mc = kerasdrop.MCDropout(model, samples=30, seed=0)
    conformal = kerasdrop.calibration.SplitConformal(alpha=0.1, score="aps").fit(mc.predict(x_cal), y_cal)
    sets = conformal.predict_sets(mc.predict(x_test))  # (N, C) bool
    ```

    References:
        - [Angelopoulos & Bates, 2021](https://arxiv.org/abs/2107.07511)
        - [Romano, Sesia & Candès, 2020](https://arxiv.org/abs/2006.02544)
        - [Sadinle, Lei & Wasserman, 2019](https://arxiv.org/abs/1609.00451)
    """

    def __init__(self, alpha=0.1, score="lac"):
        self.alpha = check_float("alpha", alpha, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        self.score = check_choice("score", score, CLASSIFICATION_SCORES + REGRESSION_SCORES)
        self.quantile = None
        self.n_calibration = None

    @property
    def _classification(self):
        return self.score in CLASSIFICATION_SCORES

    def fit(self, result_or_samples, y, noise_variance=None):
        """Scores the calibration points and keeps their quantile; returns ``self``.

        Args:
            result_or_samples: the Monte Carlo predictions of the calibration inputs (see the class).
            y: their labels: class indices ``(N,)`` (0/1 for a sigmoid unit); regression targets ``(N,)`` or
                ``(N, d)``.
            noise_variance: "normalized" score of a plain regression output only: the observation noise
                variance added to the samples' variance (None: the samples' variance alone).
        """
        if self._classification:
            probs = _class_probabilities("result_or_samples", result_or_samples)
            labels = check_labels("y", y, probs.shape[0], probs.shape[1])
            scores = class_scores(probs, self.score)[np.arange(len(labels)), labels]
        else:
            mean, std = _regression_moments("result_or_samples", result_or_samples, self.score, noise_variance)
            y = _gaussian_mixture.targets("y", y, mean.shape)
            scores = np.abs(y - mean) / std
        quantile = conformal_quantile(scores, self.alpha)
        self.quantile = float(quantile) if quantile.ndim == 0 else quantile
        self.n_calibration = scores.shape[0]
        return self

    def predict_sets(self, result_or_samples):
        """``(N, C)`` bool: the classes in each input's prediction set."""
        self._require_fitted(classification=True, method="predict_sets")
        probs = _class_probabilities("result_or_samples", result_or_samples)
        return class_scores(probs, self.score) <= self.quantile

    def predict_interval(self, result_or_samples, noise_variance=None):
        """``(lower, upper)``, each of the shape of one output's predictions ``(N,)`` or ``(N, d)``."""
        self._require_fitted(classification=False, method="predict_interval")
        mean, std = _regression_moments("result_or_samples", result_or_samples, self.score, noise_variance)
        return mean - self.quantile * std, mean + self.quantile * std

    def _require_fitted(self, classification, method):
        if self.quantile is None:
            raise ValueError(f"This SplitConformal is not fitted yet: call `fit` before `{method}`.")
        if classification != self._classification:
            wanted = "predict_interval" if self._classification else "predict_sets"
            raise ValueError(
                f"SplitConformal(score={self.score!r}) gives {'sets' if self._classification else 'intervals'}: "
                f"call `{wanted}`, or use a score of {CLASSIFICATION_SCORES if classification else REGRESSION_SCORES}."
            )

    def __repr__(self):
        fitted = "" if self.quantile is None else f", quantile={self.quantile!r}, n_calibration={self.n_calibration}"
        return f"SplitConformal(alpha={self.alpha}, score={self.score!r}{fitted})"


def conformal_quantile(scores, alpha):
    """The ``k``-th smallest of ``scores`` along axis 0, ``k = ceil((n + 1)(1 - alpha))``; raises when ``k > n``."""
    n = scores.shape[0]
    # The product is rounded down by 1e-9 first: (n + 1)(1 - alpha) of an integer in exact arithmetic (n = 9 at
    # alpha = 0.1) may come out a rounding error above it.
    k = math.ceil((n + 1) * (1 - alpha) - 1e-9)
    if k > n or n == 0:
        needed = math.ceil(1 / alpha - 1 - 1e-9)
        raise ValueError(
            f"SplitConformal(alpha={alpha}) needs at least {needed} calibration points (n >= 1/alpha - 1), else no "
            f"quantile of their scores covers 1 - alpha; got {n}. Use more calibration data or a larger alpha."
        )
    return np.partition(scores, k - 1, axis=0)[k - 1]


def class_scores(probs, score):
    """``(N, C)``: the score every class would have as the label of each input."""
    if score == "lac":
        return 1.0 - probs
    order = np.argsort(-probs, axis=1, kind="stable")
    cumulative = np.cumsum(np.take_along_axis(probs, order, axis=1), axis=1)
    scores = np.empty_like(probs)
    np.put_along_axis(scores, order, cumulative, axis=1)
    return scores


def _class_probabilities(name, result_or_samples):
    """The Monte Carlo mean ``(N, C)`` of class distributions; a single sigmoid unit as ``[1 - p, p]``."""
    if isinstance(result_or_samples, MCDropoutResult):  # its mean is enough: no need of kept samples
        _class_samples.require_classifier(name, result_or_samples)
        mean = _gaussian_mixture.finite_array(f"{name}.mean", result_or_samples.mean)
        entropy = result_or_samples._kind.entropy
    else:
        samples = _class_samples.read(name, result_or_samples)
        mean, entropy = samples.samples.mean(axis=0), samples.entropy
    if entropy == "categorical":
        return mean
    if entropy == "binary" and mean.shape[-1] != 1:
        raise ValueError(
            f"`{name}` has {mean.shape[-1]} sigmoid units (independent labels): a conformal set over classes needs "
            "one class distribution per input. Calibrate each unit alone, as a single sigmoid output."
        )
    positive = mean.reshape(len(mean))
    return np.stack([1.0 - positive, positive], axis=1)


def _regression_moments(name, result_or_samples, score, noise_variance):
    """``(mean, σ)`` float64 of the Monte Carlo predictions, ``σ = 1`` for the "absolute" score."""
    if score == "absolute" and noise_variance is not None:
        raise ValueError(
            f"Invalid value received for argument `noise_variance`: only score='normalized' uses it (the absolute "
            f"residual does not depend on it). Received: noise_variance={noise_variance!r}"
        )
    if isinstance(result_or_samples, MCDropoutResult):
        result = result_or_samples
        if result.output_type not in _gaussian_mixture.MIXTURE_OUTPUT_TYPES:
            raise ValueError(
                f"SplitConformal(score={score!r}) scores regression predictions; `{name}` is a result of "
                f"output_type={result.output_type!r}. Use score 'lac' or 'aps' for a classifier."
            )
        mean = _gaussian_mixture.finite_array(f"{name}.mean", result.mean)
        variance, output_type = result.variance.astype("float64"), result.output_type
        if output_type == "gaussian":
            variance = variance + result.aleatoric_variance.astype("float64")
    else:
        samples = check_numeric_array(name, result_or_samples)
        if samples.ndim not in (2, 3):
            raise ValueError(
                f"Invalid value received for argument `{name}`. Expected an MCDropoutResult of a regression output, "
                f"or samples of shape (T, N) or (T, N, d). Received: {name} of shape {samples.shape}"
            )
        samples = _gaussian_mixture.finite_array(name, samples)
        mean, variance, output_type = samples.mean(axis=0), samples.var(axis=0), "regression"
    if output_type == "gaussian":
        _gaussian_mixture.no_noise_variance_for_a_head(noise_variance)
    elif noise_variance is not None:
        variance = variance + _gaussian_mixture.noise_variances(noise_variance, mean.shape, "the conformal scores")
    if score == "absolute":
        return mean, np.ones_like(mean)
    std = np.sqrt(variance)
    if not np.all(std > 0):
        raise ValueError(
            f"SplitConformal(score='normalized') divides by the Monte Carlo predictive std, which is 0 for "
            f"{int(np.sum(~(std > 0)))} of the predictions of `{name}` (no two samples differ: does the model "
            "sample?). Pass a `noise_variance`, or use score='absolute'."
        )
    return mean, std
