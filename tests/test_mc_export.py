"""MCDropout.export: a SavedModel that serves the Monte Carlo moments, loaded where kerasdrop cannot be imported."""

import subprocess
import sys

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop import cli
from tests import _mc_models as mcm
from tests import backend, utils

tensorflow_only = backend.tensorflow_only("MCDropout.export (it writes a TensorFlow SavedModel)")

# Run in a fresh interpreter: kerasdrop is made unimportable before anything else, then the SavedModel is served
# through its `serve` endpoint and its `serving_default` signature, twice each.
SERVE = """
import sys
sys.modules["kerasdrop"] = None
try:
    import kerasdrop
except ImportError:
    pass
else:
    raise SystemExit("kerasdrop was importable")
import numpy as np
import tensorflow as tf

path, x_path, out_path = sys.argv[1:]
loaded = tf.saved_model.load(path)
x = tf.constant(np.load(x_path))
signature = loaded.signatures["serving_default"]
(name,) = signature.structured_input_signature[1]
calls = [loaded.serve(x), loaded.serve(x), signature(**{name: x})]
np.savez(out_path, **{f"{i}/{key}": value.numpy() for i, call in enumerate(calls) for key, value in call.items()})
"""


def serve_in_fresh_process(path, x, tmp_path):
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "served.npz"
    subprocess.run([sys.executable, "-c", SERVE, str(path), str(tmp_path / "x.npy"), str(out)], check=True)
    with np.load(out) as data:
        calls = [{} for _ in range(3)]
        for key in data.files:
            index, name = key.split("/")
            calls[int(index)][name] = data[key]
    return calls


