"""One pass of the stochastic part of a model: each layer with selected noise called so that exactly that noise
samples, from the seed states the pass hands it.

- every layer with selected noise runs inside a ``keras.StatelessScope`` that hands its seed generators states drawn
  from MCDropout's own generator; the new states stay in the scope, so the model's seed states never move;
- plain Bernoulli ``Dropout`` layers (Keras's and kerasdrop's) whose keep probability is dyadic (0.5, 0.25, 0.75, ...)
  get their masks from `kerasdrop.ops.packed_bernoulli_mask` instead of their own call: same distribution, far fewer
  random numbers;
- under joint draws, Keras's noise layers and RNNs are computed by `kerasdrop.mc.joint_draws` from their own config,
  weights and seed states;
- every other layer is called with the ``training`` value it needs (`deterministic_call`, or
  `Selection.training_for` for layers that hold noise).

Each selected noise layer must draw noise in a pass (its seed state must move in the scope): `SamplingPass.drew`
tells which did.
"""

import keras
from keras import ops

from kerasdrop import _compat, _context
from kerasdrop import ops as kd_ops
from kerasdrop.layers._base import check_float_inputs
from kerasdrop.layers.dropout import Dropout as KerasdropDropout
from kerasdrop.mc import compile
from kerasdrop.mc import joint_draws as _joint_draws


def packed_dropout_scale(layer):
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


def packed_dropout(layer, scale, inputs, copies=None):
    """Packed-mask dropout of ``inputs``; with ``copies``, of ``copies`` tiled copies of them, without making the
    tiled tensor: the mask ``(copies, batch, ...)`` selects from the inputs broadcast along its first axis.
    Dropped units are exactly 0 (a selection, not a product: inf and NaN included)."""
    check_float_inputs(layer, inputs)
    shape = kd_ops.resolve_noise_shape(inputs, layer.noise_shape)
    keep = 1.0 - float(layer.rate)
    if copies is not None:
        # The mask of every copy, (copies, batch, ...); under joint draws one per copy, (copies, 1, ...).
        shared = _context.shared_copies() is not None
        mask_shape = (copies, 1, *tuple(shape)[1:]) if shared else (copies, *shape)
    if compile.multiplies_masks(inputs):
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


def _own_mask_dropout(layer, inputs, *args, **kwargs):
    check_float_inputs(layer, inputs)
    return kd_ops.dropout(inputs, float(layer.rate), noise_shape=layer.noise_shape, seed=layer.seed_generator)


def deterministic_call(operation, args, kwargs):
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
        joint: bool, whether the rows of each sample share their draws (see `kerasdrop.mc.joint_draws`): Keras's
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
            return deterministic_call(operation, args, kwargs)
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
        scale = packed_dropout_scale(layer) if self.packed_masks else None
        seeds = [(v, self.states[id(v)]) for v in variables]
        generators = None
        with keras.StatelessScope(state_mapping=[*self.mapping, *seeds]) as scope:  # later pairs win
            before = {id(v): scope.get_current_value(v) for v in variables}
            if scale is not None:
                outputs = packed_dropout(layer, scale, *args, copies=copies)
            elif self.joint and _joint_draws.runs_itself(layer):
                outputs = _joint_draws.shared_noise_output(layer, args, kwargs)
            elif compile.draws_from_global_generator(layer):
                outputs = _own_mask_dropout(layer, *args)
            else:
                if _compat.takes_training(layer):
                    kwargs["training"] = self.selection.training_for(layer)
                generators = compile.global_generator_states()
                outputs = layer(*args, **kwargs)
        for variable in variables:
            self.states[id(variable)] = scope.get_current_value(variable)
        global_draw = compile.global_generators_moved(generators)
        for noise, group in zip(self.selection.inside(layer), groups, strict=True):
            if global_draw or any(scope.get_current_value(v) is not before[id(v)] for v in group):
                self.drew.add(id(noise))
        return outputs
