"""The engine behind `kerasdrop.MCDropout`: how a model is run so that exactly its selected noise layers sample.

Nothing of the model changes, not even for a moment; sampling is a property of how the graph is run:

- a functional or Sequential model (nested functional models too) is run node by node, each layer called with the
  ``training`` value it needs: False for every layer without selected noise (BatchNormalization keeps its moving
  statistics), True for Keras's noise layers (see `Selection.training_for` for layers that hold them);
- kerasdrop layers read the selection from `kerasdrop._sampling_context`, opened in this thread during the trace;
- every layer with selected noise runs inside a ``keras.StatelessScope`` that hands its seed generators states drawn
  from MCDropout's own generator; the new states stay in the scope, so the model's seed states never move;
- plain Bernoulli ``Dropout`` layers (Keras's and kerasdrop's) whose keep probability is dyadic (0.5, 0.25, 0.75, ...)
  get their masks from `kerasdrop.ops.packed_bernoulli_mask` instead of their own call: same distribution, far fewer
  random numbers;
- any other model is run whole, in the same way.

Each selected noise layer must draw noise while the sampler is traced (its seed state must move in the scope); one
that the model never calls raises a clear error.
"""

import contextlib
import math
import threading

import keras
from keras import ops

from kerasdrop import _compat, _joint_draws, _sampling_context
from kerasdrop import ops as kd_ops
from kerasdrop._noise_layers import shares_noise_across_batch
from kerasdrop.layers._base import check_float_inputs
from kerasdrop.layers.dropout import Dropout as KerasdropDropout


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


def _packed_dropout(layer, scale, inputs, copies=None):
    """Packed-mask dropout of ``inputs``; with ``copies``, of ``copies`` tiled copies of them, without making the
    tiled tensor: the mask ``(copies, batch, ...)`` selects from the inputs broadcast along its first axis.
    Dropped units are exactly 0 (a selection, not a product: inf and NaN included)."""
    check_float_inputs(layer, inputs)
    shape = kd_ops.resolve_noise_shape(inputs, layer.noise_shape)
    keep = 1.0 - float(layer.rate)
    if copies is not None:
        # The mask of every copy, (copies, batch, ...); under joint draws one per copy, (copies, 1, ...).
        shared = _sampling_context.shared_copies() is not None
        mask_shape = (copies, 1, *tuple(shape)[1:]) if shared else (copies, *shape)
    if _multiplies_masks(inputs):
        if copies is None:
            mask = kd_ops.packed_bernoulli_mask(
                shape, keep, layer.seed_generator, scale=scale, dtype=inputs.dtype, batch_axis=0
            )
            return inputs * mask
        mask = kd_ops.packed_bernoulli_mask(mask_shape, keep, layer.seed_generator, scale=scale, dtype=inputs.dtype)
        return ops.reshape(inputs[None] * mask, (-1, *ops.shape(inputs)[1:]))
    scaled = inputs * ops.cast(scale, inputs.dtype) if scale != 1.0 else inputs
    zero = ops.cast(0.0, inputs.dtype)
    if copies is None:
        kept = kd_ops.packed_bernoulli_mask(shape, keep, layer.seed_generator, dtype="bool", batch_axis=0)
        return ops.where(kept, scaled, zero)
    kept = kd_ops.packed_bernoulli_mask(mask_shape, keep, layer.seed_generator, dtype="bool")
    return ops.reshape(ops.where(kept, scaled[None], zero), (-1, *ops.shape(inputs)[1:]))


def _multiplies_masks(inputs):
    """Whether packed-mask dropout multiplies ``inputs`` by a float mask rather than selecting with a boolean one:
    on PyTorch (eager), when every input is finite, where the product is the selection (a dropped unit is 0, of the
    input's sign). PyTorch's selection with a boolean mask broadcast over the copies is much slower than the product
    (docs/design.md); an inf or NaN input keeps the selection, whose dropped units are exactly 0.

    One pass decides: a float32 sum is finite only if every input is (an overflowing sum of finite inputs, which
    keeps the selection too, is merely slower)."""
    if keras.backend.backend() != "torch":
        return False
    return math.isfinite(float(ops.sum(ops.cast(inputs, "float32"))))


