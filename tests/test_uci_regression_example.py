"""examples/uci_regression.py on a tiny synthetic data set in the UCI layout (a linear function plus noise), never on
the UCI files: the stacked networks train as the same networks would one by one, and as a plain Keras model; the
Concrete penalty is kerasdrop's; the masks are uniform; the validation scorer is the formula; MCDropout's samples of
the plain copies agree with the stacked networks' own; the report is written; bad input is refused by argparse."""

import json
import math
import os

import keras
import numpy as np
import pytest
from scipy.special import logsumexp

import kerasdrop
from tests import utils

FEATURES = 3
ROWS = 60
TRAIN = 50
SPLITS = 3
GRID_RATES = (0.01, 0.1)
GRID_TAUS = (10.0, 100.0)


@pytest.fixture(scope="module")
def uci():
    return utils.load_example("uci_regression")


@pytest.fixture(scope="module")
def stacked(uci):
    import _uci_stacked

    return _uci_stacked


def write_dataset(root, name="yacht", splits=SPLITS, seed=0):
    """A synthetic data set in the UCI layout: y = x · w + noise, ``splits`` random splits of 50 / 10 rows."""
    folder = root / name
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, FEATURES))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=ROWS)
    np.savetxt(folder / "data.txt", np.column_stack([x, y]))
    np.savetxt(folder / "index_features.txt", np.arange(FEATURES), fmt="%d")
    np.savetxt(folder / "index_target.txt", [FEATURES], fmt="%d")
    for split in range(splits):
        order = rng.permutation(ROWS)
        np.savetxt(folder / f"index_train_{split}.txt", order[:TRAIN], fmt="%d")
        np.savetxt(folder / f"index_test_{split}.txt", order[TRAIN:], fmt="%d")
    for name_, value in (("n_splits.txt", splits), ("n_hidden.txt", 50), ("n_epochs.txt", 1)):
        np.savetxt(folder / name_, [value], fmt="%d")
    np.savetxt(folder / "dropout_rates.txt", GRID_RATES)
    np.savetxt(folder / "tau_values.txt", GRID_TAUS)
    return folder


def run_tiny(uci, tmp_path, methods, *more, data_written=False):
    if not data_written:
        write_dataset(tmp_path / "data")
    argv = [
        *("--data-dir", str(tmp_path / "data"), "--datasets", "yacht", "--splits", "2", "--epochs", "3"),
        *("--samples", "20", "--val-samples", "20", "--output", str(tmp_path / "out"), "--methods", *methods),
        *more,
    ]
    printed = []
    return uci.main(argv, print_fn=printed.append), printed


def check_report(report, tmp_path, methods):
    assert sorted(os.listdir(tmp_path / "out")) == ["results.json", "results.md", "results.png"]
    with open(tmp_path / "out" / "results.json") as handle:
        assert json.load(handle) == json.loads(json.dumps(report))  # the file is the returned report
    outcome = report["datasets"]["yacht"]
    assert list(outcome["methods"]) == list(methods)
    for method, result in outcome["methods"].items():
        for key in ("rmse", "log_likelihood"):
            assert len(result["per_split"][key]) == 2 and np.isfinite(result["per_split"][key]).all()
            assert result[key][0] == pytest.approx(np.mean(result["per_split"][key]))
            assert result[key][1] == pytest.approx(np.std(result["per_split"][key]) / math.sqrt(2))
        assert np.isfinite(result["validation_log_likelihood"]).all()
        assert result["agreement_split_0"]["bonferroni_min_p"] > 1e-3
        timing = result["timing"]
        assert timing["grid"]["steps"] == 3 and timing["final"]["steps"] == 3  # 40 and 50 rows: one batch an epoch
        if method == "mc_dropout":
            assert np.shape(result["validation_log_likelihood"]) == (2, 4)
            assert set(zip(result["chosen"]["rate"], result["chosen"]["tau"], strict=True)) <= {
                (rate, tau) for rate in GRID_RATES for tau in GRID_TAUS
            }
        if method == "concrete":
            assert np.shape(result["learned_rates"]) == (2, 2) and set(result["chosen"]["tau"]) <= set(GRID_TAUS)
        if method == "heteroscedastic":
            assert set(result["chosen"]["rate"]) <= set(GRID_RATES) and result["chosen"]["tau"] is None
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "| yacht | paper: MC dropout, grid (p, τ) | 0.67 ± 0.05 |" in markdown
    assert "2 splits, 3 epochs, T = 20 test samples" in markdown


