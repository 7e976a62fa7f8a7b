"""MCDropout(consistent=True): sample t of every input is drawn by one and the same network.

Copies of one input get identical sample-t outputs in every batch, sub-batch and chunk of samples, in every replica,
and in a second call of a seeded predictor; with consistent=False they differ. Each input's own distribution does
not depend on the mode. A noise layer whose draws cannot be shared is refused by name.
"""

import keras
import numpy as np
import pytest

import kerasdrop
from tests import backend, utils
from tests.layers import every_layer

# Enough that the samples of a layer with one bit of noise a sample (DropPath) all agree with probability 2**-19.
SAMPLES = 20
DISTINCT = 4
# Inputs 4, 5 and 6 are copies of input 0; with batch_size=3 they fall in other batches than input 0.
COPIES = (4, 5, 6)


def _pool(input_shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(DISTINCT, *input_shape[1:])).astype("float32")
    return np.concatenate([x, x[[0] * len(COPIES)]])


def _layer(case):
    """The case's layer with seeded noise and, where it has a kernel, seeded weights: with unseeded weights a test's
    outcome would hang on the tests run before it (a StandoutDense whose ReLU units are all off for input 0 outputs 0
    whatever its mask)."""
    if not case.has_kernel:
        return case.make(seed=1)
    return case.make(seed=1, kernel_initializer=keras.initializers.GlorotUniform(seed=2))


def _model(layer, input_shape):
    inputs = keras.Input(input_shape[1:])
    outputs = layer(inputs)
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return keras.Model(inputs, outputs)


# How a predict call is cut: every input and sample in one sampler call; or batches of 3 inputs, cut further by a
# budget of 4 rows a call into sub-batches of one input and chunks of 4 samples.
CUTS = {"one call": (None, None), "batches, sub-batches and chunks": (4, 3)}


def _samples(model, x, consistent, cut="one call"):
    rows, batch_size = CUTS[cut]
    mc = kerasdrop.MCDropout(model, samples=SAMPLES, seed=3, consistent=consistent)
    if rows is not None:
        row_bytes = mc.rows_per_call(x[:1])[0]
        mc = kerasdrop.MCDropout(
            model, samples=SAMPLES, seed=3, memory_budget_mb=rows * row_bytes / 2**20, consistent=consistent
        )
        assert mc.rows_per_call(x[:1])[1] == rows
    return mc, mc.predict(x, verbose=0, keep_samples=True, batch_size=batch_size)


def _assert_copies_share_samples(samples):
    """Equal, up to the few ulps by which a backend's kernels may round one row of a batch differently from another
    (oneDNN's convolutions do); a different draw differs by the size of the noise."""
    for copy in COPIES:
        np.testing.assert_allclose(samples[:, copy], samples[:, 0], rtol=1e-6, atol=1e-6)


def _assert_samples_differ(samples):
    """Not every sample equal (the samples are draws of different networks)."""
    assert any(not np.array_equal(samples[t], samples[0]) for t in range(1, SAMPLES))


