"""Uncertainty and calibration metrics for classifiers: NumPy in, NumPy out, natural logarithms.

Shapes: class probabilities ``probs`` are ``(N, C)``, Monte Carlo samples of them ``(T, N, C)``, labels are ``(N,)``
integers in ``[0, C)``. Every function checks its inputs and raises ``ValueError`` (``TypeError`` for non-numeric
arrays) naming the argument: wrong rank, mismatched sizes, values that are not probabilities (outside [0, 1], or
rows not summing to 1), labels out of range.
"""

from typing import NamedTuple

import numpy as np

from kerasdrop._validation import check_numeric_array, check_positive_float, check_positive_int

# How far a row of probabilities may sum from 1: float32 rounding over many classes (also after a cast to float64),
# wider for float16 outputs. Logits or unnormalised scores are far outside either.
_SUM_TOLERANCE = {2: 1e-2}
_RANGE_TOLERANCE = 1e-6


def check_probabilities(name, values, ndim):
    """``values`` as float64 with ``ndim`` axes whose last axis is a probability vector; raises otherwise."""
    array = check_numeric_array(name, values)
    shape_text = {1: "(C,)", 2: "(N, C)", 3: "(T, N, C)"}.get(ndim, f"{ndim} axes")
    if array.ndim != ndim or array.shape[-1] < 1:
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected an array of shape {shape_text}. "
            f"Received: {name} of shape {array.shape}"
        )
    tolerance = _SUM_TOLERANCE.get(array.dtype.itemsize, 1e-3) if array.dtype.kind == "f" else 0.0
    array = array.astype("float64")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Invalid value received for argument `{name}`: it contains NaN or infinite values.")
    if array.size and (array.min() < -_RANGE_TOLERANCE or array.max() > 1 + _RANGE_TOLERANCE):
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected probabilities in [0, 1] (apply a softmax to "
            f"logits first). Received values in [{array.min():.4g}, {array.max():.4g}]"
        )
    sums = array.sum(axis=-1)
    if sums.size and np.max(np.abs(sums - 1.0)) > tolerance:
        worst = sums.ravel()[np.argmax(np.abs(sums - 1.0))]
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected each row (last axis) to sum to 1. "
            f"Received a row summing to {worst:.6g}"
        )
    return np.clip(array, 0.0, 1.0)


def check_labels(name, labels, count, classes):
    """``labels`` as an int64 array of shape ``(count,)`` with values in ``[0, classes)``; raises otherwise."""
    array = check_numeric_array(name, labels)
    if array.shape != (count,):
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected integer class labels of shape ({count},), one "
            f"per row of the probabilities (for one-hot labels pass `labels.argmax(-1)`). Received: {name} of "
            f"shape {array.shape}"
        )
    if array.dtype == bool or (array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0)):
        raise ValueError(f"Invalid value received for argument `{name}`. Expected integer class labels.")
    array = array.astype("int64")
    if array.size and (array.min() < 0 or array.max() >= classes):
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected labels in [0, {classes}) for {classes} "
            f"classes. Received labels in [{array.min()}, {array.max()}]"
        )
    return array


def _check_probs_and_labels(probs, labels):
    probs = check_probabilities("probs", probs, 2)
    if probs.shape[0] == 0:
        raise ValueError("Invalid value received for argument `probs`: it has no rows.")
    return probs, check_labels("labels", labels, probs.shape[0], probs.shape[1])


def entropy_of(probs):
    """Entropy (nats) along the last axis, with ``0 log 0 = 0``; no checks (callers check)."""
    positive = probs > 0
    return -np.sum(np.where(positive, probs * np.log(np.where(positive, probs, 1.0)), 0.0), axis=-1)


def entropy(probs):
    """Entropy in nats of each probability vector (the last axis) of ``probs``: ``-sum_c p_c log p_c``.

    Args:
        probs: array ``(..., C)`` of probabilities; ``(C,)`` gives a scalar.

    Returns:
        float64 array of shape ``probs.shape[:-1]``.
    """
    array = check_numeric_array("probs", probs)
    return entropy_of(check_probabilities("probs", array, max(array.ndim, 1)))


def predictive_entropy(probs):
    """Entropy of the predictive distribution: ``H(mean)``, given the mean probabilities ``(N, C)``; shape ``(N,)``."""
    return entropy_of(check_probabilities("probs", probs, 2))


