"""How MCDropout runs a model (`kerasdrop.mc.runner`): BatchNorm and variables untouched, prefix once, tracing, memory
budget, and the kinds of models it accepts or refuses. The packed masks it uses are tested in test_ops.py."""

import warnings

import keras
import numpy as np
import pytest

import kerasdrop
from tests import _mc_models as mcm
from tests import backend, utils

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


def test_layers_are_untouched_after_sampling():
    dropout, kd_dropout = keras.layers.Dropout(0.5), kerasdrop.Dropout(0.5)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, kd_dropout(dropout(inputs)))
    attributes = utils.layer_state(model)
    kerasdrop.MCDropout(model, samples=3).predict(np.ones((2, 8), "float32"), verbose=0)
    assert utils.layer_state(model) == attributes
    assert kd_dropout.mc is False
    np.testing.assert_array_equal(model.predict(np.ones((2, 8), "float32"), verbose=0), np.ones((2, 8)))


# ---------------------------------------------------------------- prefix once, tiling, tracing, memory budget


def _counted_model():
    inputs = keras.Input((5,))
    before, after = mcm.RowCounter(name="before"), mcm.RowCounter(name="after")
    hidden = before(keras.layers.Dense(16, activation="relu")(inputs))
    outputs = after(keras.layers.Dense(2)(keras.layers.Dropout(0.5)(hidden)))
    model = keras.Model(inputs, outputs)
    for counter in (before, after):  # PyTorch builds the graph by running the layers on placeholder tensors
        counter.rows = counter.largest = 0
    return model, before, after


def test_prefix_runs_once_per_input_and_the_rest_once_per_sample():
    model, before, after = _counted_model()
    sampler = kerasdrop.MCDropout(model, samples=7, seed=1)
    sampler.predict(np.ones((10, 5), "float32"), verbose=0)
    assert before.rows == 10
    assert after.rows == 70
    assert after.largest == 70  # all samples of the batch in one call


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
    assert after.largest <= rows
    assert after.rows == 9 * 25
    assert before.rows == 25


def test_pytorch_on_cpu_takes_at_most_32_mib_a_call():
    model, _, _ = _counted_model()
    x = np.ones((25, 5), "float32")
    row_bytes, rows = kerasdrop.MCDropout(model, samples=9, memory_budget_mb=1024).rows_per_call(x)
    budget = 32 if backend.BACKEND == "torch" else 1024
    assert rows == budget * 2**20 // row_bytes


@backend.tensorflow_only("one trace for every batch size and number of copies (a tf.function signature)")
def test_sampler_is_traced_once():
    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=6, seed=2)
    for size, batch_size in ((10, None), (37, 8), (5, 2), (64, 64)):
        sampler.predict(np.ones((size, 8), "float32"), batch_size=batch_size, verbose=0)
    assert sampler.trace_count == 1


@pytest.mark.skipif(
    backend.BACKEND != "jax",
    reason="jax.jit traces once per batch shape and number of copies; tf.function once in all (tested above), "
    "PyTorch runs eagerly",
)
def test_jax_sampler_is_compiled_once_per_batch_shape():
    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=6, seed=2)
    x = np.random.default_rng(0).normal(size=(10, 8)).astype("float32")
    first = sampler.predict(x, verbose=0, keep_samples=True).samples
    for _ in range(3):  # an eager sampler would run its Python code, and count, on every call
        np.testing.assert_array_equal(sampler.predict(x, verbose=0, keep_samples=True).samples, first)
    assert sampler.trace_count == 1
    sampler.predict(x[:7], verbose=0)  # a new batch shape: one more trace
    sampler.predict(x, verbose=0)
    assert sampler.trace_count == 2
    assert not np.array_equal(first[0], first[1])  # the compiled draws still differ from sample to sample


