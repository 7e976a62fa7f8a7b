"""Smoke test of examples/compression_digits.py with its tiny --quick budget, writing into a temporary folder."""

import json

import keras
import numpy as np
import pytest

from tests import utils

# An example run end to end: the full tier (`make test-all`).
pytestmark = pytest.mark.slow

MODELS = (
    "Dense + Dropout 0.3",
    "SparseVariationalDense (KL x0.03), sparsify",
    "SparseVariationalDense (KL x0.03), compress",
    "SparseVariationalDense (KL x1), compress",
    "SparseVariationalDense from scratch (KL x1), sparsify",
    "SparseVariationalDense from scratch (KL x1), compress",
    "StructuredBayesianPruning from scratch (KL x1), compress",
)

TEST_IMAGES = 450  # the digits' test split


def load_script():
    return utils.load_example("compression_digits")


def test_quick_run_trains_compresses_saves_and_reports(tmp_path, capsys):
    results = load_script().main(["--quick", "--output-dir", str(tmp_path)])
    printed = capsys.readouterr().out
    names = [row["model"] for row in results["summary"]]
    assert names == list(MODELS)
    assert all(name in printed for name in names) and printed.count("Goal for") == 5
    dense, sparse, compact, full_kl, scratch_plain, scratch, sbp = results["summary"]
    assert dense["params"] == dense["nonzero"] == 64 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10
    assert sparse["params"] == dense["params"] and sparse["nonzero"] < dense["params"]
    assert compact["params"] <= sparse["params"] and compact["nonzero"] <= sparse["nonzero"]
    assert full_kl["nonzero"] < dense["params"] and max(scratch["nonzero"], scratch_plain["nonzero"]) < dense["params"]
    assert sbp["params"] <= dense["params"] and sbp["fewer_params"] == dense["params"] / sbp["params"]
    for row in results["summary"]:  # every plain model, compressed or not, learned the digits
        utils.assert_above_chance(row["accuracy"], TEST_IMAGES, 10)
    assert json.loads((tmp_path / "compression_digits.json").read_text())["goal_met"].keys() == {
        names[1],
        names[2],
        names[4],
        names[5],
        names[6],
    }
    assert (tmp_path / "compression_digits.md").read_text().startswith("| model |")
    # The plain files load with no custom objects, hold no kerasdrop layer, and match the trained models.
    x = np.random.default_rng(0).uniform(size=(20, 64)).astype("float32")
    for trained, plain in (
        ("sparse_variational", "sparse_compact"),
        ("scratch", "scratch_compact"),
        ("sbp", "sbp_compact"),
    ):
        source = keras.saving.load_model(tmp_path / f"compression_digits_{trained}.keras")
        result = keras.saving.load_model(tmp_path / f"compression_digits_{plain}.keras", custom_objects={})
        assert "kerasdrop" not in json.dumps(result.get_config())
        np.testing.assert_allclose(result.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-5)
