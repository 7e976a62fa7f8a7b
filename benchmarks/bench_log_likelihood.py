"""Memory of `kerasdrop.MCDropout.log_likelihood`, which streams the Monte Carlo log-likelihood chunk by chunk.

Model: the UCI regression network (8 inputs, Dropout(0.05), Dense(50, relu), Dropout(0.05), Dense(1)); ``T``
samples over ``N`` inputs. Kept whole, the samples would take ``T * N * 4`` bytes (float32). Reported: the peak
resident memory of the process above what it held before the call, the time, and the same for ``predict`` without
kept samples (the moments alone) as the baseline, in one run.

Run: ``.venv/bin/python benchmarks/bench_log_likelihood.py [--samples T] [--inputs N]``. The default,
T = 1,000 over N = 10,000, takes about half a minute on 2 cores; the peak stays that of one chunk however large T
and N are: compare ``--samples 10000 --inputs 10000`` and ``--samples 1000 --inputs 100000`` (about a minute a
call each), or T = 10,000 over N = 100,000 with ``--without-baseline`` (4 GB of samples if they were kept; about
8 minutes on 2 cores).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from benchmarks._timing import machine_description, peak_rss_during, rss_mib  # noqa: E402


def main(argv=None):
    import keras
    import numpy as np

    import kerasdrop

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--without-baseline", action="store_true", help="log_likelihood alone, without predict")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(50, activation="relu")(keras.layers.Dropout(0.05)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Dropout(0.05)(hidden)))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.inputs, 8)).astype("float32")
    y = rng.normal(size=args.inputs)
    mc = kerasdrop.MCDropout(model, samples=args.samples, output_type="regression", seed=0)
    mc.log_likelihood(x[:64], y[:64], noise_variance=1.0)  # traced once
    print(f"machine: {machine_description()}")
    print(
        f"T = {args.samples:,} samples over N = {args.inputs:,} inputs; kept whole they would take "
        f"{args.samples * args.inputs * 4 / 2**20:,.0f} MiB"
    )
    calls = [
        ("predict (moments only)", lambda: mc.predict(x, verbose=0)),
        ("log_likelihood (streamed)", lambda: mc.log_likelihood(x, y, noise_variance=1.0)),
    ]
    for name, call in calls[args.without_baseline :]:
        before, start = rss_mib(), time.perf_counter()
        peak = peak_rss_during(call)
        print(
            f"  {name:28s} {time.perf_counter() - start:8.1f} s   peak RSS +{peak - before:7.1f} MiB "
            f"above the {before:.0f} MiB before the call (peak {peak:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
