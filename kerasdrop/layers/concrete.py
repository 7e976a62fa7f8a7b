"""Concrete dropout (Gal, Hron & Kendall 2017): a wrapper that learns the dropout rate of its layer's input.

The Bernoulli mask is relaxed into a continuous Concrete (Gumbel-softmax) variable, so the rate gets gradients:
``z = sigmoid((logit(rate) + log u - log(1 - u)) / temperature)``, ``u ~ U(0, 1)``, is close to 1 (drop) with
probability ``rate``, and the wrapped layer sees ``x ∘ (1 - z) / (1 - rate)``. The rate is
``rate = sigmoid(p_logit)`` with ``p_logit`` a learned weight of the wrapper.
"""

import math

import keras
from keras import ops

from kerasdrop import _random
from kerasdrop._axes import per_channel_shape
from kerasdrop._validation import (
    check_data_format,
    check_float,
    check_instance,
    check_non_negative_float,
    check_positive_float,
    check_positive_int,
)
from kerasdrop.layers._base import StochasticLayer, register
from kerasdrop.layers._kl_term import KLTerm

# u is drawn in [_UNIFORM_FLOOR, 1), so log u and log(1 - u) are finite.
_UNIFORM_FLOOR = 1e-7


def concrete_regularizers(train_size, length_scale=1e-4, precision=1.0):
    """The two regularisers of `ConcreteDropout` for a dataset of ``train_size`` samples (Gal, Hron & Kendall 2017).

    With a Gaussian prior of length scale ``l`` on the weights and a model precision ``τ`` (1 for classification;
    the inverse observation-noise variance for regression), the layer's term is the KL of its approximate posterior
    divided by ``τ N``: ``weight_regularizer = l² / (τ N)`` and ``dropout_regularizer = 2 / (τ N)``. Pass the result
    as keyword arguments: ``ConcreteDropout(layer, **concrete_regularizers(len(x_train)))``. The default length scale
    is the one of the paper's authors' examples.

    Args:
        train_size: positive int, the number of training samples ``N``.
        length_scale: float > 0, the prior length scale ``l``.
        precision: float > 0, the model precision ``τ``.

    Returns:
        ``{"weight_regularizer": l² / (τ N), "dropout_regularizer": 2 / (τ N)}``.
    """
    train_size = check_positive_int("train_size", train_size)
    length_scale = check_positive_float("length_scale", length_scale)
    precision = check_positive_float("precision", precision)
    scale = precision * train_size
    return {"weight_regularizer": length_scale**2 / scale, "dropout_regularizer": 2.0 / scale}


def _logit(probability):
    return math.log(probability) - math.log1p(-probability)


