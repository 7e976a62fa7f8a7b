"""Recurrent dropout cells: Gal & Ghahramani's variational LSTM/GRU, Moon's RNNDrop, Semeniuta's LSTM/GRU, and
Krueger's zoneout LSTM/GRU.

The cells are ``keras.layers.LSTMCell``/``GRUCell`` (same weights: names, shapes, gate order i, f, c, o and z, r, h,
both GRU layouts ``reset_after=True``/``False``). Each public cell's ``_step`` writes out its paper's update of the
state in a few lines, from the gates that ``lstm_gates`` / ``gru_gates`` compute as Keras does.

Masks are drawn once per sequence, before the time loop, with Keras's ``DropoutRNNCell`` protocol:
``keras.layers.RNN`` calls ``get_dropout_mask``/``get_recurrent_dropout_mask`` before its loop, the cell caches the
masks, every step reuses them, and ``reset_dropout_mask``/``reset_recurrent_dropout_mask`` after the loop make the
next call draw new ones. As with Keras's cells, a cell called by hand step by step keeps its masks until those resets.
What the "recurrent" mask holds depends on the paper, and each cell names it for what it is:

- Gal (``VariationalLSTMCell``/``GRUCell``): one mask per gate on ``h_{t-1}``, ``(gates, batch, units)``;
- Moon (``RNNDropLSTMCell``): the memory mask ``m`` and the output's ``m / keep``;
- Semeniuta with ``per_step=False``: the mask of the candidate update, ``(batch, units)``.

Noise drawn anew at every step (Semeniuta's ``per_step=True`` masks, zoneout's choices) comes from ``step_noise``,
seeded from a key drawn once per sequence and the number of the step. Keras's RNN loop traces its step once
(``tf.while_loop`` on TensorFlow, ``lax.scan`` on JAX), and a seed generator advanced inside the step does not carry
over to the next step there (JAX drops the update; inside a ``keras.StatelessScope``, as under `kerasdrop.MCDropout`,
TensorFlow does too). So the step does not draw from the generator's state: the key is drawn with the masks,
before the loop, and the cell carries the step's number as one more state, its last, which any loop carries like
``h`` and ``c``: the *step counter* ``(batch, 2)``, the count in two base-256 digits, low first. Keras's RNN casts
every state to the cell's compute dtype, and integers up to 256 are exact in every float dtype (bfloat16 holds no
larger ones exactly); two digits count 65,536 steps, then start again. `get_initial_state` starts the counter at 0,
``return_state=True`` returns it, and an ``initial_state`` given by hand must end with it (zeros will do). Every
row holds the same count, except rows that a mask held back: each step takes the largest count of the batch, so a
step never repeats the draw of an earlier step that any row used. Only the cells that do draw at every step carry
the counter (`carries_step_counter`): with those rates 0, or ``per_step=False``, a cell has Keras's states. The ready
layers of ``kerasdrop.layers.recurrent`` draw every step's noise before their loop and hand each step its own; their
cells carry no counter either.

A step has two halves: the `Plan` (weights cut into gate blocks with their masks, the variant's sequence mask) is what
the ready layers of ``kerasdrop.layers.recurrent`` prepare once per sequence, and ``_step`` is one time step.
"""

from typing import NamedTuple

import keras
from keras import ops

from kerasdrop import _compat, _random
from kerasdrop import ops as kd_ops
from kerasdrop._validation import check_bool, check_positive_int, check_rate
from kerasdrop.layers._base import StochasticLayer, check_float_inputs, register


def _gate_blocks(kernel, bias, masks, gates):
    """Kernel ``(dim, gates * units)``, bias ``(gates * units,)`` and masks ``(gates, batch, dim)`` cut per gate."""
    kernels = ops.split(kernel, gates, axis=-1)
    biases = [None] * gates if bias is None else ops.split(bias, gates)
    masks = [None] * gates if masks is None else ops.unstack(masks, gates, axis=0)
    return list(zip(kernels, biases, masks, strict=True))


def _project(vector, blocks):
    """The per-gate pre-activations of ``vector`` ``(batch, dim)``: a list of ``(batch, units)`` tensors."""
    pre_activations = []
    for kernel, bias, mask in blocks:
        z = ops.matmul(vector if mask is None else vector * mask, kernel)
        pre_activations.append(z if bias is None else z + bias)
    return pre_activations