@pytest.mark.skipif(backend.BACKEND != "jax", reason="JAX's sampler on CPU loops over steps of a call")
def test_jax_sampler_on_cpu_draws_each_call_in_steps(monkeypatch):
    from kerasdrop.mc import compile

    monkeypatch.setattr(compile, "_CPU_STEP_BYTES", 1)  # one copy a step
    model, before, after = _counted_model()
    sampler = kerasdrop.MCDropout(model, samples=7, seed=1)
    x = np.random.default_rng(3).normal(size=(10, 5)).astype("float32")
    result = sampler.predict(x, verbose=0, keep_samples=True)
    assert before.rows == 10 and after.rows == 70
    assert after.largest == 10  # seven steps of the ten inputs, in one call
    assert sampler.trace_count == 1
    assert len(np.unique(result.samples.reshape(7, -1), axis=0)) == 7  # each step draws masks of its own
    # The moments of a linear readout over 2000 samples drawn one a step, against the exact ones.
    readout = kerasdrop.MCDropout(mcm.linear_readout(keras.layers.Dropout(0.5), READOUT), samples=2000, seed=2)
    point = np.array([[1.0, 2.0, 0.5, -1.0, 3.0, 1.2]], "float32")
    samples = readout.predict(point, verbose=0, keep_samples=True).samples[:, 0, 0]
    mcm.assert_sample_moments(samples, *mcm.dropout_readout_moments(point[0], READOUT, 0.5))


class SubclassedReadout(keras.Model):
    """``Dense(1, no bias)(Dropout(0.5)(x))`` as a subclassed model: MCDropout runs it whole, in one stateless scope."""

    def __init__(self):
        super().__init__()
        self.dropout, self.readout = keras.layers.Dropout(0.5), keras.layers.Dense(1, use_bias=False)

    def call(self, inputs, training=False):
        return self.readout(self.dropout(inputs, training=training))


def _subclassed_readout():
    model = SubclassedReadout()
    model(np.ones((1, 6), "float32"))
    model.readout.set_weights([READOUT[:, None]])
    return model


@pytest.mark.slow
@pytest.mark.parametrize(
    "build",
    [lambda: mcm.linear_readout(keras.layers.Dropout(0.5), READOUT), _subclassed_readout],
    ids=["functional", "subclassed"],
)
@pytest.mark.filterwarnings("ignore:MCDropout calls")  # the subclassed model is called with training=True
def test_a_model_trained_after_the_sampler_was_built_is_sampled_with_its_new_weights(build):
    # Compiled samplers must read the weights when they run (JAX: as arguments of the jitted function, in every
    # stateless scope of the pass), not keep the values they saw when first traced.
    model = build()
    x = np.array([[1.0, 2.0, 0.5, -1.0, 3.0, 1.2]], "float32")
    sampler = kerasdrop.MCDropout(model, samples=60, seed=1, output_type="regression")
    before = sampler.predict(x, verbose=0, keep_samples=True).samples[:, 0, 0]
    old_sums = _subset_sums(2 * x[0] * READOUT)
    assert np.abs(before[:, None] - old_sums[None]).min(axis=1).max() < 1e-4
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3), loss="mse")
    model.fit(np.repeat(x, 8, axis=0), np.full((8, 1), 20.0, "float32"), epochs=3, verbose=0)
    trained = utils.to_numpy(model.trainable_weights[0])[:, 0].astype("float64")
    assert np.abs(trained - READOUT).max() > 0.1
    after = sampler.predict(x, verbose=0, keep_samples=True).samples[:, 0, 0]
    # Each sample is one of the outcomes of the mask with the trained weights, and not all of them are old ones.
    new_sums = _subset_sums(2 * x[0].astype("float64") * trained)
    assert np.abs(after[:, None] - new_sums[None]).min(axis=1).max() < 1e-4
    assert np.abs(after[:, None] - old_sums[None]).min(axis=1).max() > 1e-2
    if backend.BACKEND != "torch":  # PyTorch runs the sampler eagerly: it counts calls, not traces
        assert sampler.trace_count == 1  # the same compiled sampler, with the new weights read


def test_default_batch_fits_all_samples_of_a_batch_in_one_call():
    model, before, after = _counted_model()
    sampler = kerasdrop.MCDropout(model, samples=4, memory_budget_mb=0.05)  # 50 KiB: 252 rows of 208 bytes
    x = np.ones((300, 5), "float32")
    assert sampler.rows_per_call(x) == (208, 252)
    sampler.predict(x, verbose=0)
    assert after.largest == 4 * 63  # batch = rows // samples = 63 inputs, 4 samples each
    assert after.rows == 1200


# ---------------------------------------------------------------- kinds of models


def _agree(model, x, samples=300):
    result = kerasdrop.MCDropout(model, samples=samples, seed=3, output_type="regression").predict(x, verbose=0)
    reference = mcm.independent_calls(model, x, samples)
    mcm.assert_means_agree(result.mean, reference.mean(0), samples, samples, result.variance, reference.var(0))
    assert np.all(result.variance > 0)
    return result


