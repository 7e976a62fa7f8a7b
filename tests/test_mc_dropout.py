"""kerasdrop.MCDropout: statistics against the analytic moments and against independent calls, inputs, results."""

import warnings

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop import metrics
from tests import _mc_models as mcm
from tests import backend, utils

WEIGHTS = np.array([0.5, -1.0, 2.0, 1.5, -0.3, 0.8], "float32")
X = np.array([[1.0, 2.0, 0.5, -1.0, 3.0, 1.2]], "float32")


# ---------------------------------------------------------------- analytic moments


@pytest.mark.parametrize(
    "layer, rate, gaussian, fast",
    [
        (lambda: keras.layers.Dropout(0.5), 0.5, False, True),  # packed masks
        (lambda: keras.layers.Dropout(0.5), 0.5, False, False),  # Keras's own masks
        (lambda: keras.layers.Dropout(0.25), 0.25, False, True),  # keep 3/4: two bits a mask
        (lambda: kerasdrop.Dropout(0.3), 0.3, False, True),  # not dyadic: the layer's own call
        (lambda: kerasdrop.GaussianDropout(0.4), 0.4, True, True),
        (lambda: keras.layers.GaussianDropout(0.2), 0.2, True, True),
    ],
)
def test_mean_and_variance_match_the_analytic_moments(layer, rate, gaussian, fast):
    model = mcm.linear_readout(layer(), WEIGHTS)
    result = kerasdrop.MCDropout(model, samples=4000, seed=1, fast_masks=fast).predict(X, verbose=0, keep_samples=True)
    samples = result.samples[:, 0, 0]
    mcm.assert_sample_moments(samples, *mcm.dropout_readout_moments(X[0], WEIGHTS, rate, gaussian=gaussian))
    np.testing.assert_allclose(result.mean[0, 0], samples.mean(), rtol=1e-5)
    np.testing.assert_allclose(result.variance[0, 0], samples.var(), rtol=1e-4)
    np.testing.assert_allclose(result.std, np.sqrt(result.variance))


@pytest.mark.parametrize(
    "layer, rate, gaussian",
    [
        (lambda: keras.layers.Dropout(0.5), 0.5, False),  # packed masks
        (lambda: kerasdrop.Dropout(0.3), 0.3, False),  # the layer's own call
        (lambda: kerasdrop.GaussianDropout(0.4), 0.4, True),
    ],
)
def test_a_fixed_model_samples_its_exact_moments(layer, rate, gaussian):
    """Weights and inputs from a NumPy RandomState: the same model on every backend. With the noise right before a
    linear output layer, the expectation of a sample is the deterministic output, and the variance is known exactly
    (`tests._mc_models.dropout_readout_moments`); both computed here in NumPy float64. Run on each backend, this
    makes the backends agree with each other."""
    rng = np.random.RandomState(0)
    kernel, bias = rng.normal(size=(5, 12)) / np.sqrt(5), rng.normal(scale=0.5, size=12)
    readout, offset = rng.normal(size=(12, 3)) / np.sqrt(12), rng.normal(size=3)
    x = rng.normal(size=(7, 5)).astype("float32")
    inputs = keras.Input((5,))
    hidden, output = keras.layers.Dense(12, activation="relu"), keras.layers.Dense(3)
    model = keras.Model(inputs, output(layer()(hidden(inputs))))
    hidden.set_weights([kernel, bias])
    output.set_weights([readout, offset])
    h = np.maximum(x.astype("float64") @ hidden.get_weights()[0] + hidden.get_weights()[1], 0.0)
    expected = h @ output.get_weights()[0].astype("float64") + output.get_weights()[1]
    samples = 3000
    result = kerasdrop.MCDropout(model, samples=samples, seed=4).predict(x, verbose=0, keep_samples=True)
    assert result.output_type == "regression" and result.samples.shape == (samples, 7, 3)
    standard_error = np.sqrt(result.variance / samples)
    z = np.abs(result.mean - expected) / standard_error
    assert z.max() < 5.0, f"max |z| {z.max():.2f}"
    readout64 = output.get_weights()[0].astype("float64")
    for row in range(7):
        for unit in range(3):
            _, variance, fourth = mcm.dropout_readout_moments(h[row], readout64[:, unit], rate, gaussian)
            utils.assert_variance_close(result.samples[:, row, unit], variance, fourth)