def _draws_own_mask(layer):
    """Whether the sampler draws the mask of a Keras ``Dropout`` itself, from the layer's seed state: on PyTorch,
    where Keras's own call draws from torch's global generator when the layer has no seed (so neither MCDropout's
    ``seed`` nor its stateless scope would reach the draw). Same inverted Bernoulli dropout."""
    return keras.backend.backend() == "torch" and type(layer) is keras.layers.Dropout and layer.rate > 0


def _own_mask_dropout(layer, inputs, *args, **kwargs):
    check_float_inputs(layer, inputs)
    return kd_ops.dropout(inputs, float(layer.rate), noise_shape=layer.noise_shape, seed=layer.seed_generator)


def _torch_generator_states():
    """The states of PyTorch's default generators (CPU, and CUDA once started), or None on other backends.

    Keras's dropout on PyTorch draws from them when its layer has no seed: the dropout of Keras's RNN cells and
    attention layers, and of a Keras ``Dropout`` inside a layer that MCDropout calls whole. A change of state tells
    that such a layer drew noise.
    """
    if keras.backend.backend() != "torch":
        return None
    import torch

    states = [torch.random.get_rng_state()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states.extend(torch.cuda.get_rng_state_all())
    return states


@contextlib.contextmanager
def _torch_generators(state):
    """On PyTorch (``state`` not None): torch's global generators seeded from ``state`` (int ``(2,)``) while open,
    and given back their own states when closed.

    Keras's dropout on PyTorch draws from them when its layer has no seed (Keras's RNN cells, attention layers, a
    ``Dropout`` inside a layer called whole): seeded from MCDropout's generator, such draws follow its ``seed``
    like the others, and the user's own random stream is left where it was.
    """
    if state is None:
        yield
        return
    import torch

    devices = range(torch.cuda.device_count()) if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    first, second = (int(value) for value in ops.convert_to_numpy(state))
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(first * 2**31 + second)
        yield


def _generators_moved(before):
    if before is None:
        return False
    import torch

    return any(not torch.equal(old, new) for old, new in zip(before, _torch_generator_states(), strict=True))


def _deterministic_call(operation, args, kwargs):
    if _compat.takes_training(operation):
        kwargs["training"] = False
    return operation(*args, **kwargs)


class SamplingPass:
    """One run of the stochastic part: the current seed state of every selected noise layer, and which drew noise.

    Args:
        selection: the `Selection`.
        states: dict ``id(seed variable) -> state tensor`` to start from.
        packed_masks: bool, whether dyadic Bernoulli dropout uses packed masks.
        mapping: list of ``(variable, value)`` pairs that every stateless scope of the pass starts from (the
            model's variables traced as arguments on JAX; empty elsewhere). A ``keras.StatelessScope`` does not see
            the mapping of the scope around it, so each scope opened here repeats it.
        joint: bool, whether the rows of each sample share their draws (see `kerasdrop._joint_draws`): Keras's
            noise layers and RNNs are then computed by the sampler, from their own seed states.
    """

    def __init__(self, selection, states, packed_masks, mapping=(), joint=False):
        self.selection = selection
        self.states = states
        self.packed_masks = packed_masks
        self.mapping = list(mapping)
        self.joint = joint
        self.drew = set()

    def call(self, operation, args, kwargs):
        if not isinstance(operation, keras.layers.Layer) or not self.selection.inside(operation):
            return _deterministic_call(operation, args, kwargs)
        graph = _compat.functional_graph(operation) if isinstance(operation, keras.Model) else None
        flat_args = keras.tree.flatten(args)
        plain = all(value is None for value in keras.tree.flatten(kwargs))  # e.g. no Keras mask to carry inside
        if graph is not None and len(flat_args) == len(graph[0]) and plain:
            inputs, outputs, nodes = graph
            tensors = {id(symbolic): value for symbolic, value in zip(inputs, flat_args, strict=True)}
            for node in nodes:
                _compat.run_node(node, tensors, self.call)
            return [tensors[id(tensor)] for tensor in outputs]
        return self.sample(operation, args, kwargs)

    def sample(self, layer, args, kwargs, copies=None):
        """Calls ``layer`` so that its selected noise samples from the current seed states, in a stateless scope.

        ``copies``: for a packed dropout whose input is not tiled yet (see `GraphPlan.broadcast_nodes`).
        """
        groups = self.selection.seed_variables(layer)
        variables = [variable for group in groups for variable in group]
        scale = _packed_dropout_scale(layer) if self.packed_masks else None
        seeds = [(v, self.states[id(v)]) for v in variables]
        generators = None
        with keras.StatelessScope(state_mapping=[*self.mapping, *seeds]) as scope:  # later pairs win
            before = {id(v): scope.get_current_value(v) for v in variables}
            if scale is not None:
                outputs = _packed_dropout(layer, scale, *args, copies=copies)
            elif self.joint and _joint_draws.runs_itself(layer):
                outputs = _joint_draws.shared_noise_output(layer, args, kwargs)
            elif _draws_own_mask(layer):
                outputs = _own_mask_dropout(layer, *args)
            else:
                if _compat.takes_training(layer):
                    kwargs["training"] = self.selection.training_for(layer)
                generators = _torch_generator_states()
                outputs = layer(*args, **kwargs)
        for variable in variables:
            self.states[id(variable)] = scope.get_current_value(variable)
        global_draw = _generators_moved(generators)
        for noise, group in zip(self.selection.inside(layer), groups, strict=True):
            if global_draw or any(scope.get_current_value(v) is not before[id(v)] for v in group):
                self.drew.add(id(noise))
        return outputs


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
        # The structure of the outputs; for a model without a graph, known once it has run.
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
                and _packed_dropout_scale(nodes[0].operation) is not None
            ):
                self.broadcast_nodes.add(id(nodes[0]))
                self.broadcast_frontier.add(id(tensor))

    def run_prefix(self, inputs, mapping=()):
        """The frontier values for a list of model inputs; ``mapping``: variable values to read (see `SamplingPass`)."""
        tensors = {id(symbolic): value for symbolic, value in zip(self.inputs, inputs, strict=True)}
        with _sampling_context.selecting(self.selection.ids), keras.StatelessScope(state_mapping=mapping):
            for node in self.prefix:
                _compat.run_node(node, tensors, _deterministic_call)
        return [tensors[id(tensor)] for tensor in self.frontier]

    def run_suffix(self, frontier, copies, sampling_pass, shard=None):
        """The model's outputs, a flat list, for ``copies`` tiled copies of the frontier values.

        ``shard``: None, or a function that lays out a tiled tensor (batch axis first) over devices; it is applied to
        every tiled tensor the stochastic part starts from.
        """
        shard = shard or (lambda value: value)
        if not self.functional:
            tiled = keras.tree.map_structure(lambda v: shard(_tile(v, copies)), frontier)
            outputs = sampling_pass.sample(self.model, (tiled,), {})
            self.output_structure = outputs
            return keras.tree.flatten(outputs)
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


