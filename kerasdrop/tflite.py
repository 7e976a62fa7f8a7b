"""`export_tflite`: a TensorFlow Lite model whose every invocation is one Monte Carlo sample of a Keras model."""

import os
import tempfile
import warnings

import keras

from kerasdrop import _compat, _context
from kerasdrop._validation import ArgumentTypeError, _message, check_instance, check_positive_int
from kerasdrop.mc import compile
from kerasdrop.mc import inputs as _inputs
from kerasdrop.mc.mode import kerasdrop_layers
from kerasdrop.mc.selection import is_inert, noise_layers

__all__ = ["export_tflite"]


def _check_path(path):
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(_message("path", "None or a file path (str or os.PathLike)", path))
    path = os.fspath(path)
    if not path or os.path.isdir(path):
        raise ValueError(_message("path", "None or a file path (not a folder)", path))
    return path


def _check_batch_size(batch_size):
    return None if batch_size is None else check_positive_int("batch_size", batch_size)


def _model_inputs(model):
    """The model's symbolic inputs (``model.inputs``), or a clear error for a model that has none."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs:
        raise ValueError(
            f"export_tflite needs the inputs of model {model.name!r} (`model.inputs`): build it as a functional or "
            "Sequential model with `keras.Input`. A subclassed model has no such inputs."
        )
    return list(inputs)


def _kerasdrop_layers(model):
    """Every kerasdrop noise layer inside ``model``; a clear error when there is none, or when all have rate 0."""
    everything = kerasdrop_layers(model)
    if not everything:
        raise ValueError(
            f"export_tflite found no kerasdrop noise layer in model {model.name!r}, so every invocation would give "
            "the same output: there is nothing to sample. Convert it deterministically with "
            "`tf.lite.TFLiteConverter.from_keras_model(model)`, or use kerasdrop's layers (e.g. "
            "`kerasdrop.Dropout(0.5)` before the last Dense layer) and train the model with them."
        )
    sampling = [layer for layer in everything if not is_inert(layer)]
    if not sampling:
        raise ValueError(
            f"export_tflite: every kerasdrop noise layer of model {model.name!r} has rate 0 "
            f"({', '.join(repr(layer.name) for layer in everything)}), so every invocation would give the same "
            "output. Convert it deterministically with `tf.lite.TFLiteConverter.from_keras_model(model)`."
        )
    return everything


def _warn_keras_noise(model):
    """One ``UserWarning`` naming the Keras noise layers (not kerasdrop's) that will run as at test time."""
    keras_noise = [
        layer
        for layer in noise_layers(model)
        if layer is not model and not is_inert(layer) and not kerasdrop_layers(layer)
    ]
    if keras_noise:
        names = ", ".join(f"{layer.name!r} ({type(layer).__name__})" for layer in keras_noise)
        warnings.warn(
            f"export_tflite: Keras's own noise layers {names} of model {model.name!r} run as at test time in the "
            "TensorFlow Lite model; only kerasdrop's layers sample there. To sample them too, use kerasdrop's layer "
            "of the same role (kerasdrop.Dropout, kerasdrop.GaussianDropout, kerasdrop.SpatialDropout1D/2D/3D, "
            "kerasdrop.VariationalLSTM/VariationalGRU for an RNN with dropout) and train the model with it.",
            UserWarning,
            stacklevel=3,
        )


def _check_recurrent(model, signature):
    """Recurrent layers convert only with a static batch size or ``unroll=True`` (as Keras's LSTM and GRU do)."""
    import tensorflow as tf

    dynamic = any(spec.shape[0] is None for spec in tf.nest.flatten(signature))
    looping = [
        layer
        for layer in _compat.flatten_layers(model)
        if isinstance(layer, keras.layers.RNN) and not getattr(layer, "unroll", False)
    ]
    if dynamic and looping:
        names = ", ".join(repr(layer.name) for layer in looping)
        raise ValueError(
            f"export_tflite: model {model.name!r} has recurrent layers ({names}) and a batch size unknown until run. "
            "TensorFlow Lite's builtins run a recurrent loop only with a static batch size, as for Keras's own LSTM "
            "and GRU: pass `batch_size=` (e.g. `batch_size=1`), build the model with `keras.Input(shape, "
            "batch_size=n)`, or build the recurrent layers with `unroll=True`."
        )


def _check_backend_and_model(model):
    compile.require_tensorflow("export_tflite converts through TensorFlow")
    if not model.built:
        raise ValueError(
            f"export_tflite needs a built model; {model.name!r} is not built yet. Create it with `keras.Input`."
        )


def _convert(model, layers, signature):
    """The TensorFlow Lite flatbuffer of ``model(x, training=False)`` with every kerasdrop layer in ``layers``
    sampling, whatever its `mc` flag, and its draws made with TensorFlow's stateful random ops."""
    import tensorflow as tf

    ids = {id(layer) for layer in layers}

    @tf.function(input_signature=[signature])
    def sample(x):
        return model(x, training=False)

    # The way `tf.lite.TFLiteConverter.from_keras_model` converts a Keras 3 model: a SavedModel written with
    # `keras.export.ExportArchive`, whose import freezes the weights into constants. (`from_concrete_functions` with
    # the model leaves them as resource variables that the interpreter never initialises; without it, it takes a
    # deprecated path.) The function is traced, and the archive written, with the contexts open in this thread only.
    with tempfile.TemporaryDirectory() as folder:
        with _context.selecting(ids), _context.stateful_tensorflow_draws():
            sample.get_concrete_function()
            archive = keras.export.ExportArchive()
            archive.add_endpoint("serve", sample)
            archive.write_out(folder, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def export_tflite(model, path=None, batch_size=None):
    """Converts ``model`` to TensorFlow Lite so that each invocation of the converted model is one Monte Carlo sample.

    Every kerasdrop noise layer of the model samples its noise on every invocation, as with ``mc=True``, whatever
    its ``mc`` flag; everything else runs as ``model(x, training=False)`` does (BatchNormalization with its moving
    statistics). Keras's own noise layers (``keras.layers.Dropout``, ``GaussianDropout``, ``GaussianNoise``,
    ``SpatialDropout1D/2D/3D``, ``AlphaDropout``, the dropout of Keras RNN layers and of ``MultiHeadAttention``)
    run as at test time too: a ``UserWarning`` names them; use kerasdrop's layer of the same role to sample there.

    The noise is drawn by TensorFlow Lite's own random builtins (``RANDOM_UNIFORM``, ``RANDOM_STANDARD_NORMAL``),
    which each interpreter seeds anew from the system: invocations differ, two interpreters of the same model draw
    different sequences, and nothing is reproducible from the layers' ``seed``. Bernoulli masks are drawn as
    ``uniform < keep`` (DropConnect's packed masks need random integers and bitwise ops, which TensorFlow Lite's
    builtins lack), with the same distribution; Cutout's centres as ``floor(uniform * n)`` (see
    `kerasdrop._random.randint`); StructuredBayesianPruning's ``erf⁻¹`` by `kerasdrop.ops.erfinv_polynomial`. The
    model is converted with builtin ops only (``supported_ops = [TFLITE_BUILTINS]``); the model itself, its layers'
    ``mc`` flags and seed states are left as they are.

    With several inputs, the interpreter lists them by name, not in the model's order: find each in
    ``interpreter.get_input_details()`` by its name (``serving_default_<input name>:0``).

    To estimate the predictive mean and spread, invoke the interpreter ``T`` times on the same input and take the
    mean and standard deviation of the outputs.

    Recurrent layers (kerasdrop's and Keras's) convert only with a static batch size or ``unroll=True``, as Keras's
    own LSTM does in TensorFlow Lite: pass ``batch_size``, or build the model with ``keras.Input(shape,
    batch_size=n)``, or the layers with ``unroll=True``; otherwise a ``ValueError`` says so.

    Args:
        model: a built ``keras.Model`` with inputs (functional or Sequential) and at least one kerasdrop noise layer
            with a rate above 0 (otherwise a ``ValueError``: nothing to sample; convert it with
            ``tf.lite.TFLiteConverter.from_keras_model``).
        path: None, or a file path (str or ``os.PathLike``) the flatbuffer is also written to.
        batch_size: None (the model's own batch dimension, usually unknown until run: resize the interpreter's
            input then) or a positive int, the batch size of the converted model's inputs.

    Returns:
        The TensorFlow Lite flatbuffer, ``bytes``.

    Raises:
        ValueError: on the JAX and PyTorch backends, naming the backend. The conversion traces the model with
            TensorFlow ops (the stateful random ops behind TensorFlow Lite's random builtins), which a model of
            another backend cannot run: save it as ``.keras`` and export it with ``KERAS_BACKEND=tensorflow``.

    Example:
        ```python
        flatbuffer = kerasdrop.export_tflite(model, "model.tflite", batch_size=1)
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
        interpreter.allocate_tensors()
        (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
        samples = []
        for _ in range(100):
            interpreter.set_tensor(inp["index"], x)
            interpreter.invoke()
            samples.append(interpreter.get_tensor(out["index"]))
        mean, std = np.mean(samples, axis=0), np.std(samples, axis=0)
        ```
    """
    model = check_instance("model", model, keras.Model, "a keras.Model")
    path = _check_path(path)
    batch_size = _check_batch_size(batch_size)
    _check_backend_and_model(model)
    signature = _inputs.serving_signature(model, _model_inputs(model), batch_size)
    _check_recurrent(model, signature)
    layers = _kerasdrop_layers(model)  # nothing to sample is an error before any warning
    _warn_keras_noise(model)
    flatbuffer = _convert(model, layers, signature)
    if path is not None:
        with open(path, "wb") as file:
            file.write(flatbuffer)
    return flatbuffer