@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("case", every_layer.params())
def test_copies_of_an_input_share_every_sample(case, cut):
    layer = _layer(case)
    x = _pool(case.input_shape)
    model = _model(layer, case.input_shape)
    mc, result = _samples(model, x, consistent=True, cut=cut)
    assert result.consistent
    _assert_copies_share_samples(result.samples)
    _assert_samples_differ(result.samples)
    # The same seeded predictor, called again on the inputs in another order and other batches: the same networks.
    again = mc.predict(x[::-1], verbose=0, keep_samples=True, batch_size=2)
    np.testing.assert_allclose(again.samples[:, ::-1], result.samples, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", every_layer.params())
def test_copies_of_an_input_draw_their_own_samples_by_default(case):
    layer = _layer(case)
    x = _pool(case.input_shape)
    # Copies in other batches: a layer whose noise is one draw a call (DropConnect) shares it within a call anyway.
    _, result = _samples(_model(layer, case.input_shape), x, consistent=False, cut="batches, sub-batches and chunks")
    assert not result.consistent
    assert any(not np.array_equal(result.samples[:, copy], result.samples[:, 0]) for copy in COPIES)


KERAS_NOISE = {
    "Dropout-packed": (lambda: keras.layers.Dropout(0.5, seed=1), (4, 8)),
    "Dropout": (lambda: keras.layers.Dropout(0.3, seed=1), (4, 8)),
    "Dropout-noise_shape": (lambda: keras.layers.Dropout(0.3, noise_shape=(None, 1, 4), seed=1), (2, 5, 4)),
    "SpatialDropout1D": (lambda: keras.layers.SpatialDropout1D(0.3, seed=1), (2, 5, 4)),
    "SpatialDropout2D": (lambda: keras.layers.SpatialDropout2D(0.3, seed=1), (2, 4, 4, 3)),
    "SpatialDropout2D-channels_first": (
        lambda: keras.layers.SpatialDropout2D(0.3, data_format="channels_first", seed=1),
        (2, 3, 4, 4),
    ),
    "SpatialDropout3D": (lambda: keras.layers.SpatialDropout3D(0.3, seed=1), (2, 3, 3, 3, 2)),
    "GaussianDropout": (lambda: keras.layers.GaussianDropout(0.3, seed=1), (4, 8)),
    "GaussianNoise": (lambda: keras.layers.GaussianNoise(0.4, seed=1), (4, 8)),
    "AlphaDropout": (lambda: keras.layers.AlphaDropout(0.3, seed=1), (4, 8)),
    "LSTM": (lambda: keras.layers.LSTM(4, dropout=0.3, recurrent_dropout=0.3, seed=1), (2, 5, 3)),
    "GRU": (lambda: keras.layers.GRU(4, dropout=0.3, recurrent_dropout=0.3, seed=1), (2, 5, 3)),
    "SimpleRNN": (lambda: keras.layers.SimpleRNN(4, dropout=0.3, recurrent_dropout=0.3, seed=1), (2, 5, 3)),
}


@backend.slow_on_jax
@pytest.mark.parametrize("cut", list(CUTS))
@pytest.mark.parametrize("name", list(KERAS_NOISE))
def test_keras_noise_layers_share_their_draws(name, cut):
    make, input_shape = KERAS_NOISE[name]
    x = _pool(input_shape)
    model = _model(make(), input_shape)
    _, joint = _samples(model, x, consistent=True, cut=cut)
    _assert_copies_share_samples(joint.samples)
    _assert_samples_differ(joint.samples)
    _, independent = _samples(model, x, consistent=False, cut=cut)
    assert any(not np.array_equal(independent.samples[:, copy], independent.samples[:, 0]) for copy in COPIES)


MARGINALS = {
    "kerasdrop.Dropout": (lambda: kerasdrop.Dropout(0.3, seed=1), (4, 8)),
    "kerasdrop.SpatialDropout1D": (lambda: kerasdrop.SpatialDropout1D(0.5, seed=1), (2, 5, 4)),
    "kerasdrop.DropBlock2D": (lambda: kerasdrop.DropBlock2D(0.3, 3, seed=1), (2, 6, 6, 2)),
    "kerasdrop.DropBlock2D-channels_first": (
        lambda: kerasdrop.DropBlock2D(0.3, 3, data_format="channels_first", seed=1),
        (2, 2, 6, 6),
    ),
    "kerasdrop.Cutout": (lambda: kerasdrop.Cutout(2, seed=1), (2, 5, 5, 2)),
    "kerasdrop.VariationalLSTM": (
        lambda: kerasdrop.VariationalLSTM(3, dropout=0.3, recurrent_dropout=0.3, seed=1),
        (2, 4, 3),
    ),
    "Dropout-packed": KERAS_NOISE["Dropout-packed"],
    "Dropout": KERAS_NOISE["Dropout"],
    "SpatialDropout2D-channels_first": KERAS_NOISE["SpatialDropout2D-channels_first"],
    "GaussianDropout": KERAS_NOISE["GaussianDropout"],
    "GaussianNoise": KERAS_NOISE["GaussianNoise"],
    "AlphaDropout": KERAS_NOISE["AlphaDropout"],
    "LSTM": KERAS_NOISE["LSTM"],
    "GRU": KERAS_NOISE["GRU"],
    "SimpleRNN": KERAS_NOISE["SimpleRNN"],
}


@backend.slow_on_jax
@pytest.mark.parametrize("name", list(MARGINALS))
def test_each_input_has_the_same_distribution_in_both_modes(name):
    """Each element's mean and variance over 2,000 samples agree between the modes within 5 standard errors."""
    make, input_shape = MARGINALS[name]
    x = _pool(input_shape)[:2]
    model = _model(make(), input_shape)
    samples = {
        consistent: kerasdrop.MCDropout(model, samples=2000, seed=5, consistent=consistent)
        .predict(x, verbose=0, keep_samples=True)
        .samples
        for consistent in (False, True)
    }
    utils.assert_same_two_moments(samples[True], samples[False])


def test_the_joint_mode_is_exactly_keras_own_training_call_for_one_input():
    """For a batch of one input, Keras's noise layers computed by the sampler have the distribution of Keras's own
    training-mode call (here: the same mean and variance of every unit as 2,000 training calls)."""
    layer = keras.layers.AlphaDropout(0.3, seed=7)
    x = _pool((1, 8))[:1]
    model = _model(layer, (1, 8))
    joint = kerasdrop.MCDropout(model, samples=2000, seed=5, consistent=True).predict(x, verbose=0, keep_samples=True)
    tiled = np.repeat(x, 2000, axis=0)
    reference = utils.to_numpy(keras.layers.AlphaDropout(0.3, seed=8)(tiled, training=True))[:, None]
    utils.assert_same_two_moments(joint.samples, reference)


def _multi_output_model():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    noisy = kerasdrop.Dropout(0.5, seed=1)(hidden)
    return keras.Model(inputs, [keras.layers.Dense(3, activation="softmax")(noisy), keras.layers.Dense(1)(noisy)])


def test_every_output_of_a_sample_comes_from_the_same_network():
    x = _pool((1, 6))
    _, results = _samples(_multi_output_model(), x, consistent=True, cut="batches, sub-batches and chunks")
    for result in results:
        assert result.consistent
        _assert_copies_share_samples(result.samples)


def test_an_unseeded_predictor_draws_new_networks_each_call():
    x = _pool((1, 8))
    model = _model(kerasdrop.Dropout(0.5), (1, 8))
    mc = kerasdrop.MCDropout(model, samples=SAMPLES, consistent=True)
    first, second = (mc.predict(x, verbose=0, keep_samples=True).samples for _ in range(2))
    assert not np.array_equal(first, second)
    _assert_copies_share_samples(second)


@backend.tensorflow_only("tf.distribute")
def test_replicas_sample_networks_of_their_own_shared_by_every_input(strategy):
    x = _pool((1, 64))  # 64 bits of mask a network: two networks are the same with probability 2**-64
    with strategy.scope():
        model = _model(kerasdrop.Dropout(0.5, seed=1), (1, 64))
    _assert_replicas_share_networks_of_their_own(model, x, strategy)


def _assert_replicas_share_networks_of_their_own(model, x, strategy):
    """Every input of a sample sees one network, and the replicas' networks differ: replica 0 gives the first half
    of the samples of each call and replica 1 the second."""
    mc = kerasdrop.MCDropout(model, samples=SAMPLES, seed=2, strategy=strategy, consistent=True)
    assert mc.replicas == 2
    samples = mc.predict(x, verbose=0, keep_samples=True, batch_size=3).samples
    _assert_copies_share_samples(samples)
    assert len({samples[t].tobytes() for t in range(SAMPLES)}) == SAMPLES


def _attention_model():
    inputs = keras.Input((4, 6))
    attended = keras.layers.MultiHeadAttention(2, 3, dropout=0.2, name="attention")(inputs, inputs)
    outputs = kerasdrop.Dropout(0.3, name="kd_dropout")(attended)
    return keras.Model(inputs, outputs)


def test_attention_dropout_is_refused_by_name():
    with pytest.raises(ValueError, match=r"consistent=True.*'attention'.*MultiHeadAttention"):
        kerasdrop.MCDropout(_attention_model(), consistent=True)
    # Left out by name, the rest samples jointly.
    mc = kerasdrop.MCDropout(_attention_model(), stochastic_layers=["kd_dropout"], consistent=True)
    assert mc.stochastic_layers == ["kd_dropout"]


class _Block(keras.layers.Layer):
    """A user's layer that calls Keras's Dropout itself."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(4)
        self.dropout = keras.layers.Dropout(0.5)

    def call(self, inputs, training=False):
        return self.dropout(self.dense(inputs), training=training)


def test_keras_noise_inside_a_user_layer_is_refused_by_name():
    inputs = keras.Input((6,))
    block = _Block(name="block")
    model = keras.Model(inputs, block(inputs))
    with pytest.raises(ValueError, match=r"consistent=True.*Dropout.*called inside another layer"):
        kerasdrop.MCDropout(model, consistent=True)
    kerasdrop.MCDropout(model)  # per-input draws still sample it


@pytest.mark.parametrize("value", [1, "yes", None])
def test_consistent_must_be_a_bool(value):
    model = _model(kerasdrop.Dropout(0.5), (1, 4))
    with pytest.raises(TypeError, match=r"`consistent`.*Received: consistent="):
        kerasdrop.MCDropout(model, consistent=value)


def test_batch_bald_on_joint_samples_picks_one_copy_of_a_repeated_input():
    """A pool of distinct inputs plus four copies of its top-BALD input: BatchBALD on joint draws takes one copy,
    where BALD's top 5 are the five copies.

    The inputs are large, so that each sample is confident: once one copy's label is known, the networks that agree
    with it are known, and a second copy's label adds almost nothing, I(y_copy; w | y_first) ~ 0."""
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(32, activation="relu")(inputs)
    hidden = keras.layers.Dropout(0.5)(hidden)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(hidden))
    distinct = rng.normal(size=(30, 5)).astype("float32") * 20  # confident samples
    mc = kerasdrop.MCDropout(model, samples=40, seed=0, consistent=True)
    top = int(np.argmax(kerasdrop.acquisition.bald(mc.predict(distinct, verbose=0, keep_samples=True))))
    pool = np.concatenate([distinct, distinct[[top] * 4]])
    result = mc.predict(pool, verbose=0, keep_samples=True)
    copies = {top, 30, 31, 32, 33}
    assert set(kerasdrop.acquisition.top_k(kerasdrop.acquisition.bald(result), 5)) == copies
    chosen = kerasdrop.acquisition.batch_bald(result, k=5)
    assert len(copies & set(chosen.tolist())) == 1


