"""Recurrent dropout cells: Gal & Ghahramani's variational LSTM/GRU, Moon's RNNDrop, Semeniuta's LSTM/GRU, and
Krueger's zoneout LSTM/GRU.

The cells are ``keras.layers.LSTMCell``/``GRUCell`` (same weights: names, shapes, gate order i, f, c, o and z, r, h,
both GRU layouts ``reset_after=True``/``False``) whose step applies the masks of each paper; they work in
``keras.layers.RNN``.

How a cell gets per-sequence masks. The cells follow Keras's ``DropoutRNNCell`` protocol: ``keras.layers.RNN`` calls
``get_dropout_mask``/``get_recurrent_dropout_mask`` once before its time loop, the cell caches the masks and every
step reuses them, and the RNN calls ``reset_dropout_mask``/``reset_recurrent_dropout_mask`` after the loop, so that
the next call (the next batch in ``fit``) draws new masks, eagerly, in ``tf.function`` and under XLA alike. Masks
carried in the recurrent state were rejected: they would show in ``return_state``, in user initial states and in the
variables of stateful RNNs. As with Keras's cells, a cell called by hand step by step keeps its masks until
``reset_dropout_mask()``/``reset_recurrent_dropout_mask()`` is called.

A step is split in two: ``_plan`` (weights cut into gate blocks, masks) is what the ready layers of
``kerasdrop.layers.recurrent`` compute once per sequence, and ``_step`` is the work of one time step.
"""

import keras
from keras import ops

from kerasdrop import _compat, _random
from kerasdrop import ops as kd_ops
from kerasdrop._validation import check_bool, check_positive_int, check_rate
from kerasdrop.layers._base import StochasticLayer, check_float_inputs, register

# Per-gate pre-activations of a vector v: (v * mask_k) @ kernel_k + bias_k for each gate k, as separate small
# products, one per gate. On CPU they run side by side: a whole LSTM training step measured 1.6x faster this way than
# with one batched product over a (gates, batch, dim) stack, and 10% faster than Keras's single fused product even
# without masks (see the README's benchmark section). A projection is a list of (kernel_k, bias_k, mask_k) blocks.


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


def inverted_masks(shape, rate, seed, dtype):
    """Bernoulli(1 - rate) masks of 0s and 1/(1 - rate)s: inverted dropout, the identity in expectation."""
    keep = 1.0 - rate
    return kd_ops.bernoulli_mask(shape, keep, seed, dtype=dtype) * ops.cast(1.0 / keep, dtype)


def _in_float32(initializer):
    def initialize(shape, dtype=None, **kwargs):
        return ops.cast(initializer(shape, dtype="float32", **kwargs), dtype)

    return initialize


def _rates(**rates):
    return {name: check_rate(name, value) for name, value in rates.items()}


