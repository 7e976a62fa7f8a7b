"""Keras's own recurrent layers (``LSTM``, ``GRU``, ``SimpleRNN``), run with dropout masks shared sample by sample.

Keras's cells draw their dropout masks per row, inside Keras's code. While `kerasdrop.MCDropout` samples joint draws
(``consistent=True``: ``copies`` samples tiled sample-major along the batch, `kerasdrop._context`), every
input of a sample must see the same network, so the sampler runs such a layer itself with `run_with_shared_masks`:
the layer's own weights, Keras's own equations and time loop, and masks drawn once per sequence from the cell's own
``seed_generator`` with ``batch_axis=0`` (`kerasdrop._random.shared_over_batch`), so that the rows of one sample
share them. Outside joint draws the masks are one per row, as Keras draws them.

Keras's masks, reproduced here (``DropoutRNNCell``, read in Keras 3.15): inverted dropout (0 or ``1 / keep``), one
mask for ``x_t`` of shape ``(rows, input_dim)`` and one for ``h_{t-1}`` of shape ``(rows, units)``, drawn before the
loop and reused at every step. An ``LSTMCell`` or ``GRUCell`` with ``implementation=1`` (which Keras imposes whenever
``recurrent_dropout > 0``) draws one such mask per gate instead, ``(gates, rows, dim)``; with
``implementation=2`` one input mask serves every gate (and there is no recurrent dropout). The LSTM and GRU cells
apply a mask only for a rate strictly between 0 and 1; the SimpleRNN cell for any positive rate (at rate 1 it drops
everything).
"""

import inspect
from typing import NamedTuple

import keras
from keras import ops

from kerasdrop import _compat
from kerasdrop.layers.recurrent_cells import Plan, _gate_blocks, gru_gates, inverted_masks, lstm_gates

# Exact classes: a subclass of the user's may compute something else. Each layer with the cell it builds.
_LAYER_CELLS = {
    keras.layers.LSTM: keras.layers.LSTMCell,
    keras.layers.GRU: keras.layers.GRUCell,
    keras.layers.SimpleRNN: keras.layers.SimpleRNNCell,
}
_GATES = {keras.layers.LSTMCell: 4, keras.layers.GRUCell: 3, keras.layers.SimpleRNNCell: 1}


class Masks(NamedTuple):
    """The dropout masks of one sequence, on ``x_t`` (``inputs``) and on ``h_{t-1}`` (``state``).

    Each is None (no dropout), a ``(rows, dim)`` mask that every gate shares, or ``(gates, rows, dim)``, one mask per
    gate (an LSTM or GRU cell with ``implementation=1``). Entries are 0 or ``1 / keep``.
    """

    inputs: object = None
    state: object = None


def _cell_kind(layer):
    """The Keras cell class ``layer`` runs, for the layers this module knows; None for any other layer."""
    cell = getattr(layer, "cell", None)
    if type(layer) in _LAYER_CELLS:
        return _LAYER_CELLS[type(layer)] if type(cell) is _LAYER_CELLS[type(layer)] else None
    if type(layer) is keras.layers.RNN and type(cell) in _GATES:
        return type(cell)
    return None


def supports(layer):
    """Whether `run_with_shared_masks` runs ``layer``: a Keras ``LSTM``, ``GRU`` or ``SimpleRNN`` (or a
    ``keras.layers.RNN`` of one ``LSTMCell``, ``GRUCell`` or ``SimpleRNNCell``), exactly of Keras's class, not
    stateful."""
    return _cell_kind(layer) is not None and not layer.stateful


def unsupported_message(layer):
    """Why `run_with_shared_masks` cannot run ``layer`` under joint draws: one sentence naming it, and what to do."""
    name = f"{layer.name!r} ({type(layer).__name__})"
    if _cell_kind(layer) is not None and layer.stateful:
        return (
            f"MCDropout(consistent=True) cannot sample {name}: it is stateful, and each Monte Carlo sample would "
            "start from the state the previous sample left. Rebuild it with stateful=False for sampling."
        )
    if isinstance(layer, keras.layers.RNN):
        return (
            f"MCDropout(consistent=True) cannot share the dropout masks of {name}, whose cell is "
            f"{type(layer.cell).__name__}: it runs Keras's LSTM, GRU and SimpleRNN (and keras.layers.RNN of one "
            "LSTMCell, GRUCell or SimpleRNNCell) only. Use a kerasdrop recurrent layer instead, or leave this one out "
            "with `stochastic_layers=[...]`."
        )
    return (
        f"MCDropout(consistent=True) cannot share the dropout masks of {name}: it is not one of Keras's LSTM, GRU, "
        "SimpleRNN (or keras.layers.RNN of one of their cells)."
    )


