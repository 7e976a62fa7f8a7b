"""Monte Carlo dropout prediction: `kerasdrop.MCDropout.predict` against the loops Keras users write.

Model: MLP 784-512-512-10 with Keras `Dropout(0.5)` after each hidden layer; 1,000 inputs; T = 50 samples.
Candidates, run alternately in one process:

- naive eager loop: ``np.stack([model(x, training=True) for _ in range(50)])``;
- the same loop inside one ``tf.function``;
- ``MCDropout(model, samples=50).predict(x)`` (and with ``fast_masks=False``, and at rate 0.3 where masks cannot be
  packed, to show where the speed comes from).

Goals: MCDropout >= 4x (aim 5x) faster than the eager loop and >= 1.5x faster than the tf.function loop,
with predictive means that agree statistically. Peak memory is reported against the memory budget.

Run: ``.venv/bin/python benchmarks/bench_mc.py`` (about a minute on 2 cores).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from benchmarks._timing import machine_description, median_times, peak_rss_during, report, rss_mib  # noqa: E402

SAMPLES = 50
INPUTS = 1000


def build_mlp(rate, seed=0):
    import keras

    init = keras.initializers.GlorotUniform
    return keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(512, activation="relu", kernel_initializer=init(seed)),
            keras.layers.Dropout(rate),
            keras.layers.Dense(512, activation="relu", kernel_initializer=init(seed + 1)),
            keras.layers.Dropout(rate),
            keras.layers.Dense(10, activation="softmax", kernel_initializer=init(seed + 2)),
        ]
    )


def candidates(model, x, label):
    import keras
    import numpy as np
    import tensorflow as tf

    import kerasdrop

    x_tensor = tf.constant(x)

    @tf.function
    def loop_in_function(inputs):
        return tf.stack([model(inputs, training=True) for _ in range(SAMPLES)])

    mc = kerasdrop.MCDropout(model, samples=SAMPLES)
    mc_plain = kerasdrop.MCDropout(model, samples=SAMPLES, fast_masks=False)
    found = {
        f"{label} naive eager loop": lambda: np.stack(
            [keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(SAMPLES)]
        ),
        f"{label} loop in one tf.function": lambda: loop_in_function(x_tensor).numpy(),
        f"{label} MCDropout.predict": lambda: mc.predict(x, verbose=0).mean,
        f"{label} MCDropout.predict fast_masks=False": lambda: mc_plain.predict(x, verbose=0).mean,
    }
    return found, mc


def agreement(model, mc, x):
    """Largest |difference| of the predictive means, in units of its standard error (both from T samples)."""
    import keras
    import numpy as np

    naive = np.stack([keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(SAMPLES)])
    result = mc.predict(x, verbose=0)
    standard_error = np.sqrt((naive.var(axis=0) + result.variance) / SAMPLES) + 1e-12
    z = np.abs(naive.mean(axis=0) - result.mean) / standard_error
    # Over 10,000 means a few |z| > 4 happen by chance; the share above 3 should be near 0.27%.
    return float(z.max()), float(np.mean(z > 3))


def memory_child(budget):
    """In a fresh process: RSS added by one MCDropout.predict on the 1,000 inputs, after a small traced warm-up."""
    import keras
    import numpy as np

    import kerasdrop

    keras.utils.set_random_seed(0)
    model = build_mlp(0.5)
    x = np.random.default_rng(0).random((INPUTS, 784), dtype="float32")
    mc = kerasdrop.MCDropout(model, samples=SAMPLES, memory_budget_mb=budget)
    mc.predict(x[:8], verbose=0)  # traces the sampler; allocates little
    row_bytes, rows = mc.rows_per_call(x[:1])
    baseline = rss_mib()
    peak = peak_rss_during(lambda: mc.predict(x, verbose=0))
    print(
        f"  budget {budget:6.1f} MiB: estimate {row_bytes} B/row -> {rows} rows a call; "
        f"peak RSS +{peak - baseline:6.1f} MiB above the {baseline:.0f} MiB before the call"
    )


def memory_report():
    import subprocess

    print("\nPeak memory of MCDropout.predict against its budget (fresh process for each budget)")
    for budget in (16, 256):
        subprocess.run([sys.executable, __file__, "--memory-child", str(budget)], check=True)


def with_cpu_time(candidates):
    """The candidates, each also logging the process CPU time of its calls; and the dict of those logs.

    On a busy machine wall time depends on the share of the cores a candidate wins (many small parallel ops win
    more); CPU time, the work done, is the steadier figure there.
    """
    logs = {name: [] for name in candidates}

    def timed(name, function):
        def call():
            start = time.process_time()
            function()
            logs[name].append(time.process_time() - start)

        return call

    return {name: timed(name, function) for name, function in candidates.items()}, logs


def timed_report(title, found, baseline, repeats):
    import statistics

    wrapped, logs = with_cpu_time(found)
    medians = median_times(wrapped, repeats=repeats, warmup=1)
    report(title, medians, baseline)
    cpu = {name: statistics.median(values[-repeats:]) for name, values in logs.items()}
    print("  process CPU time (all threads):")
    for name, seconds in cpu.items():
        print(f"  {name:<45s} {seconds * 1e3:9.3f} ms   ratio {seconds / cpu[baseline]:.3f}")
    return medians, cpu


def main():
    import keras
    import numpy as np

    print(f"machine: {machine_description()}")
    rng = np.random.default_rng(0)
    x = rng.random((INPUTS, 784), dtype="float32")
    keras.utils.set_random_seed(0)
    model = build_mlp(0.5)
    found, mc = candidates(model, x, "rate 0.5:")
    title = f"MLP 784-512-512-10, {INPUTS} inputs, T={SAMPLES}"
    eager, loop, mine = "rate 0.5: naive eager loop", "rate 0.5: loop in one tf.function", "rate 0.5: MCDropout.predict"
    medians, cpu = timed_report(title, found, eager, repeats=5)
    for label, times in (("wall", medians), ("CPU", cpu)):
        print(
            f"  {label}: speed-up vs eager loop {times[eager] / times[mine]:.2f}x (goal >= 4x, aim 5x), "
            f"vs tf.function loop {times[loop] / times[mine]:.2f}x (goal >= 1.5x)"
        )
    worst, share = agreement(model, mc, x)
    print(
        f"  predictive means vs eager loop: max |z| {worst:.2f} over {x.shape[0] * 10} means, share |z|>3: {share:.4f}"
    )

    found, _ = candidates(build_mlp(0.3), x, "rate 0.3:")
    for name in ("rate 0.3: naive eager loop", "rate 0.3: MCDropout.predict fast_masks=False"):
        found.pop(name)  # the eager loop costs as at rate 0.5; fast_masks has no effect at a non-dyadic rate
    timed_report("same at rate 0.3 (masks cannot be packed)", found, "rate 0.3: loop in one tf.function", repeats=5)
    memory_report()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-child":
        memory_child(float(sys.argv[2]))
    else:
        main()
