"""The weight-noise and learned-noise layers under tf.distribute.MirroredStrategy (two logical CPUs, see conftest)."""

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop.datasets import load_digits
from tests import backend, utils
from tests.layers import every_layer

pytestmark = backend.tensorflow_only("tf.distribute")

# Configurations of `tests.layers.every_layer`.
LAYERS = [
    "DropConnectDense",
    "DropConnectDense-per_sample",
    "StandoutDense",
    "FastDropoutDense",
    "VariationalDense",
    "SparseVariationalDense",
    "ConcreteDropout",
]


@pytest.mark.parametrize("name", LAYERS)
def test_replicas_draw_different_noise(strategy, name):
    with strategy.scope():
        layer = every_layer.make(name, seed=1)
        layer.build((None, 16))
    utils.assert_replicas_draw_their_own_noise(strategy, layer, np.ones((8, 16), "float32"))


@pytest.mark.slow
def test_model_with_kl_losses_trains_under_mirrored_strategy(strategy):
    (x, y), (x_test, y_test) = load_digits()
    x, y = x[:512], y[:512]
    with strategy.scope():
        model = keras.Sequential(
            [
                keras.Input((64,)),
                kerasdrop.ConcreteDropout(keras.layers.Dense(32, activation="relu"), seed=1),
                kerasdrop.DropConnectDense(32, 0.3, activation="relu", seed=2),
                kerasdrop.SparseVariationalDense(10, kl_weight=1.0 / len(x), seed=3),
            ]
        )
        model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = model.fit(x, y, epochs=4, batch_size=64, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))
    accuracy = float(np.mean(model.predict(x_test, verbose=0).argmax(axis=-1) == y_test))
    utils.assert_above_chance(accuracy, len(y_test), 10)
