"""Stochastic depth speed: the training step of a residual block with `DropPath` against the same block without it.

Goal (CPU): at most 1.1x. The block is ``x + DropPath(0.2)(Conv2D(ReLU) -> Conv2D)(x)`` on 16x16 feature maps of 32
channels, batch 64; ``keras.layers.Dropout`` with ``noise_shape=(None, 1, 1, 1)`` (Keras's closest layer) is timed
too. Every model is timed in the same process, in alternation.

Run: ``python benchmarks/bench_drop_path.py`` (``--quick`` for fewer rounds).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._timing import median_times, report  # noqa: E402

BATCH, SIDE, CHANNELS, BATCHES_PER_EPOCH, RATE = 64, 16, 32, 8, 0.2


def _epoch(drop, x, y):
    """A callable that trains one residual block (``drop`` on its branch, or none) and a classifier for an epoch."""
    import keras

    inputs = keras.Input((SIDE, SIDE, CHANNELS))
    branch = keras.layers.Conv2D(CHANNELS, 3, padding="same", activation="relu")(inputs)
    branch = keras.layers.Conv2D(CHANNELS, 3, padding="same")(branch)
    if drop is not None:
        branch = drop(branch)
    x_out = keras.layers.ReLU()(keras.layers.Add()([inputs, branch]))
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x_out))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed rounds")
    args = parser.parse_args()

    import keras
    import numpy as np

    import kerasdrop

    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * BATCHES_PER_EPOCH, SIDE, SIDE, CHANNELS)).astype("float32")
    y = rng.integers(0, 10, size=len(x))
    epochs = {
        "residual block, no DropPath": _epoch(None, x, y),
        "kerasdrop.DropPath(0.2)": _epoch(lambda v: kerasdrop.DropPath(RATE, seed=1)(v), x, y),
        "keras Dropout(0.2, noise_shape=(None, 1, 1, 1))": _epoch(
            lambda v: keras.layers.Dropout(RATE, noise_shape=(None, 1, 1, 1), seed=1)(v), x, y
        ),
    }
    ratios = report(
        f"One training epoch ({BATCHES_PER_EPOCH} batches of {BATCH} x {SIDE}x{SIDE}x{CHANNELS}), time relative to "
        "the block without DropPath",
        median_times(epochs, repeats=5 if args.quick else 15, warmup=2),
        baseline="residual block, no DropPath",
        goal="DropPath <= 1.1x the block without it",
    )
    print(f"  DropPath: {ratios['kerasdrop.DropPath(0.2)']:.3f}x the block without it (goal <= 1.1)")


if __name__ == "__main__":
    main()
