"""Under tf.distribute.MirroredStrategy each replica draws its own masks (two logical CPUs, see conftest).

JAX's data parallelism (``keras.distribution.DataParallel``) is tested in test_distribution_jax.py.
"""

import keras
import numpy as np
import pytest

import kerasdrop
from tests import _mc_models as mcm
from tests import backend, utils

tensorflow_only = backend.tensorflow_only("tf.distribute")

REPLICA_LAYERS = {
    "Dropout": lambda: kerasdrop.Dropout(0.5, seed=1),
    "Dropout-weight_scaling": lambda: kerasdrop.Dropout(0.5, scaling="weight_scaling", seed=1),
    "GaussianDropout": lambda: kerasdrop.GaussianDropout(0.5, seed=1),
    "StochasticDropout": lambda: kerasdrop.StochasticDropout(0.5, 0.2, seed=1),
}


@tensorflow_only
@pytest.mark.parametrize("name", list(REPLICA_LAYERS))
def test_replicas_draw_different_masks(strategy, name):
    with strategy.scope():
        layer = REPLICA_LAYERS[name]()
    utils.assert_replicas_draw_their_own_noise(strategy, layer, np.ones((8, 64), "float32"))


@tensorflow_only
def test_keras_dropout_shares_masks_across_replicas(strategy):
    """The Keras behaviour we correct: without the replica index in the seed, replicas repeat each other."""
    with strategy.scope():
        layer = keras.layers.Dropout(0.5, seed=1)
    first_step, _ = utils.per_replica_training_outputs(strategy, layer, np.ones((8, 64), "float32"))
    np.testing.assert_array_equal(first_step[0], first_step[1])


def test_single_device_seeds_unchanged_by_replica_logic():
    """Outside a strategy our masks are exactly those of a Keras SeedGenerator with the same seed."""
    x = np.ones((6, 32), "float32")
    ours = kerasdrop.Dropout(0.5, seed=9)
    generator = keras.random.SeedGenerator(9)
    for _ in range(2):
        expected_mask = keras.ops.cast(keras.random.uniform((6, 32), seed=generator) < 0.5, "float32") * 2.0
        np.testing.assert_array_equal(utils.train_call(ours, x), utils.to_numpy(expected_mask))


@pytest.mark.slow
@tensorflow_only
def test_model_trains_under_mirrored_strategy(strategy):
    utils.train_noisy_digits_mlp(strategy.scope())


# ---------------------------------------------------------------- MCDropout across replicas


@tensorflow_only
def test_mc_samples_are_split_across_replicas(strategy):
    import tensorflow as tf

    x = np.random.default_rng(0).normal(size=(6, 8)).astype("float32")
    inputs = keras.Input((8,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(16, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    split = kerasdrop.MCDropout(model, samples=400, seed=1, strategy=strategy)
    assert split.replicas == 2
    result = split.predict(x, verbose=0, keep_samples=True)
    assert result.samples.shape == (400, 6, 3)
    single = kerasdrop.MCDropout(model, samples=400, seed=2, strategy=tf.distribute.get_strategy())
    assert single.replicas == 1
    # One call pools both replicas' samples, replica 0's first: here 200 each, as the budget allows all 400 at once.
    mcm.assert_split_over_two_replicas(result, single.predict(x, verbose=0))
    # With one row a call (a tiny budget), each call gives one sample from each replica.
    pair = kerasdrop.MCDropout(model, samples=2, seed=3, strategy=strategy, memory_budget_mb=1e-4)
    samples = pair.predict(x[:1], verbose=0, keep_samples=True).samples
    assert not np.array_equal(samples[0], samples[1])


@pytest.mark.slow
@tensorflow_only
def test_kl_warmup_sets_the_factor_of_every_replica(strategy):
    """Under a MirroredStrategy the factor is one mirrored variable: each epoch's loss follows the schedule."""
    layer = utils.warm_up_a_frozen_sparse_layer(strategy.scope())
    assert [float(value.numpy()) for value in strategy.experimental_local_results(layer.kl_factor.value)] == [1.0, 1.0]
