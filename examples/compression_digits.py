"""Compression with variational dropout on scikit-learn's digits: an MLP 64-300-100-10 made 20x+ smaller.

Models of the same architecture are trained on the digits (1,347 training and 450 test images of 8x8 pixels):

  1. dense:   `Dense` layers with dropout 0.3 after each hidden layer (the baseline, trained for half the epochs);
  2. sparse:  `SparseVariationalDense` layers (Molchanov et al. 2017) started from the dense model's weights, with
              the KL weighted 0.03 / N, then `kerasdrop.compression.sparsify` (pruned weights set to zero) and
              `compress` (units that no weight reads removed); and the same with the full ELBO weight 1 / N;
  3. scratch: `SparseVariationalDense` layers trained from random weights with the ELBO's weight 1 / N;
  4. sbp:     `Dense` layers each followed by `StructuredBayesianPruning` (Neklyudov et al. 2017) and a ReLU,
              trained from scratch with the KL weighted 1 / N, then `compress` (units switched off are removed).

Every KL term is warmed up with `kerasdrop.callbacks.KLWarmup` over the first half of training (from 0 to its
full weight; no recompile), and the learning rate decays linearly to 1% of its start. The table gives test
accuracy, parameters, non-zero parameters, hidden units and the inference time of each plain model (a batch of
8,192 rows, median of 30 alternating runs), and checks each row against its goal (see GOALS).

    python examples/compression_digits.py               # one seed, about 10 minutes on 2 busy CPU cores
    python examples/compression_digits.py --seeds 3     # mean over three seeds
    python examples/compression_digits.py --quick       # a tiny budget, to check that it runs

It runs on every Keras backend (``KERAS_BACKEND=tensorflow|jax|torch``; TensorFlow when unset): the inference times
are those of the backend's compiled test-time pass (``tf.function``, ``jax.jit``; eager PyTorch without autograd).

The models of the first seed are saved under --output-dir (default saved_models/): the dense baseline, the trained
kerasdrop models, and their plain Keras versions (which load without kerasdrop); the table is written there too
(compression_digits.md, and compression_digits.json with every seed).
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The repository root, for the shared timing of benchmarks/_timing.py.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HIDDEN = (300, 100)
BATCH_SIZE = 32
DENSE = "Dense + Dropout 0.3"
# KL weights, as multiples of 1 / N (N = 1,347 training samples; 1 / N is the ELBO's weight). With so few samples the
# full weight prunes sparse-variational layers hard (the table shows its cost); 0.03 / N keeps the accuracy.
SPARSE_KL_SCALES = {"sparse": 0.03, "sparse_full_kl": 1.0}
SBP_KL_SCALE = 1.0
TIMING_ROWS = 8192
SPARSE = "SparseVariationalDense (KL x0.03)"
FULL_KL = "SparseVariationalDense (KL x1)"
SCRATCH = "SparseVariationalDense from scratch (KL x1)"
SBP = "StructuredBayesianPruning from scratch (KL x1)"
# Goals of the plain models against the dense one: (row, "nonzero" or "params", fewest times fewer, most points lost).
GOALS = [
    (f"{SPARSE}, sparsify", "nonzero", 20.0, 1.0),
    (f"{SPARSE}, compress", "nonzero", 20.0, 1.0),
    (f"{SCRATCH}, sparsify", "nonzero", 40.0, 2.0),
    (f"{SCRATCH}, compress", "nonzero", 40.0, 2.0),
    (f"{SBP}, compress", "params", 5.0, 2.0),
]


def dense_mlp(seed):
    import keras

    import kerasdrop

    model = keras.Sequential([keras.Input((64,))], name="dense")
    for index, units in enumerate(HIDDEN):
        model.add(keras.layers.Dense(units, activation="relu"))
        model.add(kerasdrop.Dropout(0.3, seed=seed + index))
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model


def sparse_mlp(kl_weight, seed, pretrained=None):
    """The MLP with `SparseVariationalDense` layers, started from the kernels and biases of ``pretrained`` (a
    trained dense MLP), or from Keras's random initialization when it is None."""
    import keras

    import kerasdrop

    sizes = [(HIDDEN[0], "relu"), (HIDDEN[1], "relu"), (10, "softmax")]
    layers = [
        kerasdrop.SparseVariationalDense(units, activation=activation, kl_weight=kl_weight, seed=seed + index)
        for index, (units, activation) in enumerate(sizes)
    ]
    model = keras.Sequential([keras.Input((64,)), *layers], name="sparse_variational")
    if pretrained is None:
        return model
    sources = [layer for layer in pretrained.layers if isinstance(layer, keras.layers.Dense)]
    for layer, source in zip(layers, sources, strict=True):
        # Copies: on JAX a variable assigned another variable shares its buffer, which the next training run of
        # either model donates to XLA (and deletes for the other).
        layer.kernel.assign(keras.ops.convert_to_numpy(source.kernel))
        layer.bias.assign(keras.ops.convert_to_numpy(source.bias))
    return model


