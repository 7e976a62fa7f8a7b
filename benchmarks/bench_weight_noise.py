"""Training-step cost of the weight-noise layers against `Dense` + `Dropout` of the same size.

Each candidate is one layer 784 -> 512 (ReLU) trained on a batch of 128 by a compiled step (forward, backward,
SGD update, KL/regulariser losses included). Goals: `DropConnectDense` (one mask per call) <= 1.3x the baseline;
`FastDropoutDense`, `VariationalDense`, `SparseVariationalDense` <= 2.5x. DropConnect is also timed at rate 0.3,
whose keep probability is not dyadic (its masks then take one uniform per weight instead of packed random bits).
`per_sample=True` is measured and reported (no goal: it draws a mask of batch x 784 x 512).

Run: `.venv/bin/python benchmarks/bench_weight_noise.py` (about a minute on a laptop CPU).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _timing  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import kerasdrop  # noqa: E402

BATCH, IN, UNITS, RATE = 128, 784, 512, 0.5


def make_step(*layers, jit_compile=False):
    """A compiled training step of ``layers`` on a fixed batch; calling it runs one step and waits for it."""
    model = keras.Sequential([keras.Input((IN,)), *layers])
    optimizer = keras.optimizers.SGD(1e-3)
    optimizer.build(model.trainable_variables)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(size=(BATCH, IN)).astype("float32"))
    y = tf.constant(rng.normal(size=(BATCH, UNITS)).astype("float32"))

    @tf.function(jit_compile=jit_compile)
    def step():
        with tf.GradientTape() as tape:
            outputs = model(x, training=True)
            loss = keras.ops.mean(keras.ops.square(outputs - y))
            if model.losses:
                loss = loss + keras.ops.sum(model.losses)
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(gradients, model.trainable_variables)
        return loss

    return lambda: step().numpy()


def candidates():
    return {
        "Dense + Dropout (baseline)": make_step(keras.layers.Dense(UNITS, "relu"), keras.layers.Dropout(RATE)),
        "DropConnectDense": make_step(kerasdrop.DropConnectDense(UNITS, RATE, activation="relu")),
        "FastDropoutDense": make_step(kerasdrop.FastDropoutDense(UNITS, RATE, activation="relu")),
        "VariationalDense": make_step(kerasdrop.VariationalDense(UNITS, activation="relu", kl_weight=1e-4)),
        "SparseVariationalDense": make_step(kerasdrop.SparseVariationalDense(UNITS, activation="relu", kl_weight=1e-4)),
        "StandoutDense": make_step(kerasdrop.StandoutDense(UNITS)),
        "ConcreteDropout(Dense)": make_step(kerasdrop.ConcreteDropout(keras.layers.Dense(UNITS, "relu"))),
    }


def main():
    medians = _timing.median_times(candidates(), repeats=40)
    _timing.report(
        f"Training step, {IN} -> {UNITS}, batch {BATCH}, rate {RATE} (median of 40)",
        medians,
        "Dense + Dropout (baseline)",
        goal="DropConnectDense <= 1.3x; FastDropoutDense, VariationalDense, SparseVariationalDense <= 2.5x",
    )
    other_rate = {
        "Dense + Dropout(0.3)": make_step(keras.layers.Dense(UNITS, "relu"), keras.layers.Dropout(0.3)),
        "DropConnectDense rate 0.3": make_step(kerasdrop.DropConnectDense(UNITS, 0.3, activation="relu")),
    }
    medians = _timing.median_times(other_rate, repeats=40)
    _timing.report("Rate 0.3: a keep probability that is not dyadic (median of 40)", medians, "Dense + Dropout(0.3)")
    per_sample = {
        "Dense + Dropout (baseline)": make_step(keras.layers.Dense(UNITS, "relu"), keras.layers.Dropout(RATE)),
        "DropConnectDense": make_step(kerasdrop.DropConnectDense(UNITS, RATE, activation="relu")),
        "DropConnectDense per_sample=True": make_step(
            kerasdrop.DropConnectDense(UNITS, RATE, activation="relu", per_sample=True)
        ),
    }
    medians = _timing.median_times(per_sample, repeats=10, warmup=2)
    _timing.report("Cost of per_sample=True (median of 10)", medians, "Dense + Dropout (baseline)")


if __name__ == "__main__":
    main()
