"""kerasdrop layers, one module per family."""

from kerasdrop.layers.bayesian_pruning import StructuredBayesianPruning
from kerasdrop.layers.concrete import ConcreteDropout, ConcreteSpatialDropout2D
from kerasdrop.layers.dropout import (
    Dropout,
    DropPath,
    GaussianDropout,
    SpatialDropout1D,
    SpatialDropout2D,
    SpatialDropout3D,
    StochasticDepth,
    StochasticDropout,
)
from kerasdrop.layers.image import Cutout, DropBlock2D, MaxDrop2D
from kerasdrop.layers.pooling import AvgPoolingDropout2D, MaxPoolingDropout2D
from kerasdrop.layers.recurrent import (
    RNNDropLSTM,
    SemeniutaGRU,
    SemeniutaLSTM,
    VariationalGRU,
    VariationalLSTM,
    ZoneoutGRU,
    ZoneoutLSTM,
)
from kerasdrop.layers.recurrent_cells import (
    RNNDropLSTMCell,
    SemeniutaGRUCell,
    SemeniutaLSTMCell,
    VariationalGRUCell,
    VariationalLSTMCell,
    ZoneoutGRUCell,
    ZoneoutLSTMCell,
)
from kerasdrop.layers.variational import SparseVariationalConv2D, SparseVariationalDense, VariationalDense
from kerasdrop.layers.weight_noise import DropConnectConv2D, DropConnectDense, FastDropoutDense, StandoutDense

__all__ = [
    "StructuredBayesianPruning",
    "Dropout",
    "GaussianDropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "StochasticDropout",
    "DropPath",
    "StochasticDepth",
    "AvgPoolingDropout2D",
    "Cutout",
    "DropBlock2D",
    "MaxDrop2D",
    "MaxPoolingDropout2D",
    "VariationalLSTM",
    "VariationalLSTMCell",
    "VariationalGRU",
    "VariationalGRUCell",
    "RNNDropLSTM",
    "RNNDropLSTMCell",
    "SemeniutaLSTM",
    "SemeniutaLSTMCell",
    "SemeniutaGRU",
    "SemeniutaGRUCell",
    "ZoneoutLSTM",
    "ZoneoutLSTMCell",
    "ZoneoutGRU",
    "ZoneoutGRUCell",
    "DropConnectDense",
    "DropConnectConv2D",
    "StandoutDense",
    "FastDropoutDense",
    "VariationalDense",
    "SparseVariationalDense",
    "SparseVariationalConv2D",
    "ConcreteDropout",
    "ConcreteSpatialDropout2D",
]
