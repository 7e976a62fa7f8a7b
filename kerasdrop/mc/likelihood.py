"""The targets of `kerasdrop.MCDropout.log_likelihood`, checked once, before any sampling, with the noise variance
of the predictive mixture they are scored under."""

import keras

from kerasdrop import _gaussian_mixture


def targets(kinds, structure, model_name, y, noise_variance, count):
    """``(y, noise variance)`` for the ``count`` inputs of a call: ``y`` float64, checked against the single output
    ``structure`` read as ``kinds``, and the noise variance checked against its output type (None for a head of
    mean and log variance, which predicts its own)."""
    if count is None:
        raise ValueError(
            "MCDropout.log_likelihood takes arrays (x and y), not a dataset or generator: the targets must be "
            "aligned with the inputs."
        )
    if len(kinds) != 1 or kinds[0].output_type not in _gaussian_mixture.MIXTURE_OUTPUT_TYPES:
        raise ValueError(
            f"MCDropout.log_likelihood needs a model with a single regression or gaussian output; model {model_name!r} "
            f"has outputs read as {[kind.output_type for kind in kinds]}. Pass output_type='regression' (or 'gaussian' "
            "for a head of mean and log variance) to MCDropout."
        )
    units = tuple(keras.tree.flatten(structure)[0].shape[1:])
    if kinds[0].output_type == "gaussian":
        units = (*units[:-1], units[-1] // 2)
    if None in units:  # a size the model leaves open: the targets give it
        y = _gaussian_mixture.finite_array("y", y)
        units = y.shape[1:]
    else:
        y = _gaussian_mixture.targets("y", y, (count, *units))
    return y, _gaussian_mixture.component_noise(kinds[0].output_type, noise_variance, units, "a 'regression' output")
