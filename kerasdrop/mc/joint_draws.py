"""Joint Monte Carlo draws (``MCDropout(..., consistent=True)``): sample ``t`` of every input from one network.

The sampler tiles ``copies`` samples of a batch along the batch axis (sample-major) and opens
`kerasdrop._context.selecting` with ``shared_copies=copies``. Every kerasdrop draw names its batch axis, so
kerasdrop layers then draw once per sample (`kerasdrop._random.shared_over_batch`); the layers that draw per input by
construction (the local reparameterisation) draw their weights once per sample instead.

Keras's own noise layers draw per row inside Keras's code, so the sampler runs them itself, from their config and
their own seed generator, with the draws shared: this module holds those formulas (`shared_noise_output`), each
Keras's own (same distribution, checked against Keras's layer in the tests), and `check_joint_draws`, which refuses
at once a model whose noise could not be shared (attention dropout inside ``MultiHeadAttention``, a Keras noise layer
that a layer of the user's own calls itself).
"""

import keras
from keras import ops

from kerasdrop import _compat, _random
from kerasdrop import ops as kd_ops
from kerasdrop.layers._base import StochasticLayer, check_float_inputs
from kerasdrop.mc import keras_rnn as _keras_rnn

# SELU's constants, as Keras's AlphaDropout writes them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

_SPATIAL = {
    keras.layers.SpatialDropout1D: 1,
    keras.layers.SpatialDropout2D: 2,
    keras.layers.SpatialDropout3D: 3,
}


def _spatial_noise_shape(layer, inputs):
    """Keras's mask shape of a spatial dropout: one draw per (sample, channel)."""
    shape = ops.shape(inputs)
    dims = _SPATIAL[type(layer)]
    if dims == 1 or layer.data_format == "channels_last":
        return (shape[0], *([1] * dims), shape[-1])
    return (shape[0], shape[1], *([1] * dims))


def _dropout(layer, inputs):
    """Keras's ``Dropout`` (and spatial dropouts): inverted Bernoulli dropout, dropped units exactly 0."""
    noise_shape = _spatial_noise_shape(layer, inputs) if type(layer) in _SPATIAL else layer.noise_shape
    return kd_ops.dropout(inputs, float(layer.rate), noise_shape=noise_shape, seed=layer.seed_generator)


def _gaussian_dropout(layer, inputs):
    """Keras's ``GaussianDropout``: ``x * g``, ``g ~ N(1, rate / (1 - rate))``."""
    return kd_ops.gaussian_dropout(inputs, float(layer.rate), seed=layer.seed_generator)


def _gaussian_noise(layer, inputs):
    """Keras's ``GaussianNoise``: ``x + n``, ``n ~ N(0, stddev²)``."""
    if layer.stddev == 0:
        return inputs
    noise = _random.normal(
        ops.shape(inputs), layer.seed_generator, stddev=float(layer.stddev), dtype="float32", batch_axis=0
    )
    return inputs + ops.cast(noise, inputs.dtype)


def _alpha_dropout(layer, inputs):
    """Keras's ``AlphaDropout``: dropped units set to SELU's negative saturation, then the affine map that keeps the
    mean and variance (Klambauer et al. 2017)."""
    rate = float(layer.rate)
    if rate == 0:
        return inputs
    noise_shape = kd_ops.resolve_noise_shape(inputs, layer.noise_shape)
    kept = ops.cast(kd_ops.bernoulli_mask(noise_shape, 1.0 - rate, layer.seed_generator, batch_axis=0), inputs.dtype)
    alpha_p = -_SELU_ALPHA * _SELU_SCALE
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    return a * (inputs * kept + alpha_p * (1 - kept)) + b


# Exact classes: a subclass of the user's may compute something else.
_FORMULAS = {
    keras.layers.Dropout: _dropout,
    **dict.fromkeys(_SPATIAL, _dropout),
    keras.layers.GaussianDropout: _gaussian_dropout,
    keras.layers.GaussianNoise: _gaussian_noise,
    keras.layers.AlphaDropout: _alpha_dropout,
}


def runs_itself(layer):
    """Whether the sampler computes ``layer``'s noise itself under joint draws (a Keras noise layer or RNN)."""
    return type(layer) in _FORMULAS or _keras_rnn.supports(layer)


def shared_noise_output(layer, args, kwargs):
    """The training-mode output of a Keras noise layer (or RNN) with draws shared by the rows of each sample."""
    if _keras_rnn.supports(layer):
        return _keras_rnn.run_with_shared_masks(layer, args, kwargs)
    inputs = args[0] if args else kwargs["inputs"]
    check_float_inputs(layer, inputs)
    return _FORMULAS[type(layer)](layer, inputs)


def _shares_wherever_called(layer):
    """A kerasdrop layer, or an RNN whose noise is all in kerasdrop cells: its draws name their batch axis."""
    if isinstance(layer, keras.layers.RNN):
        cells = _compat.flatten_layers(layer.cell)
        keras_drops = any(
            not isinstance(cell, StochasticLayer)
            and (getattr(cell, "dropout", 0) or getattr(cell, "recurrent_dropout", 0))
            for cell in cells
        )
        return any(isinstance(cell, StochasticLayer) for cell in cells) and not keras_drops
    return isinstance(layer, StochasticLayer)


def check_joint_draws(model, plan, selection):
    """Raises a clear ``ValueError`` when a selected noise layer of ``model`` cannot share its draws.

    kerasdrop layers share them wherever they are. A Keras noise layer shares them only when the sampler calls it
    itself: a node of the model's graph (nested functional models included) of a kind `runs_itself` knows.
    """
    called = set()

    def walk(graph):
        for node in graph[2]:
            called.add(id(node.operation))
            inner = _compat.functional_graph(node.operation) if isinstance(node.operation, keras.Model) else None
            if inner is not None:
                walk(inner)

    if plan.functional:
        walk((plan.inputs, plan.outputs, plan.prefix + plan.suffix))
    for layer in selection.layers:
        if _shares_wherever_called(layer):
            continue
        if isinstance(layer, keras.layers.MultiHeadAttention):
            raise ValueError(
                f"MCDropout(consistent=True) cannot share the attention dropout of {layer.name!r} "
                f"(MultiHeadAttention, dropout={layer.dropout}) across inputs: Keras draws it inside the attention "
                "computation, one mask per input. Leave it out with `stochastic_layers=[...]` (naming the other noise "
                "layers), build the attention block with a `kerasdrop.Dropout` on its output instead, or sample with "
                "consistent=False (per-input moments only)."
            )
        if isinstance(layer, keras.layers.RNN) and not _keras_rnn.supports(layer):
            raise ValueError(_keras_rnn.unsupported_message(layer))
        if not runs_itself(layer):
            raise ValueError(
                f"MCDropout(consistent=True) cannot share the noise of {layer.name!r} ({type(layer).__name__}) across "
                "inputs: it draws per input inside its own code. Joint draws support kerasdrop's layers and Keras's "
                "Dropout, SpatialDropout1D/2D/3D, GaussianDropout, GaussianNoise, AlphaDropout, LSTM, GRU and "
                "SimpleRNN. Use the kerasdrop layer of the same kind, or leave it out with `stochastic_layers=[...]`."
            )
        if id(layer) not in called:
            raise ValueError(
                f"MCDropout(consistent=True) cannot share the noise of {layer.name!r} ({type(layer).__name__}) across "
                "inputs: it is called inside another layer's code (or a subclassed model's), where the sampler cannot "
                "run it itself. Use kerasdrop's layer of the same name there (kerasdrop layers share their draws "
                "wherever they are), or build the model with the functional API."
            )
