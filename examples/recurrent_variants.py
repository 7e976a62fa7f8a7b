"""Recurrent dropout variants: one small RNN classifier per variant, on digit rows read as 8-step sequences.

Each image is a sequence, one row of pixels a time step (8 steps of 8 pixels for the digits, 28 of 28 for MNIST,
32 of 96 for CIFAR-10). Every model is ``Input -> recurrent layer(s) of 64 units -> Dense(classes, softmax)``:
Keras's `LSTM` without dropout as the baseline, then each kerasdrop layer (drop-in replacements of `keras.layers.LSTM`
and `GRU` with the same weights): VariationalLSTM and VariationalGRU (Gal & Ghahramani: per-sequence masks on the
inputs and the state), RNNDropLSTM (Moon et al.: per-sequence mask on the memory cell), SemeniutaLSTM and
SemeniutaGRU (Semeniuta et al.: dropout of the candidate update only), ZoneoutLSTM and ZoneoutGRU (Krueger et al.:
state units keep their previous values at random; the LSTM with the paper's 0.5 on the memory and 0.05 on the
output), and a stack of a `VariationalLSTMCell` inside `keras.layers.RNN` under a `SemeniutaGRU` (a functional
model).

    python examples/recurrent_variants.py                    # scikit-learn's digits, offline, a few minutes
    python examples/recurrent_variants.py --dataset mnist    # MNIST rows through keras.datasets
    python examples/recurrent_variants.py --quick            # a tiny budget, to check that it runs

The models go to saved_models/recurrent_<variant>.keras (--output-dir); `--help` lists the options.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402  (sets the Keras backend)
import keras  # noqa: E402

import kerasdrop  # noqa: E402

UNITS = 64
RATE = 0.25


def rnn(make_layer):
    """A builder of ``Input(steps, features) -> make_layer(seed) -> Dense(classes, softmax)`` (Sequential)."""

    def build(task):
        return keras.Sequential(
            [
                keras.Input(task.input_shape),
                make_layer(task.seed),
                keras.layers.Dense(task.classes, activation="softmax"),
            ]
        )

    return build


def stacked(task):
    """A functional model: ``keras.layers.RNN(VariationalLSTMCell)`` returning sequences, then a SemeniutaGRU."""
    inputs = keras.Input(task.input_shape)
    cell = kerasdrop.VariationalLSTMCell(UNITS, dropout=RATE, recurrent_dropout=RATE, seed=task.seed)
    x = keras.layers.RNN(cell, return_sequences=True)(inputs)
    x = kerasdrop.SemeniutaGRU(UNITS, recurrent_dropout=RATE, seed=task.seed + 1)(x)
    return keras.Model(inputs, keras.layers.Dense(task.classes, activation="softmax")(x))


def sequence_variant(name, build):
    return _common.Variant(name, build, layout="sequence")


VARIANTS = [
    sequence_variant("LSTM (Keras, no dropout)", rnn(lambda seed: keras.layers.LSTM(UNITS))),
    sequence_variant(
        "VariationalLSTM 0.25",
        rnn(lambda seed: kerasdrop.VariationalLSTM(UNITS, dropout=RATE, recurrent_dropout=RATE, seed=seed)),
    ),
    sequence_variant(
        "VariationalGRU 0.25",
        rnn(lambda seed: kerasdrop.VariationalGRU(UNITS, dropout=RATE, recurrent_dropout=RATE, seed=seed)),
    ),
    sequence_variant("RNNDropLSTM 0.25", rnn(lambda seed: kerasdrop.RNNDropLSTM(UNITS, cell_dropout=RATE, seed=seed))),
    sequence_variant(
        "SemeniutaLSTM 0.25", rnn(lambda seed: kerasdrop.SemeniutaLSTM(UNITS, recurrent_dropout=RATE, seed=seed))
    ),
    sequence_variant(
        "SemeniutaGRU 0.25", rnn(lambda seed: kerasdrop.SemeniutaGRU(UNITS, recurrent_dropout=RATE, seed=seed))
    ),
    sequence_variant(
        "ZoneoutLSTM 0.5/0.05",
        rnn(lambda seed: kerasdrop.ZoneoutLSTM(UNITS, cell_zoneout=0.5, hidden_zoneout=0.05, seed=seed)),
    ),
    sequence_variant("ZoneoutGRU 0.1", rnn(lambda seed: kerasdrop.ZoneoutGRU(UNITS, zoneout=0.1, seed=seed))),
    sequence_variant("RNN(VariationalLSTMCell) + SemeniutaGRU", stacked),
]


main = _common.script_main(VARIANTS, __doc__, prefix="recurrent", epochs=20)


if __name__ == "__main__":
    main()