@pytest.mark.slow
def test_sequential_nested_and_reloaded_models(tmp_path):
    # Fixed weights: with random ones, once in about 60 runs every ReLU unit of some input is off, and its output
    # does not vary at all.
    keras.utils.set_random_seed(1)
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


class NormalizesThenDrops(keras.Model):
    """Dense -> BatchNormalization -> dropout -> Dense, the dropout called always or only in training."""

    def __init__(self, dropout, always=True):
        super().__init__()
        self.hidden, self.norm, self.out = (
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        )
        self.dropout, self.always = dropout, always

    def call(self, inputs, training=False):
        hidden = self.norm(self.hidden(inputs), training=training)
        if self.always or training:
            hidden = self.dropout(hidden, training=training)
        return self.out(hidden)


def test_subclassed_models():
    x = np.random.default_rng(2).uniform(0, 1, (3, 5)).astype("float32")
    for model in (AlwaysDrops(), DropsOnlyInTraining()):  # nothing but the dropout minds `training`
        model(x)
        _agree(model, x)
    with pytest.raises(ValueError, match="needs a built model"):
        kerasdrop.MCDropout(AlwaysDrops())


def test_subclassed_model_with_batchnorm():
    x = np.random.default_rng(5).uniform(0, 1, (3, 5)).astype("float32")
    # kerasdrop's dropout samples under MCDropout while the model runs with training=False: BatchNorm keeps its
    # moving statistics, so the mean of the (linear) readout is the deterministic output.
    model = NormalizesThenDrops(kerasdrop.Dropout(0.5))
    model(x)
    model.norm.set_weights([np.full(8, 2.0), np.full(8, 0.5), np.full(8, -1.0), np.full(8, 4.0)])
    result = kerasdrop.MCDropout(model, samples=400, seed=1, output_type="regression").predict(x, verbose=0)
    deterministic = utils.to_numpy(model(x, training=False))
    mcm.assert_means_agree(result.mean, deterministic, 400, 1, result.variance, 0.0)
    assert np.all(result.variance > 0)
    # Keras's Dropout only samples with training=True, which the model would pass to BatchNormalization too.
    keras_dropout = NormalizesThenDrops(keras.layers.Dropout(0.5))
    keras_dropout(x)
    with pytest.raises(ValueError, match=r"cannot sample \['dropout.*'batch_normalization.*BatchNormalization"):
        kerasdrop.MCDropout(keras_dropout, samples=3).predict(x, verbose=0)
    # A kerasdrop dropout that the model only calls in training never draws: refused, not silently deterministic.
    skipping = NormalizesThenDrops(kerasdrop.Dropout(0.5), always=False)
    skipping(x)
    with pytest.raises(ValueError, match="drew no noise when the model ran"):
        kerasdrop.MCDropout(skipping, samples=3).predict(x, verbose=0)


@backend.slow_on_jax
def test_dropout_inside_layers_and_recurrent_dropout_are_reached():
    x = np.random.default_rng(3).uniform(0, 1, (3, 4, 6)).astype("float32")
    inputs = keras.Input((4, 6))
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.5)
    hidden = keras.layers.LSTM(5, dropout=0.3, recurrent_dropout=0.3)(attention(inputs, inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    sampler = kerasdrop.MCDropout(model, samples=5)
    assert sampler.stochastic_layers == [attention.name, model.layers[2].name]
    _agree(model, x, samples=150)


@backend.slow_on_jax
def test_masked_sequences_keep_their_mask():
    keras.utils.set_random_seed(1)  # weights for which the padded steps would matter a lot (checked below)
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 0, 0, 0]], "int32")
    inputs = keras.Input((None,), dtype="int32")
    normal = keras.initializers.RandomNormal(stddev=1.0)
    embedded = keras.layers.Embedding(10, 4, mask_zero=True, embeddings_initializer=normal)(inputs)
    model = keras.Model(inputs, keras.layers.LSTM(3)(keras.layers.Dropout(0.5)(embedded)))
    sampler = kerasdrop.MCDropout(model, samples=400, seed=5)
    assert sampler._sampler.plan.prefix == []  # a mask crosses the split: the whole graph runs per sample
    # The padded steps are masked: the same as the sequence cut before them (in distribution; the masks differ).
    padded = sampler.predict(tokens[:1], verbose=0)
    cut = sampler.predict(tokens[:1, :3], verbose=0)
    mcm.assert_means_agree(padded.mean, cut.mean, 400, 400, padded.variance, cut.variance)
    # Without the mask the padded steps would count: the deterministic outputs then differ clearly.
    plain = keras.layers.Embedding(10, 4)
    unmasked = keras.Model(inputs, model.layers[-1](plain(inputs)))
    plain.set_weights(model.layers[1].get_weights())
    gap = utils.to_numpy(unmasked(tokens[:1])) - utils.to_numpy(model(tokens[:1], training=False))
    assert np.abs(gap).max() > 10 * np.sqrt(padded.variance.max() / 400)
    _agree(model, tokens, samples=200)


