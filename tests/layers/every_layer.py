"""One small, representative configuration of every public kerasdrop layer, for checks that hold for all of them.

Each case builds the layer from keyword arguments that the checks add (``dtype``, ``seed``, ``mc``, kernel
initializers) and names the input shape it takes. Layers with a non-default inference mode that computes something
else at test time (DropConnect's Gaussian inference, max-pooling dropout's scaled pooling) get a case each.
"""

from collections.abc import Callable
from typing import NamedTuple

import keras

import kerasdrop


class LayerCase(NamedTuple):
    id: str
    make: Callable  # make(**kwargs) -> layer; kwargs: dtype, seed, mc, and kernel_initializer where has_kernel
    input_shape: tuple
    has_kernel: bool = False


def _kernel_kwargs(kwargs):
    """Splits the kwargs a wrapped Keras layer takes (its dtype and initializer) from the wrapper's own."""
    inner = {key: kwargs.pop(key) for key in ("kernel_initializer",) if key in kwargs}
    if "dtype" in kwargs:
        inner["dtype"] = kwargs["dtype"]
    return inner


def _concrete(**kwargs):
    inner = _kernel_kwargs(kwargs)
    return kerasdrop.ConcreteDropout(keras.layers.Dense(4, **inner), **kwargs)


def _concrete_spatial(**kwargs):
    inner = _kernel_kwargs(kwargs)
    return kerasdrop.ConcreteSpatialDropout2D(keras.layers.Conv2D(3, 2, **inner), **kwargs)


