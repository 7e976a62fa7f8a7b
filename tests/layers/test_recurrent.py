"""Recurrent family: VariationalLSTM/GRU, RNNDropLSTM, SemeniutaLSTM/GRU and their cells as Keras layers: equivalence
with Keras, fresh masks, Monte Carlo mode, saving, dtypes, gradients, training and errors."""

import json
import math

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop.datasets import load_digits
from kerasdrop.layers._base import ReplicaSeedGenerator
from tests import backend, utils
from tests.layers.every_layer import beyond_the_cases
from tests.layers.recurrent_support import (
    CELL_CLASSES,
    IDENTITY_AT_TEST_TIME,
    LAYER_CLASSES,
    UNITS,
    VARIANTS,
    factory,
    randomize,
    seeded_factory,
    sequences,
)

# ---------------------------------------------------------------- Keras equivalence


@pytest.mark.parametrize("cell_class", CELL_CLASSES, ids=lambda c: c.__name__)
def test_cell_with_zero_rates_is_the_keras_cell(cell_class):
    """Every rate 0, training or not: the output of keras.layers.RNN with the Keras cell, over the whole sequence."""
    x = sequences(steps=9)
    keras_cell = keras.layers.GRUCell(UNITS) if "GRU" in cell_class.__name__ else keras.layers.LSTMCell(UNITS)
    expected_layer = keras.layers.RNN(keras_cell, return_sequences=True)
    weights = randomize(expected_layer, x.shape)
    ours = keras.layers.RNN(cell_class(UNITS), return_sequences=True)
    assert ours.state_size == expected_layer.state_size  # no step counter: nothing is drawn at every step
    ours.build(x.shape)
    ours.set_weights([w.astype("float32") for w in weights])
    expected = utils.to_numpy(expected_layer(x))
    for training in (True, False):
        np.testing.assert_allclose(utils.to_numpy(ours(x, training=training)), expected, atol=1e-5)


@pytest.mark.parametrize("cell_class", CELL_CLASSES, ids=lambda c: c.__name__)
def test_cell_holds_one_seed_state_its_own(cell_class):
    """The Keras cell makes a seed generator in its constructor; ours replaces it, and the orphan is not left among
    the cell's variables (nor saved with them)."""
    cell = cell_class(UNITS, seed=1)
    cell.build((None, 3))
    (state,) = cell.non_trainable_variables
    assert state is cell.seed_generator.state
    assert isinstance(cell.seed_generator, ReplicaSeedGenerator)


@pytest.mark.parametrize("name", IDENTITY_AT_TEST_TIME)
def test_layer_matches_keras_at_test_time_and_weights_swap_both_ways(name):
    cls, rates, keras_class = VARIANTS[name]
    x = sequences()
    ours, theirs = factory(name)(), keras_class(UNITS, return_sequences=True)
    weights = randomize(theirs, x.shape)
    ours.build(x.shape)
    assert [w.path.split("/")[-1] for w in ours.weights] == ["kernel", "recurrent_kernel", "bias"]
    assert [w.shape for w in ours.weights] == [w.shape for w in theirs.weights]
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(utils.to_numpy(ours(x)), utils.to_numpy(theirs(x)), atol=1e-5)
    theirs.set_weights([w * 0.5 for w in ours.get_weights()])
    ours.set_weights([w.astype("float32") * 0.5 for w in weights])
    np.testing.assert_allclose(utils.to_numpy(ours(x)), utils.to_numpy(theirs(x)), atol=1e-5)
    zero = cls(UNITS, return_sequences=True, **{key: 0.0 if key.endswith("dropout") else v for key, v in rates.items()})
    zero.build(x.shape)
    zero.set_weights(theirs.get_weights())
    np.testing.assert_allclose(utils.train_call(zero, x), utils.to_numpy(theirs(x)), atol=1e-5)


