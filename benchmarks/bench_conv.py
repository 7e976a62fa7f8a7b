"""Convolutional family against the Keras baselines, on one 64x32x32x64 batch.

Goals (ratios measured in one run, CPU, each candidate a `tf.function` as in `fit`/`predict` on CPU, no XLA):
    - `MaxPoolingDropout2D` training <= 1.5x `MaxPooling2D` + `Dropout` (training);
    - `MaxPoolingDropout2D` probabilistic inference <= 3x `MaxPooling2D`;
    - `Cutout` and `DropBlock2D` training <= 2x `Dropout` (training).

Probabilistic weighted pooling sorts each region with a sorting network of elementwise min/max (5 comparators for
2x2 regions) and sums with Horner's scheme: about 20 elementwise passes over the pooled tensor, which TensorFlow runs
one kernel at a time on CPU. They run on blocks of output rows of about 256 KiB each, which stay in cache (about
1.4x faster than whole tensors); with `--jit` XLA fuses them into one loop (the inference section only: XLA's CPU
random number generation takes seconds per call).

Run: `.venv/bin/python benchmarks/bench_conv.py [--repeats N] [--jit]` (about a minute).
"""

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _timing import median_times, report  # noqa: E402

import kerasdrop  # noqa: E402

SHAPE = (64, 32, 32, 64)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--jit", action="store_true", help="compile every candidate with XLA (jit_compile=True)")
    args = parser.parse_args()
    x = tf.constant(np.random.default_rng(0).normal(size=SHAPE).astype("float32"))
    rate = 0.1

    max_pool = keras.layers.MaxPooling2D(2)
    dropout = keras.layers.Dropout(rate, seed=1)
    pooling_dropout = kerasdrop.MaxPoolingDropout2D(rate, seed=1)
    scaled = kerasdrop.MaxPoolingDropout2D(rate, inference="scaled")
    avg_dropout = kerasdrop.AvgPoolingDropout2D(rate, seed=1)
    avg_pool = keras.layers.AveragePooling2D(2)
    cutout = kerasdrop.Cutout(16, seed=1)
    dropblock = kerasdrop.DropBlock2D(rate, block_size=7, seed=1)
    maxdrop = kerasdrop.MaxDrop2D(rate, seed=1)

    suffix = ", XLA" if args.jit else ""
    sections = [
        (
            f"Pooling dropout, training, {SHAPE} float32, rate={rate}{suffix}",
            {
                "MaxPooling2D + Dropout (training)": lambda v: max_pool(dropout(v, training=True)),
                "MaxPoolingDropout2D (training)": lambda v: pooling_dropout(v, training=True),
                "AveragePooling2D + Dropout (training)": lambda v: avg_pool(dropout(v, training=True)),
                "AvgPoolingDropout2D (training)": lambda v: avg_dropout(v, training=True),
            },
            "MaxPoolingDropout2D <= 1.5x MaxPooling2D + Dropout",
        ),
        (
            f"Max-pooling dropout, inference, {SHAPE} float32{suffix}",
            {
                "MaxPooling2D": lambda v: max_pool(v),
                "MaxPoolingDropout2D (probabilistic)": lambda v: pooling_dropout(v),
                "MaxPoolingDropout2D (scaled)": lambda v: scaled(v),
            },
            "probabilistic weighted pooling <= 3x MaxPooling2D",
        ),
        (
            f"Cutout, DropBlock2D and MaxDrop2D, training, {SHAPE} float32{suffix}",
            {
                "Dropout (training)": lambda v: dropout(v, training=True),
                "Cutout size=16 (training)": lambda v: cutout(v, training=True),
                "DropBlock2D block_size=7 (training)": lambda v: dropblock(v, training=True),
                "MaxDrop2D spatial (training)": lambda v: maxdrop(v, training=True),
            },
            "Cutout and DropBlock2D <= 2x Dropout",
        ),
    ]
    if args.jit:
        sections = sections[1:2]  # XLA's CPU random-number generation takes seconds per call: inference only
    for title, candidates, goal in sections:
        graphs = {name: tf.function(function, jit_compile=args.jit) for name, function in candidates.items()}
        medians = median_times({name: (lambda g=g: g(x)) for name, g in graphs.items()}, repeats=args.repeats)
        report(title, medians, baseline=next(iter(candidates)), goal=goal)


if __name__ == "__main__":
    main()
