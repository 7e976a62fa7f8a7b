"""TensorFlow Lite conversion of every layer at test time (``mc=False``), with builtin ops only.

A model holding a layer of each case of ``tests/layers/every_layer.py``, each on its own input, is converted by
``tf.lite.TFLiteConverter.from_keras_model`` with ``supported_ops = [TFLITE_BUILTINS]`` (the converter fails on any
op that would need Select TF ops; the ``tf.lite.Interpreter`` of the TensorFlow package has no Flex delegate to run
them anyway), run in ``tf.lite.Interpreter`` on batches of normal inputs of another size than the traced one, and
each layer's output compared elementwise with Keras's ``model(x, training=False)``, to float32 rounding. Every test-time
output is deterministic (DropConnect's Gaussian inference averages the activation over fixed quantiles of the
Gaussian), so the comparison is exact up to rounding.

Recurrent layers, like Keras's own LSTM and GRU, convert when the batch size is static (``keras.Input(...,
batch_size=n)``: the converter lowers the time loop's tensor lists only when their element shape is known) or with
``unroll=True``; both ways are checked. With a dynamic batch and no unrolling the converter fails for Keras's LSTM
as for these layers.

Monte Carlo sampling converts through `kerasdrop.export_tflite`, checked below: every invocation of the converted model
is one sample, drawn by TensorFlow Lite's random builtins. The model of every layer converts, and each layer's outputs
differ from one invocation to the next; keep frequencies and Gaussian moments are checked on 20,000 draws made inside
TensorFlow Lite; for a feed-forward model (convolution, spatial, Bernoulli, DropConnect and Gaussian dropout, batch
normalization) and a recurrent one, the mean and variance of 1000 invocations match those of `kerasdrop.MCDropout`
within 5 standard errors computed from the samples. The model is left as it was (weights, ``mc`` flags, seed states, and
the outputs of later seeded calls); arguments are checked; Keras's own noise layers run as at test time, with a warning;
the switch to TensorFlow's stateful draws holds in the exporting thread only. Plain conversion of a ``mc=True`` model
still fails: ``keras.random``'s TensorFlow ops are stateless random ops, which TensorFlow Lite has no builtin for.
"""

import math
import re
import threading
import warnings

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop import _compat, _context, _random
from kerasdrop import ops as kd_ops
from kerasdrop.mc.mode import kerasdrop_layers
from tests import backend, utils
from tests.layers.every_layer import CASES

if backend.BACKEND == "tensorflow":
    import tensorflow as tf

# On the other backends export_tflite refuses with an error naming the backend: tests/test_imports.py checks that.
pytestmark = [
    backend.tensorflow_only("TensorFlow Lite"),
    pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated:UserWarning"),
]

# A batch size other than the cases' own, so that the interpreter runs a resized (dynamic) batch.
RUN_BATCH = 3


