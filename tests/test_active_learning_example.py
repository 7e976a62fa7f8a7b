"""The active-learning example runs end to end with a tiny budget and writes what the README shows."""

import json
import math
import os
import tempfile

import numpy as np
import pytest

from kerasdrop.datasets import load_digits
from tests import utils

# An example run end to end: the full tier (`make test-all`).
pytestmark = pytest.mark.slow

TEST_IMAGES = 450  # the digits' test split
TRAIN_IMAGES = 1347  # the digits' training split


@pytest.fixture(scope="module")
def example():
    return utils.load_example("active_learning_digits")


@pytest.fixture(scope="module")
def quick_run(example, tmp_path_factory):
    output = tmp_path_factory.mktemp("active_learning")
    return example.main(["--quick", "--output-dir", str(output)]), output


@pytest.fixture(scope="module")
def repeated_run(example, tmp_path_factory):
    """The results, their folder, and the size of every pool sampled."""
    output = tmp_path_factory.mktemp("active_learning_repeated")
    strategies = ["bald", "batch_bald", "random"]
    argv = ["--quick", "--pool", "repeated", "--strategies", *strategies, "--output-dir", str(output)]
    sizes, sample = [], example.Learner.sample

    def recording(learner, x):
        sizes.append(len(x))
        return sample(learner, x)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(example.Learner, "sample", recording)
        results = example.main(argv)
    return results, output, sizes


def test_quick_run_labels_new_digits_each_round_for_every_strategy(example, quick_run):
    results, _ = quick_run
    assert results["labels"] == [20, 30, 40]
    assert results["pool"] == "distinct" and results["pool_size"] == TRAIN_IMAGES - 20
    assert set(results["runs"]) == set(example.STRATEGIES)
    (_, y_train), _ = load_digits(seed=0)
    for runs in results["runs"].values():
        (run,) = runs  # one seed
        labelled = run["labelled"]
        assert len(labelled) == 40 and len(set(labelled)) == 40, "a digit was labelled twice"
        assert np.bincount(y_train[labelled[:20]], minlength=10).tolist() == [2] * 10
        assert len(run["accuracy"]) == 3
        for accuracy in run["accuracy"]:
            assert accuracy * TEST_IMAGES == pytest.approx(round(accuracy * TEST_IMAGES), abs=1e-6)
        utils.assert_above_chance(run["accuracy"][-1], TEST_IMAGES, 10)


def test_the_same_seed_labels_the_same_digits(example, quick_run, tmp_path):
    results, _ = quick_run
    again = example.main(["--quick", "--strategies", "bald", "batch_bald", "--output-dir", str(tmp_path)])
    for strategy in ("bald", "batch_bald"):
        assert again["runs"][strategy] == results["runs"][strategy]


