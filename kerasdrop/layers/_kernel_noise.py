"""How a layer with its own kernel applies it: the one place that knows dense from convolution.

The weight-noise layers (DropConnect, fast dropout, variational dropout) all compute ``x * K + b`` with a kernel
``K`` that changes from call to call (masked, squared, pruned). These mixins give them that product for a Keras
``Dense`` or ``Conv2D`` base, so each noise model is written once for both.

Joint draws: while `kerasdrop.MCDropout` samples ``copies`` Monte Carlo samples as one tiled batch of
``copies * batch`` rows, sample-major (see `kerasdrop._context`), the layers whose noise is a Gaussian on
every weight draw one kernel per sample instead of one pre-activation per input: `affine_of_joint_draws` draws the
kernels, folds the tiled batch into its samples and applies each sample's kernel to that sample's rows.
"""

import keras
from keras import ops

from kerasdrop import _context, _random
from kerasdrop.ops import variance_dtype


class _KernelOps:
    def affine(self, inputs, kernel, bias):
        """``inputs * kernel + bias`` (no bias when ``bias`` is None)."""
        outputs = self.apply_kernel(inputs, kernel)
        return outputs if bias is None else self.add_bias(outputs, bias)

    def affine_of_squares(self, inputs, kernel_variance, bias_variance=None, square_weights=False):
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

        variance = self.apply_kernel(ops.square(ops.cast(inputs, work)), variance_of(kernel_variance))
        if bias_variance is not None:
            variance = self.add_bias(variance, variance_of(bias_variance))
        return variance

    def affine_of_joint_draws(self, inputs, draw_kernels, bias):
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
        noise = ops.cast(_random.normal((copies, *self.kernel.shape), seed=self.seed_generator), work)
        kernels = ops.cast(draw_kernels(noise), inputs.dtype)
        outputs = self.apply_kernel_per_draw(inputs, kernels, copies)
        return outputs if bias is None else self.add_bias(outputs, bias)


class DenseKernelOps(_KernelOps):
    """``x @ K`` for a ``keras.layers.Dense`` base (inputs of any rank >= 2, features last)."""

    def apply_kernel(self, inputs, kernel):
        """``inputs @ kernel``."""
        return ops.matmul(inputs, kernel)

    def apply_kernel_per_sample(self, inputs, kernels):
        """``inputs[n] @ kernels[n]`` for each sample n: ``kernels`` has shape ``(batch, in, units)``."""
        return ops.einsum("b...i,biu->b...u", inputs, kernels)

    def apply_kernel_per_draw(self, inputs, kernels, copies):
        """``inputs @ kernels[s]`` for the rows of sample ``s`` of a tiled batch (``kernels``: ``(copies, in, units)``).

        The rows of one sample (and any axes between batch and features) fold into one matrix per sample.
        """
        shape = ops.shape(inputs)
        folded = ops.reshape(inputs, (copies, -1, kernels.shape[-2]))
        return ops.reshape(ops.matmul(folded, kernels), (*shape[:-1], kernels.shape[-1]))

    def add_bias(self, outputs, bias):
        """``outputs + bias``; a bias of shape ``(batch, units)`` gives each sample its own bias."""
        if len(bias.shape) == 2:
            bias = ops.reshape(bias, (ops.shape(bias)[0],) + (1,) * (len(outputs.shape) - 2) + (bias.shape[-1],))
        return outputs + bias


class ConvKernelOps(_KernelOps):
    """The convolution of a ``keras.layers.Conv2D`` base (its strides, padding, dilation and data format)."""

    def apply_kernel(self, inputs, kernel):
        return self.convolution_op(inputs, kernel)

    def apply_kernel_per_sample(self, inputs, kernels):
        """Convolves sample n with ``kernels[n]`` (shape ``(batch, rows, cols, in, filters)``).

        A convolution is a product of image patches with the flattened kernel, so one batched product
        ``patches[n] @ kernels[n]`` does every sample at once.
        """
        channels_first = self.data_format == "channels_first"
        if channels_first:
            inputs = ops.transpose(inputs, (0, 2, 3, 1))
        patches = ops.image.extract_patches(
            inputs,
            self.kernel_size,
            strides=self.strides,
            dilation_rate=self.dilation_rate,
            padding=self.padding,
            data_format="channels_last",
        )
        shape = ops.shape(kernels)
        kernels = ops.reshape(kernels, (shape[0], -1, self.filters))
        outputs = ops.einsum("bhwk,bkf->bhwf", patches, kernels)
        if channels_first:
            outputs = ops.transpose(outputs, (0, 3, 1, 2))
        return outputs

    def apply_kernel_per_draw(self, inputs, kernels, copies):
        """Convolves the rows of sample ``s`` of a tiled batch with ``kernels[s]`` (shape ``(copies, rows, cols,
        in / groups, filters)``).

        One grouped convolution does every sample: the samples' images are laid side by side along the channels
        (``(batch, ..., copies * in)``, sample ``s`` in channels ``s * in`` to ``(s + 1) * in``) and the kernels
        along the filters, so that group ``s * groups + g`` is group ``g`` of sample ``s``. The layer's strides,
        padding and dilation apply unchanged.
        """
        dilation = tuple(self.dilation_rate)
        if dilation != (1, 1) and not isinstance(copies, int):
            # TensorFlow builds a dilated convolution from the kernel's static shape, unknown while the number of
            # samples is a tensor: the dilation is then written into the kernels as zeros (the same convolution).
            kernels = spread_kernels(kernels, dilation)
            dilation = (1, 1)
        rows, cols, per_group, filters = kernels.shape[1:]
        kernels = ops.reshape(ops.transpose(kernels, (1, 2, 3, 0, 4)), (rows, cols, per_group, -1))
        shape = ops.shape(inputs)
        samples = ops.reshape(inputs, (copies, -1, *shape[1:]))
        if self.data_format == "channels_last":
            # (copies, batch, rows, cols, in) -> (batch, rows, cols, copies * in), and back for the outputs.
            folded = ops.reshape(ops.transpose(samples, (1, 2, 3, 0, 4)), (-1, *shape[1:3], copies * shape[3]))
            outputs = self._convolve(folded, kernels, dilation)
            out = ops.shape(outputs)
            outputs = ops.transpose(ops.reshape(outputs, (*out[:3], copies, filters)), (3, 0, 1, 2, 4))
            return ops.reshape(outputs, (-1, *out[1:3], filters))
        # (copies, batch, in, rows, cols) -> (batch, copies * in, rows, cols), and back for the outputs.
        folded = ops.reshape(ops.transpose(samples, (1, 0, 2, 3, 4)), (-1, copies * shape[1], *shape[2:]))
        outputs = self._convolve(folded, kernels, dilation)
        out = ops.shape(outputs)
        outputs = ops.transpose(ops.reshape(outputs, (out[0], copies, filters, *out[2:])), (1, 0, 2, 3, 4))
        return ops.reshape(outputs, (-1, filters, *out[2:]))

    def _convolve(self, inputs, kernel, dilation):
        """The layer's convolution with the dilation ``dilation`` (a grouped one when the kernel has fewer input
        channels than ``inputs``)."""
        return ops.conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=dilation,
        )

    def add_bias(self, outputs, bias):
        """``outputs + bias`` over the channel axis; a bias of shape ``(batch, filters)`` is per sample."""
        batch = ops.shape(bias)[0] if len(bias.shape) == 2 else 1
        if self.data_format == "channels_last":
            shape = (batch, 1, 1, self.filters)
        else:
            shape = (batch, self.filters, 1, 1)
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