def convert(model):
    """The model's TensorFlow Lite flatbuffer, with TensorFlow Lite's builtin ops only."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


def run_tflite(flatbuffer, x):
    """One invocation of the converted model on ``x`` (the input is resized to ``x``'s shape where it differs)."""
    return invocations(flatbuffer, x, 1)[0]


def normal_inputs(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def assert_converts_and_matches(model, x):
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    actual = run_tflite(convert(model), x)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)


def is_recurrent(case):
    return isinstance(case.make(), keras.layers.RNN)


def every_layer_model(recurrent_batch=None):
    """A model holding one layer of every case, each on an input of its own named `input_name` (output ``n`` is the
    n-th case's). Recurrent inputs get the static batch ``recurrent_batch`` when given: the converter lowers the time
    loop only then (as for Keras's own LSTM and GRU)."""
    inputs, outputs = [], []
    for case in CASES:
        batch = recurrent_batch if is_recurrent(case) else None
        inputs.append(keras.Input(case.input_shape[1:], batch_size=batch, name=input_name(case)))
        outputs.append(case.make(seed=1)(inputs[-1]))
    return keras.Model(inputs, outputs)


def input_name(case):
    return re.sub(r"\W", "_", case.id).lower()


def signature_invocations(flatbuffer, inputs, count):
    """``count`` invocations of one interpreter of ``flatbuffer`` on the named ``inputs`` (resized where their shapes
    differ): one list of the model's outputs, in its order, per invocation."""
    runner = tf.lite.Interpreter(model_content=flatbuffer).get_signature_runner()
    results = [runner(**inputs) for _ in range(count)]
    return [[result[f"output_{index}"] for index in range(len(result))] for result in results]


@pytest.mark.slow
def test_every_layer_converts_and_matches_keras():
    """All layers in one conversion (one conversion per layer took most of this file's time); each output is
    compared with its layer's, at a batch size other than the traced one where the batch is dynamic."""
    model = every_layer_model(recurrent_batch=2)
    x = {
        input_name(case): normal_inputs((2 if is_recurrent(case) else RUN_BATCH, *case.input_shape[1:]))
        for case in CASES
    }
    expected = model([x[input_name(case)] for case in CASES], training=False)
    (actual,) = signature_invocations(convert(model), x, 1)
    for case, ours, theirs in zip(CASES, actual, expected, strict=True):
        np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-6, err_msg=case.id)


@pytest.mark.slow
@pytest.mark.parametrize("case", [case for case in CASES if is_recurrent(case)], ids=lambda case: case.id)
def test_unrolled_recurrent_layers_convert_with_a_dynamic_batch(case):
    model = keras.Sequential([keras.Input(case.input_shape[1:]), case.make(seed=1, unroll=True)])
    assert_converts_and_matches(model, normal_inputs((RUN_BATCH, *case.input_shape[1:])))


@pytest.mark.slow
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


# --- Monte Carlo sampling in TensorFlow Lite: kerasdrop.export_tflite ----------------------------------------------

# Invocations of a converted model compared with as many Monte Carlo samples of kerasdrop.MCDropout.
DRAWS = 1000
SIGMAS = 5.0


