"""The KL (or regularisation) term of the learned-noise layers, and the factor that warms it up.

Every layer that adds such a term to the model's losses owns a scalar, non-trainable float32 variable
``kl_factor`` (1 by default) that multiplies it. `kerasdrop.callbacks.KLWarmup` assigns it during training: a
variable is read by the compiled training step, so changing it needs no recompile and no retrace, and it is saved
with the model. The layer's ``kl_weight`` (or regularisers) stay the user's values in its config.
"""

import keras
import numpy as np
from keras import ops

from kerasdrop import _compat


class KLTerm:
    """Mixin of the layers with a KL term: builds ``kl_factor`` and adds ``kl_factor · term`` to the losses.

    It also saves and loads every variable of the layer's own (``kl_factor`` included), as ``keras.layers.Layer``
    does, whatever Keras layer the class is built on.
    """

    def build_kl_factor(self):
        """Creates ``kl_factor``; called last in ``build``, so that it follows the layer's other variables."""
        self.kl_factor = self.add_weight(
            name="kl_factor", shape=(), initializer="ones", trainable=False, autocast=False
        )

    def add_kl_loss(self, term):
        """Adds ``kl_factor · term`` to the layer's losses (``term`` already carries the layer's own weight)."""
        self.add_loss(ops.cast(self.kl_factor, term.dtype) * term)

    def _with_factor(self, variables, values, factor):
        """``values`` with ``factor`` inserted where ``kl_factor`` is in ``variables``, when exactly it is missing."""
        if len(values) != len(variables) - 1:
            return values
        position = next(index for index, variable in enumerate(variables) if variable is self.kl_factor)
        return [*values[:position], np.asarray(factor, "float32"), *values[position:]]

    def set_weights(self, weights):
        # A list without the factor (as `get_weights` gave before layers had one) keeps the current factor.
        super().set_weights(self._with_factor(self.weights, list(weights), ops.convert_to_numpy(self.kl_factor)))

    def save_own_variables(self, store):
        # Every variable of the layer's own, as `keras.layers.Layer` saves them: a Dense or Conv2D base would save
        # its kernel and bias only, and leave out `kl_factor` and the learned noise.
        keras.layers.Layer.save_own_variables(self, store)

    def load_own_variables(self, store):
        # Files saved before layers had a `kl_factor` hold one variable fewer: they load with the factor 1.
        own = _compat.own_variables(self)
        values = [np.asarray(store[key]) for key in sorted(store.keys(), key=int)]
        values = self._with_factor(own, values, 1.0)
        keras.layers.Layer.load_own_variables(self, {str(index): value for index, value in enumerate(values)})