def test_outputs_and_replot(example, quick_run):
    results, output = quick_run
    assert {path.name for path in output.iterdir()} == {"results.json", "results.md", "accuracy.png"}
    assert (output / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (output / "results.md").read_text()
    for strategy in example.STRATEGIES:
        accuracy = results["runs"][strategy][0]["accuracy"]
        # The table's cell is the run's accuracy at the last round (one seed: standard deviation 0).
        assert f"| {example.LABELS[strategy]} | {100 * accuracy[-1]:.1f} ± 0.0 |" in table
    assert json.loads((output / "results.json").read_text()) == results
    (output / "results.md").unlink()
    assert example.main(["--replot", "--output-dir", str(output)]) == results
    assert (output / "results.md").read_text() == table


def test_labels_to_reach_and_summary(example):
    counts = [20, 30, 40, 50]
    assert example.labels_to_reach([0.5, 0.86, 0.84, 0.91], counts, 0.85) == 30
    assert example.labels_to_reach([0.5, 0.6, 0.7, 0.8], counts, 0.85) is None
    assert example.checkpoints([20, 50, 100, 110]) == [50, 100, 110]
    assert example.checkpoints([20, 30, 40]) == [40]
    results = {
        "labels": [50, 100],
        "runs": {"bald": [{"accuracy": [0.80, 0.90]}, {"accuracy": [0.86, 0.88]}]},
    }
    row = example.summary(results)["bald"]
    assert row["accuracy"] == {
        "50": [pytest.approx(0.83), pytest.approx(0.03)],
        "100": [pytest.approx(0.89), pytest.approx(0.01)],
    }
    assert row["labels_to_reach"]["0.85"] == {"mean": 75.0, "std": 25.0, "reached": 2}
    assert row["labels_to_reach"]["0.90"] == {"mean": 100.0, "std": 0.0, "reached": 1}


def test_bad_arguments_are_refused(example, tmp_path):
    for argv in (["--initial", "15"], ["--seeds", "0"], ["--budget", "10"]):
        with pytest.raises(SystemExit):
            example.parse_args(argv)
    with pytest.raises(SystemExit, match="--budget 10020 is more than the 1347 training digits"):
        example.main(["--quick", "--step", "5000", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"--budget 10020 is more than the 4001 training digits \(20 initial, 3981 in"):
        example.main(["--quick", "--pool", "repeated", "--step", "5000", "--output-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        example.parse_args(["--pool", "noisy"])
    with pytest.raises(SystemExit, match="--replot: no .*results.json"):
        example.main(["--replot", "--output-dir", str(tmp_path / "empty")])


def test_quick_runs_never_write_into_the_published_results_by_default(example):
    assert example.parse_args([]).output_dir == os.path.join("docs", "active_learning")
    quick = example.parse_args(["--quick"]).output_dir
    assert os.path.commonpath([quick, tempfile.gettempdir()]) == tempfile.gettempdir()


def test_the_repeated_pool_holds_three_noisy_copies_of_every_digit(example):
    """Repeated MNIST's construction: copy r of digit i at r * n + i, each with its own N(0, 0.1^2) pixel noise."""
    (x, y), _ = load_digits(seed=0)
    copies, labels = example.repeated(x, y)
    assert copies.shape == (3 * TRAIN_IMAGES, 64) and copies.dtype == np.float32
    np.testing.assert_array_equal(labels, np.concatenate([y, y, y]))
    noise = copies.astype("float64") - np.concatenate([x, x, x])
    utils.assert_mean_close(noise, 0.0, 0.1)
    utils.assert_variance_close(noise, 0.01, 3 * 0.1**4)  # Gaussian: fourth central moment 3 sigma^4
    per_copy = noise.reshape(3, -1)
    for first, second in ((0, 1), (0, 2), (1, 2)):  # each copy has noise of its own: uncorrelated within 5 sigma
        assert abs(np.corrcoef(per_copy[first], per_copy[second])[0, 1]) < 5 / math.sqrt(per_copy.shape[1])
    np.testing.assert_array_equal(example.repeated(x, y)[0], copies)  # seeded: one pool for every run
    np.testing.assert_array_equal(example.withheld([4, 7], 10, 3), [14, 24, 17, 27])


def test_quick_run_on_the_repeated_pool(example, quick_run, repeated_run):
    """The same initial digits as on the distinct pool; every other digit three times in the pool, the copies of
    the initial digits kept out; results in files of their own, replotted from them."""
    results, output, sizes = repeated_run
    assert results["pool"] == "repeated" and results["pool_size"] == 3 * (TRAIN_IMAGES - 20)
    assert sizes == [3 * (TRAIN_IMAGES - 20), 3 * (TRAIN_IMAGES - 20) - 10] * 3  # two rounds of each strategy
    assert results["labels"] == [20, 30, 40]
    (_, y_train), _ = load_digits(seed=0)
    for strategy, (run,) in results["runs"].items():
        labelled = run["labelled"]
        assert labelled[:20] == quick_run[0]["runs"][strategy][0]["labelled"][:20]
        assert len(set(labelled)) == 40 and 0 <= min(labelled) and max(labelled) < 3 * TRAIN_IMAGES
        assert not {index % TRAIN_IMAGES for index in labelled[:20]} & {index % TRAIN_IMAGES for index in labelled[20:]}
        assert np.bincount(y_train[labelled[:20]], minlength=10).tolist() == [2] * 10
        utils.assert_above_chance(run["accuracy"][-1], TEST_IMAGES, 10)
    assert {path.name for path in output.iterdir()} == {
        "results_repeated.json",
        "results_repeated.md",
        "accuracy_repeated.png",
    }
    table = (output / "results_repeated.md").read_text()
    assert "Pool: each of the other training digits 3 times, each copy with Gaussian noise of std 0.1" in table
    assert "3,981 digits" in table and "`consistent=True`" in table
    assert json.loads((output / "results_repeated.json").read_text()) == results
    (output / "results_repeated.md").unlink()
    assert example.main(["--replot", "--pool", "repeated", "--output-dir", str(output)]) == results
    assert (output / "results_repeated.md").read_text() == table
    with pytest.raises(SystemExit, match="--replot: no .*results.json; .*--pool distinct"):
        example.main(["--replot", "--output-dir", str(output)])