@pytest.mark.slow
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
    with pytest.raises(ValueError, match="found no noise layer.*keras.layers.Dropout"):
        kerasdrop.MCDropout(plain)
    with pytest.raises(TypeError, match="expects a keras.Model"):
        kerasdrop.MCDropout(keras.layers.Dropout(0.5))


# ---------------------------------------------------------------- torch's global generator


@pytest.mark.skipif(backend.BACKEND != "torch", reason="torch's global generator is PyTorch's")
def test_an_int_seed_reproduces_layers_drawing_from_torchs_global_generator_and_leaves_it_where_it_was():
    import torch

    inputs = keras.Input((5, 3))
    model = keras.Model(inputs, keras.layers.LSTM(4, dropout=0.3, recurrent_dropout=0.3)(inputs))  # no seed
    x = np.random.default_rng(0).normal(size=(3, 5, 3)).astype("float32")
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    mc = kerasdrop.MCDropout(model, samples=10, seed=7)
    first, again = (mc.predict(x, verbose=0, keep_samples=True).samples for _ in range(2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[0], first[1])
    assert torch.equal(torch.random.get_rng_state(), before)
    unseeded = kerasdrop.MCDropout(model, samples=10)
    assert not np.array_equal(*(unseeded.predict(x, verbose=0, keep_samples=True).samples for _ in range(2)))


# ---------------------------------------------------------------- several outputs, chosen layers


def test_multi_output_models_give_one_result_per_output_from_shared_masks():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(8, activation="relu")(inputs))
    first, second = keras.layers.Dense(3, activation="softmax"), keras.layers.Dense(3, activation="softmax")
    regression = keras.layers.Dense(1)
    heads = [first(hidden), second(hidden), regression(hidden)]
    second.set_weights(first.get_weights())
    x = np.random.default_rng(7).normal(size=(4, 6)).astype("float32")
    listed = keras.Model(inputs, heads)
    results = kerasdrop.MCDropout(listed, samples=30, seed=1).predict(x, verbose=0, keep_samples=True)
    assert isinstance(results, list) and len(results) == 3
    np.testing.assert_array_equal(results[0].samples, results[1].samples)  # one sample, one mask for every output
    assert not np.array_equal(results[0].samples[0], results[0].samples[1])
    assert results[0].output_type == "probabilities" and results[2].output_type == "regression"
    assert results[2].samples.shape == (30, 4, 1)
    keyed = keras.Model(inputs, {"class": heads[0], "value": heads[2]})
    by_key = kerasdrop.MCDropout(keyed, samples=30, seed=1, output_type={"class": "auto", "value": "regression"})
    by_key = by_key.predict(x, verbose=0)
    assert set(by_key) == {"class", "value"}
    assert by_key["class"].predictive_entropy().shape == (4,)
    with pytest.raises(ValueError, match="need probability outputs"):
        by_key["value"].predictive_entropy()


READOUT = np.array([0.5, -1.0, 2.0, 1.5, -0.3, 0.8], "float32")


def _two_noise_readout():
    inputs = keras.Input((6,))
    noisy = keras.layers.GaussianDropout(0.4, name="gaussian")(keras.layers.Dropout(0.5, name="bernoulli")(inputs))
    readout = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, readout(noisy))
    readout.set_weights([np.reshape(READOUT, (-1, 1))])
    return model