def test_gaussian_noise_variance():
    model = mcm.linear_readout(keras.layers.GaussianNoise(0.5), WEIGHTS)
    result = kerasdrop.MCDropout(model, samples=4000, seed=2).predict(X, verbose=0, keep_samples=True)
    variance = 0.25 * float(np.sum(WEIGHTS.astype("float64") ** 2))
    mcm.assert_sample_moments(result.samples[:, 0, 0], float(X[0] @ WEIGHTS), variance, 3 * variance**2)


@pytest.mark.parametrize(
    "layer, one_mask",
    [
        (lambda: keras.layers.Dropout(0.5, noise_shape=(1, 6)), True),
        (lambda: kerasdrop.Dropout(0.5, noise_shape=(1, None)), True),
        (lambda: kerasdrop.StochasticDropout(0.5, 0.0), False),  # one rate a call (here always 0.5), mask per unit
    ],
)
def test_noise_shared_across_the_batch_gives_independent_samples(layer, one_mask):
    # Tiled copies of an input would share such noise; the samples must still be independent draws.
    inputs = np.repeat(X, 3, axis=0)
    sampler = kerasdrop.MCDropout(mcm.linear_readout(layer(), WEIGHTS), samples=1500, seed=3)
    assert not sampler.vectorized
    result = sampler.predict(inputs, verbose=0, keep_samples=True)
    moments = mcm.dropout_readout_moments(X[0], WEIGHTS, 0.5)
    for index in range(3):
        mcm.assert_sample_moments(result.samples[:, index, 0], *moments)
    if one_mask:  # one mask serves the whole batch of a call: the three copies of the input get the same sample
        np.testing.assert_array_equal(result.samples[:, 0], result.samples[:, 2])


def test_drop_path_draws_its_own_branch_mask_for_each_sample_of_each_input():
    """Stochastic depth in MCDropout: every (sample, input) pair keeps or drops the branch on its own draw."""
    inputs = keras.Input((4,))
    branch = keras.layers.Dense(4, kernel_initializer="ones", bias_initializer="ones")(inputs)
    model = keras.Model(inputs, keras.layers.Add()([inputs, kerasdrop.DropPath(0.5, seed=1)(branch)]))
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    samples = kerasdrop.MCDropout(model, samples=400, seed=2).predict(x, verbose=0, keep_samples=True).samples
    dropped = np.all(np.isclose(samples, x, atol=1e-6), axis=-1)
    kept = np.all(np.isclose(samples, x + 2.0 * (x.sum(axis=1, keepdims=True) + 1.0), rtol=1e-5, atol=1e-5), axis=-1)
    assert np.all(dropped != kept), "every sample is the block with or without its branch"
    utils.assert_binomial_count(int(dropped.sum()), dropped.size, 0.5)
    # One mask per batch would drop all six inputs together in every sample; independent draws agree in 2 / 2^6.
    utils.assert_binomial_count(int(np.all(dropped == dropped[:, :1], axis=1).sum()), 400, 2 / 64)


# ---------------------------------------------------------------- agreement with independent calls


LAYERS = {
    "keras SpatialDropout1D": (lambda: keras.layers.SpatialDropout1D(0.5), (5, 4)),
    "keras SpatialDropout2D": (lambda: keras.layers.SpatialDropout2D(0.3), (3, 3, 4)),
    "keras SpatialDropout3D": (lambda: keras.layers.SpatialDropout3D(0.5), (2, 2, 2, 4)),
    "keras AlphaDropout": (lambda: keras.layers.AlphaDropout(0.3), (12,)),
    "kerasdrop SpatialDropout2D": (lambda: kerasdrop.SpatialDropout2D(0.5), (3, 3, 4)),
    "kerasdrop Dropout weight_scaling": (lambda: kerasdrop.Dropout(0.5, scaling="weight_scaling"), (12,)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_mc_mean_and_variance_agree_with_independent_calls(name):
    factory, shape = LAYERS[name]
    inputs = keras.Input(shape)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(factory()(inputs))))
    x = np.random.default_rng(0).uniform(-1, 2, (4, *shape)).astype("float32")
    result = kerasdrop.MCDropout(model, samples=600, seed=4).predict(x, verbose=0)
    reference = mcm.independent_calls(model, x, 600)
    mcm.assert_means_agree(result.mean, reference.mean(0), 600, 600, result.variance, reference.var(0))
    # Variances: the ratio of two sample variances from 600 draws each stays within ~30% (5 sigma ~ 5*sqrt(4/600)).
    np.testing.assert_allclose(result.variance, reference.var(0), rtol=0.45, atol=1e-6)


