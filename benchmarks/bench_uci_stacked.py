"""Step rates of `examples/uci_regression.py` at the full protocol's shapes, and the projected time of a full run.

For each data set of ``--data-dir`` (its sizes only: rows, features, grid, splits; nothing is trained to the end):
the networks of each phase (MC dropout grid ``S × 12``, Concrete ``S × 3``, heteroscedastic ``S × 4``, and the
retraining ``S × 1`` of each) train for ``--steps`` steps after compilation, the validation scorer draws a few
hundred samples, and `kerasdrop.MCDropout` samples one split's test rows; the projection multiplies each rate by
the protocol's counts (4,000 epochs, 10,000 validation and test samples, 20 splits). Wall time and this process's
CPU time are both reported: on a shared machine the wall time is the slower, CPU time / cores the lower bound.

    python benchmarks/bench_uci_stacked.py --data-dir ../shared/uci               # about 5 minutes on 2 cores
    python benchmarks/bench_uci_stacked.py --data-dir ../shared/uci --alternatives  # + the ways of feeding steps
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, ROOT)

import _uci_stacked  # noqa: E402
import numpy as np  # noqa: E402
import uci_regression  # noqa: E402  (sets the Keras backend)
from _uci_data import TRAIN_FRACTION, load  # noqa: E402

from benchmarks._timing import machine_description  # noqa: E402


def timed(function):
    """``(wall seconds, CPU seconds of this process)`` of ``function()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def milliseconds(rate):
    return f"{1e3 * rate[0]:6.2f} ms/step (cpu {1e3 * rate[1]:6.2f})"


