"""What every kerasdrop layer shares: seed and Monte Carlo handling, input checks, config and registration."""

import keras
from keras import ops

from kerasdrop import _compat, _context
from kerasdrop import ops as kd_ops
from kerasdrop._validation import check_bool, check_choice, check_rate, check_seed

SCALINGS = ("inverted", "weight_scaling")

# Offset added to the first seed word of replica k, so replicas of a MirroredStrategy draw different masks.
_REPLICA_SEED_STRIDE = 1_000_003


def register(cls):
    """Registers a layer for `.keras` loading without `custom_objects`."""
    return keras.saving.register_keras_serializable(package="kerasdrop")(cls)


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A ``keras.random.SeedGenerator`` that mixes the replica index into each seed it hands out.

    Everything else (state variable, sequence of seeds, reproducibility from an int seed) is Keras's own; outside a
    distribution strategy the seeds are exactly those of ``keras.random.SeedGenerator(seed)``.
    """

    def next(self, ordered=True):
        seed = super().next(ordered=ordered)
        replica = _compat.replica_id()
        if isinstance(replica, int) and replica == 0:
            return seed
        offset = ops.cast(replica, seed.dtype) * _REPLICA_SEED_STRIDE
        return seed + ops.stack([offset, ops.zeros_like(offset)])


def check_float_inputs(layer, inputs):
    """Dropout of integer tensors has no meaning: refuse them with a clear message."""
    dtype = keras.backend.standardize_dtype(inputs.dtype)
    if "float" not in dtype:
        raise TypeError(
            f"Layer {layer.name!r} ({type(layer).__name__}) expects floating-point inputs. "
            f"Received inputs of dtype {dtype}; cast them first, e.g. `keras.ops.cast(x, 'float32')`."
        )


class StochasticLayer(keras.layers.Layer):
    """Base of every kerasdrop layer that samples noise: `seed`, `mc` and the train/test switch.

    It also works as a mixin in front of a Keras layer (``class X(StochasticLayer, keras.layers.Dense)``): the
    `seed` and `mc` keywords are taken here and the rest goes on to the Keras class.

    ``call`` is the same for every layer: float inputs of a shape the layer takes, its loss terms (``_add_losses``,
    for the layers with a KL or regularisation term), then ``_sample(inputs)`` when the call is stochastic (see
    `is_stochastic`) or ``_test_output(inputs)`` (the identity unless overridden). A family writes those hooks only.
    The recurrent cells, whose call is one time step with states, have a call of their own.

    Args:
        seed: None or int. An int makes the sequence of masks reproducible; every call still draws new noise.
        mc: bool. Monte Carlo mode: sample noise on every call, whatever `training` is, so that `predict`,
            reloaded models and exported SavedModels stay stochastic.
    """

    def __init__(self, *args, seed=None, mc=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = check_seed(seed)
        self.mc = check_bool("mc", mc)
        self.seed_generator = ReplicaSeedGenerator(self.seed)
        # A layer without weights (no `build` of its own) is built once created, as Keras's `Dropout` is.
        _compat.build_at_init(self)

    def is_stochastic(self, training):
        """True when this call samples noise: in training, or always in Monte Carlo mode.

        While `kerasdrop.MCDropout` traces its sampler, its selection decides instead (in that thread only).
        """
        chosen = _context.selected(self)
        if chosen is not None:
            return chosen
        return bool(training) or self.mc

    def call(self, inputs, training=False):
        check_float_inputs(self, inputs)
        self.check_input_shape(inputs.shape)
        self._add_losses(inputs)
        if self.is_stochastic(training):
            return self._sample(inputs)
        return self._test_output(inputs)

    def _add_losses(self, inputs):
        """Adds the layer's loss terms (with ``add_loss``) on every call; none by default."""

    def _sample(self, inputs):
        """The output of a stochastic call (training, Monte Carlo mode, or sampled by MCDropout)."""
        raise NotImplementedError

    def _test_output(self, inputs):
        """The deterministic test-time output."""
        return inputs

    def check_input_shape(self, input_shape):
        """Raises a clear ``ValueError`` for inputs this layer cannot take; called from ``call`` and
        ``compute_output_shape`` by the layers built at creation, which have no `build` to check them in."""

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        # TensorFlow's hook (`tf.saved_model.save`), which Keras's layers implement: see `_compat.trackable_children`.
        return _compat.trackable_children(self, StochasticLayer, save_type, **kwargs)

    @property
    def noise_shared_across_batch(self):
        """True when one draw of noise serves every sample of a batch (a mask or rate drawn once per call).

        Monte Carlo prediction may only stack several samples into one batch when this is False.
        """
        return False

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "mc": self.mc}


