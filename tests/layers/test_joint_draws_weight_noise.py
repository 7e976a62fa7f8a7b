"""Joint Monte Carlo draws of the layers with Gaussian weight noise: one weight draw per sample, for every input.

`VariationalDense`, `SparseVariationalDense`, `SparseVariationalConv2D` and `FastDropoutDense` sample each input's
pre-activation on its own (the local reparameterization), which no single network produces. While
`kerasdrop.MCDropout` samples joint draws (a tiled batch of ``copies * batch`` rows, sample-major, under
``_context.selecting(..., shared_copies=copies)``), they draw the weights once per Monte Carlo sample
instead. Checked here: the inputs of one sample go through one affine map (least squares leaves no residual), the
drawn weights have the posterior's mean and variance and are independent, and each input's output keeps the
distribution it has outside that mode.
"""

import math

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop import _context
from kerasdrop.layers._kernel_noise import apply_kernel, apply_kernel_per_draw
from tests import backend, utils
from tests.layers import every_layer

MODES = ["eager"] + [label for label, _ in backend.COMPILE_MODES]
DENSE = ["VariationalDense", "VariationalDense-weight", "VariationalDense-layer", "SparseVariationalDense"]
DENSE += ["FastDropoutDense"]
CONV = ["SparseVariationalConv2D", "SparseVariationalConv2D-channels_first", "SparseVariationalConv2D-grouped"]


def example_shape(name):
    """The input shape of one example of the `tests.layers.every_layer` case ``name``."""
    return every_layer.BY_ID[name].input_shape[1:]


def make_layer(name, example=None):
    """The layer of the `tests.layers.every_layer` case ``name``, built, with random weights and noise levels; and
    its kernel θ, bias and the variance of every kernel entry under its posterior (float64 NumPy arrays)."""
    case = every_layer.BY_ID[name]
    # VariationalDense caps α at max_rate / (1 - max_rate): room for the noise levels drawn below.
    layer = case.make(seed=1, **({"max_rate": 0.6} if case.layer_class is kerasdrop.VariationalDense else {}))
    kernel, bias = utils.randomize_weights(layer, (None, *(example or example_shape(name))))
    rng = np.random.default_rng(10)
    if isinstance(layer, kerasdrop.VariationalDense):
        log_alpha = rng.uniform(-3.0, 0.3, size=layer.log_alpha.shape)  # below the cap log(0.6 / 0.4) = 0.405
        layer.log_alpha.assign(log_alpha)
        variance = np.exp(utils.to_numpy(layer.log_alpha).astype("float64")) * kernel**2
    elif isinstance(layer, kerasdrop.FastDropoutDense):
        variance = layer.rate / (1.0 - layer.rate) * kernel**2
    else:
        layer.log_sigma2.assign(rng.uniform(-4.0, 1.0, size=kernel.shape) + np.log(kernel**2))
        variance = np.exp(utils.to_numpy(layer.log_sigma2).astype("float64"))
    return layer, kernel, bias, variance