class _DropoutCell(StochasticLayer):
    """What every recurrent dropout cell shares: the mask protocol, the train/test switch and the step skeleton.

    Subclasses set ``gates`` and implement ``_sequence_mask`` (the per-sequence recurrent mask, or None), ``_plan``
    and ``_step``; ``_step_noise`` draws masks that change at every step (Semeniuta's ``per_step``).
    """

    gates = None
    # True when the recurrent masks act on h_{t-1} per gate (Gal); otherwise they act on the state (see subclasses).
    per_gate_recurrent_masks = False

    def __init__(self, units, **kwargs):
        super().__init__(check_positive_int("units", units), **kwargs)
        # The Keras cell made a seed generator of its own; ours (per replica, seeded) replaced it.
        _compat.keep_only_seed_generator(self, self.seed_generator)

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
        if getattr(self, "_dropout_mask", None) is None and self.dropout > 0:
            shape = (self.gates, ops.shape(step_input)[0], ops.shape(step_input)[-1])
            self._dropout_mask = inverted_masks(shape, self.dropout, self.seed_generator, step_input.dtype)
        return getattr(self, "_dropout_mask", None)

    def get_recurrent_dropout_mask(self, step_input):
        """The per-sequence recurrent mask of the variant (see ``_sequence_mask``), drawn once per sequence."""
        if getattr(self, "_recurrent_dropout_mask", None) is None:
            self._recurrent_dropout_mask = self._sequence_mask(step_input)
        return self._recurrent_dropout_mask

    def _sequence_mask(self, state):
        return None

    @property
    def draws_every_step(self):
        """Whether a training step draws noise of its own (`_step_noise`), besides the per-sequence masks; the one
        condition `_step_noise` and MCDropout's check of Keras's RNN loop both read."""
        return False

    def _step_noise(self, batch_shape, dtype):
        """Masks drawn anew at every step, shape ``batch_shape + (units,)``; None unless `draws_every_step`."""
        return None

    def _masks(self, inputs, state, stochastic):
        if not stochastic:
            return None, None
        return self.get_dropout_mask(inputs), self.get_recurrent_dropout_mask(state)

    def call(self, inputs, states, training=False, plan=None, noise=None):
        """One time step. The ready layers pass ``plan`` (and Semeniuta's per-step ``noise``), prepared once for the
        whole sequence with `sequence_plan`; without them the step prepares its own, from the cached masks."""
        check_float_inputs(self, inputs)
        nested = keras.tree.is_nested(states)
        states = list(states) if nested else [states]
        if plan is None:
            stochastic = self.is_stochastic(training)
            plan = self._plan(*self._masks(inputs, states[0], stochastic))
            noise = self._step_noise((ops.shape(inputs)[0],), inputs.dtype) if stochastic else None
        output, new_states = self._step(inputs, states, plan, noise)
        return output, (new_states if nested else new_states[0])

    def sequence_plan(self, step_input, state, stochastic):
        """``_plan`` for a whole sequence, with the masks of this call (used by the ready layers)."""
        return self._plan(*self._masks(step_input, state, stochastic))


class _LSTMCell(_DropoutCell, keras.layers.LSTMCell):
    """An LSTM step (gates i, f, c, o from ``x_t`` and ``h_{t-1}``), with hooks for the carry and the output."""

    gates = 4

    def _plan(self, input_masks, recurrent_masks):
        gate_masks = recurrent_masks if self.per_gate_recurrent_masks else None
        return (
            _gate_blocks(self.kernel, self.bias, input_masks, self.gates),
            _gate_blocks(self.recurrent_kernel, None, gate_masks, self.gates),
            recurrent_masks,
        )

    def _step(self, inputs, states, plan, noise):
        input_blocks, recurrent_blocks, recurrent_masks = plan
        h_tm1, c_tm1 = states[0], states[1]
        pre_activations = zip(_project(inputs, input_blocks), _project(h_tm1, recurrent_blocks), strict=True)
        i, f, g, o = (from_inputs + from_state for from_inputs, from_state in pre_activations)
        i = self.recurrent_activation(i)
        f = self.recurrent_activation(f)
        g = self.activation(g)
        o = self.recurrent_activation(o)
        c = self._carry(f, c_tm1, i, g, recurrent_masks, noise)
        h = self._output(o, c, recurrent_masks)
        return h, [h, c]

    def _carry(self, f, c_tm1, i, g, recurrent_masks, noise):
        return f * c_tm1 + i * g

    def _output(self, o, c, recurrent_masks):
        return o * self.activation(c)


