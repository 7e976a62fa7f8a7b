"""Active learning on scikit-learn's digits with Monte Carlo dropout (Gal, Islam & Ghahramani 2017).

Starts from 20 labelled training digits (two per class) and a pool of the other 1,327; each round trains an MLP with
`kerasdrop.Dropout` on the labelled digits (from the same initial weights every round), samples the pool with
`kerasdrop.MCDropout(..., consistent=True)` (sample t of every pool digit from one and the same network, the joint
draws BatchBALD needs; each digit's own samples are distributed as without), and labels the 10 pool digits an
acquisition function of `kerasdrop.acquisition` ranks highest, up to 300 labels. Strategies: BALD, max entropy,
variation ratio and BatchBALD (a batch chosen jointly), against labelling at random; each over several seeds (the
initial digits, the weights and the noise).

With --pool repeated the training digits are built as Repeated MNIST (Kirsch, van Amersfoort & Gal 2019): every
digit three times, each copy with Gaussian noise of standard deviation 0.1 added to its pixels (in [0, 1]). The run
starts from the first copy of the same 20 digits, keeps their other copies out, and so has every pool digit three
times (3,981): a batch of the top BALD scores tends to label near-copies of one digit, which BatchBALD's joint choice
avoids.

    python examples/active_learning_digits.py                  # the full run (about 18 minutes on 2 CPU cores)
    python examples/active_learning_digits.py --pool repeated  # the same on the pool of noisy copies (longer)
    python examples/active_learning_digits.py --quick          # a tiny budget, to check that it runs (about 25 s)

Writes results.md (the README's table), results.json and accuracy.png (test accuracy against the number of labels,
mean and a band of one standard deviation over the seeds) into --output-dir (default docs/active_learning; --quick
writes into the system's temporary folder unless given one); with --pool repeated, results_repeated.md,
results_repeated.json and accuracy_repeated.png beside them.
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402  (sets the Keras backend)
import numpy as np  # noqa: E402

STRATEGIES = ("bald", "max_entropy", "variation_ratio", "batch_bald", "random")
LABELS = {
    "bald": "BALD",
    "max_entropy": "max entropy",
    "variation_ratio": "variation ratio",
    "batch_bald": "BatchBALD",
    "random": "random",
}
# Numbers of labels at which the table reports the test accuracy, and accuracies whose label cost it reports.
CHECKPOINTS = (50, 100, 200, 300)
TARGETS = (0.85, 0.90)
HIDDEN, RATE, LEARNING_RATE, BATCH = 128, 0.5, 1e-3, 32
DEFAULT_OUTPUT = os.path.join("docs", "active_learning")
POOLS = ("distinct", "repeated")
# Repeated MNIST's construction: copies of each pool digit, the standard deviation of the noise added to each copy's
# pixels (in [0, 1]), and the seed of that noise (one pool for every run).
REPEATS, NOISE_STD, NOISE_SEED = 3, 0.1, 0


def build_model(seed):
    import keras

    import kerasdrop

    init = keras.initializers.GlorotUniform
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(HIDDEN, activation="relu", kernel_initializer=init(seed)),
            kerasdrop.Dropout(RATE, seed=seed),
            keras.layers.Dense(HIDDEN, activation="relu", kernel_initializer=init(seed + 1)),
            kerasdrop.Dropout(RATE, seed=seed + 1),
            keras.layers.Dense(10, activation="softmax", kernel_initializer=init(seed + 2)),
        ]
    )


class Learner:
    """One model retrained from the same initial state (weights, seed states, optimizer) each round.

    Each round trains for a fixed number of steps on the labelled digits tiled into one epoch of constant length, so
    every round reuses the traced training step whatever the number of labels.
    """

    def __init__(self, seed, steps, samples):
        import keras

        import kerasdrop

        self.model = build_model(seed)
        self.model.compile(keras.optimizers.Adam(LEARNING_RATE), "sparse_categorical_crossentropy")
        self.model.optimizer.build(self.model.trainable_variables)
        self.variables = self.model.variables + self.model.optimizer.variables
        self.initial = [np.array(variable.numpy()) for variable in self.variables]
        self.steps = steps
        # Joint draws: BatchBALD needs them, and the per-input scores see each digit's samples distributed as without.
        self.sampler = kerasdrop.MCDropout(self.model, samples=samples, seed=seed, consistent=True)
        self.seed = seed

    def train(self, x, y):
        """Trains from the initial state, in an order drawn from the seed and the number of labels: a round is the
        same whatever ran before it."""
        for variable, value in zip(self.variables, self.initial, strict=True):
            variable.assign(value)
        rng = np.random.default_rng([self.seed, len(x)])
        order = np.concatenate([rng.permutation(len(x)) for _ in range(math.ceil(self.steps * BATCH / len(x)))])
        order = order[: self.steps * BATCH]
        self.model.fit(x[order], y[order], batch_size=BATCH, epochs=1, verbose=0, shuffle=False)

    def accuracy(self, x, y):
        return float(np.mean(self.model.predict(x, batch_size=512, verbose=0).argmax(axis=-1) == y))

    def sample(self, x):
        """The `MCDropoutResult` of ``x``, its samples kept."""
        return self.sampler.predict(x, verbose=0, keep_samples=True)


def choose(strategy, samples, k, seed):
    """Indices into the pool of the ``k`` digits to label next, from the pool's `MCDropoutResult` (or its samples)."""
    from kerasdrop import acquisition

    if strategy == "batch_bald":
        return acquisition.batch_bald(samples, k, seed=seed)
    scores = acquisition.random(samples, seed=seed) if strategy == "random" else getattr(acquisition, strategy)(samples)
    return acquisition.top_k(scores, k)


