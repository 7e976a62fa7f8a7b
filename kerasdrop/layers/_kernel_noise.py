"""How a layer with its own kernel applies it: the one place that knows dense from convolution.

The weight-noise layers (DropConnect, fast dropout, variational dropout) all compute ``x * K + b`` with a kernel
``K`` that changes from call to call (masked, squared, pruned). These functions give them that product for a layer
whose Keras base is ``Dense`` or ``Conv2D`` (each function takes the layer first and branches on it), so each noise
model is written once for both.

Joint draws: while `kerasdrop.MCDropout` samples ``copies`` Monte Carlo samples as one tiled batch of
``copies * batch`` rows, sample-major (see `kerasdrop._context`), the layers whose noise is a Gaussian on
every weight draw one kernel per sample instead of one pre-activation per input: `affine_of_joint_draws` draws the
kernels, folds the tiled batch into its samples and applies each sample's kernel to that sample's rows.
"""

import keras
from keras import ops

from kerasdrop import _context, _random
from kerasdrop.ops import variance_dtype


def affine(layer, inputs, kernel, bias):
    """``inputs * kernel + bias`` (no bias when ``bias`` is None)."""
    outputs = apply_kernel(layer, inputs, kernel)
    return outputs if bias is None else add_bias(layer, outputs, bias)


def affine_of_squares(layer, inputs, kernel_variance, bias_variance=None, square_weights=False):
    """``(inputs ∘ inputs) * kernel_variance (+ bias_variance)``, in float32 (float64 for float64 inputs).

    This is the variance of a pre-activation whose weights are independent with variances ``kernel_variance``;
    with ``square_weights=True`` the variances are the squares of the two weights given. Squares overflow float16
    above 256, so under float16 and bfloat16 policies they are computed in float32; the result stays float32,
    for the caller's float32 square root.
    """
    work = variance_dtype(inputs.dtype)

    def variance_of(weight):
        weight = ops.cast(weight, work)
        return ops.square(weight) if square_weights else weight

    variance = apply_kernel(layer, ops.square(ops.cast(inputs, work)), variance_of(kernel_variance))
    if bias_variance is not None:
        variance = add_bias(layer, variance, variance_of(bias_variance))
    return variance


def affine_of_joint_draws(layer, inputs, draw_kernels, bias):
    """``inputs * K_s + bias`` on the rows of Monte Carlo sample ``s``, one kernel ``K_s`` per sample, while
    `kerasdrop.MCDropout` samples joint draws; None otherwise (the caller then samples per input).

    ``draw_kernels(noise)`` turns standard normal ``noise`` of shape ``(copies, *kernel.shape)`` (float32,
    float64 for float64 inputs) into the ``copies`` kernels, in that dtype; they are cast to the inputs' dtype
    for the product, as the layer's own kernel is. ``inputs`` is the tiled batch of ``copies * batch`` rows,
    sample-major (row ``s * batch + i`` is sample ``s`` of input ``i``); ``bias`` (or None) is not drawn.
    """
    copies = _context.shared_copies()
    if copies is None:
        return None
    work = variance_dtype(inputs.dtype)
    # One draw per sample: the leading axis is already the sample axis, so no batch axis is named.
    noise = ops.cast(_random.normal((copies, *layer.kernel.shape), seed=layer.seed_generator), work)
    kernels = ops.cast(draw_kernels(noise), inputs.dtype)
    outputs = apply_kernel_per_draw(layer, inputs, kernels, copies)
    return outputs if bias is None else add_bias(layer, outputs, bias)


def apply_kernel(layer, inputs, kernel):
    """``inputs @ kernel`` for a ``Dense`` layer (inputs of any rank >= 2, features last); the layer's convolution
    (its strides, padding, dilation and data format) for a ``Conv2D`` one."""
    if isinstance(layer, keras.layers.Dense):
        return ops.matmul(inputs, kernel)
    return layer.convolution_op(inputs, kernel)


def apply_kernel_per_sample(layer, inputs, kernels):
    """``inputs[n] * kernels[n]`` for each sample n: ``kernels`` has shape ``(batch, *kernel.shape)``.

    A convolution is a product of image patches with the flattened kernel, so one batched product
    ``patches[n] @ kernels[n]`` does every sample at once.
    """
    if isinstance(layer, keras.layers.Dense):
        return ops.einsum("b...i,biu->b...u", inputs, kernels)
    channels_first = layer.data_format == "channels_first"
    if channels_first:
        inputs = ops.transpose(inputs, (0, 2, 3, 1))
    patches = ops.image.extract_patches(
        inputs,
        layer.kernel_size,
        strides=layer.strides,
        dilation_rate=layer.dilation_rate,
        padding=layer.padding,
        data_format="channels_last",
    )
    shape = ops.shape(kernels)
    kernels = ops.reshape(kernels, (shape[0], -1, layer.filters))
    outputs = ops.einsum("bhwk,bkf->bhwf", patches, kernels)
    if channels_first:
        outputs = ops.transpose(outputs, (0, 3, 1, 2))
    return outputs


