"""kerasdrop: dropout variants for Keras 3, a Monte Carlo dropout predictor, and compression."""

from kerasdrop import (
    acquisition,
    calibration,
    callbacks,
    compression,
    datasets,
    layers,
    losses,
    metrics,
    plot,
    sklearn,  # noqa: F401  (kerasdrop.sklearn; not in __all__, see below)
    tflite,
)
from kerasdrop.layers import *  # noqa: F403  (every public layer, as listed in kerasdrop.layers.__all__)
from kerasdrop.layers.concrete import concrete_regularizers
from kerasdrop.layers.dropout import drop_path_rates
from kerasdrop.mc import MCDropout, MCDropoutResult, set_mc
from kerasdrop.tflite import export_tflite

__version__ = "0.1.0"

__all__ = [
    *layers.__all__,
    "concrete_regularizers",
    "drop_path_rates",
    "MCDropout",
    "MCDropoutResult",
    "set_mc",
    "export_tflite",
    "acquisition",
    "calibration",
    "callbacks",
    "compression",
    "datasets",
    "losses",
    "metrics",
    "plot",
    "tflite",
    "__version__",
]
# `kerasdrop.sklearn` is left out of `__all__`: `from kerasdrop import *` would otherwise bind the name `sklearn` to it,
# hiding scikit-learn itself.
