"""Reproduces the classic dropout claims on scikit-learn's digits, averaged over several seeds.

Experiments (each a table row set and a PNG):
  1. variants:  test error of each dense dropout variant against no dropout (SparseVariationalDense is studied in
                examples/compression_digits.py: it needs a KL warm-up and about 200 epochs to train);
  2. rate:      test error against the dropout rate (Srivastava et al. 2014, "dependence on p");
  3. scaling:   weight-scaling (Hinton 2012) against inverted dropout at the same rate;
  4. mc:        Monte Carlo averaging against deterministic inference (error, NLL, ECE), each also calibrated by
                temperature scaling (`kerasdrop.calibration.TemperatureScaling`, cross-fitted on the halves of the
                test set: `kerasdrop.demo.cross_fitted_calibration`).

    python examples/study_digits.py                      # the full study (about 10-15 minutes on 2 CPU cores)
    python examples/study_digits.py --quick              # a tiny budget, to check that it runs
    python examples/study_digits.py --only mc            # part 4 alone, the others kept from results.json

Writes results.md, results.json and one PNG per experiment into --output-dir (default docs/study; --quick writes
into the system's temporary folder unless given one).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402  (sets the Keras backend)
import numpy as np  # noqa: E402

HIDDEN = 256
RATES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
PARTS = ("variants", "rates", "mc")


def plain(layer_after):
    """A hidden block of two ``Dense(256, relu)``, each followed by ``layer_after(seed)`` (if not None)."""
    import keras

    def block(x, seed):
        for index in range(2):
            x = keras.layers.Dense(HIDDEN, activation="relu")(x)
            if layer_after is not None:
                x = layer_after(seed + index)(x)
        return x

    return block


def stacked(make_layer):
    """A hidden block of two layers ``make_layer(seed)`` that replace ``Dense(256, relu)``."""

    def block(x, seed):
        for index in range(2):
            x = make_layer(seed + index)(x)
        return x

    return block


def dense_variants(train_size):
    """name -> function(x, seed) building the hidden block of an MLP 64-256-256-10."""
    import keras

    import kerasdrop

    kl_weight = 1.0 / train_size
    return {
        "no dropout": plain(None),
        "Dropout 0.5": plain(lambda s: kerasdrop.Dropout(0.5, seed=s)),
        "Dropout 0.5 (weight scaling)": plain(lambda s: kerasdrop.Dropout(0.5, scaling="weight_scaling", seed=s)),
        "GaussianDropout 0.5": plain(lambda s: kerasdrop.GaussianDropout(0.5, seed=s)),
        "StochasticDropout 0.5 +- 0.1": plain(lambda s: kerasdrop.StochasticDropout(0.5, 0.1, seed=s)),
        "DropConnectDense 0.5": stacked(lambda s: kerasdrop.DropConnectDense(HIDDEN, 0.5, activation="relu", seed=s)),
        "StandoutDense": stacked(lambda s: kerasdrop.StandoutDense(HIDDEN, activation="relu", seed=s)),
        "FastDropoutDense 0.5": stacked(lambda s: kerasdrop.FastDropoutDense(HIDDEN, 0.5, activation="relu", seed=s)),
        "VariationalDense": stacked(
            lambda s: kerasdrop.VariationalDense(HIDDEN, activation="relu", kl_weight=kl_weight, seed=s)
        ),
        "ConcreteDropout": stacked(
            lambda s: kerasdrop.ConcreteDropout(
                keras.layers.Dense(HIDDEN, activation="relu"),
                weight_regularizer=1e-6,
                dropout_regularizer=2.0 / train_size,
                seed=s,
            )
        ),
    }


def train(block, data, seed, epochs):
    """Trains ``Input(64) -> block -> Dense(10, softmax)``; returns the model."""
    import keras

    (x_train, y_train), _ = data
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((x_train.shape[1],))
    outputs = keras.layers.Dense(10, activation="softmax")(block(inputs, seed))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    return model


def test_error(model, data):
    _, (x_test, y_test) = data
    return float(np.mean(model.predict(x_test, verbose=0, batch_size=512).argmax(-1) != y_test))


def summarise(values):
    values = np.asarray(values, dtype="float64")
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if values.size > 1 else 0.0}


def run_variants(data, seeds, epochs, log):
    results = {}
    for name, block in dense_variants(len(data[0][0])).items():
        start = time.perf_counter()
        errors = [test_error(train(block, data, seed, epochs), data) for seed in seeds]
        results[name] = summarise(errors)
        log(
            f"  {name:<32s} error {100 * results[name]['mean']:.2f} +- {100 * results[name]['std']:.2f} %"
            f"  ({time.perf_counter() - start:.0f} s)"
        )
    return results


def run_rates(data, seeds, epochs, log, rates=RATES):
    import kerasdrop

    results = {}
    for rate in rates:
        block = plain(lambda seed, rate=rate: kerasdrop.Dropout(rate, seed=seed))
        results[f"{rate:.1f}"] = summarise([test_error(train(block, data, seed, epochs), data) for seed in seeds])
        log(f"  rate {rate:.1f}: error {100 * results[f'{rate:.1f}']['mean']:.2f} %")
    return results


def run_mc(data, seeds, epochs, samples, log):
    import kerasdrop
    from kerasdrop import metrics
    from kerasdrop.demo import cross_fitted_calibration

    _, (x_test, y_test) = data
    block = dense_variants(len(data[0][0]))["Dropout 0.5"]
    names = (
        "deterministic",
        "deterministic + temperature",
        f"MC ({samples} samples)",
        f"MC ({samples} samples) + temperature",
    )
    rows = {name: {"error": [], "nll": [], "ece": [], "temperature": []} for name in names}
    for seed in seeds:
        model = train(block, data, seed, epochs)
        deterministic = model.predict(x_test, verbose=0)[None]  # one "sample"
        sampled = kerasdrop.MCDropout(model, samples=samples, seed=seed).predict(x_test, verbose=0, keep_samples=True)
        predictions = []
        for probs in (deterministic, sampled.samples.astype("float64")):
            predictions.append((probs.mean(axis=0), [1.0]))
            predictions.append(cross_fitted_calibration(probs, y_test, seed)[:2])
        for name, (probs, temperatures) in zip(rows, predictions, strict=True):
            rows[name]["error"].append(float(np.mean(probs.argmax(-1) != y_test)))
            rows[name]["nll"].append(float(metrics.negative_log_likelihood(probs, y_test)))
            rows[name]["ece"].append(float(metrics.expected_calibration_error(probs, y_test)))
            rows[name]["temperature"].append(float(np.mean(temperatures)))
    results = {name: {key: summarise(values) for key, values in row.items()} for name, row in rows.items()}
    for name, row in results.items():
        log(
            f"  {name:<36s} error {100 * row['error']['mean']:.2f} %, NLL {row['nll']['mean']:.4f}, "
            f"ECE {row['ece']['mean']:.4f}, temperature {row['temperature']['mean']:.2f}"
        )
    return results


def plot_bars(results, title, path, xlabel="test error (%)"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    means = [100 * results[name]["mean"] for name in names]
    stds = [100 * results[name]["std"] for name in names]
    figure, axis = plt.subplots(figsize=(7, 0.4 * len(names) + 1.2))
    axis.barh(names, means, xerr=stds, color="tab:blue", alpha=0.8, capsize=3)
    axis.invert_yaxis()
    axis.set_xlabel(xlabel)
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_rates(results, title, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [float(rate) for rate in results]
    means = np.array([100 * row["mean"] for row in results.values()])
    stds = np.array([100 * row["std"] for row in results.values()])
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.errorbar(rates, means, yerr=stds, marker="o", capsize=3)
    axis.set_xlabel("dropout rate (probability of dropping)")
    axis.set_ylabel("test error (%)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(results, seeds, epochs, samples):
    lines = [
        f"Digits, MLP 64-{HIDDEN}-{HIDDEN}-10, Adam 1e-3, batch 64, {epochs} epochs; mean +- std over "
        f"{len(seeds)} seeds.",
        "",
        "| dense variant | test error (%) |",
        "| --- | --- |",
    ]
    for name, row in results["variants"].items():
        lines.append(f"| {name} | {100 * row['mean']:.2f} ± {100 * row['std']:.2f} |")
    lines += ["", "| dropout rate | test error (%) |", "| --- | --- |"]
    for rate, row in results["rates"].items():
        lines.append(f"| {rate} | {100 * row['mean']:.2f} ± {100 * row['std']:.2f} |")
    lines += [
        "",
        "Temperature scaling: fitted on one half of the test set and applied to the other, both ways (two "
        "temperatures per seed; their mean is shown).",
        "",
        "| Dropout 0.5, inference | test error (%) | NLL | ECE | temperature |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in results["mc"].items():
        temperature = row.get("temperature", {"mean": 1.0, "std": 0.0})
        lines.append(
            f"| {name} | {100 * row['error']['mean']:.2f} ± {100 * row['error']['std']:.2f} | "
            f"{row['nll']['mean']:.4f} ± {row['nll']['std']:.4f} | {row['ece']['mean']:.4f} ± {row['ece']['std']:.4f} "
            f"| {temperature['mean']:.2f} ± {temperature['std']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def write_outputs(results, output_dir):
    """The three PNGs, results.json and results.md of ``results`` into ``output_dir``."""
    os.makedirs(output_dir, exist_ok=True)
    plot_bars(results["variants"], "Dense dropout variants on digits", os.path.join(output_dir, "variants.png"))
    plot_rates(results["rates"], "Test error against the dropout rate", os.path.join(output_dir, "rates.png"))
    plot_bars(results["scaling"], "Weight scaling against inverted dropout", os.path.join(output_dir, "scaling.png"))
    with open(os.path.join(output_dir, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    with open(os.path.join(output_dir, "results.md"), "w") as handle:
        handle.write(markdown(results, results["seeds"], results["epochs"], results["samples"]))
    print(f"wrote {output_dir}/results.md, results.json, variants.png, rates.png, scaling.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--samples", type=int, default=50, help="Monte Carlo samples")
    parser.add_argument(
        "--output-dir",
        default=None,
        help="where the results go (default docs/study; with --quick a folder in the system's temporary one)",
    )
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, rates 0 and 0.5: checks that it runs")
    parser.add_argument("--replot", action="store_true", help="redraw the outputs from results.json, no training")
    parser.add_argument(
        "--only",
        choices=PARTS,
        help="run this part alone; the others are kept from --output-dir's results.json",
    )
    args = parser.parse_args(argv)
    args.output_dir = _common.results_folder(args.output_dir, os.path.join("docs", "study"), args.quick, "study")
    if args.replot:
        results = _common.read_results(args.output_dir)
        write_outputs(results, args.output_dir)
        return results
    rates = RATES
    if args.quick:
        args.seeds, args.epochs, args.samples, rates = 1, 1, 3, (0.0, 0.5)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from kerasdrop.datasets import load_digits

    data = load_digits(seed=0)
    seeds = list(range(args.seeds))
    results = {"seeds": seeds, "epochs": args.epochs, "samples": args.samples}
    if args.only:
        results = _kept_results(args)
    if args.only in (None, "variants"):
        print("1. dense variants against no dropout")
        results["variants"] = run_variants(data, seeds, args.epochs, print)
        results["scaling"] = {
            key: results["variants"][key] for key in ("Dropout 0.5", "Dropout 0.5 (weight scaling)", "no dropout")
        }
    if args.only in (None, "rates"):
        print("2. dependence on the dropout rate")
        results["rates"] = run_rates(data, seeds, args.epochs, print, rates)
    if args.only in (None, "mc"):
        print("3. Monte Carlo averaging against deterministic inference, with and without temperature scaling")
        results["mc"] = run_mc(data, seeds, args.epochs, args.samples, print)
    write_outputs(results, args.output_dir)
    return results


def _kept_results(args):
    """The results of ``--output-dir`` whose other parts ``--only`` keeps; they must share its settings."""
    results = _common.read_results(args.output_dir, "--only")
    for key, value in (("seeds", list(range(args.seeds))), ("epochs", args.epochs), ("samples", args.samples)):
        if results[key] != value:
            raise SystemExit(f"--only: {args.output_dir}/results.json was run with {key} {results[key]}, not {value}")
    return results


if __name__ == "__main__":
    main()