def draw_masks(cell, step_input, state):
    """Keras's masks for one sequence (see `Masks`), drawn from ``cell.seed_generator`` with ``batch_axis`` on the
    rows, so that under joint draws the rows of one Monte Carlo sample share them.

    ``step_input`` is ``x_0`` ``(rows, input_dim)`` and ``state`` is ``h_0`` ``(rows, units)``: the masks take
    their shapes and dtypes. The input mask is drawn first, as Keras draws it.
    """
    gates = _GATES[type(cell)] if getattr(cell, "implementation", 2) == 1 else None
    return Masks(
        inputs=_mask(cell, cell.dropout, step_input, gates),
        state=_mask(cell, cell.recurrent_dropout, state, gates),
    )


def _mask(cell, rate, like, gates):
    if not _applies(cell, rate):
        return None
    shape = tuple(ops.shape(like))
    if gates is not None:
        shape = (gates, *shape)
    if rate >= 1:  # a SimpleRNN cell at rate 1 drops every unit
        return ops.zeros(shape, like.dtype)
    return inverted_masks(shape, rate, cell.seed_generator, like.dtype, batch_axis=0 if gates is None else 1)


def _applies(cell, rate):
    """Whether Keras's ``cell`` applies dropout at ``rate`` in training."""
    if type(cell) is keras.layers.SimpleRNNCell:
        return rate > 0
    return 0.0 < rate < 1.0


def run_with_shared_masks(layer, args, kwargs):
    """What ``layer(*args, **kwargs)`` returns in training mode, with masks drawn once per sample under joint draws.

    ``layer`` is one of the layers `supports` (any other raises a ``ValueError`` from `unsupported_message`), built;
    ``args`` and ``kwargs`` are those of its call (``sequences``, and possibly ``initial_state``, ``mask``,
    ``training``; ``training`` is ignored: the call is always a training call). Everything else is Keras's: the
    returned structure (``return_sequences``, ``return_state``), ``go_backwards``, ``unroll``, masking (an explicit
    ``mask``, or the Keras mask of ``sequences`` when it is the only tensor argument, as ``Layer.__call__`` passes
    it), ``zero_output_for_mask``, the activations, ``use_bias``, GRU's ``reset_after``, the dtype policy, and the
    Keras mask attached to the outputs. The masks come from `draw_masks`, from the cell's ``seed_generator``; inside
    a ``keras.StatelessScope`` the layer's variables are read from the scope and the generator's state advances there.
    The layer itself is never modified.
    """
    return run_with_masks(layer, args, kwargs, draw_masks)


def run_with_masks(layer, args, kwargs, masks):
    """`run_with_shared_masks` with given masks: a `Masks`, or a function ``(cell, x_0, h_0) -> Masks`` called once
    the call's inputs are read (as `draw_masks`)."""
    if not supports(layer):
        raise ValueError(unsupported_message(layer))
    if not layer.built:
        raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}) must be built (called once) to be sampled.")
    cell = layer.cell
    sequences, initial_state, mask, previous_mask = _call_arguments(layer, args, kwargs)
    if callable(masks):
        masks = masks(cell, sequences[:, 0, :], initial_state[0])
    masks = Masks(*(None if mask is None else ops.cast(mask, sequences.dtype) for mask in masks))
    step = _STEPS[type(cell)](cell, masks)

    last_output, outputs, states = _compat.rnn_layer_loop(
        layer, step, sequences, initial_state, mask, sequences.shape[1]
    )
    output = ops.cast(outputs if layer.return_sequences else last_output, layer.compute_dtype)
    result = (output, *(ops.cast(state, layer.compute_dtype) for state in states)) if layer.return_state else output
    if previous_mask is not None:
        _attach_output_masks(result, layer.compute_mask(sequences, previous_mask))
    return result


def _call_arguments(layer, args, kwargs):
    """``(sequences, initial_state, mask, previous_mask)`` as Keras's ``Layer.__call__`` and ``RNN.call`` see them.

    ``previous_mask`` is the mask Keras attaches the outputs' masks from: the explicit ``mask``, else the Keras mask of
    ``sequences``. Keras passes the latter to the call only when ``sequences`` is its one tensor argument, i.e.
    without an ``initial_state``.
    """
    arguments = inspect.signature(layer.call).bind(*args, **kwargs).arguments
    sequences, initial_state, mask = (arguments.get(name) for name in ("sequences", "initial_state", "mask"))
    inputs_mask = _compat.keras_mask(sequences)
    previous_mask = mask if mask is not None else inputs_mask
    if mask is None and initial_state is None:
        mask = inputs_mask
    if keras.tree.is_nested(mask):
        mask = mask[0]

    def convert(value):
        return layer.dtype_policy.convert_input(value, layer.autocast, layer.input_dtype)

    sequences = convert(sequences)
    if layer.unroll and sequences.shape[1] is None:
        raise ValueError(f"Cannot unroll {layer.name!r}: the time dimension of its input is undefined.")
    if initial_state is None:
        initial_state = layer.get_initial_state(batch_size=ops.shape(sequences)[0])
    if not keras.tree.is_nested(initial_state):
        initial_state = [initial_state]
    initial_state = [ops.convert_to_tensor(convert(state), dtype=layer.cell.compute_dtype) for state in initial_state]
    if mask is not None:
        mask = convert(mask)
    return sequences, initial_state, mask, previous_mask


