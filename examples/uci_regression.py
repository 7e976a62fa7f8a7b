"""Gal & Ghahramani's UCI regression benchmark (MC dropout, Table 1), trained fast, sampled with `kerasdrop.MCDropout`.

For each data set (concrete, energy, kin8nm, wine-quality-red, yacht: Hernández-Lobato & Adams's 20 splits) and
each split: the first 80 % of the training rows train and the last 20 % validate; for every (dropout rate, τ) of
the data set's grid a network ``Dropout(p) → Dense(50, relu) → Dropout(p) → Dense(1)`` is trained (inputs and
targets normalised, L2 ``l² (1 - p) / (2 N τ)`` on the kernels, l = 1e-2, mean squared error, Adam 1e-3, batch 128,
4,000 epochs) and scored by its Monte Carlo log-likelihood on the validation rows; the best pair is retrained on the
whole training split and evaluated on the test split with ``T`` = 10,000 Monte Carlo samples: RMSE of the MC mean,
and the log-likelihood ``logsumexp_t(-τ/2 (y - ŷ_t)²) - log T - ½ log 2π + ½ log τ`` averaged over the test rows.
Two more rows: Concrete dropout (Gal, Hron & Kendall 2017: the rates learned per layer; grid over τ alone), and a
heteroscedastic head (mean and log variance, Gaussian negative log-likelihood; grid over the rate alone).

All the networks of a data set's grid and splits train side by side as one Keras model (``examples/_uci_stacked.py``:
whole epochs in one XLA call; the splits cut into ``--workers`` shards trained in threads, since one XLA computation
keeps one core busy); the validation scores use ``--val-samples`` Monte Carlo samples (default 10,000, as the
authors' code). The retrained networks are then copied into plain Keras models (``keras.layers.Dropout``, or
``kerasdrop.ConcreteDropout`` wrappers) and sampled with ``kerasdrop.MCDropout``; on split 0 those samples are
compared with the stacked networks' own.

    python examples/uci_regression.py --data-dir ../shared/uci                  # the protocol, all five data sets
    python examples/uci_regression.py --data-dir DIR --datasets yacht --splits 2 --epochs 200 --samples 1000
    python benchmarks/bench_uci_stacked.py --data-dir DIR                        # the projected time of a full run

Writes results.md, results.json and results.png into --output (default docs/uci). The UCI files are read from
--data-dir and never copied. Reported: the mean over the splits ± the standard error, std / √splits (NumPy's std,
ddof 0, as the authors' code).
"""

import argparse
import concurrent.futures
import dataclasses
import math
import os
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402, F401  (sets the Keras backend and quiets TensorFlow)
import _uci_data  # noqa: E402
import _uci_stacked  # noqa: E402
import numpy as np  # noqa: E402

# Gal & Ghahramani (2016), "Dropout as a Bayesian Approximation", Table 1 as updated in the README of
# github.com/yaringal/DropoutUncertaintyExps, column "Dropout (grid search, new)" (4,000 epochs): mean ± standard
# error over the 20 splits, RMSE and test log-likelihood.
PUBLISHED = {
    "concrete": {"rmse": (4.82, 0.16), "log_likelihood": (-2.93, 0.02)},
    "energy": {"rmse": (0.54, 0.06), "log_likelihood": (-1.21, 0.01)},
    "kin8nm": {"rmse": (0.08, 0.00), "log_likelihood": (1.14, 0.01)},
    "wine-quality-red": {"rmse": (0.62, 0.01), "log_likelihood": (-0.93, 0.01)},
    "yacht": {"rmse": (0.67, 0.05), "log_likelihood": (-1.25, 0.01)},
}
SAMPLES = 10_000
# The rows of our results: MC dropout with the grid over (rate, τ), Concrete dropout (rates learned, grid over τ),
# a heteroscedastic head (grid over the rate).
METHODS = ("mc_dropout", "concrete", "heteroscedastic")
LABELS = {
    "mc_dropout": "MC dropout, grid (p, τ)",
    "concrete": "ConcreteDropout, grid τ",
    "heteroscedastic": "heteroscedastic, grid p",
}
# Monte Carlo samples of the stacked networks compared with MCDropout's, on split 0 of each data set.
CHECK_SAMPLES = 2000


