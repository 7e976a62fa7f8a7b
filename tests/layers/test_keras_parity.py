"""Keras's own tests of `Dropout`, `GaussianDropout`, `SpatialDropout1D/2D/3D`, `LSTM` and `GRU`, run on our layers.

The test files ship inside the installed Keras package. Each is loaded as a fresh module whose ``layers`` name is
`keras.layers` with the layer under test replaced by ours (``LSTM`` by `VariationalLSTM`, ``GRU`` by
`VariationalGRU`), and its test case classes are collected here unchanged: the build state, exception types, error
wording, ``supports_masking``, weight layouts and outputs that Keras checks for its layers hold for ours.
"""

import importlib.util
import pathlib
import types
import unittest

import keras
import pytest

import kerasdrop

KERAS_LAYERS = pathlib.Path(keras.__file__).resolve().parent / "src" / "layers"
# Keras's test file -> the Keras layer names it uses, each mapped to the kerasdrop layer in its place.
SUITES = {
    "regularization/dropout_test.py": {"Dropout": kerasdrop.Dropout},
    "regularization/gaussian_dropout_test.py": {"GaussianDropout": kerasdrop.GaussianDropout},
    "regularization/spatial_dropout_test.py": {
        "SpatialDropout1D": kerasdrop.SpatialDropout1D,
        "SpatialDropout2D": kerasdrop.SpatialDropout2D,
        "SpatialDropout3D": kerasdrop.SpatialDropout3D,
    },
    "rnn/lstm_test.py": {"LSTM": kerasdrop.VariationalLSTM},
    "rnn/gru_test.py": {"GRU": kerasdrop.VariationalGRU},
}


def _load_with_our_layers(relative_path, replacements):
    """Keras's test module at ``relative_path``, its ``layers`` namespace carrying our layers in Keras's places."""
    path = KERAS_LAYERS / relative_path
    assert path.is_file(), f"the installed Keras has no {relative_path}"
    name = "keras_parity_" + relative_path.replace("/", "_").removesuffix(".py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    namespace = types.SimpleNamespace(**{key: getattr(keras.layers, key) for key in dir(keras.layers)})
    for key, layer_class in replacements.items():
        setattr(namespace, key, layer_class)
    module.layers = namespace
    return module


def _test_cases(module):
    """The ``unittest`` test case classes defined in ``module``."""
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, unittest.TestCase) and value.__module__ == module.__name__
    ]


def _collect():
    """Suite -> its test case classes, each subclassed here under a ``TestKeras`` name for pytest to collect."""
    collected = {}
    for relative_path, replacements in SUITES.items():
        collected[relative_path] = {
            "TestKeras" + case.__name__: type("TestKeras" + case.__name__, (case,), {"__module__": __name__})
            for case in _test_cases(_load_with_our_layers(relative_path, replacements))
        }
    return collected


COLLECTED = _collect()
for _classes in COLLECTED.values():
    globals().update(_classes)
del _classes


@pytest.mark.parametrize("relative_path", sorted(SUITES))
def test_every_suite_contributes_tests(relative_path):
    """A Keras suite that moved or lost its test cases would otherwise pass here by running nothing."""
    methods = [
        name
        for class_name in COLLECTED[relative_path]
        for name in dir(globals()[class_name])
        if name.startswith("test")
    ]
    assert len(methods) >= 2, (relative_path, methods)
