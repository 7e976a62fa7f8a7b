"""A heteroscedastic head trained with `kerasdrop.losses.GaussianNLL` on a problem with known noise σ(x): its
aleatoric std recovers σ(x) where the data are dense, its epistemic variance grows away from them, and the 90 %
intervals of `MCDropoutResult.interval` cover 90 % of held-out points within 3 binomial standard errors."""

import keras
import numpy as np
import pytest

import kerasdrop

pytestmark = pytest.mark.slow  # trains a model


def _sigma(x):
    return 0.15 + 0.1 * (x + 3)  # from 0.15 to 0.75 over the data


def _data(count, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=(count, 1)).astype("float32")
    y = np.sin(x) + _sigma(x) * rng.normal(size=x.shape)
    return x, y.astype("float32")


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((1,))
    hidden = keras.layers.Dense(64, activation="relu")(inputs)
    hidden = keras.layers.Dense(64, activation="relu")(keras.layers.Dropout(0.1)(hidden))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dropout(0.1)(hidden)))
    steps = 200 * 32  # 200 epochs of 32 batches
    learning_rate = keras.optimizers.schedules.CosineDecay(3e-3, steps)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=kerasdrop.losses.GaussianNLL())
    x, y = _data(4000, seed=1)
    model.fit(x, y, batch_size=128, epochs=200, verbose=0)
    return kerasdrop.MCDropout(model, samples=400, output_type="gaussian", seed=2)


def test_aleatoric_std_recovers_the_noise_where_the_data_are_dense(trained):
    grid = np.linspace(-2.5, 2.5, 11, dtype="float32")[:, None]
    result = trained.predict(grid, verbose=0)
    relative = np.sqrt(result.aleatoric_variance) / _sigma(grid) - 1
    assert np.abs(relative).max() <= 0.10, relative.ravel()


def test_epistemic_variance_grows_away_from_the_data(trained):
    inside = trained.predict(np.linspace(-2.5, 2.5, 21, dtype="float32")[:, None], verbose=0).epistemic_variance
    far = np.concatenate([np.linspace(-8, -6, 5), np.linspace(6, 8, 5)]).astype("float32")[:, None]
    outside = trained.predict(far, verbose=0).epistemic_variance
    assert outside.min() > inside.max()


def test_ninety_percent_intervals_cover_ninety_percent_of_held_out_points(trained):
    x, y = _data(2000, seed=3)
    lower, upper = trained.predict(x, verbose=0, keep_samples=True).interval(0.9)
    coverage = np.mean((lower <= y) & (y <= upper))
    bound = 3 * np.sqrt(0.9 * 0.1 / len(y))  # 3 binomial standard errors
    assert abs(coverage - 0.9) <= bound, (coverage, bound)
