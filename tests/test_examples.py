"""Smoke tests of the example scripts (examples/*_variants.py, mc_uncertainty.py) with their tiny --quick budget.

Each script's ``main(argv)`` runs on a few of its variants, saving into ``tmp_path``; every variant of every script
is also built and called once (cheap), so a builder that breaks is caught even when it is not in the smoke run.
"""

import math
import pathlib

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop import metrics
from kerasdrop.demo import auroc, cross_fitted_calibration
from tests import utils

# Example scripts run end to end: the full tier (`make test-all`).
pytestmark = pytest.mark.slow

EXAMPLES = utils.EXAMPLES_DIR
# The variants each smoke run trains: the most involved layers (wrappers, cells in keras.layers.RNN).
SMOKE = {
    "dense_variants": ("drop_connect_dense_0_3", "concrete_dropout"),
    "conv_variants": ("max_pooling_dropout2d_0_2", "concrete_spatial_dropout2d"),
    "recurrent_variants": ("rnn_variational_lstm_cell_semeniuta_gru",),
}
SCRIPTS = (*SMOKE, "mc_uncertainty")


load_script = utils.load_example


@pytest.fixture(scope="module")
def common():
    load_script("dense_variants")  # puts examples/ on sys.path
    import _common

    return _common


def check_results(output, tmp_path, names, common):
    """Files saved, reloaded predictions equal to the trained model's, accuracies consistent with the predictions."""
    assert [common.slug(row["variant"]) for row in output["rows"]] == list(names)
    for row, result in zip(output["rows"], output["results"], strict=True):
        data = output["data"][result.variant.layout]
        assert len(data.x_test) == common.QUICK_TEST_SIZE and len(data.x_train) == common.QUICK_TRAIN_SIZE
        path = tmp_path / row["file"]
        assert path.is_file() and path.stat().st_size > 0
        assert row["reload_ok"] and row["reload_gap"] <= common.RELOAD_ATOL
        probs = keras.saving.load_model(path).predict(data.x_test, verbose=0)
        np.testing.assert_allclose(probs, result.probs, rtol=0, atol=common.RELOAD_ATOL)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
        assert result.accuracy == np.mean(probs.argmax(-1) == data.y_test)  # the reloaded model's, exactly


@pytest.mark.parametrize("script", SMOKE)
def test_quick_run_trains_saves_reloads_and_prints_a_table(script, tmp_path, capsys, common):
    names = SMOKE[script]
    output = load_script(script).main(["--quick", "--output-dir", str(tmp_path), "--only", *names])
    printed = capsys.readouterr().out
    check_results(output, tmp_path, names, common)
    assert [row["accuracy"] for row in output["rows"]] == [result.accuracy for result in output["results"]]
    assert "| variant" in printed and printed.count("| ok ") == len(names)
    assert all(row["variant"] in printed for row in output["rows"])


def test_mc_uncertainty_quick_run(tmp_path, capsys, common):
    """The table's scores, entropies and AUROCs are those of the models' predictions, recomputed here with the same
    seed and number of samples: the deterministic test predictions, and MCDropout on the reloaded model."""
    names = ("mlp_kerasdrop_dropout_0_3", "cnn_spatial_dropout2d_0_2")
    plots = tmp_path / "plots"
    script, seed = load_script("mc_uncertainty"), 3
    samples = min(20, script.QUICK_SAMPLES)  # what --quick samples
    argv = ["--quick", "--output-dir", str(tmp_path), "--plot-dir", str(plots), "--samples", "20", "--seed", str(seed)]
    output = script.main([*argv, "--only", *names])
    check_results(output, tmp_path, names, common)
    for row, result in zip(output["rows"], output["results"], strict=True):
        data = output["data"][result.variant.layout]
        assert row["reload_ok"] and row["mc_reload_gap"] <= common.RELOAD_ATOL
        assert row["deterministic"] == metrics.classification_scores(result.probs, data.y_test)
        sampler = kerasdrop.MCDropout(result.reloaded, samples=samples, seed=seed)
        predictions = {"test": sampler.predict(data.x_test, verbose=0)}
        assert row["mc"] == metrics.classification_scores(predictions["test"].mean, data.y_test)
        kept = sampler.predict(data.x_test, verbose=0, keep_samples=True).samples
        calibrated, temperatures, sets = cross_fitted_calibration(kept, data.y_test, seed, script.ALPHA)
        assert row["mc_temperature"] == metrics.classification_scores(calibrated, data.y_test)
        assert row["temperatures"] == temperatures
        assert row["aps_coverage"] == sets["aps"][np.arange(len(data.y_test)), data.y_test].mean()
        for kind, images in script.unlike_training_data(data.test_images, seed).items():
            predictions[kind] = sampler.predict(common.as_layout(images, result.variant.layout), verbose=0)
        entropy = {kind: prediction.predictive_entropy() for kind, prediction in predictions.items()}
        assert row["mean_entropy"] == {kind: float(values.mean()) for kind, values in entropy.items()}
        assert row["auroc_noise"] == auroc(entropy["test"], entropy["noise"])
        assert row["auroc_rotated"] == auroc(entropy["test"], entropy["rotated"])
        assert all(pathlib.Path(path).read_bytes().startswith(b"\x89PNG") for path in row["plots"])
    # The deterministic scores are those of the trained model's test predictions.
    result = output["results"][0]
    assert output["rows"][0]["deterministic"]["accuracy"] == pytest.approx(result.accuracy)
    assert "MC reload" in capsys.readouterr().out


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_variant_builds_and_runs(script, common):
    """Each builder gives a model whose training and test outputs are probability rows; file names are distinct."""
    module = load_script(script)
    slugs = [common.slug(variant.name) for variant in module.VARIANTS]
    assert len(set(slugs)) == len(slugs)
    images = np.random.default_rng(0).random((4, 8, 8, 1), dtype="float32")
    for variant in module.VARIANTS:
        x = common.as_layout(images, variant.layout)
        model = variant.build(common.Task(x.shape[1:], 10, 100, 0))
        for training in (True, False):
            probs = keras.ops.convert_to_numpy(model(x, training=training))
            assert probs.shape == (4, 10) and np.all(probs >= 0), variant.name
            np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5, err_msg=variant.name)