def test_tiny_run_of_mc_dropout_writes_the_report(uci, tmp_path):
    report, printed = run_tiny(uci, tmp_path, ["mc_dropout"])
    check_report(report, tmp_path, ["mc_dropout"])
    assert printed[0] == "yacht: 2 splits, 50 training rows, 3 epochs"


def test_update_keeps_the_rows_it_does_not_redo_and_refuses_other_settings(uci, tmp_path):
    first, _ = run_tiny(uci, tmp_path, ["mc_dropout"])
    merged, _ = run_tiny(uci, tmp_path, ["heteroscedastic"], "--update", data_written=True)
    check_report(merged, tmp_path, ["mc_dropout", "heteroscedastic"])
    methods = merged["datasets"]["yacht"]["methods"]
    assert methods["mc_dropout"] == json.loads(json.dumps(first["datasets"]["yacht"]["methods"]["mc_dropout"]))
    assert merged["updates"] == [{"methods": ["heteroscedastic"], "datasets": ["yacht"]}]
    assert "Rows heteroscedastic, grid p of yacht were redone" in (tmp_path / "out" / "results.md").read_text()
    seconds = sum(result["timing"]["seconds"] for result in methods.values())
    assert merged["datasets"]["yacht"]["seconds"] == pytest.approx(seconds, rel=1e-12)
    with pytest.raises(SystemExit, match=r"run with samples 20, this run with 30"):
        run_tiny(uci, tmp_path, ["mc_dropout"], "--update", "--samples", "30", data_written=True)
    with pytest.raises(SystemExit, match=r"--update: there is no .*other.results\.json to update"):
        run_tiny(uci, tmp_path, ["mc_dropout"], "--update", "--output", str(tmp_path / "other"), data_written=True)


@pytest.mark.slow
def test_tiny_run_of_every_row_writes_the_report(uci, tmp_path):
    methods = ["mc_dropout", "concrete", "heteroscedastic"]
    report, _ = run_tiny(uci, tmp_path, methods)
    check_report(report, tmp_path, methods)


def own_losses(losses, split, config):
    """The loss arguments of network ``(split, config)`` alone, from those of the stack."""
    own = {"likelihood": losses.get("likelihood", "squared_error")}
    if "weight_decay" in losses:
        own["weight_decay"] = losses["weight_decay"][split : split + 1, config : config + 1]
    if "concrete_regularizers" in losses:
        own["concrete_regularizers"] = [
            part[split : split + 1, config : config + 1] for part in losses["concrete_regularizers"]
        ]
    return own