@pytest.mark.parametrize("chosen, rate, gaussian", [("bernoulli", 0.5, False), ("gaussian", 0.4, True)])
def test_only_the_chosen_layers_sample(chosen, rate, gaussian):
    model = _two_noise_readout()
    x = np.array([[1.0, 2.0, 0.5, -1.0, 3.0, 1.2]], "float32")
    for selector in (chosen, model.get_layer(chosen)):
        sampler = kerasdrop.MCDropout(model, samples=3000, seed=2, stochastic_layers=[selector])
        assert sampler.stochastic_layers == [chosen]
        samples = sampler.predict(x, verbose=0, keep_samples=True).samples[:, 0, 0]
        mcm.assert_sample_moments(samples, *mcm.dropout_readout_moments(x[0], READOUT, rate, gaussian))
        if not gaussian:  # the Gaussian layer is left out: each sample is one of the Bernoulli sums exactly
            kept = np.abs(samples[:, None] - _subset_sums(x[0] * READOUT * 2)[None]).min(axis=1)
            assert kept.max() < 1e-4


def _subset_sums(terms):
    sums = np.zeros(1)
    for term in terms:
        sums = np.concatenate([sums, sums + term])
    return sums


def test_attention_dropout_is_a_noise_layer_of_its_own():
    inputs = keras.Input((4, 6))
    attention = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3, dropout=0.5, name="attention")
    attended = keras.layers.Flatten()(attention(inputs, inputs))
    dropped = keras.layers.Flatten()(keras.layers.Dropout(0.5, name="plain")(inputs))
    model = keras.Model(inputs, [keras.layers.Dense(2)(attended), keras.layers.Dense(2)(dropped)])
    x = np.random.default_rng(8).normal(size=(3, 4, 6)).astype("float32")
    deterministic = [utils.to_numpy(output) for output in model(x, training=False)]
    for chosen, varying in (("attention", 0), ("plain", 1)):
        sampler = kerasdrop.MCDropout(model, samples=20, seed=3, stochastic_layers=[chosen])
        results = sampler.predict(x, verbose=0, keep_samples=True)
        fixed = 1 - varying
        np.testing.assert_allclose(results[fixed].samples, np.broadcast_to(deterministic[fixed], (20, 3, 2)), 1e-5)
        assert np.all(results[varying].variance > 0)


def test_kerasdrop_layer_in_mc_mode_left_out_runs_deterministically():
    inputs = keras.Input((6,))
    always = kerasdrop.Dropout(0.5, mc=True, name="always")
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dropout(0.5, name="chosen")(always(inputs))))
    x = np.ones((2, 6), "float32")
    chosen = kerasdrop.MCDropout(model, samples=50, seed=4, stochastic_layers=["always"]).predict(x, verbose=0)
    assert np.all(chosen.variance > 0)
    keras_only = kerasdrop.MCDropout(model, samples=50, seed=4, stochastic_layers=["chosen"])
    result = keras_only.predict(x, verbose=0, keep_samples=True)
    assert np.all(result.variance > 0)
    # With `always` left out, each sample is one of the outcomes of the Keras dropout alone: a subset sum.
    weights = utils.to_numpy(model.layers[-1].kernel)
    for unit in range(2):
        sums = _subset_sums(2 * weights[:, unit])
        distances = np.abs(result.samples[:, 0, unit][:, None] - sums[None]).min(axis=1)
        assert distances.max() < 1e-4
    assert always.mc is True


def test_nothing_that_would_sample_is_refused():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(4, name="dense_in")(inputs)
    quiet = keras.Model(inputs, keras.layers.Dropout(0.0)(kerasdrop.Dropout(0.0)(hidden)))
    with pytest.raises(ValueError, match="has rate 0"):
        kerasdrop.MCDropout(quiet)
    model = keras.Model(inputs, keras.layers.Dropout(0.5, name="drop")(hidden))
    with pytest.raises(ValueError, match="`stochastic_layers`.*holds no noise layer.*\\['drop'\\]"):
        kerasdrop.MCDropout(model, stochastic_layers=["dense_in"])
    with pytest.raises(ValueError, match="`stochastic_layers`.*has no layer 'nope'"):
        kerasdrop.MCDropout(model, stochastic_layers=["drop", "nope"])
    with pytest.raises(TypeError, match="`stochastic_layers`.*entry 3"):
        kerasdrop.MCDropout(model, stochastic_layers=["drop", 3])
    with pytest.raises(TypeError, match="`stochastic_layers`"):
        kerasdrop.MCDropout(model, stochastic_layers=[])
    assert kerasdrop.MCDropout(model, stochastic_layers="drop").stochastic_layers == ["drop"]


