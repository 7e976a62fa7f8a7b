"""kerasdrop: dropout variants for Keras 3, a Monte Carlo dropout predictor, and compression."""

from kerasdrop import compression
from kerasdrop.layers import (
    Dropout,
    GaussianDropout,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    StochasticDropout,
    StructuredBayesianPruning,
)
from kerasdrop.mc import set_mc

__version__ = "0.1.0"

__all__ = [
    "Dropout",
    "GaussianDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "StochasticDropout",
    "StructuredBayesianPruning",
    "compression",
    "set_mc",
    "__version__",
]
