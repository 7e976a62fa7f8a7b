"""kerasdrop: dropout variants for Keras 3, a Monte Carlo dropout predictor, and compression."""

from kerasdrop import compression, metrics, plot
from kerasdrop.layers import (
    AvgPoolingDropout2D,
    ConcreteDropout,
    ConcreteSpatialDropout2D,
    Cutout,
    DropBlock2D,
    DropConnectConv2D,
    DropConnectDense,
    Dropout,
    FastDropoutDense,
    GaussianDropout,
    MaxDrop2D,
    MaxPoolingDropout2D,
    SparseVariationalConv2D,
    SparseVariationalDense,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    StandoutDense,
    StochasticDropout,
    StructuredBayesianPruning,
    VariationalDense,
)
from kerasdrop.mc import set_mc
from kerasdrop.uncertainty import MCDropout, MCDropoutResult

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
    "DropConnectDense",
    "DropConnectConv2D",
    "StandoutDense",
    "FastDropoutDense",
    "VariationalDense",
    "SparseVariationalDense",
    "SparseVariationalConv2D",
    "ConcreteDropout",
    "ConcreteSpatialDropout2D",
    "MCDropout",
    "MCDropoutResult",
    "metrics",
    "plot",
    "set_mc",
    "__version__",
]
