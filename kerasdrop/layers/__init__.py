"""kerasdrop layers, one module per family."""

from kerasdrop.layers.dropout import (
    Dropout,
    GaussianDropout,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    StochasticDropout,
)

__all__ = [
    "Dropout",
    "GaussianDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "StochasticDropout",
]
