"""`kerasdrop predict MODEL.keras INPUT.npy --samples N --output OUT.npz`."""

import re

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop import cli, metrics

# The command line on saved model files: the full tier (`make test-all`).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A saved classifier (kerasdrop and Keras dropout), a regression model, one without dropout, and inputs."""
    folder = tmp_path_factory.mktemp("cli")
    inputs = keras.Input((6,))
    hidden = kerasdrop.Dropout(0.5)(keras.layers.Dense(8, activation="relu")(inputs))
    classifier = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Dropout(0.3)(hidden)))
    regression = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    paths = {}
    for name, model in (("classifier", classifier), ("regression", regression), ("plain", plain)):
        paths[name] = folder / f"{name}.keras"
        model.save(paths[name])
    paths["x"] = folder / "x.npy"
    np.save(paths["x"], np.random.default_rng(0).uniform(0, 1, (12, 6)).astype("float32"))
    paths["bad_x"] = folder / "bad_x.npy"
    np.save(paths["bad_x"], np.zeros((12, 5), "float32"))
    return paths


def run(*arguments):
    return cli.main(["predict", *map(str, arguments)])


def test_predict_writes_moments_and_entropies_with_a_progress_bar(files, tmp_path, capsys):
    output = tmp_path / "out" / "result.npz"
    assert run(files["classifier"], files["x"], "--samples", 20, "--output", output, "--seed", 1) == 0
    printed = capsys.readouterr().out
    assert "12/12" in printed and str(output) in printed
    with np.load(output) as data:
        assert set(data.files) == {
            "mean",
            "variance",
            "std",
            "predictive_entropy",
            "expected_entropy",
            "mutual_information",
        }
        assert data["mean"].shape == (12, 3) and data["predictive_entropy"].shape == (12,)
        np.testing.assert_allclose(data["std"], np.sqrt(data["variance"]))
        np.testing.assert_allclose(data["predictive_entropy"], metrics.predictive_entropy(data["mean"]), rtol=1e-4)
        first = data["mean"]
    # The same seed gives the same result, and the same as MCDropout in Python on the reloaded model.
    assert (
        run(files["classifier"], files["x"], "--samples", 20, "--output", tmp_path / "again", "--seed", 1, "--quiet")
        == 0
    )
    assert capsys.readouterr().out.count("12/12") == 0
    with np.load(tmp_path / "again.npz") as data:
        np.testing.assert_array_equal(data["mean"], first)
    model = keras.saving.load_model(files["classifier"])
    expected = kerasdrop.MCDropout(model, samples=20, seed=1).predict(np.load(files["x"]), verbose=0).mean
    np.testing.assert_allclose(first, expected, rtol=1e-6)


def test_predict_regression_output_and_kept_samples(files, tmp_path):
    output = tmp_path / "regression.npz"
    assert run(files["regression"], files["x"], "--samples", 7, "--output", output, "--keep-samples", "--quiet") == 0
    with np.load(output) as data:
        assert set(data.files) == {"mean", "variance", "std", "samples"}  # no entropies without probabilities
        assert data["samples"].shape == (7, 12, 2)
        np.testing.assert_allclose(data["mean"], data["samples"].mean(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "model, inputs, extra, message",
    [
        ("missing.keras", "x", [], "model file not found"),
        ("classifier", "missing.npy", [], "input file not found"),
        ("classifier", "bad_x", [], r"expects arrays of shape \(None, 6\)"),
        ("plain", "x", [], "found no noise layer"),
        ("classifier", "x", ["--samples", "0"], "`samples`"),
    ],
)
def test_predict_errors(files, tmp_path, capsys, model, inputs, extra, message):
    model_path = files.get(model, tmp_path / model)
    input_path = files.get(inputs, tmp_path / inputs)
    assert run(model_path, input_path, "--output", tmp_path / "out.npz", "--quiet", *extra) == 2
    error = capsys.readouterr().err
    assert error.startswith("kerasdrop predict: error:")
    assert re.search(message, error), error
    assert not (tmp_path / "out.npz").exists()


def test_predict_needs_an_output(files):
    with pytest.raises(SystemExit):
        cli.main(["predict", str(files["classifier"]), str(files["x"])])
