"""Small models and analytic moments shared by the Monte Carlo dropout tests."""

import math

import keras
import numpy as np

from tests import backend, utils


def linear_readout(noise_layer, weights, name=None):
    """``Input(d) -> noise_layer -> Dense(1, no bias)`` with kernel ``weights``: ``y = sum_j w_j noisy(x)_j``."""
    inputs = keras.Input((len(weights),))
    readout = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, readout(noise_layer(inputs)), name=name)
    readout.set_weights([np.reshape(weights, (-1, 1))])
    return model


def dropout_readout_moments(x, weights, rate, gaussian=False):
    """Mean, variance and fourth central moment of ``sum_j w_j x_j e_j`` with inverted-dropout noise ``e_j``.

    ``e_j = m_j / keep``, ``m_j ~ Bernoulli(keep)`` (or ``e_j ~ N(1, rate/keep)`` when ``gaussian``); the terms are
    independent, so variances and fourth cumulants add.
    """
    keep = 1.0 - rate
    terms = np.asarray(x, "float64") * np.asarray(weights, "float64")
    variance_e = rate / keep
    fourth_e = 3 * variance_e**2 if gaussian else keep * (1 / keep - 1) ** 4 + rate  # E[(e - 1)^4]
    variance = np.sum(terms**2) * variance_e
    fourth_cumulant = np.sum(terms**4) * (fourth_e - 3 * variance_e**2)
    return float(np.sum(terms)), float(variance), float(fourth_cumulant + 3 * variance**2)


def assert_sample_moments(samples, mean, variance, fourth):
    """The mean and the variance of i.i.d. ``samples`` lie within 5 sigma of the analytic values."""
    utils.assert_mean_close(samples, mean, math.sqrt(variance))
    utils.assert_variance_close(samples, variance, fourth)


def assert_means_agree(first, second, first_count, second_count, first_var, second_var):
    """Two Monte Carlo means of the same quantity agree within 5 standard errors, element by element."""
    error = np.sqrt(first_var / first_count + second_var / second_count) + 1e-7
    z = np.abs(first - second) / error
    assert z.max() < 5.0, f"max |z| {z.max():.2f}"


def assert_split_over_two_replicas(result, reference):
    """``result`` (kept samples) was drawn over two replicas, each half of every call from one of them: its means
    agree with a single-replica ``reference`` of as many samples, and no sample of the first half repeats the one at
    the same place in the second half (as it would if both replicas drew the same masks)."""
    count = result.num_samples
    assert_means_agree(result.mean, reference.mean, count, count, result.variance, reference.variance)
    first, second = result.samples[: count // 2], result.samples[count // 2 :]
    assert not any(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def independent_calls(model, x, count):
    """``count`` calls of ``model(x, training=True)`` (compiled once): the reference samples, ``(count, N, ...)``."""
    call = backend.compiled(lambda inputs: model(inputs, training=True), [model])
    x = keras.ops.convert_to_tensor(x)
    return np.stack([utils.to_numpy(call(x)) for _ in range(count)])


def variables_snapshot(model):
    return {variable.path: utils.to_numpy(variable).copy() for variable in model.variables}


def assert_variables_unchanged(model, snapshot):
    current = variables_snapshot(model)
    assert current.keys() == snapshot.keys()
    for path, value in snapshot.items():
        np.testing.assert_array_equal(current[path], value, err_msg=f"variable {path} changed")


def on_host(function, count, inputs):
    """``inputs``, after ``function(count)`` has run in Python, each time the computation runs (not once per trace):
    through ``tf.py_function`` in a ``tf.function``, ``jax.debug.callback`` under ``jax.jit``, directly on PyTorch.
    ``count`` is a scalar int tensor (TensorFlow) or a Python int."""
    if backend.BACKEND == "tensorflow":
        import tensorflow as tf

        counted = tf.py_function(function, [count], tf.int32)
        with tf.control_dependencies([counted]):
            return tf.identity(inputs)
    if backend.BACKEND == "jax":
        import jax

        jax.debug.callback(function, count)
        return inputs
    function(count)
    return inputs


class RowCounter(keras.layers.Layer):
    """Identity that counts the rows it processes (``rows``) and the largest batch it saw (``largest``).

    It counts in Python (see `on_host`), not in variables: MCDropout writes no variable of the model.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rows = 0
        self.largest = 0

    def _count(self, batch):
        self.rows += int(batch)
        self.largest = max(self.largest, int(batch))
        return batch

    def call(self, inputs):
        return on_host(self._count, keras.ops.shape(inputs)[0], inputs)


def classifier(dropout, inputs=8, classes=3, seed=0):
    """``Input -> Dense(16, relu) -> dropout -> Dense(classes, softmax)``, a small functional classifier."""
    init = keras.initializers.GlorotUniform
    x = keras.Input((inputs,))
    h = keras.layers.Dense(16, activation="relu", kernel_initializer=init(seed))(x)
    out = keras.layers.Dense(classes, activation="softmax", kernel_initializer=init(seed + 1))(dropout(h))
    return keras.Model(x, out)
