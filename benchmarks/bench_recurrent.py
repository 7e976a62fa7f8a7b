"""Recurrent dropout speed: one training epoch of kerasdrop's recurrent layers against Keras's LSTM and GRU.

Goal (CPU): `VariationalLSTM(dropout=0.25, recurrent_dropout=0.25)` at least 1.5x faster than
`keras.layers.LSTM` with the same dropouts, and at most 1.2x the time of `keras.layers.LSTM` without dropout;
`ZoneoutLSTM(cell_zoneout=0.5, hidden_zoneout=0.05)` (the paper's) at most 1.3x `keras.layers.LSTM` without dropout.
Shapes: batch 64, 50 steps, 64 features, 128 units. Every model is timed in the same process, in alternation.

Run: ``python benchmarks/bench_recurrent.py`` (``--quick`` for fewer rounds, ``--gru`` to add the GRU comparison).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._timing import median_times, report  # noqa: E402

BATCH, STEPS, FEATURES, UNITS, BATCHES_PER_EPOCH = 64, 50, 64, 128, 8
RATE = 0.25


def _epoch(layer, x, y):
    """A callable that trains `Input -> layer -> Dense(10)` for one epoch (compiled and warmed up by the timer)."""
    import keras

    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer, keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return lambda: model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed rounds")
    parser.add_argument("--gru", action="store_true", help="also compare the GRU layers")
    args = parser.parse_args()

    import keras
    import numpy as np

    import kerasdrop

    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * BATCHES_PER_EPOCH, STEPS, FEATURES)).astype("float32")
    y = rng.integers(0, 10, size=len(x))
    repeats = 5 if args.quick else 15

    def compare(title, layers, goal=None):
        epochs = {name: _epoch(layer, x, y) for name, layer in layers.items()}
        return report(title, median_times(epochs, repeats=repeats, warmup=2), baseline=next(iter(layers)), goal=goal)

    def family(keras_class, variational_class, semeniuta_class, *others):
        return {
            f"keras {keras_class.__name__}, no dropout": keras_class(UNITS),
            f"keras {keras_class.__name__}(dropout=.25, recurrent_dropout=.25)": keras_class(
                UNITS, dropout=RATE, recurrent_dropout=RATE
            ),
            f"{variational_class.__name__}(dropout=.25, recurrent_dropout=.25)": variational_class(
                UNITS, dropout=RATE, recurrent_dropout=RATE
            ),
            f"{semeniuta_class.__name__}(recurrent_dropout=.25)": semeniuta_class(UNITS, recurrent_dropout=RATE),
            **{name: layer for name, layer in others},
        }

    lstm = family(
        keras.layers.LSTM,
        kerasdrop.VariationalLSTM,
        kerasdrop.SemeniutaLSTM,
        ("RNNDropLSTM(cell_dropout=.25)", kerasdrop.RNNDropLSTM(UNITS, cell_dropout=RATE)),
        ("ZoneoutLSTM(cell_zoneout=.5, hidden_zoneout=.05)", kerasdrop.ZoneoutLSTM(UNITS, 0.5, 0.05)),
    )
    ratios = compare(
        f"One training epoch ({BATCHES_PER_EPOCH} batches of {BATCH} x {STEPS} steps x {FEATURES} features, "
        f"{UNITS} units), time relative to keras LSTM without dropout",
        lstm,
        goal="VariationalLSTM <= 1.2x keras LSTM without dropout, and >= 1.5x faster than keras LSTM with dropout; "
        "ZoneoutLSTM <= 1.3x keras LSTM without dropout",
    )
    ours = ratios["VariationalLSTM(dropout=.25, recurrent_dropout=.25)"]
    speedup = ratios["keras LSTM(dropout=.25, recurrent_dropout=.25)"] / ours
    print(f"  VariationalLSTM: {ours:.2f}x keras LSTM without dropout (goal <= 1.2), ", end="")
    print(f"{speedup:.2f}x faster than keras LSTM with the same dropouts (goal >= 1.5)")
    zoneout = ratios["ZoneoutLSTM(cell_zoneout=.5, hidden_zoneout=.05)"]
    print(f"  ZoneoutLSTM: {zoneout:.2f}x keras LSTM without dropout (goal <= 1.3)")
    if args.gru:
        compare("GRU, same shapes", family(keras.layers.GRU, kerasdrop.VariationalGRU, kerasdrop.SemeniutaGRU))


if __name__ == "__main__":
    main()
