"""Metrics of predictions and their uncertainty: NumPy in, NumPy out, natural logarithms.

`kerasdrop.metrics.classification` scores class probabilities (entropies, BALD, calibration, NLL, Brier);
every public name of it is available here.
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
]
