"""The engine behind `kerasdrop.MCDropout`: which layers sample, how they are made to, and the compiled sampler.

Only the stochastic layers of a model sample; every other layer runs with ``training=False``, so
BatchNormalization keeps its moving statistics. While the sampler is traced (and only then):

- kerasdrop layers get ``mc=True``;
- Keras's own noise layers (``Dropout``, ``SpatialDropout1D/2D/3D``, ``GaussianDropout``, ``GaussianNoise``,
  ``AlphaDropout``) and Keras RNN layers with ``dropout``/``recurrent_dropout`` get ``training=True`` on their own
  call, nothing else;
- plain Bernoulli ``Dropout`` layers (Keras's and kerasdrop's) whose keep probability is dyadic (0.5, 0.25, 0.75,
  ...) draw their masks with `kerasdrop.ops.packed_bernoulli_mask`: the same distribution from far fewer random
  numbers;
- every seed generator of those layers is replaced by the sampler's own, so the model's seed states never move.

All of it is undone when the trace ends; the compiled function keeps the sampling behaviour. Each stochastic layer
must actually be called while tracing; one that the model skips with ``training=False`` raises a clear error.
"""

import keras
from keras import ops

from kerasdrop import _compat
from kerasdrop import ops as kd_ops
from kerasdrop.layers._base import StochasticLayer, check_float_inputs
from kerasdrop.layers.dropout import Dropout as KerasdropDropout

KERAS_NOISE_LAYERS = (
    keras.layers.Dropout,  # and SpatialDropout1D/2D/3D, its subclasses
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
)
SUPPORTED = (
    "kerasdrop layers, and Keras's Dropout, SpatialDropout1D/2D/3D, GaussianDropout, GaussianNoise, AlphaDropout "
    "and RNN layers with dropout or recurrent_dropout"
)
_MISSING = object()


def _rnn_has_dropout(layer):
    """A Keras RNN layer whose (Keras) cell drops inputs or recurrent state in training."""
    if not isinstance(layer, keras.layers.RNN):
        return False
    cells = getattr(layer.cell, "cells", [layer.cell])
    return any(
        not isinstance(cell, StochasticLayer)
        and (getattr(cell, "dropout", 0) > 0 or getattr(cell, "recurrent_dropout", 0) > 0)
        for cell in cells
    )


def is_stochastic_layer(layer):
    return isinstance(layer, StochasticLayer) or isinstance(layer, KERAS_NOISE_LAYERS) or _rnn_has_dropout(layer)


def find_stochastic_layers(model):
    """The layers inside ``model`` (nested ones included) that MCDropout makes sample."""
    return [layer for layer in _compat.flatten_layers(model) if layer is not model and is_stochastic_layer(layer)]


def shares_noise_across_batch(layer):
    """True when one draw of the layer's noise serves the whole batch, so samples cannot be stacked in one batch."""
    if isinstance(layer, StochasticLayer):
        return layer.noise_shared_across_batch
    noise_shape = getattr(layer, "noise_shape", None)
    return noise_shape is not None and noise_shape[0] is not None


def _packed_dropout_scale(layer):
    """The value of kept units when ``layer`` is a plain Bernoulli dropout with a dyadic keep, else None."""
    if type(layer) is keras.layers.Dropout:
        inverted = True
    elif type(layer) is KerasdropDropout:
        inverted = layer.scaling == "inverted"
    else:
        return None
    keep = 1.0 - float(layer.rate)
    if layer.rate == 0 or kd_ops.dyadic_fraction(keep) is None:
        return None
    return 1.0 / keep if inverted else 1.0


