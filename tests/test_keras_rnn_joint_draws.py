"""Keras's LSTM, GRU and SimpleRNN run by `kerasdrop.mc.keras_rnn`: Keras's output without noise, Keras's equations
with given masks (against a NumPy reference), masks shared by the rows of a Monte Carlo sample under joint draws,
Keras's own distribution for each input, and the layers it refuses."""

import keras
import numpy as np
import pytest

from kerasdrop import _compat, _context
from kerasdrop.mc import keras_rnn as _keras_rnn
from tests import backend
from tests.utils import assert_binomial_count, assert_same_distribution, calls_differ, to_numpy

UNITS, STEPS, FEATURES = 5, 6, 3

# Layers as the user builds them, each a factory of the dropout rates. The ids name what each case covers.
LAYERS = {
    "lstm": lambda **rates: keras.layers.LSTM(UNITS, return_sequences=True, return_state=True, **rates),
    # Not unrolled as well: Keras's PyTorch loop fails on an unrolled backward pass with a mask.
    "lstm-backwards-relu-no-bias": lambda **rates: keras.layers.LSTM(
        UNITS,
        go_backwards=True,
        use_bias=False,
        activation="relu",
        recurrent_activation="hard_sigmoid",
        **rates,
    ),
    "lstm-implementation-1-zero-output": lambda **rates: keras.layers.LSTM(
        UNITS, implementation=1, use_cudnn=False, return_sequences=True, zero_output_for_mask=True, **rates
    ),
    "gru": lambda **rates: keras.layers.GRU(UNITS, return_sequences=True, return_state=True, **rates),
    "gru-reset-before-backwards": lambda **rates: keras.layers.GRU(
        UNITS, reset_after=False, go_backwards=True, return_sequences=True, **rates
    ),
    "gru-no-bias-unrolled": lambda **rates: keras.layers.GRU(
        UNITS, use_bias=False, unroll=True, return_state=True, **rates
    ),
    "simple-rnn": lambda **rates: keras.layers.SimpleRNN(
        UNITS, return_sequences=True, return_state=True, go_backwards=True, **rates
    ),
    "simple-rnn-relu-no-bias": lambda **rates: keras.layers.SimpleRNN(
        UNITS, activation="relu", use_bias=False, **rates
    ),
    "rnn-of-lstm-cell": lambda **rates: keras.layers.RNN(keras.layers.LSTMCell(UNITS, **rates), return_sequences=True),
    "rnn-of-gru-cell": lambda **rates: keras.layers.RNN(
        keras.layers.GRUCell(UNITS, reset_after=False, **rates), return_state=True
    ),
    "rnn-of-simple-rnn-cell": lambda **rates: keras.layers.RNN(keras.layers.SimpleRNNCell(UNITS, **rates)),
}


def _inputs(batch=4, seed=0):
    x = np.random.RandomState(seed).randn(batch, STEPS, FEATURES).astype("float32")
    x[0, 4:] = 0.0  # padding that a Masking layer masks
    x[1, 2] = 0.0  # and a masked step inside a sequence
    return x


def _step_mask(x):
    return np.any(x != 0.0, axis=-1)


def _initial_state(layer, batch):
    states = len(layer.cell.state_size) if isinstance(layer.cell.state_size, (list, tuple)) else 1
    rng = np.random.RandomState(3)
    return [rng.randn(batch, UNITS).astype("float32") * 0.5 for _ in range(states)]


def _call(layer, x, how):
    """``(args, kwargs)`` of one way of calling ``layer`` on ``x``."""
    if how == "plain":
        return (x,), {}
    if how == "masking layer":
        return (keras.layers.Masking()(x),), {}
    if how == "mask=":
        return (x,), {"mask": _step_mask(x)}
    if how == "initial_state":  # with a Masking input: Keras then passes no mask to the call
        return (keras.layers.Masking()(x),), {"initial_state": _initial_state(layer, len(x))}
    if how == "initial_state and mask=":
        return (x,), {"initial_state": _initial_state(layer, len(x)), "mask": _step_mask(x)}
    raise AssertionError(how)