@dataclasses.dataclass
class Phase:
    """A grid of networks, one per (split, configuration): rates, τ (None for a heteroscedastic head) and
    everything `_uci_stacked.build` needs."""

    method: str
    rates: np.ndarray
    taus: np.ndarray

    @property
    def concrete(self):
        return self.method == "concrete"

    @property
    def outputs(self):
        return 2 if self.method == "heteroscedastic" else 1

    def losses(self, train_rows, y_std):
        """`StackedModel` keyword arguments for networks trained on ``train_rows`` rows whose targets, per split,
        had the standard deviation ``y_std (S,)`` before they were normalised."""
        l2 = _uci_stacked.LENGTH_SCALE**2
        if self.method == "mc_dropout":
            return {"weight_decay": l2 * (1 - self.rates) / (2 * train_rows * self.taus)}
        if self.method == "heteroscedastic":
            return {"weight_decay": l2 * (1 - self.rates) / (2 * train_rows), "likelihood": "gaussian"}
        # kerasdrop.concrete_regularizers, per network: the KL scaled as the data term, a squared error of the
        # normalised targets, so τ in their units, τ·std²: the grid's τ is the precision of the targets as given.
        scale = self.taus * np.square(y_std)[:, None] * train_rows
        return {"concrete_regularizers": (l2 / scale, 2.0 / scale)}

    def precision(self):
        return None if self.method == "heteroscedastic" else self.taus

    def chosen(self, best):
        """The phase that retrains, per split, configuration ``best[s]``."""
        splits = np.arange(len(best))
        return Phase(self.method, self.rates[splits, best][:, None], self.taus[splits, best][:, None])


def grid_phase(method, data, splits):
    """The grid of ``method`` on ``data``: (rate, τ) pairs, τ alone (Concrete) or the rate alone (heteroscedastic)."""
    rates, taus = data.rates, data.taus
    if method == "concrete":
        rates = np.full(1, _uci_stacked.CONCRETE_INIT_RATE)
    if method == "heteroscedastic":
        taus = np.ones(1)
    pairs = np.array([(rate, tau) for rate in rates for tau in taus], dtype="float64")
    return Phase(method, np.tile(pairs[:, 0], (splits, 1)), np.tile(pairs[:, 1], (splits, 1)))


def seed_of(*parts):
    """A seed in [0, 2**31) for a (data set, method, phase) of a run."""
    return zlib.crc32("/".join(map(str, parts)).encode()) % 2**31


def in_parallel(tasks, workers):
    """The results of the zero-argument callables ``tasks``, run by ``workers`` threads (a compiled TensorFlow call
    runs on the thread that makes it and releases the GIL)."""
    if workers == 1 or len(tasks) == 1:
        return [task() for task in tasks]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return [future.result() for future in [pool.submit(task) for task in tasks]]


@dataclasses.dataclass
class Trained:
    """The networks of a phase, ``networks[k]`` holding the splits ``shards[k]``, and the normalisation of the rows
    they trained on: ``x_stats = (mean, std)`` ``(S, D)``, ``y_mean``, ``y_std`` ``(S,)``."""

    shards: list
    networks: list
    x_stats: tuple
    y_mean: np.ndarray
    y_std: np.ndarray

    def locate(self, split):
        """``(networks, index of split ``split`` in them)``."""
        for shard, networks in zip(self.shards, self.networks, strict=True):
            if split in shard:
                return networks, int(np.flatnonzero(shard == split)[0])
        raise IndexError(split)


def _rows_of(losses, shard):
    """The loss arguments of the networks of the splits ``shard``."""
    rows = {}
    for key, value in losses.items():
        if isinstance(value, tuple):
            rows[key] = tuple(part[shard] for part in value)
        else:
            rows[key] = value if isinstance(value, str) else value[shard]
    return rows