def test_keras_only_and_kerasdrop_models_agree_with_independent_calls():
    x = np.random.default_rng(1).uniform(0, 1, (6, 8)).astype("float32")
    for dropout in (keras.layers.Dropout(0.5), kerasdrop.Dropout(0.5), kerasdrop.GaussianDropout(0.3)):
        model = mcm.classifier(dropout)
        result = kerasdrop.MCDropout(model, samples=400, seed=5).predict(x, verbose=0)
        reference = mcm.independent_calls(model, x, 400)
        mcm.assert_means_agree(result.mean, reference.mean(0), 400, 400, result.variance, reference.var(0))


# ---------------------------------------------------------------- seeds


def test_int_seed_reproduces_and_none_draws_new_samples():
    model = mcm.classifier(keras.layers.Dropout(0.5))
    x = np.random.default_rng(2).uniform(0, 1, (5, 8)).astype("float32")
    first = kerasdrop.MCDropout(model, samples=20, seed=7).predict(x, verbose=0, keep_samples=True)
    sampler = kerasdrop.MCDropout(model, samples=20, seed=7)
    again = sampler.predict(x, verbose=0, keep_samples=True)
    once_more = sampler.predict(x, verbose=0, keep_samples=True)
    np.testing.assert_array_equal(first.samples, again.samples)
    np.testing.assert_array_equal(first.samples, once_more.samples)
    assert not np.array_equal(first.samples[0], first.samples[1])  # samples differ between draws
    other = kerasdrop.MCDropout(model, samples=20, seed=8).predict(x, verbose=0, keep_samples=True)
    assert not np.array_equal(first.samples, other.samples)
    unseeded = kerasdrop.MCDropout(model, samples=20)
    a, b = unseeded.predict(x, verbose=0), unseeded.predict(x, verbose=0)
    assert not np.array_equal(a.mean, b.mean)


@pytest.mark.parametrize(
    "dropout, fast",
    [
        (lambda: keras.layers.Dropout(0.3), True),
        (lambda: keras.layers.Dropout(0.5), False),
        (lambda: kerasdrop.Dropout(0.3), True),
    ],
    ids=["keras rate 0.3", "keras fast_masks=False", "kerasdrop rate 0.3"],
)
def test_an_int_seed_reproduces_dropout_with_its_own_masks(dropout, fast):
    # Masks that are not packed: the dropout's own Bernoulli masks. Without a seed of their own, on PyTorch, both
    # layers draw from torch's global generator outside MCDropout; under it they must draw from the seed states
    # MCDropout hands them (for Keras's Dropout the sampler draws the mask itself).
    model = mcm.classifier(dropout())
    x = np.random.default_rng(2).uniform(0, 1, (5, 8)).astype("float32")
    first = kerasdrop.MCDropout(model, samples=20, seed=7, fast_masks=fast).predict(x, verbose=0, keep_samples=True)
    again = kerasdrop.MCDropout(model, samples=20, seed=7, fast_masks=fast).predict(x, verbose=0, keep_samples=True)
    np.testing.assert_array_equal(first.samples, again.samples)
    assert not np.array_equal(first.samples[0], first.samples[1])


# ---------------------------------------------------------------- inputs


def test_arrays_dataset_generator_and_pydataset_give_the_same_result():
    model = mcm.classifier(keras.layers.Dropout(0.5))
    x = np.random.default_rng(3).uniform(0, 1, (40, 8)).astype("float32")
    y = np.zeros(40, "int64")
    sampler = kerasdrop.MCDropout(model, samples=8, seed=9)
    expected = sampler.predict(x, batch_size=16, verbose=0).mean

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 3

        def __getitem__(self, index):
            return x[16 * index : 16 * index + 16], y[16 * index : 16 * index + 16]

    sources = {
        "generator of (x, y)": ((x[start : start + 16], y[start : start + 16]) for start in range(0, 40, 16)),
        "generator": (x[start : start + 16] for start in range(0, 40, 16)),
        "PyDataset": Batches(),
        "list of lists": x.tolist(),
    }
    for name, source in sources.items():
        batch_size = 16 if name == "list of lists" else None
        np.testing.assert_array_equal(sampler.predict(source, batch_size=batch_size, verbose=0).mean, expected, name)


