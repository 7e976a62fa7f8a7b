"""Monte Carlo dropout prediction: `kerasdrop.MCDropout.predict` against the loops Keras users write.

Model: MLP 784-512-512-10 with Keras `Dropout(0.5)` after each hidden layer; 1,000 inputs; T = 50 samples. Runs on
the backend KERAS_BACKEND names (TensorFlow by default). Candidates, run alternately in one process:

- naive eager loop: ``np.stack([model(x, training=True) for _ in range(50)])``;
- the same loop compiled the backend's way: inside one ``tf.function`` (TensorFlow), one ``jax.jit`` over
  ``model.stateless_call`` in a ``jax.lax.scan`` (JAX); on PyTorch, which compiles nothing here, the loop under
  ``torch.no_grad()``;
- ``MCDropout(model, samples=50).predict(x)`` (and with ``fast_masks=False``, and at rate 0.3 where masks cannot be
  packed, to show where the speed comes from), and with ``consistent=True`` (joint draws: one mask per sample,
  shared by every input; goal: at most 1.1x the time of the default).

Goals: MCDropout >= 4x (aim 5x) faster than the eager loop and >= 1.5x faster than the tf.function loop on
TensorFlow; >= 3x faster than the eager loop on JAX and PyTorch; predictive means that agree statistically. Peak
memory is reported against the memory budget.

Run: ``KERAS_BACKEND=jax .venv/bin/python benchmarks/bench_mc.py`` (about a minute on 2 cores; JAX compiles one
sampler per batch shape first). ``--torch-compile`` (PyTorch) also times MCDropout with its sampler compiled by
``torch.compile``, the alternative kerasdrop does not take (see docs/design.md).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from benchmarks._timing import machine_description, median_times, peak_rss_during, report, rss_mib  # noqa: E402

SAMPLES = 50
INPUTS = 1000
COMPILED_LOOP = {
    "tensorflow": "loop in one tf.function",
    "jax": "loop in one jax.jit",
    "torch": "loop under torch.no_grad",
}
GOALS = {
    "tensorflow": "goal >= 4x, aim 5x; vs the tf.function loop >= 1.5x",
    "jax": "goal >= 3x",
    "torch": "goal >= 3x",
}


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


def compiled_loop(model, x):
    """The T training-mode calls compiled as one program (see the module docstring); a function of no argument
    that returns the ``(T, N, 10)`` samples as a NumPy array."""
    import keras
    import numpy as np

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x_tensor = tf.constant(x)

        @tf.function
        def loop_in_function(inputs):
            return tf.stack([model(inputs, training=True) for _ in range(SAMPLES)])

        return lambda: loop_in_function(x_tensor).numpy()
    if backend == "jax":
        import jax

        trainable = [variable.value for variable in model.trainable_variables]
        state = [[variable.value for variable in model.non_trainable_variables]]  # the seed states move
        x_array = jax.numpy.asarray(x)

        @jax.jit
        def loop(trainable, non_trainable, inputs):
            def body(non_trainable, _):
                outputs, non_trainable = model.stateless_call(trainable, non_trainable, inputs, training=True)
                return non_trainable, outputs

            non_trainable, outputs = jax.lax.scan(body, non_trainable, None, length=SAMPLES)
            return outputs, non_trainable

        def run():
            outputs, state[0] = loop(trainable, state[0], x_array)
            return np.asarray(outputs)

        return run
    import torch

    x_tensor = keras.ops.convert_to_tensor(x)

    def no_grad_loop():
        with torch.no_grad():
            return np.stack([keras.ops.convert_to_numpy(model(x_tensor, training=True)) for _ in range(SAMPLES)])

    return no_grad_loop


def candidates(model, x, label):
    import keras
    import numpy as np

    import kerasdrop

    mc = kerasdrop.MCDropout(model, samples=SAMPLES)
    mc_plain = kerasdrop.MCDropout(model, samples=SAMPLES, fast_masks=False)
    mc_joint = kerasdrop.MCDropout(model, samples=SAMPLES, consistent=True)
    found = {
        f"{label} naive eager loop": lambda: np.stack(
            [keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(SAMPLES)]
        ),
        f"{label} {COMPILED_LOOP[keras.backend.backend()]}": compiled_loop(model, x),
        f"{label} MCDropout.predict": lambda: mc.predict(x, verbose=0).mean,
        f"{label} MCDropout.predict fast_masks=False": lambda: mc_plain.predict(x, verbose=0).mean,
        f"{label} MCDropout.predict consistent=True": lambda: mc_joint.predict(x, verbose=0).mean,
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
    """In a fresh process: RSS added by one MCDropout.predict on the 1,000 inputs, after a warm-up that compiles
    the sampler: a small batch (TensorFlow traces one function for every batch size; PyTorch has nothing to
    compile), or on JAX, which compiles per batch shape, the same inputs once."""
    import keras
    import numpy as np

    import kerasdrop

    keras.utils.set_random_seed(0)
    model = build_mlp(0.5)
    x = np.random.default_rng(0).random((INPUTS, 784), dtype="float32")
    mc = kerasdrop.MCDropout(model, samples=SAMPLES, memory_budget_mb=budget)
    mc.predict(x if keras.backend.backend() == "jax" else x[:8], verbose=0)
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


def torch_compile_report(model, x):
    """MCDropout with its sampling function compiled by ``torch.compile`` against the eager one (PyTorch)."""
    import torch

    import kerasdrop

    eager = kerasdrop.MCDropout(model, samples=SAMPLES)
    compiled = kerasdrop.MCDropout(model, samples=SAMPLES)
    sampler = compiled._sampler
    # The sampling pass without its trace counter (a Python int that torch.compile would guard on, recompiling).
    function = torch.compile(lambda frontier, copies: sampler.sample_once(frontier, copies, sampler.draw_states(1)[0]))

    def without_gradients(frontier, copies):
        with torch.no_grad():
            return function(frontier, copies)

    sampler._compiled_sample = without_gradients
    start = time.perf_counter()
    compiled.predict(x, verbose=0)
    print(f"\ntorch.compile: first MCDropout.predict (compiling) {time.perf_counter() - start:.1f} s")
    medians = median_times(
        {
            "MCDropout.predict, eager under torch.no_grad": lambda: eager.predict(x, verbose=0).mean,
            "MCDropout.predict, sampler under torch.compile": lambda: compiled.predict(x, verbose=0).mean,
        },
        repeats=5,
        warmup=1,
    )
    report("MCDropout with and without torch.compile", medians, "MCDropout.predict, eager under torch.no_grad")


def main():
    import keras
    import numpy as np

    backend = keras.backend.backend()
    print(f"machine: {machine_description()}")
    rng = np.random.default_rng(0)
    x = rng.random((INPUTS, 784), dtype="float32")
    keras.utils.set_random_seed(0)
    model = build_mlp(0.5)
    if "--torch-compile" in sys.argv[1:]:
        if backend != "torch":
            raise SystemExit("--torch-compile needs KERAS_BACKEND=torch")
        torch_compile_report(model, x)
        return
    found, mc = candidates(model, x, "rate 0.5:")
    start = time.perf_counter()
    mc.predict(x, verbose=0)
    print(f"first MCDropout.predict (tracing, compiling): {time.perf_counter() - start:.2f} s")
    title = f"MLP 784-512-512-10, {INPUTS} inputs, T={SAMPLES}, backend {backend}"
    eager, mine = "rate 0.5: naive eager loop", "rate 0.5: MCDropout.predict"
    loop = f"rate 0.5: {COMPILED_LOOP[backend]}"
    medians, cpu = timed_report(title, found, eager, repeats=5)
    for label, times in (("wall", medians), ("CPU", cpu)):
        print(
            f"  {label}: speed-up vs eager loop {times[eager] / times[mine]:.2f}x ({GOALS[backend]}), "
            f"vs {COMPILED_LOOP[backend]} {times[loop] / times[mine]:.2f}x"
        )
    joint = "rate 0.5: MCDropout.predict consistent=True"
    for label, times in (("wall", medians), ("CPU", cpu)):
        print(f"  {label}: joint draws take {times[joint] / times[mine]:.3f}x the time of the default (goal <= 1.1x)")
    worst, share = agreement(model, mc, x)
    print(
        f"  predictive means vs eager loop: max |z| {worst:.2f} over {x.shape[0] * 10} means, share |z|>3: {share:.4f}"
    )

    found, _ = candidates(build_mlp(0.3), x, "rate 0.3:")
    for name in ("rate 0.3: naive eager loop", "rate 0.3: MCDropout.predict fast_masks=False"):
        found.pop(name)  # the eager loop costs as at rate 0.5; fast_masks has no effect at a non-dyadic rate
    baseline = f"rate 0.3: {COMPILED_LOOP[backend]}"
    _, cpu = timed_report("same at rate 0.3 (masks cannot be packed)", found, baseline, repeats=5)
    ratio = cpu["rate 0.3: MCDropout.predict consistent=True"] / cpu["rate 0.3: MCDropout.predict"]
    print(f"  CPU: joint draws take {ratio:.3f}x the time of the default (goal <= 1.1x)")
    memory_report()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--memory-child":
        memory_child(float(sys.argv[2]))
    else:
        main()