def stack(phase, data, parts, seed, workers, first_id=0):
    """The networks of ``phase`` for the rows ``parts[s]`` of each split, the splits cut into ``workers`` shards,
    one compiled `StackedModel` each (a network's id, initial weights, masks and batch order do not depend on the
    cut). Returns a `Trained` (not trained yet), the models, and the normalised ``x (rows, S, D)``, ``y (rows, S,
    1)``."""
    x, y, x_stats = data.stacked(parts)
    y, y_mean, y_std = _uci_data.normalised_targets(y)
    configs = phase.rates.shape[1]
    shards = np.array_split(np.arange(len(parts)), min(workers, len(parts)))
    losses = phase.losses(len(x), y_std)
    models = []
    for shard in shards:
        networks = _uci_stacked.StackedNetworks(
            phase.rates[shard],
            x.shape[-1],
            data.hidden,
            phase.outputs,
            phase.concrete,
            seed,
            first_id + shard[0] * configs,
        )
        models.append(_uci_stacked.build(networks, **_rows_of(losses, shard)))
    trained = Trained(shards, [model.networks for model in models], x_stats, y_mean, y_std)
    return trained, models, x, y[..., None]


def fit_shards(models, shards, x, y, epochs, seed, workers):
    """Trains each shard's model on its splits of ``x``, ``y``, in threads; returns ``[(steps, last loss)]``."""
    tasks = [lambda m=m, k=k: m.train(x[:, k], y[:, k], epochs, seed) for m, k in zip(models, shards, strict=True)]
    return in_parallel(tasks, workers)


def train(phase, data, parts, epochs, seed, workers, first_id=0):
    """`stack`, then `fit_shards` for ``epochs`` epochs. Returns the `Trained` and the timing."""
    trained, models, x, y = stack(phase, data, parts, seed, workers, first_id)
    start = time.perf_counter()
    results = fit_shards(models, trained.shards, x, y, epochs, seed, workers)
    seconds = time.perf_counter() - start
    steps = results[0][0]
    timing = {"networks": int(phase.rates.size), "steps": steps, "seconds": seconds}
    timing.update(ms_per_step=1e3 * seconds / steps, last_epoch_loss=float(sum(loss for _, loss in results)))
    return trained, timing


def validate(trained, phase, data, rows, samples, seed, workers):
    """The validation log-likelihoods ``(S, G)`` of the networks trained on each split's first ``rows`` training
    rows, on the others, ``samples`` Monte Carlo samples each (the shards scored in threads)."""
    x_val, y_val, _ = data.stacked([part[rows:] for part in data.train], trained.x_stats)
    precision = phase.precision()

    def score(networks, shard):
        tau = None if precision is None else precision[shard]
        moments = trained.y_mean[shard], trained.y_std[shard]
        scorer = _uci_stacked.Scorer(networks, seed)
        return scorer.score(x_val[:, shard], y_val[:, shard], *moments, samples, tau)[0]

    tasks = [lambda n=n, k=k: score(n, k) for n, k in zip(trained.networks, trained.shards, strict=True)]
    return np.concatenate(in_parallel(tasks, workers))


def grid_search(phase, data, args, seed):
    """Trains the grid on the first 80 % of each split's training rows and scores it on the rest: returns the
    index of the best configuration per split, the validation log-likelihoods ``(S, G)`` and the timings."""
    rows = int(_uci_data.TRAIN_FRACTION * data.train_rows)
    parts = [part[:rows] for part in data.train]
    trained, timing = train(phase, data, parts, args.epochs or data.epochs, seed, args.workers)
    start = time.perf_counter()
    log_likelihood = validate(trained, phase, data, rows, args.val_samples, seed + 1, args.workers)
    timing["validation_seconds"] = time.perf_counter() - start
    best = np.argmax(np.where(np.isfinite(log_likelihood), log_likelihood, -np.inf), axis=1)
    return best, log_likelihood, timing


