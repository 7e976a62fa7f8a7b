"""What kerasdrop needs from TensorFlow: nothing on JAX and PyTorch, except for the features that write TensorFlow
artifacts, which refuse those backends with an error that names the backend.

On JAX and PyTorch, ``import kerasdrop``, the layers and `MCDropout.predict` must not import TensorFlow, which a JAX
or PyTorch user may not have, and which takes seconds and memory to start. A fresh interpreter per backend checks
it, started from the test run on TensorFlow (the one that `make test` runs whole). (Keras itself imports
TensorFlow, when it is installed, to serialize a model on any backend: ``serialization_lib.serialize_keras_object``
asks whether a value is a ``tf.TensorShape``. So ``get_config``, ``model.save`` and what calls them, like
`kerasdrop.compression.compress`, are left out here.)
`kerasdrop.export_tflite` and `kerasdrop.MCDropout.export` (and ``kerasdrop export``) trace the model with
TensorFlow ops (TensorFlow's stateful random ops for TensorFlow Lite's random builtins, ``tf.while_loop`` for the
served samples), which a JAX or PyTorch model cannot run: they raise a ``ValueError`` naming the backend and saying
what to do (the ``.keras`` file loads on the TensorFlow backend, which exports it), before writing anything.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop import _context, _random, cli
from tests import backend

ROOT = pathlib.Path(__file__).resolve().parents[1]
OTHER_BACKENDS = ("jax", "torch")
NEEDS_TENSORFLOW = r"needs the TensorFlow backend, not '{}'.*KERAS_BACKEND=tensorflow"

# Run with KERAS_BACKEND set; prints, as its last line, the TensorFlow modules loaded after each step (JSON).
SCRIPT = r"""
import json, os, sys, tempfile

def tensorflow_modules():
    return sorted(name for name in sys.modules if name == "tensorflow" or name.startswith("tensorflow."))

loaded = {}
import numpy as np
import keras
import kerasdrop

assert keras.backend.backend() == os.environ["KERAS_BACKEND"], keras.backend.backend()
loaded["import kerasdrop"] = tensorflow_modules()

rng = np.random.default_rng(0)
layers = [
    (kerasdrop.Dropout(0.5, seed=1), (4, 8)),
    (kerasdrop.DropConnectDense(3, 0.5, seed=1), (4, 6)),
    (kerasdrop.Cutout(2, seed=1), (2, 5, 5, 1)),
    (kerasdrop.RNNDropLSTM(3, dropout=0.3, seed=1), (2, 4, 3)),
]
for layer, shape in layers:
    x = rng.normal(size=shape).astype("float32")
    for training in (True, False):
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(layer(x, training=training))))
loaded["calling layers"] = tensorflow_modules()

model = keras.Sequential(
    [
        keras.Input((6,)),
        keras.layers.Dense(8, activation="relu"),
        kerasdrop.Dropout(0.5),
        keras.layers.Dense(3, activation="softmax"),
    ]
)
result = kerasdrop.MCDropout(model, samples=4, seed=0).predict(rng.normal(size=(3, 6)).astype("float32"), verbose=0)
assert result.mean.shape == (3, 3) and result.samples is None
loaded["MCDropout.predict"] = tensorflow_modules()

refusals = {}
folder = tempfile.mkdtemp()
for name, export in (
    ("export_tflite", lambda: kerasdrop.export_tflite(model, os.path.join(folder, "model.tflite"))),
    ("MCDropout.export", lambda: kerasdrop.MCDropout(model, samples=4).export(os.path.join(folder, "served"))),
):
    try:
        export()
    except ValueError as error:
        refusals[name] = str(error)
assert os.listdir(folder) == [], os.listdir(folder)
loaded["refused exports"] = tensorflow_modules()
print(json.dumps({"loaded": loaded, "refusals": refusals}))
"""


@pytest.mark.slow
@pytest.mark.skipif(
    backend.BACKEND != "tensorflow", reason="the run on TensorFlow starts the interpreters on JAX and on PyTorch"
)
@pytest.mark.parametrize("other", OTHER_BACKENDS)
def test_kerasdrop_never_imports_tensorflow_on_another_backend(other):
    """One fresh interpreter on ``other``: import, layers called in training and at test time, MCDropout.predict,
    and the refused TensorFlow exports; TensorFlow is never imported."""
    environment = {**os.environ, "KERAS_BACKEND": other}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    steps = ["import kerasdrop", "calling layers", "MCDropout.predict", "refused exports"]
    assert report["loaded"] == {step: [] for step in steps}, "TensorFlow was imported"
    assert set(report["refusals"]) == {"export_tflite", "MCDropout.export"}
    for message in report["refusals"].values():
        assert_names_the_backend(message, other)


def assert_names_the_backend(message, name):
    assert re.search(NEEDS_TENSORFLOW.format(name), message), message


@pytest.mark.skipif(backend.BACKEND == "tensorflow", reason="on TensorFlow export_tflite converts: test_tflite.py")
def test_export_tflite_on_another_backend_names_it(tmp_path):
    model = keras.Sequential([keras.Input((6,)), kerasdrop.Dropout(0.5)])
    with pytest.raises(ValueError, match=NEEDS_TENSORFLOW.format(backend.BACKEND)):
        kerasdrop.export_tflite(model, tmp_path / "model.tflite", batch_size=1)
    assert list(tmp_path.iterdir()) == []
    # The arguments are still checked first, as on TensorFlow.
    with pytest.raises(TypeError, match=r"argument `batch_size`.*Received: batch_size=2.0"):
        kerasdrop.export_tflite(model, batch_size=2.0)


@pytest.mark.slow
@pytest.mark.skipif(backend.BACKEND == "tensorflow", reason="on TensorFlow it writes the SavedModel: test_mc_export.py")
def test_cli_export_on_another_backend_names_it(tmp_path, capsys):
    model = keras.Sequential([keras.Input((6,)), kerasdrop.Dropout(0.5), keras.layers.Dense(2)])
    model.save(tmp_path / "model.keras")
    assert cli.main(["export", str(tmp_path / "model.keras"), str(tmp_path / "served")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kerasdrop export: error: MCDropout.export")
    assert_names_the_backend(error, backend.BACKEND)
    assert not (tmp_path / "served").exists()


def test_random_draws_are_keras_random_outside_the_tensorflow_lite_export():
    """Every draw of a kerasdrop layer goes through `kerasdrop._random`; outside `export_tflite` (always, on JAX and
    PyTorch) its draws are exactly ``keras.random``'s, with the same seeds."""
    assert not _context.stateful_draws()
    for seed in (3, keras.random.SeedGenerator(3)):
        other = 3 if isinstance(seed, int) else keras.random.SeedGenerator(3)
        pairs = [
            (_random.uniform((4, 5), seed, minval=0.2), keras.random.uniform((4, 5), minval=0.2, seed=other)),
            (_random.normal((4, 5), seed, 1.0, 2.0), keras.random.normal((4, 5), 1.0, 2.0, seed=other)),
            (_random.randint((4, 5), 0, 9, seed), keras.random.randint((4, 5), 0, 9, seed=other)),
        ]
        for ours, theirs in pairs:
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))
