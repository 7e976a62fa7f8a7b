"""The targets of `kerasdrop.MCDropout.log_likelihood`, checked once and cut into the batches of its inputs, with
the noise variance of the predictive mixture they are scored under."""

import numpy as np

from kerasdrop import _gaussian_mixture
from kerasdrop._validation import _message


def target_batches(kinds, model, y, noise_variance, count, batch_size):
    """An iterator of ``(y of the batch, noise variance)`` for every batch of ``batch_size`` of the ``count``
    inputs: ``y`` checked against the single output of ``model`` (read as ``kinds``), ``noise_variance`` against
    its output type, both before any sampling."""
    if count is None:
        raise ValueError(
            "MCDropout.log_likelihood takes arrays (x and y), not a dataset or generator: the targets must be "
            "aligned with the inputs."
        )
    if kinds is None or len(kinds) != 1 or kinds[0].output_type not in ("regression", "gaussian"):
        types = None if kinds is None else [kind.output_type for kind in kinds]
        raise ValueError(
            f"MCDropout.log_likelihood needs a model with a single regression or gaussian output; model {model.name!r} "
            f"has outputs read as {types}. Pass output_type='regression' (or 'gaussian' for a head of mean and log "
            "variance) to MCDropout."
        )
    shape = _output_shape(model, kinds[0], count)
    y = _checked_targets(y, shape)
    noise = _checked_noise_variance(noise_variance, kinds[0].output_type, shape[1:])
    return ((y[start : start + batch_size], noise) for start in range(0, count, batch_size))


def _output_shape(model, kind, count):
    output = model.outputs[0] if getattr(model, "outputs", None) else None
    if output is None:
        return None
    units = tuple(output.shape[1:])
    if kind.output_type == "gaussian":
        units = (*units[:-1], units[-1] // 2)
    return (count, *units)


def _checked_targets(y, shape):
    if shape is not None and np.ndim(y) == len(shape) - 1 and shape[-1:] == (1,):
        y = np.asarray(y)[..., None]  # (N,) for an output (N, 1)
    if shape is None:
        return _gaussian_mixture.finite_array("y", y)
    return _gaussian_mixture.targets("y", y, shape)


def _checked_noise_variance(noise_variance, output_type, value_shape):
    if output_type == "gaussian":
        _gaussian_mixture.no_noise_variance_for_a_head(noise_variance)
        return None
    if noise_variance is None:
        raise ValueError(
            _message("noise_variance", "the noise variance 1 / tau (> 0) of a 'regression' output", noise_variance)
        )
    return _gaussian_mixture.positive_variances(
        "noise_variance", noise_variance, value_shape or np.shape(noise_variance)
    )
