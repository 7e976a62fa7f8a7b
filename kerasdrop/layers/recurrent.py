"""Ready recurrent layers with dropout, drop-ins for `keras.layers.LSTM` and `keras.layers.GRU`.

Each layer is a `keras.layers.RNN` around one cell of ``recurrent_cells.py``, with the arguments Keras users know
(``return_sequences``, ``return_state``, ``go_backwards``, ``stateful``, ``unroll``, masking, ``initial_state``) and
the same weights as the Keras layer, so ``set_weights(keras_layer.get_weights())`` works both ways.

Speed. Keras runs ``recurrent_dropout`` through its generic loop with the masks multiplied in at every step. Here
the per-sequence masks and the weights cut into gate blocks are prepared once, before the time loop
(``cell.sequence_plan``), per-step noise is drawn for the whole sequence at once (``cell.step_noise``), and each step
does one small product per gate for ``x_t`` and one for ``h_{t-1}``. The loop itself is the backend's, the one
`keras.layers.RNN` runs. The measured alternatives are in ``docs/design.md``.
"""

import re

import keras
from keras import ops

from kerasdrop import _compat
from kerasdrop._validation import check_bool
from kerasdrop.layers._base import check_float_inputs, register
from kerasdrop.layers.recurrent_cells import (
    RNNDropLSTMCell,
    SemeniutaGRUCell,
    SemeniutaLSTMCell,
    VariationalGRUCell,
    VariationalLSTMCell,
    ZoneoutGRUCell,
    ZoneoutLSTMCell,
)

# Keyword arguments that belong to the RNN layer rather than to its cell.
_LAYER_KWARGS = ("name", "dtype", "trainable", "activity_regularizer", "zero_output_for_mask")
# Entries of a cell's config that the layer's own config already holds.
_LAYER_CONFIG_KEYS = ("name", "trainable", "dtype")


