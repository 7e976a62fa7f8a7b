"""How MCDropout runs a model: packed masks, BatchNorm and variables untouched, prefix once, tracing, memory budget,
and the kinds of models it accepts or refuses."""

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop import ops as kd_ops
from tests import _mc_models as mcm
from tests import utils

# ---------------------------------------------------------------- packed Bernoulli masks


def test_dyadic_fraction():
    assert kd_ops.dyadic_fraction(0.5) == (1, 1)
    assert kd_ops.dyadic_fraction(0.75) == (3, 2)
    assert kd_ops.dyadic_fraction(0.875) == (7, 3)
    assert kd_ops.dyadic_fraction(3 / 1024) == (3, 10)
    for keep in (0.7, 0.9, 1 / 2048, 1 / 3):
        assert kd_ops.dyadic_fraction(keep) is None
    with pytest.raises(ValueError, match="keep=0.7"):
        kd_ops.packed_bernoulli_mask((4,), 0.7, seed=0)


@pytest.mark.parametrize("keep", [0.5, 0.75, 0.875, 3 / 1024])
def test_packed_mask_is_bernoulli_with_independent_neighbours(keep):
    shape = (300, 401)  # not a multiple of the 30 masks a word gives: the tail is cut
    mask = utils.to_numpy(kd_ops.packed_bernoulli_mask(shape, keep, keras.random.SeedGenerator(1), scale=1 / keep))
    assert mask.shape == shape
    np.testing.assert_array_equal(np.unique(mask), [0.0, np.float32(1 / keep)])
    kept = (mask > 0).ravel()
    utils.assert_binomial_count(kept.sum(), kept.size, keep)
    # Bits of one random integer, of neighbouring table indices, and of neighbouring integers must be independent:
    # pairs at lags 1 (same field group), 10 (next index), 30 (next integer) are both kept with probability keep^2.
    for lag in (1, 10, 30):
        utils.assert_binomial_count(np.sum(kept[:-lag] & kept[lag:]), kept.size - lag, keep * keep)


def test_packed_mask_draws_new_masks_each_call_and_works_in_a_graph():
    import tensorflow as tf

    generator = keras.random.SeedGenerator(2)
    function = tf.function(lambda x: x * kd_ops.packed_bernoulli_mask(tf.shape(x), 0.5, generator, scale=2.0))
    x = tf.ones((64, 33))
    first, second = function(x).numpy(), function(x).numpy()
    assert not np.array_equal(first, second)
    assert set(np.unique(first)) == {0.0, 2.0}


# ---------------------------------------------------------------- BatchNormalization and the model's variables


def _bn_model(bn_first):
    inputs = keras.Input((4,))
    bn, dropout = keras.layers.BatchNormalization(epsilon=1e-3), keras.layers.Dropout(0.5, seed=3)
    outputs = dropout(bn(inputs)) if bn_first else bn(dropout(inputs))
    model = keras.Model(inputs, outputs)
    gamma, beta = np.array([1.0, 2.0, 0.5, -1.0]), np.array([0.1, -0.2, 0.3, 0.0])
    mean, variance = np.array([0.5, -1.0, 2.0, 0.0]), np.array([4.0, 0.25, 1.0, 9.0])
    bn.set_weights([gamma, beta, mean, variance])
    return model, lambda v: gamma * (v - mean) / np.sqrt(variance + 1e-3) + beta


@pytest.mark.parametrize("bn_first", [True, False], ids=["bn-in-prefix", "bn-after-dropout"])
def test_batchnorm_uses_moving_statistics_and_no_variable_changes(bn_first):
    model, batchnorm = _bn_model(bn_first)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    snapshot = mcm.variables_snapshot(model)
    assert any("seed_generator" in path for path in snapshot)  # the dropout's seed state is checked too
    result = kerasdrop.MCDropout(model, samples=200, seed=0).predict(x, verbose=0, keep_samples=True)
    mcm.assert_variables_unchanged(model, snapshot)
    # Each sampled value is one of the two outcomes of the mask, computed by hand with the moving statistics.
    if bn_first:
        outcomes = (np.zeros_like(x), 2 * batchnorm(x))
    else:
        outcomes = (batchnorm(np.zeros_like(x)), batchnorm(2 * x))
    close = [np.isclose(result.samples, outcome[None], rtol=1e-5, atol=1e-5) for outcome in outcomes]
    assert np.all(close[0] | close[1])
    assert close[0].any(axis=0).all() and close[1].any(axis=0).all()  # both outcomes occur for every unit