def plain_model(networks, split, method, regularizers=None):
    """The network of split ``split`` (configuration 0) as a plain Keras model with its weights: Keras ``Dropout``
    layers, or `kerasdrop.ConcreteDropout` wrappers (with ``regularizers``, the keyword arguments of
    `kerasdrop.concrete_regularizers`) whose ``p_logit`` is the network's learned logit."""
    import keras

    import kerasdrop

    weights = [np.asarray(weight)[split, 0] for weight in networks.weights]
    hidden = keras.layers.Dense(networks.hidden, activation="relu")
    output = keras.layers.Dense(networks.outputs)
    if method == "concrete":
        wrappers = [kerasdrop.ConcreteDropout(layer, **(regularizers or {})) for layer in (hidden, output)]
        model = keras.Sequential([keras.Input((networks.features,)), *wrappers])
        for wrapper, logit in zip(wrappers, weights[4], strict=True):
            wrapper.p_logit.assign(logit)
    else:
        rate = float(networks.rates[split, 0])
        model = keras.Sequential(
            [keras.Input((networks.features,)), keras.layers.Dropout(rate), hidden, keras.layers.Dropout(rate), output]
        )
    for layer, kernel, bias in ((hidden, weights[0], weights[1]), (output, weights[2], weights[3])):
        layer.set_weights([kernel, bias])
    return model


def score_samples(result, y, y_mean, y_std, tau):
    """``(rmse, log_likelihood, samples)`` of an `MCDropoutResult` kept with its samples, on targets ``y``; the
    samples are de-normalised (means with the mean and std, variances with std²). The log-likelihood is
    `kerasdrop.metrics.gaussian_log_likelihood` of the mixture of the samples: noise variance ``1 / tau`` for a
    plain network, each sample's own for a heteroscedastic head."""
    import kerasdrop

    means = result.samples[..., 0].astype("float64") * y_std + y_mean
    if result.sample_variances is None:
        noise_variance = 1.0 / tau
    else:
        noise_variance = result.sample_variances[..., 0].astype("float64") * y_std**2
    log_likelihood = kerasdrop.metrics.gaussian_log_likelihood(means, y, noise_variance)
    return kerasdrop.metrics.rmse(y, means.mean(axis=0)), float(log_likelihood), means


def tolerant_ks(a, b, tolerance):
    """The p-value of a two-sample Kolmogorov-Smirnov test of samples ``a`` and ``b`` that does not tell apart values
    closer than ``tolerance``: ``D = sup_t max(F_a(t) - F_b(t + tol), F_b(t) - F_a(t + tol))``, never above the
    plain statistic, with the plain test's asymptotic law (so conservative). Dropout with a small rate puts atoms
    in the samples (no unit dropped: about 60 % of the draws at p = 0.01), which two implementations place a float
    rounding apart; the plain test would reject on that alone."""
    from scipy.stats import kstwobign

    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])

    def cdf(sample, at):
        return np.searchsorted(sample, at, side="right") / len(sample)

    statistic = max(
        np.max(cdf(a, points) - cdf(b, points + tolerance)), np.max(cdf(b, points) - cdf(a, points + tolerance))
    )
    return float(kstwobign.sf(max(statistic, 0.0) * math.sqrt(len(a) * len(b) / (len(a) + len(b)))))


