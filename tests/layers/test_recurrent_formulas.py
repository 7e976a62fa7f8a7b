"""Recurrent family against the papers: Gal's per-gate masks, RNNDrop's memory mask, Semeniuta's candidate masks,
zoneout's kept units, checked with a NumPy implementation fed the drawn masks and with gates saturated so that the
masks show."""

import keras
import numpy as np
import pytest

import kerasdrop
from tests import utils
from tests.layers.recurrent_support import (
    VARIANTS,
    factory,
    gate_biases,
    randomize,
    record_masks,
    reference,
    sequences,
)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_training_output_is_the_formula_with_the_drawn_masks(name):
    """Recorded masks fed to a NumPy implementation of the paper give the layer's output at every step: the
    per-sequence masks are the same at every step, Semeniuta's per-step masks are the ones of each step."""
    x = sequences()
    layer = factory(name)(seed=4)
    weights = randomize(layer, x.shape)
    seen = record_masks(layer.cell)
    y = utils.train_call(layer, x)
    np.testing.assert_allclose(y, reference(name, x.astype("float64"), weights, seen), atol=1e-5)


@pytest.mark.parametrize("name", ["VariationalLSTM", "VariationalGRU"])
def test_gal_masks_per_gate_per_sequence(name):
    cls, rates, _ = VARIANTS[name]
    gates = 4 if "LSTM" in name else 3
    batch, features, units = 400, 16, 32
    x = sequences(batch=batch, steps=3, features=features)
    layer = cls(units, dropout=0.3, recurrent_dropout=0.4, seed=2)
    seen = record_masks(layer.cell)
    layer(x, training=True)
    first = dict(seen)
    for masks, shape, rate in (
        (first["get_dropout_mask"], (gates, batch, features), 0.3),
        (first["get_recurrent_dropout_mask"], (gates, batch, units), 0.4),
    ):
        keep = 1 - rate
        assert masks.shape == shape
        np.testing.assert_allclose(np.unique(masks), [0.0, 1.0 / keep], rtol=1e-6)
        for gate in range(gates):  # each gate has its own Bernoulli(keep) mask
            utils.assert_binomial_count((masks[gate] > 0).sum(), masks[gate].size, keep)
            assert not np.array_equal(masks[gate], masks[(gate + 1) % gates])
    layer(x, training=True)
    assert not np.array_equal(seen["get_dropout_mask"], first["get_dropout_mask"]), "a new call reused its masks"
    assert not np.array_equal(seen["get_recurrent_dropout_mask"], first["get_recurrent_dropout_mask"])


def _step_masks(layer, steps=6, batch=200, units=32, **gates):
    """Zero kernels, gates fixed by their biases: the output at each step shows the candidate/cell mask of that step."""
    x = sequences(batch=batch, steps=steps, features=3)
    gate_biases(layer, x.shape, **gates)
    return utils.train_call(layer, x)


@pytest.mark.parametrize("cls", [kerasdrop.SemeniutaLSTM, kerasdrop.SemeniutaGRU])
@pytest.mark.parametrize("per_step", [True, False])
def test_semeniuta_masks_per_step_or_per_sequence(cls, per_step):
    keep, units = 0.6, 32
    layer = cls(units, recurrent_dropout=1 - keep, per_step=per_step, return_sequences=True, seed=5)
    if cls is kerasdrop.SemeniutaLSTM:  # i = o = 1, f = 0: c_t = d(tanh(1)), h_t = tanh(c_t)
        y = _step_masks(layer, i=200.0, f=-200.0, c=1.0, o=200.0)
        kept_value = np.tanh(np.tanh(1.0) / keep)
    else:  # z = 0: h_t = d(tanh(1))
        y = _step_masks(layer, z=-200.0, h=1.0)
        kept_value = np.tanh(1.0) / keep
    kept = y != 0
    np.testing.assert_allclose(y[kept], kept_value, rtol=1e-6)
    for step in range(y.shape[1]):
        utils.assert_binomial_count(kept[:, step].sum(), kept[:, step].size, keep)
    same = [np.array_equal(kept[:, 0], kept[:, step]) for step in range(1, y.shape[1])]
    assert all(same) if not per_step else not any(same)