@pytest.mark.parametrize("name", ["ZoneoutLSTM", "ZoneoutGRU", "ZoneoutGRU-reset_before"])
def test_zoneout_layer_with_zero_zoneout_is_the_keras_layer_and_swaps_weights(name):
    cls, rates, keras_class = VARIANTS[name]
    x = sequences()
    theirs = keras_class(UNITS, return_sequences=True)
    randomize(theirs, x.shape)
    zero = cls(UNITS, return_sequences=True, **{key: 0.0 if "zoneout" in key else v for key, v in rates.items()})
    zero.build(x.shape)
    assert [w.path.split("/")[-1] for w in zero.weights] == ["kernel", "recurrent_kernel", "bias"]
    zero.set_weights(theirs.get_weights())
    np.testing.assert_allclose(utils.to_numpy(zero(x)), utils.to_numpy(theirs(x)), atol=1e-5)
    if "dropout" not in rates:
        np.testing.assert_allclose(utils.train_call(zero, x), utils.to_numpy(theirs(x)), atol=1e-5)
    theirs.set_weights([w * 0.5 for w in zero.get_weights()])
    zero.set_weights(theirs.get_weights())
    np.testing.assert_allclose(utils.to_numpy(zero(x)), utils.to_numpy(theirs(x)), atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        {"go_backwards": True},
        {"return_state": True, "return_sequences": False},
        {"unroll": True},
        {"zero_output_for_mask": True},
    ],
    ids=str,
)
@pytest.mark.parametrize("name", ["VariationalLSTM", "SemeniutaGRU"])
def test_keras_options_match_keras_at_test_time(name, options):
    cls, rates, keras_class = VARIANTS[name]
    x = sequences()
    mask = np.ones(x.shape[:2], bool)
    mask[1, 4:] = mask[3, 2:] = False  # right padding
    options = {"return_sequences": True, **options}
    ours, theirs = cls(UNITS, **rates, **options), keras_class(UNITS, **options)
    randomize(theirs, x.shape)
    ours.build(x.shape)
    ours.set_weights(theirs.get_weights())
    states = [np.full((5, UNITS), 0.3, "float32")] * (2 if "LSTM" in name else 1)
    for kwargs in ({}, {"mask": mask}, {"initial_state": states}):
        expected = keras.tree.map_structure(utils.to_numpy, theirs(x, **kwargs))
        keras.tree.map_structure(
            lambda a, b: np.testing.assert_allclose(a, b, atol=1e-5),
            keras.tree.map_structure(utils.to_numpy, ours(x, **kwargs)),
            expected,
        )


def test_stateful_layer_carries_state_like_keras():
    x = sequences()
    ours = kerasdrop.VariationalLSTM(UNITS, dropout=0.2, recurrent_dropout=0.2, stateful=True)
    theirs = keras.layers.LSTM(UNITS, stateful=True)
    randomize(theirs, x.shape)
    ours.build(x.shape)
    ours.set_weights(theirs.get_weights())
    for _ in range(2):
        np.testing.assert_allclose(utils.to_numpy(ours(x)), utils.to_numpy(theirs(x)), atol=1e-5)
    ours.reset_state()
    theirs.reset_state()
    np.testing.assert_allclose(utils.to_numpy(ours(x)), utils.to_numpy(theirs(x)), atol=1e-5)


# ---------------------------------------------------------------- fresh masks, seeds, Monte Carlo
# For every layer (and each fit step): tests/layers/test_contract.py; here the configurations it has no case of.


@pytest.mark.parametrize("name", beyond_the_cases(VARIANTS))
def test_stochastic_layer_contract(name):
    """Fresh masks on every call (eager and compiled), same seed same masks, mc at test time, config."""
    utils.assert_stochastic_layer_contract(seeded_factory(name, units=4), sequences(batch=3, steps=5, features=2))


@pytest.mark.parametrize(
    ("cell_class", "arguments"),
    [
        (kerasdrop.VariationalLSTMCell, {"dropout": 0.5}),
        (kerasdrop.SemeniutaGRUCell, {"recurrent_dropout": 0.5}),
        (kerasdrop.SemeniutaGRUCell, {"recurrent_dropout": 0.5, "per_step": False}),
        (kerasdrop.ZoneoutLSTMCell, {"cell_zoneout": 0.5}),
    ],
    ids=["VariationalLSTMCell", "SemeniutaGRUCell", "SemeniutaGRUCell-per_sequence", "ZoneoutLSTMCell"],
)
def test_cell_in_keras_rnn_draws_fresh_masks(cell_class, arguments):
    utils.assert_fresh_noise_each_call(
        lambda: keras.layers.RNN(cell_class(4, **arguments), return_sequences=True), sequences(3, 5, 2)
    )


@pytest.mark.parametrize("name", ["VariationalLSTM", "RNNDropLSTM", "SemeniutaLSTM", "VariationalGRU", "SemeniutaGRU"])
def test_layer_equals_keras_rnn_of_its_cell_with_the_same_seed(name):
    """The prepared loop of the layer and the plain keras.layers.RNN(cell) loop draw and use the same masks."""
    name = name if "Semeniuta" not in name else name + "-per_sequence"
    cls, rates, _ = VARIANTS[name]
    x = sequences()
    mask = np.ones(x.shape[:2], bool)
    mask[2, 5:] = False
    layer = cls(UNITS, **rates, go_backwards=True, return_sequences=True, seed=8)
    weights = randomize(layer, x.shape)
    plain = keras.layers.RNN(cls.cell_class(UNITS, **rates, seed=8), go_backwards=True, return_sequences=True)
    plain.build(x.shape)
    plain.set_weights([w.astype("float32") for w in weights])
    for _ in range(2):
        np.testing.assert_allclose(
            utils.to_numpy(layer(x, mask=mask, training=True)),
            utils.to_numpy(plain(x, mask=mask, training=True)),
            atol=1e-5,
        )


