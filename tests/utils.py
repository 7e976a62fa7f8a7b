"""Checks that every stochastic layer must pass, shared by the tests of every family.

Statistical checks use 5-sigma bounds computed from the number of draws; the fixed seeds make them repeatable.
"""

import contextlib
import json
import math
import pathlib

import keras
import numpy as np

from tests import backend

SIGMAS = 5.0


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def assert_binomial_count(count, n, p):
    """``count`` successes in ``n`` Bernoulli(p) trials lies within 5 sigma of ``n p``."""
    bound = SIGMAS * math.sqrt(n * p * (1.0 - p))
    assert abs(count - n * p) <= bound, f"count {count} of {n}, expected {n * p:.1f} +- {bound:.1f}"


def assert_above_chance(accuracy, n, classes):
    """``accuracy`` on ``n`` test examples is a count over ``n`` and beats chance (``1 / classes``) by more than 5
    binomial standard errors: a model that learned nothing, say behind a layer that zeroes its input, fails."""
    assert abs(accuracy * n - round(accuracy * n)) < 1e-6 * n, f"accuracy {accuracy} is not a count over {n}"
    chance = 1.0 / classes
    bound = chance + SIGMAS * math.sqrt(chance * (1.0 - chance) / n)
    assert accuracy > bound, f"accuracy {accuracy:.3f} on {n} examples: not above chance {chance:.2f} (+ 5 sigma)"


def assert_classifies_digits(model, x_test, y_test):
    """``model`` (logits or probabilities) classifies the held-out digits above chance (see `assert_above_chance`)."""
    predicted = np.argmax(to_numpy(model.predict(x_test, verbose=0)), axis=-1)
    assert_above_chance(float(np.mean(predicted == y_test)), len(y_test), 10)


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


def assert_same_distribution(samples, reference):
    """Elementwise, the means and variances of two independent sets of i.i.d. samples (axis 0) agree within 5
    standard errors of their difference, estimated from the samples (fourth moments for the variances)."""
    samples, reference = (np.asarray(values, dtype="float64") for values in (samples, reference))

    def moments(values):
        n = values.shape[0]
        mean = values.mean(0)
        centred = values - mean
        variance = (centred**2).sum(0) / (n - 1)
        fourth = (centred**4).mean(0)
        return mean, variance, variance / n, np.maximum(fourth - variance**2, 0.0) / n

    mean_a, var_a, mean_se2_a, var_se2_a = moments(samples)
    mean_b, var_b, mean_se2_b, var_se2_b = moments(reference)
    mean_z = np.abs(mean_a - mean_b) / np.sqrt(mean_se2_a + mean_se2_b)
    var_z = np.abs(var_a - var_b) / np.sqrt(var_se2_a + var_se2_b)
    assert mean_z.max() <= SIGMAS, f"means differ by up to {mean_z.max():.2f} standard errors"
    assert var_z.max() <= SIGMAS, f"variances differ by up to {var_z.max():.2f} standard errors"


def assert_same_two_moments(samples, reference):
    """Elementwise, ``E[x]`` and ``E[x²]`` of two independent sets of i.i.d. samples (axis 0) agree within 5
    standard errors of their difference, each estimated from the samples. (Means of squares rather than variances:
    the standard error of a two-point distribution's sample variance vanishes to first order.)"""
    for power in (1, 2):
        a, b = (np.asarray(values, dtype="float64") ** power for values in (samples, reference))
        difference = np.abs(a.mean(0) - b.mean(0))
        error = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b))
        z = np.divide(difference, error, out=np.zeros_like(difference), where=difference > 0)
        assert np.all(error[difference > 0] > 0), f"E[x^{power}] differs where both sets are constant"
        assert z.max() <= SIGMAS, f"E[x^{power}] differs by up to {z.max():.2f} standard errors"