def inverted_masks(shape, rate, seed, dtype, batch_axis=0):
    """Bernoulli(1 - rate) masks of 0s and 1/(1 - rate)s: inverted dropout, the identity in expectation.

    ``batch_axis``: the axis of ``shape`` that runs over the batch (see `kerasdrop._random`)."""
    keep = 1.0 - rate
    mask = kd_ops.bernoulli_mask(shape, keep, seed, dtype=dtype, batch_axis=batch_axis)
    return mask * ops.cast(1.0 / keep, dtype)


def _in_float32(initializer):
    def initialize(shape, dtype=None, **kwargs):
        return ops.cast(initializer(shape, dtype="float32", **kwargs), dtype)

    return initialize


def _rates(**rates):
    return {name: check_rate(name, value) for name, value in rates.items()}


# The step counter (see the module's docstring): STEP_COUNTER_SIZE base-256 digits, low first.
STEP_COUNTER_SIZE = 2
_BASE = 256
_PERIOD = _BASE**STEP_COUNTER_SIZE


def _step_number(counter):
    """The number of this step: the largest count of the batch, whose rows a mask may have held back."""
    digits = ops.cast(counter, "int32")
    return ops.mod(ops.max(digits[:, 0] + _BASE * digits[:, 1]), _PERIOD)


def _counter_after(step, counter):
    """The counter of the next step in every row: ``step + 1``, in the shape and dtype of ``counter``."""
    following = ops.mod(step + 1, _PERIOD)
    digits = ops.stack([ops.mod(following, _BASE), ops.floor_divide(following, _BASE)])
    return ops.broadcast_to(ops.cast(digits, counter.dtype), ops.shape(counter))


class Plan(NamedTuple):
    """What every step of one sequence shares.

    ``inputs`` and ``state`` are the per-gate projections of ``x_t`` and ``h_{t-1}``, lists of ``(kernel_k, bias_k,
    mask_k)`` (Gal's masks are the ``mask_k`` of ``state``); ``sequence_mask`` is the per-sequence mask of the
    variants that act on the state instead (Moon's memory mask, Semeniuta's candidate mask), or None.
    """

    inputs: list
    state: list
    sequence_mask: object = None


def lstm_gates(cell, inputs, h_tm1, plan):
    """The activated gates ``i, f, g, o`` of one LSTM step, as Keras's ``LSTMCell`` computes them: ``i, f, o = σ(·)``
    and ``g = tanh(·)`` of ``x_t W_k + h_{t-1} U_k + b_k``, each product with the gate's masks of the ``plan``.
    ``cell`` (a kerasdrop cell or Keras's own) gives the activations."""
    i, f, g, o = (x + h for x, h in zip(_project(inputs, plan.inputs), _project(h_tm1, plan.state), strict=True))
    return (
        cell.recurrent_activation(i),
        cell.recurrent_activation(f),
        cell.activation(g),
        cell.recurrent_activation(o),
    )


def gru_gates(cell, inputs, h_tm1, plan):
    """The update gate ``z`` and the candidate ``h̃ = tanh(x W_h + r ∘ (h_{t-1} U_h) + b)`` of one GRU step, as
    Keras's ``GRUCell`` computes them in either layout: ``cell.reset_after=True`` (separate input and recurrent
    biases, the reset gate applied after the recurrent product) or ``False`` (one bias, the reset gate applied to
    ``h_{t-1}`` before the product). Keras's update gate keeps the old state: ``h_t = z h_{t-1} + (1 - z) h̃_t``."""
    x_z, x_r, x_h = _project(inputs, plan.inputs)
    h_z, h_r = _project(h_tm1, plan.state[:2])
    z = cell.recurrent_activation(x_z + h_z)
    r = cell.recurrent_activation(x_r + h_r)
    if cell.reset_after:
        (h_h,) = _project(h_tm1, plan.state[2:])
        h_h = r * h_h
    else:
        (h_h,) = _project(r * h_tm1, plan.state[2:])
    return z, cell.activation(x_h + h_h)


