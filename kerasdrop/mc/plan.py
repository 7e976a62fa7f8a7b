"""How a model is run by `kerasdrop.MCDropout`: the deterministic prefix of its graph once per input, the rest once
per Monte Carlo sample, on inputs tiled along the batch axis, and how many rows of that fit in a memory budget.

Nothing of the model changes, not even for a moment; sampling is a property of how the graph is run: a functional
or Sequential model (nested functional models too) is run node by node, each layer called as `SamplingPass` decides;
any other model is run whole, in the same way.
"""

import keras
from keras import ops

from kerasdrop import _compat, _context
from kerasdrop import ops as kd_ops
from kerasdrop.mc.sampling_pass import deterministic_call, packed_dropout_scale
from kerasdrop.mc.selection import shares_noise_across_batch


class GraphPlan:
    """How a model is run: the deterministic prefix once per input, the rest once per Monte Carlo sample.

    For a functional or Sequential model, the nodes that depend on no selected noise form the prefix; the
    ``frontier`` is the list of prefix tensors (or model inputs) that the stochastic part reads, or that are
    outputs. Any other model is run whole (``functional`` is False). Nested models count as one node.
    """

    def __init__(self, model, selection, packed_masks=True):
        self.model = model
        self.selection = selection
        self.broadcast_nodes, self.broadcast_frontier = set(), set()
        self.tileable = not any(shares_noise_across_batch(layer) for layer in selection.layers)
        # Layers of the user's own classes that hold Keras noise layers and so are called with training=True.
        self.trained_containers = []
        graph = _compat.functional_graph(model)
        self.functional = graph is not None
        # The structure of the outputs; None for a model without a graph (see `output_specs`).
        self.output_structure = _compat.output_structure(model)
        if not self.functional:
            self._note_training(model)
            return
        self.inputs, self.outputs, nodes = graph
        noisy = set()  # ids of the symbolic tensors that depend on noise
        self.prefix, self.suffix, self.noisy_nodes = [], [], set()
        for node in nodes:
            operation = node.operation
            has_noise = isinstance(operation, keras.layers.Layer) and bool(selection.inside(operation))
            if has_noise or any(id(tensor) in noisy for tensor in node.input_tensors):
                self.suffix.append(node)
                noisy.update(id(tensor) for tensor in node.outputs)
                if has_noise:
                    self.noisy_nodes.add(id(node))
            else:
                self.prefix.append(node)
        if not any(id(output) in noisy for output in self.outputs):
            raise ValueError(
                f"MCDropout: no output of model {model.name!r} depends on the noise layers that sample "
                f"({[layer.name for layer in selection.layers]}), so every sample would be the same. Put the dropout "
                "on the path from the inputs to an output."
            )
        frontier = {}
        for tensor in [tensor for node in self.suffix for tensor in node.input_tensors] + self.outputs:
            if id(tensor) not in noisy:
                frontier.setdefault(id(tensor), tensor)
        self.frontier = list(frontier.values())
        if not self.prefix or any(_compat.keras_mask(tensor) is not None for tensor in self.frontier):
            # No prefix: the frontier is the inputs, in their order. A Keras mask would not survive the split:
            # then too the whole graph runs for every sample.
            self.prefix, self.suffix, self.frontier = [], nodes, list(self.inputs)
        for node in self.suffix:  # refuse now what the trace would refuse later
            if id(node) in self.noisy_nodes and _compat.functional_graph(node.operation) is None:
                self._note_training(node.operation)
        if packed_masks:
            self._find_broadcast_nodes()

    def output_specs(self, inputs):
        """``(structure, flat list)`` of the model's outputs: its symbolic outputs for a functional model; for any
        other, what a symbolic call on a batch of ``inputs`` returns (shapes and dtypes: no weight is read, nothing
        changes), or, for a model that cannot run symbolically, its outputs on the first input."""
        if self.functional:
            return self.output_structure, list(self.outputs)
        with _context.selecting(self.selection.ids), keras.StatelessScope():
            try:
                specs = keras.tree.map_structure(lambda value: keras.KerasTensor(value.shape, value.dtype), inputs)
                structure = self.model.compute_output_spec(specs)
            except Exception:  # e.g. a call that reads concrete values: one deterministic call on one input instead
                first = keras.tree.map_structure(lambda value: value[:1], inputs)
                structure = deterministic_call(self.model, (first,), {})
        return structure, keras.tree.flatten(structure)

    def _note_training(self, layer):
        """Checks that ``layer`` can run so that its selected noise samples (a clear error otherwise), and notes it
        when that takes ``training=True`` for a class whose own code Keras does not vouch for."""
        if self.selection.training_for(layer) and not type(layer).__module__.startswith(("keras.", "kerasdrop.")):
            self.trained_containers.append(layer.name)

    def _find_broadcast_nodes(self):
        """Packed dropouts that are the only readers of a frontier tensor (not an output): they mask the untiled
        tensor broadcast over the copies, which saves making the tiled tensor (docs/design.md).
        ``broadcast_frontier`` holds the ids of those frontier tensors."""
        readers = {}
        for node in self.suffix:
            for tensor in node.input_tensors:
                readers.setdefault(id(tensor), []).append(node)
        outputs = {id(tensor) for tensor in self.outputs}
        for tensor in self.frontier:
            nodes = readers.get(id(tensor), [])
            if (
                len(nodes) == 1
                and id(tensor) not in outputs
                and id(nodes[0]) in self.noisy_nodes
                and packed_dropout_scale(nodes[0].operation) is not None
            ):
                self.broadcast_nodes.add(id(nodes[0]))
                self.broadcast_frontier.add(id(tensor))

    def run_prefix(self, inputs, mapping=()):
        """The frontier values for a list of model inputs; ``mapping``: variable values to read (see `SamplingPass`)."""
        tensors = {id(symbolic): value for symbolic, value in zip(self.inputs, inputs, strict=True)}
        with _context.selecting(self.selection.ids), keras.StatelessScope(state_mapping=mapping):
            for node in self.prefix:
                _compat.run_node(node, tensors, deterministic_call)
        return [tensors[id(tensor)] for tensor in self.frontier]

    def run_suffix(self, frontier, copies, sampling_pass, shard=None):
        """The model's outputs, a flat list, for ``copies`` tiled copies of the frontier values.

        ``shard``: None, or a function that lays out a tiled tensor (batch axis first) over devices; it is applied to
        every tiled tensor the stochastic part starts from.
        """
        shard = shard or (lambda value: value)
        if not self.functional:
            tiled = keras.tree.map_structure(lambda v: shard(_tile(v, copies)), frontier)
            return keras.tree.flatten(sampling_pass.sample(self.model, (tiled,), {}))
        tensors = {}
        for symbolic, value in zip(self.frontier, frontier, strict=True):
            tensors[id(symbolic)] = value if id(symbolic) in self.broadcast_frontier else shard(_tile(value, copies))

        def broadcast(operation, args, kwargs):
            return shard(sampling_pass.sample(operation, args, kwargs, copies=copies))

        for node in self.suffix:
            _compat.run_node(node, tensors, broadcast if id(node) in self.broadcast_nodes else sampling_pass.call)
        return [tensors[id(tensor)] for tensor in self.outputs]

    def row_bytes(self, inputs):
        """Estimated bytes per row (one input, one sample) of the tensors made for one sample.

        Counts the frontier, every output of the stochastic part, and once more the output of each node with noise
        (its mask). Sizes unknown in the graph (None) take the size of the concrete ``inputs`` on the same axis.
        Models without a graph count their inputs only, eight times over.
        """
        fill = {}
        for value in keras.tree.flatten(inputs):
            for axis, size in enumerate(value.shape[1:], start=1):
                if size is not None:
                    fill[axis] = max(fill.get(axis, 1), int(size))
        if not self.functional:
            return 8 * sum(_row_size(value.shape, value.dtype, fill) for value in keras.tree.flatten(inputs))
        total = sum(_row_size(tensor.shape, tensor.dtype, fill) for tensor in self.frontier)
        for node in self.suffix:
            factor = 2 if id(node) in self.noisy_nodes else 1
            total += factor * sum(_row_size(tensor.shape, tensor.dtype, fill) for tensor in node.outputs)
        return max(1, total)


def rows_within(memory_budget_mb, row_bytes):
    """How many rows of ``row_bytes`` bytes one sampler call may hold under the budget (at least one)."""
    return max(1, int(memory_budget_mb * 2**20 // row_bytes))


def _row_size(shape, dtype, fill):
    """Bytes of one row (batch entry) of a tensor of ``shape``; None sizes are read from ``fill`` (axis -> size)."""
    size = kd_ops.dtype_size(dtype)
    for axis, dim in enumerate(tuple(shape)[1:], start=1):
        size *= int(dim) if dim is not None else fill.get(axis, 1)
    return size


def _tile(value, copies):
    return ops.tile(value, [copies] + [1] * (len(value.shape) - 1))