def sbp_mlp(kl_weight, seed):
    """The MLP with `StructuredBayesianPruning` after each hidden `Dense` (before its ReLU), trained from scratch."""
    import keras

    import kerasdrop

    model = keras.Sequential([keras.Input((64,))], name="structured_pruning")
    for index, units in enumerate(HIDDEN):
        model.add(keras.layers.Dense(units))
        model.add(kerasdrop.StructuredBayesianPruning(kl_weight=kl_weight, seed=seed + index))
        model.add(keras.layers.ReLU())
    model.add(keras.layers.Dense(10, activation="softmax"))
    return model


def train(model, data, epochs, learning_rate=1e-3):
    """Adam with a linearly decaying rate; the KL terms (if any) warm up over the first half of the epochs."""
    import keras

    from kerasdrop.callbacks import KLWarmup, kl_layers

    (x_train, y_train), _ = data
    steps = epochs * -(-len(x_train) // BATCH_SIZE)
    schedule = keras.optimizers.schedules.PolynomialDecay(learning_rate, steps, learning_rate * 0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
    callbacks = [KLWarmup(max(1, epochs // 2))] if kl_layers(model) else []
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=epochs, verbose=0, callbacks=callbacks)
    return model


def accuracy(model, data):
    _, (x_test, y_test) = data
    return float((model.predict(x_test, verbose=0).argmax(axis=1) == y_test).mean())


def compiled_forward(model):
    """``forward(x) -> NumPy array``: the test-time pass of ``model``, compiled as its backend compiles it (a
    ``tf.function`` on TensorFlow, ``jax.jit`` of ``model.stateless_call`` on JAX); PyTorch runs it eagerly without
    autograd, as Keras's own ``predict`` does there."""
    import keras
    import numpy as np

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        function = tf.function(lambda v: model(v, training=False))
        return lambda x: function(x).numpy()
    if backend == "jax":
        import jax

        trainable = [variable.value for variable in model.trainable_variables]
        non_trainable = [variable.value for variable in model.non_trainable_variables]
        jitted = jax.jit(lambda t, n, v: model.stateless_call(t, n, v, training=False)[0])
        return lambda x: np.asarray(jitted(trainable, non_trainable, x))
    import torch

    def forward(x):
        with torch.no_grad():
            return keras.ops.convert_to_numpy(model(x, training=False))

    return forward


def inference_times(models, rows, repeats):
    """Median seconds of a compiled forward pass of each model on ``rows`` rows, the models run in alternation."""
    import keras
    import numpy as np

    from benchmarks._timing import median_times

    x = keras.ops.convert_to_tensor(np.random.default_rng(0).uniform(size=(rows, 64)).astype("float32"))
    functions = {name: compiled_forward(model) for name, model in models.items()}
    return median_times({name: lambda f=f: f(x) for name, f in functions.items()}, repeats=repeats)


def hidden_units(model):
    import keras

    return [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)][:-1]


def run_seed(seed, data, epochs, output_dir, save, quick):
    """Trains the models for one seed; returns one row per plain model."""
    import keras
    import numpy as np

    from kerasdrop.compression import compress, sparsify

    keras.utils.set_random_seed(seed)
    train_size = len(data[0][0])
    dense = train(dense_mlp(seed), data, max(1, epochs // 2))
    trained = {"dense": dense}
    for name, scale in SPARSE_KL_SCALES.items():  # Molchanov et al. start from a trained network
        trained[name] = train(sparse_mlp(scale / train_size, seed, pretrained=dense), data, epochs)
    trained["scratch"] = train(sparse_mlp(1.0 / train_size, seed), data, epochs)
    trained["sbp"] = train(sbp_mlp(SBP_KL_SCALE / train_size, seed), data, epochs, learning_rate=3e-3)
    sparse_plain, sparse_report = sparsify(trained["sparse"])
    scratch_plain, scratch_report = sparsify(trained["scratch"])
    titles = {"sparse": SPARSE, "sparse_full_kl": FULL_KL, "scratch": SCRATCH, "sbp": SBP}
    compact = {name: compress(trained[name]) for name in titles}
    dense_params = dense.count_params()
    plain = {  # name -> (plain Keras model, parameters, non-zero parameters)
        DENSE: (dense, dense_params, dense_params),
        f"{SPARSE}, sparsify": (sparse_plain, sparse_report.params_after, sparse_report.nonzero_after),
    }
    for name, title in titles.items():
        if name == "scratch":
            plain[f"{SCRATCH}, sparsify"] = (scratch_plain, scratch_report.params_after, scratch_report.nonzero_after)
        model, report = compact[name]
        plain[f"{title}, compress"] = (model, report.params_after, report.nonzero_after)
    models = {name: model for name, (model, _, _) in plain.items()}
    times = inference_times(models, 256 if quick else TIMING_ROWS, 3 if quick else 30)
    rows = []
    for name, (model, params, nonzero) in plain.items():
        rows.append(
            {
                "model": name,
                "accuracy": accuracy(model, data),
                "params": int(params),
                "nonzero": int(nonzero),
                "fewer_nonzero": dense_params / max(nonzero, 1),
                "fewer_params": dense_params / max(params, 1),
                "hidden_units": hidden_units(model),
                "ms": times[name] * 1e3,
                "speedup": times[DENSE] / times[name],
                "timing_rows": 256 if quick else TIMING_ROWS,
            }
        )
    # The plain models give the trained models' test-time predictions.
    x_test = data[1][0]
    for name, (result, _) in compact.items():
        source = trained[name]
        gap = np.abs(source.predict(x_test, verbose=0) - result.predict(x_test, verbose=0)).max()
        assert gap < 1e-4, f"compressed model differs from {source.name} by {gap}"
    if save:
        files = {
            "compression_digits_dense.keras": trained["dense"],
            "compression_digits_sparse_variational.keras": trained["sparse"],
            "compression_digits_sparse_plain.keras": sparse_plain,
            "compression_digits_sparse_compact.keras": compact["sparse"][0],
            "compression_digits_scratch.keras": trained["scratch"],
            "compression_digits_scratch_compact.keras": compact["scratch"][0],
            "compression_digits_sbp.keras": trained["sbp"],
            "compression_digits_sbp_compact.keras": compact["sbp"][0],
        }
        for filename, model in files.items():
            model.save(os.path.join(output_dir, filename))
    return rows


def summarize(runs):
    """Mean (and standard deviation across seeds) of each model's row."""
    summary = []
    for index, first in enumerate(runs[0]):
        rows = [run[index] for run in runs]
        entry = {"model": first["model"], "seeds": len(rows), "timing_rows": first["timing_rows"]}
        for key in ("accuracy", "params", "nonzero", "fewer_nonzero", "fewer_params", "ms", "speedup"):
            values = [row[key] for row in rows]
            entry[key] = statistics.mean(values)
            entry[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        entry["hidden_units"] = [
            statistics.mean(units) for units in zip(*(row["hidden_units"] for row in rows), strict=True)
        ]
        summary.append(entry)
    return summary


def table(summary):
    lines = [
        "| model | test accuracy (%) | parameters | fewer parameters | non-zero parameters | fewer non-zero | "
        f"hidden units | inference (ms / {summary[0]['timing_rows']} rows) | speed-up |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in summary:
        spread = f" ± {100 * row['accuracy_std']:.1f}" if row["seeds"] > 1 else ""
        units = "-".join(f"{units:.0f}" for units in row["hidden_units"])
        lines.append(
            f"| {row['model']} | {100 * row['accuracy']:.1f}{spread} | {row['params']:,.0f} | "
            f"{row['fewer_params']:.1f}x | {row['nonzero']:,.0f} | {row['fewer_nonzero']:.1f}x | {units} | "
            f"{row['ms']:.2f} | {row['speedup']:.2f}x |"
        )
    return "\n".join(lines)


def goals_met(summary):
    """``{row: bool}`` for each row of GOALS: mean accuracy and mean reduction against the dense model's."""
    dense = summary[0]
    rows = {row["model"]: row for row in summary}
    return {
        name: rows[name][f"fewer_{measure}"] >= fewer and rows[name]["accuracy"] >= dense["accuracy"] - points / 100
        for name, measure, fewer, points in GOALS
    }


def goal_lines(met):
    return [
        f"Goal for {name}: >= {fewer:g}x fewer {'non-zero ' if measure == 'nonzero' else ''}parameters, accuracy "
        f">= dense - {points:g} point(s): {'met' if met[name] else 'not met'}"
        for name, measure, fewer, points in GOALS
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=200, help="epochs of the variational models (dense: half)")
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds to average over")
    parser.add_argument("--output-dir", default="saved_models", help="where the models and the table are saved")
    parser.add_argument("--quick", action="store_true", help="tiny budget, to check that the script runs")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.seeds < 1:
        parser.error("--epochs and --seeds must be positive")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from benchmarks._timing import machine_description
    from kerasdrop.datasets import load_digits

    epochs = 3 if args.quick else args.epochs
    os.makedirs(args.output_dir, exist_ok=True)
    data = load_digits("flat")
    start = time.perf_counter()
    runs = [run_seed(seed, data, epochs, args.output_dir, seed == 0, args.quick) for seed in range(args.seeds)]
    summary = summarize(runs)
    report = table(summary)
    met = goals_met(summary)
    lines = [
        report,
        "",
        *goal_lines(met),
        f"{args.seeds} seed(s), {epochs} epochs, {time.perf_counter() - start:.0f} s; machine: {machine_description()}",
    ]
    print("\n".join(lines))
    with open(os.path.join(args.output_dir, "compression_digits.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open(os.path.join(args.output_dir, "compression_digits.json"), "w") as handle:
        json.dump({"summary": summary, "runs": runs, "goal_met": met}, handle, indent=2)
    return {"summary": summary, "runs": runs, "goal_met": met}


if __name__ == "__main__":
    main()