@pytest.mark.parametrize("kind", ["dropout", "concrete", "gaussian"])
def test_side_by_side_training_equals_one_by_one(stacked, kind):
    """Two networks of a 2 × 2 stack, trained alone (same id, initial weights, seed, batch order), end where they
    end in the stack after 3 epochs of two batches (128 rows and 22): the stack's loss separates."""
    splits, rows = 2, 150
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, splits, FEATURES)).astype("float32")
    y = (x.sum(axis=-1, keepdims=True) + 0.1 * rng.normal(size=(rows, splits, 1))).astype("float32")
    rates = np.array([[0.1, 0.3], [0.05, 0.2]])
    outputs = 2 if kind == "gaussian" else 1
    networks = stacked.StackedNetworks(rates, FEATURES, outputs=outputs, concrete=kind == "concrete", seed=3)
    networks.build(None)
    decay = np.array([[1e-3, 2e-3], [3e-3, 4e-3]])
    losses = {"weight_decay": decay, "likelihood": "gaussian" if kind == "gaussian" else "squared_error"}
    if kind == "concrete":
        losses = {"concrete_regularizers": (decay, 10 * decay)}
    alone = {(s, g): networks.subset(s, g) for s, g in ((0, 1), (1, 0))}  # before training: the initial weights
    initial = [np.asarray(weight) for weight in networks.weights]
    stacked.build(networks, **losses).train(x, y, epochs=3, seed=5)
    for (split, config), network in alone.items():
        model = stacked.build(network, **own_losses(losses, split, config))
        model.train(x[:, split : split + 1], y[:, split : split + 1], epochs=3, seed=5)
        for mine, theirs, start in zip(network.weights, networks.weights, initial, strict=True):
            trained = np.asarray(theirs)[split, config]
            assert np.abs(trained - start[split, config]).max() > 1e-4, mine.name  # it did train
            np.testing.assert_allclose(np.asarray(mine)[0, 0], trained, rtol=1e-4, atol=1e-6, err_msg=mine.name)


def test_a_stacked_network_trains_as_a_plain_keras_model(stacked):
    """Without dropout, one stacked network and a Keras ``Dense(50, relu) -> Dense(1)`` with L2 kernel regularisers,
    mean squared error and Adam, fed the same batches (`epoch_order`, then batches of 128 and a last partial one),
    end with the same weights."""
    rows, decay = 150, 3e-3
    rng = np.random.default_rng(2)
    x = rng.normal(size=(rows, 1, FEATURES)).astype("float32")
    y = (x.sum(axis=-1, keepdims=True) + 0.1 * rng.normal(size=(rows, 1, 1))).astype("float32")
    networks = stacked.StackedNetworks(np.zeros((1, 1)), FEATURES, seed=4)
    networks.build(None)
    l2 = keras.regularizers.L2(decay)
    layers = [keras.layers.Dense(50, "relu", kernel_regularizer=l2), keras.layers.Dense(1, kernel_regularizer=l2)]
    plain = keras.Sequential([keras.Input((FEATURES,)), *layers])
    initial = [np.asarray(weight)[0, 0] for weight in networks.weights]
    for layer, kernel, bias in zip(layers, initial[::2], initial[1::2], strict=True):
        layer.set_weights([kernel, bias])
    plain.compile(optimizer=keras.optimizers.Adam(stacked.LEARNING_RATE), loss="mse")
    for epoch in range(3):
        order = np.asarray(stacked.epoch_order(rows, 6, epoch))
        assert sorted(order) == list(range(rows))
        for start in range(0, rows, 128):
            plain.train_on_batch(x[order[start : start + 128], 0], y[order[start : start + 128], 0])
    stacked.build(networks, weight_decay=np.full((1, 1), decay)).train(x, y, epochs=3, seed=6)
    trained = [np.asarray(weight)[0, 0] for weight in networks.weights]
    for mine, theirs, start in zip(trained, [w for layer in layers for w in layer.get_weights()], initial, strict=True):
        assert np.abs(mine - start).max() > 1e-4
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-6)


def test_concrete_penalty_is_kerasdrops_concrete_dropout_regularization(uci, stacked):
    """The stacked Concrete penalty of each network is the sum of `kerasdrop.ConcreteDropout.regularization` of the
    two wrappers of its plain copy."""
    rng = np.random.default_rng(3)
    networks = stacked.StackedNetworks(np.full((2, 2), 0.1), FEATURES, concrete=True, seed=1)
    networks.build(None)
    networks.p_logit.assign(rng.normal(size=(2, 2, 2)).astype("float32"))
    weight_regularizer, dropout_regularizer = rng.uniform(1e-4, 1e-2, size=(2, 2, 2))
    model = stacked.StackedModel(networks, concrete_regularizers=(weight_regularizer, dropout_regularizer))
    penalties = np.asarray(model.penalties())
    for split in range(2):
        for config in range(2):
            regularizers = {
                "weight_regularizer": weight_regularizer[split, config],
                "dropout_regularizer": dropout_regularizer[split, config],
            }
            plain = uci.plain_model(networks.subset(split, config), 0, "concrete", regularizers)
            wrappers = plain.layers
            assert [type(wrapper) for wrapper in wrappers] == [kerasdrop.ConcreteDropout] * 2
            expected = sum(
                float(wrapper.regularization(np.zeros((1, units), "float32")))
                for wrapper, units in zip(wrappers, (FEATURES, 50), strict=True)
            )
            assert penalties[split, config] == pytest.approx(expected, rel=1e-5)
            assert wrappers[1].rate == pytest.approx(
                1 / (1 + math.exp(-float(networks.p_logit[split, config, 1]))), rel=1e-6
            )