class Sampler:
    """Compiled functions of a model: ``prefix(inputs)`` once per input batch and ``sample(frontier, copies)``.

    ``sample`` tiles the frontier ``copies`` times along the batch axis (sample-major: row ``s * b + i`` is sample
    ``s`` of input ``i``), runs the stochastic part on it and hands the flat list of outputs to ``postprocess``
    (inside the compiled function), whose flat list of tensors it returns.

    How each backend compiles and spreads the work:

    - TensorFlow: both functions are ``tf.function``s traced once, whatever the batch size and ``copies``. With a
      ``tf.distribute`` strategy of ``R`` replicas each replica samples with seed states of its own and the results
      are concatenated along the first axis, replica after replica: ``R * copies`` samples a call.
    - JAX: both functions are ``jax.jit`` computations. The model's variables are arguments (read in a
      ``keras.StatelessScope``), so a model trained further is sampled with its new weights and no weight is baked
      into the program; MCDropout's seed state goes in and its next value comes out, assigned after the call.
      ``copies`` is static: one trace per batch shape and number of copies. On CPU the copies of a call run in
      steps of a ``jax.lax.scan`` (see `_steps`). With a ``keras.distribution.DataParallel``
      of ``R`` devices (models whose noise is drawn per row), each call tiles ``R * copies`` copies laid out along
      the batch axis of its mesh, device after device; the draws over that global tensor give every device masks of
      its own.
    - PyTorch: eager, without autograd (``torch.no_grad``): see docs/design.md for what ``torch.compile`` gave.

    ``trace_count`` counts the traces of the sampling function (on PyTorch, which does not trace, its calls).

    Args:
        model: the model.
        selection: its `Selection`.
        generator: ``keras.random.SeedGenerator`` of MCDropout: each call draws every seed state from it.
        postprocess: function of the flat list of output tensors, returning a flat list of tensors.
        packed_masks: bool, whether Bernoulli dropout with a dyadic keep uses packed masks.
        strategy: None, a ``tf.distribute.Strategy`` (TensorFlow; used when it has several replicas) or a
            ``keras.distribution.DataParallel`` (JAX; used when its mesh has several devices on the batch axis and
            no sampling layer shares its noise across the batch).
    """

    def __init__(self, model, selection, generator, postprocess, packed_masks=True, strategy=None, joint=False):
        self.model = model
        self.selection = selection
        self.generator = generator
        self.postprocess = postprocess
        self.packed_masks = packed_masks
        self.joint = joint
        self.plan = GraphPlan(model, selection, packed_masks)
        if joint:
            _joint_draws.check_joint_draws(model, self.plan, selection)
        # Under joint draws the seed states of a call come from the block seed it is given, through this generator.
        self._block_generator = keras.random.SeedGenerator(0)
        # Calls that draw from MCDropout's generator take turns: two threads must never start from one seed state.
        # So do all calls on PyTorch, which runs the layers eagerly: Keras's RNN cells keep the masks of the sequence
        # they run on themselves, and two sequences run side by side would share them.
        self._lock = threading.Lock()
        self.seed_variables = [v for group in selection.seed_variables(model) for v in group]
        # On PyTorch one more seed state per pass seeds torch's global generator for the pass (`_torch_generators`).
        self._global_seed_rows = 1 if keras.backend.backend() == "torch" else 0
        self.trace_count = 0
        self.backend = keras.backend.backend()
        self.strategy = None  # a tf.distribute strategy of several replicas
        self.distribution = None  # a keras.distribution.DataParallel of several devices (JAX)
        self.replicas = 1
        if strategy is not None and self.backend == "tensorflow" and int(strategy.num_replicas_in_sync) > 1:
            self.strategy, self.replicas = strategy, int(strategy.num_replicas_in_sync)
        elif strategy is not None and self.backend == "jax" and self.plan.tileable:
            devices = batch_devices(strategy)
            if devices > 1:
                self.distribution, self.replicas = strategy, devices
        functional = self.plan.functional
        has_prefix = functional and bool(self.plan.prefix)
        self._compiled_prefix = None
        if self.backend == "jax":
            variables = _variables_of(model, self.seed_variables)
            place = self._replicate if self.distribution is not None else None
            self._compiled_sample = _jax_jit(
                self._jax_sample,
                variables,
                # Joint draws read only their block seed: writing back a state they never move would undo the move
                # of a `draw_key` running in another thread.
                carried=[] if joint else [generator.state],
                static_copies=True,
                place=place,
            )
            if has_prefix:
                self._compiled_prefix = _jax_jit(
                    lambda mapping, inputs: self.plan.run_prefix(inputs, mapping), variables, place=place
                )
        elif self.backend == "tensorflow":
            self._compiled_sample = _compile(
                self._sample_with_seed if joint else self._sample,
                self.plan.frontier if functional else None,
                copies=True,
                block_seed=joint,
            )
            if has_prefix:
                self._compiled_prefix = _compile(self.plan.run_prefix, self.plan.inputs)
        else:
            self._compiled_sample = _without_gradients(self._sample_with_seed if joint else self._sample)
            if has_prefix:
                self._compiled_prefix = _without_gradients(self.plan.run_prefix)

    def rows_per_call(self, memory_budget_mb, row_bytes):
        """How many rows of ``row_bytes`` one call holds under the budget.

        PyTorch on CPU takes at most `_TORCH_CPU_CALL_MB` a call: its large tensors are fresh memory maps from the C
        allocator, page-faulted in at every allocation, while smaller ones reuse freed memory (docs/design.md).
        """
        if self.backend == "torch" and _torch_on_cpu(self.model):
            memory_budget_mb = min(memory_budget_mb, _TORCH_CPU_CALL_MB)
        return rows_within(memory_budget_mb, row_bytes)

    def prefix(self, inputs):
        """The frontier values for a batch of model inputs (the inputs themselves when there is no prefix)."""
        if self._compiled_prefix is None:
            return inputs
        return self._compiled_prefix(inputs)

    def sample(self, frontier, copies, block_seed=None):
        """The flat list of ``postprocess``ed outputs of ``replicas * copies`` samples of the frontier values.

        ``block_seed``: under joint draws, the int32 ``(2,)`` seed that every seed state of this call derives from
        (the same block seed gives the same networks, whatever the inputs); None otherwise (drawn from MCDropout's
        generator).
        """
        if self.backend == "tensorflow":
            copies = ops.convert_to_tensor(copies, "int32")  # one trace whatever the number of copies
        if not self.joint:
            with self._lock:  # reads and moves MCDropout's seed state
                return self._compiled_sample(frontier, copies)
        # Joint draws read only the block seed given: compiled calls from several threads may run side by side.
        block_seed = ops.convert_to_tensor(block_seed, "int32")
        if self.backend == "jax":  # the number of copies is static: the last argument
            return self._compiled_sample(frontier, block_seed, copies)
        if self.backend == "torch":
            with self._lock:
                return self._compiled_sample(frontier, copies, block_seed)
        return self._compiled_sample(frontier, copies, block_seed)

    def draw_key(self):
        """The key of a call under joint draws, int32 ``(2,)``, from MCDropout's generator (taking turns with other
        threads, so that no two calls get the same key)."""
        with self._lock:
            key = keras.random.randint((2,), 0, 2**30, seed=self.generator, dtype="int32")
            return ops.convert_to_numpy(key).astype("int32")

    def draw_states(self, count, block_seed=None):
        """``count`` sets of seed states, ``(count, seed variables, 2)`` int32: from MCDropout's generator, or, given
        a ``block_seed``, a function of it alone."""
        shape = (count, len(self.seed_variables) + self._global_seed_rows, 2)
        if block_seed is None:
            return keras.random.randint(shape, 0, 2**31 - 1, seed=self.generator, dtype="int32")
        state = ops.cast(block_seed, self._block_generator.state.dtype)
        with keras.StatelessScope(state_mapping=[(self._block_generator.state, state)]):
            return keras.random.randint(shape, 0, 2**31 - 1, seed=self._block_generator, dtype="int32")

    def sample_once(self, frontier, copies, states, mapping=(), shard=None):
        """``postprocess`` of the outputs of ``copies`` tiled samples, with seed states ``states`` (variables, 2).

        ``mapping``: ``(variable, value)`` pairs the model's variables are read from (see `SamplingPass`);
        ``shard``: how tiled tensors are laid out over devices (see `GraphPlan.run_suffix`).
        """
        initial = {
            id(variable): ops.cast(states[index], variable.dtype) for index, variable in enumerate(self.seed_variables)
        }
        sampling_pass = SamplingPass(self.selection, initial, self.packed_masks, mapping, joint=self.joint)
        shared_copies = copies if self.joint else None
        with (
            _torch_generators(states[-1] if self._global_seed_rows else None),
            _sampling_context.selecting(self.selection.ids, shared_copies),
            keras.StatelessScope(state_mapping=mapping),
        ):
            outputs = self.plan.run_suffix(frontier, copies, sampling_pass, shard)
        silent = [layer.name for layer in self.selection.layers if id(layer) not in sampling_pass.drew]
        if silent:
            raise ValueError(
                f"MCDropout: the noise layers {silent} of model {self.model.name!r} drew no noise when the model ran "
                "(a subclassed model or layer that skips its dropout outside training?), so their noise cannot be "
                "sampled. Call the dropout layers unconditionally (they already do nothing at test time), or build "
                "the model with the functional or Sequential API."
            )
        return self.postprocess(outputs)

    def _sample_with_seed(self, frontier, copies, block_seed):
        return self._sample(frontier, copies, block_seed=block_seed)

    def _jax_sample(self, mapping, frontier, *block_seed_and_copies):
        """`_sample` as `_jax_jit` calls it: the block seed (under joint draws) before the static copies."""
        *block_seed, copies = block_seed_and_copies
        return self._sample(frontier, copies, block_seed[0] if block_seed else None, mapping)

    def _sample(self, frontier, copies, block_seed=None, mapping=()):
        self.trace_count += 1
        steps = self._steps(frontier, copies)
        if steps > 1:
            return self._sample_in_steps(frontier, copies, steps, mapping)
        states = self.draw_states(self.replicas if self.strategy is not None else 1, block_seed)
        if self.strategy is None:
            shard = self._shard if self.distribution is not None else None
            return self.sample_once(frontier, copies * self.replicas, states[0], mapping, shard)

        def replica_sample(frontier, copies, states):
            return self.sample_once(frontier, copies, ops.take(states, _compat.replica_id(), axis=0))

        per_replica = self.strategy.run(replica_sample, args=(frontier, copies, states))
        # Gathered across every replica, on every worker of a multi-worker strategy too, in replica order.
        return [self.strategy.gather(value, axis=0) for value in keras.tree.flatten(per_replica)]

    def _steps(self, frontier, copies):
        """In how many steps of equal size a JAX sampler on CPU draws its ``copies`` (1 elsewhere).

        On a CPU, XLA streams each large tensor through memory several times (a random draw over all the rows of
        a call, then the comparison, the selection, ...); a loop (``jax.lax.scan``) over steps of about
        `_CPU_STEP_BYTES` keeps each step's tensors in cache. Measured on the MLP of benchmarks/bench_mc.py: see
        docs/design.md. Accelerators, and a mesh of devices, take the call in one step.
        """
        if self.backend != "jax" or self.distribution is not None or not isinstance(copies, int) or copies < 2:
            return 1
        if self.joint:  # the steps depend on the batch size, and the networks of a sample may not
            return 1
        import jax

        if jax.default_backend() != "cpu":
            return 1
        flat = keras.tree.flatten(frontier)
        rows = max(1, _CPU_STEP_BYTES // self.plan.row_bytes(flat))
        largest = max(1, rows // max(1, int(flat[0].shape[0])))
        chunk = max(size for size in range(1, min(largest, copies) + 1) if copies % size == 0)
        return copies // chunk

    def _sample_in_steps(self, frontier, copies, steps, mapping):
        """`sample_once` in a ``jax.lax.scan`` of ``steps`` steps of ``copies // steps`` copies, each with seed states
        of its own; the outputs in the layout of one call (sample-major)."""
        import jax

        def step(carry, states):
            return carry, self.sample_once(frontier, copies // steps, states, mapping)

        _, outputs = jax.lax.scan(step, 0, self.draw_states(steps))
        return [ops.reshape(value, (-1, *value.shape[2:])) for value in outputs]

    def _shard(self, value):
        """``value`` (batch axis first) split along the batch axis of the distribution's mesh."""
        return keras.distribution.distribute_tensor(value, self.distribution.get_data_layout(value.shape))

    def _replicate(self, value):
        """``value`` held whole on every device of the distribution's mesh (a no-op when it already is)."""
        layout = keras.distribution.TensorLayout([None] * len(value.shape), self.distribution.device_mesh)
        return keras.distribution.distribute_tensor(value, layout)


# The size of the tensors of one step of a JAX sampler on CPU (see `Sampler._steps`).
_CPU_STEP_BYTES = 16 * 2**20

# The largest memory budget of one call of a PyTorch sampler on CPU (see `Sampler.rows_per_call`).
_TORCH_CPU_CALL_MB = 32


def _torch_on_cpu(model):
    """Whether a PyTorch model's weights (or, without weights, Keras's default device) are on the CPU."""
    import torch

    if model.weights:
        return model.weights[0].value.device.type == "cpu"
    return not torch.cuda.is_available()


def batch_devices(distribution):
    """How many devices of a ``keras.distribution.DataParallel`` share its batch axis (its data-parallel replicas)."""
    mesh = distribution.device_mesh
    return int(mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)])


def _variables_of(model, extra):
    """Every variable of ``model`` (weights, statistics, seed states) and of ``extra``, once each."""
    seen, variables = set(), []
    for variable in [*model.variables, *extra]:
        if id(variable) not in seen:
            seen.add(id(variable))
            variables.append(variable)
    return variables


def _compile(function, symbolic=None, copies=False, block_seed=False):
    """``function`` as a ``tf.function`` (TensorFlow backend).

    Its first argument is a list of tensors shaped like the KerasTensors ``symbolic`` with any batch size (and, with
    ``copies``, an int32 scalar after it; with ``block_seed``, an int32 ``(2,)`` seed after that), so it is traced
    once; without ``symbolic`` it retraces only when needed.
    """
    import tensorflow as tf

    def traced(*args):  # a function of its own: TensorFlow counts retracing per Python function, not per method
        return function(*args)

    if symbolic is None:
        return tf.function(traced, reduce_retracing=True)
    signature = [[tf.TensorSpec((None, *tuple(tensor.shape)[1:]), tensor.dtype) for tensor in symbolic]]
    if copies:
        signature.append(tf.TensorSpec((), "int32"))
    if block_seed:
        signature.append(tf.TensorSpec((2,), "int32"))
    return tf.function(traced, input_signature=signature)


def _jax_jit(function, variables, carried=(), static_copies=False, place=None):
    """``function(mapping, *args)`` as one ``jax.jit`` computation that takes every Keras variable it reads as an
    argument (JAX backend).

    ``mapping`` is the list of ``(variable, traced value)`` pairs of ``variables``; ``function`` runs in a
    ``keras.StatelessScope`` that holds them and the ``carried`` variables, and must pass ``mapping`` on to any
    stateless scope it opens. After each call the new values of the ``carried`` variables (MCDropout's seed state)
    are assigned; ``variables`` are only read, never written. Values read at call time, not at trace time: nothing
    goes stale, and no weight becomes a constant of the program. With ``static_copies`` the last argument is a
    static int. ``place``: None, or a function that puts each array argument where the program runs (the devices of
    a distribution). Calls of one compiled function take turns, so that two threads never start from the same seed
    state.
    """
    import jax

    variables, carried = list(variables), list(carried)

    def stateless(values, carried_values, *args):
        mapping = list(zip(variables, values, strict=True))
        with keras.StatelessScope(state_mapping=[*mapping, *zip(carried, carried_values, strict=True)]) as scope:
            outputs = function(mapping, *args)
        return outputs, [scope.get_current_value(variable) for variable in carried]

    jitted = {}  # by the number of arguments: the static copies come last
    lock = threading.Lock()

    def call(*args):
        arrays = args[:-1] if static_copies else args
        if len(args) not in jitted:
            jitted[len(args)] = jax.jit(stateless, static_argnums=(len(args) + 1,) if static_copies else ())
        with lock:
            values, carried_values = [v.value for v in variables], [v.value for v in carried]
            if place is not None:
                values, carried_values, arrays = jax.tree_util.tree_map(place, (values, carried_values, arrays))
            outputs, new_values = jitted[len(args)](values, carried_values, *arrays, *args[len(arrays) :])
            for variable, value in zip(carried, new_values, strict=True):
                variable.assign(value)
        return outputs

    return call


def _without_gradients(function):
    """``function`` run under ``torch.no_grad()`` (PyTorch backend): Monte Carlo samples need no autograd graph."""
    import torch

    def call(*args):
        with torch.no_grad():
            return function(*args)

    return call


def _tile(value, copies):
    return ops.tile(value, [copies] + [1] * (len(value.shape) - 1))