def initial_labels(y, per_class, seed):
    """``per_class`` indices of each class, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.choice(np.flatnonzero(y == label), per_class, replace=False) for label in range(10)])


def repeated(x, y, repeats=REPEATS, noise_std=NOISE_STD, seed=NOISE_SEED):
    """Repeated MNIST's construction (Kirsch et al. 2019): ``repeats`` copies of every digit, copy ``r`` of digit
    ``i`` at index ``r * len(x) + i``, each with Gaussian noise of standard deviation ``noise_std`` added."""
    copies = np.concatenate([x] * repeats)
    noise = np.random.default_rng(seed).normal(scale=noise_std, size=copies.shape)
    return (copies + noise).astype("float32"), np.concatenate([y] * repeats)


def training_set(data, pool):
    """``((x, y), repeats)``: the training digits a run labels from, and how many copies of each digit they hold;
    digit ``i``'s copies are at ``i``, ``i + n``, ... (``n`` distinct digits)."""
    (x_train, y_train), _ = data
    if pool == "repeated":
        return repeated(x_train, y_train), REPEATS
    return (x_train, y_train), 1


def withheld(initial, distinct, repeats):
    """The other copies of the initial digits (copy 0 is labelled): kept out of the pool, which thus holds every
    other digit ``repeats`` times."""
    return (np.asarray(initial)[:, None] + distinct * np.arange(1, repeats)).ravel()