CALLS = ["plain", "masking layer", "mask=", "initial_state", "initial_state and mask="]


def _assert_same_outputs(expected, got, atol=1e-5):
    assert type(expected) is type(got)
    expected, got = keras.tree.flatten(expected), keras.tree.flatten(got)
    assert len(expected) == len(got)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(to_numpy(b), to_numpy(a), rtol=1e-5, atol=atol)
        mask_a, mask_b = _compat.keras_mask(a), _compat.keras_mask(b)
        assert (mask_a is None) == (mask_b is None), "the Keras mask attached to an output differs from Keras's"
        if mask_a is not None:
            np.testing.assert_array_equal(to_numpy(mask_b), to_numpy(mask_a))


@backend.slow_on_jax
@pytest.mark.parametrize("how", CALLS)
@pytest.mark.parametrize("name", list(LAYERS))
def test_without_dropout_it_is_keras_layer(name, how):
    """At rates 0 the output is Keras's training output, whatever the structure, masking and initial state."""
    layer = LAYERS[name]()
    x = _inputs()
    args, kwargs = _call(layer, x, how)
    expected = layer(*args, **kwargs, training=True)
    _assert_same_outputs(expected, _keras_rnn.run_with_shared_masks(layer, args, {**kwargs, "training": True}))


@backend.slow_on_jax
@pytest.mark.parametrize("how", ["plain", "masking layer", "initial_state and mask="])
@pytest.mark.parametrize("name", list(LAYERS))
def test_without_masks_it_is_keras_test_output(name, how):
    """With dropout configured but no masks given, the output is Keras's test-time output."""
    layer = LAYERS[name](dropout=0.3, recurrent_dropout=0.4)
    x = _inputs()
    args, kwargs = _call(layer, x, how)
    expected = layer(*args, **kwargs, training=False)
    _assert_same_outputs(expected, _keras_rnn.run_with_masks(layer, args, kwargs, _keras_rnn.Masks()))


def test_keeps_the_dtype_policy():
    keras.config.set_dtype_policy("mixed_float16")
    layer = keras.layers.LSTM(UNITS, return_state=True)
    x = _inputs()
    expected = layer(x, training=True)
    got = _keras_rnn.run_with_shared_masks(layer, (x,), {})
    assert [keras.backend.standardize_dtype(t.dtype) for t in got] == ["float16"] * 3
    _assert_same_outputs(expected, got, atol=2e-3)


# --- Keras's equations with given masks, against NumPy --------------------------------------------------------------


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def _per_gate(mask, gates, shape):
    """A mask per gate: the given ones, one mask repeated, or ones."""
    if mask is None:
        return [np.ones(shape, "float64")] * gates
    if mask.ndim == 3:
        return list(mask)
    return [mask] * gates