class _DropoutCell(StochasticLayer):
    """What every recurrent dropout cell shares: the mask protocol, the train/test switch and the call.

    A public cell puts it before ``keras.layers.LSTMCell`` or ``GRUCell`` (whose weights, gates and states it keeps),
    sets ``gates``, writes ``_step`` (with `lstm_gates` or `gru_gates`) and may draw a per-sequence mask
    (``_sequence_mask``) or per-step noise (``step_noise`` with ``draws_every_step``).
    """

    gates = None
    # True in Gal's cells, whose per-sequence recurrent masks multiply h_{t-1} in each gate's product (the `state`
    # masks of the `Plan`); the other variants' act on the state itself (its `sequence_mask`).
    recurrent_masks_per_gate = False
    # True in the cells of the ready layers, which draw every step's noise before their loop and pass it to the step.
    noise_drawn_before_loop = False

    def __init__(self, units, **kwargs):
        if isinstance(self, keras.layers.GRUCell) and "reset_after" in kwargs:
            kwargs["reset_after"] = check_bool("reset_after", kwargs["reset_after"])
        super().__init__(check_positive_int("units", units), **kwargs)
        # The Keras cell made a seed generator of its own; ours (per replica, seeded) replaced it.
        _compat.keep_only_seed_generator(self, self.seed_generator)
        # The masks of the current sequence and the key of its per-step noise, drawn before its loop; the cell's two
        # resets clear them, and `keras.layers.RNN` calls both after each call.
        self._input_masks = None
        self._recurrent_mask = None
        self._step_key = None

    def build(self, input_shape):
        if keras.backend.standardize_dtype(self.variable_dtype) not in ("float16", "bfloat16"):
            return super().build(input_shape)
        # Keras's Orthogonal initializer needs a QR decomposition in the variable dtype, which TensorFlow lacks in
        # bfloat16 and the CPU kernels of JAX and PyTorch lack in float16 and bfloat16 (keras.layers.LSTM fails to
        # build there): draw the initial values in float32, then cast.
        names = ("kernel_initializer", "recurrent_initializer", "bias_initializer")
        saved = [getattr(self, name) for name in names]
        for name, initializer in zip(names, saved, strict=True):
            setattr(self, name, _in_float32(initializer))
        try:
            super().build(input_shape)
        finally:
            for name, initializer in zip(names, saved, strict=True):
                setattr(self, name, initializer)

    def get_dropout_mask(self, step_input):
        """Per-gate input masks ``(gates, batch, features)``, drawn once per sequence; None when ``dropout=0``."""
        check_float_inputs(self, step_input)
        if self._input_masks is None and self.dropout > 0:
            shape = (self.gates, ops.shape(step_input)[0], ops.shape(step_input)[-1])
            self._input_masks = inverted_masks(shape, self.dropout, self.seed_generator, step_input.dtype, 1)
        return self._input_masks

    def get_recurrent_dropout_mask(self, step_input):
        """The variant's per-sequence recurrent mask (see ``_sequence_mask``), drawn once per sequence; with it, the
        key of the sequence's per-step noise when the cell carries a step counter."""
        if self._recurrent_mask is None:
            self._recurrent_mask = self._sequence_mask(step_input)
        if self.carries_step_counter and self._step_key is None:
            self._step_key = _random.randint((2,), 0, 2**30, self.seed_generator)
        return self._recurrent_mask

    def reset_dropout_mask(self):
        """Forgets the sequence's input masks: the next sequence draws its own."""
        self._input_masks = None

    def reset_recurrent_dropout_mask(self):
        """Forgets the sequence's recurrent mask and per-step key: the next sequence draws its own."""
        self._recurrent_mask = None
        self._step_key = None

    def _sequence_mask(self, state):
        return None

    @property
    def draws_every_step(self):
        """Whether a training step draws noise of its own (`step_noise`), besides the per-sequence masks."""
        return False

    @property
    def carries_step_counter(self):
        """Whether the cell carries a step counter as its last state, ``(batch, 2)``: it draws at every step, and
        nothing draws its steps' noise before the loop (as the ready layers do). Each step's noise is seeded by a key
        drawn once per sequence and the counter, the number of the step in two base-256 digits, low first, which
        any loop carries like ``h`` (see the module's docstring)."""
        return self.draws_every_step and not self.noise_drawn_before_loop

    @property
    def state_size(self):
        """Keras's (``[units, units]`` for the LSTM, ``units`` for the GRU), then ``STEP_COUNTER_SIZE`` for the step
        counter when the cell carries one."""
        sizes = self._keras_state_size
        if not self.carries_step_counter:
            return sizes
        return [*(sizes if isinstance(sizes, (list, tuple)) else [sizes]), STEP_COUNTER_SIZE]

    @state_size.setter
    def state_size(self, sizes):
        self._keras_state_size = sizes

    def get_initial_state(self, batch_size=None):
        """Zeros, one ``(batch_size, size)`` tensor per state of `state_size`: the step counter starts at 0."""
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in keras.tree.flatten(self.state_size)]

    def step_noise(self, batch_shape, dtype):
        """Noise drawn anew at every step, shape ``batch_shape + (..., units)``; None unless `draws_every_step`."""
        return None

    def call(self, inputs, states, training=False, plan=None, noise=None):
        """One time step. The ready layers pass ``plan`` (and the step's ``noise``), prepared once for the whole
        sequence with `sequence_plan`; without them the step prepares its own, from the cached masks, and draws its
        noise from the step counter when it carries one."""
        check_float_inputs(self, inputs)
        nested = keras.tree.is_nested(states)
        states = list(states) if nested else [states]
        counter = self._step_counter(states) if self.carries_step_counter else None
        if counter is not None:
            states, step = states[:-1], _step_number(counter)
        if plan is None:
            stochastic = self.is_stochastic(training)
            plan = self.sequence_plan(inputs, states[0], stochastic)
            if not stochastic:
                noise = None
            elif counter is None:
                noise = self.step_noise((ops.shape(inputs)[0],), inputs.dtype)
            else:
                noise = self._counted_step_noise(step, ops.shape(inputs)[0], inputs.dtype)
        output, new_states = self._step(inputs, states, plan, noise)
        if counter is not None:
            new_states = [*new_states, _counter_after(step, counter)]
        return output, (new_states if nested else new_states[0])

    def _step_counter(self, states):
        expected = len(keras.tree.flatten(self.state_size))
        if len(states) != expected:
            names = "[h, c, step_counter]" if expected == 3 else "[h, step_counter]"
            raise ValueError(
                f"{type(self).__name__} {self.name!r} draws new noise at every step and carries the step's number "
                f"as its last state: it takes {expected} states, {names}, and received {len(states)}. Pass the step "
                f"counter last, e.g. `initial_state=[..., keras.ops.zeros((batch_size, {STEP_COUNTER_SIZE}))]` "
                "(or `cell.get_initial_state(batch_size)[-1]`)."
            )
        return states[-1]

    def _counted_step_noise(self, step, batch_size, dtype):
        """This step's `step_noise`, seeded from the sequence's key and the step's number: the seed generator's
        state is the seed of the step in a stateless scope of its own, so that nothing moves it in the loop."""
        seed = self._step_key + ops.stack([ops.zeros_like(step), step])
        with keras.StatelessScope(state_mapping=[(self.seed_generator.state, seed)]):
            return self.step_noise((batch_size,), dtype)

    def sequence_plan(self, step_input, state, stochastic):
        """The `Plan` of a sequence: this call's masks (none unless ``stochastic``) and the weights in gate blocks."""
        if not stochastic:
            return self._plan(None, None)
        return self._plan(self.get_dropout_mask(step_input), self.get_recurrent_dropout_mask(state))

    def _plan(self, input_masks, recurrent_mask):
        per_gate = self.recurrent_masks_per_gate
        input_bias, state_bias = self._biases()
        return Plan(
            inputs=_gate_blocks(self.kernel, input_bias, input_masks, self.gates),
            state=_gate_blocks(self.recurrent_kernel, state_bias, recurrent_mask if per_gate else None, self.gates),
            sequence_mask=None if per_gate else recurrent_mask,
        )

    def _biases(self):
        """The biases of the input and of the recurrent projections: a GRU with ``reset_after=True`` has one of
        each (Keras's ``(2, 3 units)`` bias); an LSTM, or a GRU with ``reset_after=False``, one on the input side."""
        if self.bias is None:
            return None, None
        if getattr(self, "reset_after", False):
            return tuple(ops.unstack(ops.convert_to_tensor(self.bias), 2, axis=0))
        return self.bias, None