def test_masks_are_uniform_and_unrelated_across_networks_and_keys(stacked):
    """The hash uniforms: in (0, 1), mean 1/2 and P(u < 0.05) = 0.05 per network (5σ bounds), no correlation between
    networks, keys or neighbouring units beyond 5σ; a network's draws depend only on its id and the key."""
    ids = np.arange(6, dtype="uint32").reshape(2, 3) + 1000
    draws = np.asarray(stacked.hash_uniform(np.array([7, 0]), ids, 100, 50)).reshape(6, -1).astype("float64")
    n = draws.shape[1]
    assert draws.min() > 0 and draws.max() < 1
    extremes = np.asarray(stacked.unit_interval(np.array([0, 2**32 - 1], "uint32")))
    assert extremes.dtype == np.float32 and 0 < extremes[0] and extremes[1] < 1  # 1 - u > 0 even at the top
    assert np.abs(draws.mean(axis=1) - 0.5).max() < 5 * math.sqrt(1 / 12 / n)
    assert np.abs((draws < 0.05).mean(axis=1) - 0.05).max() < 5 * math.sqrt(0.05 * 0.95 / n)
    others = [np.asarray(stacked.hash_uniform(np.array(key), ids, 100, 50)).reshape(6, -1) for key in ([7, 1], [8, 0])]
    streams = np.concatenate([draws, *others])
    correlations = np.corrcoef(streams)[np.triu_indices(len(streams), 1)]
    assert np.abs(correlations).max() < 5 / math.sqrt(n)
    neighbours = [np.corrcoef(stream[:-1], stream[1:])[0, 1] for stream in draws]
    assert np.abs(neighbours).max() < 5 / math.sqrt(n)
    alone = np.asarray(stacked.hash_uniform(np.array([7, 0]), ids[1:, 2:], 100, 50)).reshape(-1)
    np.testing.assert_array_equal(alone, draws[5])


def random_networks(stacked, rates, outputs=1, concrete=False, seed=0):
    networks = stacked.StackedNetworks(
        np.asarray(rates, "float64"), FEATURES, outputs=outputs, concrete=concrete, seed=seed
    )
    networks.build(None)
    rng = np.random.default_rng(seed)
    for weight in networks.weights:
        weight.assign(np.asarray(weight) + 0.3 * rng.normal(size=weight.shape).astype("float32"))
    return networks