def per_replica_training_outputs(strategy, layer, x, steps=2):
    """``layer``'s training outputs on each replica of a ``tf.distribute`` strategy, for ``steps`` successive calls
    of one ``tf.function``: a list (one per step) of lists (one per replica) of NumPy arrays. Each replica gets its
    own part of ``x``, split along the batch."""
    import tensorflow as tf

    step = tf.function(lambda v: strategy.run(lambda part: layer(part, training=True), args=(v,)))
    x = tf.constant(x)
    return [[to_numpy(value) for value in strategy.experimental_local_results(step(x))] for _ in range(steps)]


def assert_replicas_draw_their_own_noise(strategy, layer, x):
    """Two replicas fed equal inputs give different outputs, and a replica's next step draws new noise."""
    first, second = per_replica_training_outputs(strategy, layer, x)
    assert not np.array_equal(first[0], first[1]), "both replicas drew the same noise"
    assert not np.array_equal(first[0], second[0]), "a replica repeated its noise on the next step"


def train_call(layer, x):
    return to_numpy(layer(x, training=True))


def calls_differ(call, calls=4):
    """True when some of ``calls`` successive results of ``call()`` differ from the first.

    A layer with few random draws (say 12 maxima at rate 0.5) repeats its noise on two honest calls with
    probability 2**-12; asking for a change within three more calls makes that 2**-36, while a layer that really
    repeats its noise still fails every time.
    """
    first = to_numpy(call())
    return any(not np.array_equal(first, to_numpy(call())) for _ in range(calls - 1))


def assert_fresh_noise_each_call(layer_factory, x):
    """Successive training calls draw new noise eagerly and compiled (`tests.backend.compiled`: a tf.function, with
    and without XLA, on TensorFlow; jax.jit on JAX)."""
    layer = layer_factory()
    assert calls_differ(lambda: layer(x, training=True)), "eager calls repeated their noise"
    x = keras.ops.convert_to_tensor(x)
    for label, jit in backend.COMPILE_MODES:
        layer = layer_factory()
        layer(x)  # built before compiling: JAX passes the variables in
        function = backend.compiled(lambda v, layer=layer: layer(v, training=True), [layer], jit_compile=jit)
        assert calls_differ(lambda function=function: function(x)), f"{label} calls repeated their noise"


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
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model  # noqa: B018 (on JAX, reading the model brings the variables up to date)
            seen.append(to_numpy(recorder.last))

    inputs = keras.Input(x.shape[1:], batch_size=x.shape[0])
    outputs = recorder(layer(inputs))
    model = keras.Model(inputs, keras.layers.Flatten()(outputs))
    # Learning rate 0 and no shuffling: weights and inputs stay put, so two steps differ only if their noise does.
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    target = np.zeros((x.shape[0], int(np.prod(model.output_shape[1:]))), "float32")
    model.fit(x, target, batch_size=x.shape[0], epochs=epochs, verbose=0, shuffle=False, callbacks=[Record()])
    return seen


def assert_fresh_noise_in_fit(layer, x):
    """Inside `fit`, each training step sees different noise."""
    seen = recorded_fit_outputs(layer, x)
    for previous, current in zip(seen, seen[1:], strict=False):
        assert not np.array_equal(previous, current), "fit repeated the same noise at two steps"