def channels_last(layer, values):
    """``values`` (a batch of the layer's inputs or outputs) with the channels last."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return np.moveaxis(values, 1, -1)
    return values


def channels_first_if_needed(layer, values):
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return np.moveaxis(values, -1, 1)
    return values


def joint_call(layer, tiled, copies, mode="eager"):
    """``layer(tiled, training=True)`` while joint draws of ``copies`` samples are on, eagerly or compiled; on
    TensorFlow the compiled function takes ``copies`` as a tensor, as the sampler does."""

    def run(inputs, copies):
        with _context.selecting({id(layer)}, shared_copies=copies):
            return layer(inputs, training=True)

    tiled = keras.ops.convert_to_tensor(tiled)
    if mode == "eager":
        return utils.to_numpy(run(tiled, copies))
    jit = dict(backend.COMPILE_MODES)[mode]
    if backend.BACKEND == "tensorflow":
        import tensorflow as tf

        return utils.to_numpy(backend.compiled(run, jit_compile=jit)(tiled, tf.constant(copies, "int32")))
    return utils.to_numpy(backend.compiled(lambda inputs: run(inputs, copies), [layer])(tiled))


def per_sample(outputs, copies):
    """The outputs of a tiled batch, ``(copies * batch, ...)`` -> ``(copies, batch, ...)``."""
    return outputs.reshape(copies, -1, *outputs.shape[1:])


def numpy_patches(x, layer):
    """The image patches a convolution of ``layer`` multiplies with its kernel, from channels-last ``x``:
    ``(batch, out_rows, out_cols, rows * cols * channels)``, in the kernel's (row, col, channel) order."""
    (rows, cols), (stride_r, stride_c), (dil_r, dil_c) = layer.kernel_size, layer.strides, layer.dilation_rate
    if layer.padding == "same":  # the cases use stride 1 with an odd span: the same padding on every side
        pad_r, pad_c = (dil_r * (rows - 1)) // 2, (dil_c * (cols - 1)) // 2
        x = np.pad(x, ((0, 0), (pad_r, pad_r), (pad_c, pad_c), (0, 0)))
    out_rows = (x.shape[1] - dil_r * (rows - 1) - 1) // stride_r + 1
    out_cols = (x.shape[2] - dil_c * (cols - 1) - 1) // stride_c + 1
    row_spans = [slice(i * dil_r, i * dil_r + stride_r * out_rows, stride_r) for i in range(rows)]
    col_spans = [slice(j * dil_c, j * dil_c + stride_c * out_cols, stride_c) for j in range(cols)]
    taps = [x[:, row_span, col_span] for row_span in row_spans for col_span in col_spans]
    return np.stack(taps, axis=3).reshape(x.shape[0], out_rows, out_cols, -1)


def affine_fit_residuals(layer, x, outputs):
    """For each sample of ``outputs`` (``(copies, batch, ...)``), the relative residual of the least-squares fit of
    ``outputs = features @ W + b`` with one ``(W, b)`` for every input of the sample and every position.

    The features are the inputs of a dense layer, the image patches of a convolution."""
    if isinstance(layer, keras.layers.Conv2D):
        features = numpy_patches(channels_last(layer, x).astype("float64"), layer)
        outputs = np.stack([channels_last(layer, sample) for sample in outputs])
    else:
        features = x.astype("float64")
    features = features.reshape(-1, features.shape[-1])
    design = np.concatenate([features, np.ones((features.shape[0], 1))], axis=1)
    assert design.shape[0] > design.shape[1], "too few rows to tell an affine map from anything else"
    residuals = []
    for sample in outputs:
        target = sample.reshape(design.shape[0], -1).astype("float64")
        solution = np.linalg.lstsq(design, target, rcond=None)[0]
        residuals.append(np.linalg.norm(design @ solution - target) / np.linalg.norm(target))
    return np.array(residuals)


# ---------------------------------------------------------------- one network per sample


@backend.slow_on_jax
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [*DENSE, *CONV])
def test_copies_of_an_input_see_the_same_network_within_a_sample(name, mode):
    layer, _, _, _ = make_layer(name)
    rng = np.random.default_rng(1)
    a, b = (rng.uniform(0.5, 1.5, size=(1, *example_shape(name))).astype("float32") for _ in range(2))
    x, copies = np.concatenate([a, b, a]), 3
    tiled = np.concatenate([x] * copies)
    first = per_sample(joint_call(layer, tiled, copies, mode), copies)
    for s in range(copies):
        np.testing.assert_array_equal(first[s, 0], first[s, 2], err_msg=f"sample {s}: copies of one input differ")
    for s, t in [(0, 1), (0, 2), (1, 2)]:
        assert not np.allclose(first[s, 0], first[t, 0]), f"samples {s} and {t} drew the same network"
    second = per_sample(joint_call(layer, tiled, copies, mode), copies)
    assert not np.allclose(first, second), "a second call repeated the draw"
    # Outside joint draws, the local reparameterization draws each row on its own.
    plain = per_sample(utils.train_call(layer, tiled), copies)
    assert not np.allclose(plain[0, 0], plain[0, 2])


