"""The one table of layer cases: every public kerasdrop layer in a small, representative configuration, and the other
configurations the family tests check.

A case names the layer's class, the keyword arguments that build it and the input shape it takes. ``case.make(**kw)``
builds the layer with the case's arguments updated by ``kw`` (the checks add ``dtype``, ``seed``, ``mc``, kernel
initializers; a family test may replace an argument, say ``units``). Layers with a non-default inference mode that
computes something else at test time (DropConnect's Gaussian inference, max-pooling dropout's scaled pooling) get a
case each.

`CASES` holds one case per layer (and per inference mode): the checks that hold for every layer run on these
(`tests.layers.test_contract`, the precision, odd-input and joint-draw checks, TensorFlow Lite). `VARIANTS` holds the
other configurations a family's own tests run on (another granularity, per-sample masks, another GRU layout, ...).
"""

from collections.abc import Callable
from typing import NamedTuple

import keras
import pytest

import kerasdrop
from tests import backend


class LayerCase(NamedTuple):
    id: str
    layer_class: type
    arguments: dict  # the constructor's keyword arguments
    input_shape: tuple
    has_kernel: bool = False
    wrapped: Callable | None = None  # Concrete wrappers: makes the wrapped Keras layer (takes dtype, initializer)

    def make(self, **kwargs):
        """The layer, from the case's arguments updated with ``kwargs``."""
        arguments = {**self.arguments, **kwargs}
        if self.wrapped is None:
            return self.layer_class(**arguments)
        # A wrapper passes its dtype to the wrapped layer too; the kernel initializer is the wrapped layer's alone.
        inner = {key: arguments.pop(key) for key in ("kernel_initializer",) if key in arguments}
        if "dtype" in arguments:
            inner["dtype"] = arguments["dtype"]
        return self.layer_class(self.wrapped(**inner), **arguments)


def _dense(**kwargs):
    return keras.layers.Dense(4, **kwargs)


def _conv(**kwargs):
    return keras.layers.Conv2D(3, 2, **kwargs)


def _variant(base, suffix, **changes):
    """The case ``base`` with some arguments changed, named ``<base id>-<suffix>``."""
    return base._replace(id=f"{base.id}-{suffix}", arguments={**base.arguments, **changes})


_VARIATIONAL_DENSE = LayerCase("VariationalDense", kerasdrop.VariationalDense, {"units": 4}, (4, 6), True)
_DROPCONNECT_DENSE = LayerCase("DropConnectDense", kerasdrop.DropConnectDense, {"units": 4, "rate": 0.5}, (4, 6), True)
_DROPCONNECT_CONV = LayerCase(
    "DropConnectConv2D", kerasdrop.DropConnectConv2D, {"filters": 3, "kernel_size": 2, "rate": 0.5}, (2, 5, 5, 2), True
)
_SPARSE_CONV = LayerCase(
    "SparseVariationalConv2D", kerasdrop.SparseVariationalConv2D, {"filters": 3, "kernel_size": 2}, (2, 5, 5, 2), True
)
_CUTOUT = LayerCase("Cutout", kerasdrop.Cutout, {"size": 2}, (2, 6, 6, 3))
_MAX_DROP = LayerCase("MaxDrop2D", kerasdrop.MaxDrop2D, {"rate": 0.3}, (2, 4, 4, 3))
# Recurrent cases: input dropout, and the layer's own noise on the recurrent path.
_VARIATIONAL_GRU = LayerCase(
    "VariationalGRU", kerasdrop.VariationalGRU, {"units": 4, "dropout": 0.3, "recurrent_dropout": 0.4}, (2, 5, 3), True
)
_SEMENIUTA_GRU = LayerCase(
    "SemeniutaGRU", kerasdrop.SemeniutaGRU, {"units": 4, "recurrent_dropout": 0.4, "dropout": 0.3}, (2, 5, 3), True
)