@pytest.mark.skipif(
    backend.BACKEND != "jax",
    reason="keras.distribution.DataParallel is JAX's; TensorFlow's replicas "
    "are tested with MirroredStrategy above, and PyTorch has no data-parallel sampling",
)
def test_devices_of_a_data_parallel_distribution_share_the_networks_of_a_sample():
    devices = keras.distribution.list_devices()
    assert len(devices) >= 2, "conftest asks JAX for two host devices"
    distribution = keras.distribution.DataParallel(devices=devices[:2])
    x = _pool((1, 64))
    _assert_replicas_share_networks_of_their_own(_model(kerasdrop.Dropout(0.5, seed=1), (1, 64)), x, distribution)


@pytest.mark.slow
@backend.tensorflow_only("SavedModel export")
def test_an_exported_predictor_serves_joint_draws(tmp_path):
    """The SavedModel of a consistent predictor draws one network per sample for every input of a call: copies of
    an input get the same moments, which per-input draws do not give."""
    import tensorflow as tf

    x = _pool((1, 64))
    model = _model(kerasdrop.Dropout(0.5, seed=1), (1, 64))
    for consistent in (True, False):
        path = str(tmp_path / f"consistent_{consistent}")
        kerasdrop.MCDropout(model, samples=SAMPLES, seed=2, consistent=consistent).export(path)
        loaded = tf.saved_model.load(path)  # kept: its variables live as long as it does
        served = loaded.serve(tf.constant(x))
        mean, variance = served["mean"].numpy(), served["variance"].numpy()
        for copy in COPIES:
            same = np.array_equal(mean[copy], mean[0]) and np.array_equal(variance[copy], variance[0])
            assert same == consistent
