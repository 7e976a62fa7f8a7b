"""The noise layers of a model: which layers make noise, which of them `kerasdrop.MCDropout` samples, and what it
takes to run a layer so that exactly those sample.

A *noise layer* is the smallest layer that owns a source of noise: a kerasdrop layer, Keras's ``Dropout`` (and
``SpatialDropout1D/2D/3D``), ``GaussianDropout``, ``GaussianNoise``, ``AlphaDropout``, a ``MultiHeadAttention`` with
attention dropout, or an RNN layer whose cells drop inputs or states. Noise layers whose rates are all 0 are
*inert*: they never change their input and never count as sampling.

Any other layer that draws noise when called with ``training=True`` (keras.applications' ``StochasticDepth``, a
layer of the user's own) is found by running it on a probe input, without changing it (`probe_training_noise`).
"""

import warnings

import keras
import numpy as np
from keras import ops

from kerasdrop import _compat
from kerasdrop._validation import _message
from kerasdrop.layers._base import StochasticLayer

KERAS_NOISE_LAYERS = (
    keras.layers.Dropout,  # and SpatialDropout1D/2D/3D, its subclasses
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
)
SUPPORTED = (
    "kerasdrop layers, and Keras's Dropout, SpatialDropout1D/2D/3D, GaussianDropout, GaussianNoise, AlphaDropout, "
    "MultiHeadAttention(dropout=...) and RNN layers with dropout or recurrent_dropout"
)
# Attributes that hold a noise strength (0: no noise) in Keras's and kerasdrop's noise layers and their RNN cells.
_STRENGTHS = (
    "rate",
    "dropout",
    "recurrent_dropout",
    "cell_dropout",
    "mean_rate",
    "stddev",
    "zoneout",
    "cell_zoneout",
    "hidden_zoneout",
)


def _cells(rnn):
    return getattr(rnn.cell, "cells", [rnn.cell])


def is_noise_layer(layer):
    if isinstance(layer, keras.layers.RNN):
        return any(isinstance(cell, StochasticLayer) or any(_strengths(cell)) for cell in _cells(layer))
    if isinstance(layer, keras.layers.MultiHeadAttention):
        return True
    return isinstance(layer, (StochasticLayer, *KERAS_NOISE_LAYERS))


def _strengths(layer):
    """The numeric noise strengths of ``layer`` (and of its RNN cells)."""
    owners = _cells(layer) if isinstance(layer, keras.layers.RNN) else [layer]
    values = [getattr(owner, name, None) for owner in owners for name in _STRENGTHS]
    return [value for value in values if isinstance(value, (int, float)) and not isinstance(value, bool)]


def is_inert(layer):
    """True when every noise strength of ``layer`` (and of its RNN cells) is 0, so it never changes its input."""
    strengths = _strengths(layer)
    return bool(strengths) and all(value == 0 for value in strengths)


def noise_layers(layer):
    """The noise layers inside ``layer`` (itself included), outermost first; nothing inside a noise layer."""
    if is_noise_layer(layer):
        return [layer]
    found = []
    for sublayer in _compat.sublayers(layer):
        found.extend(item for item in noise_layers(sublayer) if all(item is not other for other in found))
    return found


def shares_noise_across_batch(layer):
    """True when one draw of the layer's noise serves the whole batch, so samples cannot be stacked in one batch."""
    if isinstance(layer, StochasticLayer):
        return layer.noise_shared_across_batch
    noise_shape = getattr(layer, "noise_shape", None)
    return noise_shape is not None and noise_shape[0] is not None