def _numpy_rnn(layer, x, masks):
    """Keras's cell equations (``lstm.py``, ``gru.py``, ``simple_rnn.py``), written out in float64 for the default
    activations: every output of the sequence, from zero states."""
    cell = layer.cell
    weights = [np.asarray(to_numpy(w), "float64") for w in cell.weights]
    kernel, recurrent = weights[0], weights[1]
    bias = weights[2] if len(weights) > 2 else None
    u = UNITS
    rows = x.shape[0]
    h = np.zeros((rows, u))
    c = np.zeros((rows, u))
    outputs = []
    for t in range(x.shape[1]):
        x_t = x[:, t].astype("float64")
        if isinstance(cell, keras.layers.LSTMCell):
            mx, mh = _per_gate(masks.inputs, 4, x_t.shape), _per_gate(masks.state, 4, h.shape)
            pre = [
                (x_t * mx[k]) @ kernel[:, k * u : (k + 1) * u]
                + (h * mh[k]) @ recurrent[:, k * u : (k + 1) * u]
                + (0.0 if bias is None else bias[k * u : (k + 1) * u])
                for k in range(4)
            ]
            i, f, g, o = _sigmoid(pre[0]), _sigmoid(pre[1]), np.tanh(pre[2]), _sigmoid(pre[3])
            c = f * c + i * g
            h = o * np.tanh(c)
        elif isinstance(cell, keras.layers.GRUCell):
            mx, mh = _per_gate(masks.inputs, 3, x_t.shape), _per_gate(masks.state, 3, h.shape)
            if bias is None:
                input_bias, state_bias = np.zeros(3 * u), np.zeros(3 * u)
            elif cell.reset_after:
                input_bias, state_bias = bias[0], bias[1]
            else:
                input_bias, state_bias = bias, np.zeros(3 * u)
            x_z, x_r, x_h = (
                (x_t * mx[k]) @ kernel[:, k * u : (k + 1) * u] + input_bias[k * u : (k + 1) * u] for k in range(3)
            )
            h_z, h_r = (
                (h * mh[k]) @ recurrent[:, k * u : (k + 1) * u] + state_bias[k * u : (k + 1) * u] for k in range(2)
            )
            z, r = _sigmoid(x_z + h_z), _sigmoid(x_r + h_r)
            if cell.reset_after:
                h_h = r * ((h * mh[2]) @ recurrent[:, 2 * u :] + state_bias[2 * u :])
            else:
                h_h = (r * (h * mh[2])) @ recurrent[:, 2 * u :]
            h = z * h + (1.0 - z) * np.tanh(x_h + h_h)
        else:
            mx, mh = _per_gate(masks.inputs, 1, x_t.shape)[0], _per_gate(masks.state, 1, h.shape)[0]
            h = np.tanh((x_t * mx) @ kernel + (0.0 if bias is None else bias) + (h * mh) @ recurrent)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def _numpy_masks(rows, gates, rates, seed):
    """Inverted-dropout masks (0 or 1 / keep) of the given layout: ``gates`` None for one mask shared by the gates."""
    rng = np.random.RandomState(seed)

    def mask(rate, dim):
        if rate == 0:
            return None
        shape = (rows, dim) if gates is None else (gates, rows, dim)
        return ((rng.uniform(size=shape) < 1.0 - rate) / (1.0 - rate)).astype("float32")

    return _keras_rnn.Masks(inputs=mask(rates[0], FEATURES), state=mask(rates[1], UNITS))


GIVEN_MASKS = {
    "lstm, one input mask": (lambda: keras.layers.LSTM(UNITS, return_sequences=True), None, (0.4, 0.0)),
    "lstm, masks per gate": (lambda: keras.layers.LSTM(UNITS, return_sequences=True), 4, (0.4, 0.5)),
    "gru, one input mask": (lambda: keras.layers.GRU(UNITS, return_sequences=True), None, (0.4, 0.0)),
    "gru, masks per gate": (lambda: keras.layers.GRU(UNITS, return_sequences=True), 3, (0.4, 0.5)),
    "gru reset before, masks per gate": (
        lambda: keras.layers.GRU(UNITS, reset_after=False, return_sequences=True),
        3,
        (0.4, 0.5),
    ),
    "gru without bias, masks per gate": (
        lambda: keras.layers.GRU(UNITS, use_bias=False, return_sequences=True),
        3,
        (0.4, 0.5),
    ),
    "simple rnn": (lambda: keras.layers.SimpleRNN(UNITS, return_sequences=True), None, (0.4, 0.5)),
}


@pytest.mark.parametrize("name", list(GIVEN_MASKS))
def test_given_masks_follow_keras_equations(name):
    make, gates, rates = GIVEN_MASKS[name]
    layer = make()
    x = _inputs(batch=7)
    layer(x)
    # Biases away from 0, so that a bias in the wrong place shows.
    for weight in layer.cell.weights[2:]:
        weight.assign(np.random.RandomState(5).randn(*weight.shape).astype("float32") * 0.5)
    masks = _numpy_masks(len(x), gates, rates, seed=1)
    got = _keras_rnn.run_with_masks(layer, (x,), {}, masks)
    np.testing.assert_allclose(to_numpy(got), _numpy_rnn(layer, x, masks), rtol=1e-5, atol=1e-5)