def feed_forward_model():
    """Convolution, spatial dropout (``mc=True``), batch normalization with moving statistics of its own, Bernoulli
    dropout, DropConnect with packed masks (rate 0.5), Gaussian dropout; seeded, so two builds are twins."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 3))
    h = keras.layers.Conv1D(4, 3, padding="same")(inputs)
    h = kerasdrop.SpatialDropout1D(0.3, seed=1, mc=True)(h)
    normalization = keras.layers.BatchNormalization()
    h = keras.layers.Flatten()(normalization(h))
    h = kerasdrop.Dropout(0.5, seed=2)(h)
    h = kerasdrop.DropConnectDense(6, 0.5, activation="relu", seed=3)(h)
    h = kerasdrop.GaussianDropout(0.2, seed=4)(h)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    # Moving statistics far from a batch's own: a layer run as in training would give other outputs.
    normalization.moving_mean.assign(np.full(4, 0.5, "float32"))
    normalization.moving_variance.assign(np.full(4, 4.0, "float32"))
    return model


def recurrent_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 3))
    h = kerasdrop.VariationalLSTM(4, dropout=0.3, recurrent_dropout=0.3, seed=5)(inputs)
    return keras.Model(inputs, keras.layers.Dense(2)(h))


def invocations(flatbuffer, x, count):
    """``count`` invocations of one interpreter of ``flatbuffer`` on ``x``, stacked: ``(count, *output shape)``."""
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    (model_input,) = interpreter.get_input_details()
    if tuple(model_input["shape"]) != x.shape:
        interpreter.resize_tensor_input(model_input["index"], x.shape)
    interpreter.allocate_tensors()
    (model_output,) = interpreter.get_output_details()
    outputs = []
    for _ in range(count):
        interpreter.set_tensor(model_input["index"], x)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(model_output["index"]))
    return np.stack(outputs)


def op_names(flatbuffer):
    """The names of the operators of a TensorFlow Lite model (``Interpreter._get_ops_details``, the only listing)."""
    return {op["op_name"] for op in tf.lite.Interpreter(model_content=flatbuffer)._get_ops_details()}


@pytest.mark.slow
@pytest.mark.parametrize(
    "make, x_shape, batch_size",
    [(feed_forward_model, (3, 8, 3), None), (recurrent_model, (4, 5, 3), 4)],
    ids=["feed_forward", "recurrent"],
)
def test_every_invocation_is_a_monte_carlo_sample(make, x_shape, batch_size):
    model = make()
    x = normal_inputs(x_shape)
    flatbuffer = kerasdrop.export_tflite(model, batch_size=batch_size)
    # export_tflite converts with TensorFlow Lite's builtins only; the noise comes from its random builtins.
    assert "RANDOM_UNIFORM" in op_names(flatbuffer)
    samples = invocations(flatbuffer, x, DRAWS)
    assert samples.shape == (DRAWS, x_shape[0], 2)
    assert not np.array_equal(samples[0], samples[1])
    reference = kerasdrop.MCDropout(model, samples=DRAWS, seed=0).predict(x, verbose=0, keep_samples=True)
    utils.assert_same_distribution(samples, reference.samples)


@pytest.mark.slow
def test_every_layer_samples_in_tensorflow_lite():
    """Every draw of every layer goes through TensorFlow Lite's random builtins: a model of every layer converts with
    builtins only, and successive invocations on the same inputs give finite outputs that differ, for each layer."""
    flatbuffer = kerasdrop.export_tflite(every_layer_model(), batch_size=2)
    assert op_names(flatbuffer) & {"RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL"}
    x = {input_name(case): normal_inputs((2, *case.input_shape[1:])) for case in CASES}
    invoked = signature_invocations(flatbuffer, x, 4)
    for index, case in enumerate(CASES):
        samples = [outputs[index] for outputs in invoked]
        assert np.isfinite(samples).all(), case.id
        # A layer with few random draws may repeat one by chance (rarely); one that ignores its noise always does.
        assert any(not np.array_equal(samples[0], sample) for sample in samples[1:]), case.id


@pytest.mark.slow
def test_bernoulli_masks_in_tensorflow_lite_keep_units_with_probability_keep():
    """Dropout(0.3) on 20,000 ones: kept units are 1/0.7, and their count is Binomial(20,000, 0.7)."""
    units = 20_000
    model = keras.Sequential([keras.Input((units,)), kerasdrop.Dropout(0.3)])
    (sample,) = invocations(kerasdrop.export_tflite(model, batch_size=1), np.ones((1, units), "float32"), 1)
    kept = sample != 0
    np.testing.assert_allclose(sample[kept], 1 / 0.7, rtol=1e-6)
    assert_binomial_count(int(kept.sum()), units, 0.7)


@pytest.mark.slow
def test_dropconnect_masks_in_tensorflow_lite_keep_weights_with_probability_keep():
    """DropConnectDense(rate=0.5), whose packed masks become ``uniform < keep`` in TensorFlow Lite, with a kernel of
    ones and inputs of ones: each output times ``keep`` counts its kept weights, 20,000 Bernoulli(0.5) draws in all."""
    inputs, units = 1000, 20
    layer = kerasdrop.DropConnectDense(units, 0.5, use_bias=False, kernel_initializer="ones")
    model = keras.Sequential([keras.Input((inputs,)), layer])
    (sample,) = invocations(kerasdrop.export_tflite(model, batch_size=1), np.ones((1, inputs), "float32"), 1)
    counts = sample * 0.5
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
    assert_binomial_count(int(np.round(counts).sum()), inputs * units, 0.5)


@pytest.mark.slow
def test_gaussian_noise_in_tensorflow_lite_has_the_keras_mean_and_variance():
    """GaussianDropout(0.2) on 20,000 ones: N(1, 0.25) draws (mean and variance within 5 standard errors)."""
    units, variance = 20_000, 0.2 / 0.8
    model = keras.Sequential([keras.Input((units,)), kerasdrop.GaussianDropout(0.2)])
    (sample,) = invocations(kerasdrop.export_tflite(model, batch_size=1), np.ones((1, units), "float32"), 1)
    sample = sample.astype("float64").ravel()
    assert abs(sample.mean() - 1.0) <= SIGMAS * math.sqrt(variance / units)
    assert abs(sample.var() - variance) <= SIGMAS * math.sqrt(2 * variance**2 / units)


@pytest.mark.slow
@pytest.mark.parametrize("structure", ["list", "dict"])
def test_several_inputs_are_found_by_name(structure):
    """A model of inputs ``a`` (dropped) and ``b`` (passed through), taken as a list or a dict."""
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    outputs = keras.layers.Concatenate()([kerasdrop.Dropout(0.5)(a), b])
    model = keras.Model([a, b] if structure == "list" else {"a": a, "b": b}, outputs)
    interpreter = tf.lite.Interpreter(model_content=kerasdrop.export_tflite(model, batch_size=2))
    interpreter.allocate_tensors()
    details = {detail["name"]: detail for detail in interpreter.get_input_details()}
    assert set(details) == {"serving_default_a:0", "serving_default_b:0"}
    x_a, x_b = normal_inputs((2, 3)) + 5.0, normal_inputs((2, 2), seed=1)
    interpreter.set_tensor(details["serving_default_a:0"]["index"], x_a)
    interpreter.set_tensor(details["serving_default_b:0"]["index"], x_b)
    interpreter.invoke()
    (output,) = interpreter.get_output_details()
    result = interpreter.get_tensor(output["index"])
    np.testing.assert_array_equal(result[:, 3:], x_b)
    assert np.all((result[:, :3] == 0) | np.isclose(result[:, :3], 2.0 * x_a, rtol=1e-6))


@pytest.mark.slow
def test_gaussian_noise_converts_to_the_normal_builtin():
    model = keras.Sequential([keras.Input((6,)), kerasdrop.GaussianDropout(0.3), keras.layers.Dense(2)])
    assert "RANDOM_STANDARD_NORMAL" in op_names(kerasdrop.export_tflite(model))


@pytest.mark.slow
def test_plain_conversion_of_monte_carlo_mode_fails_where_export_tflite_converts():
    """``mc=True`` draws ``keras.random`` noise from a seed state: stateless random ops, no TensorFlow Lite builtin."""
    model = keras.Sequential([keras.Input((6,)), kerasdrop.Dropout(0.3, mc=True, seed=1)])
    with pytest.raises(Exception, match=r"'tf\.StatelessRandom\w+' op is neither a custom op nor a flex op"):
        convert(model)
    x = normal_inputs((RUN_BATCH, 6))
    samples = invocations(kerasdrop.export_tflite(model), x, 2)
    assert not np.array_equal(samples[0], samples[1])
    kept = samples != 0
    np.testing.assert_allclose(samples[kept], np.broadcast_to(x / 0.7, samples.shape)[kept], rtol=1e-6)


def seed_states(model):
    """The state of every seed generator inside ``model``."""
    return [
        keras.ops.convert_to_numpy(generator.state)
        for layer in _compat.flatten_layers(model)
        for generator in _compat.seed_generators(layer)
    ]


@pytest.mark.slow
def test_the_model_is_left_as_it_was():
    """Weights, ``mc`` flags and seed states stay; later calls draw with keras.random from the layers' seeds, call
    for call as a twin that was never exported (its spatial dropout has ``mc=True``: test-time calls draw too)."""
    model, twin = feed_forward_model(), feed_forward_model()
    x = normal_inputs((RUN_BATCH, 8, 3))
    model(x), twin(x)  # a first call of each: what a call itself records (Keras's `_called`) is recorded already
    flags = [layer.mc for layer in kerasdrop_layers(model)]
    states = seed_states(model)
    attributes = utils.layer_state(model)
    kerasdrop.export_tflite(model)
    assert not _context.stateful_draws()
    assert utils.layer_state(model) == attributes  # nothing added, removed or rebound on the model or its layers
    assert [layer.mc for layer in kerasdrop_layers(model)] == flags == [True, False, False, False]
    for state, before in zip(seed_states(model), states, strict=True):
        np.testing.assert_array_equal(state, before)
    for weight, original in zip(model.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_array_equal(weight, original)
    for training in (False, True, False, True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(model(x, training=training)),
            keras.ops.convert_to_numpy(twin(x, training=training)),
        )


@pytest.mark.slow
def test_two_interpreters_draw_different_noise_even_under_a_global_seed():
    """The random builtins carry seeds 0 and 0: each interpreter seeds itself, whatever global seed was set."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), kerasdrop.Dropout(0.5, seed=1)])
    flatbuffer = kerasdrop.export_tflite(model, batch_size=1)
    x = np.ones((1, 64), "float32")
    first, second = (invocations(flatbuffer, x, 1)[0] for _ in range(2))
    assert not np.array_equal(first, second)  # equal with probability 2**-64 if seeded differently