def run(strategy, learner, data, seed, args):
    """One active-learning run: the test accuracy after each round and the indices labelled, in order (into the
    training digits, or into their copies with ``--pool repeated``, which start from the first copy of the same
    initial digits)."""
    (x_train, y_train), repeats = training_set(data, args.pool)
    _, (x_test, y_test) = data
    distinct = len(x_train) // repeats
    initial = initial_labels(y_train[:distinct], args.initial // 10, seed)
    labelled = [int(index) for index in initial]
    kept_out = [int(index) for index in withheld(initial, distinct, repeats)]
    accuracies = []
    while True:
        learner.train(x_train[labelled], y_train[labelled])
        accuracies.append(learner.accuracy(x_test, y_test))
        if len(labelled) >= args.budget:
            break
        pool = np.setdiff1d(np.arange(len(x_train)), labelled + kept_out)
        k = min(args.step, args.budget - len(labelled))
        chosen = choose(strategy, learner.sample(x_train[pool]), k, seed=seed * 1000 + len(labelled))
        labelled.extend(int(index) for index in pool[chosen])
    return {"accuracy": accuracies, "labelled": labelled}


def labels_to_reach(accuracies, counts, target):
    """The first number of labels at which ``accuracies`` reaches ``target``, or None."""
    return next((count for count, value in zip(counts, accuracies, strict=True) if value >= target), None)


def checkpoints(counts):
    """The numbers of labels the table reports: those of `CHECKPOINTS` the run reached, and its last."""
    return [count for count in CHECKPOINTS if count in counts[:-1]] + [counts[-1]]


def summary(results):
    """Per strategy: mean and std over seeds of the accuracy at each checkpoint and of the labels to reach each
    target (runs that never reach it are counted as missing)."""
    counts = results["labels"]
    rows = {}
    for strategy, runs in results["runs"].items():
        curves = np.array([run["accuracy"] for run in runs])
        row = {"accuracy": {}, "labels_to_reach": {}}
        for checkpoint in checkpoints(counts):
            values = curves[:, counts.index(checkpoint)]
            row["accuracy"][str(checkpoint)] = [float(values.mean()), float(values.std())]
        for target in TARGETS:
            reached = [labels_to_reach(run["accuracy"], counts, target) for run in runs]
            found = [value for value in reached if value is not None]
            row["labels_to_reach"][f"{target:.2f}"] = {
                "mean": float(np.mean(found)) if found else None,
                "std": float(np.std(found)) if found else None,
                "reached": len(found),
            }
        rows[strategy] = row
    return rows


def _count(number, noun):
    return f"{number} {noun}" + ("" if number == 1 else "s")


def markdown(results):
    rows = summary(results)
    seeds = len(results["seeds"])
    reported = checkpoints(results["labels"])
    joint = " (joint draws, `consistent=True`)" if results.get("consistent") else ""
    pool = ""
    if results.get("pool", "distinct") == "repeated":
        pool = (
            f" Pool: each of the other training digits {results['repeats']} times, each copy with Gaussian noise of "
            f"std {results['noise_std']} added ({results['pool_size']:,} digits; Repeated MNIST's construction)."
        )
    lines = [
        f"Digits: {results['initial']} initial labels (two per class), {results['step']} acquired per round up to "
        f"{results['budget']}; MLP 64-{HIDDEN}-{HIDDEN}-10 with `kerasdrop.Dropout({RATE})`, retrained each round for "
        f"{results['train_steps']} steps of {BATCH}; {results['samples']} MC dropout samples of the pool{joint}; test "
        f"accuracy on {results['test_size']} digits, mean ± std over {_count(seeds, 'seed')}.{pool}",
        "",
        "| strategy | "
        + " | ".join(f"accuracy at {c} labels" for c in reported)
        + " | "
        + " | ".join(f"labels to {100 * t:.0f} %" for t in TARGETS)
        + " |",
        "| --- |" + " --- |" * (len(reported) + len(TARGETS)),
    ]
    for strategy, row in rows.items():
        cells = [f"{100 * mean:.1f} ± {100 * std:.1f}" for mean, std in row["accuracy"].values()]
        for target in TARGETS:
            reach = row["labels_to_reach"][f"{target:.2f}"]
            if reach["reached"] == 0:
                cells.append(f"not reached ({_count(seeds, 'seed')})")
            else:
                missing = "" if reach["reached"] == seeds else f" ({reach['reached']} of {seeds} seeds)"
                cells.append(f"{reach['mean']:.0f} ± {reach['std']:.0f}{missing}")
        lines.append(f"| {LABELS[strategy]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array(results["labels"])
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for strategy, runs in results["runs"].items():
        curves = 100 * np.array([run["accuracy"] for run in runs])
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        (line,) = axis.plot(counts, mean, label=LABELS[strategy], linestyle="--" if strategy == "random" else "-")
        axis.fill_between(counts, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    axis.set_xlabel("labelled training digits")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"Active learning on digits, MC dropout ({_count(len(results['seeds']), 'seed')}, band: ± 1 std)")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def output_names(pool):
    """The file names of a pool's results: its JSON, its table and its plot."""
    suffix = "" if pool == "distinct" else f"_{pool}"
    return f"results{suffix}.json", f"results{suffix}.md", f"accuracy{suffix}.png"


def read_results(output_dir, pool):
    """The results of an earlier run on ``pool`` in ``output_dir`` (for ``--replot``); a clear exit without them."""
    path = os.path.join(output_dir, output_names(pool)[0])
    if not os.path.exists(path):
        raise SystemExit(
            f"--replot: no {path}; run the script first (with --pool {pool}), or pass the --output-dir that holds it"
        )
    with open(path) as handle:
        return json.load(handle)


def write_outputs(results, output_dir, pool):
    json_name, table_name, plot_name = output_names(pool)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, json_name), "w") as handle:
        json.dump(results, handle, indent=1)
    with open(os.path.join(output_dir, table_name), "w") as handle:
        handle.write(markdown(results))
    plot_curves(results, os.path.join(output_dir, plot_name))


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES), help="what to compare")
    parser.add_argument("--seeds", type=int, default=5, help="runs per strategy (initial digits, weights, noise)")
    parser.add_argument("--initial", type=int, default=20, help="initial labels, a multiple of 10")
    parser.add_argument("--step", type=int, default=10, help="labels acquired per round")
    parser.add_argument("--budget", type=int, default=300, help="labels at the end")
    parser.add_argument("--samples", type=int, default=20, help="Monte Carlo samples of the pool")
    parser.add_argument(
        "--pool",
        choices=POOLS,
        default="distinct",
        help=f"distinct: the other training digits; repeated: each of them {REPEATS} times with noise of std "
        f"{NOISE_STD} (Repeated MNIST), its results in files of their own",
    )
    parser.add_argument("--train-steps", type=int, default=300, help="training steps per round")
    parser.add_argument(
        "--output-dir",
        default=None,
        help=f"where the results go (default {DEFAULT_OUTPUT}; with --quick a folder in the system's temporary one, "
        "so that a smoke test never replaces the published results)",
    )
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 rounds, few steps: checks that it runs")
    parser.add_argument(
        "--replot", action="store_true", help="redraw the outputs of --pool from its results JSON, no training"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budget, args.samples, args.train_steps = 1, args.initial + 2 * args.step, 5, 100
    args.output_dir = _common.results_folder(args.output_dir, DEFAULT_OUTPUT, args.quick, "active_learning")
    for name in ("seeds", "initial", "step", "budget", "samples", "train_steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.initial % 10 or args.budget < args.initial:
        parser.error(f"--initial must be a multiple of 10 and at most --budget, got {args.initial}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.replot:
        results = read_results(args.output_dir, args.pool)
        write_outputs(results, args.output_dir, args.pool)
        return results
    from kerasdrop.datasets import load_digits

    data = load_digits(seed=0)
    distinct = len(data[0][1])
    repeats = REPEATS if args.pool == "repeated" else 1
    pool_size = repeats * (distinct - args.initial)
    if args.budget > args.initial + pool_size:
        copies = f" ({args.initial} initial, {pool_size} in the pool)" if repeats > 1 else ""
        raise SystemExit(f"--budget {args.budget} is more than the {args.initial + pool_size} training digits{copies}")
    seeds = list(range(args.seeds))
    rounds = math.ceil((args.budget - args.initial) / args.step)
    results = {
        "seeds": seeds,
        "initial": args.initial,
        "step": args.step,
        "budget": args.budget,
        "samples": args.samples,
        "train_steps": args.train_steps,
        "test_size": len(data[1][1]),
        "pool": args.pool,
        "pool_size": pool_size,
        "consistent": True,
        "labels": [min(args.initial + r * args.step, args.budget) for r in range(rounds + 1)],
        "runs": {strategy: [] for strategy in args.strategies},
    }
    if args.pool == "repeated":
        results.update(repeats=REPEATS, noise_std=NOISE_STD)
    for seed in seeds:
        learner = Learner(seed, args.train_steps, args.samples)
        for strategy in args.strategies:
            outcome = run(strategy, learner, data, seed, args)
            results["runs"][strategy].append(outcome)
            print(
                f"seed {seed} {LABELS[strategy]:<16s} accuracy {100 * outcome['accuracy'][-1]:.1f} % at "
                f"{len(outcome['labelled'])} labels",
                flush=True,
            )
    write_outputs(results, args.output_dir, args.pool)
    print(markdown(results))
    json_name, table_name, plot_name = output_names(args.pool)
    print(f"wrote {table_name}, {json_name} and {plot_name} to {args.output_dir}")
    return results


if __name__ == "__main__":
    main()