@backend.tensorflow_only("tf.data")
def test_a_tf_data_dataset_gives_the_result_of_the_arrays():
    import tensorflow as tf

    model = mcm.classifier(keras.layers.Dropout(0.5))
    x = np.random.default_rng(3).uniform(0, 1, (40, 8)).astype("float32")
    sampler = kerasdrop.MCDropout(model, samples=8, seed=9)
    expected = sampler.predict(x, batch_size=16, verbose=0).mean
    dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(40, "int64"))).batch(16)
    np.testing.assert_array_equal(sampler.predict(dataset, verbose=0).mean, expected)
    with pytest.raises(ValueError, match="already batched"):
        sampler.predict(tf.data.Dataset.from_tensor_slices(np.zeros((4, 8), "float32")).batch(2), batch_size=2)


@pytest.mark.filterwarnings("ignore:When providing `inputs` as a dict")
def test_multi_input_model_takes_lists_and_dicts():
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    joined = keras.layers.Concatenate()([keras.layers.Dense(4)(a), b])
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Dropout(0.5)(joined)))
    xa, xb = np.ones((4, 3), "float32"), np.ones((4, 2), "float32")
    sampler = kerasdrop.MCDropout(model, samples=10, seed=1)
    from_list = sampler.predict([xa, xb], verbose=0)
    from_dict = sampler.predict({"b": xb, "a": xa}, verbose=0)
    np.testing.assert_array_equal(from_list.mean, from_dict.mean)
    assert from_list.mean.shape == (4, 1)
    with pytest.raises(ValueError, match="takes 2 input"):
        sampler.predict(xa, verbose=0)
    # A model built on a dict of inputs takes a dict with its keys, whatever the inputs' names.
    keyed = keras.Model({"second": b, "first": a}, model.output)
    from_keys = kerasdrop.MCDropout(keyed, samples=10, seed=1).predict({"first": xa, "second": xb}, verbose=0)
    np.testing.assert_array_equal(from_keys.mean, from_list.mean)
    with pytest.raises(ValueError, match="no entry for the model inputs"):
        sampler.predict({"a": xa}, verbose=0)


def test_wrong_input_shape_and_empty_inputs_raise():
    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=4)
    with pytest.raises(ValueError, match=r"expects arrays of shape \(None, 8\).*\(2, 7\)"):
        sampler.predict(np.zeros((2, 7), "float32"), verbose=0)
    with pytest.raises(ValueError, match="received no inputs"):
        sampler.predict(iter([]), verbose=0)
    with pytest.raises(ValueError, match="already batched"):
        sampler.predict((batch for batch in [np.zeros((2, 8), "float32")]), batch_size=2)


def test_progress_bar(capsys):
    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=3)
    sampler.predict(np.zeros((70, 8), "float32"), batch_size=32, verbose=1)
    assert "70/70" in capsys.readouterr().out
    sampler.predict(np.zeros((70, 8), "float32"), verbose=0)
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- results


def test_entropies_agree_with_metrics_on_the_kept_samples():
    model = mcm.classifier(keras.layers.Dropout(0.5), classes=4)
    x = np.random.default_rng(4).uniform(0, 2, (10, 8)).astype("float32")
    result = kerasdrop.MCDropout(model, samples=30, seed=2).predict(x, verbose=0, keep_samples=True)
    assert result.samples.shape == (30, 10, 4) and result.num_samples == 30
    np.testing.assert_allclose(result.mean, result.samples.mean(0), rtol=1e-5)
    samples = result.samples.astype("float64")
    samples /= samples.sum(-1, keepdims=True)
    np.testing.assert_allclose(result.predictive_entropy(), metrics.predictive_entropy(samples.mean(0)), rtol=1e-4)
    np.testing.assert_allclose(result.expected_entropy(), metrics.expected_entropy(samples), rtol=1e-4)
    np.testing.assert_allclose(result.mutual_information(), metrics.mutual_information(samples), atol=1e-5)