@pytest.mark.parametrize(
    "script, dataset, variant, shape, input_shape",
    [
        ("conv_variants", "cifar10", "drop_block2d_0_2_3x3_blocks", (32, 32, 3), (32, 32, 3)),
        ("recurrent_variants", "mnist", "semeniuta_gru_0_25", (28, 28, 1), (28, 28)),
    ],
)
def test_keras_datasets_run_through_the_same_loop(
    script, dataset, variant, shape, input_shape, tmp_path, monkeypatch, common
):
    """--dataset mnist|cifar10 with stand-in images of the real shapes (nothing is downloaded)."""
    rng = np.random.default_rng(0)

    def fake_dataset(name):
        assert name == dataset
        return tuple((rng.random((n, *shape), dtype="float32"), rng.integers(0, 10, n)) for n in (300, 200))

    monkeypatch.setattr("kerasdrop.datasets.load_keras_dataset", fake_dataset)
    argv = ["--quick", "--dataset", dataset, "--output-dir", str(tmp_path), "--only", variant]
    output = load_script(script).main(argv, print_fn=lambda *_: None)
    check_results(output, tmp_path, [variant], common)
    (data,) = output["data"].values()
    assert data.test_images.shape[1:] == shape and data.x_train.shape[1:] == input_shape
    assert output["results"][0].model.input_shape == (None, *input_shape)


def test_layouts_of_keras_datasets(common):
    """MNIST and CIFAR-10 images become the inputs each family expects (as for the digits)."""
    for shape, sequence in (((5, 28, 28, 1), (5, 28, 28)), ((5, 32, 32, 3), (5, 32, 96)), ((5, 8, 8, 1), (5, 8, 8))):
        images = np.arange(math.prod(shape), dtype="float32").reshape(shape)
        assert common.as_layout(images, "image").shape == shape
        np.testing.assert_array_equal(common.as_layout(images, "flat"), images.reshape(5, -1))
        np.testing.assert_array_equal(common.as_layout(images, "sequence"), images.reshape(sequence))
        # A sequence step is one image row, all its pixels and channels.
        np.testing.assert_array_equal(common.as_layout(images, "sequence")[:, 2], images[:, 2].reshape(5, -1))
    with pytest.raises(ValueError, match="layout"):
        common.as_layout(images, "video")


def test_arguments_are_checked(common):
    variants = load_script("dense_variants").VARIANTS
    with pytest.raises(SystemExit, match="Unknown variant"):
        common.select(variants, ["dropout_0_9"])
    assert [variant.name for variant in common.select(variants, ["Dropout 0.3", "dropout_0_3"])] == ["Dropout 0.3"]
    for argv in (["--epochs", "0"], ["--learning-rate", "-1"], ["--dataset", "imagenet"], ["--train-limit", "0"]):
        with pytest.raises(SystemExit):
            common.parse_args("test", argv)
    args = common.parse_args("test", ["--quick", "--epochs", "50", "--train-limit", "100"])
    assert args.epochs == 1 and args.train_limit == 100
    data = common.load_data(args, ["flat", "sequence"])
    assert len(data["flat"].x_train) == 100 and data["sequence"].x_train.shape == (100, 8, 8)
    np.testing.assert_array_equal(data["flat"].y_train, data["sequence"].y_train)
    assert data["flat"].classes == 10 and set(np.unique(data["flat"].y_test)) <= set(range(10))