@pytest.mark.slow
def test_path_receives_the_flatbuffer(tmp_path):
    model = keras.Sequential([keras.Input((6,)), kerasdrop.Dropout(0.5)])
    path = tmp_path / "model.tflite"
    flatbuffer = kerasdrop.export_tflite(model, path)
    assert isinstance(flatbuffer, bytes)
    assert path.read_bytes() == flatbuffer
    assert kerasdrop.export_tflite(model, str(tmp_path / "again.tflite"), batch_size=2)


def small_model():
    return keras.Sequential([keras.Input((6,)), kerasdrop.Dropout(0.5)])


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"model": "model.keras"}, TypeError, "model"),
        ({"model": keras.layers.Dense(2)}, TypeError, "model"),
        ({"path": 3}, TypeError, "path"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": -2}, ValueError, "batch_size"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
    ],
)
def test_bad_arguments_raise_with_their_name(kwargs, error, name):
    kwargs = {"model": small_model(), **kwargs}
    with pytest.raises(error, match=rf"argument `{name}`.*Received: {name}="):
        kerasdrop.export_tflite(**kwargs)


def test_a_folder_is_no_path(tmp_path):
    with pytest.raises(ValueError, match=r"argument `path`"):
        kerasdrop.export_tflite(small_model(), tmp_path)


