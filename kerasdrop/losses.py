"""Losses for models that predict their own uncertainty."""

import math

import keras
from keras import ops

from kerasdrop._validation import check_bool, check_float

LOW_PRECISION = ("float16", "bfloat16")


@keras.saving.register_keras_serializable(package="kerasdrop")
class GaussianNLL(keras.losses.Loss):
    """Negative log-likelihood of a Gaussian whose mean and log variance the model predicts (Kendall & Gal 2017).

    For ``d`` outputs the model's last axis holds ``2d`` numbers: the means ``μ = y_pred[..., :d]``, then the log
    variances ``s = log σ² = y_pred[..., d:]`` (a ``Dense(2 * d)`` head without activation). Each output adds

        ``0.5 · (s + (y − μ)² · e^(−s))``   (``+ 0.5 · log 2π`` with ``include_constant=True``),

    the negative log density of ``y`` under ``N(μ, e^s)``. The constant changes neither the gradients nor the
    minimum, so it is left out by default, as in PyTorch's ``GaussianNLLLoss``; with it the loss is the exact
    negative log-likelihood in nats, comparable with `kerasdrop.metrics.gaussian_log_likelihood`. The loss of an
    example is the mean over its ``d`` outputs, as for Keras's ``mean_squared_error`` (the joint negative
    log-likelihood of the ``d`` outputs is ``d`` times it). Sampled with `kerasdrop.MCDropout`, such a head gives
    both the noise in the data (the predicted variances) and the model's uncertainty (the spread of the sampled
    means).

    Numerical safety. Predicting ``log σ²`` keeps the variance positive with no constraint on the layer. The loss is
    computed in float32 (float64 inputs stay float64), also for float16 or bfloat16 outputs of a mixed-precision
    model, and its residual term as ``((y − μ) · e^(−s/2))²``, which overflows only where the loss itself would. The
    log variance is clipped to ``[min_log_variance, max_log_variance]``, by default ``[-20, 20]``: standard
    deviations from ``e^-10 ≈ 4.5e-5`` to ``e^10 ≈ 2.2e4``, so that ``e^(−s)`` stays below ``4.9e8`` and a residual
    up to ``8e14`` gives a finite float32 loss. Outside the range the loss is that of the bound and its gradient with
    respect to the log variance is 0: the bound is a floor (and a ceiling) on the predicted variance, reached only
    when a model drives its variance towards 0 on targets it fits exactly. Scale targets so that their noise lies
    well inside the range, or widen it.

    Args:
        include_constant: bool, add ``0.5 · log 2π`` per output.
        min_log_variance: float, the lowest log variance used.
        max_log_variance: float > ``min_log_variance``, the highest.
        reduction: as for Keras's losses; default ``"sum_over_batch_size"``.
        name: str.
        dtype: as for Keras's losses: the dtype of the value returned (the computation is float32 at least).

    Call arguments:
        y_true: targets ``(..., d)``; ``(batch,)`` for ``d = 1`` also works.
        y_pred: ``(..., 2d)``, the means then the log variances.

    Reference:
        - [Kendall & Gal, 2017](https://arxiv.org/abs/1703.04977)
        - [Nix & Weigend, 1994](https://doi.org/10.1109/ICNN.1994.374138)
    """

    def __init__(
        self,
        include_constant=False,
        min_log_variance=-20.0,
        max_log_variance=20.0,
        reduction="sum_over_batch_size",
        name="gaussian_nll",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.include_constant = check_bool("include_constant", include_constant)
        self.min_log_variance = check_float("min_log_variance", min_log_variance)
        self.max_log_variance = check_float(
            "max_log_variance",
            max_log_variance,
            low=self.min_log_variance,
            low_inclusive=False,
            expected=f"a finite float > min_log_variance={self.min_log_variance}",
        )

    def call(self, y_true, y_pred):
        dtype = keras.backend.standardize_dtype(y_pred.dtype)
        dtype = "float32" if dtype in LOW_PRECISION else dtype
        y_pred, y_true = ops.cast(y_pred, dtype), ops.cast(y_true, dtype)
        outputs = _half_of_last_axis(y_pred)
        if len(y_true.shape) == len(y_pred.shape) - 1:
            y_true = ops.expand_dims(y_true, -1)
        if isinstance(outputs, int) and y_true.shape[-1] not in (None, outputs):
            raise ValueError(
                f"Invalid value received for argument `y_true`. Expected a last axis of size {outputs}, half of "
                f"y_pred's {2 * outputs}. Received: y_true of shape {tuple(y_true.shape)}"
            )
        mean, log_variance = y_pred[..., :outputs], y_pred[..., outputs:]
        log_variance = ops.clip(log_variance, self.min_log_variance, self.max_log_variance)
        standardized = (y_true - mean) * ops.exp(-0.5 * log_variance)
        loss = 0.5 * (log_variance + ops.square(standardized))
        if self.include_constant:
            loss = loss + 0.5 * math.log(2.0 * math.pi)
        return ops.mean(loss, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "include_constant": self.include_constant,
                "min_log_variance": self.min_log_variance,
                "max_log_variance": self.max_log_variance,
                "dtype": self.dtype,
            }
        )
        return config


def _half_of_last_axis(y_pred):
    """``d``, half the size of ``y_pred``'s last axis: an int when it is known, else a tensor."""
    size = y_pred.shape[-1]
    if size is None:
        return ops.shape(y_pred)[-1] // 2
    if size % 2:
        raise ValueError(
            f"Invalid value received for argument `y_pred`. Expected a last axis of even size 2·d: the means, then "
            f"the log variances, of d outputs. Received: y_pred of shape {tuple(y_pred.shape)}"
        )
    return size // 2
