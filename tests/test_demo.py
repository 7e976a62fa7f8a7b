"""`kerasdrop demo` end to end, with a small budget, writing into a temporary folder."""

import numpy as np
import pytest

from kerasdrop import cli
from kerasdrop.demo import run_demo


def test_demo_trains_saves_reloads_and_samples(tmp_path):
    lines = []
    figures = run_demo(epochs=15, samples=10, output_dir=str(tmp_path), print_fn=lines.append)
    assert (tmp_path / "demo_mlp.keras").exists()
    assert figures["accuracy"] > 0.85  # 10 classes: chance is 0.1; a working MLP reaches > 0.9 on digits
    assert 0 < figures["mean_entropy"] < np.log(10)
    assert any("most uncertain" in line for line in lines)


def test_cli_demo_and_bad_arguments(tmp_path, capsys):
    assert cli.main(["demo", "--epochs", "2", "--samples", "3", "--output-dir", str(tmp_path)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert cli.main(["demo", "--epochs", "0", "--output-dir", str(tmp_path)]) == 2
    assert "`epochs`" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["no-such-command"])