class Selection:
    """The noise layers of ``model`` that sample, from the user's ``stochastic_layers`` (None: all of them).

    Besides the known noise layers, the layers found to draw noise in training (`TrainingNoise`) sample: all those
    whose training call changes nothing else, and any the user names; the others are warned about.

    Attributes:
        layers: the selected noise layers that are not inert, in model order.
        ids: ``id`` of each of them and of every layer inside them (what the kerasdrop layers ask about).
    """

    def __init__(self, model, stochastic_layers=None):
        self.model = model
        known = [layer for layer in noise_layers(model) if layer is not model]
        found = TrainingNoise(model, known)
        if stochastic_layers is None:
            found.warn_unsampled()
            everything = _in_model_order(model, known, found.sampled)
        else:  # what the user names samples, a layer whose training call changes its state included
            everything = _in_model_order(model, known, [*found.sampled, *found.unsafe])
        if not everything:
            raise ValueError(
                f"MCDropout found no noise layer in model {model.name!r}, so every sample would be the same. It "
                f"samples through {SUPPORTED}. Add one, e.g. `keras.layers.Dropout(0.5)` or `kerasdrop.Dropout(0.5)` "
                "before the last Dense layer, and train the model with it."
            )
        candidates = everything if stochastic_layers is None else self._resolve(everything, stochastic_layers)
        self.layers = [layer for layer in candidates if not is_inert(layer)]
        if not self.layers:
            what = "every noise layer of" if stochastic_layers is None else "every noise layer selected in"
            raise ValueError(
                f"MCDropout: {what} model {model.name!r} has rate 0 "
                f"({', '.join(repr(layer.name) for layer in candidates)}), so every sample would be the same. "
                "Select noise layers that drop something, or train the model with a dropout rate above 0."
            )
        self.ids = {id(sub) for layer in self.layers for sub in _compat.flatten_layers(layer)}
        self._unseeded = found.unseeded
        self._inside = {}

    def _resolve(self, everything, requested):
        if isinstance(requested, (str, keras.layers.Layer)):
            requested = [requested]
        if not isinstance(requested, (list, tuple)) or not requested:
            raise TypeError(
                _message("stochastic_layers", "None, or a non-empty list of layers or layer names", requested)
            )
        all_layers = _compat.flatten_layers(self.model)
        chosen = []
        for item in requested:
            if isinstance(item, str):
                matches = [layer for layer in all_layers if layer.name == item]
            elif isinstance(item, keras.layers.Layer):
                matches = [layer for layer in all_layers if layer is item]
            else:
                raise TypeError(
                    _message("stochastic_layers", "a list of layers or layer names", requested)
                    + f" (the entry {item!r} is a {type(item).__name__})"
                )
            names = [layer.name for layer in everything]
            if not matches:
                raise ValueError(
                    _message("stochastic_layers", f"layers of model {self.model.name!r}", requested)
                    + f": it has no layer {getattr(item, 'name', item)!r}. Its noise layers are {names}"
                )
            found = [noise for noise in everything for match in matches if self._related(noise, match)]
            if not found:
                raise ValueError(
                    _message("stochastic_layers", "noise layers, or layers that contain some", requested)
                    + f": layer {getattr(item, 'name', item)!r} holds no noise layer. The model's noise layers are "
                    f"{names}"
                )
            chosen.extend(layer for layer in found if all(layer is not other for other in chosen))
        return [layer for layer in everything if any(layer is other for other in chosen)]

    @staticmethod
    def _related(noise, layer):
        """A noise layer is selected by itself, by any layer around it, and by any layer inside it."""
        return any(sub is layer for sub in _compat.flatten_layers(noise)) or any(
            sub is noise for sub in _compat.flatten_layers(layer)
        )

    def inside(self, layer):
        """The selected noise layers inside ``layer`` (itself included)."""
        key = id(layer)
        if key not in self._inside:
            contained = {id(sub) for sub in _compat.flatten_layers(layer)}
            self._inside[key] = [noise for noise in self.layers if id(noise) in contained]
        return self._inside[key]

    def seed_variables(self, layer):
        """The seed-state variables of the selected noise layers inside ``layer``, one list per noise layer (Keras's
        global seed generator's for a layer that draws with ``seed=None``)."""
        return [
            [generator.state for sub in _compat.flatten_layers(noise) for generator in self._generators(sub)]
            for noise in self.inside(layer)
        ]

    def _generators(self, layer):
        own = _compat.seed_generators(layer)
        return [*own, _compat.global_seed_generator()] if id(layer) in self._unseeded else own

    def training_for(self, layer):
        """The ``training`` value to call ``layer`` with so that exactly the selected noise inside it samples.

        kerasdrop layers sample through `kerasdrop._sampling_context`, whatever ``training`` is; Keras's noise
        layers need ``training=True``. That is only possible when nothing else inside ``layer`` behaves differently
        in training (BatchNormalization, an unselected noise layer, a custom layer that takes ``training``):
        otherwise a clear error. Layers that hold other layers are taken to pass ``training`` on, and judged by
        what they hold.
        """
        keras_noise = [noise for noise in self.inside(layer) if not isinstance(noise, StochasticLayer)]
        if not keras_noise:
            return False
        selected = {id(sub) for noise in self.inside(layer) for sub in _compat.flatten_layers(noise)}
        others = [
            sub
            for sub in _compat.flatten_layers(layer)
            if sub is not layer and id(sub) not in selected and _changes_in_training(sub)
        ]
        if others:
            names = [noise.name for noise in keras_noise]
            raise ValueError(
                f"MCDropout cannot sample {names} inside layer {layer.name!r} ({type(layer).__name__}): Keras's noise "
                f"layers only sample with training=True, and {layer.name!r} would pass it on to "
                f"{[f'{sub.name} ({type(sub).__name__})' for sub in others]}, which would then run as in training "
                "(BatchNormalization with batch statistics, other dropout sampling). Use kerasdrop's layers of the "
                "same name there (they sample under MCDropout whatever `training` is), or build the model with the "
                "functional API so that each layer is called on its own."
            )
        return True


def _changes_in_training(layer):
    """Whether ``layer`` itself computes something else when called with ``training=True``.

    Keras's own layers: noise layers that are not inert, attention layers with dropout, normalization that learns
    in training (BatchNormalization, SpectralNormalization) and random augmentation (the preprocessing layers that
    take ``training``). Other layers that hold no layers and take ``training`` are assumed to use it.
    kerasdrop layers never: under MCDropout they sample as selected, whatever ``training`` is.
    """
    if isinstance(layer, StochasticLayer) or is_inert(layer):
        return False
    if is_noise_layer(layer) or any(_strengths(layer)):
        return True
    if isinstance(layer, _TRAINING_LAYERS):
        return True
    module = type(layer).__module__
    if module.startswith("keras.src.layers.preprocessing"):
        return _compat.call_takes_training(layer)
    if module.startswith("keras."):
        return False
    return not _compat.sublayers(layer) and _compat.call_takes_training(layer)


_TRAINING_LAYERS = (keras.layers.BatchNormalization, keras.layers.SpectralNormalization)


def _in_model_order(model, known, found):
    """The known noise layers, and after them in the model's order the other noise layers ``found``."""
    if not found:
        return known
    position = {id(layer): index for index, layer in enumerate(_compat.flatten_layers(model))}
    return sorted([*known, *found], key=lambda layer: position[id(layer)])


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
            elif probed.unseeded and keras.backend.backend() == "jax":
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
    if type(layer).__module__.startswith(("keras.src.layers.", "kerasdrop.")):
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