def test_moments_and_entropies_are_float64_computations_of_the_samples():
    """The moments are those of the kept samples computed in float64 then rounded, on every backend (JAX computes
    float64 only in its x64 mode: the host does it, with no dtype warning)."""
    model = mcm.classifier(keras.layers.Dropout(0.5), classes=4)
    x = np.random.default_rng(5).uniform(0, 2, (10, 8)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", DeprecationWarning)  # TensorFlow's tensors predate NumPy 2's copy argument
        result = kerasdrop.MCDropout(model, samples=40, seed=3).predict(x, verbose=0, keep_samples=True)
        predictive = result.predictive_entropy()
    samples = result.samples.astype("float64")
    np.testing.assert_array_equal(result.mean, samples.mean(0).astype("float32"))
    np.testing.assert_array_equal(result.variance, samples.var(0).astype("float32"))
    mean = samples.mean(0).astype("float32").astype("float64")
    expected = -np.sum(np.where(mean > 0, mean * np.log(np.where(mean > 0, mean, 1.0)), 0.0), axis=-1)
    np.testing.assert_array_equal(predictive, expected.astype("float32"))


def test_single_sigmoid_output_is_read_as_two_classes():
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dropout(0.5)(x)))
    data = np.random.default_rng(5).normal(size=(6, 4)).astype("float32")
    result = kerasdrop.MCDropout(model, samples=20, seed=3).predict(data, verbose=0, keep_samples=True)
    p = result.samples[..., 0].astype("float64")
    two = np.stack([1 - p, p], axis=-1)
    np.testing.assert_allclose(result.mutual_information(), metrics.mutual_information(two), atol=1e-5)


def test_entropies_of_a_regression_output_raise():
    result = kerasdrop.MCDropout(mcm.linear_readout(keras.layers.Dropout(0.5), WEIGHTS), samples=5).predict(
        X, verbose=0
    )
    for method in (result.predictive_entropy, result.expected_entropy, result.mutual_information):
        with pytest.raises(ValueError, match="need probability outputs.*output_type="):
            method()


# ---------------------------------------------------------------- argument validation


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"samples": 0}, ValueError),
        ({"samples": 2.5}, TypeError),
        ({"samples": True}, TypeError),
        ({"seed": "a"}, TypeError),
        ({"memory_budget_mb": 0}, ValueError),
        ({"memory_budget_mb": float("nan")}, ValueError),
        ({"fast_masks": "yes"}, TypeError),
    ],
)
def test_bad_constructor_arguments(kwargs, error):
    model = mcm.classifier(keras.layers.Dropout(0.5))
    with pytest.raises(error, match=f"`{next(iter(kwargs))}`"):
        kerasdrop.MCDropout(model, **kwargs)


@pytest.mark.parametrize(
    "kwargs, error",
    [({"batch_size": 0}, ValueError), ({"verbose": 3}, ValueError), ({"keep_samples": "x"}, TypeError)],
)
def test_bad_predict_arguments(kwargs, error):
    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=2)
    with pytest.raises(error, match=f"`{next(iter(kwargs))}`"):
        sampler.predict(np.zeros((2, 8), "float32"), **kwargs)


# ---------------------------------------------------------------- output types