class _GRUCell(_DropoutCell, keras.layers.GRUCell):
    """A GRU step: inputs and state projected per gate, the candidate hook for Semeniuta.

    Both of Keras's layouts: ``reset_after=True`` (the default: separate input and recurrent biases, the reset gate
    applied after the recurrent product) and ``reset_after=False`` (one bias, the reset gate applied to ``h_{t-1}``
    before the product), with the weights of ``keras.layers.GRUCell`` of the same setting.
    """

    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, reset_after=check_bool("reset_after", reset_after), **kwargs)

    def _plan(self, input_masks, recurrent_masks):
        gate_masks = recurrent_masks if self.per_gate_recurrent_masks else None
        if self.bias is None:
            input_bias, recurrent_bias = None, None
        elif self.reset_after:
            input_bias, recurrent_bias = ops.unstack(ops.convert_to_tensor(self.bias), 2, axis=0)
        else:
            input_bias, recurrent_bias = self.bias, None
        return (
            _gate_blocks(self.kernel, input_bias, input_masks, self.gates),
            _gate_blocks(self.recurrent_kernel, recurrent_bias, gate_masks, self.gates),
            recurrent_masks,
        )

    def _step(self, inputs, states, plan, noise):
        input_blocks, recurrent_blocks, recurrent_masks = plan
        h_tm1 = states[0]
        x_z, x_r, x_h = _project(inputs, input_blocks)
        h_z, h_r = _project(h_tm1, recurrent_blocks[:2])
        z = self.recurrent_activation(x_z + h_z)
        r = self.recurrent_activation(x_r + h_r)
        if self.reset_after:
            (h_h,) = _project(h_tm1, recurrent_blocks[2:])
            h_h = r * h_h
        else:
            (h_h,) = _project(r * h_tm1, recurrent_blocks[2:])
        candidate = self._candidate(self.activation(x_h + h_h), recurrent_masks, noise)
        # Keras's update gate z keeps the old state: h = z h_{t-1} + (1 - z) candidate.
        h = z * h_tm1 + (1 - z) * candidate
        return h, [h]

    def _candidate(self, candidate, recurrent_masks, noise):
        return candidate


