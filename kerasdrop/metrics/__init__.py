"""Metrics of predictions and their uncertainty: NumPy in, NumPy out, natural logarithms.

`kerasdrop.metrics.classification` scores class probabilities (entropies, BALD, calibration, NLL, Brier);
`kerasdrop.metrics.regression` scores regression predictions and the predictive distribution of their Monte Carlo
samples (RMSE, log-likelihood, CRPS, interval coverage and width, calibration curve). Every public name of both is
available here.
"""

from kerasdrop.metrics.classification import (
    CalibrationCurve,
    accuracy,
    brier_score,
    calibration_curve,
    calibration_error_of,
    check_labels,
    check_probabilities,
    classification_scores,
    entropy,
    entropy_of,
    expected_calibration_error,
    expected_entropy,
    mutual_information,
    negative_log_likelihood,
    predictive_entropy,
)
from kerasdrop.metrics.regression import (
    RegressionCalibrationCurve,
    crps,
    gaussian_log_likelihood,
    interval_coverage,
    mean_interval_width,
    predictive_interval,
    regression_calibration_curve,
    rmse,
)

__all__ = [
    "CalibrationCurve",
    "accuracy",
    "brier_score",
    "calibration_curve",
    "calibration_error_of",
    "check_labels",
    "check_probabilities",
    "classification_scores",
    "entropy",
    "entropy_of",
    "expected_calibration_error",
    "expected_entropy",
    "mutual_information",
    "negative_log_likelihood",
    "predictive_entropy",
    "RegressionCalibrationCurve",
    "crps",
    "gaussian_log_likelihood",
    "interval_coverage",
    "mean_interval_width",
    "predictive_interval",
    "regression_calibration_curve",
    "rmse",
]