class _ConcreteDropout(KLTerm, StochasticLayer, keras.layers.Wrapper):
    """Concrete dropout of the input of ``layer``; subclasses choose the mask shape (``_noise_shape``)."""

    def __init__(
        self,
        layer,
        weight_regularizer=1e-6,
        dropout_regularizer=1e-5,
        init_min=0.1,
        init_max=0.1,
        temperature=0.1,
        seed=None,
        mc=False,
        **kwargs,
    ):
        check_instance("layer", layer, keras.layers.Layer, "a Keras layer")
        super().__init__(layer, seed=seed, mc=mc, **kwargs)
        self.weight_regularizer = check_non_negative_float("weight_regularizer", weight_regularizer)
        self.dropout_regularizer = check_non_negative_float("dropout_regularizer", dropout_regularizer)
        self.init_min = check_float("init_min", init_min, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        self.init_max = check_float("init_max", init_max, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        if self.init_min > self.init_max:
            raise ValueError(
                f"Invalid value received for argument `init_min`. Expected init_min <= init_max="
                f"{self.init_max!r}. Received: init_min={self.init_min!r}"
            )
        self.temperature = check_positive_float("temperature", temperature)

    def build(self, input_shape):
        super().build(input_shape)
        self.p_logit = self.add_weight(
            name="p_logit",
            shape=(),
            initializer=keras.initializers.RandomUniform(_logit(self.init_min), _logit(self.init_max), seed=self.seed),
            autocast=False,
        )
        self.build_kl_factor()
        if not self.kernels():
            raise ValueError(
                f"{type(self).__name__} regularises the weights of the layer it wraps, but "
                f"{type(self.layer).__name__} {self.layer.name!r} has no trainable weight named `kernel`."
            )

    @property
    def rate(self):
        """The learned dropout rate ``sigmoid(p_logit)``, a Python float."""
        return float(ops.convert_to_numpy(ops.sigmoid(self._p_logit())))

    def kernels(self):
        """The trainable weights named ``kernel`` of the wrapped layer (and of its sublayers)."""
        return [weight for weight in self.layer.trainable_weights if weight.name == "kernel"]

    def _noise_shape(self, inputs):
        return ops.shape(inputs)

    def _p_logit(self):
        """``p_logit`` in float32 (float64 under a float64 policy), whatever the policy's variable dtype."""
        return ops.cast(self.p_logit, "float64" if self.compute_dtype == "float64" else "float32")

    def regularization(self, inputs):
        """``weight_regularizer ‖W‖² / (1 - rate) + dropout_regularizer · K · (rate log rate + keep log keep)``.

        ``K`` is the number of mask entries per sample (input units, or channels for the spatial variant). Computed
        in float32 from ``p_logit``: ``log rate = -softplus(-p_logit)``, ``log keep = -softplus(p_logit)``.
        """
        p_logit = self._p_logit()
        rate, keep = ops.sigmoid(p_logit), ops.sigmoid(-p_logit)
        squares = sum(ops.sum(ops.square(ops.cast(kernel, p_logit.dtype))) for kernel in self.kernels())
        weight_term = self.weight_regularizer * squares / keep
        negative_entropy = rate * -ops.softplus(-p_logit) + keep * -ops.softplus(p_logit)
        units = 1.0
        for size in self._noise_shape(inputs)[1:]:
            units = units * ops.cast(size, p_logit.dtype)
        return weight_term + self.dropout_regularizer * units * negative_entropy

    def relaxed_mask(self, inputs):
        """One draw of the Concrete drop variable ``z`` (float32, mask shape): near 1 = dropped."""
        p_logit = self._p_logit()
        u = _random.uniform(
            self._noise_shape(inputs),
            self.seed_generator,
            dtype="float32",
            minval=_UNIFORM_FLOOR,
            maxval=1.0,
            batch_axis=0,
        )
        u = ops.cast(u, p_logit.dtype)
        logistic = ops.log(u) - ops.log1p(-u)
        return ops.sigmoid((p_logit + logistic) / self.temperature)

    def _add_losses(self, inputs):
        self.add_kl_loss(self.regularization(inputs))

    def _sample(self, inputs):
        scale = (1.0 - self.relaxed_mask(inputs)) / ops.sigmoid(-self._p_logit())
        return self.layer(inputs * ops.cast(scale, inputs.dtype))

    def _test_output(self, inputs):
        return self.layer(inputs)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # keras.layers.Wrapper.from_config pops "layer" from the dict it is given: give it a copy.
        return super().from_config(dict(config), custom_objects=custom_objects)

    def get_config(self):
        return {
            **super().get_config(),
            "weight_regularizer": self.weight_regularizer,
            "dropout_regularizer": self.dropout_regularizer,
            "init_min": self.init_min,
            "init_max": self.init_max,
            "temperature": self.temperature,
        }


@register
class ConcreteDropout(_ConcreteDropout):
    """Concrete dropout of the input of a layer, with a learned rate (Gal, Hron & Kendall 2017).

    Wraps a layer with a kernel (e.g. `keras.layers.Dense`): while training, each input unit is multiplied by
    ``(1 - z) / (1 - rate)`` with the Concrete relaxation ``z = sigmoid((logit(rate) + log u - log(1 - u)) / t)``
    of a Bernoulli(rate) drop, so the rate ``sigmoid(p_logit)`` is learned by gradient descent. The wrapper adds
    ``weight_regularizer · ‖W‖² / (1 - rate) + dropout_regularizer · K · (rate log rate + (1 - rate) log(1 - rate))``
    to the losses, ``W`` the wrapped layer's kernel and ``K`` the number of input units. This is the KL term of
    the ELBO when ``weight_regularizer = l² / (τ N)`` and ``dropout_regularizer = 2 / (τ N)`` (Gal et al. 2017,
    §3: ``l`` the prior length scale, ``τ`` the model precision, 1 for classification, ``N`` the number of
    training samples); `kerasdrop.concrete_regularizers` computes both. The defaults (1e-6 and 1e-5) are those of
    the authors' Keras code, not a value for your data. `kerasdrop.callbacks.KLWarmup` can warm the term up. At
    test time the wrapped layer is applied to ``x`` unchanged.

    Args:
        layer: a Keras layer with a trainable weight named ``kernel``.
        weight_regularizer: Float >= 0.
        dropout_regularizer: Float >= 0.
        init_min, init_max: Floats in (0, 1), the initial rate is drawn uniformly between them (on the logit scale).
        temperature: Float > 0, the temperature ``t`` of the relaxation.
        seed: None or int.
        mc: bool, Monte Carlo mode.

    Call arguments:
        inputs: float tensor, the input of the wrapped layer.
        training: Python bool, whether to drop (always with ``mc=True``); passed on to the wrapped layer.

    Attributes:
        rate: the learned rate, a Python float.
        p_logit: the learned weight, ``logit(rate)``.

    Reference:
        - [Gal, Hron & Kendall, 2017](https://arxiv.org/abs/1705.07832)
    """


@register
class ConcreteSpatialDropout2D(_ConcreteDropout):
    """Concrete dropout of whole feature maps of the input of a layer (Gal, Hron & Kendall 2017).

    As `ConcreteDropout`, but one relaxed mask entry per (sample, channel), shared by all positions of a 2D feature
    map (as `SpatialDropout2D`), and ``K`` in the dropout regulariser is the number of channels. Gal et al.'s spatial
    code uses ``temperature = 2/3``; the default is 0.1 as for `ConcreteDropout`.

    Args:
        layer: a Keras layer with a trainable weight named ``kernel``, e.g. `keras.layers.Conv2D`.
        data_format: "channels_last" (default: `keras.config.image_data_format()`) or "channels_first".
        weight_regularizer, dropout_regularizer, init_min, init_max, temperature, seed, mc: as in `ConcreteDropout`.

    Call arguments:
        inputs: float tensor, the input of the wrapped layer.
        training: Python bool, whether to drop (always with ``mc=True``); passed on to the wrapped layer.

    Input shape: 4D, ``(batch, rows, cols, channels)`` or ``(batch, channels, rows, cols)``.

    Reference:
        - [Gal, Hron & Kendall, 2017](https://arxiv.org/abs/1705.07832)
    """

    def __init__(self, layer, data_format=None, **kwargs):
        super().__init__(layer, **kwargs)
        self.data_format = check_data_format(data_format)
        self.input_spec = keras.layers.InputSpec(ndim=4)

    def _noise_shape(self, inputs):
        return per_channel_shape(ops.shape(inputs), self.data_format)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}