def expected_entropy(samples):
    """Mean over the ``T`` Monte Carlo samples ``(T, N, C)`` of each sample's entropy (the aleatoric part); ``(N,)``."""
    return entropy_of(check_probabilities("samples", samples, 3)).mean(axis=0)


def mutual_information(samples):
    """BALD mutual information between prediction and weights: ``H(mean over T) - mean over T of H``; ``(N,)``.

    Zero when every sample agrees; ``ln 2`` for two samples that put all their mass on different classes. Rounding
    negatives (it is never negative mathematically, by Jensen's inequality) are set to 0.
    """
    samples = check_probabilities("samples", samples, 3)
    return np.maximum(entropy_of(samples.mean(axis=0)) - entropy_of(samples).mean(axis=0), 0.0)


class CalibrationCurve(NamedTuple):
    """Equal-width confidence bins: ``edges`` ``(bins + 1,)``, and per bin ``counts``, ``accuracy`` and mean
    ``confidence`` (NaN for empty bins). Bin ``i`` holds the confidences in ``(edges[i], edges[i + 1]]``."""

    edges: np.ndarray
    counts: np.ndarray
    accuracy: np.ndarray
    confidence: np.ndarray


def calibration_curve(probs, labels, bins=15):
    """Bins the top-class confidence of ``probs`` ``(N, C)`` into ``bins`` equal-width bins of [0, 1].

    Returns:
        `CalibrationCurve` with each bin's count, accuracy (share of rows whose arg-max is the label) and mean
        confidence.
    """
    probs, labels = _check_probs_and_labels(probs, labels)
    bins = check_positive_int("bins", bins)
    confidence = probs.max(axis=-1)
    correct = (probs.argmax(axis=-1) == labels).astype("float64")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.bincount(index, weights=correct, minlength=bins) / counts
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / counts
    return CalibrationCurve(edges, counts, accuracy, mean_confidence)


def calibration_error_of(curve):
    """ECE of a `CalibrationCurve`: ``sum_b (n_b / N) |accuracy_b - confidence_b|`` over the non-empty bins."""
    filled = curve.counts > 0
    gaps = np.abs(curve.accuracy[filled] - curve.confidence[filled])
    return float(np.sum(curve.counts[filled] * gaps) / np.sum(curve.counts))


def expected_calibration_error(probs, labels, bins=15):
    """Expected calibration error (Guo et al. 2017) with ``bins`` equal-width bins of the top-class confidence.

    ``ECE = sum_b (n_b / N) |accuracy_b - confidence_b|``: 0 for a perfectly calibrated classifier.
    """
    return calibration_error_of(calibration_curve(probs, labels, bins))


def negative_log_likelihood(probs, labels, eps=1e-12):
    """Mean of ``-log p(label)`` over the rows of ``probs`` ``(N, C)``, with ``p`` floored at ``eps``."""
    probs, labels = _check_probs_and_labels(probs, labels)
    eps = check_positive_float("eps", eps)
    return float(np.mean(-np.log(np.maximum(probs[np.arange(len(labels)), labels], eps))))


def brier_score(probs, labels):
    """Mean over rows of ``sum_c (p_c - y_c)^2`` with ``y`` the one-hot label: 0 (perfect) to 2 (confidently wrong)."""
    probs, labels = _check_probs_and_labels(probs, labels)
    one_hot = np.eye(probs.shape[1])[labels]
    return float(np.mean(np.sum((probs - one_hot) ** 2, axis=-1)))


def accuracy(probs, labels):
    """Fraction of rows of ``probs`` ``(N, C)`` whose most probable class is the label."""
    probs, labels = _check_probs_and_labels(probs, labels)
    return float(np.mean(probs.argmax(axis=-1) == labels))


def classification_scores(probs, labels, bins=15):
    """``{"accuracy", "nll", "ece", "brier"}`` of the predicted probabilities ``probs`` ``(N, C)`` of ``labels``."""
    return {
        "accuracy": accuracy(probs, labels),
        "nll": negative_log_likelihood(probs, labels),
        "ece": expected_calibration_error(probs, labels, bins),
        "brier": brier_score(probs, labels),
    }