DRAWN = {  # layer, and the shapes of its (input mask, state mask) for 8 rows
    "lstm, dropout only": (lambda: keras.layers.LSTM(UNITS, dropout=0.25), ((8, FEATURES), None)),
    "lstm, both": (
        lambda: keras.layers.LSTM(UNITS, dropout=0.25, recurrent_dropout=0.5),
        ((4, 8, FEATURES), (4, 8, UNITS)),
    ),
    "gru, recurrent only": (lambda: keras.layers.GRU(UNITS, recurrent_dropout=0.5), (None, (3, 8, UNITS))),
    "gru, dropout only": (lambda: keras.layers.GRU(UNITS, dropout=0.25), ((8, FEATURES), None)),
    "simple rnn": (
        lambda: keras.layers.SimpleRNN(UNITS, dropout=0.25, recurrent_dropout=0.5),
        ((8, FEATURES), (8, UNITS)),
    ),
    "lstm at rate 1 (no dropout in Keras)": (lambda: keras.layers.LSTM(UNITS, dropout=1.0), (None, None)),
}


@pytest.mark.parametrize("name", list(DRAWN))
def test_drawn_masks_have_keras_layout(name):
    """One mask shared by the gates, or one per gate (``implementation=1``, which recurrent dropout imposes), of 0s
    and 1 / keep, as many 1 / keep as a Bernoulli(keep) count allows."""
    make, shapes = DRAWN[name]
    layer = make()
    layer.build((None, STEPS, FEATURES))
    masks = _keras_rnn.draw_masks(layer.cell, keras.ops.ones((8, FEATURES)), keras.ops.zeros((8, UNITS)))
    for mask, shape, rate in zip(masks, shapes, (layer.cell.dropout, layer.cell.recurrent_dropout), strict=True):
        assert (mask is None) == (shape is None)
        if mask is None:
            continue
        mask = to_numpy(mask)
        assert mask.shape == shape
        keep = 1.0 - rate
        assert set(np.unique(mask)) <= {0.0, np.float32(1.0 / keep)}
        assert_binomial_count(int(np.count_nonzero(mask)), mask.size, keep)


def test_simple_rnn_at_rate_1_drops_everything():
    """Keras's SimpleRNN cell applies dropout at rate 1 (the LSTM and GRU cells apply none)."""
    layer = keras.layers.SimpleRNN(UNITS, dropout=1.0)
    x = _inputs()
    layer(x)
    masks = _keras_rnn.draw_masks(layer.cell, keras.ops.ones((4, FEATURES)), keras.ops.zeros((4, UNITS)))
    np.testing.assert_array_equal(to_numpy(masks.inputs), np.zeros((4, FEATURES)))
    np.testing.assert_allclose(
        to_numpy(_keras_rnn.run_with_shared_masks(layer, (x,), {})), to_numpy(layer(x, training=True)), atol=1e-6
    )


# --- Joint draws: the rows of one sample share the masks -----------------------------------------------------------

JOINT = {
    "lstm": lambda: keras.layers.LSTM(UNITS, dropout=0.3, recurrent_dropout=0.3, return_sequences=True),
    "lstm, input dropout only": lambda: keras.layers.LSTM(UNITS, dropout=0.3, return_sequences=True),
    "gru": lambda: keras.layers.GRU(UNITS, dropout=0.3, recurrent_dropout=0.3, return_sequences=True),
    "gru reset before": lambda: keras.layers.GRU(
        UNITS, reset_after=False, dropout=0.3, recurrent_dropout=0.3, return_sequences=True
    ),
    "simple rnn": lambda: keras.layers.SimpleRNN(UNITS, dropout=0.3, recurrent_dropout=0.3, return_sequences=True),
    "rnn of lstm cell": lambda: keras.layers.RNN(
        keras.layers.LSTMCell(UNITS, dropout=0.3, recurrent_dropout=0.3), return_sequences=True
    ),
}


def _start_state(layer):
    state = layer.cell.seed_generator.state
    return state, keras.ops.convert_to_tensor(np.array([1234, 0]), dtype=state.dtype)


