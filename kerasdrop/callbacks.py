"""Training helpers: a warm-up of the KL terms of the learned-noise layers.

Trained from random weights with the ELBO's weight (``kl_weight = 1 / N`` for N training samples), a network of
`SparseVariationalDense` layers is pushed by its KL term to prune weights before they have learned anything.
`KLWarmup` lets the data term lead at first (the warm-up of Sønderby et al. 2016): the KL term of every such layer
is multiplied by a factor that grows linearly to 1 over the first epochs.
"""

import keras

from kerasdrop import _compat
from kerasdrop._validation import check_float, check_positive_int
from kerasdrop.layers._kl_term import KLTerm


def kl_layers(model_or_layer):
    """Every layer inside ``model_or_layer`` (itself included) that adds a KL or regularisation term.

    These are `VariationalDense`, `SparseVariationalDense`, `SparseVariationalConv2D`, `StructuredBayesianPruning`,
    `ConcreteDropout` and `ConcreteSpatialDropout2D`, each with a ``kl_factor`` variable multiplying its term.
    """
    return [layer for layer in _compat.flatten_layers(model_or_layer) if isinstance(layer, KLTerm)]


def set_kl_factor(model_or_layer, factor):
    """Sets the factor of the KL term of every layer inside ``model_or_layer`` that has one; returns how many.

    The factor is a variable of each layer, read by compiled training steps: the next step uses it without any
    retrace. It is saved with the model; ``set_kl_factor(model, 1.0)`` restores the full term after a warm-up that
    was cut short.

    Args:
        model_or_layer: a Keras model or layer.
        factor: float in [0, 1].
    """
    factor = check_float("factor", factor, 0.0, 1.0)
    layers = kl_layers(model_or_layer)
    for layer in layers:
        layer.kl_factor.assign(factor)
    return len(layers)


class KLWarmup(keras.callbacks.Callback):
    """Warms up the KL terms of a model's learned-noise layers: a factor from ``start`` to 1 over ``epochs`` epochs.

    At the start of epoch ``e`` (counted from 0, as `fit` counts them, ``initial_epoch`` included) the KL term of
    every layer that has one (`VariationalDense`, `SparseVariationalDense`, `SparseVariationalConv2D`,
    `StructuredBayesianPruning`, `ConcreteDropout`, `ConcreteSpatialDropout2D`) is multiplied by

        ``start + (1 - start) · min(e, epochs) / epochs``

    so the first epoch trains with ``start`` times the term and epoch ``epochs`` onwards with the whole of it. The
    factor lives in each layer's non-trainable ``kl_factor`` variable: changing it needs no recompile and no
    retrace, and the layers' ``kl_weight`` in their configs stays yours. The factor is logged as ``kl_factor``.
    The variable is saved with the model, so a model saved during the warm-up reloads with the factor it had:
    resume with this callback and ``fit(..., initial_epoch=...)``, or call ``set_kl_factor(model, 1.0)``.

    Args:
        epochs: positive int, the number of epochs of the warm-up.
        start: float in [0, 1], the factor of the first epoch.

    Example:

    ```python
    n = len(x_train)
    model = keras.Sequential([
        keras.Input((64,)),
        kerasdrop.SparseVariationalDense(300, activation="relu", kl_weight=1 / n),
        kerasdrop.SparseVariationalDense(10, activation="softmax", kl_weight=1 / n),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=200, callbacks=[kerasdrop.callbacks.KLWarmup(epochs=100)])
    ```
    """

    def __init__(self, epochs, start=0.0):
        super().__init__()
        self.epochs = check_positive_int("epochs", epochs)
        self.start = check_float("start", start, 0.0, 1.0)

    def factor(self, epoch):
        """The factor of epoch ``epoch`` (from 0), a Python float."""
        return self.start + (1.0 - self.start) * min(epoch, self.epochs) / self.epochs

    def on_train_begin(self, logs=None):
        if not kl_layers(self.model):
            raise ValueError(
                f"KLWarmup found no layer with a KL term in model {self.model.name!r}. It warms up those of "
                "VariationalDense, SparseVariationalDense, SparseVariationalConv2D, StructuredBayesianPruning, "
                "ConcreteDropout and ConcreteSpatialDropout2D layers."
            )

    def on_epoch_begin(self, epoch, logs=None):
        set_kl_factor(self.model, self.factor(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["kl_factor"] = self.factor(epoch)