def test_layers_are_restored_after_sampling():
    dropout, kd_dropout = keras.layers.Dropout(0.5), kerasdrop.Dropout(0.5)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, kd_dropout(dropout(inputs)))
    kerasdrop.MCDropout(model, samples=3).predict(np.ones((2, 8), "float32"), verbose=0)
    assert "call" not in vars(dropout) and "call" not in vars(kd_dropout)
    assert kd_dropout.mc is False
    assert isinstance(dropout.seed_generator, keras.random.SeedGenerator)
    assert dropout.seed_generator in dropout._seed_generators
    np.testing.assert_array_equal(model.predict(np.ones((2, 8), "float32"), verbose=0), np.ones((2, 8)))


# ---------------------------------------------------------------- prefix once, tiling, tracing, memory budget


def _counted_model():
    inputs = keras.Input((5,))
    before, after = mcm.RowCounter(name="before"), mcm.RowCounter(name="after")
    hidden = before(keras.layers.Dense(16, activation="relu")(inputs))
    outputs = after(keras.layers.Dense(2)(keras.layers.Dropout(0.5)(hidden)))
    return keras.Model(inputs, outputs), before, after


def test_prefix_runs_once_per_input_and_the_rest_once_per_sample():
    model, before, after = _counted_model()
    sampler = kerasdrop.MCDropout(model, samples=7, seed=1)
    sampler.predict(np.ones((10, 5), "float32"), verbose=0)
    assert int(utils.to_numpy(before.rows)) == 10
    assert int(utils.to_numpy(after.rows)) == 70
    assert int(utils.to_numpy(after.largest)) == 70  # all samples of the batch in one call


def test_memory_budget_bounds_the_rows_of_each_call():
    model, before, after = _counted_model()
    x = np.ones((25, 5), "float32")
    sampler = kerasdrop.MCDropout(model, samples=9, seed=1, memory_budget_mb=1e-3)  # ~1 KiB
    row_bytes, rows = sampler.rows_per_call(x)
    # Estimate by hand: frontier (16 floats), dropout output + its mask (2 x 16), Dense(2), RowCounter (2).
    assert row_bytes == 4 * (16 + 2 * 16 + 2 + 2)
    assert rows == 1048 // row_bytes == 5
    result = sampler.predict(x, verbose=0, keep_samples=True)
    assert result.samples.shape == (9, 25, 2)
    assert int(utils.to_numpy(after.largest)) <= rows
    assert int(utils.to_numpy(after.rows)) == 9 * 25
    assert int(utils.to_numpy(before.rows)) == 25


def test_sampler_is_traced_once():
    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=6, seed=2)
    for size, batch_size in ((10, None), (37, 8), (5, 2), (64, 64)):
        sampler.predict(np.ones((size, 8), "float32"), batch_size=batch_size, verbose=0)
    assert sampler.trace_count == 1


def test_default_batch_fits_all_samples_of_a_batch_in_one_call():
    model, before, after = _counted_model()
    sampler = kerasdrop.MCDropout(model, samples=4, memory_budget_mb=0.05)  # 50 KiB: 252 rows of 208 bytes
    x = np.ones((300, 5), "float32")
    assert sampler.rows_per_call(x) == (208, 252)
    sampler.predict(x, verbose=0)
    assert int(utils.to_numpy(after.largest)) == 4 * 63  # batch = rows // samples = 63 inputs, 4 samples each
    assert int(utils.to_numpy(after.rows)) == 1200


# ---------------------------------------------------------------- kinds of models


def _agree(model, x, samples=300):
    result = kerasdrop.MCDropout(model, samples=samples, seed=3).predict(x, verbose=0)
    reference = mcm.independent_calls(model, x, samples)
    mcm.assert_means_agree(result.mean, reference.mean(0), samples, samples, result.variance, reference.var(0))
    assert np.all(result.variance > 0)
    return result


def test_sequential_nested_and_reloaded_models(tmp_path):
    x = np.random.default_rng(1).uniform(0, 1, (4, 6)).astype("float32")
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dropout(0.5)])
    inputs = keras.Input((6,))
    nested = keras.Model(inputs, keras.layers.Dense(2)(inner(inputs)))
    _agree(nested, x)
    sequential = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8), kerasdrop.GaussianDropout(0.3), keras.layers.Dense(2)]
    )
    _agree(sequential, x)
    reloaded = utils.save_and_load(sequential, tmp_path)
    np.testing.assert_allclose(
        kerasdrop.MCDropout(reloaded, samples=20, seed=4).predict(x, verbose=0).mean,
        kerasdrop.MCDropout(sequential, samples=20, seed=4).predict(x, verbose=0).mean,
        rtol=1e-6,
    )