def _gal_masks(cell, state):
    """Gal's recurrent masks: one per gate on ``h_{t-1}``, ``(gates, batch, units)``, drawn once per sequence; None
    at ``recurrent_dropout=0``."""
    if cell.recurrent_dropout == 0:
        return None
    shape = (cell.gates, ops.shape(state)[0], cell.units)
    return inverted_masks(shape, cell.recurrent_dropout, cell.seed_generator, state.dtype, batch_axis=1)


def _candidate_masks(cell, batch_shape, dtype):
    """Semeniuta's inverted masks of the candidate, ``batch_shape + (units,)``, at rate ``recurrent_dropout``."""
    return inverted_masks((*batch_shape, cell.units), cell.recurrent_dropout, cell.seed_generator, dtype)


def _semeniuta_draws_every_step(cell):
    return cell.per_step and cell.recurrent_dropout > 0


def _semeniuta_sequence_mask(cell, state):
    """The candidate's mask of a sequence (``per_step=False``), else None."""
    if cell.per_step or cell.recurrent_dropout == 0:
        return None
    return _candidate_masks(cell, ops.shape(state)[:1], state.dtype)


def _semeniuta_step_noise(cell, batch_shape, dtype):
    """The candidate's mask of one step (``per_step=True``), else None."""
    return _candidate_masks(cell, batch_shape, dtype) if _semeniuta_draws_every_step(cell) else None


