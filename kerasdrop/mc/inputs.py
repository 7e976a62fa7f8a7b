"""The inputs `kerasdrop.MCDropout.predict` takes: arrays, structures of arrays, datasets and generators, batched,
checked once against the model's inputs and made tensors in the order of its graph's inputs."""

import collections.abc
import inspect
import sys

import keras
import numpy as np
from keras import ops

from kerasdrop._validation import ArgumentTypeError, _message


def is_batched_source(x):
    """A tf.data.Dataset, a keras PyDataset, a generator or another iterator: batches come ready-made."""
    if isinstance(x, keras.utils.PyDataset) or inspect.isgenerator(x) or isinstance(x, collections.abc.Iterator):
        return True
    tensorflow = sys.modules.get("tensorflow")
    return tensorflow is not None and isinstance(x, tensorflow.data.Dataset)


def source_batches(plan, model, x):
    """Yields the batches of a batched source as model inputs (see `standardize`), each checked as it comes."""
    batches = (x[i] for i in range(len(x))) if isinstance(x, keras.utils.PyDataset) else x
    for element in batches:
        yield standardize(plan, model, check_numeric(keras.utils.unpack_x_y_sample_weight(element)[0]))


def in_model_order(plan, model, x):
    """Arrays checked once, whole: for a graph model a list in the order of its inputs, checked against their
    shapes; for any other model ``x`` as it is."""
    return ordered_inputs(model, plan.inputs, x) if plan.functional else x


def array_batches(plan, model, ordered, batch_size):
    """Yields model inputs (see `standardize`) of ``batch_size`` rows from arrays already `in_model_order`."""
    for start in range(0, batch_size_of(ordered), batch_size):
        part = keras.tree.map_structure(lambda array, s=start: array[s : s + batch_size], ordered)
        yield standardize(plan, model, part, checked=True)


def standardize(plan, model, batch, checked=False):
    """Model inputs as tensors: for a graph model a list in the order of its inputs (``batch`` checked against
    their specs unless ``checked``: already a list in that order), for any other model ``batch``'s structure."""
    if not plan.functional:
        return keras.tree.map_structure(ops.convert_to_tensor, batch)
    values = batch if checked else ordered_inputs(model, plan.inputs, batch)
    return [ops.convert_to_tensor(value, dtype=t.dtype) for t, value in zip(plan.inputs, values, strict=True)]


def batch_size_of(x):
    leaves = keras.tree.flatten(x)
    if not leaves:
        raise ValueError("MCDropout.predict received no input arrays.")
    return int(leaves[0].shape[0])


def as_arrays(x):
    """Lists of numbers become arrays; arrays, tensors and structures of them are kept; None and strings refused."""
    if x is None:
        raise ValueError(_message("x", "an array, a list/dict of arrays, a dataset or a generator", x))
    if is_batched_source(x):
        return x
    if isinstance(x, (list, tuple)) and x and not any(hasattr(leaf, "shape") for leaf in keras.tree.flatten(x)):
        x = np.asarray(x)
    return check_numeric(x)


def check_numeric(x):
    """Every leaf of ``x`` is an array or tensor of numbers (not None, not strings or objects)."""
    for leaf in keras.tree.flatten(x) if x is not None else [None]:
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not hasattr(leaf, "shape"):
            raise TypeError(
                _message("x", "arrays or tensors of numbers", f"<{type(leaf).__name__}>")
                + ". Convert the inputs with numpy.asarray first."
            )
        try:
            standard = keras.backend.standardize_dtype(dtype)
        except ValueError:
            standard = "string"
        if standard == "string":
            raise ArgumentTypeError(_message("x", "arrays of numbers", f"<array of dtype {dtype}>"))
    return x


def ordered_inputs(model, symbolic, batch):
    """The arrays of ``batch`` in the order of the graph's inputs ``symbolic``, each checked against its shape."""
    structure = getattr(model, "input", None)
    if isinstance(batch, dict) and isinstance(structure, dict) and set(batch) == set(structure):
        values = keras.tree.flatten({key: batch[key] for key in structure})  # the order of the model's inputs
    elif isinstance(batch, dict):
        missing = [tensor.name for tensor in symbolic if tensor.name not in batch]
        if missing:
            raise ValueError(
                f"MCDropout: the input dict has no entry for the model inputs {missing}. Received keys: {sorted(batch)}"
            )
        values = [batch[tensor.name] for tensor in symbolic]
    elif isinstance(batch, (list, tuple)):
        values = list(batch)
    else:
        values = [batch]
    if len(values) != len(symbolic):
        raise ValueError(
            f"MCDropout: model {model.name!r} takes {len(symbolic)} input(s); received {len(values)} arrays."
        )
    for tensor, value in zip(symbolic, values, strict=True):
        _check_input_shape(model, tensor, value)
    return values


def _check_input_shape(model, symbolic, value):
    shape = tuple(value.shape)
    expected = (None, *tuple(symbolic.shape)[1:])  # any batch size, even for a model built on one batch
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape, strict=True)):
        raise ValueError(
            f"MCDropout: input {symbolic.name!r} of model {model.name!r} expects arrays of shape {expected} (None: "
            f"any size). Received an array of shape {shape}"
        )


def serving_signature(model, inputs, batch_size=None):
    """``tf.TensorSpec``s of the symbolic ``inputs`` of ``model`` with batch dimension ``batch_size`` (None: any),
    in the structure the model takes them (one spec, a list, or a dict keyed as the model's inputs)."""
    import tensorflow as tf

    specs = [tf.TensorSpec((batch_size, *tuple(t.shape)[1:]), t.dtype, name=t.name) for t in inputs]
    structure = getattr(model, "input", None)
    if isinstance(structure, dict):
        return keras.tree.pack_sequence_as(structure, specs)
    return specs[0] if len(specs) == 1 else specs