def test_inputs_keep_their_order_when_the_noise_reads_them_first():
    # The stochastic part reads `b` before `a`: with no prefix the inputs must still be paired by name.
    a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
    dropped = [keras.layers.Dropout(0.5)(b), keras.layers.Dropout(0.5)(a)]
    model = keras.Model([a, b], keras.layers.Dense(1, use_bias=False)(keras.layers.Concatenate()(dropped)))
    model.layers[-1].set_weights([np.array([[1.0], [1.0], [1.0], [0.0], [0.0], [0.0]])])  # reads `b` only
    result = kerasdrop.MCDropout(model, samples=300, seed=1).predict([np.zeros((2, 3)), np.ones((2, 3))], verbose=0)
    assert np.all(result.mean > 2.0)  # E = 3 from `b`; `a` is zeros: swapped inputs would give 0


@pytest.mark.filterwarnings("ignore:Layer .* was passed an input with a mask")
def test_nested_model_called_with_a_mask_argument():
    # Keras records `mask=` in the call of a nested model fed by a masking layer; the sampler must run it.
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 0, 0, 0]], "int32")
    inner_inputs = keras.Input((None, 4))
    inner = keras.Model(inner_inputs, keras.layers.LSTM(3)(keras.layers.Dropout(0.5)(inner_inputs)))
    inputs = keras.Input((None,), dtype="int32")
    model = keras.Model(inputs, inner(keras.layers.Embedding(10, 4, mask_zero=True)(inputs)))
    result = _agree(model, tokens, samples=200)
    assert result.mean.shape == (2, 3)


def test_recurrent_cell_without_noise_is_not_a_noise_layer():
    class PlainCell(keras.layers.Layer):
        state_size = 2

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], 2))

        def call(self, inputs, states):
            output = keras.ops.matmul(inputs, self.kernel) + states[0]
            return output, [output]

    inputs = keras.Input((4, 3))
    model = keras.Model(inputs, keras.layers.RNN(PlainCell())(inputs))
    with pytest.raises(ValueError, match="found no noise layer"):
        kerasdrop.MCDropout(model)


# Cells that draw new noise at every time step, and the ready layer that draws all steps' noise before the loop.
STEP_DRAWING_CELLS = {
    "SemeniutaGRU": lambda: kerasdrop.SemeniutaGRUCell(5, recurrent_dropout=0.5, seed=1),
    "ZoneoutLSTM": lambda: kerasdrop.ZoneoutLSTMCell(5, cell_zoneout=0.5, hidden_zoneout=0.3, seed=1),
    "ZoneoutGRU": lambda: kerasdrop.ZoneoutGRUCell(5, zoneout=0.4, seed=1),
}


def _cell_rnn(cell, unroll):
    inputs = keras.Input((6, 3))
    return keras.Model(inputs, keras.layers.RNN(cell, unroll=unroll, name="user_rnn")(inputs))


@backend.slow_on_jax
@pytest.mark.parametrize("name", sorted(STEP_DRAWING_CELLS))
def test_cell_drawing_every_step_inside_a_keras_rnn_loop(name):
    """The cell carries the number of the step in its state, which the RNN's loop carries like any state (TensorFlow's
    tf.while_loop and JAX's lax.scan trace the step once): sampled without refusal, MCDropout's samples have the
    distribution of independent training calls. (tests/layers/test_recurrent_loops.py checks that the draws of
    successive steps are independent, under MCDropout and in training calls.)"""
    model = _cell_rnn(STEP_DRAWING_CELLS[name](), unroll=False)
    x = np.random.default_rng(0).normal(size=(1, 6, 3)).astype("float32")
    result = kerasdrop.MCDropout(model, samples=1000, seed=0).predict(x, verbose=0, keep_samples=True)
    direct = utils.to_numpy(model(np.repeat(x, 1000, axis=0), training=True))
    utils.assert_same_distribution(np.asarray(result.samples)[:, 0], direct)