@backend.slow_on_jax
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [*DENSE, "VariationalDense-sequence", *CONV])
def test_a_sample_is_one_affine_map_of_its_inputs(name, mode):
    """Within a sample, outputs are ``x W + b`` (patches ``* W + b`` for a convolution) with one ``(W, b)``: the
    least-squares fit over more inputs than unknowns leaves nothing; outside joint draws it does (each input's
    pre-activation has its own noise, of a standard deviation that is not linear in the input)."""
    layer, _, _, _ = make_layer(name)
    example = example_shape(name)
    batch = example[-1] + 6 if len(example) == 1 else 4  # dense: more inputs than the in + 1 unknowns
    x = np.random.default_rng(2).normal(size=(batch, *example)).astype("float32")
    copies = 3
    tiled = np.concatenate([x] * copies)
    joint = affine_fit_residuals(layer, x, per_sample(joint_call(layer, tiled, copies, mode), copies))
    assert joint.max() < 1e-5, f"residuals of one affine map per sample: {joint}"
    plain = affine_fit_residuals(layer, x, per_sample(utils.train_call(layer, tiled), copies))
    assert plain.min() > 1e-2, f"per-input draws should not fit one affine map: {plain}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["VariationalDense", "VariationalDense-sequence", *CONV])
def test_each_samples_kernel_acts_on_that_samples_rows_exactly(name, mode):
    """The product with one kernel per sample (a grouped convolution for a convolution, the dilation written into
    the kernels on TensorFlow's trace) is, row for row, the layer's own product of each sample's rows with that
    sample's kernel."""
    layer, _, _, _ = make_layer(name)
    copies, batch = 3, 2
    rng = np.random.default_rng(6)
    x = rng.normal(size=(copies * batch, *example_shape(name))).astype("float32")
    kernels = rng.normal(size=(copies, *layer.kernel.shape)).astype("float32")
    expected = np.concatenate(
        [utils.to_numpy(apply_kernel(layer, x[s * batch : (s + 1) * batch], kernels[s])) for s in range(copies)]
    )

    def apply(inputs, kernels, copies):
        return apply_kernel_per_draw(layer, inputs, kernels, copies)

    x, kernels = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(kernels)
    if mode == "eager":
        outputs = apply(x, kernels, copies)
    elif backend.BACKEND == "tensorflow":
        import tensorflow as tf

        function = backend.compiled(apply, jit_compile=dict(backend.COMPILE_MODES)[mode])
        outputs = function(x, kernels, tf.constant(copies, "int32"))
    else:
        outputs = backend.compiled(lambda inputs, kernels: apply(inputs, kernels, copies), [layer])(x, kernels)
    np.testing.assert_allclose(utils.to_numpy(outputs), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["VariationalDense", "SparseVariationalConv2D"])
def test_a_sample_is_one_affine_map_under_mixed_float16(name):
    keras.config.set_dtype_policy("mixed_float16")
    layer, _, _, _ = make_layer(name)
    example = example_shape(name)
    batch = example[-1] + 6 if len(example) == 1 else 4
    x = np.random.default_rng(3).normal(size=(batch, *example)).astype("float32")
    copies = 3
    outputs = joint_call(layer, np.concatenate([x] * copies), copies)
    assert outputs.dtype == np.float16
    assert np.all(np.isfinite(outputs))
    # float16 products: a relative rounding error of about 2**-11 per output.
    residuals = affine_fit_residuals(layer, x, per_sample(outputs.astype("float32"), copies))
    assert residuals.max() < 5e-3, f"residuals of one affine map per sample: {residuals}"


@pytest.mark.skipif(backend.BACKEND != "tensorflow", reason="TensorFlow traces once for any number of copies")
@pytest.mark.parametrize("name", ["VariationalDense", "SparseVariationalConv2D-channels_first"])
def test_one_trace_serves_any_number_of_copies(name):
    import tensorflow as tf

    layer, _, _, _ = make_layer(name)
    example = example_shape(name)

    @tf.function(input_signature=[tf.TensorSpec((None, *example)), tf.TensorSpec((), tf.int32)])
    def run(inputs, copies):
        with _context.selecting({id(layer)}, shared_copies=copies):
            return layer(inputs, training=True)

    batch = 12  # dense: more inputs than the in + 1 unknowns
    x = np.random.default_rng(4).normal(size=(batch, *example)).astype("float32")
    for copies in (2, 5):
        outputs = per_sample(run(np.concatenate([x] * copies), copies).numpy(), copies)
        assert outputs.shape[:2] == (copies, batch)
        residuals = affine_fit_residuals(layer, x, outputs)
        assert residuals.max() < 1e-5, f"{copies} copies: residuals {residuals}"
    assert run.experimental_get_tracing_count() == 1


