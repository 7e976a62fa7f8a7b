"""Noise in layers `kerasdrop.MCDropout` does not know: a layer that takes ``training`` and draws noise when called
with ``training=True`` (keras.applications' ``StochasticDepth``, a layer of the user's own) is found by running it
on a probe input in a ``keras.StatelessScope``, without changing it, and then sampled or named in a warning."""

import warnings

import keras
import numpy as np
from keras import ops

from kerasdrop import _compat
from kerasdrop.layers._base import StochasticLayer
from kerasdrop.mc import compile


class TrainingNoise:
    """The layers of ``model`` that draw noise when called with ``training=True`` but are no known noise layer.

    Each layer that holds no layers, takes ``training`` and is neither a kerasdrop layer, nor a Keras layer of
    ``keras.layers`` (whose noise layers are known; its random augmentation layers are no model noise), nor inside
    a known noise layer, is run in training on a probe input (`probe_training_noise`) from different seed states,
    in a ``keras.StatelessScope``: nothing of it changes. It makes noise when the outputs differ.

    Attributes:
        sampled: the layers that make noise and can be sampled (a training call changes no other state).
        unsafe: dict ``layer -> what to do`` of those that make noise but cannot be sampled as they are: a training call
            also changes their state (e.g. statistics), or, on JAX, they draw unseeded random numbers.
        unseeded: ``id`` of the layers that draw from Keras's global seed generator (random ops with ``seed=None``).
    """

    def __init__(self, model, known):
        covered = {id(sub) for layer in known for sub in _compat.flatten_layers(layer)}
        self.sampled, self.unsafe, self.unseeded = [], {}, set()
        for layer in _compat.flatten_layers(model):
            if id(layer) in covered or layer is model or not _may_draw_in_training(layer):
                continue
            probed = probe_training_noise(layer)
            if probed is None or not probed.stochastic:
                continue
            if probed.unseeded:
                self.unseeded.add(id(layer))
            if probed.changed:
                self.unsafe[layer] = (
                    f"its training call also changes its variables {probed.changed}, which sampling never does. Pass "
                    "it in `stochastic_layers=[...]` (with the other noise layers) to sample it anyway (its variables "
                    "stay as they are), or use a kerasdrop layer for its noise"
                )
            elif probed.unseeded and not compile.traces_unseeded_draws():
                self.unsafe[layer] = (
                    "it draws unseeded random numbers (a `keras.random` op without `seed=`), which JAX cannot trace. "
                    "Give it a `keras.random.SeedGenerator` and pass that as `seed=`, or use a kerasdrop layer for its "
                    "noise"
                )
            else:
                self.sampled.append(layer)

    def warn_unsampled(self):
        """Warns of each layer that makes noise but is not sampled (called when the user selects nothing)."""
        for layer, advice in self.unsafe.items():
            warnings.warn(
                f"MCDropout does not sample layer {layer.name!r} ({type(layer).__name__}): it draws noise when called "
                f"with training=True, but {advice}. Until then its noise is left out, and the spread of the samples "
                "is too small.",
                UserWarning,
                stacklevel=4,  # this, Selection, MCDropout, the user's call
            )


def _may_draw_in_training(layer):
    if isinstance(layer, StochasticLayer) or _compat.sublayers(layer):
        return False
    if _compat.is_keras_layer(layer) or type(layer).__module__.startswith("kerasdrop."):
        return False
    return _compat.call_takes_training(layer)


# The batch size of a probe input, and how many training calls at most tell a layer's noise from no noise.
_PROBE_BATCH = 8
_PROBE_TRIES = 8


class Probe:
    """What `probe_training_noise` found: ``stochastic``, ``changed`` (names of variables), ``unseeded``."""

    def __init__(self, stochastic, changed, unseeded):
        self.stochastic = stochastic
        self.changed = changed
        self.unseeded = unseeded


def probe_training_noise(layer, tries=_PROBE_TRIES):
    """How ``layer`` behaves when called with ``training=True``, found without changing it, or None when it cannot
    run on a probe input (shaped like its input in the model, or at build, with a batch of `_PROBE_BATCH`).

    The layer's ``call`` runs in a ``keras.StatelessScope`` that maps its variables to their values and its seed
    generators (and Keras's global one, which random ops with ``seed=None`` draw from) to a state of the probe's;
    the new values stay in the scope. It is stochastic when a run from other seed states gives another output
    (up to ``tries`` runs: a rare event, say a row dropped with probability 0.01, can agree a few times).
    """
    inputs = _probe_inputs(layer) if layer.built else None
    if inputs is None:
        return None
    generators = [*_compat.seed_generators(layer), _compat.global_seed_generator()]
    seeds = {id(generator.state) for generator in generators}
    variables = [variable for variable in layer.variables if id(variable) not in seeds]
    try:
        first, values, unseeded = _run_in_training(layer, inputs, variables, generators, 1)
        stochastic = False
        for start in range(2, tries + 1):
            outputs = _run_in_training(layer, inputs, variables, generators, start)[0]
            stochastic = len(outputs) != len(first) or any(
                a.shape != b.shape or not np.array_equal(a, b) for a, b in zip(outputs, first, strict=True)
            )
            if stochastic:
                break
    except Exception:  # a layer that cannot run on the probe (other arguments, other inputs): nothing is known
        return None
    changed = [
        variable.path
        for variable, value in zip(variables, values, strict=True)
        if not np.array_equal(value, variable.numpy())
    ]
    return Probe(stochastic, changed, unseeded)


def _run_in_training(layer, inputs, variables, generators, start):
    """``(outputs, variable values, whether the global seed generator moved)`` of one training call of ``layer``,
    all NumPy, with the seed generators at states made from ``start`` (the global one last)."""
    states = [
        (generator.state, ops.convert_to_tensor(np.array([start * 7919 + index, start]), generator.state.dtype))
        for index, generator in enumerate(generators)
    ]
    with keras.StatelessScope(state_mapping=[(variable, variable.value) for variable in variables] + states) as scope:
        outputs = layer.call(inputs, training=True)
    global_state, global_start = states[-1]
    return (
        [ops.convert_to_numpy(value) for value in keras.tree.flatten(outputs)],
        [ops.convert_to_numpy(scope.get_current_value(variable)) for variable in variables],
        not np.array_equal(
            ops.convert_to_numpy(scope.get_current_value(global_state)), ops.convert_to_numpy(global_start)
        ),
    )


def _probe_inputs(layer):
    try:
        symbolic = layer.input
    except (AttributeError, ValueError):  # never called in a graph, or called on several inputs
        symbolic = None
    if symbolic is not None:
        return keras.tree.map_structure(lambda tensor: _probe_array(tensor.shape, tensor.dtype), symbolic)
    shape = (layer.get_build_config() or {}).get("input_shape")
    if isinstance(shape, (list, tuple)) and all(dim is None or isinstance(dim, int) for dim in shape):
        return _probe_array(shape, layer.compute_dtype)
    return None


def _probe_array(shape, dtype):
    dims = [_PROBE_BATCH if dim is None else int(dim) for dim in shape]
    size = int(np.prod(dims))
    return ops.convert_to_tensor(np.linspace(0.5, 1.5, size).reshape(dims), dtype)
