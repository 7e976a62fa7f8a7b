"""How a layer with its own kernel applies it: the one place that knows dense from convolution.

The weight-noise layers (DropConnect, fast dropout, variational dropout) all compute ``x * K + b`` with a kernel
``K`` that changes from call to call (masked, squared, pruned). These mixins give them that product for a Keras
``Dense`` or ``Conv2D`` base, so each noise model is written once for both.
"""

import keras
from keras import ops

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


class DenseKernelOps(_KernelOps):
    """``x @ K`` for a ``keras.layers.Dense`` base (inputs of any rank >= 2, features last)."""

    def apply_kernel(self, inputs, kernel):
        """``inputs @ kernel``."""
        return ops.matmul(inputs, kernel)

    def apply_kernel_per_sample(self, inputs, kernels):
        """``inputs[n] @ kernels[n]`` for each sample n: ``kernels`` has shape ``(batch, in, units)``."""
        return ops.einsum("b...i,biu->b...u", inputs, kernels)

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

    def add_bias(self, outputs, bias):
        """``outputs + bias`` over the channel axis; a bias of shape ``(batch, filters)`` is per sample."""
        batch = ops.shape(bias)[0] if len(bias.shape) == 2 else 1
        if self.data_format == "channels_last":
            shape = (batch, 1, 1, self.filters)
        else:
            shape = (batch, self.filters, 1, 1)
        return outputs + ops.reshape(bias, shape)


def is_linear(activation):
    """True for a layer's activation that is the identity (``None`` or ``"linear"``)."""
    return activation is None or activation is keras.activations.linear