def apply_kernel_per_draw(layer, inputs, kernels, copies):
    """``inputs * kernels[s]`` for the rows of sample ``s`` of a tiled batch (``kernels``: ``(copies,
    *kernel.shape)``).

    For a ``Dense`` layer the rows of one sample (and any axes between batch and features) fold into one matrix per
    sample. For a ``Conv2D`` one, one grouped convolution does every sample: the samples' images are laid side by
    side along the channels (``(batch, ..., copies * in)``, sample ``s`` in channels ``s * in`` to
    ``(s + 1) * in``) and the kernels along the filters, so that group ``s * groups + g`` is group ``g`` of sample
    ``s``. The layer's strides, padding and dilation apply unchanged.
    """
    if isinstance(layer, keras.layers.Dense):
        shape = ops.shape(inputs)
        folded = ops.reshape(inputs, (copies, -1, kernels.shape[-2]))
        return ops.reshape(ops.matmul(folded, kernels), (*shape[:-1], kernels.shape[-1]))
    dilation = tuple(layer.dilation_rate)
    if dilation != (1, 1) and not isinstance(copies, int):
        # TensorFlow builds a dilated convolution from the kernel's static shape, unknown while the number of
        # samples is a tensor: the dilation is then written into the kernels as zeros (the same convolution).
        kernels = spread_kernels(kernels, dilation)
        dilation = (1, 1)
    rows, cols, per_group, filters = kernels.shape[1:]
    kernels = ops.reshape(ops.transpose(kernels, (1, 2, 3, 0, 4)), (rows, cols, per_group, -1))
    shape = ops.shape(inputs)
    samples = ops.reshape(inputs, (copies, -1, *shape[1:]))
    if layer.data_format == "channels_last":
        # (copies, batch, rows, cols, in) -> (batch, rows, cols, copies * in), and back for the outputs.
        folded = ops.reshape(ops.transpose(samples, (1, 2, 3, 0, 4)), (-1, *shape[1:3], copies * shape[3]))
        outputs = _convolve(layer, folded, kernels, dilation)
        out = ops.shape(outputs)
        outputs = ops.transpose(ops.reshape(outputs, (*out[:3], copies, filters)), (3, 0, 1, 2, 4))
        return ops.reshape(outputs, (-1, *out[1:3], filters))
    # (copies, batch, in, rows, cols) -> (batch, copies * in, rows, cols), and back for the outputs.
    folded = ops.reshape(ops.transpose(samples, (1, 0, 2, 3, 4)), (-1, copies * shape[1], *shape[2:]))
    outputs = _convolve(layer, folded, kernels, dilation)
    out = ops.shape(outputs)
    outputs = ops.transpose(ops.reshape(outputs, (out[0], copies, filters, *out[2:])), (1, 0, 2, 3, 4))
    return ops.reshape(outputs, (-1, filters, *out[2:]))


def _convolve(layer, inputs, kernel, dilation):
    """The layer's convolution with the dilation ``dilation`` (a grouped one when the kernel has fewer input
    channels than ``inputs``)."""
    return ops.conv(
        inputs,
        kernel,
        strides=layer.strides,
        padding=layer.padding,
        data_format=layer.data_format,
        dilation_rate=dilation,
    )


def add_bias(layer, outputs, bias):
    """``outputs + bias`` over the units (``Dense``) or the channel axis (``Conv2D``); a bias of shape ``(batch,
    units)`` gives each sample its own bias."""
    if isinstance(layer, keras.layers.Dense):
        if len(bias.shape) == 2:
            bias = ops.reshape(bias, (ops.shape(bias)[0],) + (1,) * (len(outputs.shape) - 2) + (bias.shape[-1],))
        return outputs + bias
    batch = ops.shape(bias)[0] if len(bias.shape) == 2 else 1
    if layer.data_format == "channels_last":
        shape = (batch, 1, 1, layer.filters)
    else:
        shape = (batch, layer.filters, 1, 1)
    return outputs + ops.reshape(bias, shape)


def spread_kernels(kernels, dilation):
    """Kernels ``(copies, rows, cols, in, filters)`` with ``dilation - 1`` rows and columns of zeros between their
    taps: convolving with them undilated is convolving with ``kernels`` dilated by ``dilation``."""
    import numpy as np

    def placement(taps, rate):
        # (span, taps) of 0s and 1s: tap t lands on position t * rate. Products with 1 and sums of 0 are exact.
        span = np.zeros(((taps - 1) * rate + 1, taps), "float32")
        span[np.arange(taps) * rate, np.arange(taps)] = 1.0
        return ops.convert_to_tensor(span, dtype=kernels.dtype)

    rows, cols = kernels.shape[1:3]
    return ops.einsum("Rr,Cc,nrcif->nRCif", placement(rows, dilation[0]), placement(cols, dilation[1]), kernels)


def is_linear(activation):
    """True for a layer's activation that is the identity (``None`` or ``"linear"``)."""
    return activation is None or activation is keras.activations.linear