def _dropped(candidate, plan, noise):
    """Semeniuta's ``d(candidate)``: this step's mask (``per_step``), else the sequence's, else (test time) the
    identity."""
    mask = noise if noise is not None else plan.sequence_mask
    return candidate if mask is None else candidate * mask


def _zoneout_choices(cell, batch_shape, dtype):
    """Zoneout's step noise, ``batch_shape + (states, units)`` of 0/1: 1 where a unit of a state keeps its previous
    value, with the state's probability in ``cell.zoneouts`` (``[h, c]`` for the LSTM, ``[h]`` for the GRU)."""
    shape = (*batch_shape, len(cell.zoneouts), cell.units)
    uniform = _random.uniform(shape, cell.seed_generator, dtype="float32", batch_axis=0)
    rates = ops.reshape(ops.convert_to_tensor(cell.zoneouts, "float32"), (len(cell.zoneouts), 1))
    return ops.cast(ops.less(uniform, rates), dtype)


def _zoned(cell, state, previous, new, noise):
    """State number ``state`` after zoneout: ``previous`` where this step's noise keeps it, else ``new``; at test
    time (no noise) the expectation ``z · previous + (1 - z) · new``."""
    zoneout = cell.zoneouts[state]
    if zoneout == 0:
        return new
    if noise is None:
        return zoneout * previous + (1.0 - zoneout) * new
    return ops.where(noise[..., state, :] > 0, previous, new)