@backend.tensorflow_only("tf.distribute")
@pytest.mark.parametrize("name", ["VariationalLSTM", "SemeniutaGRU"])
def test_mirrored_replicas_draw_their_own_masks(name, strategy):
    """Two replicas fed the same sequences give different outputs: each draws its own masks (one seed for both)."""
    with strategy.scope():
        layer = factory(name, units=4)(seed=1)
    x = np.tile(sequences(batch=2, steps=5, features=3), (2, 1, 1))  # the same sequences for both replicas
    utils.assert_replicas_draw_their_own_noise(strategy, layer, x)


@pytest.mark.slow
def test_mc_layers_stay_stochastic_through_predict_reload_and_export(tmp_path):
    branches = {name: factory(name, units=3)(mc=True) for name in ("VariationalLSTM", "RNNDropLSTM", "SemeniutaGRU")}
    branches["RNN(cell)"] = keras.layers.RNN(kerasdrop.VariationalLSTMCell(3, recurrent_dropout=0.5, mc=True))
    utils.assert_mc_branches_stay_stochastic(branches, sequences(batch=3, steps=4, features=2), tmp_path)


def test_mc_dropout_samples_the_recurrent_layers():
    """kerasdrop.MCDropout makes the cells sample inside the ready layers' prepared loop; predict stays exact."""
    model = keras.Sequential(
        [
            keras.Input((5, 2)),
            kerasdrop.SemeniutaGRU(4, recurrent_dropout=0.5, return_sequences=True),
            kerasdrop.VariationalLSTM(3, dropout=0.3, recurrent_dropout=0.3),
        ]
    )
    x = sequences(batch=4, steps=5, features=2)
    deterministic = model.predict(x, verbose=0)
    result = kerasdrop.MCDropout(model, samples=8, seed=1).predict(x, verbose=0, keep_samples=True)
    assert result.samples.shape == (8, 4, 3) and np.all(result.std > 0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), deterministic)


def test_set_mc_reaches_the_cells():
    model = keras.Sequential([keras.Input((5, 2)), kerasdrop.SemeniutaGRU(4, recurrent_dropout=0.5)])
    x = sequences(batch=3, steps=5, features=2)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    assert kerasdrop.set_mc(model) == 1 and model.layers[0].mc
    assert not np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


# ---------------------------------------------------------------- config, saving, dtypes, gradients, training


@pytest.mark.parametrize("cell_class", CELL_CLASSES, ids=lambda c: c.__name__)
def test_cell_config_round_trip(cell_class):
    utils.assert_config_round_trip(cell_class(3, seed=2, mc=True, activation="relu", name="cell"))


