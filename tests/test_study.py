"""The study script runs end to end with a tiny budget and writes what the README shows."""

import json

import pytest

from tests import utils

# A study run end to end: the full tier (`make test-all`).
pytestmark = pytest.mark.slow

TEST_IMAGES = 450  # the digits' test split


@pytest.fixture(scope="module")
def study():
    return utils.load_example("study_digits")


def test_quick_study_writes_tables_and_plots(study, tmp_path):
    results = study.main(["--quick", "--output-dir", str(tmp_path)])
    assert set(results["variants"]) == set(study.dense_variants(100))
    assert set(results["rates"]) == {"0.0", "0.5"}
    assert set(results["mc"]) == {
        "deterministic",
        "deterministic + temperature",
        "MC (3 samples)",
        "MC (3 samples) + temperature",
    }
    assert results["mc"]["deterministic"]["temperature"] == {"mean": 1.0, "std": 0.0}
    for row in [*results["variants"].values(), *results["rates"].values()]:
        assert row["std"] == 0.0  # one seed
        utils.assert_above_chance(1.0 - row["mean"], TEST_IMAGES, 10)
    written = {path.name for path in tmp_path.iterdir()}
    assert written == {"variants.png", "rates.png", "scaling.png", "results.json", "results.md"}
    for name in ("variants.png", "rates.png", "scaling.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (tmp_path / "results.md").read_text()
    assert all(f"| {name} |" in table for name in results["variants"])

    # --replot redraws the same tables from results.json without training.
    (tmp_path / "results.md").unlink()
    replotted = study.main(["--replot", "--output-dir", str(tmp_path)])
    assert replotted == json.loads((tmp_path / "results.json").read_text())
    assert (tmp_path / "results.md").read_text() == table

    # --only mc redoes the Monte Carlo part and keeps the others from results.json.
    redone = study.main(["--quick", "--only", "mc", "--output-dir", str(tmp_path)])
    assert redone["variants"] == replotted["variants"] and redone["rates"] == replotted["rates"]
    assert set(redone["mc"]) == set(results["mc"])
    with pytest.raises(SystemExit, match=r"--only: .*was run with seeds \[0\], not \[0, 1, 2, 3, 4\]"):
        study.main(["--only", "mc", "--output-dir", str(tmp_path)])  # refused before any training
