"""Cells that draw new noise at every step (Semeniuta's per-step masks, zoneout) inside the user's own
`keras.layers.RNN`, rolled or unrolled: a new, independent draw at every step in training calls, compiled ones and
under MCDropout; the step counter they carry as their last state (return_state, initial_state, masking, dtypes,
saving); and the ready layers, which draw before their loop and keep Keras's states."""

import json

import keras
import numpy as np
import pytest

import kerasdrop
from tests import backend, utils
from tests.layers.recurrent_support import gate_biases, randomize, sequences

RATE = 0.4
UNITS = 16
STEPS = 6
# The cells that draw at every step, each with rate RATE.
PER_STEP_CELLS = {
    "SemeniutaLSTMCell": lambda **kw: kerasdrop.SemeniutaLSTMCell(UNITS, recurrent_dropout=RATE, **kw),
    "SemeniutaGRUCell": lambda **kw: kerasdrop.SemeniutaGRUCell(UNITS, recurrent_dropout=RATE, **kw),
    "ZoneoutLSTMCell": lambda **kw: kerasdrop.ZoneoutLSTMCell(UNITS, cell_zoneout=RATE, hidden_zoneout=RATE, **kw),
    "ZoneoutGRUCell": lambda **kw: kerasdrop.ZoneoutGRUCell(UNITS, zoneout=RATE, **kw),
}
ROLLED = pytest.mark.parametrize("unroll", [False, True], ids=["rolled", "unrolled"])


def _rates(name):
    """The cell's noise arguments (zoneouts, dropouts), as its ready layer takes them."""
    config = PER_STEP_CELLS[name]().get_config()
    return {key: value for key, value in config.items() if "zoneout" in key or "dropout" in key}


def _ready_class(name):
    """The ready layer of the cell: `kerasdrop.SemeniutaLSTM` for `SemeniutaLSTMCell`, ..."""
    return getattr(kerasdrop, name.removesuffix("Cell"))


def _keras_cell(name):
    return keras.layers.LSTMCell(UNITS) if "LSTM" in name else keras.layers.GRUCell(UNITS)


def _rnn(name, unroll=False, **kwargs):
    return keras.layers.RNN(PER_STEP_CELLS[name](seed=1), return_sequences=True, unroll=unroll, **kwargs)


def _showing_noise(rnn, name, input_shape):
    """Weights under which the outputs show each step's noise (see `_fired`). Semeniuta's: gates saturated so that
    the state is the dropped candidate alone (LSTM: i = o = 1 and f = 0, h_t = tanh(d(tanh(1))); GRU: z = 0,
    h_t = d(tanh(1))). Zoneout's: random weights, under which h_t equals h_{t-1} only where a unit was zoned out."""
    if "Zoneout" in name:
        randomize(rnn, input_shape)
    elif "LSTM" in name:
        gate_biases(rnn, input_shape, i=200.0, f=-200.0, c=1.0, o=200.0)
    else:
        gate_biases(rnn, input_shape, z=-200.0, h=1.0)


def _fired(name, outputs):
    """Where each step's noise fired, ``(sequences, steps, units)`` booleans, and its probability: a kept candidate
    unit (Semeniuta, ``h_t != 0``, probability 1 - rate) or a unit zoned out (``h_t == h_{t-1}``, probability rate)."""
    outputs = np.asarray(outputs)
    if "Semeniuta" in name:
        return outputs != 0, 1.0 - RATE
    previous = np.concatenate([np.zeros_like(outputs[:, :1]), outputs[:, :-1]], axis=1)
    return outputs == previous, RATE


def assert_new_draw_at_every_step(fired, p):
    """At each step the units that fired are Binomial(n, p), n = sequences x units; at each two successive steps the
    units that fired at both are Binomial(n, p²): independent draws (one draw repeated at both would give p)."""
    n = fired.shape[0] * fired.shape[2]
    for step in range(fired.shape[1]):
        utils.assert_binomial_count(int(fired[:, step].sum()), n, p)
    for step in range(fired.shape[1] - 1):
        utils.assert_binomial_count(int((fired[:, step] & fired[:, step + 1]).sum()), n, p * p)


