"""The noise layers of a model: which layers make noise, which of them `kerasdrop.MCDropout` samples, and what it
takes to run a layer so that exactly those sample.

A *noise layer* is the smallest layer that owns a source of noise: a kerasdrop layer, Keras's ``Dropout`` (and
``SpatialDropout1D/2D/3D``), ``GaussianDropout``, ``GaussianNoise``, ``AlphaDropout``, a ``MultiHeadAttention`` with
attention dropout, or an RNN layer whose cells drop inputs or states. Noise layers whose rates are all 0 are
*inert*: they never change their input and never count as sampling.

Any other layer that draws noise when called with ``training=True`` (keras.applications' ``StochasticDepth``, a
layer of the user's own) is found by running it on a probe input, without changing it (`kerasdrop.mc.probe`).
"""

import keras

from kerasdrop import _compat
from kerasdrop._validation import _message
from kerasdrop.layers._base import StochasticLayer
from kerasdrop.mc.probe import TrainingNoise

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

        kerasdrop layers sample through `kerasdrop._context`, whatever ``training`` is; Keras's noise
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
    if _compat.is_keras_preprocessing_layer(layer):
        return _compat.call_takes_training(layer)
    if type(layer).__module__.startswith("keras."):
        return False
    return not _compat.sublayers(layer) and _compat.call_takes_training(layer)


_TRAINING_LAYERS = (keras.layers.BatchNormalization, keras.layers.SpectralNormalization)


def _in_model_order(model, known, found):
    """The known noise layers, and after them in the model's order the other noise layers ``found``."""
    if not found:
        return known
    position = {id(layer): index for index, layer in enumerate(_compat.flatten_layers(model))}
    return sorted([*known, *found], key=lambda layer: position[id(layer)])