@pytest.mark.slow
@tensorflow_only
def test_exported_model_serves_what_predict_gives(tmp_path):
    model = mcm.classifier(keras.layers.Dropout(0.5))
    x = np.random.default_rng(0).uniform(0, 1, (5, 8)).astype("float32")
    row_bytes = kerasdrop.MCDropout(model).rows_per_call(x)[0]
    # A budget of 7 samples of the 5 inputs a call: 50 samples are drawn in chunks of 7, 7, ..., 1.
    options = {"samples": 50, "seed": 5, "memory_budget_mb": 35 * row_bytes / 2**20}
    model(x)  # a first call: what a call itself records (Keras's `_called`) is recorded already
    attributes = utils.layer_state(model)
    kerasdrop.MCDropout(model, **options).export(tmp_path / "served")
    assert utils.layer_state(model) == attributes  # nothing added, removed or rebound on the model or its layers
    expected = kerasdrop.MCDropout(model, **options).predict(x, verbose=0)
    first, second, by_signature = serve_in_fresh_process(tmp_path / "served", x, tmp_path)
    assert set(first) == {"mean", "variance", "predictive_entropy", "expected_entropy", "mutual_information"}
    # The first call draws from the same seed state, in the same chunks, as predict: the same samples.
    np.testing.assert_allclose(first["mean"], expected.mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(first["variance"], expected.variance, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(first["predictive_entropy"], expected.predictive_entropy(), rtol=1e-5)
    np.testing.assert_allclose(first["expected_entropy"], expected.expected_entropy(), rtol=1e-5)
    np.testing.assert_allclose(first["mutual_information"], expected.mutual_information(), rtol=1e-4, atol=1e-7)
    # Later calls draw new samples: different, and statistically the same.
    for later in (second, by_signature):
        assert not np.array_equal(later["mean"], first["mean"])
        mcm.assert_means_agree(later["mean"], first["mean"], 50, 50, later["variance"], first["variance"])


@pytest.mark.slow
@tensorflow_only
def test_export_of_a_regression_and_a_multi_output_model(tmp_path):
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(8, activation="relu")(inputs))
    heads = {"label": keras.layers.Dense(3)(hidden), "value": keras.layers.Dense(1)(hidden)}
    model = keras.Model(inputs, heads)
    options = {"samples": 30, "seed": 1, "output_type": {"label": "logits", "value": "regression"}}
    kerasdrop.MCDropout(model, **options).export(tmp_path / "multi")
    x = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")
    served = serve_in_fresh_process(tmp_path / "multi", x, tmp_path)[0]
    expected = kerasdrop.MCDropout(model, **options).predict(x, verbose=0)
    assert set(served) == {"value_mean", "value_variance"} | {
        f"label_{name}" for name in ("mean", "variance", "predictive_entropy", "expected_entropy", "mutual_information")
    }
    np.testing.assert_allclose(served["label_mean"], expected["label"].mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(served["label_mean"].sum(-1), 1.0, rtol=1e-5)  # logits served as probabilities
    np.testing.assert_allclose(served["value_variance"], expected["value"].variance, rtol=1e-4, atol=1e-8)


@tensorflow_only
def test_export_refuses_a_folder_in_use(tmp_path):
    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=3)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("keep me")
    with pytest.raises(ValueError, match="`path`.*empty one.*taken"):
        sampler.export(tmp_path / "taken")
    with pytest.raises(TypeError, match="`path`"):
        sampler.export(3)
    assert (tmp_path / "taken" / "file.txt").read_text() == "keep me"


@pytest.mark.slow
@tensorflow_only
def test_cli_export_and_predict_output_type(tmp_path, capsys):
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dropout(0.5)(inputs)))
    model.save(tmp_path / "logits.keras")
    x = np.random.default_rng(2).normal(size=(4, 6)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    arguments = ["--samples", "20", "--seed", "3", "--output-type", "logits"]
    assert cli.main(["export", str(tmp_path / "logits.keras"), str(tmp_path / "served"), *arguments]) == 0
    assert "20 Monte Carlo samples" in capsys.readouterr().out
    output = tmp_path / "out.npz"
    predict = ["predict", str(tmp_path / "logits.keras"), str(tmp_path / "x.npy"), "--output", str(output), "--quiet"]
    assert cli.main([*predict, *arguments]) == 0
    served = serve_in_fresh_process(tmp_path / "served", x, tmp_path)[0]
    with np.load(output) as predicted:
        assert "mutual_information" in predicted.files
        np.testing.assert_allclose(served["mean"], predicted["mean"], rtol=1e-5, atol=1e-7)
    assert cli.main(["export", str(tmp_path / "logits.keras"), str(tmp_path / "served")]) == 2
    assert "empty one" in capsys.readouterr().err


@pytest.mark.slow
@tensorflow_only
def test_export_of_a_sequence_classifier(tmp_path):
    # Probabilities per time step, (N, T, C): entropies per input and step.
    inputs = keras.Input((5, 4))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(8, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    options = {"samples": 20, "seed": 2}
    kerasdrop.MCDropout(model, **options).export(tmp_path / "sequence")
    x = np.random.default_rng(3).normal(size=(2, 5, 4)).astype("float32")
    served = serve_in_fresh_process(tmp_path / "sequence", x, tmp_path)[0]
    expected = kerasdrop.MCDropout(model, **options).predict(x, verbose=0)
    assert served["predictive_entropy"].shape == (2, 5)
    np.testing.assert_allclose(served["expected_entropy"], expected.expected_entropy(), rtol=1e-5)
    np.testing.assert_allclose(served["mean"], expected.mean, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_cli_reads_several_inputs_and_output_types(tmp_path):
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dropout(0.5)(keras.layers.Concatenate()([a, b]))
    heads = {"value": keras.layers.Dense(1)(hidden), "label": keras.layers.Dense(3)(hidden)}
    keras.Model({"a": a, "b": b}, heads).save(tmp_path / "two.keras")
    rng = np.random.default_rng(4)
    np.savez(tmp_path / "x.npz", a=rng.normal(size=(5, 3)), b=rng.normal(size=(5, 2)))
    output = tmp_path / "out.npz"
    predict = ["predict", str(tmp_path / "two.keras"), str(tmp_path / "x.npz"), "--output", str(output), "--quiet"]
    assert cli.main([*predict, "--samples", "10", "--output-type", "logits", "regression"]) == 0  # label, value
    with np.load(output) as data:
        np.testing.assert_allclose(data["label_mean"].sum(-1), 1.0, rtol=1e-5)
        assert "label_mutual_information" in data.files and "value_mutual_information" not in data.files
        assert data["value_mean"].shape == (5, 1)


@pytest.mark.slow
@tensorflow_only
def test_export_of_a_dict_input_model_takes_a_dict(tmp_path):
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    hidden = keras.layers.Dropout(0.5)(keras.layers.Concatenate()([a, b]))
    model = keras.Model({"b": b, "a": a}, keras.layers.Dense(2, activation="softmax")(hidden))
    sampler = kerasdrop.MCDropout(model, samples=10, seed=1)
    with pytest.raises(ValueError, match="`path`"):
        sampler.export("")
    import tensorflow as tf

    with pytest.raises(ValueError, match="`input_signature`.*input shapes"):
        sampler.export(tmp_path / "bad", input_signature=[tf.TensorSpec((None, 5)), tf.TensorSpec((None, 2))])
    sampler.export(tmp_path / "dict")
    served = tf.saved_model.load(str(tmp_path / "dict"))
    x = {"a": np.ones((4, 3), "float32"), "b": np.zeros((4, 2), "float32")}
    result = served.serve({key: tf.constant(value) for key, value in x.items()})
    expected = kerasdrop.MCDropout(model, samples=10, seed=1).predict(x, verbose=0)
    np.testing.assert_allclose(result["mean"].numpy(), expected.mean, rtol=1e-5, atol=1e-7)


@pytest.mark.skipif(backend.BACKEND == "tensorflow", reason="the export itself is tested above on TensorFlow")
def test_export_on_another_backend_says_it_needs_tensorflow(tmp_path):
    sampler = kerasdrop.MCDropout(mcm.classifier(keras.layers.Dropout(0.5)), samples=3)
    with pytest.raises(ValueError, match=f"needs the TensorFlow backend, not '{backend.BACKEND}'"):
        sampler.export(tmp_path / "served")
    assert not (tmp_path / "served").exists()