@backend.slow_on_jax
def test_unrolled_rnn_samples_a_new_draw_at_every_step():
    """Unrolled, the RNN runs the step once per time step: MCDropout's samples have the distribution of independent
    training calls (a draw repeated at every step has a different variance)."""
    inputs = keras.Input((4, 3))
    branches = [keras.layers.RNN(make(), unroll=True)(inputs) for make in STEP_DRAWING_CELLS.values()]
    model = keras.Model(inputs, keras.layers.Concatenate()(branches))
    x = np.random.default_rng(0).normal(size=(1, 4, 3)).astype("float32")
    result = kerasdrop.MCDropout(model, samples=1000, seed=0).predict(x, verbose=0, keep_samples=True)
    direct = utils.to_numpy(model(np.repeat(x, 1000, axis=0), training=True))
    utils.assert_same_distribution(np.asarray(result.samples)[:, 0], direct)


def test_cells_drawing_once_per_sequence_run_in_a_keras_rnn_loop():
    inputs = keras.Input((6, 3))
    cells = [
        kerasdrop.SemeniutaGRUCell(5, recurrent_dropout=0.5, per_step=False),
        kerasdrop.ZoneoutLSTMCell(5, dropout=0.3),  # no zoneout: input dropout only, drawn before the loop
    ]
    outputs = keras.layers.Concatenate()([keras.layers.RNN(cell)(inputs) for cell in cells])
    sampler = kerasdrop.MCDropout(keras.Model(inputs, outputs), samples=8, seed=0)  # accepted: no per-step draw
    result = sampler.predict(np.ones((2, 6, 3)), verbose=0)
    assert result.mean.shape == (2, 10)
    assert result.std[:, :5].max() > 0 and result.std[:, 5:].max() > 0  # each RNN's samples vary


@backend.tensorflow_only("one trace for every number of copies (a tf.function signature)")
def test_subclassed_model_is_traced_once_whatever_the_chunks():
    model = AlwaysDrops()
    x = np.ones((5, 5), "float32")
    model(x)
    row_bytes = kerasdrop.MCDropout(model).rows_per_call(x)[0]
    budget = 35 * row_bytes / 2**20  # 7, 7, 7, 2 copies
    sampler = kerasdrop.MCDropout(model, samples=23, memory_budget_mb=budget, output_type="regression")
    sampler.predict(x, verbose=0)
    assert sampler.trace_count == 1
    sampler.predict(x[:3], verbose=0)  # a new batch size: one more trace, with the batch axis left open
    sampler.predict(x[:4], verbose=0)
    assert sampler.trace_count == 2


def test_batchnorm_next_to_keras_dropout_is_refused_at_construction():
    class Block(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.norm, self.dropout = keras.layers.BatchNormalization(), keras.layers.Dropout(0.5)

        def call(self, inputs, training=False):
            return self.dropout(self.norm(inputs, training=training), training=training)

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(Block()(inputs)))
    with pytest.raises(ValueError, match="cannot sample.*inside layer.*BatchNormalization"):
        kerasdrop.MCDropout(model)


def test_a_subclassed_model_run_in_training_mode_is_said_once():
    class LogitsInTraining(AlwaysDrops):  # its own code branches on `training`: MCDropout cannot see that
        def call(self, inputs, training=False):
            logits = super().call(inputs, training=training)
            return logits if training else keras.ops.softmax(logits)

    model = LogitsInTraining()
    x = np.ones((2, 5), "float32")
    model(x)
    sampler = kerasdrop.MCDropout(model, samples=4, output_type="regression")
    with pytest.warns(UserWarning, match=r"calls \['logits_in_training'\] with training=True.*kerasdrop's dropout"):
        sampler.predict(x, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sampler.predict(x, verbose=0)  # once per MCDropout
    assert not [warning for warning in caught if "training=True" in str(warning.message)]


def test_a_sequential_model_built_on_one_batch_takes_any_batch():
    model = keras.Sequential([keras.layers.Dense(4), keras.layers.Dropout(0.5), keras.layers.Dense(2)])
    model(np.ones((20, 3), "float32"))
    assert kerasdrop.MCDropout(model, samples=3).predict(np.ones((7, 3), "float32"), verbose=0).mean.shape == (7, 2)


def test_a_shared_seeded_sampler_stays_reproducible_across_threads():
    import threading

    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=20, seed=3)
    x = np.random.default_rng(9).normal(size=(12, 8)).astype("float32")
    expected = sampler.predict(x, batch_size=4, verbose=0).mean
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.extend(sampler.predict(x, batch_size=4, verbose=0).mean for _ in range(3))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 9
    for mean in results:
        np.testing.assert_array_equal(mean, expected)