class SamplingScope:
    """Context manager that makes the stochastic layers sample, with ``generator`` as their only seed generator.

    Args:
        layers: the stochastic layers (from `find_stochastic_layers`).
        generator: ``keras.random.SeedGenerator`` that every one of them draws from while the scope is open.
        packed_masks: bool, whether Bernoulli dropout with a dyadic keep uses `packed_bernoulli_mask`.
    """

    def __init__(self, layers, generator, packed_masks=True):
        self.layers = layers
        self.generator = generator
        self.packed_masks = packed_masks
        self.called = set()
        self._undo = []

    def __enter__(self):
        self.called = set()
        for layer in self.layers:
            self._swap_seed_generators(layer)
            scale = _packed_dropout_scale(layer) if self.packed_masks else None
            if scale is not None:
                self._override_call(layer, self._packed_dropout_call(layer, scale))
            elif isinstance(layer, StochasticLayer):
                self._undo.append(lambda layer=layer, mc=layer.mc: setattr(layer, "mc", mc))
                layer.mc = True
                self._override_call(layer, self._recorded_call(layer, training=None))
            else:
                self._override_call(layer, self._recorded_call(layer, training=True))
        return self

    def __exit__(self, *exc_info):
        while self._undo:
            self._undo.pop()()
        return False

    def check_all_called(self, model):
        missing = [layer.name for layer in self.layers if id(layer) not in self.called]
        if missing:
            raise ValueError(
                f"MCDropout found the stochastic layers {missing} in model {model.name!r}, but the model did not call "
                "them when run with training=False (a subclassed model or layer that skips its dropout outside "
                "training?), so their noise cannot be sampled. Call the dropout layers unconditionally (they already "
                "do nothing at test time), or build the model with the functional or Sequential API."
            )

    def _swap_seed_generators(self, layer):
        for sublayer in _compat.flatten_layers(layer):
            for name, value in list(vars(sublayer).items()):
                if isinstance(value, keras.random.SeedGenerator):
                    _compat.set_untracked(sublayer, name, self.generator)
                    self._undo.append(lambda s=sublayer, n=name, v=value: _compat.set_untracked(s, n, v))

    def _override_call(self, layer, call):
        previous = vars(layer).get("call", _MISSING)
        _compat.set_untracked(layer, "call", call)
        if previous is _MISSING:
            self._undo.append(lambda: _compat.delete_untracked(layer, "call"))
        else:
            self._undo.append(lambda: _compat.set_untracked(layer, "call", previous))

    def _recorded_call(self, layer, training):
        original = layer.call

        def call(*args, **kwargs):
            self.called.add(id(layer))
            if training is not None:
                kwargs["training"] = training
            return original(*args, **kwargs)

        return call

    def _packed_dropout_call(self, layer, scale):
        keep = 1.0 - float(layer.rate)

        def call(inputs, training=None):
            self.called.add(id(layer))
            check_float_inputs(layer, inputs)
            shape = kd_ops.resolve_noise_shape(inputs, layer.noise_shape)
            mask = kd_ops.packed_bernoulli_mask(shape, keep, self.generator, scale=scale, dtype=inputs.dtype)
            return inputs * mask

        return call


def _deterministic_call(operation, args, kwargs):
    if _compat.takes_training(operation):
        kwargs["training"] = False
    return operation(*args, **kwargs)


def _multi_output_error(model, count):
    return ValueError(
        f"MCDropout handles models with one output; model {model.name!r} has {count}. Sample the output you want "
        "through a single-output model that shares the layers, e.g. `keras.Model(model.inputs, model.outputs[0])`."
    )


class GraphPlan:
    """How a model is run: the deterministic prefix once per input, the rest once per Monte Carlo sample.

    For a functional or Sequential model, the nodes that depend on no stochastic layer form the prefix; the
    ``frontier`` is the list of prefix tensors (or model inputs) that the stochastic part reads. Any other model
    is run whole (``functional`` is False). Nested models count as one node.
    """

    def __init__(self, model, layers):
        self.model = model
        self.tileable = not any(shares_noise_across_batch(layer) for layer in layers)
        graph = _compat.functional_graph(model)
        self.functional = graph is not None
        if not self.functional:
            return
        self.inputs, outputs, nodes = graph
        if len(outputs) != 1:
            raise _multi_output_error(model, len(outputs))
        self.output = outputs[0]
        stochastic_ids = {id(layer) for layer in layers}
        noisy = set()  # ids of the symbolic tensors that depend on noise
        self.prefix, self.suffix, self.noisy_nodes = [], [], set()
        for node in nodes:
            operation = node.operation
            has_noise = isinstance(operation, keras.layers.Layer) and any(
                id(layer) in stochastic_ids for layer in _compat.flatten_layers(operation)
            )
            if has_noise or any(id(tensor) in noisy for tensor in node.input_tensors):
                self.suffix.append(node)
                noisy.update(id(tensor) for tensor in node.outputs)
                if has_noise:
                    self.noisy_nodes.add(id(node))
            else:
                self.prefix.append(node)
        if id(self.output) not in noisy:
            raise ValueError(
                f"MCDropout: the output of model {model.name!r} does not depend on any of its stochastic layers, so "
                "every sample would be the same. Put the dropout on the path from the inputs to the output."
            )
        frontier = {}
        for node in self.suffix:
            for tensor in node.input_tensors:
                if id(tensor) not in noisy:
                    frontier.setdefault(id(tensor), tensor)
        self.frontier = list(frontier.values())
        if any(_compat.keras_mask(tensor) is not None for tensor in self.frontier):
            # A Keras mask would not survive the split: run the whole graph for every sample instead.
            self.prefix, self.suffix, self.frontier = [], nodes, list(self.inputs)

    def run_prefix(self, inputs):
        tensors = {id(symbolic): value for symbolic, value in zip(self.inputs, inputs, strict=True)}
        for node in self.prefix:
            _compat.run_node(node, tensors, _deterministic_call)
        return [tensors[id(tensor)] for tensor in self.frontier]

    def run_suffix(self, frontier):
        tensors = {id(symbolic): value for symbolic, value in zip(self.frontier, frontier, strict=True)}
        for node in self.suffix:
            _compat.run_node(node, tensors, _deterministic_call)
        return tensors[id(self.output)]

    def row_bytes(self, inputs):
        """Estimated bytes per row (one input, one sample) of the tensors made for one sample.

        Counts the frontier, every output of the stochastic part, and once more the output of each node with noise
        (its mask). Sizes unknown in the graph (None) take the size of the concrete ``inputs`` on the same axis.
        Models without a graph count their inputs only, eight times over.
        """
        fill = {}
        for value in keras.tree.flatten(inputs):
            for axis, size in enumerate(value.shape[1:], start=1):
                fill[axis] = max(fill.get(axis, 1), int(size))
        if not self.functional:
            return 8 * sum(_row_size(value.shape, value.dtype, fill) for value in keras.tree.flatten(inputs))
        total = sum(_row_size(tensor.shape, tensor.dtype, fill) for tensor in self.frontier)
        for node in self.suffix:
            factor = 2 if id(node) in self.noisy_nodes else 1
            total += factor * sum(_row_size(tensor.shape, tensor.dtype, fill) for tensor in node.outputs)
        return max(1, total)


