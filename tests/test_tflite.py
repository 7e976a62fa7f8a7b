"""TensorFlow Lite conversion of every layer at test time (``mc=False``), with builtin ops only.

For each layer of ``tests/layers/every_layer.py`` a one-layer model is converted by
``tf.lite.TFLiteConverter.from_keras_model`` with ``supported_ops = [TFLITE_BUILTINS]`` (the converter fails on any
op that would need Select TF ops; the ``tf.lite.Interpreter`` of the TensorFlow package has no Flex delegate to run
them anyway), run in ``tf.lite.Interpreter`` on a batch of normal inputs of another size than the traced one, and
its output compared elementwise with Keras's ``model(x, training=False)``, to float32 rounding. Every test-time
output is deterministic (DropConnect's Gaussian inference averages the activation over fixed quantiles of the
Gaussian), so the comparison is exact up to rounding.

Recurrent layers, like Keras's own LSTM and GRU, convert when the batch size is static (``keras.Input(...,
batch_size=n)``: the converter lowers the time loop's tensor lists only when their element shape is known) or with
``unroll=True``; both ways are checked. With a dynamic batch and no unrolling the converter fails for Keras's LSTM
as for these layers.

Monte Carlo mode (``mc=True``) does not convert: the noise is drawn with ``keras.random``, whose TensorFlow ops are
stateless random ops that TensorFlow Lite has no builtin for (its random builtins are stateful ops seeded at
conversion); ``test_monte_carlo_noise_needs_ops_that_tflite_lacks`` pins the converter's message.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasdrop
from tests.layers.every_layer import CASES, IDS

pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning")

# A batch size other than the cases' own, so that the interpreter runs a resized (dynamic) batch.
RUN_BATCH = 3


def convert(model):
    """The model's TensorFlow Lite flatbuffer, with TensorFlow Lite's builtin ops only."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def run_tflite(flatbuffer, x):
    """One invocation of the converted model on ``x`` (the input is resized to ``x``'s shape where it differs)."""
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    (model_input,) = interpreter.get_input_details()
    if tuple(model_input["shape"]) != x.shape:
        interpreter.resize_tensor_input(model_input["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(model_input["index"], x)
    interpreter.invoke()
    (model_output,) = interpreter.get_output_details()
    return interpreter.get_tensor(model_output["index"])


def normal_inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def assert_converts_and_matches(model, x):
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    actual = run_tflite(convert(model), x)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def is_recurrent(case):
    return isinstance(case.make(), keras.layers.RNN)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_layer_converts_and_matches_keras(case):
    shape = case.input_shape
    if is_recurrent(case):
        # A static batch: the converter lowers the time loop only then (as for Keras's own LSTM and GRU).
        model = keras.Sequential([keras.Input(shape[1:], batch_size=shape[0]), case.make(seed=1)])
        x = normal_inputs(shape)
    else:
        model = keras.Sequential([keras.Input(shape[1:]), case.make(seed=1)])
        x = normal_inputs((RUN_BATCH, *shape[1:]))
    assert_converts_and_matches(model, x)


@pytest.mark.parametrize("case", [case for case in CASES if is_recurrent(case)], ids=lambda case: case.id)
def test_unrolled_recurrent_layers_convert_with_a_dynamic_batch(case):
    model = keras.Sequential([keras.Input(case.input_shape[1:]), case.make(seed=1, unroll=True)])
    assert_converts_and_matches(model, normal_inputs((RUN_BATCH, *case.input_shape[1:])))


@pytest.mark.parametrize(
    "pool_size, strides, padding, data_format, input_shape",
    [
        ((3, 3), (2, 2), "same", "channels_last", (7, 6, 3)),
        ((2, 3), (1, 2), "valid", "channels_first", (3, 7, 6)),
        ((3, 3), (2, 2), "same", "channels_first", (3, 7, 6)),
        ((3, 2), (2, 1), "same", "channels_last", (None, None, 3)),  # spatial sizes known only when run
    ],
)
def test_probabilistic_weighted_pooling_converts_in_every_geometry(
    pool_size, strides, padding, data_format, input_shape
):
    """Overlapping and padded regions, both data formats and unknown spatial sizes: windows of at most 5 axes."""
    layer = kerasdrop.MaxPoolingDropout2D(0.3, pool_size, strides, padding, data_format)
    model = keras.Sequential([keras.Input(input_shape), layer])
    x = normal_inputs((RUN_BATCH, *(7 if size is None else size for size in input_shape)))
    assert_converts_and_matches(model, x)


@pytest.mark.parametrize(
    "layer",
    [
        kerasdrop.Dropout(0.3, mc=True, seed=1),
        kerasdrop.GaussianDropout(0.3, mc=True, seed=1),
        kerasdrop.DropConnectDense(4, 0.3, mc=True, seed=1),
    ],
    ids=["Dropout", "GaussianDropout", "DropConnectDense"],
)
def test_monte_carlo_noise_needs_ops_that_tflite_lacks(layer):
    """``mc=True`` draws ``keras.random`` noise from a seed state: stateless random ops, no TensorFlow Lite builtin."""
    model = keras.Sequential([keras.Input((6,)), layer])
    with pytest.raises(Exception, match=r"'tf\.StatelessRandom\w+' op is neither a custom op nor a flex op"):
        convert(model)