def _joint_run(layer, tiled, copies, masks=_keras_rnn.draw_masks):
    """``run_with_masks`` under joint draws of ``copies`` samples, from a known seed state: (outputs, end state)."""
    state, start = _start_state(layer)
    with (
        _context.selecting({id(layer)}, shared_copies=copies),
        keras.StatelessScope(state_mapping=[(state, start)]) as scope,
    ):
        outputs = _keras_rnn.run_with_masks(layer, (tiled,), {}, masks)
        end = scope.get_current_value(state)
    return outputs, start, end


@backend.slow_on_jax
@pytest.mark.parametrize("name", list(JOINT))
def test_rows_of_one_sample_share_the_network(name):
    """Under joint draws, two copies of one input in a sample agree, the samples differ, every input of a sample sees
    the same masks (its output is the layer run on it alone with them), and the seed state advanced in the scope."""
    layer = JOINT[name]()
    a, b = _inputs(batch=2, seed=1)
    x = np.stack([a, a, b])  # inputs 0 and 1 are the same
    layer(x)
    copies, batch = 8, len(x)
    tiled = np.tile(x, (copies, 1, 1))  # row s * batch + i: sample s of input i
    recorded = []

    def recording(cell, step_input, state):
        masks = _keras_rnn.draw_masks(cell, step_input, state)
        recorded.append(masks)
        return masks

    outputs, start, end = _joint_run(layer, tiled, copies, recording)
    outputs = to_numpy(outputs).reshape(copies, batch, STEPS, UNITS)
    # Equal up to rounding: PyTorch's CPU matmul may round one row differently from another.
    np.testing.assert_allclose(outputs[:, 0], outputs[:, 1], rtol=1e-6, atol=1e-7)
    # (Two samples draw the same 3 input-mask bits with probability 0.2 at rate 0.3; all 8 samples, 1e-5.)
    assert any(not np.allclose(outputs[0, 0], outputs[s, 0]) for s in range(1, copies)), "the samples drew one mask"
    assert not np.array_equal(to_numpy(start), to_numpy(end)), "the cell's seed state did not advance"

    (masks,) = recorded
    for sample in range(copies):
        rows = slice(sample * batch, (sample + 1) * batch)
        sample_masks = [None if mask is None else to_numpy(mask)[..., rows, :] for mask in masks]
        for mask in sample_masks:
            if mask is not None:  # every row of the sample holds the same mask
                np.testing.assert_array_equal(mask, np.broadcast_to(mask[..., :1, :], mask.shape))
        one_row = _keras_rnn.Masks(*(None if mask is None else mask[..., :1, :] for mask in sample_masks))
        alone = _keras_rnn.run_with_masks(layer, (b[None],), {}, one_row)
        np.testing.assert_allclose(to_numpy(alone)[0], outputs[sample, 2], rtol=1e-5, atol=1e-6)


def test_without_joint_draws_each_row_draws_its_own_masks():
    layer = JOINT["lstm"]()
    x = np.tile(_inputs()[:1], (3, 1, 1))
    layer(x)
    state, start = _start_state(layer)
    with keras.StatelessScope(state_mapping=[(state, start)]):
        outputs = to_numpy(_keras_rnn.run_with_shared_masks(layer, (x,), {}))
    assert not np.allclose(outputs[0], outputs[1])


def test_leaves_the_layer_untouched():
    """No attribute of the layer or its cell is set, not even a cached mask, and in a stateless scope the seed state
    and the weights keep their values."""
    layer = JOINT["gru"]()
    x = _inputs()
    layer(x)
    before = {owner: dict(vars(owner)) for owner in (layer, layer.cell)}
    values = [to_numpy(variable) for variable in layer.variables]
    _joint_run(layer, np.tile(x, (2, 1, 1)), 2)
    for owner, attributes in before.items():
        now = vars(owner)
        assert now.keys() == attributes.keys()
        assert all(now[key] is value for key, value in attributes.items())
    for variable, value in zip(layer.variables, values, strict=True):
        np.testing.assert_array_equal(to_numpy(variable), value)


