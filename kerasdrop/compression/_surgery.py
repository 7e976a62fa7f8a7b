"""The structural edits behind `kerasdrop.compression`: folding test-time factors and removing dead units.

Both work on a `ModelGraph` and a dict ``weights`` (layer name -> list of NumPy arrays) of the layers they change.
A *kernel layer* is a `Dense` or `Conv1D/2D/3D` (their kernels end with the output-channel axis, so one slicing rule
serves them all).
"""

import dataclasses
import inspect

import keras
import numpy as np

from kerasdrop._axes import channel_axis

KERNEL_LAYERS = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_POOLING = (
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.AveragePooling3D,
)
_GLOBAL_POOLING = (
    keras.layers.GlobalMaxPooling1D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalMaxPooling3D,
    keras.layers.GlobalAveragePooling1D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalAveragePooling3D,
)
# Activations with a(s z) = s a(z) for s >= 0: a non-negative factor after them can move before them.
_HOMOGENEOUS_ACTIVATIONS = ("linear", "relu", "leaky_relu")
# Activations that mix the channels, so they are not applied unit by unit.
_CHANNEL_MIXING_ACTIVATIONS = ("softmax", "log_softmax")


def constructor_arguments(cls):
    """Names of the explicit parameters of ``cls.__init__``."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD]


def _activation_name(activation):
    name = keras.activations.serialize(activation) if activation is not None else "linear"
    return name if isinstance(name, str) else None


def _channel_axis(layer, rank):
    """The channel axis of ``layer``'s output: the last one, or 1 for a ``channels_first`` layer."""
    return channel_axis(getattr(layer, "data_format", "channels_last"), rank)


def _elementwise(layer):
    """True for an activation layer that acts on each unit separately."""
    if isinstance(layer, keras.layers.Activation):
        return _activation_name(layer.activation) not in _CHANNEL_MIXING_ACTIVATIONS
    return isinstance(layer, (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.ELU))


def _positively_homogeneous(layer):
    """True for a layer with f(s x) = s f(x) for every per-channel s >= 0 (ReLU-like activations, pooling)."""
    if isinstance(layer, keras.layers.Activation):
        return _activation_name(layer.activation) in _HOMOGENEOUS_ACTIVATIONS
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and float(layer.threshold) == 0.0
    return isinstance(layer, (keras.layers.LeakyReLU, *_POOLING))


def _fold_error(layer, reason):
    return ValueError(
        f"Cannot fold the test-time factor of layer {layer.name!r} ({type(layer).__name__}) into a plain layer: "
        f"{reason}. Place it right after a Dense or Conv layer whose activation is linear or ReLU (or put the "
        "activation in a separate layer after it)."
    )


def fold_multiplier(graph, weights, name, multiplier):
    """Folds the test-time factor of the layer ``name`` (per channel, or a scalar) into the kernel layer before it.

    ``k a(W x + b) = a(k W x + k b)`` for ``k >= 0`` when ``a`` is positively homogeneous, and the factor passes
    through ReLU-like activations and pooling on the way.
    """
    layer = graph.layer(name)
    per_channel = np.ndim(multiplier) > 0
    path, current = [], name
    while True:
        producers = graph.inputs_of(current)
        if len(producers) != 1 or graph.entries[producers[0]]["class_name"] == "InputLayer":
            raise _fold_error(layer, "no dense or convolutional layer comes before it")
        producer = producers[0]
        if len(graph.consumers_of(producer)) != 1 or graph.is_output(producer):
            raise _fold_error(layer, f"the output of layer {producer!r} is also used elsewhere")
        candidate = graph.layer(producer)
        if isinstance(candidate, KERNEL_LAYERS):
            break
        if not (
            _positively_homogeneous(candidate) or (not per_channel and isinstance(candidate, keras.layers.Flatten))
        ):
            raise _fold_error(layer, f"layer {producer!r} ({type(candidate).__name__}) comes between")
        path.append(candidate)
        current = producer
    if _activation_name(candidate.activation) not in _HOMOGENEOUS_ACTIVATIONS:
        raise _fold_error(layer, f"layer {producer!r} has activation {_activation_name(candidate.activation)!r}")
    kernel_weights = [np.array(w) for w in weights.get(producer, candidate.get_weights())]
    if per_channel:
        rank = len(candidate.output.shape)
        axis = _channel_axis(candidate, rank)
        axes = {layer.channel_axis(len(layer.input.shape))} | {_channel_axis(p, rank) for p in path}
        if axes != {axis} or multiplier.shape[0] != kernel_weights[0].shape[-1]:
            raise _fold_error(layer, f"its channel axis does not match the output channels of layer {producer!r}")
    kernel_weights[0] = kernel_weights[0] * multiplier
    if candidate.use_bias:
        kernel_weights[1] = kernel_weights[1] * multiplier
    weights[producer] = kernel_weights


