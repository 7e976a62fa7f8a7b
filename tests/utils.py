"""Checks that every stochastic layer must pass (STYLE.md, "Tests"), shared by the tests of every family.

Statistical checks use 5-sigma bounds computed from the number of draws; the fixed seeds make them repeatable.
"""

import math

import keras
import numpy as np
import tensorflow as tf

SIGMAS = 5.0


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def assert_binomial_count(count, n, p):
    """``count`` successes in ``n`` Bernoulli(p) trials lies within 5 sigma of ``n p``."""
    bound = SIGMAS * math.sqrt(n * p * (1.0 - p))
    assert abs(count - n * p) <= bound, f"count {count} of {n}, expected {n * p:.1f} +- {bound:.1f}"


def assert_mean_close(values, expected_mean, expected_std):
    """The mean of i.i.d. ``values`` (standard deviation ``expected_std``) lies within 5 sigma of ``expected_mean``."""
    values = np.asarray(values, dtype="float64").ravel()
    bound = SIGMAS * expected_std / math.sqrt(values.size)
    mean = values.mean()
    assert abs(mean - expected_mean) <= bound, f"mean {mean:.5f}, expected {expected_mean:.5f} +- {bound:.5f}"


def assert_variance_close(values, expected_variance, expected_fourth_moment):
    """The sample variance of i.i.d. ``values`` lies within 5 sigma of ``expected_variance``.

    The standard error of the sample variance is ``sqrt((mu4 - sigma^4) / n)``, with ``mu4`` the fourth central
    moment.
    """
    values = np.asarray(values, dtype="float64").ravel()
    bound = SIGMAS * math.sqrt((expected_fourth_moment - expected_variance**2) / values.size)
    variance = values.var()
    assert abs(variance - expected_variance) <= bound, (
        f"variance {variance:.5f}, expected {expected_variance:.5f} +- {bound:.5f}"
    )


def train_call(layer, x):
    return to_numpy(layer(x, training=True))


def assert_fresh_noise_each_call(layer_factory, x):
    """Successive training calls draw new noise eagerly, in a tf.function and under XLA (jit_compile=True)."""
    layer = layer_factory()
    assert not np.array_equal(train_call(layer, x), train_call(layer, x)), "eager calls repeated their noise"
    x = tf.convert_to_tensor(x)
    for jit in (False, True):
        layer = layer_factory()
        function = tf.function(lambda v, layer=layer: layer(v, training=True), jit_compile=jit)
        first, second = to_numpy(function(x)), to_numpy(function(x))
        assert not np.array_equal(first, second), f"tf.function(jit_compile={jit}) repeated its noise"


def assert_same_seed_same_noise(layer_factory, x, calls=3):
    """Two fresh layers built with the same seed give the same outputs, call for call; and calls differ."""
    first, second = layer_factory(), layer_factory()
    outputs = []
    for _ in range(calls):
        a, b = train_call(first, x), train_call(second, x)
        np.testing.assert_array_equal(a, b)
        outputs.append(a)
    assert not np.array_equal(outputs[0], outputs[1])


class Recorder(keras.layers.Layer):
    """Identity layer that keeps a copy of its last input in a variable, to look at what `fit` saw."""

    def build(self, input_shape):
        self.last = self.add_weight(shape=input_shape, initializer="zeros", trainable=False, name="last")

    def call(self, inputs):
        self.last.assign(inputs)
        return inputs


def recorded_fit_outputs(layer, x, epochs=3):
    """The outputs of ``layer`` at each step of ``fit`` on ``x`` (one batch an epoch, one step an execution)."""
    recorder = Recorder()
    inputs = keras.Input(x.shape[1:], batch_size=x.shape[0])
    outputs = recorder(layer(inputs))
    model = keras.Model(inputs, keras.layers.Flatten()(outputs))
    model.compile(optimizer="sgd", loss="mse")
    seen = []
    callback = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(to_numpy(recorder.last))
    )
    target = np.zeros((x.shape[0], int(np.prod(model.output_shape[1:]))), "float32")
    model.fit(x, target, batch_size=x.shape[0], epochs=epochs, verbose=0, callbacks=[callback])
    return seen


def assert_fresh_noise_in_fit(layer, x):
    """Inside `fit`, each training step sees different noise."""
    seen = recorded_fit_outputs(layer, x)
    for previous, current in zip(seen, seen[1:], strict=False):
        assert not np.array_equal(previous, current), "fit repeated the same noise at two steps"


def assert_config_round_trip(layer):
    """``from_config(get_config())`` rebuilds a layer with exactly the same config, through JSON too."""
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    serialized = keras.saving.serialize_keras_object(layer)
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(layer)
    assert restored.get_config() == config


def save_and_load(model, tmp_path, name="model.keras"):
    """Saves ``model`` as a `.keras` file and loads it back with no custom_objects."""
    path = tmp_path / name
    model.save(path)
    return keras.saving.load_model(path)


def assert_mc_stays_stochastic(model, x, tmp_path):
    """A model with `mc=True` layers is stochastic through predict, a `.keras` reload and an exported SavedModel."""
    assert not np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0)), "predict was deterministic"
    reloaded = save_and_load(model, tmp_path)
    first, second = reloaded.predict(x, verbose=0), reloaded.predict(x, verbose=0)
    assert not np.array_equal(first, second), "the reloaded model was deterministic"
    export_dir = str(tmp_path / "exported")
    model.export(export_dir, verbose=False)
    served = tf.saved_model.load(export_dir)
    x = tf.convert_to_tensor(x)
    assert not np.array_equal(served.serve(x).numpy(), served.serve(x).numpy()), "the SavedModel was deterministic"


def assert_dtype_policy(layer_factory, x, policy):
    """Under ``policy`` the layer computes in its compute dtype and outputs finite values while training."""
    layer = layer_factory(dtype=policy)
    output = layer(x, training=True)
    assert keras.backend.standardize_dtype(output.dtype) == layer.compute_dtype
    assert np.all(np.isfinite(to_numpy(keras.ops.cast(output, "float32"))))
    for variable in layer.weights:
        if variable.trainable:
            assert keras.backend.standardize_dtype(variable.dtype) == layer.variable_dtype
    return output


def assert_keras_file_round_trip(model, x, tmp_path):
    """A `.keras` save and reload (no custom_objects) keeps the layer types, their configs and the test outputs."""
    reloaded = save_and_load(model, tmp_path)
    assert [type(layer) for layer in reloaded.layers] == [type(layer) for layer in model.layers]
    assert [layer.get_config() for layer in reloaded.layers] == [layer.get_config() for layer in model.layers]
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    return reloaded