class _VariationalMixin:
    """Gal's recurrent masks: one per gate on ``h_{t-1}``, shape ``(gates, batch, units)``, drawn once per sequence."""

    per_gate_recurrent_masks = True

    def __init__(self, units, dropout=0.0, recurrent_dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(dropout=dropout, recurrent_dropout=recurrent_dropout)
        super().__init__(units, **rates, seed=seed, mc=mc, **kwargs)

    def _sequence_mask(self, state):
        if self.recurrent_dropout == 0:
            return None
        shape = (self.gates, ops.shape(state)[0], self.units)
        return inverted_masks(shape, self.recurrent_dropout, self.seed_generator, state.dtype)


@register
class VariationalLSTMCell(_VariationalMixin, _LSTMCell):
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


@register
class RNNDropLSTMCell(_LSTMCell):
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

    def __init__(self, units, cell_dropout=0.0, dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(cell_dropout=cell_dropout, dropout=dropout)
        super().__init__(units, dropout=rates["dropout"], seed=seed, mc=mc, **kwargs)
        self.cell_dropout = rates["cell_dropout"]

    def _sequence_mask(self, state):
        if self.cell_dropout == 0:
            return None
        scaled = inverted_masks(ops.shape(state), self.cell_dropout, self.seed_generator, state.dtype)
        return ops.cast(scaled > 0, state.dtype), scaled

    def _carry(self, f, c_tm1, i, g, recurrent_masks, noise):
        c = f * c_tm1 + i * g
        return c if recurrent_masks is None else c * recurrent_masks[0]

    def _output(self, o, c, recurrent_masks):
        h = o * self.activation(c)
        return h if recurrent_masks is None else h * recurrent_masks[1]

    def get_config(self):
        config = super().get_config()
        del config["recurrent_dropout"]
        return {**config, "cell_dropout": self.cell_dropout}


class _SemeniutaMixin:
    """Semeniuta's candidate masks: one per sequence (cached like the other masks) or one per step."""

    def __init__(self, units, recurrent_dropout=0.0, per_step=True, dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(recurrent_dropout=recurrent_dropout, dropout=dropout)
        super().__init__(units, **rates, seed=seed, mc=mc, **kwargs)
        self.per_step = check_bool("per_step", per_step)

    def _sequence_mask(self, state):
        if self.recurrent_dropout == 0 or self.per_step:
            return None
        return inverted_masks(ops.shape(state), self.recurrent_dropout, self.seed_generator, state.dtype)

    def _step_noise(self, batch_shape, dtype):
        if not self.draws_every_step:
            return None
        return inverted_masks((*batch_shape, self.units), self.recurrent_dropout, self.seed_generator, dtype)

    @property
    def draws_every_step(self):
        return self.per_step and self.recurrent_dropout > 0

    def _dropped(self, candidate, recurrent_masks, noise):
        mask = noise if noise is not None else recurrent_masks
        return candidate if mask is None else candidate * mask

    def get_config(self):
        return {**super().get_config(), "per_step": self.per_step}


@register
class SemeniutaLSTMCell(_SemeniutaMixin, _LSTMCell):
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

    Reference:
        - [Semeniuta et al., 2016](https://arxiv.org/abs/1603.05118)
    """

    def _carry(self, f, c_tm1, i, g, recurrent_masks, noise):
        return f * c_tm1 + i * self._dropped(g, recurrent_masks, noise)


@register
class VariationalGRUCell(_VariationalMixin, _GRUCell):
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


@register
class SemeniutaGRUCell(_SemeniutaMixin, _GRUCell):
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

    Reference:
        - [Semeniuta et al., 2016](https://arxiv.org/abs/1603.05118)
    """

    def _candidate(self, candidate, recurrent_masks, noise):
        return self._dropped(candidate, recurrent_masks, noise)


class _ZoneoutMixin:
    """Zoneout: each unit of each state keeps its previous value with its own probability at every step.

    ``zoneouts`` holds one probability per state (``[h, c]`` for the LSTM, ``[h]`` for the GRU). The step noise is
    ``(..., states, units)`` of 0/1, 1 where the unit keeps its previous value, drawn for every step; without it
    (test time) a state is the expectation ``z · s_{t-1} + (1 - z) · s̃_t``.
    """

    def _step_noise(self, batch_shape, dtype):
        if not self.draws_every_step:
            return None
        shape = (*batch_shape, len(self.zoneouts), self.units)
        uniform = _random.uniform(shape, self.seed_generator, dtype="float32")
        rates = ops.reshape(ops.convert_to_tensor(self.zoneouts, "float32"), (len(self.zoneouts), 1))
        return ops.cast(ops.less(uniform, rates), dtype)

    @property
    def draws_every_step(self):
        return any(self.zoneouts)

    def _step(self, inputs, states, plan, noise):
        _, new_states = super()._step(inputs, states, plan, None)
        zoned = []
        for index, (previous, new, zoneout) in enumerate(zip(states, new_states, self.zoneouts, strict=True)):
            if zoneout == 0:
                zoned.append(new)
            elif noise is None:
                zoned.append(zoneout * previous + (1.0 - zoneout) * new)
            else:
                zoned.append(ops.where(noise[..., index, :] > 0, previous, new))
        return zoned[0], zoned

    def get_config(self):
        config = super().get_config()
        del config["recurrent_dropout"]
        return config


@register
class ZoneoutLSTMCell(_ZoneoutMixin, _LSTMCell):
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

    Reference:
        - [Krueger et al., 2017](https://arxiv.org/abs/1606.01305)
    """

    def __init__(self, units, cell_zoneout=0.0, hidden_zoneout=0.0, dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(cell_zoneout=cell_zoneout, hidden_zoneout=hidden_zoneout, dropout=dropout)
        super().__init__(units, dropout=rates["dropout"], seed=seed, mc=mc, **kwargs)
        self.cell_zoneout = rates["cell_zoneout"]
        self.hidden_zoneout = rates["hidden_zoneout"]

    @property
    def zoneouts(self):
        return (self.hidden_zoneout, self.cell_zoneout)

    def get_config(self):
        return {**super().get_config(), "cell_zoneout": self.cell_zoneout, "hidden_zoneout": self.hidden_zoneout}


@register
class ZoneoutGRUCell(_ZoneoutMixin, _GRUCell):
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

    Reference:
        - [Krueger et al., 2017](https://arxiv.org/abs/1606.01305)
    """

    def __init__(self, units, zoneout=0.0, dropout=0.0, seed=None, mc=False, **kwargs):
        rates = _rates(zoneout=zoneout, dropout=dropout)
        super().__init__(units, dropout=rates["dropout"], seed=seed, mc=mc, **kwargs)
        self.zoneout = rates["zoneout"]

    @property
    def zoneouts(self):
        return (self.zoneout,)

    def get_config(self):
        return {**super().get_config(), "zoneout": self.zoneout}