def assert_dropped_non_finite_values_are_zero(layer, x):
    """Units that are dropped are exactly 0 even where the input is inf or NaN; kept ones keep their inf or NaN, and
    neither spreads to another element (every output where the input is finite is finite)."""
    x = np.array(x, copy=True)
    flat = x.reshape(-1)
    flat[::5], flat[2::5] = np.inf, np.nan
    y = train_call(layer, x)
    non_finite = ~np.isfinite(x)
    assert np.all(np.isfinite(y[~non_finite])), "a non-finite input spread to other elements"
    dropped, kept = non_finite & (y == 0), non_finite & (y != 0)  # NaN != 0: a kept NaN counts as kept
    assert dropped.any() and kept.any(), "the draw should drop some non-finite inputs and keep others"
    np.testing.assert_array_equal(np.isnan(y[kept]), np.isnan(x[kept]))


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
    """A model with `mc=True` layers is stochastic through predict and a `.keras` reload, and on TensorFlow through
    an exported SavedModel too (the export of the other backends goes through TensorFlow as well)."""
    assert not np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0)), "predict was deterministic"
    reloaded = save_and_load(model, tmp_path)
    first, second = reloaded.predict(x, verbose=0), reloaded.predict(x, verbose=0)
    assert not np.array_equal(first, second), "the reloaded model was deterministic"
    if backend.BACKEND != "tensorflow":
        return
    import tensorflow as tf

    export_dir = str(tmp_path / "exported")
    model.export(export_dir, verbose=False)
    served = tf.saved_model.load(export_dir)
    x = tf.convert_to_tensor(x)
    assert not np.array_equal(served.serve(x).numpy(), served.serve(x).numpy()), "the SavedModel was deterministic"
    # The plain TensorFlow route, `tf.saved_model.save`, must work too and stay stochastic.
    tf.saved_model.save(model, str(tmp_path / "saved_model"))
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    signature = loaded.signatures["serving_default"]
    (name,) = signature.structured_input_signature[1]
    first, second = (next(iter(signature(**{name: x}).values())).numpy() for _ in range(2))
    assert not np.array_equal(first, second), "the model saved by tf.saved_model.save was deterministic"


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


def assert_means_close(samples, expected_means, expected_stds):
    """Entry by entry, the mean over axis 0 of ``samples`` lies within 5 sigma of ``expected_means``.

    ``expected_stds`` is the standard deviation of one sample of each entry; the bound of an entry is
    ``5 * std / sqrt(n)`` with n the number of samples.
    """
    samples = np.asarray(samples, dtype="float64")
    bound = SIGMAS * np.asarray(expected_stds, dtype="float64") / math.sqrt(samples.shape[0])
    error = np.abs(samples.mean(axis=0) - expected_means)
    bound = np.broadcast_to(bound, error.shape)
    worst = np.unravel_index(np.argmax(error - bound), error.shape)
    assert np.all(error <= bound), f"mean off by {error[worst]:.6f} > 5 sigma = {bound[worst]:.6f} at {worst}"


def assert_gradients_match_finite_differences(loss_function, variables, step=1e-6, rtol=1e-5, atol=1e-8, owners=()):
    """The gradient of ``loss_function()`` with respect to ``variables`` equals central finite differences.

    ``loss_function`` takes no argument and returns a scalar; it must give the same value for the same variables
    (hold any noise fixed, e.g. by resetting a layer's seed generator state first). Use float64 variables (inside
    `tests.backend.float64`). With ``owners`` (the built layers the loss calls), the finite differences evaluate the
    loss compiled once (`tests.backend.compiled`) rather than eagerly: on JAX an eager recurrent layer costs about a
    second a call, the compiled one a millisecond.
    """
    gradients = backend.gradients(loss_function, variables)
    if owners:
        loss_function = backend.compiled(loss_function, owners)
    for variable, gradient in zip(variables, gradients, strict=True):
        assert gradient is not None, f"no gradient reaches {variable.path}"
        gradient = np.ravel(to_numpy(gradient))
        value = to_numpy(variable).astype("float64")
        numeric = np.zeros(value.size)
        for index in range(value.size):
            shifted = value.ravel().copy()
            shifted[index] += step
            variable.assign(shifted.reshape(value.shape))
            plus = float(to_numpy(loss_function()))
            shifted[index] -= 2 * step
            variable.assign(shifted.reshape(value.shape))
            minus = float(to_numpy(loss_function()))
            numeric[index] = (plus - minus) / (2 * step)
        variable.assign(value)
        np.testing.assert_allclose(gradient, numeric, rtol=rtol, atol=atol, err_msg=variable.path)