# ---------------------------------------------------------------- a new draw at every step


@pytest.mark.slow
@ROLLED
@pytest.mark.parametrize("name", list(PER_STEP_CELLS))
def test_cell_draws_anew_at_every_step_of_a_keras_rnn(name, unroll):
    """Training calls, eager and compiled (tf.function, XLA; jax.jit through a StatelessScope)."""
    x = keras.ops.convert_to_tensor(sequences(batch=100, steps=STEPS, features=3))
    rnn = _rnn(name, unroll)
    _showing_noise(rnn, name, x.shape)
    calls = [("eager", lambda v: rnn(v, training=True))]
    for label, jit in backend.COMPILE_MODES:
        calls.append((label, backend.compiled(lambda v: rnn(v, training=True), [rnn], jit_compile=jit)))
    for label, call in calls:
        first = utils.to_numpy(call(x))
        assert_new_draw_at_every_step(*_fired(name, first))
        assert not np.array_equal(utils.to_numpy(call(x)), first), f"{label}: a second call repeated the first"


@backend.slow_on_jax
@ROLLED
@pytest.mark.parametrize("name", list(PER_STEP_CELLS))
def test_mc_dropout_samples_a_new_draw_at_every_step(name, unroll):
    """No refusal: MCDropout's samples of a Keras RNN of the cell show independent draws at successive steps."""
    inputs = keras.Input((STEPS, 3))
    rnn = _rnn(name, unroll)
    model = keras.Model(inputs, rnn(inputs))
    _showing_noise(rnn, name, (None, STEPS, 3))
    x = sequences(batch=4, steps=STEPS, features=3)
    result = kerasdrop.MCDropout(model, samples=300, seed=2).predict(x, verbose=0, keep_samples=True)
    samples = np.asarray(result.samples)
    assert samples.shape == (300, 4, STEPS, UNITS)
    assert_new_draw_at_every_step(*_fired(name, samples.reshape(-1, STEPS, UNITS)))


@pytest.mark.parametrize("name", ["SemeniutaGRUCell", "ZoneoutLSTMCell"])
def test_joint_mc_draws_are_shared_by_the_inputs_of_a_sample_and_new_at_every_step(name):
    """consistent=True: every input of one sample sees the same noise at each step (two copies of one sequence give
    equal outputs), and the steps still draw anew."""
    inputs = keras.Input((STEPS, 3))
    rnn = _rnn(name)
    model = keras.Model(inputs, rnn(inputs))
    _showing_noise(rnn, name, (None, STEPS, 3))
    x = np.repeat(sequences(batch=2, steps=STEPS, features=3), 2, axis=0)  # rows 0, 1 and rows 2, 3 are equal
    samples = {}
    for consistent in (True, False):
        sampler = kerasdrop.MCDropout(model, samples=200, seed=3, consistent=consistent)
        samples[consistent] = np.asarray(sampler.predict(x, verbose=0, keep_samples=True).samples)
    np.testing.assert_array_equal(samples[True][:, 0], samples[True][:, 1])
    np.testing.assert_array_equal(samples[True][:, 2], samples[True][:, 3])
    assert not np.array_equal(samples[False][:, 0], samples[False][:, 1])
    assert_new_draw_at_every_step(*_fired(name, samples[True][:, ::2].reshape(-1, STEPS, UNITS)))


def test_a_masked_row_does_not_hold_back_the_draws_of_the_others():
    """A row that a mask holds back keeps its old state, counter included; the step draws from the largest count of
    the batch, so the other rows still get a new draw at every step (whichever row is held back)."""
    x = sequences(batch=101, steps=STEPS, features=3)
    mask = np.ones((101, STEPS), bool)
    mask[0, 1:] = False  # the first row stops after one step
    mask[1, :3] = False  # the second starts late
    rnn = _rnn("SemeniutaGRUCell")
    _showing_noise(rnn, "SemeniutaGRUCell", x.shape)
    outputs = utils.to_numpy(rnn(x, mask=mask, training=True))
    assert_new_draw_at_every_step(*_fired("SemeniutaGRUCell", outputs[2:]))