def _row_size(shape, dtype, fill):
    """Bytes of one row (batch entry) of a tensor of ``shape``; None sizes are read from ``fill`` (axis -> size)."""
    size = kd_ops.dtype_size(dtype)
    for axis, dim in enumerate(tuple(shape)[1:], start=1):
        size *= int(dim) if dim is not None else fill.get(axis, 1)
    return size


class Sampler:
    """Compiled functions of a model: ``prefix(inputs)`` once per input batch and ``sample(frontier, copies)``.

    ``sample`` tiles the frontier ``copies`` times along the batch axis (sample-major: row ``s * b + i`` is sample
    ``s`` of input ``i``) and runs the stochastic part on it inside a `SamplingScope`. With the TensorFlow backend
    both are ``tf.function``s traced once (``trace_count`` counts the traces); other backends run them eagerly.
    """

    def __init__(self, model, layers, generator, packed_masks=True):
        self.model = model
        self.layers = layers
        self.generator = generator
        self.packed_masks = packed_masks
        self.plan = GraphPlan(model, layers)
        self.trace_count = 0
        functional = self.plan.functional
        self._compiled_sample = _compile(self._sample, self.plan.frontier if functional else None, copies=True)
        self._compiled_prefix = None
        if functional and self.plan.prefix:
            self._compiled_prefix = _compile(self.plan.run_prefix, self.plan.inputs)

    def prefix(self, inputs):
        """The frontier values for a batch of model inputs (the inputs themselves when there is no prefix)."""
        if self._compiled_prefix is None:
            return inputs
        return self._compiled_prefix(inputs)

    def sample(self, frontier, copies):
        return self._compiled_sample(frontier, copies)

    def _sample(self, frontier, copies):
        self.trace_count += 1
        tiled = keras.tree.map_structure(lambda value: _tile(value, copies), frontier)
        scope = SamplingScope(self.layers, self.generator, self.packed_masks)
        try:
            with scope:
                if self.plan.functional:
                    outputs = self.plan.run_suffix(tiled)
                else:
                    outputs = self.model(tiled, training=False)
                scope.check_all_called(self.model)
        finally:
            _compat.clear_losses(self.model)  # losses added while tracing belong to this trace only
        flat = keras.tree.flatten(outputs)
        if len(flat) != 1:
            raise _multi_output_error(self.model, len(flat))
        return flat[0]


def _compile(function, symbolic=None, copies=False):
    """``function`` as a ``tf.function`` under TensorFlow, else as it is.

    Its first argument is a list of tensors shaped like the KerasTensors ``symbolic`` with any batch size (and, with
    ``copies``, an int32 scalar after it), so it is traced once; without ``symbolic`` it retraces only when needed.
    """
    if keras.backend.backend() != "tensorflow":
        return function
    import tensorflow as tf

    if symbolic is None:
        return tf.function(function, reduce_retracing=True)
    signature = [[tf.TensorSpec((None, *tuple(tensor.shape)[1:]), tensor.dtype) for tensor in symbolic]]
    if copies:
        signature.append(tf.TensorSpec((), "int32"))
    return tf.function(function, input_signature=signature)


def _tile(value, copies):
    return ops.tile(value, [copies] + [1] * (len(value.shape) - 1))