@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("budget", [None, 2 * 2 * 50 * 7 * 2, 2 * 2 * 50 * 4])
def test_scorer_is_the_log_likelihood_formula_without_dropout(stacked, monkeypatch, outputs, budget):
    """With rate 0 every sample is the deterministic output, whatever the blocks of rows and samples (a budget of
    blocks of 2 samples and a remainder, or of 4 rows and 3): the formula exactly."""
    if budget is not None:
        monkeypatch.setattr(stacked, "SAMPLE_BUDGET", budget)
    rng = np.random.default_rng(4)
    networks = random_networks(stacked, np.zeros((2, 2)), outputs)
    x = rng.normal(size=(7, 2, FEATURES)).astype("float32")
    y = rng.normal(size=(7, 2)) * 3 + 1
    mean, std, tau = np.array([1.0, 0.5]), np.array([3.0, 2.0]), np.array([[0.5, 2.0], [1.0, 4.0]])
    precision = tau if outputs == 1 else None
    log_likelihood, rmse = stacked.Scorer(networks, seed=3).score(x, y, mean, std, 5, precision)
    out = np.asarray(networks.forward(np.transpose(x, (1, 0, 2))[:, None].repeat(2, axis=1), None), "float64")
    predicted = out[..., 0] * std[:, None, None] + mean[:, None, None]  # (S, G, rows)
    errors = y.T[:, None, :] - predicted
    if outputs == 1:
        expected = -0.5 * tau[..., None] * errors**2 - 0.5 * math.log(2 * math.pi) + 0.5 * np.log(tau)[..., None]
    else:
        variance = np.exp(out[..., 1]) * std[:, None, None] ** 2
        expected = -0.5 * (np.log(2 * math.pi * variance) + errors**2 / variance)
    np.testing.assert_allclose(log_likelihood, expected.mean(axis=-1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rmse, np.sqrt(np.mean(errors**2, axis=-1)), rtol=1e-5)


def test_scorer_is_the_monte_carlo_log_likelihood_of_its_samples(stacked):
    """With dropout, one block of samples: the log-sum-exp of the samples the networks draw with the first keys."""
    rng = np.random.default_rng(5)
    networks = random_networks(stacked, [[0.1, 0.3], [0.2, 0.05]])
    x = rng.normal(size=(6, 2, FEATURES)).astype("float32")
    y = rng.normal(size=(6, 2))
    mean, std, tau, samples = np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([[1.0, 2.0], [3.0, 4.0]]), 50
    log_likelihood, rmse = stacked.Scorer(networks, seed=9).score(x, y, mean, std, samples, tau)
    keys = (np.array([9, 0], "int32"), np.array([9, 1], "int32"))
    draws = np.asarray(networks.sample(x, samples, keys), "float64")[..., 0] * std[:, None, None, None]
    draws += mean[:, None, None, None]  # (S, G, T, rows)
    errors = y.T[:, None, None, :] - draws
    per_row = logsumexp(-0.5 * tau[..., None, None] * errors**2, axis=2) - math.log(samples)
    expected = per_row - 0.5 * math.log(2 * math.pi) + 0.5 * np.log(tau)[..., None]
    np.testing.assert_allclose(log_likelihood, expected.mean(axis=-1), rtol=1e-5)
    np.testing.assert_allclose(rmse, np.sqrt(np.mean((y.T[:, None] - draws.mean(axis=2)) ** 2, axis=-1)), rtol=1e-5)
    assert np.ptp(draws, axis=2).min() > 0  # dropout did sample


@pytest.mark.parametrize("method", ["mc_dropout", "concrete", "heteroscedastic"])
def test_mcdropout_on_the_plain_copy_samples_as_the_stacked_network(uci, stacked, method):
    """The plain Keras copy computes the stacked network's function, and `kerasdrop.MCDropout`'s samples of it agree
    in distribution with the stacked network's own; a copy with another rate is told apart."""
    outputs = 2 if method == "heteroscedastic" else 1
    networks = random_networks(stacked, [[0.2]], outputs, concrete=method == "concrete", seed=6)
    x = np.random.default_rng(7).normal(size=(5, FEATURES)).astype("float32")
    model = uci.plain_model(networks, 0, method)
    np.testing.assert_allclose(model(x), np.asarray(networks.forward(x[None, None], None))[0, 0], rtol=1e-5, atol=1e-6)
    moments = (2.0, 3.0)  # the targets' mean and std
    output_type = "gaussian" if outputs == 2 else "regression"

    def mc_means(plain):
        result = kerasdrop.MCDropout(plain, samples=2000, output_type=output_type, seed=1).predict(
            x, keep_samples=True, verbose=0
        )
        return result.samples[..., 0] * 3.0 + 2.0

    check = uci.agreement(networks, 0, x, *moments, mc_means(model), seed=2)
    assert check["bonferroni_min_p"] > 1e-3, check
    if method == "mc_dropout":
        other = uci.plain_model(random_networks(stacked, [[0.4]], seed=6), 0, method)
        assert uci.agreement(networks, 0, x, *moments, mc_means(other), seed=2)["bonferroni_min_p"] < 1e-3


def _remove(folder, name):
    os.remove(folder / name)


def _write(name, text):
    return lambda folder: (folder / name).write_text(text)


BAD_DATA = {
    "a data set folder missing": (
        None,
        ["--datasets", "energy"],
        "energy is missing (no folder for data set 'energy')",
    ),
    "a split file missing": (lambda folder: _remove(folder, "index_test_1.txt"), [], "index_test_1.txt is missing"),
    "the grid missing": (lambda folder: _remove(folder, "tau_values.txt"), [], "tau_values.txt is missing"),
    "text in data.txt": (_write("data.txt", "1 2 three 4\n"), [], "data.txt cannot be read as numbers"),
    "ragged data.txt": (_write("data.txt", "1 2 3 4\n5 6\n"), [], "data.txt cannot be read as numbers"),
    "a fractional index": (_write("index_train_0.txt", "0\n1.5\n"), [], "must hold non-negative integers"),
    "an index out of range": (_write("index_test_0.txt", "0\n999\n"), [], "holds index 999, beyond the 60"),
    "a target column out of range": (_write("index_target.txt", "7\n"), [], "holds index 7, beyond the 4"),
    "a rate of 1": (_write("dropout_rates.txt", "0.1\n1.0\n"), [], "dropout_rates.txt must hold values in [0.0, 1.0)"),
    "n_splits not a count": (_write("n_splits.txt", "0\n"), [], "n_splits.txt must hold one positive integer"),
    "more splits than exist": (None, ["--splits", "4"], "--splits 4: data set 'yacht' has 3 splits"),
}
BAD_ARGUMENTS = {
    "an unknown data set": (["--datasets", "boston"], "argument --datasets: invalid choice: 'boston'"),
    "--splits 0": (["--splits", "0"], "argument --splits: must be a positive integer, got '0'"),
    "--epochs -3": (["--epochs", "-3"], "argument --epochs: must be a positive integer, got '-3'"),
    "--samples 0": (["--samples", "0"], "argument --samples: must be a positive integer, got '0'"),
    "--samples ten": (["--samples", "ten"], "argument --samples: must be a positive integer, got 'ten'"),
    "--val-samples 0": (["--val-samples", "0"], "argument --val-samples: must be a positive integer, got '0'"),
    "an unknown row": (["--methods", "bayes"], "argument --methods: invalid choice: 'bayes'"),
}


def refused(uci, argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        uci.main(argv)
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and error.startswith("usage:")
    return error


@pytest.mark.parametrize("case", BAD_DATA)
def test_a_bad_data_folder_is_refused_by_name(uci, tmp_path, capsys, case):
    change, extra, message = BAD_DATA[case]
    folder = write_dataset(tmp_path / "data")
    if change is not None:
        change(folder)
    argv = ["--data-dir", str(tmp_path / "data"), "--datasets", "yacht", "--output", str(tmp_path / "out"), *extra]
    error = refused(uci, argv, capsys)
    assert message in error, error
    assert ("argument --data-dir: " in error) == (case != "more splits than exist"), error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_a_bad_argument_is_refused_by_name(uci, tmp_path, capsys, case):
    extra, message = BAD_ARGUMENTS[case]
    write_dataset(tmp_path / "data")
    argv = ["--data-dir", str(tmp_path / "data"), "--datasets", "yacht", "--output", str(tmp_path / "out"), *extra]
    assert message in refused(uci, argv, capsys)


def test_a_missing_data_dir_is_refused_by_name(uci, tmp_path, capsys):
    error = refused(uci, ["--data-dir", str(tmp_path / "nowhere")], capsys)
    assert f"argument --data-dir: '{tmp_path / 'nowhere'}' is not a folder" in error
    assert "the following arguments are required: --data-dir" in refused(uci, [], capsys)


def test_an_unreadable_file_is_refused_by_name(uci, tmp_path, capsys, monkeypatch):
    """A file the process may not read (simulated: the tests may run as root, whom permissions do not bind)."""
    import _uci_data

    write_dataset(tmp_path / "data")
    loadtxt = np.loadtxt

    def denied(path, *args, **kwargs):
        if str(path).endswith("index_train_1.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return loadtxt(path, *args, **kwargs)

    monkeypatch.setattr(_uci_data.np, "loadtxt", denied)
    error = refused(uci, ["--data-dir", str(tmp_path / "data"), "--datasets", "yacht"], capsys)
    assert "index_train_1.txt cannot be read as numbers: [Errno 13] Permission denied" in error


def test_the_shards_do_not_change_the_networks(uci, tmp_path):
    """Trained as one stacked model or as two in two threads, every network ends with the same weights: its id,
    initial weights, masks and batch order do not depend on the cut."""
    import _uci_data

    write_dataset(tmp_path)
    data = _uci_data.load(str(tmp_path), "yacht", SPLITS)
    phase = uci.grid_phase("mc_dropout", data, SPLITS)
    one, _ = uci.train(phase, data, data.train, 3, seed=1, workers=1)
    two, timing = uci.train(phase, data, data.train, 3, seed=1, workers=2)
    assert [len(shard) for shard in two.shards] == [2, 1] and timing["steps"] == 3
    for split in range(SPLITS):
        alone, index = two.locate(split)
        for mine, theirs in zip(alone.weights, one.networks[0].weights, strict=True):
            np.testing.assert_allclose(np.asarray(mine)[index], np.asarray(theirs)[split], rtol=1e-5, atol=1e-6)


def test_the_relaxed_masks_are_gal_hron_and_kendalls(stacked):
    """The stacked Concrete mask, written with odds and a tenth power, is ``(1 - z) / (1 - p)`` with
    ``z = sigmoid((logit p + log u - log(1 - u)) / 0.1)`` of the same uniforms, to float32 precision."""
    networks = random_networks(stacked, np.full((2, 3), 0.1), concrete=True, seed=8)
    networks.p_logit.assign(np.linspace(-5, 1, 12, dtype="float32").reshape(2, 3, 2))
    inputs = np.random.default_rng(9).normal(size=(2, 3, 40, 50)).astype("float32")
    key = np.array([4, 11])
    dropped = np.asarray(networks._drop(inputs, 1, key), "float64")
    u = np.asarray(stacked.hash_uniform(key, networks.network_ids, 40, 50), "float64")
    logit = np.asarray(networks.p_logit, "float64")[:, :, 1, None, None]
    z = 1 / (1 + np.exp(-(logit + np.log(u) - np.log1p(-u)) / stacked.CONCRETE_TEMPERATURE))
    expected = inputs * (1 - z) * (1 + np.exp(logit))
    np.testing.assert_allclose(dropped, expected, rtol=2e-5, atol=1e-6)


def test_concrete_regularisers_take_tau_in_the_units_of_the_normalised_targets(uci, stacked):
    """The grid's τ is the precision of the targets as given; the networks fit them normalised, where it is τ·std²."""
    taus, stds = np.array([0.5, 2.0]), np.array([3.0, 0.5])
    phase = uci.Phase("concrete", np.full((2, 1), 0.1), taus[:, None])
    weight, dropout = phase.losses(100, stds)["concrete_regularizers"]
    for split in range(2):
        expected = kerasdrop.concrete_regularizers(100, stacked.LENGTH_SCALE, precision=taus[split] * stds[split] ** 2)
        assert weight[split, 0] == pytest.approx(expected["weight_regularizer"], rel=1e-12)
        assert dropout[split, 0] == pytest.approx(expected["dropout_regularizer"], rel=1e-12)