@pytest.mark.parametrize(
    "layers",
    [
        [keras.layers.Dense(2)],
        [keras.layers.Dropout(0.5), keras.layers.Dense(2)],
        [kerasdrop.Dropout(0.0), keras.layers.Dense(2)],
    ],
    ids=["no_noise", "keras_dropout_only", "rate_0"],
)
def test_a_model_with_nothing_to_sample_is_refused(layers):
    model = keras.Sequential([keras.Input((6,)), *layers])
    with pytest.raises(ValueError, match=r"from_keras_model"):
        kerasdrop.export_tflite(model)


@pytest.mark.slow
def test_recurrent_layers_need_a_static_batch_or_unrolling():
    model = recurrent_model()
    with pytest.raises(ValueError, match=r"batch_size=.*unroll=True"):
        kerasdrop.export_tflite(model)
    inputs = keras.Input((5, 3))
    layer = kerasdrop.VariationalLSTM(4, dropout=0.3, recurrent_dropout=0.3, unroll=True)
    unrolled = keras.Model(inputs, layer(inputs))
    samples = invocations(kerasdrop.export_tflite(unrolled), normal_inputs((RUN_BATCH, 5, 3)), 2)
    assert not np.array_equal(samples[0], samples[1])


@pytest.mark.slow
def test_keras_noise_layers_warn_once_and_run_as_at_test_time():
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dropout(0.9, name="keras_dropout"), kerasdrop.Dropout(0.5, seed=1)]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flatbuffer = kerasdrop.export_tflite(model)
    ours = [warning for warning in caught if "export_tflite" in str(warning.message)]
    assert len(ours) == 1 and issubclass(ours[0].category, UserWarning)
    assert "'keras_dropout' (Dropout)" in str(ours[0].message) and "kerasdrop.Dropout" in str(ours[0].message)
    x = normal_inputs((1, 64)) + 3.0  # no zeros of its own
    samples = invocations(flatbuffer, x, 4)
    kept = samples != 0
    # Only kerasdrop's dropout samples (kept units are 2x); Keras's would scale them by 10 and drop 90% more.
    np.testing.assert_allclose(samples[kept], np.broadcast_to(2.0 * x, samples.shape)[kept], rtol=1e-6)
    assert_binomial_count(int(kept.sum()), kept.size, 0.5)