def step_rate(phase, data, rows, steps, workers):
    """``(wall, cpu)`` seconds per training step of ``phase`` on the first ``rows`` training rows of each split, the
    splits cut into ``workers`` shards trained in threads as the example does; and the trained `Trained`."""
    trained, models, x, y = uci_regression.stack(phase, data, [part[:rows] for part in data.train], 0, workers)
    per_epoch = -(-rows // _uci_stacked.BATCH_SIZE)
    uci_regression.fit_shards(models, trained.shards, x, y, 1, 0, workers)  # compiles
    epochs = max(1, steps // per_epoch)
    wall, cpu = timed(lambda: uci_regression.fit_shards(models, trained.shards, x, y, epochs, 1, workers))
    return wall / (epochs * per_epoch), cpu / (epochs * per_epoch), trained


def validation_rate(trained, phase, data, rows, workers, samples=500):
    """``(wall, cpu)`` seconds per validation sample (every network of the grid), the shards' scorers in threads
    as in `uci_regression.validate`, timed on their second call (the first compiles)."""
    x, y, _ = data.stacked([part[rows:] for part in data.train], trained.x_stats)
    precision = phase.precision()
    tasks = []
    for networks, shard in zip(trained.networks, trained.shards, strict=True):
        scorer = _uci_stacked.Scorer(networks, 0)
        tau = None if precision is None else precision[shard]
        arguments = (x[:, shard], y[:, shard], trained.y_mean[shard], trained.y_std[shard], samples, tau)
        tasks.append(lambda scorer=scorer, arguments=arguments: scorer.score(*arguments))
    uci_regression.in_parallel(tasks, workers)
    wall, cpu = timed(lambda: uci_regression.in_parallel(tasks, workers))
    return wall / samples, cpu / samples


def test_rate(trained, phase, data, workers, samples=500):
    """``(wall, cpu)`` seconds per MCDropout test sample of every split (the splits in threads, as in
    `uci_regression.test_splits`), timed on the second call of each sampler."""
    import kerasdrop

    output_type = "gaussian" if phase.outputs == 2 else "regression"
    tasks = []
    for split, rows in enumerate(data.test):
        x = ((data.x[rows] - trained.x_stats[0][split]) / trained.x_stats[1][split]).astype("float32")
        model = uci_regression.plain_model(*trained.locate(split), phase.method)
        mc = kerasdrop.MCDropout(model, samples=samples, output_type=output_type, seed=split)
        tasks.append(lambda mc=mc, x=x: mc.predict(x, keep_samples=True, verbose=0))
    uci_regression.in_parallel(tasks, workers)
    wall, cpu = timed(lambda: uci_regression.in_parallel(tasks, workers))
    return wall / samples, cpu / samples


def project(data, steps, epochs, samples, workers, print_fn=print):
    """Measures every phase of ``data`` and prints the projected time of the protocol; returns it (wall, cpu)."""
    splits = len(data.train)
    fit_rows = int(TRAIN_FRACTION * data.train_rows)
    counts = {"grid": epochs * -(-fit_rows // 128), "final": epochs * -(-data.train_rows // 128)}
    total = [0.0, 0.0]
    for method in uci_regression.METHODS:
        grid = uci_regression.grid_phase(method, data, splits)
        final = grid.chosen(np.zeros(splits, "int64"))
        grid_rate = step_rate(grid, data, fit_rows, steps, workers)
        final_rate = step_rate(final, data, data.train_rows, steps, workers)
        parts = {
            "grid": [counts["grid"] * rate for rate in grid_rate[:2]],
            "validation": [samples * rate for rate in validation_rate(grid_rate[2], grid, data, fit_rows, workers)],
            "final": [counts["final"] * rate for rate in final_rate[:2]],
            "test": [samples * rate for rate in test_rate(final_rate[2], final, data, workers)],
        }
        seconds = [sum(part[index] for part in parts.values()) for index in range(2)]
        total = [total[index] + seconds[index] for index in range(2)]
        print_fn(
            f"  {method:<16s} grid {grid.rates.size} nets {milliseconds(grid_rate)}, retrain {splits} nets "
            f"{milliseconds(final_rate)}; projected "
            + ", ".join(f"{name} {part[0]:.0f} s" for name, part in parts.items())
            + f": {seconds[0]:.0f} s wall, {seconds[1]:.0f} s cpu"
        )
    print_fn(f"  {data.name}: projected {total[0]:.0f} s wall ({total[0] / 60:.1f} min), {total[1]:.0f} s cpu")
    return total


def keras_fit_rate(phase, data, rows, steps, steps_per_execution, arrays=False):
    """``(wall, cpu)`` seconds per step of the alternative: Keras ``fit`` with ``steps_per_execution`` on one
    ``tf.data`` pipeline of every epoch's batches (``arrays=False``), or on arrays, ``epochs=E`` (Keras shuffles
    and batches each epoch itself)."""
    import tensorflow as tf

    x, y, _ = data.stacked([part[:rows] for part in data.train])
    networks = _uci_stacked.StackedNetworks(phase.rates, x.shape[-1], data.hidden)
    model = _uci_stacked.StackedModel(networks, **phase.losses(rows))
    model.compile(optimizer="adam", steps_per_execution=steps_per_execution, jit_compile=True)
    x, y = tf.constant(x, "float32"), tf.constant(y[..., None], "float32")
    per_epoch = -(-rows // 128)

    def run(epochs):
        if arrays:
            return model.fit(x, y, batch_size=128, epochs=epochs, verbose=0)
        orders = tf.data.Dataset.range(epochs).map(lambda e: _uci_stacked.epoch_order(rows, 0, e))
        lengths = [128] * (rows // 128) + ([rows % 128] if rows % 128 else [])
        batches = orders.flat_map(
            lambda order: tf.data.Dataset.from_tensor_slices(tf.RaggedTensor.from_row_lengths(order, lengths))
        )
        batches = batches.map(lambda index: (tf.gather(x, index), tf.gather(y, index)))
        batches = batches.apply(tf.data.experimental.assert_cardinality(epochs * per_epoch))
        return model.fit(batches, epochs=1, shuffle=False, verbose=0)

    run(2)
    epochs = max(1, steps // per_epoch)
    wall, cpu = timed(lambda: run(epochs))
    return wall / (epochs * per_epoch), cpu / (epochs * per_epoch)


def alternatives(data, steps, print_fn=print):
    """The ways of running the grid's steps, on ``data``'s shapes: Keras ``fit`` (on arrays, one epoch a call of
    its loop; on one dataset of all epochs with several ``steps_per_execution``) against the example's XLA loop of
    whole epochs (one model, and two shards in two threads)."""
    phase = uci_regression.grid_phase("mc_dropout", data, len(data.train))
    rows = int(TRAIN_FRACTION * data.train_rows)
    per_epoch = -(-rows // 128)
    rates = {"Keras fit on arrays, epochs=E": keras_fit_rate(phase, data, rows, steps, per_epoch, arrays=True)}
    for steps_per_execution in (1, 100, 2000):
        name = f"Keras fit, one dataset of all epochs, steps_per_execution {steps_per_execution}"
        rates[name] = keras_fit_rate(phase, data, rows, steps, steps_per_execution)
    for workers in (1, 2):
        rates[f"XLA loop of whole epochs, {workers} shard(s)"] = step_rate(phase, data, rows, steps, workers)[:2]
    for name, rate in rates.items():
        print_fn(f"  {name}: {milliseconds(rate)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--datasets", nargs="+", default=["concrete", "energy", "kin8nm", "wine-quality-red", "yacht"])
    parser.add_argument("--steps", type=int, default=300, help="training steps timed per phase (default 300)")
    parser.add_argument("--alternatives", action="store_true", help="also time the ways of feeding the steps")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="threads (default: the cores)")
    args = parser.parse_args(argv)
    print(f"machine: {machine_description()}")
    grand = [0.0, 0.0]
    for name in args.datasets:
        data = load(args.data_dir, name, 20)
        grid = f"{len(data.rates)} x {len(data.taus)}"
        print(f"{name}: {data.train_rows} training rows, {data.x.shape[1]} features, grid {grid}")
        total = project(data, args.steps, data.epochs, uci_regression.SAMPLES, args.workers)
        grand = [grand[index] + total[index] for index in range(2)]
        if args.alternatives and name in ("yacht", "kin8nm"):
            alternatives(data, args.steps)
    print(f"all: projected {grand[0]:.0f} s wall ({grand[0] / 60:.1f} min), {grand[1]:.0f} s cpu")
    return grand


if __name__ == "__main__":
    main()
