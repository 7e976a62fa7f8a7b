"""kerasdrop: dropout variants for Keras 3, a Monte Carlo dropout predictor, and compression."""

from kerasdrop import compression
from kerasdrop.layers import (
    AvgPoolingDropout2D,
    Cutout,
    DropBlock2D,
    Dropout,
    GaussianDropout,
    MaxDrop2D,
    MaxPoolingDropout2D,
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
    "AvgPoolingDropout2D",
    "Cutout",
    "DropBlock2D",
    "MaxDrop2D",
    "MaxPoolingDropout2D",
    "set_mc",
    "__version__",
]
