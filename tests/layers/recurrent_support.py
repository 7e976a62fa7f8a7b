"""Shared by the recurrent tests: the variants, input and weight helpers, mask recording and a NumPy reference."""

import functools

import keras
import numpy as np

import kerasdrop
from tests import utils
from tests.layers import every_layer

# The recurrent configurations of `tests.layers.every_layer`, in this order.
NAMES = [
    "VariationalLSTM",
    "RNNDropLSTM",
    "SemeniutaLSTM",
    "SemeniutaLSTM-per_sequence",
    "VariationalGRU",
    "SemeniutaGRU",
    "SemeniutaGRU-per_sequence",
    "VariationalGRU-reset_before",
    "SemeniutaGRU-reset_before",
    "ZoneoutLSTM",
    "ZoneoutGRU",
    "ZoneoutGRU-reset_before",
]


def _keras_layer(case):
    """The Keras layer a case's layer replaces: LSTM, or GRU in the case's layout."""
    if issubclass(case.layer_class.cell_class, keras.layers.GRUCell):
        return functools.partial(keras.layers.GRU, reset_after=case.arguments.get("reset_after", True))
    return keras.layers.LSTM


# name -> (layer class, noise arguments (every argument of the case but `units`), the Keras layer it replaces)
VARIANTS = {
    name: (
        every_layer.BY_ID[name].layer_class,
        {key: value for key, value in every_layer.BY_ID[name].arguments.items() if key != "units"},
        _keras_layer(every_layer.BY_ID[name]),
    )
    for name in NAMES
}
# Zoneout's test-time output is an expectation that differs from the Keras layer's (unless every zoneout is 0).
IDENTITY_AT_TEST_TIME = [name for name in VARIANTS if not name.startswith("Zoneout")]
LAYER_CLASSES = [kerasdrop.VariationalLSTM, kerasdrop.RNNDropLSTM, kerasdrop.SemeniutaLSTM, kerasdrop.VariationalGRU]
LAYER_CLASSES += [kerasdrop.SemeniutaGRU, kerasdrop.ZoneoutLSTM, kerasdrop.ZoneoutGRU]
CELL_CLASSES = [cls.cell_class for cls in LAYER_CLASSES]
UNITS = 6


def factory(name, units=UNITS, **overrides):
    """Makes the layers of the configuration ``name``, returning sequences, with ``units`` units."""
    return lambda **kw: every_layer.make(name, **{"units": units, "return_sequences": True, **overrides, **kw})


def seeded_factory(name, units=UNITS):
    """Layers whose initial weights are seeded too, so that two of them with one seed are the same function."""
    initializers = {
        "kernel_initializer": keras.initializers.GlorotUniform(seed=1),
        "recurrent_initializer": keras.initializers.Orthogonal(seed=2),
        "bias_initializer": keras.initializers.RandomNormal(seed=3),
    }
    return factory(name, units=units, **initializers)


def sequences(batch=5, steps=7, features=4, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, steps, features)).astype("float32")


