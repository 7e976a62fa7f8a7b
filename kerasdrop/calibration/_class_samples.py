"""Monte Carlo samples of class probabilities as the calibration tools read them: from an `MCDropoutResult` kept
with its samples, or from an array, with the labels they are scored against."""

from typing import NamedTuple

import numpy as np

from kerasdrop._validation import check_numeric_array
from kerasdrop.mc.outputs import OutputKind
from kerasdrop.mc.result import MCDropoutResult
from kerasdrop.metrics.classification import check_labels, check_probabilities

# How a probability stored as 0 or 1 is read: float32 cannot tell apart smaller values. A log-probability of
# log(tiny) = -103.3 or a logit of ±16.6 is where a float32 softmax or sigmoid gives 0 or 1.
_TINY = float(np.finfo("float32").tiny)
_ONE_BELOW = 1.0 - float(np.finfo("float32").epsneg)


class ClassSamples(NamedTuple):
    """``samples`` float64: ``(T, N, C)`` of class distributions ("categorical"), ``(T, N, U)`` of independent
    Bernoulli probabilities ("binary", sigmoid units), or ``(T, N)`` ("bernoulli", an output of rank 1); the
    `OutputKind` a result of them has; whether they are joint draws across inputs."""

    samples: np.ndarray
    entropy: str
    kind: OutputKind
    consistent: bool


def read(name, result_or_samples):
    """The `ClassSamples` of a result with kept samples (of probabilities or logits) or of an array: ``(T, N, C)``
    rows of class probabilities, or ``(T, N)`` probabilities of the positive class."""
    if isinstance(result_or_samples, MCDropoutResult):
        result = require_classifier(name, result_or_samples)
        if result.samples is None:
            raise ValueError(
                f"`{name}` has no samples: predict with `keep_samples=True` (each sample is calibrated before the "
                "average)."
            )
        entropy = result._kind.entropy
        samples = _checked(name, result.samples, entropy)
        return ClassSamples(
            samples, entropy, OutputKind("probabilities", _units(samples), _activation(entropy)), result.consistent
        )
    array = check_numeric_array(name, result_or_samples)
    if array.ndim == 3:
        return ClassSamples(_checked(name, array, "categorical"), "categorical", _kind(array), False)
    if array.ndim == 2:
        return ClassSamples(_checked(name, array, "bernoulli"), "bernoulli", OutputKind("probabilities", None), False)
    raise ValueError(
        f"Invalid value received for argument `{name}`. Expected an MCDropoutResult kept with its samples, or "
        f"Monte Carlo samples of shape (T, N, C) (class probabilities) or (T, N) (probabilities of the positive "
        f"class). Received: {name} of shape {array.shape}"
    )


def require_classifier(name, result):
    """``result``, an `MCDropoutResult` of class probabilities; raises naming its output type otherwise."""
    if result.output_type not in ("probabilities", "logits"):
        raise ValueError(
            f"`{name}` is a result of output_type={result.output_type!r}; this needs class probabilities "
            "(output_type='probabilities' or 'logits' in MCDropout)."
        )
    return result


def _units(samples):
    return None if samples.ndim == 2 else samples.shape[-1]


def _activation(entropy):
    return "softmax" if entropy == "categorical" else "sigmoid"


def _kind(array):
    return OutputKind("probabilities", array.shape[-1], "softmax")


def _checked(name, samples, entropy):
    if entropy == "categorical":
        return check_probabilities(name, samples, 3)
    # Bernoulli probabilities: each value alone in [0, 1] (as a distribution [1 - p, p]).
    array = check_numeric_array(name, samples)
    check_probabilities(
        name, np.stack([1.0 - array.astype("float64"), array.astype("float64")], axis=-1), array.ndim + 1
    )
    return np.clip(array.astype("float64"), 0.0, 1.0)


def labels_for(name, labels, samples):
    """``labels`` checked against `ClassSamples` ``samples``: int class indices ``(N,)`` for class distributions,
    0/1 of the shape of one sample for Bernoulli outputs."""
    if samples.entropy == "categorical":
        return check_labels(name, labels, samples.samples.shape[1], samples.samples.shape[2])
    array = check_numeric_array(name, labels)
    shape = samples.samples.shape[1:]
    if array.shape != shape and not (shape[-1:] == (1,) and array.shape == shape[:-1]):
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected 0/1 labels of shape {shape}, one per input and "
            f"unit. Received: {name} of shape {array.shape}"
        )
    array = array.reshape(shape)
    if not np.all((array == 0) | (array == 1)):
        bad = array[(array != 0) & (array != 1)].ravel()[0]
        raise ValueError(
            f"Invalid value received for argument `{name}`. Expected labels 0 or 1 for a sigmoid output. Received "
            f"a label {bad!r}"
        )
    return array.astype("int64")


def log_probabilities(samples):
    """Per sample the logits (up to a constant per row, which neither softmax nor temperature sees): the
    log-probabilities of a class distribution, the log-odds of a Bernoulli probability. A stored 0 or 1 is read as
    the nearest float32 value inside (0, 1)."""
    if samples.entropy == "categorical":
        return np.log(np.maximum(samples.samples, _TINY))
    p = np.clip(samples.samples, _TINY, _ONE_BELOW)
    return np.log(p) - np.log1p(-p)