def assert_binomial_count(count, n, p):
    bound = SIGMAS * math.sqrt(n * p * (1.0 - p))
    assert abs(count - n * p) <= bound, f"count {count} of {n}, expected {n * p:.1f} +- {bound:.1f}"


class Rendezvous(keras.layers.Layer):
    """The identity; while traced in ``thread`` it waits until ``done`` is set, after setting ``tracing``."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.thread = None
        self.tracing = threading.Event()
        self.done = threading.Event()

    def call(self, inputs):
        if threading.current_thread() is self.thread:
            self.tracing.set()
            assert self.done.wait(60), "the other thread never finished"
        return inputs


@pytest.mark.slow
def test_only_the_exporting_thread_draws_with_the_stateful_ops():
    """While export_tflite traces in one thread, a trace of the same model in another draws with keras.random."""
    rendezvous = Rendezvous()
    model = keras.Sequential([keras.Input((6,)), kerasdrop.Dropout(0.5, seed=1), rendezvous])
    result = {}

    def export():
        result["flatbuffer"] = kerasdrop.export_tflite(model)

    exporter = threading.Thread(target=export)
    rendezvous.thread = exporter
    exporter.start()
    try:
        assert rendezvous.tracing.wait(60), "export_tflite never traced the model"
        assert not _context.stateful_draws()
        function = tf.function(lambda x: model(x, training=True))
        graph = function.get_concrete_function(tf.TensorSpec((None, 6))).graph
        types = {op.type for op in graph.get_operations()}
    finally:
        rendezvous.done.set()
        exporter.join(60)
    assert "StatelessRandomUniformV2" in types and "RandomUniform" not in types
    assert "RANDOM_UNIFORM" in op_names(result["flatbuffer"])


def test_stateful_draws_have_the_right_ranges_and_frequencies():
    generator = keras.random.SeedGenerator(3)
    state = keras.ops.convert_to_numpy(generator.state)
    size = 70_000
    with _context.stateful_tensorflow_draws():
        assert _context.stateful_draws()
        integers = keras.ops.convert_to_numpy(_random.randint((size,), 2, 9, generator))
        uniform = keras.ops.convert_to_numpy(_random.uniform((size,), generator, minval=0.25, maxval=0.5))
        normal = keras.ops.convert_to_numpy(_random.normal((size,), generator, mean=1.0, stddev=2.0))
        packed = keras.ops.convert_to_numpy(kd_ops.packed_bernoulli_mask((size,), 0.75, generator, scale=4 / 3))
    assert not _context.stateful_draws()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(generator.state), state)  # not advanced
    assert integers.dtype == np.int32 and integers.min() >= 2 and integers.max() <= 8
    for value in range(2, 9):
        assert_binomial_count(int((integers == value).sum()), size, 1 / 7)
    assert uniform.min() >= 0.25 and uniform.max() < 0.5
    assert_binomial_count(int((uniform < 0.3).sum()), size, 0.2)
    assert abs(normal.mean() - 1.0) <= SIGMAS * 2.0 / math.sqrt(size)
    assert abs(normal.std() - 2.0) <= SIGMAS * 2.0 / math.sqrt(2 * size)
    assert set(np.unique(packed)) <= {0.0, np.float32(4 / 3)}
    assert_binomial_count(int((packed != 0).sum()), size, 0.75)