class AlwaysDrops(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden, self.dropout, self.out = keras.layers.Dense(8), keras.layers.Dropout(0.5), keras.layers.Dense(2)

    def call(self, inputs, training=False):
        return self.out(self.dropout(self.hidden(inputs), training=training))


class DropsOnlyInTraining(AlwaysDrops):
    def call(self, inputs, training=False):
        hidden = self.hidden(inputs)
        if training:
            hidden = self.dropout(hidden, training=True)
        return self.out(hidden)


def test_subclassed_models():
    x = np.random.default_rng(2).uniform(0, 1, (3, 5)).astype("float32")
    model = AlwaysDrops()
    model(x)
    _agree(model, x)
    skipping = DropsOnlyInTraining()
    skipping(x)
    with pytest.raises(ValueError, match="did not call them when run with training=False"):
        kerasdrop.MCDropout(skipping, samples=3).predict(x, verbose=0)
    with pytest.raises(ValueError, match="needs a built model"):
        kerasdrop.MCDropout(AlwaysDrops())


def test_dropout_inside_layers_and_recurrent_dropout_are_reached():
    x = np.random.default_rng(3).uniform(0, 1, (3, 4, 6)).astype("float32")
    inputs = keras.Input((4, 6))
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.5)
    hidden = keras.layers.LSTM(5, dropout=0.3, recurrent_dropout=0.3)(attention(inputs, inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    sampler = kerasdrop.MCDropout(model, samples=5)
    assert {layer.split("_")[0] for layer in sampler.stochastic_layers} >= {"dropout", "lstm"}
    _agree(model, x, samples=150)


def test_masked_sequences_keep_their_mask():
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 0, 0, 0]], "int32")
    inputs = keras.Input((5,), dtype="int32")
    embedded = keras.layers.Embedding(10, 4, mask_zero=True)(inputs)
    model = keras.Model(inputs, keras.layers.LSTM(3)(keras.layers.Dropout(0.5)(embedded)))
    sampler = kerasdrop.MCDropout(model, samples=40, seed=5)
    assert sampler._sampler.plan.prefix == []  # a mask crosses the split: the whole graph runs per sample
    padded = tokens.copy()
    padded[:, 3:] = 0
    longer = np.concatenate([tokens[:, :3], np.zeros((2, 2), "int32")], axis=1)
    first = sampler.predict(padded, verbose=0).mean
    np.testing.assert_array_equal(first, sampler.predict(longer, verbose=0).mean)
    _agree(model, tokens, samples=200)


def test_layers_with_losses_and_weights_of_their_own():
    x = np.random.default_rng(4).uniform(0, 1, (16, 6)).astype("float32")
    inputs = keras.Input((6,))
    variational = kerasdrop.VariationalDense(8, activation="relu", name="variational")
    hidden = keras.layers.Dense(4, activity_regularizer="l2")(variational(inputs))
    model = keras.Model(inputs, kerasdrop.ConcreteDropout(keras.layers.Dense(2), name="concrete")(hidden))
    model.compile(optimizer="sgd", loss="mse")
    snapshot = mcm.variables_snapshot(model)
    sampler = kerasdrop.MCDropout(model, samples=6, seed=0)
    assert sampler.stochastic_layers == ["variational", "concrete"]
    assert np.all(sampler.predict(x, verbose=0).variance > 0)
    mcm.assert_variables_unchanged(model, snapshot)
    assert model.losses == []  # the losses added while tracing do not leak out of the trace
    model.fit(x, np.zeros((16, 2), "float32"), epochs=1, verbose=0)


def test_mixed_precision_model():
    keras.config.set_dtype_policy("mixed_float16")
    model = mcm.classifier(keras.layers.Dropout(0.5))
    result = kerasdrop.MCDropout(model, samples=10, seed=1).predict(np.ones((3, 8), "float32"), verbose=0)
    assert np.all(np.isfinite(result.mean)) and np.all(result.variance > 0)
    assert np.all(np.isfinite(result.predictive_entropy()))


def test_models_it_cannot_handle_get_clear_errors():
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.BatchNormalization()(inputs)))
    with pytest.raises(ValueError, match="found no stochastic layer.*keras.layers.Dropout"):
        kerasdrop.MCDropout(plain)
    hidden = keras.layers.Dropout(0.5)(inputs)
    two_outputs = keras.Model(inputs, [keras.layers.Dense(2)(hidden), keras.layers.Dense(1)(hidden)])
    with pytest.raises(ValueError, match=r"one output.*has 2.*model.outputs\[0\]"):
        kerasdrop.MCDropout(two_outputs)
    with pytest.raises(TypeError, match="expects a keras.Model"):
        kerasdrop.MCDropout(keras.layers.Dropout(0.5))