# ---------------------------------------------------------------- the posterior's draws


def drawn_weights(layer, draws, chunk=1000):
    """``draws`` kernels and biases the layer draws under joint draws, read off its outputs for the inputs 0 and
    the basis vectors (for a convolution, images of the kernel's size, one pixel of one channel set each)."""
    in_shape = tuple(layer.kernel.shape[:-1])
    if isinstance(layer, keras.layers.Conv2D):
        in_shape = (*in_shape[:2], in_shape[2] * layer.groups)
    size = math.prod(in_shape)
    basis = np.concatenate([np.zeros((1, size)), np.eye(size)]).reshape(-1, *in_shape).astype("float32")
    basis = channels_first_if_needed(layer, basis)
    kernels, biases = [], []
    for _ in range(draws // chunk):
        outputs = per_sample(joint_call(layer, np.concatenate([basis] * chunk), chunk), chunk)
        outputs = outputs.reshape(chunk, size + 1, -1).astype("float64")  # conv outputs are 1 x 1
        biases.append(outputs[:, 0])
        kernels.append(outputs[:, 1:] - outputs[:, :1])
    return np.concatenate(kernels), np.concatenate(biases)


@pytest.mark.parametrize("name", [*DENSE, "SparseVariationalConv2D"])
def test_drawn_weights_have_the_posteriors_moments(name):
    """Each weight has mean θ and the layer's variance (normal and chi-square bounds from n), the weights are
    uncorrelated (their sample correlations lie within 5 / sqrt(n) of 0), and the bias is not drawn."""
    example = (2, 2, 2) if "Conv2D" in name else None  # kernel-sized images: 1 x 1 outputs
    layer, kernel, bias, variance = make_layer(name, example)
    n = 4000
    kernels, biases = drawn_weights(layer, n)
    np.testing.assert_allclose(biases, np.broadcast_to(bias, biases.shape), rtol=1e-6, atol=1e-6)
    kernel, variance = kernel.reshape(-1), variance.reshape(-1)
    kernels = kernels.reshape(n, -1)
    for k in range(kernel.size):
        utils.assert_mean_close(kernels[:, k], kernel[k], math.sqrt(variance[k]))
        utils.assert_variance_close(kernels[:, k], variance[k], 3 * variance[k] ** 2)
    correlations = np.corrcoef(kernels, rowvar=False)[np.triu_indices(kernel.size, 1)]
    assert np.abs(correlations).max() <= utils.SIGMAS / math.sqrt(n - 1), "drawn weights are correlated"


@pytest.mark.parametrize("name", [*DENSE, "SparseVariationalConv2D"])
def test_each_inputs_distribution_is_that_of_the_local_reparameterization(name):
    """For one input, ``n`` joint-draw samples and ``n`` per-input draws both have mean ``x θ + b`` and variance
    ``(x ∘ x) σ²`` (plus the per-input draw's floor of 1e-8) within 5 sigma from n, and agree with each other."""
    layer, kernel, bias, variance = make_layer(name)
    example = example_shape(name)
    rng = np.random.default_rng(5)
    x, other = rng.uniform(0.5, 1.5, size=(2, 1, *example))
    if "Conv2D" in name:
        mean = utils.conv2d_valid(x, kernel) + bias
        spread = utils.conv2d_valid(x**2, variance)
    else:
        mean, spread = x @ kernel + bias, x**2 @ variance
    n = 4000
    tiled = np.concatenate([x, other] * n).astype("float32")  # sample s: rows 2 s (x) and 2 s + 1
    joint = per_sample(joint_call(layer, tiled, n), n)[:, 0]
    local = utils.train_call(layer, np.repeat(x, n, axis=0).astype("float32"))
    for samples, floor in ((joint, 0.0), (local, 1e-8)):
        samples = samples.reshape(n, -1)
        for k, (m, v) in enumerate(zip(mean.reshape(-1), spread.reshape(-1) + floor, strict=True)):
            utils.assert_mean_close(samples[:, k], m, math.sqrt(v))
            utils.assert_variance_close(samples[:, k], v, 3 * v**2)
    utils.assert_same_distribution(joint.reshape(n, -1), local.reshape(n, -1))
