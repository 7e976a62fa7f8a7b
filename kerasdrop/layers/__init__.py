"""kerasdrop layers, one module per family."""

from kerasdrop.layers.bayesian_pruning import StructuredBayesianPruning
from kerasdrop.layers.dropout import (
    Dropout,
    GaussianDropout,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    StochasticDropout,
)

__all__ = [
    "StructuredBayesianPruning",
    "Dropout",
    "GaussianDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "StochasticDropout",
]
