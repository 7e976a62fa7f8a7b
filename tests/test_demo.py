"""`kerasdrop demo` end to end, with a small budget, writing into a temporary folder."""

import numpy as np
import pytest

from kerasdrop import cli
from kerasdrop.demo import auroc, out_of_distribution_inputs, run_demo


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
    assert figures["accuracy"] > 0.85  # 10 classes: chance is 0.1; a working MLP reaches > 0.9 on digits
    for row in figures["scores"].values():
        assert set(row) == {"accuracy", "nll", "ece", "brier"}
        assert 0 < row["nll"] < np.log(10) and 0 <= row["ece"] < 0.2 and 0 < row["brier"] < 0.5
    assert 0 < figures["mean_entropy"] < np.log(10)
    # Uniform noise is far from any digit: the model is less sure of it than of the test digits.
    assert figures["entropy"]["uniform noise"] > figures["entropy"]["test digits"]
    assert any("most uncertain" in line for line in lines)
    assert any(line.startswith("deterministic") for line in lines)
    assert any(line.startswith("MC dropout, T=10") for line in lines)
    assert set(figures["auroc"]) == set(out_of_distribution_inputs(np.zeros((1, 64), "float32")))
    assert all(0.0 <= value <= 1.0 for value in figures["auroc"].values())
    assert figures["auroc"]["uniform noise"] > 0.5


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