class _Blocked(Exception):
    """The units of a layer cannot be removed; the message says why."""


@dataclasses.dataclass
class _Path:
    """From a kernel layer to the next one: the layers in between act channel by channel."""

    chain: list  # the layers in between, in order
    consumer: keras.layers.Layer  # the next kernel layer
    flatten: keras.layers.Layer | None  # the Flatten among them, if any (then the consumer is a Dense)
    axis: int  # the channel axis at the Flatten's input, or else at the consumer's input


def _follow(graph, name):
    """The `_Path` from kernel layer ``name`` to the next kernel layer; raises `_Blocked` if there is none."""
    rank = len(graph.layer(name).output.shape)
    axis = _channel_axis(graph.layer(name), rank)
    chain, flatten, current = [], None, name
    while True:
        consumers = graph.consumers_of(current)
        if graph.is_output(current):
            raise _Blocked(f"its units reach the model's output through layer {current!r}")
        if len(consumers) != 1:
            raise _Blocked(f"the output of layer {current!r} feeds {len(consumers)} layers")
        following = graph.layer(consumers[0])
        described = f"layer {following.name!r} ({type(following).__name__})"
        if isinstance(following, KERNEL_LAYERS):
            if getattr(following, "groups", 1) != 1:
                raise _Blocked(f"{described} is a grouped convolution")
            if flatten is None and _channel_axis(following, rank) != axis:
                raise _Blocked(f"{described} reads its channels on another axis")
            return _Path(chain, following, flatten, axis)
        if flatten is not None:
            raise _Blocked(f"{described} follows a Flatten layer")
        if isinstance(following, (*_POOLING, *_GLOBAL_POOLING)) and _channel_axis(following, rank) != axis:
            raise _Blocked(f"{described} has another data_format")
        if isinstance(following, keras.layers.BatchNormalization) and following.axis % rank != axis:
            raise _Blocked(f"{described} normalizes another axis")
        if isinstance(following, _GLOBAL_POOLING):
            if not following.keepdims:
                rank, axis = 2, 1
        elif isinstance(following, keras.layers.Flatten):
            flatten = following
        elif not (_elementwise(following) or isinstance(following, (*_POOLING, keras.layers.BatchNormalization))):
            raise _Blocked(f"{described} comes before the next dense or convolutional layer")
        chain.append(following)
        current = following.name


def _channel_of_rows(flatten, channels, axis):
    """For each output of ``flatten``, the channel of its input it comes from (any data format)."""
    shape = [1, *flatten.input.shape[1:]]
    ids = np.arange(channels, dtype="float32").reshape([channels if i == axis else 1 for i in range(len(shape))])
    flat = keras.ops.convert_to_numpy(flatten(np.broadcast_to(ids, shape).copy()))
    return np.rint(flat.reshape(-1)).astype("int64")


def _constant_input(layer, bias, chain):
    """What the next kernel layer receives when ``layer``'s kernel is all zero: ``a(b)`` through the layers in
    between, for every channel at once; None when the shapes are not all known."""
    shape = layer.output.shape
    if any(size is None for size in shape[1:]):
        return None
    axis = _channel_axis(layer, len(shape))
    values = keras.ops.convert_to_numpy(layer.activation(keras.ops.convert_to_tensor(bias)))
    values = values.reshape([len(bias) if i == axis else 1 for i in range(len(shape))])
    x = np.broadcast_to(values, (1, *shape[1:])).astype("float32")
    for following in chain:
        x = keras.ops.convert_to_numpy(following(x))
    return x