@pytest.mark.parametrize(("label", "jit"), backend.COMPILE_MODES)
def test_compiled_calls_draw_fresh_masks(label, jit):
    layer = JOINT["lstm"]()
    x = keras.ops.convert_to_tensor(_inputs())
    layer(x)
    function = backend.compiled(lambda v: _keras_rnn.run_with_shared_masks(layer, (v,), {}), [layer], jit_compile=jit)
    assert calls_differ(lambda: function(x)), f"{label} calls repeated their masks"


# --- Each input's distribution is Keras's ---------------------------------------------------------------------------

MARGINALS = {
    "lstm, one input mask": lambda: keras.layers.LSTM(4, dropout=0.5, return_sequences=True, seed=1),
    "lstm, masks per gate": lambda: keras.layers.LSTM(
        4, dropout=0.5, recurrent_dropout=0.5, return_sequences=True, seed=1
    ),
    "gru, one input mask": lambda: keras.layers.GRU(4, dropout=0.5, return_sequences=True, seed=1),
    "gru, masks per gate": lambda: keras.layers.GRU(
        4, dropout=0.5, recurrent_dropout=0.5, return_sequences=True, seed=1
    ),
    "gru reset before, masks per gate": lambda: keras.layers.GRU(
        4, reset_after=False, dropout=0.5, recurrent_dropout=0.5, return_sequences=True, seed=1
    ),
    "simple rnn": lambda: keras.layers.SimpleRNN(4, dropout=0.5, recurrent_dropout=0.5, return_sequences=True, seed=1),
}


@backend.slow_on_jax
@pytest.mark.parametrize("name", list(MARGINALS))
def test_each_input_has_keras_distribution(name):
    """Over 2000 joint draws, the outputs for one input have the mean and variance of Keras's own training outputs
    (5 standard errors, every unit at every step). Weights tripled so that how the gates share masks shows."""
    layer = MARGINALS[name]()
    x = _inputs(batch=2, seed=2)[:, :5]
    layer(x)
    for weight in (layer.cell.kernel, layer.cell.recurrent_kernel):
        weight.assign(weight * 3.0)
    n = 2000
    reference = to_numpy(layer(np.repeat(x[:1], n, axis=0), training=True)).reshape(n, -1)
    outputs, _, _ = _joint_run(layer, np.tile(x, (n, 1, 1)), n)
    samples = to_numpy(outputs)[0::2].reshape(n, -1)  # input 0 of each sample
    assert_same_distribution(samples, reference)


# --- What it refuses -------------------------------------------------------------------------------------------------


class _OwnLSTM(keras.layers.LSTM):
    pass


REFUSED = {
    "stateful": (lambda: keras.layers.LSTM(UNITS, dropout=0.2, stateful=True), "stateful"),
    "subclass": (lambda: _OwnLSTM(UNITS, dropout=0.2), "_OwnLSTM"),
    "stacked cells": (
        lambda: keras.layers.RNN([keras.layers.LSTMCell(UNITS, dropout=0.2), keras.layers.GRUCell(UNITS)]),
        "StackedRNNCells",
    ),
    "bidirectional": (lambda: keras.layers.Bidirectional(keras.layers.LSTM(UNITS, dropout=0.2)), "Bidirectional"),
    "conv lstm": (lambda: keras.layers.ConvLSTM1D(2, 3, dropout=0.2), "ConvLSTM1D"),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refuses_what_it_cannot_run(name):
    make, reason = REFUSED[name]
    layer = make()
    assert not _keras_rnn.supports(layer)
    with pytest.raises(ValueError, match=reason) as error:
        _keras_rnn.run_with_shared_masks(layer, (_inputs(),), {})
    assert repr(layer.name) in str(error.value)


def test_supports_keras_layers():
    for make in LAYERS.values():
        assert _keras_rnn.supports(make(dropout=0.2))


def test_refuses_a_layer_not_built():
    layer = keras.layers.GRU(UNITS, dropout=0.2)
    with pytest.raises(ValueError, match="built"):
        _keras_rnn.run_with_shared_masks(layer, (_inputs(),), {})
    assert not layer.built