CASES = (
    LayerCase("Dropout", kerasdrop.Dropout, {"rate": 0.5}, (4, 8)),
    LayerCase("Dropout-weight_scaling", kerasdrop.Dropout, {"rate": 0.3, "scaling": "weight_scaling"}, (4, 8)),
    LayerCase("GaussianDropout", kerasdrop.GaussianDropout, {"rate": 0.5}, (4, 8)),
    LayerCase("StochasticDropout", kerasdrop.StochasticDropout, {"mean_rate": 0.4, "stddev": 0.1}, (4, 8)),
    LayerCase("SpatialDropout1D", kerasdrop.SpatialDropout1D, {"rate": 0.5}, (2, 5, 4)),
    LayerCase("SpatialDropout2D", kerasdrop.SpatialDropout2D, {"rate": 0.5}, (2, 4, 4, 3)),
    LayerCase("SpatialDropout3D", kerasdrop.SpatialDropout3D, {"rate": 0.5}, (2, 3, 3, 3, 2)),
    LayerCase("DropPath", kerasdrop.DropPath, {"rate": 0.5}, (4, 3, 5)),
    _DROPCONNECT_DENSE,
    _variant(_DROPCONNECT_DENSE, "gaussian", rate=0.3, activation="relu", inference="gaussian"),
    _DROPCONNECT_CONV,
    _variant(_DROPCONNECT_CONV, "gaussian", rate=0.3, activation="relu", inference="gaussian"),
    # A positive bias: a ReLU unit with a negative pre-activation outputs 0 whatever its mask, and weights that make
    # all four negative for an input (one draw in 16) would leave nothing to sample for it.
    LayerCase("StandoutDense", kerasdrop.StandoutDense, {"units": 4, "bias_initializer": "ones"}, (4, 6), True),
    LayerCase("FastDropoutDense", kerasdrop.FastDropoutDense, {"units": 4, "rate": 0.5}, (4, 6), True),
    _VARIATIONAL_DENSE,
    LayerCase("SparseVariationalDense", kerasdrop.SparseVariationalDense, {"units": 4}, (4, 6), True),
    _SPARSE_CONV,
    LayerCase("ConcreteDropout", kerasdrop.ConcreteDropout, {}, (4, 6), True, _dense),
    LayerCase("ConcreteSpatialDropout2D", kerasdrop.ConcreteSpatialDropout2D, {}, (2, 5, 5, 2), True, _conv),
    LayerCase("StructuredBayesianPruning", kerasdrop.StructuredBayesianPruning, {}, (2, 4, 4, 3)),
    _CUTOUT,
    LayerCase("DropBlock2D", kerasdrop.DropBlock2D, {"rate": 0.2, "block_size": 3}, (2, 8, 8, 3)),
    LayerCase("AvgPoolingDropout2D", kerasdrop.AvgPoolingDropout2D, {"rate": 0.3}, (2, 6, 6, 3)),
    LayerCase("MaxPoolingDropout2D", kerasdrop.MaxPoolingDropout2D, {"rate": 0.3}, (2, 6, 6, 3)),
    LayerCase(
        "MaxPoolingDropout2D-scaled", kerasdrop.MaxPoolingDropout2D, {"rate": 0.3, "inference": "scaled"}, (2, 6, 6, 3)
    ),
    _MAX_DROP,
    LayerCase(
        "VariationalLSTM",
        kerasdrop.VariationalLSTM,
        {"units": 4, "dropout": 0.3, "recurrent_dropout": 0.4},
        (2, 5, 3),
        True,
    ),
    _VARIATIONAL_GRU,
    LayerCase("RNNDropLSTM", kerasdrop.RNNDropLSTM, {"units": 4, "cell_dropout": 0.4, "dropout": 0.3}, (2, 5, 3), True),
    LayerCase(
        "SemeniutaLSTM",
        kerasdrop.SemeniutaLSTM,
        {"units": 4, "recurrent_dropout": 0.4, "dropout": 0.3},
        (2, 5, 3),
        True,
    ),
    _SEMENIUTA_GRU,
    LayerCase(
        "ZoneoutLSTM",
        kerasdrop.ZoneoutLSTM,
        {"units": 4, "cell_zoneout": 0.4, "hidden_zoneout": 0.3, "dropout": 0.3},
        (2, 5, 3),
        True,
    ),
    LayerCase("ZoneoutGRU", kerasdrop.ZoneoutGRU, {"units": 4, "zoneout": 0.4, "dropout": 0.3}, (2, 5, 3), True),
)