def training_output_and_input_gradient(layer, x):
    """``layer(x, training=True)`` and the gradient of its sum with respect to ``x``, both for one draw of noise (the
    layer's seed state is put back before each of the two calls), as NumPy arrays. The layer must be built."""
    state = to_numpy(layer.seed_generator.state)
    inputs = keras.Variable(x, name="inputs")

    def output():
        layer.seed_generator.state.assign(state)
        return layer(keras.ops.convert_to_tensor(inputs), training=True)

    (gradient,) = backend.gradients(lambda: keras.ops.sum(output()), [inputs])
    return to_numpy(output()), to_numpy(gradient)


def assert_mc_branches_stay_stochastic(branches, x, tmp_path):
    """Each of several `mc=True` layers stays stochastic through predict, a `.keras` reload and, on TensorFlow, an
    export.

    ``branches`` maps a name to a layer (or list of layers) applied to the input; their flattened outputs are
    concatenated into one model output so that one reload and one export check every branch.
    """
    inputs = keras.Input(x.shape[1:])
    outputs, sizes = [], []
    for layers in branches.values():
        y = inputs
        for layer in layers if isinstance(layers, (list, tuple)) else [layers]:
            y = layer(y)
        y = keras.layers.Flatten()(y)
        outputs.append(y)
        sizes.append(y.shape[-1])
    model = keras.Model(inputs, keras.layers.Concatenate()(outputs) if len(outputs) > 1 else outputs[0])
    splits = np.cumsum(sizes)[:-1]

    def check(call, where, calls=4):
        outputs = [np.split(to_numpy(call()), splits, axis=1) for _ in range(calls)]
        for index, name in enumerate(branches):
            draws = iter([output[index] for output in outputs])
            assert calls_differ(lambda draws=draws: next(draws), calls), f"{name} was deterministic in {where}"

    check(lambda: model.predict(x, verbose=0), "predict")
    reloaded = save_and_load(model, tmp_path)
    check(lambda: reloaded.predict(x, verbose=0), "the reloaded model")
    if backend.BACKEND != "tensorflow":
        return
    import tensorflow as tf

    export_dir = str(tmp_path / "exported")
    model.export(export_dir, verbose=False)
    served = tf.saved_model.load(export_dir)
    x = tf.convert_to_tensor(x)
    check(lambda: served.serve(x), "the exported SavedModel")
    tf.saved_model.save(model, str(tmp_path / "saved_model"))
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    signature = loaded.signatures["serving_default"]
    (name,) = signature.structured_input_signature[1]
    check(lambda: next(iter(signature(**{name: x}).values())), "the model saved by tf.saved_model.save")


def as_json(config):
    """A layer config as the `.keras` file holds it (JSON: tuples become lists), for comparisons."""
    return json.dumps(config, sort_keys=True)


def assert_keras_file_round_trip(model, x, tmp_path):
    """A `.keras` save and reload (no custom_objects) keeps the layer types, their configs and the test outputs."""
    reloaded = save_and_load(model, tmp_path)
    assert [type(layer) for layer in reloaded.layers] == [type(layer) for layer in model.layers]
    # Through JSON, as the file holds them: a wrapped layer's build shape is a tuple before and a list after.
    assert [as_json(layer.get_config()) for layer in reloaded.layers] == [
        as_json(layer.get_config()) for layer in model.layers
    ]
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    return reloaded


def randomize_weights(layer, input_shape, seed=0, bias_scale=0.5):
    """Builds a layer with a ``kernel`` (and ``bias``) if needed and gives them random non-zero values.

    The kernel is normal with variance 1/fan-in, the bias normal with standard deviation ``bias_scale``. Returns
    ``(kernel, bias)`` as float64 NumPy arrays of the values the layer holds (bias None without one).
    """
    if not layer.built:
        layer.build(input_shape)
    rng = np.random.default_rng(seed)
    layer.kernel.assign(rng.normal(size=layer.kernel.shape) / math.sqrt(np.prod(layer.kernel.shape[:-1])))
    if layer.bias is not None:
        layer.bias.assign(bias_scale * rng.normal(size=layer.bias.shape))
    kernel = to_numpy(layer.kernel).astype("float64")
    return kernel, None if layer.bias is None else to_numpy(layer.bias).astype("float64")