class ElementwiseDropout(StochasticLayer):
    """Base of the layers whose output has the input's shape and whose noise only multiplies it.

    Subclasses implement ``_sample(inputs)`` (the training-time output) and may override ``_test_output``; it adds
    Keras mask propagation and the output shape to `StochasticLayer`.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        return input_shape


def draws_from_torch_generator(layer):
    """Whether this call draws its mask from PyTorch's global generator: PyTorch, a layer without a seed, and not
    while `kerasdrop.MCDropout` samples (it hands every layer seed states of its own).

    Keras's own ``Dropout`` does the same on PyTorch: a seeded draw there costs a ``SeedGenerator`` step and a new
    ``torch.Generator`` per call (its cost: docs/design.md). The global generator is seeded by
    ``keras.utils.set_random_seed`` (or ``torch.manual_seed``); an int ``seed`` keeps its own reproducible sequence,
    drawn from the layer's seed state as on the other backends.
    """
    return (
        keras.backend.backend() == "torch"
        and layer.seed is None
        and _context.selected(layer) is None
        and not _context.stateful_draws()
    )


def torch_generator_dropout(inputs, rate, noise_shape, scaling):
    """Bernoulli dropout of a PyTorch tensor with a float32 uniform draw from the global generator: the formula of
    `kerasdrop.ops.dropout` (dropped units exactly 0, inf and NaN included) in four PyTorch kernels."""
    import torch

    if rate == 0:
        return inputs
    keep = 1.0 - rate
    shape = tuple(kd_ops.resolve_noise_shape(inputs, noise_shape))
    kept = torch.rand(shape, dtype=torch.float32, device=inputs.device) < keep
    if scaling == "inverted":
        inputs = inputs * (1.0 / keep)
    return torch.where(kept, inputs, 0.0)


class RateDropout(StochasticLayer):
    """Base of Bernoulli dropout with a fixed `rate` and a choice of `scaling`: the output has the input's shape.

    ``scaling="inverted"`` multiplies kept units by ``1/keep`` while training and is the identity at test time;
    ``scaling="weight_scaling"`` keeps units unscaled while training and multiplies by ``keep`` at test time
    (Hinton et al. 2012). Subclasses choose the mask shape by overriding ``_noise_shape``. On PyTorch a layer without
    a seed draws its masks from torch's global generator, as Keras's ``Dropout`` does (`draws_from_torch_generator`).
    """

    def __init__(self, rate, scaling="inverted", **kwargs):
        super().__init__(**kwargs)
        self.rate = check_rate("rate", rate)
        self.scaling = check_choice("scaling", scaling, SCALINGS)
        self.supports_masking = True

    def compute_output_shape(self, input_shape):
        self.check_input_shape(input_shape)
        return input_shape

    def _noise_shape(self, inputs):
        """Shape of the mask (None entries take the input's size); None means the input's own shape."""
        return None

    def _test_output(self, inputs):
        if self.scaling == "weight_scaling" and self.rate > 0:
            return inputs * ops.cast(1.0 - self.rate, inputs.dtype)
        return inputs

    def _sample(self, inputs):
        if draws_from_torch_generator(self):
            return torch_generator_dropout(inputs, self.rate, self._noise_shape(inputs), self.scaling)
        return kd_ops.dropout(
            inputs, self.rate, noise_shape=self._noise_shape(inputs), seed=self.seed_generator, scaling=self.scaling
        )

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "scaling": self.scaling}
