"""What `kerasdrop.MCDropout` makes of a model's outputs: their type (probabilities, logits, regression), decided
once from the model and the ``output_type`` argument, the per-sample transform and entropies, and the check that
probabilities are probabilities."""

import keras
import numpy as np
from keras import ops

from kerasdrop import _compat
from kerasdrop._validation import _message
from kerasdrop.mc.moments import entropy

OUTPUT_TYPES = ("auto", "probabilities", "logits", "regression", "gaussian")


class OutputKind:
    """How one output is read.

    Attributes:
        output_type: "probabilities", "logits", "regression" or "gaussian" (after "auto" is decided).
        transform: None, "softmax" or "sigmoid": applied to each sample before the moments.
        entropy: None, "categorical" (one distribution over the last axis), "binary" (each unit of the last axis a
            Bernoulli probability; their entropies add up) or "bernoulli" (an output of rank 1: one Bernoulli
            probability per input).
        paired: whether each sample comes with a second tensor: its entropies (probability outputs), or for a
            "gaussian" head, whose last axis holds a mean and a log variance (halves ``[..., :d]`` and
            ``[..., d:]``), its variances ``exp(log variance)`` beside its means.
    """

    def __init__(self, output_type, units, activation=None):
        self.output_type = output_type
        self.transform = None
        self.entropy = None
        binary = "bernoulli" if units is None else "binary"
        if output_type == "logits":
            self.transform = "sigmoid" if units in (None, 1) else "softmax"
            self.entropy = binary if units in (None, 1) else "categorical"
        elif output_type == "probabilities":
            self.entropy = binary if units in (None, 1) or activation == "sigmoid" else "categorical"
        self.paired = self.entropy is not None or output_type == "gaussian"

    def __repr__(self):
        return f"OutputKind({self.output_type!r}, transform={self.transform!r}, entropy={self.entropy!r})"


def _activation_name(tensor):
    """ "softmax", "sigmoid" or None: the activation that produced a symbolic output tensor."""
    operation = _compat.producing_operation(tensor)
    if isinstance(operation, keras.Model):
        graph = _compat.functional_graph(operation)
        if graph is None:
            return None
        return _activation_name(graph[1][_compat.output_index(tensor)])
    while isinstance(getattr(operation, "layer", None), keras.layers.Layer):  # TimeDistributed and other wrappers
        operation = operation.layer
    if operation is None:
        return None
    if isinstance(operation, keras.layers.Softmax) or type(operation).__name__ in ("Softmax", "Sigmoid"):
        return "softmax" if "Softmax" in type(operation).__name__ else "sigmoid"  # a layer, or a keras.ops node
    name = getattr(getattr(operation, "activation", None), "__name__", None)
    return {"softmax": "softmax", "softmax_v2": "softmax", "sigmoid": "sigmoid"}.get(name)


def _check_type(value, requested):
    if not isinstance(value, str) or value not in OUTPUT_TYPES:
        raise ValueError(_message("output_type", f"one of {OUTPUT_TYPES}, or a list/dict of them", requested))
    return value


def check_output_type(output_type):
    """The ``output_type`` argument with each entry checked (its structure is checked against the outputs later)."""
    if isinstance(output_type, dict):
        for value in output_type.values():
            _check_type(value, output_type)
    elif isinstance(output_type, (list, tuple)):
        if not output_type:
            raise ValueError(_message("output_type", "a string, or a non-empty list/dict", output_type))
        for value in output_type:
            _check_type(value, output_type)
    else:
        _check_type(output_type, output_type)
    return output_type


def output_kinds(output_type, structure, tensors, model_name):
    """One `OutputKind` per output, in flat order.

    Args:
        output_type: the checked ``output_type`` argument: a string, a list, or a dict keyed like the outputs.
        structure: the model's output structure (a tensor, a list or a dict of them).
        tensors: the flat list of output tensors (symbolic ones tell their activation; any give their last axis).
        model_name: for messages.
    """
    flat_types = _flat_types(output_type, structure, model_name)
    kinds = []
    for index, (requested, tensor) in enumerate(zip(flat_types, tensors, strict=True)):
        activation = _activation_name(tensor) if isinstance(tensor, keras.KerasTensor) else None
        if requested == "logits" and activation is not None:
            name = output_names(structure, len(flat_types))[index]
            raise ValueError(
                f"Invalid value received for argument `output_type`: 'logits' for {name} of model {model_name!r}, "
                f"whose activation is {activation}: its values are already probabilities, and reading them as "
                f"logits would apply {'softmax' if activation == 'softmax' else 'a sigmoid'} twice (mutual "
                "information far too small). Pass output_type='probabilities' (or 'auto') for it."
            )
        if requested == "auto":
            requested = "probabilities" if activation is not None else "regression"
        if requested == "gaussian":
            _check_gaussian_head(tensor, output_names(structure, len(flat_types))[index], model_name)
        units = tensor.shape[-1] if len(tensor.shape) > 1 else None  # None: rank 1, no units axis
        kinds.append(OutputKind(requested, units, activation))
    return kinds