CASES = (
    LayerCase("Dropout", lambda **kw: kerasdrop.Dropout(0.5, **kw), (4, 8)),
    LayerCase("Dropout-weight_scaling", lambda **kw: kerasdrop.Dropout(0.3, scaling="weight_scaling", **kw), (4, 8)),
    LayerCase("GaussianDropout", lambda **kw: kerasdrop.GaussianDropout(0.5, **kw), (4, 8)),
    LayerCase("StochasticDropout", lambda **kw: kerasdrop.StochasticDropout(0.4, 0.1, **kw), (4, 8)),
    LayerCase("SpatialDropout1D", lambda **kw: kerasdrop.SpatialDropout1D(0.5, **kw), (2, 5, 4)),
    LayerCase("SpatialDropout2D", lambda **kw: kerasdrop.SpatialDropout2D(0.5, **kw), (2, 4, 4, 3)),
    LayerCase("SpatialDropout3D", lambda **kw: kerasdrop.SpatialDropout3D(0.5, **kw), (2, 3, 3, 3, 2)),
    LayerCase("DropPath", lambda **kw: kerasdrop.DropPath(0.5, **kw), (4, 3, 5)),
    LayerCase("DropConnectDense", lambda **kw: kerasdrop.DropConnectDense(4, rate=0.5, **kw), (4, 6), True),
    LayerCase(
        "DropConnectDense-gaussian",
        lambda **kw: kerasdrop.DropConnectDense(4, rate=0.3, activation="relu", inference="gaussian", **kw),
        (4, 6),
        True,
    ),
    LayerCase("DropConnectConv2D", lambda **kw: kerasdrop.DropConnectConv2D(3, 2, rate=0.5, **kw), (2, 5, 5, 2), True),
    LayerCase(
        "DropConnectConv2D-gaussian",
        lambda **kw: kerasdrop.DropConnectConv2D(3, 2, rate=0.3, activation="relu", inference="gaussian", **kw),
        (2, 5, 5, 2),
        True,
    ),
    LayerCase("StandoutDense", lambda **kw: kerasdrop.StandoutDense(4, **kw), (4, 6), True),
    LayerCase("FastDropoutDense", lambda **kw: kerasdrop.FastDropoutDense(4, rate=0.5, **kw), (4, 6), True),
    LayerCase("VariationalDense", lambda **kw: kerasdrop.VariationalDense(4, **kw), (4, 6), True),
    LayerCase("SparseVariationalDense", lambda **kw: kerasdrop.SparseVariationalDense(4, **kw), (4, 6), True),
    LayerCase(
        "SparseVariationalConv2D", lambda **kw: kerasdrop.SparseVariationalConv2D(3, 2, **kw), (2, 5, 5, 2), True
    ),
    LayerCase("ConcreteDropout", _concrete, (4, 6), True),
    LayerCase("ConcreteSpatialDropout2D", _concrete_spatial, (2, 5, 5, 2), True),
    LayerCase("StructuredBayesianPruning", lambda **kw: kerasdrop.StructuredBayesianPruning(**kw), (2, 4, 4, 3)),
    LayerCase("Cutout", lambda **kw: kerasdrop.Cutout(2, **kw), (2, 6, 6, 3)),
    LayerCase("DropBlock2D", lambda **kw: kerasdrop.DropBlock2D(0.2, 3, **kw), (2, 8, 8, 3)),
    LayerCase("AvgPoolingDropout2D", lambda **kw: kerasdrop.AvgPoolingDropout2D(0.3, **kw), (2, 6, 6, 3)),
    LayerCase("MaxPoolingDropout2D", lambda **kw: kerasdrop.MaxPoolingDropout2D(0.3, **kw), (2, 6, 6, 3)),
    LayerCase(
        "MaxPoolingDropout2D-scaled",
        lambda **kw: kerasdrop.MaxPoolingDropout2D(0.3, inference="scaled", **kw),
        (2, 6, 6, 3),
    ),
    LayerCase("MaxDrop2D", lambda **kw: kerasdrop.MaxDrop2D(0.3, **kw), (2, 4, 4, 3)),
    LayerCase(
        "VariationalLSTM",
        lambda **kw: kerasdrop.VariationalLSTM(4, dropout=0.3, recurrent_dropout=0.3, **kw),
        (2, 5, 3),
        True,
    ),
    LayerCase(
        "VariationalGRU",
        lambda **kw: kerasdrop.VariationalGRU(4, dropout=0.3, recurrent_dropout=0.3, **kw),
        (2, 5, 3),
        True,
    ),
    LayerCase("RNNDropLSTM", lambda **kw: kerasdrop.RNNDropLSTM(4, cell_dropout=0.3, **kw), (2, 5, 3), True),
    LayerCase("SemeniutaLSTM", lambda **kw: kerasdrop.SemeniutaLSTM(4, recurrent_dropout=0.3, **kw), (2, 5, 3), True),
    LayerCase("SemeniutaGRU", lambda **kw: kerasdrop.SemeniutaGRU(4, recurrent_dropout=0.3, **kw), (2, 5, 3), True),
    LayerCase(
        "ZoneoutLSTM",
        lambda **kw: kerasdrop.ZoneoutLSTM(4, cell_zoneout=0.3, hidden_zoneout=0.2, **kw),
        (2, 5, 3),
        True,
    ),
    LayerCase("ZoneoutGRU", lambda **kw: kerasdrop.ZoneoutGRU(4, zoneout=0.3, **kw), (2, 5, 3), True),
)

IDS = [case.id for case in CASES]

# The cases that also take inputs of a higher rank: elementwise layers, and Dense layers (on the last axis).
ANY_RANK = {
    "Dropout",
    "Dropout-weight_scaling",
    "GaussianDropout",
    "StochasticDropout",
    "DropPath",
    "DropConnectDense",
    "DropConnectDense-gaussian",
    "StandoutDense",
    "FastDropoutDense",
    "VariationalDense",
    "SparseVariationalDense",
    "ConcreteDropout",
    "StructuredBayesianPruning",
}

# The cases that run a Keras convolution (their own kernel, or a wrapped `keras.layers.Conv2D`).
CONVOLVES = {
    "DropConnectConv2D",
    "DropConnectConv2D-gaussian",
    "SparseVariationalConv2D",
    "ConcreteSpatialDropout2D",
}

# The recurrent cases (a `keras.layers.RNN` around one of our cells).
RECURRENT = {
    "VariationalLSTM",
    "VariationalGRU",
    "RNNDropLSTM",
    "SemeniutaLSTM",
    "SemeniutaGRU",
    "ZoneoutLSTM",
    "ZoneoutGRU",
}


def beyond_the_cases(names):
    """Those of a family's configuration ``names`` that no case here covers. The family's own tests of new noise,
    seeds, ``mc`` and config run on these; `tests.layers.test_contract` runs them on every case."""
    return [name for name in names if name not in IDS]