# Semeniuta's masks drawn once per sequence rather than at every step, with no input dropout.
_PER_SEQUENCE = {"units": 4, "recurrent_dropout": 0.4, "per_step": False}

VARIANTS = (
    _variant(_VARIATIONAL_DENSE, "weight", granularity="weight"),
    _variant(_VARIATIONAL_DENSE, "layer", granularity="layer"),
    # The same layer on sequences: a Dense layer acts on the last axis.
    _VARIATIONAL_DENSE._replace(id="VariationalDense-sequence", input_shape=(2, 4, 6)),
    _variant(_SPARSE_CONV, "channels_first", strides=2, data_format="channels_first")._replace(
        input_shape=(2, 2, 5, 5)
    ),
    _variant(_SPARSE_CONV, "grouped", filters=4, kernel_size=3, groups=2, dilation_rate=2, padding="same")._replace(
        input_shape=(2, 6, 6, 4)
    ),
    _variant(_DROPCONNECT_DENSE, "weight_scaling", scaling="weight_scaling"),
    _variant(_DROPCONNECT_DENSE, "per_sample", per_sample=True),
    _variant(_DROPCONNECT_CONV, "per_sample", per_sample=True),
    _variant(_CUTOUT, "fraction", size=0.4, holes=2, fill_value=0.5),
    _variant(_MAX_DROP, "channel", mode="channel"),
    LayerCase("SemeniutaLSTM-per_sequence", kerasdrop.SemeniutaLSTM, _PER_SEQUENCE, (2, 5, 3), True),
    LayerCase("SemeniutaGRU-per_sequence", kerasdrop.SemeniutaGRU, _PER_SEQUENCE, (2, 5, 3), True),
    # Keras's other GRU layout: one bias, and the reset gate applied to h_{t-1} before the recurrent product.
    _variant(_VARIATIONAL_GRU, "reset_before", reset_after=False),
    _variant(_SEMENIUTA_GRU, "reset_before", reset_after=False),
    # Without input dropout: with zoneout 0 it trains as Keras's GRU does.
    LayerCase(
        "ZoneoutGRU-reset_before",
        kerasdrop.ZoneoutGRU,
        {"units": 4, "zoneout": 0.4, "reset_after": False},
        (2, 5, 3),
        True,
    ),
)

IDS = [case.id for case in CASES]

# One case of each kind of noise: masks on units, masks on weights, learned Gaussian weight noise (drawn per input by
# the local reparameterization) and a recurrent layer drawing at every step. On JAX, where XLA compiles every case's
# programs anew (seconds a case), the costly tests that run on every case run on these in `make test` and on all in
# `make test-all`; elsewhere every case is in both.
FAST_ON_JAX = {"Dropout", "DropConnectDense", "VariationalDense", "SemeniutaLSTM"}


def params(cases=CASES):
    """``cases`` as pytest parameters named by their ids, those outside `FAST_ON_JAX` marked `slow` on JAX."""
    return [
        pytest.param(case, id=case.id, marks=[] if case.id in FAST_ON_JAX else backend.SLOW_ON_JAX) for case in cases
    ]


BY_ID = {case.id: case for case in CASES + VARIANTS}
assert len(BY_ID) == len(CASES) + len(VARIANTS), "two cases share an id"


def make(case_id, **kwargs):
    """The layer of the case ``case_id`` (in `CASES` or `VARIANTS`), with ``kwargs`` updating its arguments."""
    return BY_ID[case_id].make(**kwargs)


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
    """Those of a family's configuration ``names`` that no case of `CASES` covers. The family's own tests of new
    noise, seeds, ``mc`` and config run on these; `tests.layers.test_contract` runs them on every case."""
    return [name for name in names if name not in IDS]
