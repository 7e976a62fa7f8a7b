"""The weight-noise and learned-noise layers under tf.distribute.MirroredStrategy (two logical CPUs, see conftest)."""

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop.datasets import load_digits
from tests import backend

pytestmark = backend.tensorflow_only("tf.distribute")

LAYERS = {
    "DropConnectDense": lambda: kerasdrop.DropConnectDense(8, 0.5, seed=1),
    "DropConnectDense-per_sample": lambda: kerasdrop.DropConnectDense(8, 0.5, per_sample=True, seed=1),
    "StandoutDense": lambda: kerasdrop.StandoutDense(8, bias_initializer="ones", seed=1),
    "FastDropoutDense": lambda: kerasdrop.FastDropoutDense(8, 0.5, seed=1),
    "VariationalDense": lambda: kerasdrop.VariationalDense(8, seed=1),
    "SparseVariationalDense": lambda: kerasdrop.SparseVariationalDense(8, seed=1),
    "ConcreteDropout": lambda: kerasdrop.ConcreteDropout(keras.layers.Dense(8), seed=1),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_replicas_draw_different_noise(strategy, name):
    import tensorflow as tf

    with strategy.scope():
        layer = LAYERS[name]()
        layer.build((None, 16))

    @tf.function
    def step(x):
        return strategy.run(lambda v: layer(v, training=True), args=(x,))

    x = tf.ones((8, 16))
    first, second = ([value.numpy() for value in strategy.experimental_local_results(step(x))] for _ in range(2))
    assert not np.array_equal(first[0], first[1]), "both replicas drew the same noise"
    assert not np.array_equal(first[0], second[0]), "a replica repeated its noise on the next step"


def test_model_with_kl_losses_trains_under_mirrored_strategy(strategy):
    (x, y), _ = load_digits()
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
    assert losses[-1] < 0.7 * losses[0]