# ---------------------------------------------------------------- the step counter


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PER_STEP_CELLS))
def test_states_end_with_the_step_counter(name):
    """``return_state`` gives Keras's states and the step counter, ``(batch, 2)``: the number of steps run, in two
    base-256 digits, the same in every row; passed back as ``initial_state`` it counts on."""
    keras_states = 2 if "LSTM" in name else 1
    cell = PER_STEP_CELLS[name](seed=1)
    assert cell.carries_step_counter
    assert keras.tree.flatten(cell.state_size) == [UNITS] * keras_states + [2]
    rnn = keras.layers.RNN(cell, return_state=True)
    x = sequences(batch=3, steps=300, features=2)
    _, *states = rnn(x, training=True)
    assert len(states) == keras_states + 1
    np.testing.assert_array_equal(utils.to_numpy(states[-1]), np.tile([[300 % 256, 300 // 256]], (3, 1)))
    _, *states = rnn(x, initial_state=states, training=True)
    np.testing.assert_array_equal(utils.to_numpy(states[-1]), np.tile([[600 % 256, 600 // 256]], (3, 1)))
    symbolic = keras.layers.RNN(PER_STEP_CELLS[name](), return_state=True)(keras.Input((5, 2)))
    assert [tuple(tensor.shape) for tensor in symbolic[1:]] == [(None, UNITS)] * keras_states + [(None, 2)]


@pytest.mark.parametrize("name", ["SemeniutaLSTMCell", "ZoneoutGRUCell"])
def test_initial_state_without_the_step_counter_is_refused_with_what_to_pass(name):
    keras_states = 2 if "LSTM" in name else 1
    x = sequences(batch=3, steps=4, features=2)
    states = [np.zeros((3, UNITS), "float32")] * keras_states
    rnn = keras.layers.RNN(PER_STEP_CELLS[name]())
    with pytest.raises(ValueError, match=rf"takes {keras_states + 1} states.*received {keras_states}.*step counter"):
        rnn(x, initial_state=states, training=True)
    rnn(x, initial_state=[*states, np.zeros((3, 2), "float32")], training=True)  # zeros will do


def test_stacked_cells_carry_a_counter_each():
    cells = [
        PER_STEP_CELLS["ZoneoutGRUCell"](),
        kerasdrop.VariationalLSTMCell(4),
        PER_STEP_CELLS["SemeniutaLSTMCell"](),
    ]
    _, *states = keras.layers.RNN(cells, return_state=True)(sequences(batch=2, steps=7, features=3), training=True)
    assert [tuple(state.shape) for state in keras.tree.flatten(states)] == [
        (2, UNITS),
        (2, 2),
        (2, 4),
        (2, 4),
        (2, UNITS),
        (2, UNITS),
        (2, 2),
    ]
    for counter in (states[0][1], states[2][2]):
        np.testing.assert_array_equal(utils.to_numpy(counter), [[7, 0], [7, 0]])


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", list(PER_STEP_CELLS))
def test_dtype_policies_count_past_what_the_float_holds(name, policy):
    """Keras's RNN casts every state to the compute dtype, where bfloat16 holds integers exactly up to 256 only: past
    256 steps the counter still counts, and (where the outputs show the masks) successive steps still draw anew."""
    steps = 300
    x = sequences(batch=4, steps=steps, features=3)
    cell = PER_STEP_CELLS[name](seed=1, dtype=policy)
    rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, dtype=policy)
    _showing_noise(rnn, name, x.shape)
    outputs, *states = rnn(x, training=True)
    assert keras.backend.standardize_dtype(states[-1].dtype) == cell.compute_dtype
    np.testing.assert_array_equal(utils.to_numpy(keras.ops.cast(states[-1], "float32")), [[44, 1]] * 4)
    outputs = utils.to_numpy(keras.ops.cast(outputs, "float32"))
    assert np.all(np.isfinite(outputs))
    if "Semeniuta" in name:  # zoneout's outputs saturate in 300 steps of bfloat16: h_t == h_{t-1} shows no draw
        fired, _ = _fired(name, outputs)
        repeated = [step for step in range(1, steps) if np.array_equal(fired[:, step], fired[:, step - 1])]
        assert not repeated, f"steps {repeated} repeated the draw of the step before"


# ---------------------------------------------------------------- what stays as it was


@pytest.mark.parametrize("name", list(PER_STEP_CELLS))
def test_test_time_output_is_the_ready_layers(name):
    """At test time the counter changes nothing: a Keras RNN of the cell computes what the ready layer does."""
    x = sequences()
    rnn = keras.layers.RNN(PER_STEP_CELLS[name](), return_sequences=True, return_state=True)
    ready = _ready_class(name)(UNITS, **_rates(name), return_sequences=True, return_state=True)
    weights = randomize(ready, x.shape)
    rnn.build(x.shape)
    rnn.set_weights([w.astype("float32") for w in weights])
    expected = [utils.to_numpy(value) for value in ready(x)]
    actual = [utils.to_numpy(value) for value in rnn(x)]
    assert len(actual) == len(expected) + 1  # the counter, last
    for a, b in zip(actual, expected, strict=False):
        np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("name", list(PER_STEP_CELLS))
def test_ready_layers_keep_the_keras_states_and_draw_once_per_call(name):
    """The ready layer draws every step's noise before its loop: its cell carries no counter, return_state gives
    Keras's states, its only variable besides the weights is its seed state, and a training call moves that state
    by exactly its own draws (the step noise of the whole sequence, one draw)."""
    layer = _ready_class(name)(UNITS, **_rates(name), return_state=True, seed=1)
    assert not layer.cell.carries_step_counter
    assert layer.cell.state_size == _keras_cell(name).state_size
    assert layer.state_size == keras.layers.RNN(_keras_cell(name)).state_size
    x = sequences(batch=3, steps=5, features=2)
    layer.build(x.shape)
    (seed_state,) = layer.non_trainable_variables
    before = utils.to_numpy(seed_state)
    _, *states = layer(x, training=True)
    assert [tuple(state.shape) for state in states] == [(3, UNITS)] * (2 if "LSTM" in name else 1)
    np.testing.assert_array_equal(utils.to_numpy(seed_state) - before, [0, 1])


@pytest.mark.parametrize("name", ["SemeniutaGRUCell", "ZoneoutLSTMCell"])
def test_cell_with_zero_rates_has_the_keras_states(name):
    cell = type(PER_STEP_CELLS[name]())(UNITS, **dict.fromkeys(_rates(name), 0.0))
    assert not cell.carries_step_counter and cell.state_size == _keras_cell(name).state_size
    no_steps = kerasdrop.SemeniutaGRUCell(UNITS, recurrent_dropout=RATE, per_step=False)
    assert not no_steps.carries_step_counter and no_steps.state_size == UNITS


@pytest.mark.slow
def test_keras_file_round_trip_keeps_the_counter_and_the_draws(tmp_path):
    inputs = keras.Input((STEPS, 3))
    branches = [_rnn(name, name.startswith("Zoneout"))(inputs) for name in PER_STEP_CELLS]
    outputs = keras.layers.Concatenate()(branches)
    model = keras.Model(inputs, outputs)
    x = sequences(batch=100, steps=STEPS, features=3)
    reloaded = utils.save_and_load(model, tmp_path)
    # JSON form: Keras writes the build shapes of nested layers as tuples and reads them back as lists.
    assert [json.dumps(layer.get_config()) for layer in reloaded.layers] == [
        json.dumps(layer.get_config()) for layer in model.layers
    ]
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
    for name, layer in zip(PER_STEP_CELLS, reloaded.layers[1:-1], strict=True):
        assert layer.cell.carries_step_counter
        _showing_noise(layer, name, x.shape)
        assert_new_draw_at_every_step(*_fired(name, utils.to_numpy(layer(x, training=True))))