@pytest.mark.slow
def test_keras_file_round_trip(tmp_path):
    """The ready layers (after Masking), keras.layers.RNN of each cell and a Bidirectional layer reload exactly."""
    inputs = keras.Input((5, 2))
    masked = keras.layers.Masking()(inputs)
    outputs = [cls(3, seed=1)(masked) for cls in LAYER_CLASSES]
    for cell_class in (kerasdrop.RNNDropLSTMCell, kerasdrop.SemeniutaGRUCell):
        outputs.append(keras.layers.RNN(cell_class(3, dropout=0.2))(inputs))
    outputs.append(keras.layers.Bidirectional(kerasdrop.VariationalLSTM(3, recurrent_dropout=0.3))(inputs))
    model = keras.Model(inputs, keras.layers.Concatenate()(outputs))
    x = sequences(batch=3, steps=5, features=2)
    x[0, 3:] = 0.0  # masked steps
    reloaded = utils.save_and_load(model, tmp_path)
    # JSON form: Keras writes the build shapes of nested layers as tuples and reads them back as lists.
    assert [json.dumps(layer.get_config()) for layer in reloaded.layers] == [
        json.dumps(layer.get_config()) for layer in model.layers
    ]
    assert [type(layer) for layer in reloaded.layers] == [type(layer) for layer in model.layers]
    for original, loaded in zip(model.weights, reloaded.weights, strict=True):
        np.testing.assert_array_equal(utils.to_numpy(original), utils.to_numpy(loaded))
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("policy", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", ["VariationalLSTM", "RNNDropLSTM", "SemeniutaLSTM", "VariationalGRU", "SemeniutaGRU"])
def test_dtype_policies(name, policy):
    layer = factory(name, units=4)
    utils.assert_dtype_policy(lambda **kw: layer(**kw), sequences(batch=3, steps=5, features=2), policy)


@pytest.mark.parametrize("name", ["VariationalLSTM", "RNNDropLSTM", "SemeniutaGRU"])
def test_gradients_with_masks_held_fixed(name):
    """Finite differences in float64, the seed generator reset before each call so that the masks stay the same."""
    with backend.float64():
        x = sequences(batch=2, steps=4, features=2).astype("float64")
        layer = factory(name, units=3)(dtype="float64", seed=6)
        randomize(layer, x.shape)
        state = utils.to_numpy(layer.cell.seed_generator.state)

        def loss():
            layer.cell.seed_generator.state.assign(state)
            return keras.ops.sum(keras.ops.sin(layer(x, training=True)))

        utils.assert_gradients_match_finite_differences(
            loss, layer.trainable_variables, rtol=1e-5, atol=1e-8, owners=[layer]
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["VariationalLSTM", "RNNDropLSTM", "SemeniutaLSTM", "VariationalGRU", "SemeniutaGRU"])
def test_training_on_digit_rows_lowers_the_loss(name):
    """Digits as 8 steps of 8 pixels: a few epochs of training lower the loss step after step, far below chance."""
    keras.utils.set_random_seed(0)
    (x, y), _ = load_digits(layout="sequence")
    x, y = x[:512], y[:512]
    cls, rates, _ = VARIANTS[name]
    model = keras.Sequential([keras.Input((8, 8)), cls(32, **rates, seed=0), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = model.evaluate(x, y, verbose=0)
    losses = model.fit(x, y, batch_size=32, epochs=4, verbose=0).history["loss"]
    after = model.evaluate(x, y, verbose=0)
    assert before > 0.9 * math.log(10) and after < 0.65 * before, (before, losses, after)
    assert all(later < earlier for earlier, later in zip(losses, losses[1:], strict=False)), losses


# ---------------------------------------------------------------- errors


BAD_RATES = [(1.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError), (True, TypeError), ("0.2", TypeError)]
RATE_ARGUMENTS = [
    (kerasdrop.ZoneoutLSTM, "cell_zoneout"),
    (kerasdrop.ZoneoutLSTMCell, "hidden_zoneout"),
    (kerasdrop.ZoneoutGRU, "zoneout"),
    (kerasdrop.ZoneoutGRUCell, "dropout"),
    (kerasdrop.VariationalLSTM, "dropout"),
    (kerasdrop.VariationalLSTMCell, "recurrent_dropout"),
    (kerasdrop.VariationalGRU, "recurrent_dropout"),
    (kerasdrop.RNNDropLSTM, "cell_dropout"),
    (kerasdrop.RNNDropLSTMCell, "dropout"),
    (kerasdrop.SemeniutaLSTM, "recurrent_dropout"),
    (kerasdrop.SemeniutaGRUCell, "recurrent_dropout"),
    (kerasdrop.SemeniutaGRU, "dropout"),
]


@pytest.mark.parametrize(("rate", "error"), BAD_RATES)
@pytest.mark.parametrize(("cls", "argument"), RATE_ARGUMENTS, ids=lambda v: getattr(v, "__name__", v))
def test_bad_rates_are_rejected_never_clipped(cls, argument, rate, error):
    with pytest.raises(error, match=rf"argument `{argument}`.*Received: {argument}="):
        cls(4, **{argument: rate})


@pytest.mark.parametrize("cls", LAYER_CLASSES + CELL_CLASSES, ids=lambda c: c.__name__)
def test_bad_arguments(cls):
    for units, error in ((0, ValueError), (-2, ValueError), (2.5, TypeError), ("4", TypeError), (None, TypeError)):
        with pytest.raises(error, match="`units`"):
            cls(units)
    with pytest.raises(TypeError, match="`seed`"):
        cls(4, seed=1.5)
    with pytest.raises(TypeError, match="`mc`"):
        cls(4, mc="yes")
    if "Semeniuta" in cls.__name__:
        with pytest.raises(TypeError, match="`per_step`"):
            cls(4, per_step=1)
    if "GRU" in cls.__name__:
        with pytest.raises(TypeError, match="`reset_after`"):
            cls(4, reset_after="no")
    if cls in LAYER_CLASSES:
        with pytest.raises(TypeError, match="`return_sequences`"):
            cls(4, return_sequences="yes")


@pytest.mark.parametrize("cls", LAYER_CLASSES, ids=lambda c: c.__name__)
def test_bad_inputs(cls):
    with pytest.raises(TypeError, match="floating-point inputs"):
        cls(4, seed=1)(np.ones((2, 3, 4), "int32"), training=True)
    with pytest.raises(TypeError, match="floating-point inputs"):
        keras.layers.RNN(cls.cell_class(4))(np.ones((2, 3, 4), "int32"))
    with pytest.raises(ValueError, match="ndim"):
        cls(4)(np.ones((2, 3), "float32"))
