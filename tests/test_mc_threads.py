"""One MCDropout shared by several threads: every call draws samples of its own, from the same distribution."""

import threading

import keras
import numpy as np
import pytest

import kerasdrop
from tests import _mc_models as mcm
from tests import backend, utils

THREADS, ROUNDS, SAMPLES = 4, 10, 10


def _mlp():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(16, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3)(hidden))


def _recurrent(layer):
    inputs = keras.Input((5, 3))
    return keras.Model(inputs, keras.layers.Dense(2)(layer(inputs)))


MODELS = {
    "MLP with Keras's Dropout": _mlp,
    "Keras's LSTM": lambda: _recurrent(keras.layers.LSTM(4, dropout=0.3, recurrent_dropout=0.3)),
    "VariationalLSTM": lambda: _recurrent(kerasdrop.VariationalLSTM(4, dropout=0.3, recurrent_dropout=0.3)),
}


def _in_threads(call):
    """The results of ``call()`` run ``ROUNDS`` times in each of ``THREADS`` threads, each round's calls starting
    together; the first error of any thread is raised."""
    results, errors = [], []
    start = threading.Barrier(THREADS)

    def work():
        try:
            for _ in range(ROUNDS):
                start.wait(timeout=120)
                results.append(call())
        except Exception as error:  # raised below; the other threads stop waiting for this one
            errors.append(error)
            start.abort()

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def _model_and_inputs(name):
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    return model, np.random.default_rng(0).normal(size=(3, *model.input_shape[1:])).astype("float32")


@backend.slow_on_jax
@pytest.mark.parametrize("consistent", [False, True], ids=["per-input draws", "joint draws"])
@pytest.mark.parametrize("name", list(MODELS))
def test_threads_sharing_an_unseeded_predictor_draw_their_own_samples(name, consistent):
    model, x = _model_and_inputs(name)
    mc = kerasdrop.MCDropout(model, samples=SAMPLES, consistent=consistent)
    before = [utils.to_numpy(variable) for variable in model.variables]
    results = _in_threads(lambda: mc.predict(x, verbose=0, keep_samples=True).samples)
    assert len(results) == THREADS * ROUNDS
    assert len({samples.tobytes() for samples in results}) == len(results), "two calls drew the same samples"
    reference = kerasdrop.MCDropout(model, samples=THREADS * ROUNDS * SAMPLES, seed=1).predict(
        x, verbose=0, keep_samples=True
    )
    utils.assert_same_two_moments(np.concatenate(results), reference.samples)
    after = [utils.to_numpy(variable) for variable in model.variables]
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("consistent", [False, True], ids=["per-input draws", "joint draws"])
@pytest.mark.parametrize("name", list(MODELS))
def test_threads_sharing_a_seeded_predictor_all_get_its_result(name, consistent):
    model, x = _model_and_inputs(name)
    mc = kerasdrop.MCDropout(model, samples=SAMPLES, consistent=consistent, seed=7)
    expected = mc.predict(x, verbose=0, keep_samples=True).samples
    results = _in_threads(lambda: mc.predict(x, verbose=0, keep_samples=True).samples)
    for samples in results:
        np.testing.assert_array_equal(samples, expected)


def _busy_model():
    inputs = keras.Input((6,))
    hidden = keras.layers.BatchNormalization()(keras.layers.Dense(16, activation="relu")(inputs))
    hidden = keras.layers.Dropout(0.5, seed=1)(hidden)  # packed masks
    hidden = kerasdrop.Dropout(0.3, seed=2)(keras.layers.Dense(16, activation="relu")(hidden))
    hidden = keras.layers.GaussianNoise(0.2, seed=3)(hidden)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


@backend.slow_on_jax
def test_threads_share_a_model_and_leave_it_untouched():
    model = _busy_model()
    x = np.random.default_rng(6).normal(size=(5, 6)).astype("float32")
    expected = utils.to_numpy(model(x, training=False))
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)  # Keras caches its predict function now
    config, variables, attributes = model.get_config(), mcm.variables_snapshot(model), utils.layer_state(model)
    reference = kerasdrop.MCDropout(model, samples=2000, seed=0).predict(x, verbose=0)
    means, errors = [], []

    shared = kerasdrop.MCDropout(model, samples=200)  # one object used by several threads at once as well

    def sample(seed):
        try:
            means.append(kerasdrop.MCDropout(model, samples=200, seed=seed).predict(x, verbose=0).mean)
            means.append(shared.predict(x, verbose=0).mean)
        except Exception as error:  # reported below: a thread's exception would otherwise be lost
            errors.append(error)

    def predict_deterministically():
        try:
            for _ in range(10):
                np.testing.assert_array_equal(utils.to_numpy(model(x, training=False)), expected)
        except Exception as error:
            errors.append(error)

    for round_ in range(2):  # each thread builds a sampler of its own (a trace or a compilation) while others sample
        threads = [threading.Thread(target=sample, args=(10 * round_ + i,)) for i in range(4)]
        threads.append(threading.Thread(target=predict_deterministically))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors, errors
    np.testing.assert_array_equal(utils.to_numpy(model(x, training=False)), expected)
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    assert model.get_config() == config
    mcm.assert_variables_unchanged(model, variables)
    assert utils.layer_state(model) == attributes
    assert len(means) == 16
    for mean in means:  # each result a correct MC estimate: within 5 standard errors of the long reference run
        mcm.assert_means_agree(mean, reference.mean, 200, 2000, reference.variance, reference.variance)