def _head(units, activation=None, inputs=6, seed=0):
    x = keras.Input((inputs,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(8, activation="relu", kernel_initializer=_init(seed))(x))
    return keras.Model(x, keras.layers.Dense(units, activation=activation, kernel_initializer=_init(seed + 1))(hidden))


def _init(seed):
    return keras.initializers.RandomNormal(stddev=1.0, seed=seed)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("units", [4, 1])
def test_logits_go_through_softmax_or_sigmoid_sample_by_sample(units):
    model = _head(units)
    x = np.random.default_rng(9).normal(size=(5, 6)).astype("float32")
    raw = kerasdrop.MCDropout(model, samples=40, seed=3).predict(x, verbose=0, keep_samples=True)
    assert raw.output_type == "regression"  # auto: no softmax or sigmoid on the output layer
    logits = kerasdrop.MCDropout(model, samples=40, seed=3, output_type="logits").predict(
        x, verbose=0, keep_samples=True
    )
    z = raw.samples.astype("float64")
    probs = _softmax(z) if units > 1 else 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(logits.samples, probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits.mean, probs.mean(0), rtol=1e-5, atol=1e-6)
    categorical = probs if units > 1 else np.concatenate([1 - probs, probs], axis=-1)
    np.testing.assert_allclose(logits.predictive_entropy(), metrics.predictive_entropy(categorical.mean(0)), 1e-4)
    np.testing.assert_allclose(logits.expected_entropy(), metrics.expected_entropy(categorical), rtol=1e-4)


def test_auto_reads_the_activation_never_the_values():
    x = np.random.default_rng(10).uniform(0, 1, (5, 6)).astype("float32")
    # Outputs that happen to lie in [0, 1] and sum to 1 are still a regression without softmax or sigmoid.
    inputs = keras.Input((6,))
    squashed = keras.layers.Lambda(lambda v: keras.ops.softmax(v))(keras.layers.Dropout(0.5)(inputs))
    regression = kerasdrop.MCDropout(keras.Model(inputs, squashed), samples=5).predict(x, verbose=0)
    assert regression.output_type == "regression"
    with pytest.raises(ValueError, match="read as regression.*output_type='probabilities'"):
        regression.predictive_entropy()
    # Several sigmoid units are read as independent Bernoulli probabilities: their entropies add up.
    multi_label = kerasdrop.MCDropout(_head(3, "sigmoid"), samples=30, seed=1).predict(x, verbose=0, keep_samples=True)
    p = multi_label.samples.astype("float64")
    binary = np.stack([1 - p, p], axis=-1)
    expected = sum(metrics.expected_entropy(binary[..., unit, :]) for unit in range(3))
    np.testing.assert_allclose(multi_label.expected_entropy(), expected, rtol=1e-4)
    # A softmax model read as regression on request: moments only.
    forced = kerasdrop.MCDropout(_head(3, "softmax"), samples=5, output_type="regression").predict(x, verbose=0)
    with pytest.raises(ValueError, match="need probability outputs"):
        forced.mutual_information()


@pytest.mark.parametrize(
    "output_type, error, message",
    [
        ("softmax", ValueError, "`output_type`.*Received: output_type='softmax'"),
        (["auto", "auto"], ValueError, "`output_type`.*a list of 1.*has 1 output"),
        ({"x": "auto"}, ValueError, "`output_type`.*dict with the keys"),
        ([], ValueError, "`output_type`"),
        (3, ValueError, "`output_type`"),
    ],
)
def test_bad_output_types(output_type, error, message):
    with pytest.raises(error, match=message):
        kerasdrop.MCDropout(_head(3, "softmax"), output_type=output_type)


# ---------------------------------------------------------------- non-finite rows, bad inputs


def test_non_finite_rows_get_nan_moments_alone():
    model = _head(3, "softmax")
    x = np.random.default_rng(11).normal(size=(4, 6)).astype("float32")
    clean = kerasdrop.MCDropout(model, samples=20, seed=2).predict(x, verbose=0)
    broken = x.copy()
    broken[2, 1] = np.inf
    with pytest.warns(RuntimeWarning, match="1 of 4 inputs gave a NaN or inf"):
        result = kerasdrop.MCDropout(model, samples=20, seed=2).predict(broken, verbose=0)
    for values in (result.mean, result.variance, result.predictive_entropy(), result.mutual_information()):
        assert np.all(np.isnan(values[2]))
    keep = [0, 1, 3]  # the same masks: the other rows are exactly the clean run's
    np.testing.assert_array_equal(result.mean[keep], clean.mean[keep])
    np.testing.assert_array_equal(result.expected_entropy()[keep], clean.expected_entropy()[keep])


def test_none_and_string_inputs_and_bad_strategy_are_refused():
    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=2)
    with pytest.raises(ValueError, match="`x`.*Received: x=None"):
        sampler.predict(None)
    with pytest.raises(TypeError, match="`x`.*arrays of numbers.*dtype <U"):
        sampler.predict(np.array([["a"] * 8]))
    with pytest.raises(TypeError, match="`x`.*arrays or tensors of numbers.*<str>"):
        sampler.predict({"a": "text"})
    expected = {
        "tensorflow": "None or a tf.distribute.Strategy",
        "jax": "None or a keras.distribution.DataParallel",
        "torch": "None with the torch backend",
    }[backend.BACKEND]
    with pytest.raises(ValueError, match=f"`strategy`.*{expected}.*Received: strategy='mirrored'"):
        kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), strategy="mirrored")


def test_a_list_of_output_types_is_refused_for_dict_outputs():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(0.5)(inputs)
    heads = {"zvalue": keras.layers.Dense(1)(hidden), "aclass": keras.layers.Dense(3, activation="softmax")(hidden)}
    model = keras.Model(inputs, heads)
    with pytest.raises(ValueError, match="`output_type`.*dict with the keys.*\\['aclass', 'zvalue'\\]"):
        kerasdrop.MCDropout(model, output_type=["regression", "probabilities"])
    results = kerasdrop.MCDropout(model, samples=5, output_type={"zvalue": "regression", "aclass": "auto"}).predict(
        np.ones((2, 6), "float32"), verbose=0
    )
    assert results["zvalue"].output_type == "regression" and results["aclass"].output_type == "probabilities"
    assert results["zvalue"].mean.shape == (2, 1) and results["aclass"].mean.shape == (2, 3)