def agreement(networks, split, x, y_mean, y_std, mc_means, seed):
    """How the Monte Carlo means of network ``(split, 0)`` of ``networks`` on ``x``, de-normalised with ``y_mean``
    and ``y_std``, compare with MCDropout's ``mc_means (T, N)``: a two-sample Kolmogorov-Smirnov test per row
    (`tolerant_ks`, values within 1e-5 of the largest magnitude not told apart). Returns the smallest p-value times
    the number of rows (Bonferroni) and the fraction of rows with p < 0.01 (about 0.01 or less when they agree)."""
    alone = networks.subset(split)
    x_split = x[:, None, :].astype("float32")
    block = max(1, _uci_stacked.SAMPLE_BUDGET // (len(x) * networks.hidden))
    stacked = []
    for start in range(0, CHECK_SAMPLES, block):
        keys = (np.array([seed, 2 * start], "int32"), np.array([seed, 2 * start + 1], "int32"))
        stacked.append(np.asarray(alone.sample(x_split, min(block, CHECK_SAMPLES - start), keys))[0, 0, :, :, 0])
    stacked = np.concatenate(stacked) * y_std + y_mean
    p_values = []
    for row in range(x.shape[0]):
        tolerance = 1e-5 * max(np.abs(stacked[:, row]).max(), np.abs(mc_means[:, row]).max())
        p_values.append(tolerant_ks(stacked[:, row], mc_means[:, row], tolerance))
    return {
        "bonferroni_min_p": float(min(1.0, min(p_values) * len(p_values))),
        "fraction_p_below_0.01": float(np.mean(np.array(p_values) < 0.01)),
        "samples": [CHECK_SAMPLES, int(mc_means.shape[0])],
    }


def score_test_split(model, x, y, y_mean, y_std, tau, samples, seed):
    """`score_samples` of ``model``'s `kerasdrop.MCDropout` samples on the normalised test inputs ``x``."""
    import kerasdrop

    output_type = "regression" if tau is not None else "gaussian"
    mc = kerasdrop.MCDropout(model, samples=samples, output_type=output_type, seed=seed)
    return score_samples(mc.predict(x.astype("float32"), keep_samples=True, verbose=0), y, y_mean, y_std, tau)


def score_test_splits(trained, phase, data, samples, seed, workers):
    """``(rmse, log-likelihood, de-normalised sampled means)`` of each split: its test rows sampled by
    `kerasdrop.MCDropout` on a plain Keras copy of its network (the splits in threads)."""
    coefficients = phase.losses(data.train_rows, trained.y_std).get("concrete_regularizers")
    tasks = []
    for split, rows in enumerate(data.test):
        x = (data.x[rows] - trained.x_stats[0][split]) / trained.x_stats[1][split]
        regularizers = None
        if coefficients is not None:  # the wrappers' own regularisers (no effect on sampling)
            regularizers = {
                "weight_regularizer": float(coefficients[0][split, 0]),
                "dropout_regularizer": float(coefficients[1][split, 0]),
            }
        model = plain_model(*trained.locate(split), phase.method, regularizers)
        tau = None if phase.precision() is None else float(phase.taus[split, 0])
        moments = data.y[rows], trained.y_mean[split], trained.y_std[split], tau
        tasks.append(lambda m=model, x=x, k=split, z=moments: score_test_split(m, x, *z, samples, seed + k))
    return in_parallel(tasks, workers)


def evaluate(phase, data, args, seed):
    """Retrains the chosen networks of ``phase`` on the whole training splits, then tests them (`score_test_splits`):
    per split RMSE and log-likelihood, the timings, and on split 0 the agreement of MCDropout's samples with the
    stacked networks' own."""
    trained, timing = train(phase, data, data.train, args.epochs or data.epochs, seed, args.workers, first_id=2**20)
    start = time.perf_counter()
    scores = score_test_splits(trained, phase, data, args.samples, seed, args.workers)
    x = (data.x[data.test[0]] - trained.x_stats[0][0]) / trained.x_stats[1][0]
    check = agreement(*trained.locate(0), x, trained.y_mean[0], trained.y_std[0], scores[0][2], seed + 7)
    timing["test_seconds"] = time.perf_counter() - start
    learned = None
    if phase.concrete:
        learned = np.concatenate([np.asarray(networks.dropout_rates())[:, 0] for networks in trained.networks])
    return {
        "rmse": [score[0] for score in scores],
        "log_likelihood": [score[1] for score in scores],
        "agreement": check,
        "learned_rates": learned,
    }, timing


def summary(values):
    """``(mean, standard error)`` over the splits: NumPy's std (ddof 0) / √splits."""
    values = np.asarray(values, "float64")
    return float(values.mean()), float(values.std() / math.sqrt(len(values)))


def run_method(method, data, args):
    """The protocol for one method on one data set: grid search, retraining, test; returns its results."""
    start = time.perf_counter()
    phase = grid_phase(method, data, len(data.train))
    best, validation, grid_timing = grid_search(phase, data, args, seed_of(args.seed, data.name, method, "grid"))
    chosen = phase.chosen(best)
    scores, final_timing = evaluate(chosen, data, args, seed_of(args.seed, data.name, method, "final"))
    result = {
        "rmse": summary(scores["rmse"]),
        "log_likelihood": summary(scores["log_likelihood"]),
        "per_split": {"rmse": scores["rmse"], "log_likelihood": scores["log_likelihood"]},
        "chosen": {"rate": chosen.rates[:, 0].tolist(), "tau": chosen.taus[:, 0].tolist()},
        "validation_log_likelihood": validation.tolist(),
        "agreement_split_0": scores["agreement"],
        "timing": {"grid": grid_timing, "final": final_timing, "seconds": time.perf_counter() - start},
    }
    if method == "heteroscedastic":
        result["chosen"]["tau"] = None
    if scores["learned_rates"] is not None:
        result["chosen"]["rate"] = None
        result["learned_rates"] = scores["learned_rates"].tolist()
    return result


def run_dataset(data, args, print_fn=print):
    """Every requested method on one data set; returns ``{method: results}`` and the wall time."""
    start = time.perf_counter()
    results = {}
    for method in args.methods:
        results[method] = run_method(method, data, args)
        rmse, ll = results[method]["rmse"], results[method]["log_likelihood"]
        print_fn(
            f"  {data.name} {LABELS[method]}: RMSE {rmse[0]:.3f} ± {rmse[1]:.3f}, log-likelihood {ll[0]:.3f} ± "
            f"{ll[1]:.3f} ({results[method]['timing']['seconds']:.0f} s)"
        )
    return {"methods": results, "seconds": time.perf_counter() - start}


def positive_int(text):
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder of the data sets' folders (never copied)")
    parser.add_argument("--datasets", nargs="+", choices=_uci_data.DATASETS, default=list(_uci_data.DATASETS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="the rows to run")
    parser.add_argument("--splits", type=positive_int, help="the first N splits (default: n_splits.txt, 20)")
    parser.add_argument("--epochs", type=positive_int, help="epochs per network (default: 100 × n_epochs.txt, 4,000)")
    parser.add_argument("--samples", type=positive_int, default=SAMPLES, help=f"test MC samples (default {SAMPLES})")
    parser.add_argument(
        "--val-samples",
        type=positive_int,
        default=SAMPLES,
        help=f"MC samples of the validation scores (default {SAMPLES}, as the authors' code)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights, masks and batch orders")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=os.cpu_count() or 1,
        help="threads: the splits are trained, scored and tested in this many shards at once (default: the cores)",
    )
    parser.add_argument("--output", default=os.path.join("docs", "uci"), help="where results.md/json/png go")
    parser.add_argument(
        "--update",
        action="store_true",
        help="keep the rows of --output's results.json (same settings) that this run does not redo",
    )
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data_dir):
        parser.error(f"argument --data-dir: {args.data_dir!r} is not a folder")
    datasets = []
    for name in dict.fromkeys(args.datasets):
        try:
            splits = args.splits or _uci_data.count_splits(args.data_dir, name)
            datasets.append(_uci_data.load(args.data_dir, name, splits))
        except _uci_data.DataError as error:
            message = str(error)  # an error of --splits names itself; the others are the data folder's
            parser.error(message if message.startswith("--splits") else f"argument --data-dir: {message}")
    return args, datasets


