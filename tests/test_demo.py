"""`kerasdrop demo` end to end, with a small budget, writing into a temporary folder."""

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import kerasdrop
from kerasdrop import cli, metrics
from kerasdrop.calibration import SplitConformal, TemperatureScaling
from kerasdrop.datasets import load_digits
from kerasdrop.demo import auroc, halves, out_of_distribution_inputs, run_demo
from tests import utils


@pytest.mark.slow
def test_demo_trains_saves_reloads_samples_and_plots(tmp_path):
    lines = []
    figures = run_demo(
        epochs=15,
        samples=10,
        output_dir=str(tmp_path),
        plot_dir=str(tmp_path / "plots"),
        verbose=0,
        print_fn=lines.append,
    )
    assert (tmp_path / "demo_mlp.keras").exists()
    for path in figures["plots"]:
        with open(path, "rb") as png:
            assert png.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "reliability_diagram.png",
        "uncertainty_histogram.png",
    ]
    assert any("most uncertain" in line for line in lines)
    assert any(line.startswith("deterministic") for line in lines)
    assert any(line.startswith("MC dropout, T=10") for line in lines)
    assert set(figures["auroc"]) == set(out_of_distribution_inputs(np.zeros((1, 64), "float32")))
    # Uniform noise is far from any digit: the model is less sure of it than of the test digits.
    assert figures["entropy"]["uniform noise"] > figures["entropy"]["test digits"]
    assert_figures_recomputed(figures, tmp_path / "demo_mlp.keras", samples=10)


def assert_figures_recomputed(figures, path, samples, seed=0):
    """Every figure the demo printed equals the one recomputed from its saved model with the same seed and number of
    samples: scores with `kerasdrop.metrics`, AUROCs with scikit-learn."""
    (_, _), (x_test, y_test) = load_digits(seed=seed)
    model = keras.saving.load_model(path)
    sampler = kerasdrop.MCDropout(model, samples=samples, seed=seed)
    result = sampler.predict(x_test, verbose=0)
    utils.assert_above_chance(figures["accuracy"], len(y_test), 10)
    assert figures["accuracy"] == metrics.classification_scores(result.mean, y_test)["accuracy"]
    assert figures["scores"][f"MC dropout, T={samples}"] == metrics.classification_scores(result.mean, y_test)
    kerasdrop.set_mc(model, False)
    assert figures["scores"]["deterministic"] == metrics.classification_scores(model.predict(x_test, verbose=0), y_test)
    entropy = {"test digits": result.predictive_entropy()}
    information = {"test digits": result.mutual_information()}
    for name, inputs in out_of_distribution_inputs(x_test, seed=seed).items():
        other = sampler.predict(inputs, verbose=0)
        entropy[name], information[name] = other.predictive_entropy(), other.mutual_information()
        truth = np.r_[np.zeros(len(x_test)), np.ones(len(inputs))]
        assert figures["auroc"][name] == roc_auc_score(truth, np.r_[entropy["test digits"], entropy[name]])
    assert figures["entropy"] == {name: float(values.mean()) for name, values in entropy.items()}
    assert figures["mutual_information"] == {name: float(values.mean()) for name, values in information.items()}
    assert figures["mean_entropy"] == figures["entropy"]["test digits"]
    assert_calibration_recomputed(figures, sampler, x_test, y_test, samples, seed)


def assert_calibration_recomputed(figures, sampler, x_test, y_test, samples, seed, alpha=0.1):
    """The temperature-scaled row and the conformal sets, refitted on the same halves of the test digits; the sets
    cover at least 1 - alpha of the digits, less 3 binomial standard errors."""
    kept = sampler.predict(x_test, verbose=0, keep_samples=True)
    calibrated, temperatures = np.empty(kept.mean.shape), []
    covered = {"lac": 0, "aps": 0}
    for fitted_on, applied_to in halves(len(y_test), seed):
        scaling = TemperatureScaling().fit(kept.samples[:, fitted_on], y_test[fitted_on])
        calibrated[applied_to] = scaling.transform(kept.samples[:, applied_to]).mean
        temperatures.append(scaling.temperature)
        for score in covered:
            sets = SplitConformal(alpha, score).fit(kept.samples[:, fitted_on], y_test[fitted_on])
            covered[score] += sets.predict_sets(kept.samples[:, applied_to])[
                np.arange(len(applied_to)), y_test[applied_to]
            ].sum()
    assert figures["temperatures"] == temperatures
    assert figures["scores"]["MC + temperature"] == metrics.classification_scores(calibrated, y_test)
    bound = 1 - alpha - 3 * np.sqrt(alpha * (1 - alpha) / len(y_test))
    for score, count in covered.items():
        assert figures["conformal"][score]["coverage"] == count / len(y_test) >= bound


def test_out_of_distribution_inputs_and_auroc():
    x = np.arange(2 * 64, dtype="float32").reshape(2, 64) / 128
    ood = out_of_distribution_inputs(x)
    np.testing.assert_array_equal(ood["rotated digits"][0].reshape(8, 8), np.rot90(x[0].reshape(8, 8)))
    np.testing.assert_array_equal(ood["upside-down digits"][1].reshape(8, 8), x[1].reshape(8, 8)[::-1])
    np.testing.assert_array_equal(np.sort(ood["shuffled pixels"], axis=1), np.sort(x, axis=1))
    for values in ood.values():
        assert values.shape == x.shape and values.dtype == np.float32
    assert auroc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert auroc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert auroc([0.1, 0.3], [0.2, 0.4]) == 0.75


@pytest.mark.slow
def test_cli_demo_and_bad_arguments(tmp_path, capsys):
    arguments = ["demo", "--epochs", "2", "--samples", "3", "--output-dir", str(tmp_path)]
    assert cli.main([*arguments, "--plot-dir", str(tmp_path / "figures")]) == 0
    printed = capsys.readouterr().out
    assert "MC dropout, T=3" in printed
    assert "epoch" in printed  # the training progress bar
    assert (tmp_path / "figures" / "reliability_diagram.png").exists()
    assert cli.main(["demo", "--epochs", "0", "--output-dir", str(tmp_path)]) == 2
    assert "`epochs`" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])