def _check_gaussian_head(tensor, name, model_name):
    units = tensor.shape[-1] if len(tensor.shape) > 1 else None
    if units is None or units % 2:
        raise ValueError(
            f"Invalid value received for argument `output_type`: 'gaussian' for {name} of model {model_name!r}, "
            f"whose shape is {tuple(tensor.shape)}. A 'gaussian' output holds a mean and a log variance in the two "
            "halves of its last axis, which needs an even, known size (2 for one target: Dense(2))."
        )


def _flat_types(output_type, structure, model_name):
    count = len(keras.tree.flatten(structure))
    if isinstance(output_type, str):
        return [output_type] * count
    if isinstance(output_type, dict):
        if not isinstance(structure, dict) or set(output_type) != set(structure):
            keys = sorted(structure) if isinstance(structure, dict) else None
            raise ValueError(
                _message("output_type", f"one string, or a dict with the keys of the outputs ({keys})", output_type)
                + f" (model {model_name!r} has {count} output(s))"
            )
        return keras.tree.flatten({key: output_type[key] for key in structure})
    if isinstance(structure, dict):
        raise ValueError(
            _message(
                "output_type", f"one string, or a dict with the keys of the outputs ({sorted(structure)})", output_type
            )
            + f" (model {model_name!r} has a dict of outputs: a list would depend on their order)"
        )
    if len(output_type) != count:
        raise ValueError(
            _message("output_type", f"one string, or a list of {count} (one per output)", output_type)
            + f" (model {model_name!r} has {count} output(s))"
        )
    return list(output_type)


def output_names(structure, count):
    """How messages name each of the ``count`` outputs: "the output", or "output 'key'"."""
    if count == 1:
        return ["the output"]
    return [f"output {key!r}" for key in output_keys(structure, count)]


# How far probabilities may stray from [0, 1] and from a sum of 1: beyond float16 and bfloat16 rounding of a softmax.
_PROBABILITY_TOLERANCE = 1e-2


def check_probability_values(samples, kind, name):
    """Raises a clear ``ValueError`` when the samples of an output read as probabilities are not: a value below 0
    or above 1, or (one distribution over the last axis) a row whose sum is not 1, beyond float16 rounding.
    Rows with a non-finite value are left to the non-finite handling. ``name`` names the output, for the message."""
    if kind.output_type != "probabilities" or samples.size == 0:
        return
    low, high = float(samples.min()), float(samples.max())
    if not (np.isfinite(low) and np.isfinite(high)):  # rare: only then the copy that leaves non-finite values out
        values = samples[np.isfinite(samples)]
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
    problem = None
    if low < -_PROBABILITY_TOLERANCE or high > 1 + _PROBABILITY_TOLERANCE:
        problem = f"values in [{low:.4g}, {high:.4g}]"
    elif kind.entropy == "categorical":
        sums = samples.sum(axis=-1)
        sums = sums[np.isfinite(sums)]
        if sums.size and np.abs(sums - 1.0).max() > _PROBABILITY_TOLERANCE:
            problem = f"rows summing to values in [{float(sums.min()):.4g}, {float(sums.max()):.4g}]"
    if problem is not None:
        raise ValueError(
            f"Invalid value received for argument `output_type`: 'probabilities' for {name}, whose samples are not "
            f"probabilities ({problem}). Pass output_type='logits' for an output without softmax or sigmoid (each "
            "sample then goes through softmax, or a sigmoid for one unit), or 'regression'."
        )


def output_keys(structure, count):
    """Names of the outputs, in flat order: the dict keys, or "0", "1", ... for a list."""
    if isinstance(structure, dict):
        return [str(key) for key in keras.tree.flatten({key: key for key in structure})]
    return [str(index) for index in range(count)]


def postprocess(outputs, kinds):
    """Per output: its samples in float32 (softmax/sigmoid applied for logits), then, for probability outputs, the
    entropy of each sample; for a "gaussian" head its means, then its variances. A flat list of tensors."""
    flat = []
    for output, kind in zip(outputs, kinds, strict=True):
        values = ops.cast(output, "float32")
        if kind.output_type == "gaussian":
            means, log_variances = ops.split(values, 2, axis=-1)
            flat.extend([means, ops.exp(log_variances)])
            continue
        if kind.transform == "softmax":
            values = ops.softmax(values, axis=-1)
        elif kind.transform == "sigmoid":
            values = ops.sigmoid(values)
        flat.append(values)
        if kind.entropy is not None:
            flat.append(entropy(values, kind.entropy))
    return flat


def split(flat, kinds):
    """The inverse of `postprocess`'s flattening: a list of ``(samples, entropies, variances or None)``, one per
    output (see `OutputKind.paired`)."""
    pairs, index = [], 0
    for kind in kinds:
        second = flat[index + 1] if kind.paired else None
        pairs.append((flat[index], second))
        index += 2 if kind.paired else 1
    return pairs
