"""Calibration of Monte Carlo predictions: post-hoc temperature scaling of class probabilities
(`TemperatureScaling`) and split conformal prediction sets and intervals with a coverage guarantee
(`SplitConformal`). Both take `kerasdrop.MCDropout` results (or their samples) of a held-out set and its labels."""

from kerasdrop.calibration.conformal import SplitConformal
from kerasdrop.calibration.temperature import TemperatureScaling

__all__ = ["SplitConformal", "TemperatureScaling"]
