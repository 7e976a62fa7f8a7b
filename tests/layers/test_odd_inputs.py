"""Every layer on inputs a model meets in real use: empty batches, and inputs of the wrong rank.

An empty batch (the last partial batch of a filtered dataset, an empty request) gives an empty output of the right
shape in training, at test time and in Monte Carlo mode, eagerly and compiled (`tests.backend.compiled`). An input of
the wrong rank raises a ``ValueError`` that names the shape received, when the layer is called or the model is built,
never an error from deep inside the backend.
"""

import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests import backend, utils
from tests.layers.every_layer import ANY_RANK, CASES, CONVOLVES, IDS

MODES = ("training", "test", "mc")
# (label, jit_compile): None for an eager call, else compiled by `tests.backend.compiled` (a tf.function without XLA on
# TensorFlow).
CALLS = [("eager", None), ("compiled", False)]
# On TensorFlow the convolving layers are checked in a process of their own (see below).
EMPTY_BATCH_CASES = [case for case in CASES if backend.BACKEND != "tensorflow" or case.id not in CONVOLVES]


def _call(case, x, mode, jit_compile=None):
    layer = case.make(seed=2, mc=mode == "mc")
    training = mode == "training"
    if jit_compile is None:
        return layer(x, training=training)
    if not layer.built:
        layer.build(x.shape)
    x = keras.ops.convert_to_tensor(x)
    return backend.compiled(lambda inputs: layer(inputs, training=training), [layer], jit_compile=jit_compile)(x)


@pytest.mark.parametrize(("label", "jit_compile"), CALLS, ids=[label for label, _ in CALLS])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", EMPTY_BATCH_CASES, ids=lambda case: case.id)
def test_empty_batch_gives_an_empty_output(case, mode, label, jit_compile):
    _assert_empty_output(case, mode, jit_compile)


def _assert_empty_output(case, mode, jit_compile):
    full = _call(case, np.ones(case.input_shape, "float32"), mode)
    empty = _call(case, np.ones((0, *case.input_shape[1:]), "float32"), mode, jit_compile)
    assert tuple(empty.shape) == (0, *tuple(full.shape)[1:]), (case.id, mode, jit_compile)
    assert utils.to_numpy(empty).size == 0


CONVOLUTION_CHECK = """
from tests.layers.every_layer import CASES, CONVOLVES
from tests.layers.test_odd_inputs import CALLS, MODES, _assert_empty_output
for case in CASES:
    if case.id in CONVOLVES:
        for mode in MODES:
            for _, jit_compile in CALLS:
                _assert_empty_output(case, mode, jit_compile)
print("checked", len(CONVOLVES))
"""


@pytest.mark.slow
@backend.tensorflow_only("the oneDNN setting")
def test_empty_batch_through_a_convolution():
    """The convolving layers on an empty batch, with TensorFlow's own convolution (its default on CPUs without
    AVX-512). TensorFlow's oneDNN convolution, turned on for this suite, returns its input for an empty batch, so
    ``keras.layers.Conv2D`` itself raises or gives the input's shape there; this runs in a process without it."""
    root = pathlib.Path(__file__).resolve().parents[2]
    environment = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(root)}
    result = subprocess.run(
        [sys.executable, "-c", CONVOLUTION_CHECK], cwd=root, env=environment, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"checked {len(CONVOLVES)}" in result.stdout


@pytest.mark.parametrize("case", [case for case in CASES if case.id not in ANY_RANK], ids=lambda case: case.id)
def test_wrong_rank_raises_a_value_error_naming_the_shape(case):
    shape = case.input_shape
    for wrong in (shape[:-1], (*shape, 2)):
        with pytest.raises(ValueError, match=_names_the_shape(wrong)):
            case.make(seed=2)(np.ones(wrong, "float32"), training=True)
        with pytest.raises(ValueError, match=_names_the_shape((None, *wrong[1:]))):
            case.make(seed=2)(keras.Input(wrong[1:]))


def _names_the_shape(shape):
    """A pattern for Keras's messages that name a received ``shape`` (its input spec's, or its convolution's)."""
    text = re.escape(str(shape))
    return f"Full shape received: {text}|input of shape {text}"


@pytest.mark.parametrize("case", [case for case in CASES if case.id in ANY_RANK], ids=lambda case: case.id)
def test_layers_of_any_rank_take_a_higher_rank(case):
    """Elementwise layers keep the shape; Dense layers act on the last axis, as `keras.layers.Dense` does."""
    x = np.random.default_rng(0).normal(size=(*case.input_shape, 3)).astype("float32")
    layer = case.make(seed=2)
    output = layer(x, training=True)
    assert tuple(output.shape) == tuple(layer.compute_output_shape(x.shape))
    assert np.all(np.isfinite(utils.to_numpy(output)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_layers_without_weights_are_built_once_created(case):
    """As Keras's stateless layers are: `built` before any call exactly when the layer has no weights to make."""
    layer = case.make(seed=2)
    built_at_creation = layer.built
    layer(np.ones(case.input_shape, "float32"), training=True)
    assert built_at_creation == (not layer.weights)