@register
class VariationalLSTMCell(_DropoutCell, keras.layers.LSTMCell):
    """LSTM cell with Gal & Ghahramani's variational dropout, a drop-in for `keras.layers.LSTMCell`.

    For each sequence, masks are drawn once for the inputs ``x_t`` and once for the state ``h_{t-1}``, separately for
    each gate (i, f, c, o), and reused at every time step: ``gate_k = (x_t m_k) W_k + (h_{t-1} r_k) U_k + b_k``.
    Masks are inverted (kept units scaled by ``1/keep``), so at test time the cell is exactly ``keras.layers.LSTMCell``.

    Args:
        units: Positive int, dimensionality of the state.
        dropout: Float in [0, 1), drop probability of the inputs.
        recurrent_dropout: Float in [0, 1), drop probability of the recurrent state ``h_{t-1}``.
        seed: None or int, for reproducible masks.
        mc: bool, Monte Carlo mode: masks on every call, whatever `training` is.
        **kwargs: the other arguments of `keras.layers.LSTMCell` (activation, recurrent_activation, use_bias,
            initializers, regularizers, constraints, unit_forget_bias) and of `keras.layers.Layer`.

    Call arguments:
        inputs: ``(batch, features)`` float tensor.
        states: ``[h, c]``, each ``(batch, units)``.
        training: Python bool.

    Reference:
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1512.05287)
    """

    gates = 4
    recurrent_masks_per_gate = True

    def __init__(self, units, dropout=0.0, recurrent_dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(dropout=dropout, recurrent_dropout=recurrent_dropout)
        super().__init__(units, **rates, seed=seed, mc=mc, **kwargs)

    def _sequence_mask(self, state):
        return _gal_masks(self, state)

    def _step(self, inputs, states, plan, noise):
        h_tm1, c_tm1 = states
        i, f, g, o = lstm_gates(self, inputs, h_tm1, plan)  # x_t and h_{t-1} masked per gate in the projections
        c = f * c_tm1 + i * g
        h = o * self.activation(c)
        return h, [h, c]


@register
class RNNDropLSTMCell(_DropoutCell, keras.layers.LSTMCell):
    """LSTM cell with Moon et al.'s RNNDrop: a per-sequence mask on the memory cell.

    One Bernoulli(keep) mask ``m`` per sequence erases the same memory units at every step,
    ``c_t = (f * c_{t-1} + i * g_t) * m``, and the output ``h_t = o * tanh(c_t) * m / keep`` is scaled like
    inverted dropout, so the cell is exactly ``keras.layers.LSTMCell`` at test time. The carried memory itself is not
    scaled: scaling it by ``1/keep`` at every step would compound to ``keep^-t`` and overflow on long sequences.

    Args:
        units: Positive int, dimensionality of the state.
        cell_dropout: Float in [0, 1), fraction of memory units dropped for a whole sequence.
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs (as in `keras.layers.LSTM`).
        seed: None or int.
        mc: bool, Monte Carlo mode.
        **kwargs: the other arguments of `keras.layers.LSTMCell`.

    Reference:
        - [Moon et al., 2015, RNNDrop](https://doi.org/10.1109/ASRU.2015.7404775)
    """

    gates = 4

    def __init__(self, units, cell_dropout=0.0, dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(cell_dropout=cell_dropout, dropout=dropout)
        super().__init__(units, dropout=rates["dropout"], seed=seed, mc=mc, **kwargs)
        self.cell_dropout = rates["cell_dropout"]

    def _sequence_mask(self, state):
        if self.cell_dropout == 0:
            return None
        scaled = inverted_masks(ops.shape(state), self.cell_dropout, self.seed_generator, state.dtype)
        return ops.cast(scaled > 0, state.dtype), scaled

    def _step(self, inputs, states, plan, noise):
        h_tm1, c_tm1 = states
        i, f, g, o = lstm_gates(self, inputs, h_tm1, plan)
        c = f * c_tm1 + i * g
        h = o * self.activation(c)
        if plan.sequence_mask is not None:
            memory_mask, scaled_memory_mask = plan.sequence_mask  # m and m / keep
            c, h = c * memory_mask, h * scaled_memory_mask
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        del config["recurrent_dropout"]
        return {**config, "cell_dropout": self.cell_dropout}


@register
class SemeniutaLSTMCell(_DropoutCell, keras.layers.LSTMCell):
    """LSTM cell with Semeniuta et al.'s recurrent dropout without memory loss.

    Only the candidate update is dropped, ``c_t = f * c_{t-1} + i * d(g_t)``, so the memory path ``f * c_{t-1}`` is
    never masked. ``d`` is inverted dropout with a new mask at every step (``per_step=True``, the paper's choice) or
    one mask per sequence; at test time the cell is exactly ``keras.layers.LSTMCell``.

    Args:
        units: Positive int, dimensionality of the state.
        recurrent_dropout: Float in [0, 1), drop probability of the candidate ``g_t``.
        per_step: bool, a new mask at every step (True) or one per sequence (False).
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs (as in `keras.layers.LSTM`).
        seed: None or int.
        mc: bool, Monte Carlo mode.
        **kwargs: the other arguments of `keras.layers.LSTMCell`.

    Call arguments:
        inputs: ``(batch, features)`` float tensor.
        states: ``[h, c]``, each ``(batch, units)``; with ``per_step=True`` and ``recurrent_dropout > 0``, then the
            step counter ``(batch, 2)`` that seeds each step's mask (see `carries_step_counter`):
            `get_initial_state` starts it at 0, and ``keras.layers.RNN(cell, return_state=True)`` returns it last.
        training: Python bool.

    Reference:
        - [Semeniuta et al., 2016](https://arxiv.org/abs/1603.05118)
    """

    gates = 4

    def __init__(self, units, recurrent_dropout=0.0, per_step=True, dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(recurrent_dropout=recurrent_dropout, dropout=dropout)
        super().__init__(units, **rates, seed=seed, mc=mc, **kwargs)
        self.per_step = check_bool("per_step", per_step)

    # Semeniuta's noise, the same for the LSTM and the GRU: the candidate's mask, per step or per sequence.
    draws_every_step = property(_semeniuta_draws_every_step)
    _sequence_mask = _semeniuta_sequence_mask
    step_noise = _semeniuta_step_noise

    def _step(self, inputs, states, plan, noise):
        h_tm1, c_tm1 = states
        i, f, g, o = lstm_gates(self, inputs, h_tm1, plan)
        c = f * c_tm1 + i * _dropped(g, plan, noise)
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {**super().get_config(), "per_step": self.per_step}


@register
class VariationalGRUCell(_DropoutCell, keras.layers.GRUCell):
    """GRU cell with Gal & Ghahramani's variational dropout, a drop-in for `keras.layers.GRUCell`.

    Per-sequence, per-gate (z, r, h) masks on the inputs ``x_t`` and on the state ``h_{t-1}`` feeding the recurrent
    products, reused at every step; inverted, so at test time the cell is exactly ``keras.layers.GRUCell``
    (either layout, ``reset_after=True`` or ``False``).

    Args:
        units: Positive int, dimensionality of the state.
        dropout: Float in [0, 1), drop probability of the inputs.
        recurrent_dropout: Float in [0, 1), drop probability of ``h_{t-1}`` in the recurrent products.
        seed: None or int.
        mc: bool, Monte Carlo mode.
        **kwargs: the other arguments of `keras.layers.GRUCell`.

    Reference:
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1512.05287)
    """

    gates = 3
    recurrent_masks_per_gate = True

    def __init__(self, units, dropout=0.0, recurrent_dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(dropout=dropout, recurrent_dropout=recurrent_dropout)
        super().__init__(units, **rates, seed=seed, mc=mc, **kwargs)

    def _sequence_mask(self, state):
        return _gal_masks(self, state)

    def _step(self, inputs, states, plan, noise):
        h_tm1 = states[0]
        z, candidate = gru_gates(self, inputs, h_tm1, plan)  # x_t and h_{t-1} masked per gate in the projections
        h = z * h_tm1 + (1 - z) * candidate
        return h, [h]


@register
class SemeniutaGRUCell(_DropoutCell, keras.layers.GRUCell):
    """GRU cell with Semeniuta et al.'s recurrent dropout without memory loss.

    Only the candidate is dropped: in Keras's convention (update gate z keeps the old state)
    ``h_t = z * h_{t-1} + (1 - z) * d(g_t)``, the paper's ``h_t = (1 - z) h_{t-1} + z d(g_t)``; the path from
    ``h_{t-1}`` is never masked. Masks per step or per sequence, inverted; identity at test time.

    Args:
        units: Positive int, dimensionality of the state.
        recurrent_dropout: Float in [0, 1), drop probability of the candidate.
        per_step: bool, a new mask at every step (True) or one per sequence (False).
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs (as in `keras.layers.GRU`).
        seed: None or int.
        mc: bool, Monte Carlo mode.
        **kwargs: the other arguments of `keras.layers.GRUCell`.

    Call arguments:
        inputs: ``(batch, features)`` float tensor.
        states: ``[h]``, ``(batch, units)``; with ``per_step=True`` and ``recurrent_dropout > 0``, ``[h,
            counter]``, the counter ``(batch, 2)`` seeding each step's mask (see `carries_step_counter`):
            `get_initial_state` starts it at 0, and ``keras.layers.RNN(cell, return_state=True)`` returns it last.
        training: Python bool.

    Reference:
        - [Semeniuta et al., 2016](https://arxiv.org/abs/1603.05118)
    """

    gates = 3

    def __init__(self, units, recurrent_dropout=0.0, per_step=True, dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(recurrent_dropout=recurrent_dropout, dropout=dropout)
        super().__init__(units, **rates, seed=seed, mc=mc, **kwargs)
        self.per_step = check_bool("per_step", per_step)

    # Semeniuta's noise, the same for the LSTM and the GRU: the candidate's mask, per step or per sequence.
    draws_every_step = property(_semeniuta_draws_every_step)
    _sequence_mask = _semeniuta_sequence_mask
    step_noise = _semeniuta_step_noise

    def _step(self, inputs, states, plan, noise):
        h_tm1 = states[0]
        z, candidate = gru_gates(self, inputs, h_tm1, plan)
        h = z * h_tm1 + (1 - z) * _dropped(candidate, plan, noise)
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "per_step": self.per_step}


@register
class ZoneoutLSTMCell(_DropoutCell, keras.layers.LSTMCell):
    """LSTM cell with zoneout (Krueger et al. 2017): units of the state keep their previous values at random.

    At every step each unit of the memory keeps its previous value with probability ``cell_zoneout`` and each unit
    of the output with probability ``hidden_zoneout``, independently:
    ``c_t = d_c ∘ c_{t-1} + (1 - d_c) ∘ (f ∘ c_{t-1} + i ∘ g_t)``,
    ``h_t = d_h ∘ h_{t-1} + (1 - d_h) ∘ (o ∘ tanh(f ∘ c_{t-1} + i ∘ g_t))``, with ``d ~ Bernoulli(zoneout)`` drawn
    anew at every step. At test time the expectation: ``c_t = cell_zoneout · c_{t-1} + (1 - cell_zoneout) · c̃_t``
    (and likewise ``h_t``). With both zoneouts 0 the cell is exactly ``keras.layers.LSTMCell``.

    Args:
        units: Positive int, dimensionality of the state.
        cell_zoneout: Float in [0, 1), probability that a unit of ``c`` keeps its previous value at a step.
        hidden_zoneout: Float in [0, 1), probability that a unit of ``h`` keeps its previous value at a step.
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs (as in `keras.layers.LSTM`).
        seed: None or int.
        mc: bool, Monte Carlo mode: masks on every call, whatever `training` is.
        **kwargs: the other arguments of `keras.layers.LSTMCell`.

    Call arguments:
        inputs: ``(batch, features)`` float tensor.
        states: ``[h, c]``, each ``(batch, units)``; with a zoneout above 0, then the step counter ``(batch, 2)``
            that seeds each step's choices (see `carries_step_counter`): `get_initial_state` starts it at 0, and
            ``keras.layers.RNN(cell, return_state=True)`` returns it last.
        training: Python bool.

    Reference:
        - [Krueger et al., 2017](https://arxiv.org/abs/1606.01305)
    """

    gates = 4

    def __init__(self, units, cell_zoneout=0.0, hidden_zoneout=0.0, dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(cell_zoneout=cell_zoneout, hidden_zoneout=hidden_zoneout, dropout=dropout)
        super().__init__(units, dropout=rates["dropout"], seed=seed, mc=mc, **kwargs)
        self.cell_zoneout = rates["cell_zoneout"]
        self.hidden_zoneout = rates["hidden_zoneout"]

    @property
    def zoneouts(self):
        """The zoneout probability of each state, ``(h, c)``."""
        return (self.hidden_zoneout, self.cell_zoneout)

    @property
    def draws_every_step(self):
        return any(self.zoneouts)

    def step_noise(self, batch_shape, dtype):
        return _zoneout_choices(self, batch_shape, dtype) if self.draws_every_step else None

    def _step(self, inputs, states, plan, noise):
        h_tm1, c_tm1 = states
        i, f, g, o = lstm_gates(self, inputs, h_tm1, plan)
        c = f * c_tm1 + i * g
        h = o * self.activation(c)  # from the memory's update before it is zoned out
        h, c = _zoned(self, 0, h_tm1, h, noise), _zoned(self, 1, c_tm1, c, noise)
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        del config["recurrent_dropout"]
        return {**config, "cell_zoneout": self.cell_zoneout, "hidden_zoneout": self.hidden_zoneout}


@register
class ZoneoutGRUCell(_DropoutCell, keras.layers.GRUCell):
    """GRU cell with zoneout (Krueger et al. 2017): units of the state keep their previous values at random.

    At every step each unit of the state keeps its previous value with probability ``zoneout``:
    ``h_t = d ∘ h_{t-1} + (1 - d) ∘ h̃_t``, ``h̃_t`` the GRU's update and ``d ~ Bernoulli(zoneout)`` drawn anew at
    every step; at test time ``h_t = zoneout · h_{t-1} + (1 - zoneout) · h̃_t``. With ``zoneout=0`` the cell is
    exactly ``keras.layers.GRUCell`` (either layout, ``reset_after=True`` or ``False``).

    Args:
        units: Positive int, dimensionality of the state.
        zoneout: Float in [0, 1), probability that a unit keeps its previous value at a step.
        dropout: Float in [0, 1), per-sequence, per-gate dropout of the inputs (as in `keras.layers.GRU`).
        seed: None or int.
        mc: bool, Monte Carlo mode.
        **kwargs: the other arguments of `keras.layers.GRUCell`.

    Call arguments:
        inputs: ``(batch, features)`` float tensor.
        states: ``[h]``, ``(batch, units)``; with ``zoneout > 0``, ``[h, step counter]``, the counter ``(batch, 2)``
            seeding each step's choices (see `carries_step_counter`): `get_initial_state` starts it at 0, and
            ``keras.layers.RNN(cell, return_state=True)`` returns it last.
        training: Python bool.

    Reference:
        - [Krueger et al., 2017](https://arxiv.org/abs/1606.01305)
    """

    gates = 3

    def __init__(self, units, zoneout=0.0, dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(zoneout=zoneout, dropout=dropout)
        super().__init__(units, dropout=rates["dropout"], seed=seed, mc=mc, **kwargs)
        self.zoneout = rates["zoneout"]

    @property
    def zoneouts(self):
        """The zoneout probability of the one state, ``(h,)``."""
        return (self.zoneout,)

    @property
    def draws_every_step(self):
        return any(self.zoneouts)

    def step_noise(self, batch_shape, dtype):
        return _zoneout_choices(self, batch_shape, dtype) if self.draws_every_step else None

    def _step(self, inputs, states, plan, noise):
        h_tm1 = states[0]
        z, candidate = gru_gates(self, inputs, h_tm1, plan)
        h = _zoned(self, 0, h_tm1, z * h_tm1 + (1 - z) * candidate, noise)
        return h, [h]

    def get_config(self):
        config = super().get_config()
        del config["recurrent_dropout"]
        return {**config, "zoneout": self.zoneout}