def _attach_output_masks(outputs, output_masks):
    """Attaches Keras masks to ``outputs`` as ``Layer.__call__`` does, so that the layers after see them."""
    if output_masks is None:
        return
    for tensor, output_mask in zip(keras.tree.flatten(outputs), keras.tree.flatten(output_masks), strict=False):
        if output_mask is not None and _compat.keras_mask(tensor) is None:
            _compat.set_keras_mask(tensor, output_mask)


def _weight(variable, dtype):
    """A variable's value (its value in the current ``StatelessScope``, if any) in the compute dtype."""
    return None if variable is None else ops.cast(variable.value, dtype)


def _masked(vector, mask):
    """``vector * mask`` for a mask shared by every gate; unchanged for no mask or masks per gate."""
    return vector if mask is None or len(mask.shape) == 3 else vector * mask


def _per_gate(mask):
    """Per-gate masks ``(gates, rows, dim)`` for `_gate_blocks`; None when one mask (or none) serves every gate."""
    return mask if mask is not None and len(mask.shape) == 3 else None


def _lstm_step(cell, masks):
    """Keras's ``LSTMCell`` step: ``i, f, o = σ(·)``, ``g = tanh(·)`` of ``(x_t m) W_k + (h_{t-1} r) U_k + b_k``,
    ``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)``."""
    dtype = cell.compute_dtype
    plan = Plan(
        inputs=_gate_blocks(_weight(cell.kernel, dtype), _weight(cell.bias, dtype), _per_gate(masks.inputs), 4),
        state=_gate_blocks(_weight(cell.recurrent_kernel, dtype), None, _per_gate(masks.state), 4),
    )

    def step(inputs, states):
        h_tm1, c_tm1 = states
        # kerasdrop's gates are Keras's, read from the cell's own activations.
        i, f, g, o = lstm_gates(cell, _masked(inputs, masks.inputs), _masked(h_tm1, masks.state), plan)
        c = f * c_tm1 + i * g
        h = o * cell.activation(c)
        return h, [h, c]

    return step


def _gru_step(cell, masks):
    """Keras's ``GRUCell`` step (either ``reset_after``): ``h_t = z h_{t-1} + (1 - z) h̃_t``."""
    dtype = cell.compute_dtype
    bias = _weight(cell.bias, dtype)
    if bias is None:
        input_bias, state_bias = None, None
    elif cell.reset_after:
        input_bias, state_bias = bias[0], bias[1]
    else:
        input_bias, state_bias = bias, None
    plan = Plan(
        inputs=_gate_blocks(_weight(cell.kernel, dtype), input_bias, _per_gate(masks.inputs), 3),
        state=_gate_blocks(_weight(cell.recurrent_kernel, dtype), state_bias, _per_gate(masks.state), 3),
    )

    def step(inputs, states):
        h_tm1 = states[0]
        # The recurrent mask multiplies h_{t-1} in the recurrent products only; the update mixes the unmasked state.
        z, candidate = gru_gates(cell, _masked(inputs, masks.inputs), _masked(h_tm1, masks.state), plan)
        h = z * h_tm1 + (1 - z) * candidate
        return h, [h]

    return step


def _simple_rnn_step(cell, masks):
    """Keras's ``SimpleRNNCell`` step: ``h_t = activation((x_t m) W + b + (h_{t-1} r) U)``."""
    dtype = cell.compute_dtype
    kernel, recurrent_kernel = _weight(cell.kernel, dtype), _weight(cell.recurrent_kernel, dtype)
    bias = _weight(cell.bias, dtype)

    def step(inputs, states):
        h = ops.matmul(_masked(inputs, masks.inputs), kernel)
        if bias is not None:
            h = h + bias
        output = h + ops.matmul(_masked(states[0], masks.state), recurrent_kernel)
        if cell.activation is not None:
            output = cell.activation(output)
        return output, [output]

    return step


_STEPS = {
    keras.layers.LSTMCell: _lstm_step,
    keras.layers.GRUCell: _gru_step,
    keras.layers.SimpleRNNCell: _simple_rnn_step,
}