def conv2d_valid(x, kernel):
    """Reference 2D convolution in NumPy float64: channels_last, stride 1, valid padding."""
    rows, cols = kernel.shape[:2]
    out_rows, out_cols = x.shape[1] - rows + 1, x.shape[2] - cols + 1
    out = np.zeros((x.shape[0], out_rows, out_cols, kernel.shape[-1]))
    for i in range(rows):
        for j in range(cols):
            out += np.einsum("bhwc,cf->bhwf", x[:, i : i + out_rows, j : j + out_cols, :], kernel[i, j])
    return out


def assert_stochastic_layer_contract(layer_factory, x):
    """New noise on every call (eager and compiled), same seed same noise, `mc=True` stochastic at test time,
    and an exact config round trip.

    ``layer_factory`` takes keyword overrides (``seed=``, ``mc=``, ``name=``) and returns a fresh layer.
    """
    assert_fresh_noise_each_call(layer_factory, x)
    assert_same_seed_same_noise(lambda: layer_factory(seed=9), x)
    layer = layer_factory(mc=True)
    assert calls_differ(lambda: layer(x)), "mc=True was deterministic at test time"
    assert_config_round_trip(layer_factory(seed=3, mc=True, name="noise"))


EXAMPLES_DIR = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    """The script ``examples/<name>.py`` as a module (its ``main(argv)`` runs it), without running it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, EXAMPLES_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def layer_state(model):
    """Every attribute of ``model`` and of each layer inside: plain values by value, everything else by identity, so
    an added, removed, rebound or swapped attribute shows when two states are compared."""
    from kerasdrop import _compat

    state = {}
    for layer in _compat.flatten_layers(model):
        for name, value in vars(layer).items():
            plain = isinstance(value, (bool, int, float, str, type(None)))
            state[(layer.name, name)] = value if plain else id(value)
    return state


def train_noisy_digits_mlp(scope=None):
    """An MLP with `kerasdrop.Dropout` and `kerasdrop.GaussianDropout`, built and compiled in ``scope`` (a
    distribution strategy's, say), trained 6 epochs on 512 digits; asserts that its losses are finite and that it
    classifies the test digits above chance (see `assert_above_chance`), and returns it."""
    import kerasdrop
    from kerasdrop.datasets import load_digits

    (x_train, y_train), (x_test, y_test) = load_digits()
    x_train, y_train = x_train[:512], y_train[:512]
    with scope if scope is not None else contextlib.nullcontext():
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(64, activation="relu"),
                kerasdrop.Dropout(0.3, seed=2),
                keras.layers.Dense(64, activation="relu"),
                kerasdrop.GaussianDropout(0.2, seed=3),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    losses = model.fit(x_train, y_train, epochs=6, batch_size=64, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)), losses
    assert_classifies_digits(model, x_test, y_test)
    return model


def warm_up_a_frozen_sparse_layer(scope=None):
    """Fits a one-layer `SparseVariationalDense` model, built and compiled in ``scope`` and frozen (learning rate 0,
    a data loss of 0), for 4 epochs with ``KLWarmup(2)``; asserts that the loss `fit` reports is the schedule's
    factor times the layer's KL term at each epoch, and returns the layer."""
    import kerasdrop
    from kerasdrop.callbacks import KLWarmup

    with scope if scope is not None else contextlib.nullcontext():
        layer = kerasdrop.SparseVariationalDense(3, kl_weight=0.01, seed=1)
        model = keras.Sequential([keras.Input((5,)), layer])
        model.compile(keras.optimizers.SGD(0.0), loss=lambda y, p: 0.0 * keras.ops.sum(p, axis=-1))
    x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32")
    history = model.fit(x, np.zeros((32, 1)), batch_size=8, epochs=4, verbose=0, callbacks=[KLWarmup(2)]).history
    term = layer.kl_weight * float(to_numpy(layer.kl_divergence()))
    np.testing.assert_allclose(history["loss"], [0.0, 0.5 * term, term, term], rtol=2e-6)
    return layer