def test_rank_one_outputs_are_one_probability_per_input():
    inputs = keras.Input((6,))
    logit = keras.layers.Reshape(())(keras.layers.Dense(1)(keras.layers.Dropout(0.5)(inputs)))
    model = keras.Model(inputs, logit)
    x = np.random.default_rng(12).normal(size=(4, 6)).astype("float32")
    result = kerasdrop.MCDropout(model, samples=30, seed=1, output_type="logits").predict(
        x, verbose=0, keep_samples=True
    )
    assert result.mean.shape == (4,) and result.samples.shape == (30, 4)
    p = result.samples.astype("float64")
    two = np.stack([1 - p, p], axis=-1)
    np.testing.assert_allclose(result.expected_entropy(), metrics.expected_entropy(two), rtol=1e-4)
    np.testing.assert_allclose(result.predictive_entropy(), metrics.predictive_entropy(two.mean(0)), rtol=1e-4)


def test_auto_on_a_subclassed_model_warns_that_it_reads_regression():
    class Classifier(keras.Model):
        def __init__(self):
            super().__init__()
            self.dropout, self.out = keras.layers.Dropout(0.5), keras.layers.Dense(3, activation="softmax")

        def call(self, inputs, training=False):
            return self.out(self.dropout(inputs, training=training))

    model = Classifier()
    model(np.ones((1, 4), "float32"))
    with pytest.warns(UserWarning, match="cannot see the output activation"):
        result = kerasdrop.MCDropout(model, samples=4).predict(np.ones((2, 4), "float32"), verbose=0)
    assert result.output_type == "regression"
    chosen = kerasdrop.MCDropout(model, samples=4, output_type="probabilities").predict(np.ones((2, 4)), verbose=0)
    assert chosen.predictive_entropy().shape == (2,)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("shared_input", [False, True], ids=["masked-untiled", "masked-tiled"])
def test_dropped_inf_is_zero_in_every_sample(fast, shared_input):
    inputs = keras.Input((6,))
    dropped = keras.layers.Dropout(0.5)(inputs)
    # With the input also an output, the dropout masks a tiled copy; alone, it masks the untiled input.
    model = keras.Model(inputs, [dropped, inputs] if shared_input else dropped)
    x = np.ones((3, 6), "float32")
    x[:, 2] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the inf rows: NaN moments, as documented
        result = kerasdrop.MCDropout(model, samples=40, seed=1, fast_masks=fast).predict(
            x, verbose=0, keep_samples=True
        )
    samples = (result[0] if shared_input else result).samples
    column = samples[:, :, 2]
    assert not np.isnan(samples).any()
    assert (column == 0).any() and np.isinf(column).any()
    np.testing.assert_array_equal(np.isin(np.delete(samples, 2, axis=2), [0.0, 2.0]), True)


# ---------------------------------------------------------------- set_mc: Monte Carlo mode for a whole model


def test_set_mc_switches_nested_layers_and_retraces():
    inner = keras.Sequential([keras.Input((16,)), kerasdrop.Dropout(0.5), keras.layers.Dense(8)])
    model = keras.Sequential([keras.Input((16,)), inner, kerasdrop.GaussianDropout(0.3), keras.layers.Dense(2)])
    x = np.random.default_rng(0).normal(size=(8, 16)).astype("float32")
    deterministic = model.predict(x, verbose=0)  # traces and caches the predict function
    np.testing.assert_array_equal(model.predict(x, verbose=0), deterministic)
    assert kerasdrop.set_mc(model, True) == 2
    assert all(layer.mc for layer in (inner.layers[0], model.layers[1]))
    assert not np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    assert kerasdrop.set_mc(model, enabled=False) == 2
    np.testing.assert_array_equal(model.predict(x, verbose=0), deterministic)


def test_set_mc_on_single_layer_and_bad_flag():
    layer = kerasdrop.Dropout(0.5)
    assert kerasdrop.set_mc(layer) == 1 and layer.mc
    with pytest.raises(TypeError, match="enabled"):
        kerasdrop.set_mc(layer, enabled="yes")
