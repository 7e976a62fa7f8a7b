"""Under keras.distribution.DataParallel (JAX, two host CPU devices: see conftest) every device draws its own masks,
in training and in Monte Carlo sampling."""

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop.mc.inputs import standardize
from tests import _mc_models as mcm
from tests import utils

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="keras.distribution.DataParallel is tested on JAX; TensorFlow's replicas are tested with MirroredStrategy "
    "in test_distribute.py",
)


@pytest.fixture
def data_parallel():
    """A DataParallel distribution over two devices, set for the test and unset after it."""
    devices = keras.distribution.list_devices()
    assert len(devices) >= 2, "conftest asks JAX for two host devices"
    distribution = keras.distribution.DataParallel(devices=devices[:2])
    keras.distribution.set_distribution(distribution)
    yield distribution
    keras.distribution.set_distribution(None)


def _classifier():
    inputs = keras.Input((8,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(16, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


def _devices_of(array):
    return {device.id for device in array.sharding.device_set}


def test_mc_samples_are_split_across_devices(data_parallel):
    x = np.random.default_rng(0).normal(size=(6, 8)).astype("float32")
    model = _classifier()
    split = kerasdrop.MCDropout(model, samples=400, seed=1)
    assert split.replicas == 2
    result = split.predict(x, verbose=0, keep_samples=True)
    assert result.samples.shape == (400, 6, 3)
    # One call spreads its samples over both devices: each holds the rows of its own 5 copies of the 6 inputs.
    inputs = standardize(split._sampler.plan, model, x)
    flat = split._sampler.sample(split._sampler.prefix(inputs), 5)
    assert flat[0].shape == (2 * 5 * 6, 3)
    assert _devices_of(flat[0]) == {0, 1}
    assert flat[0].sharding.shard_shape(flat[0].shape) == (5 * 6, 3)
    keras.distribution.set_distribution(None)
    single = kerasdrop.MCDropout(model, samples=400, seed=2)
    assert single.replicas == 1
    # One call pools both devices' samples, device 0's first: here 200 each, as the budget allows all 400 at once.
    mcm.assert_split_over_two_replicas(result, single.predict(x, verbose=0))
    assert len(np.unique(result.samples.reshape(400, -1), axis=0)) == 400
    # With one row a call (a tiny budget), each call gives one sample from each device.
    pair = kerasdrop.MCDropout(model, samples=2, seed=3, strategy=data_parallel, memory_budget_mb=1e-4)
    assert pair.replicas == 2  # the distribution passed in, none set
    samples = pair.predict(x[:1], verbose=0, keep_samples=True).samples
    assert not np.array_equal(samples[0], samples[1])


def test_noise_shared_across_the_batch_samples_on_one_device_at_a_time(data_parallel):
    # One rate a call for the whole batch: tiled copies would share it, so each call draws one sample, unsplit.
    inputs = keras.Input((6,))
    readout = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, readout(kerasdrop.StochasticDropout(0.5, 0.0)(inputs)))
    weights = np.array([0.5, -1.0, 2.0, 1.5, -0.3, 0.8], "float32")
    readout.set_weights([weights[:, None]])
    sampler = kerasdrop.MCDropout(model, samples=1000, seed=3)
    assert sampler.replicas == 1 and not sampler.vectorized
    x = np.array([[1.0, 2.0, 0.5, -1.0, 3.0, 1.2]], "float32")
    samples = sampler.predict(x, verbose=0, keep_samples=True).samples[:, 0, 0]
    terms = x[0].astype("float64") * weights
    utils.assert_mean_close(samples, terms.sum(), np.sqrt(np.sum(terms**2)))


@pytest.mark.slow
@pytest.mark.parametrize(
    "factory", [lambda: kerasdrop.Dropout(0.5, seed=1), lambda: kerasdrop.GaussianDropout(0.5, seed=1)]
)
def test_devices_draw_different_masks_in_fit(data_parallel, factory):
    # Eight equal rows: the batch is split over the devices, four rows each; each row gets a mask of its own,
    # the two halves included, and each step new ones.
    seen = utils.recorded_fit_outputs(factory(), np.ones((8, 64), "float32"))
    for step in seen:
        halves = step[:4], step[4:]
        assert not np.array_equal(*halves), "both devices drew the same noise"
        assert len(np.unique(step.reshape(8, -1), axis=0)) == 8
    assert not np.array_equal(seen[0], seen[1]), "a step repeated the noise of the one before"


@pytest.mark.slow
def test_model_trains_under_data_parallel(data_parallel):
    model = utils.train_noisy_digits_mlp()
    # The weights are laid out over both devices, as DataParallel replicates them.
    assert _devices_of(model.layers[0].kernel.value) == {0, 1}


@pytest.mark.slow
def test_kl_warmup_factor_reaches_the_sharded_training_step(data_parallel):
    """The factor is a replicated variable of the model's state: each epoch's loss follows the schedule."""
    layer = utils.warm_up_a_frozen_sparse_layer()
    assert _devices_of(layer.kl_factor.value) == {0, 1}