def test_semeniuta_never_masks_the_memory_path():
    """With i = 0 and f = 1, c_t = c_{t-1}: the memory survives every step untouched at any rate (RNNDrop erases it)."""
    x = sequences(batch=50, steps=8, features=3)
    c0 = np.random.default_rng(1).normal(size=(50, 8)).astype("float32")
    h0 = np.zeros_like(c0)
    lstm = kerasdrop.SemeniutaLSTM(8, recurrent_dropout=0.9, return_state=True, seed=1)
    gate_biases(lstm, x.shape, i=-200.0, f=200.0, c=1.0, o=200.0)
    _, _, c = lstm(x, initial_state=[h0, c0], training=True)
    np.testing.assert_array_equal(utils.to_numpy(c), c0)
    gru = kerasdrop.SemeniutaGRU(8, recurrent_dropout=0.9, seed=1)
    gate_biases(gru, x.shape, z=200.0, h=1.0)  # z = 1: h_t = h_{t-1}
    np.testing.assert_array_equal(utils.to_numpy(gru(x, initial_state=[c0], training=True)), c0)
    rnndrop = kerasdrop.RNNDropLSTM(8, cell_dropout=0.5, return_state=True, seed=1)
    gate_biases(rnndrop, x.shape, i=-200.0, f=200.0, c=1.0, o=200.0)
    _, _, c = rnndrop(x, initial_state=[h0, c0], training=True)
    c = utils.to_numpy(c)
    assert np.all((c == 0) | (c == c0)) and 0 < (c == 0).mean() < 1


def test_rnndrop_drops_the_same_memory_units_at_every_step():
    keep, batch, units = 0.6, 200, 32
    layer = kerasdrop.RNNDropLSTM(units, cell_dropout=1 - keep, return_sequences=True, seed=3)
    y = _step_masks(layer, batch=batch, units=units, i=200.0, f=-200.0, c=1.0, o=200.0)  # c_t = tanh(1) * m
    kept = y != 0
    np.testing.assert_array_equal(kept, np.broadcast_to(kept[:, :1], kept.shape))  # same units at every step
    utils.assert_binomial_count(kept[:, 0].sum(), batch * units, keep)
    np.testing.assert_allclose(y[kept], np.tanh(np.tanh(1.0)) / keep, rtol=1e-6)  # inverted scaling of h
    other = utils.train_call(layer, sequences(batch=batch, steps=6, features=3))
    assert not np.array_equal(other != 0, kept), "a new call reused the mask"


@pytest.mark.parametrize("policy", ["float32", "float16"])
def test_rnndrop_long_sequences_stay_finite(policy):
    """The carried memory is not rescaled, so nothing compounds as keep^-t: finite and |h| <= 1/keep at rate 0.95."""
    x = sequences(batch=16, steps=200, features=4)
    layer = kerasdrop.RNNDropLSTM(8, cell_dropout=0.95, dtype=policy, return_sequences=True, seed=1)
    randomize(layer, x.shape)
    _, _, bias = layer.get_weights()
    bias[8:16] = 20.0  # forget gate open: the memory accumulates
    layer.set_weights([*layer.get_weights()[:2], bias])
    y = utils.to_numpy(keras.ops.cast(layer(x, training=True), "float32"))
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1 / 0.05 + 1e-3


@pytest.mark.parametrize("name", ["ZoneoutLSTM", "ZoneoutGRU", "ZoneoutGRU-reset_before"])
def test_zoneout_test_time_output_is_the_expectation(name):
    """At test time each state is ``z · s_{t-1} + (1 - z) · s̃_t``, computed in NumPy."""
    x = sequences()
    layer = factory(name)(seed=4)
    weights = randomize(layer, x.shape)
    expected = reference(name, x.astype("float64"), weights, {}, training=False)
    np.testing.assert_allclose(utils.to_numpy(layer(x)), expected, atol=1e-5)


@pytest.mark.parametrize(
    ("cls", "rates", "zoneout"),
    [
        (kerasdrop.ZoneoutGRU, {"zoneout": 0.3}, 0.3),
        (kerasdrop.ZoneoutLSTM, {"hidden_zoneout": 0.3}, 0.3),
        (kerasdrop.ZoneoutLSTM, {"cell_zoneout": 0.6}, 0.0),
    ],
    ids=["GRU", "LSTM-hidden", "LSTM-cell"],
)
def test_zoneout_keeps_each_unit_at_each_step_with_its_probability(cls, rates, zoneout):
    """A unit of ``h`` repeats its previous value exactly when it is zoned out: per step, the count of repeated
    units is Binomial(batch · units, zoneout). (Zoning out the memory alone leaves
    ``h`` free to change: none of its units repeats in these seeded sequences.)"""
    batch, steps, units = 200, 4, 16
    x = sequences(batch=batch, steps=steps, features=3, seed=2)
    layer = cls(units, **rates, return_sequences=True, seed=6)
    randomize(layer, x.shape)
    h = utils.train_call(layer, x)
    for t in range(1, steps):
        repeated = int(np.sum(h[:, t] == h[:, t - 1]))
        if zoneout == 0:
            assert repeated == 0, "h copies its previous value although only the memory is zoned out"
        else:
            utils.assert_binomial_count(repeated, batch * units, zoneout)