def randomize(layer, input_shape, seed=0):
    """Builds ``layer`` with random weights (biases included); returns them as float64 arrays."""
    layer.build(input_shape)
    rng = np.random.default_rng(seed)
    layer.set_weights([0.5 * rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return [w.astype("float64") for w in layer.get_weights()]


def gate_biases(layer, input_shape, **gates):
    """Zero kernels and the given bias per gate: ±200 saturates a sigmoid to exactly 0 or 1 in float32.

    ``layer``: a ready layer or a `keras.layers.RNN` of one cell; gates ``i, f, c, o`` (LSTM) or ``z, r, h`` (GRU)."""
    layer.build(input_shape)
    kernel, recurrent_kernel, bias = layer.get_weights()
    units = recurrent_kernel.shape[0]
    order = ("i", "f", "c", "o") if bias.ndim == 1 and bias.size == 4 * units else ("z", "r", "h")
    values = np.concatenate([np.full(units, gates.get(gate, 0.0), "float32") for gate in order])
    bias = values if bias.ndim == 1 else np.stack([values, np.zeros_like(values)])
    layer.set_weights([np.zeros_like(kernel), np.zeros_like(recurrent_kernel), bias])


def record_masks(cell):
    """Wraps the cell's mask hooks to keep what they return during the next calls (as NumPy, eager only)."""
    seen = {}

    def recording(hook):
        original = getattr(cell, hook)

        def wrapper(*args):
            result = original(*args)
            seen[hook] = None if result is None else keras.tree.map_structure(utils.to_numpy, result)
            return result

        return wrapper

    for hook in ("get_dropout_mask", "get_recurrent_dropout_mask", "step_noise"):
        setattr(cell, hook, recording(hook))
    return seen


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _zoned(previous, new, zoneout, kept):
    """Zoneout of one state: the previous value where ``kept`` (training), else the expectation (test time)."""
    if kept is None:
        return zoneout * previous + (1 - zoneout) * new
    return np.where(kept > 0, previous, new)


def reference(name, x, weights, seen, training=True):
    """Outputs (return_sequences) computed in NumPy from the paper's formulas and the drawn masks: the training-time
    outputs, or with ``training=False`` the test-time ones (no masks; zoneout's expectation)."""
    cls, rates, _ = VARIANTS[name]
    if not training:
        seen = {}
    kernel, recurrent_kernel, bias = weights
    gru = issubclass(cls.cell_class, keras.layers.GRUCell)
    gates = 3 if gru else 4
    units = recurrent_kernel.shape[0]
    input_masks = seen.get("get_dropout_mask")
    recurrent = seen.get("get_recurrent_dropout_mask")
    noise = seen.get("step_noise")
    h, c = np.zeros((x.shape[0], units)), np.zeros((x.shape[0], units))
    outputs = []
    for t in range(x.shape[1]):
        xs = [x[:, t] * (1 if input_masks is None else input_masks[k]) for k in range(gates)]
        gal = recurrent is not None and "Variational" in name
        hs = [h * (recurrent[k] if gal else 1) for k in range(gates)]
        w = [kernel[:, k * units : (k + 1) * units] for k in range(gates)]
        u = [recurrent_kernel[:, k * units : (k + 1) * units] for k in range(gates)]
        candidate_mask = noise[:, t] if noise is not None else recurrent
        kept = noise[:, t] if noise is not None and "Zoneout" in name else None
        if kept is None and "Zoneout" in name and training:
            raise AssertionError("a zoneout layer trained without drawing its step noise")
        if gru:
            reset_after = bias.ndim == 2  # Keras's two layouts: (2, 3 units) biases, or one (3 units,) bias
            b_in = (bias[0] if reset_after else bias).reshape(gates, units)
            b_rec = bias[1].reshape(gates, units) if reset_after else np.zeros((gates, units))
            z = sigmoid(xs[0] @ w[0] + b_in[0] + hs[0] @ u[0] + b_rec[0])
            r = sigmoid(xs[1] @ w[1] + b_in[1] + hs[1] @ u[1] + b_rec[1])
            if reset_after:
                g = np.tanh(xs[2] @ w[2] + b_in[2] + r * (hs[2] @ u[2] + b_rec[2]))
            else:
                g = np.tanh(xs[2] @ w[2] + b_in[2] + (r * hs[2]) @ u[2])
            if "Semeniuta" in name and candidate_mask is not None:
                g = g * candidate_mask
            new_h = z * h + (1 - z) * g
            h = _zoned(h, new_h, rates["zoneout"], None if kept is None else kept[:, 0]) if "Zoneout" in name else new_h
        else:
            b = bias.reshape(gates, units)
            i, f, g, o = (xs[k] @ w[k] + hs[k] @ u[k] + b[k] for k in range(gates))
            i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
            if "Semeniuta" in name and candidate_mask is not None:
                g = g * candidate_mask
            new_c = f * c + i * g
            new_h = o * np.tanh(new_c)
            if "Zoneout" in name:
                # Krueger et al.: h's update is computed from the memory's update before the memory is zoned out.
                h = _zoned(h, new_h, rates["hidden_zoneout"], None if kept is None else kept[:, 0])
                c = _zoned(c, new_c, rates["cell_zoneout"], None if kept is None else kept[:, 1])
            else:
                c, h = new_c, new_h
            if "RNNDrop" in name and recurrent is not None:
                keep = 1 - rates["cell_dropout"]
                c = c * recurrent[0]
                h = o * np.tanh(c) * recurrent[0] / keep
        outputs.append(h)
    return np.stack(outputs, axis=1)