def _snake_case(name):
    """``"RNNDropLSTMCell"`` -> ``"rnn_drop_lstm_cell"``."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


class _DropoutRNN(keras.layers.RNN):
    """Base of the ready layers: builds the cell, runs the prepared loop, flattens the cell's config into its own."""

    cell_class = None

    def __init__(
        self,
        units,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=False,
        **kwargs,
    ):
        layer_kwargs = {key: kwargs.pop(key) for key in _LAYER_KWARGS if key in kwargs}
        cell = self.cell_class(
            units,
            dtype=layer_kwargs.get("dtype"),
            trainable=layer_kwargs.get("trainable", True),
            name=_snake_case(self.cell_class.__name__),
            **kwargs,
        )
        # Every step's noise is drawn before the loop (`inner_loop`): the cell carries no step counter, it has the
        # states of the Keras cell.
        cell.noise_drawn_before_loop = True
        flags = {
            name: check_bool(name, value)
            for name, value in (
                ("return_sequences", return_sequences),
                ("return_state", return_state),
                ("go_backwards", go_backwards),
                ("stateful", stateful),
                ("unroll", unroll),
            )
        }
        super().__init__(cell, **flags, **layer_kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        check_float_inputs(self, sequences)
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if keras.tree.is_nested(mask):
            mask = mask[0]
        if not keras.tree.is_nested(initial_state):
            initial_state = [initial_state]
        cell = self.cell
        stochastic = cell.is_stochastic(training)
        # Masks of this call (drawn by RNN.call before the loop) and weights in gate blocks, once per sequence.
        plan = cell.sequence_plan(sequences[:, 0, :], initial_state[0], stochastic)
        noise = cell.step_noise(tuple(ops.shape(sequences)[:2]), sequences.dtype) if stochastic else None
        inputs = sequences if noise is None else (sequences, noise)

        def step(step_inputs, states):
            step_noise = None
            if noise is not None:
                step_inputs, step_noise = step_inputs
            # Through `cell.call`, so that whatever wraps the cell's call (e.g. MCDropout's sampler) sees every step.
            return cell.call(step_inputs, list(states), training=training, plan=plan, noise=step_noise)

        return _compat.rnn_layer_loop(self, step, inputs, initial_state, mask, sequences.shape[1])

    @property
    def units(self):
        return self.cell.units

    @property
    def seed(self):
        return self.cell.seed

    @property
    def mc(self):
        return self.cell.mc

    @mc.setter
    def mc(self, value):
        self.cell.mc = check_bool("mc", value)

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        for key in _LAYER_CONFIG_KEYS:
            cell_config.pop(key, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _delegate(*names):
    """Adds read-only properties that return the cell's attributes (``layer.dropout`` is ``layer.cell.dropout``)."""

    def decorate(cls):
        for name in names:
            setattr(cls, name, property(lambda self, name=name: getattr(self.cell, name)))
        return cls

    return decorate


_KERAS_ATTRIBUTES = (
    "activation",
    "recurrent_activation",
    "use_bias",
    "kernel_initializer",
    "recurrent_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "recurrent_regularizer",
    "bias_regularizer",
    "kernel_constraint",
    "recurrent_constraint",
    "bias_constraint",
    "dropout",
)


@register
@_delegate(*_KERAS_ATTRIBUTES, "recurrent_dropout", "unit_forget_bias")
class VariationalLSTM(_DropoutRNN):
    """LSTM with Gal & Ghahramani's variational dropout, a fast drop-in for `keras.layers.LSTM`.

    Per-sequence masks on the inputs and on ``h_{t-1}``, separate for each gate and reused at every step (see
    `VariationalLSTMCell`); identical to `keras.layers.LSTM` at test time.

    Args:
        units: Positive int, dimensionality of the output.
        dropout: Float in [0, 1), drop probability of the inputs.
        recurrent_dropout: Float in [0, 1), drop probability of the recurrent state.
        seed: None or int, for reproducible masks (a new draw on every call all the same).
        mc: bool, Monte Carlo mode: masks on every call, whatever `training` is.
        return_sequences, return_state, go_backwards, stateful, unroll: as in `keras.layers.RNN`.
        **kwargs: the other arguments of the matching Keras layer (activation, recurrent_activation, use_bias,
            initializers, regularizers, constraints, activity_regularizer, name, dtype, ...).

    Call arguments:
        sequences: ``(batch, timesteps, features)`` float tensor.
        initial_state: optional list of initial state tensors.
        mask: optional ``(batch, timesteps)`` boolean mask (or from a masking layer).
        training: Python bool.

    Reference:
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1512.05287)
    """

    cell_class = VariationalLSTMCell

    def __init__(self, units, dropout=0.0, recurrent_dropout=0.0, seed=None, mc=False, **kwargs):
        super().__init__(units, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, mc=mc, **kwargs)


@register
@_delegate(*_KERAS_ATTRIBUTES, "cell_dropout", "unit_forget_bias")
class RNNDropLSTM(_DropoutRNN):
    """LSTM with Moon et al.'s RNNDrop: the same memory units dropped at every step of a sequence.

    See `RNNDropLSTMCell` for the formula; identical to `keras.layers.LSTM` at test time.

    Args:
        units: Positive int, dimensionality of the output.
        cell_dropout: Float in [0, 1), fraction of memory units dropped for a whole sequence.
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs.
        seed: None or int, for reproducible masks (a new draw on every call all the same).
        mc: bool, Monte Carlo mode: masks on every call, whatever `training` is.
        return_sequences, return_state, go_backwards, stateful, unroll: as in `keras.layers.RNN`.
        **kwargs: the other arguments of the matching Keras layer (activation, recurrent_activation, use_bias,
            initializers, regularizers, constraints, activity_regularizer, name, dtype, ...).

    Call arguments:
        sequences: ``(batch, timesteps, features)`` float tensor.
        initial_state: optional list of initial state tensors.
        mask: optional ``(batch, timesteps)`` boolean mask (or from a masking layer).
        training: Python bool.

    Reference:
        - [Moon et al., 2015, RNNDrop](https://doi.org/10.1109/ASRU.2015.7404775)
    """

    cell_class = RNNDropLSTMCell

    def __init__(self, units, cell_dropout=0.0, dropout=0.0, seed=None, mc=False, **kwargs):
        super().__init__(units, cell_dropout=cell_dropout, dropout=dropout, seed=seed, mc=mc, **kwargs)


@register
@_delegate(*_KERAS_ATTRIBUTES, "recurrent_dropout", "per_step", "unit_forget_bias")
class SemeniutaLSTM(_DropoutRNN):
    """LSTM with Semeniuta et al.'s recurrent dropout without memory loss: only the candidate update is dropped.

    ``c_t = f * c_{t-1} + i * d(g_t)`` (see `SemeniutaLSTMCell`); identical to `keras.layers.LSTM` at test time.

    Args:
        units: Positive int, dimensionality of the output.
        recurrent_dropout: Float in [0, 1), drop probability of the candidate ``g_t``.
        per_step: bool, a new mask at every step (True) or one per sequence (False).
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs.
        seed: None or int, for reproducible masks (a new draw on every call all the same).
        mc: bool, Monte Carlo mode: masks on every call, whatever `training` is.
        return_sequences, return_state, go_backwards, stateful, unroll: as in `keras.layers.RNN`.
        **kwargs: the other arguments of the matching Keras layer (activation, recurrent_activation, use_bias,
            initializers, regularizers, constraints, activity_regularizer, name, dtype, ...).

    Call arguments:
        sequences: ``(batch, timesteps, features)`` float tensor.
        initial_state: optional list of initial state tensors.
        mask: optional ``(batch, timesteps)`` boolean mask (or from a masking layer).
        training: Python bool.

    Reference:
        - [Semeniuta et al., 2016](https://arxiv.org/abs/1603.05118)
    """

    cell_class = SemeniutaLSTMCell

    def __init__(self, units, recurrent_dropout=0.0, per_step=True, dropout=0.0, seed=None, mc=False, **kwargs):
        super().__init__(
            units, recurrent_dropout=recurrent_dropout, per_step=per_step, dropout=dropout, seed=seed, mc=mc, **kwargs
        )


@register
@_delegate(*_KERAS_ATTRIBUTES, "recurrent_dropout", "reset_after")
class VariationalGRU(_DropoutRNN):
    """GRU with Gal & Ghahramani's variational dropout, a drop-in for `keras.layers.GRU`.

    Per-sequence, per-gate masks on the inputs and on ``h_{t-1}`` (see `VariationalGRUCell`); identical to
    `keras.layers.GRU` at test time.

    Args:
        units: Positive int, dimensionality of the output.
        dropout: Float in [0, 1), drop probability of the inputs.
        recurrent_dropout: Float in [0, 1), drop probability of the recurrent state.
        seed: None or int, for reproducible masks (a new draw on every call all the same).
        mc: bool, Monte Carlo mode: masks on every call, whatever `training` is.
        return_sequences, return_state, go_backwards, stateful, unroll: as in `keras.layers.RNN`.
        **kwargs: the other arguments of the matching Keras layer (activation, recurrent_activation, use_bias,
            initializers, regularizers, constraints, activity_regularizer, name, dtype, ...).

    Call arguments:
        sequences: ``(batch, timesteps, features)`` float tensor.
        initial_state: optional list of initial state tensors.
        mask: optional ``(batch, timesteps)`` boolean mask (or from a masking layer).
        training: Python bool.

    Reference:
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1512.05287)
    """

    cell_class = VariationalGRUCell

    def __init__(self, units, dropout=0.0, recurrent_dropout=0.0, seed=None, mc=False, **kwargs):
        super().__init__(units, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed, mc=mc, **kwargs)


@register
@_delegate(*_KERAS_ATTRIBUTES, "recurrent_dropout", "per_step", "reset_after")
class SemeniutaGRU(_DropoutRNN):
    """GRU with Semeniuta et al.'s recurrent dropout without memory loss: only the candidate is dropped.

    ``h_t = z * h_{t-1} + (1 - z) * d(g_t)`` in Keras's gate convention (see `SemeniutaGRUCell`); identical to
    `keras.layers.GRU` at test time.

    Args:
        units: Positive int, dimensionality of the output.
        recurrent_dropout: Float in [0, 1), drop probability of the candidate.
        per_step: bool, a new mask at every step (True) or one per sequence (False).
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs.
        seed: None or int, for reproducible masks (a new draw on every call all the same).
        mc: bool, Monte Carlo mode: masks on every call, whatever `training` is.
        return_sequences, return_state, go_backwards, stateful, unroll: as in `keras.layers.RNN`.
        **kwargs: the other arguments of the matching Keras layer (activation, recurrent_activation, use_bias,
            initializers, regularizers, constraints, activity_regularizer, name, dtype, ...).

    Call arguments:
        sequences: ``(batch, timesteps, features)`` float tensor.
        initial_state: optional list of initial state tensors.
        mask: optional ``(batch, timesteps)`` boolean mask (or from a masking layer).
        training: Python bool.

    Reference:
        - [Semeniuta et al., 2016](https://arxiv.org/abs/1603.05118)
    """

    cell_class = SemeniutaGRUCell

    def __init__(self, units, recurrent_dropout=0.0, per_step=True, dropout=0.0, seed=None, mc=False, **kwargs):
        super().__init__(
            units, recurrent_dropout=recurrent_dropout, per_step=per_step, dropout=dropout, seed=seed, mc=mc, **kwargs
        )


@register
@_delegate(*_KERAS_ATTRIBUTES, "cell_zoneout", "hidden_zoneout", "unit_forget_bias")
class ZoneoutLSTM(_DropoutRNN):
    """LSTM with zoneout (Krueger et al. 2017): units of ``c`` and ``h`` keep their previous values at random.

    At every step each unit of the memory keeps its previous value with probability ``cell_zoneout``, each unit of
    the output with probability ``hidden_zoneout`` (see `ZoneoutLSTMCell`); at test time the expectation
    ``z · s_{t-1} + (1 - z) · s̃_t``. Exactly `keras.layers.LSTM` with both zoneouts 0.

    Args:
        units: Positive int, dimensionality of the output.
        cell_zoneout: Float in [0, 1), probability that a unit of the memory ``c`` keeps its value at a step.
        hidden_zoneout: Float in [0, 1), probability that a unit of the output ``h`` keeps its value at a step.
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs.
        seed: None or int, for reproducible masks (a new draw on every call all the same).
        mc: bool, Monte Carlo mode: masks on every call, whatever `training` is.
        return_sequences, return_state, go_backwards, stateful, unroll: as in `keras.layers.RNN`.
        **kwargs: the other arguments of the matching Keras layer (activation, recurrent_activation, use_bias,
            initializers, regularizers, constraints, activity_regularizer, name, dtype, ...).

    Call arguments:
        sequences: ``(batch, timesteps, features)`` float tensor.
        initial_state: optional list of initial state tensors.
        mask: optional ``(batch, timesteps)`` boolean mask (or from a masking layer).
        training: Python bool.

    Reference:
        - [Krueger et al., 2017](https://arxiv.org/abs/1606.01305)
    """

    cell_class = ZoneoutLSTMCell

    def __init__(self, units, cell_zoneout=0.0, hidden_zoneout=0.0, dropout=0.0, seed=None, mc=False, **kwargs):
        super().__init__(
            units,
            cell_zoneout=cell_zoneout,
            hidden_zoneout=hidden_zoneout,
            dropout=dropout,
            seed=seed,
            mc=mc,
            **kwargs,
        )


@register
@_delegate(*_KERAS_ATTRIBUTES, "zoneout", "reset_after")
class ZoneoutGRU(_DropoutRNN):
    """GRU with zoneout (Krueger et al. 2017): units of the state keep their previous values at random.

    At every step each unit keeps its previous value with probability ``zoneout`` (see `ZoneoutGRUCell`); at test
    time ``h_t = zoneout · h_{t-1} + (1 - zoneout) · h̃_t``. Exactly `keras.layers.GRU` with ``zoneout=0``.

    Args:
        units: Positive int, dimensionality of the output.
        zoneout: Float in [0, 1), probability that a unit of the state keeps its value at a step.
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs.
        seed: None or int, for reproducible masks (a new draw on every call all the same).
        mc: bool, Monte Carlo mode: masks on every call, whatever `training` is.
        return_sequences, return_state, go_backwards, stateful, unroll: as in `keras.layers.RNN`.
        **kwargs: the other arguments of the matching Keras layer (activation, recurrent_activation, use_bias,
            initializers, regularizers, constraints, activity_regularizer, name, dtype, ...).

    Call arguments:
        sequences: ``(batch, timesteps, features)`` float tensor.
        initial_state: optional list of initial state tensors.
        mask: optional ``(batch, timesteps)`` boolean mask (or from a masking layer).
        training: Python bool.

    Reference:
        - [Krueger et al., 2017](https://arxiv.org/abs/1606.01305)
    """

    cell_class = ZoneoutGRUCell

    def __init__(self, units, zoneout=0.0, dropout=0.0, seed=None, mc=False, **kwargs):
        super().__init__(units, zoneout=zoneout, dropout=dropout, seed=seed, mc=mc, **kwargs)