def _contribution(path, kernel, values, channel, rows):
    """What constant channel ``channel`` adds to the consumer's pre-activation at every position, or None."""
    if path.flatten is not None:
        return values.reshape(-1)[rows].astype("float64") @ kernel[rows].astype("float64")
    channel_values = np.take(values, channel, axis=path.axis)
    constant = float(channel_values.reshape(-1)[0])
    if not np.all(channel_values == constant):
        return None
    if constant == 0.0:
        return np.zeros(kernel.shape[-1])
    if isinstance(path.consumer, keras.layers.Dense):
        return constant * kernel[channel].astype("float64")
    if path.consumer.padding != "valid":  # zero padding: the map is no longer constant near the borders
        return None
    return constant * kernel[..., channel, :].astype("float64").sum(axis=tuple(range(kernel.ndim - 2)))


def _shrink(graph, weights, layer, path):
    """Removes the units of kernel layer ``layer`` that do not matter; returns how many are left."""
    kernel, *rest = weights[layer.name]
    channels = kernel.shape[-1]
    bias = rest[0] if layer.use_bias else np.zeros(channels, "float32")
    next_kernel, *next_rest = weights[path.consumer.name]
    dense = isinstance(path.consumer, keras.layers.Dense)
    if path.flatten is not None:
        channel_of_row = _channel_of_rows(path.flatten, channels, path.axis)
    else:
        channel_of_row = np.arange(channels)
    incoming_zero = np.all(kernel.reshape(-1, channels) == 0, axis=0)
    values = _constant_input(layer, bias, path.chain) if np.any(incoming_zero) else None
    removed, contributions = [], {}
    for channel in range(channels):
        rows = channel_of_row == channel
        reading = next_kernel[rows] if dense else next_kernel[..., channel, :]
        if not np.any(reading):  # nothing reads this unit
            removed.append(channel)
        elif incoming_zero[channel] and values is not None:  # a constant unit: move it into the next bias
            extra = _contribution(path, next_kernel, values, channel, rows)
            if extra is not None and (path.consumer.use_bias or not np.any(extra)):
                removed.append(channel)
                contributions[channel] = extra
    if len(removed) == channels:  # keep one unit, so that every layer still has an output
        removed.pop(0)
    keep = np.setdiff1d(np.arange(channels), removed)
    weights[layer.name] = [kernel[..., keep], *(w[keep] for w in rest)]
    for following in path.chain:
        if following.weights:  # BatchNormalization: one value per channel in each weight
            weights[following.name] = [w[keep] for w in weights[following.name]]
    next_kernel = next_kernel[np.isin(channel_of_row, keep)] if dense else next_kernel[..., keep, :]
    if path.consumer.use_bias:
        correction = sum((contributions[c] for c in removed if c in contributions), np.zeros(next_kernel.shape[-1]))
        next_rest = [(next_rest[0] + correction).astype(next_rest[0].dtype), *next_rest[1:]]
    weights[path.consumer.name] = [next_kernel, *next_rest]
    graph.update_arguments(layer.name, **{"units" if isinstance(layer, keras.layers.Dense) else "filters": len(keep)})
    return len(keep)


def remove_dead_units(graph, weights, strict):
    """Shrinks every kernel layer of a plain model to the units that matter; returns notes on those left whole.

    ``weights`` must hold the weights of every layer of ``graph`` and is updated in place.
    """
    blocked = []
    for name in graph.names:
        layer = graph.layer(name) if graph.entries[name]["class_name"] != "InputLayer" else None
        if not isinstance(layer, KERNEL_LAYERS) or graph.is_output(name):
            continue
        if getattr(layer, "groups", 1) != 1:
            blocked.append(f"layer {name!r} is a grouped convolution")
            continue
        try:
            path = _follow(graph, name)
        except _Blocked as reason:
            blocked.append(f"units of layer {name!r} kept: {reason}")
            continue
        _shrink(graph, weights, layer, path)
    if blocked and strict:
        raise ValueError(
            "compress cannot remove units here: " + "; ".join(blocked) + ". Pass strict=False to keep these layers "
            "whole (the rest is still compressed)."
        )
    return blocked