def main(argv=None, print_fn=print):
    """Runs the protocol; returns the report written into ``--output`` (results.md, results.json, results.png)."""
    import _uci_report

    args, datasets = parse_args(argv)
    args.methods = list(dict.fromkeys(args.methods))
    report = {
        "settings": {
            "splits": args.splits or "n_splits.txt",
            "epochs": args.epochs or "100 × n_epochs.txt",
            "samples": args.samples,
            "val_samples": args.val_samples,
            "seed": args.seed,
            "datasets": [data.name for data in datasets],
            "methods": args.methods,
        },
        "machine": _uci_report.machine(),
        "published": PUBLISHED,
        "datasets": {},
    }
    try:
        earlier = _uci_report.read(args.output, report["settings"]) if args.update else None
    except ValueError as error:
        raise SystemExit(f"uci_regression.py: error: {error}") from None
    for data in datasets:
        epochs = args.epochs or data.epochs
        print_fn(f"{data.name}: {len(data.train)} splits, {data.train_rows} training rows, {epochs} epochs")
        report["datasets"][data.name] = run_dataset(data, args, print_fn)
        # Written after each data set, so that a long run keeps what it did.
        paths = _uci_report.write(_uci_report.merge(earlier, report), LABELS, args.output)
    print_fn("wrote " + ", ".join(paths))
    return _uci_report.merge(earlier, report)


if __name__ == "__main__":
    main()
