"""Dense dropout variants: one MLP per variant, trained on the digits, saved, reloaded and compared.

Every model is a `keras.Sequential` MLP with two hidden layers of 128 ReLU units and a softmax output. The variants
either put a dropout layer after each hidden `Dense` (Dropout, its weight-scaling form, GaussianDropout,
StochasticDropout) or replace the hidden `Dense` by a kerasdrop layer that carries its own noise (DropConnectDense,
StandoutDense, FastDropoutDense, VariationalDense, SparseVariationalDense, ConcreteDropout wrapped around `Dense`).

    python examples/dense_variants.py                     # scikit-learn's digits, offline, about a minute
    python examples/dense_variants.py --dataset mnist     # MNIST through keras.datasets (downloaded once)
    python examples/dense_variants.py --quick             # a tiny budget, to check that it runs
    python examples/dense_variants.py --only dropout_0_3 standoutdense

The models go to saved_models/dense_<variant>.keras (--output-dir); `--help` lists the options.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402  (sets the Keras backend)
import keras  # noqa: E402

import kerasdrop  # noqa: E402

HIDDEN = (128, 128)
RATE = 0.3


def mlp(hidden):
    """A builder of ``Input -> hidden(units, seed, task) for each hidden layer -> Dense(classes, softmax)``, where
    ``hidden`` returns the list of layers that make one hidden layer."""

    def build(task):
        model = keras.Sequential([keras.Input(task.input_shape)])
        for index, units in enumerate(HIDDEN):
            for layer in hidden(units, task.seed + index, task):
                model.add(layer)
        model.add(keras.layers.Dense(task.classes, activation="softmax"))
        return model

    return build


def relu(units):
    return keras.layers.Dense(units, activation="relu")


def followed_by(make_dropout):
    """A hidden layer ``Dense(relu)`` followed by ``make_dropout(seed)``."""
    return mlp(lambda units, seed, task: [relu(units), make_dropout(seed)])


def replaced_by(make_layer):
    """A hidden layer made by ``make_layer(units, seed, task)`` alone."""
    return mlp(lambda units, seed, task: [make_layer(units, seed, task)])


VARIANTS = [
    _common.Variant("no dropout", replaced_by(lambda units, seed, task: relu(units))),
    _common.Variant("Dropout 0.3", followed_by(lambda seed: kerasdrop.Dropout(RATE, seed=seed))),
    _common.Variant(
        "Dropout 0.3 (weight scaling)",
        followed_by(lambda seed: kerasdrop.Dropout(RATE, scaling="weight_scaling", seed=seed)),
    ),
    _common.Variant("GaussianDropout 0.3", followed_by(lambda seed: kerasdrop.GaussianDropout(RATE, seed=seed))),
    _common.Variant(
        "StochasticDropout 0.3 +- 0.1", followed_by(lambda seed: kerasdrop.StochasticDropout(RATE, 0.1, seed=seed))
    ),
    _common.Variant(
        "DropConnectDense 0.3",
        replaced_by(lambda units, seed, task: kerasdrop.DropConnectDense(units, RATE, activation="relu", seed=seed)),
    ),
    _common.Variant(
        "StandoutDense",
        replaced_by(lambda units, seed, task: kerasdrop.StandoutDense(units, activation="relu", seed=seed)),
    ),
    _common.Variant(
        "FastDropoutDense 0.3",
        replaced_by(lambda units, seed, task: kerasdrop.FastDropoutDense(units, RATE, activation="relu", seed=seed)),
    ),
    # The KL terms are weighted 1/N, N the number of training samples: the ELBO per sample.
    _common.Variant(
        "VariationalDense",
        replaced_by(
            lambda units, seed, task: kerasdrop.VariationalDense(
                units, activation="relu", kl_weight=1.0 / task.train_size, seed=seed
            )
        ),
    ),
    _common.Variant(
        "SparseVariationalDense",
        replaced_by(
            lambda units, seed, task: kerasdrop.SparseVariationalDense(
                units, activation="relu", kl_weight=1.0 / task.train_size, seed=seed
            )
        ),
    ),
    _common.Variant(
        "ConcreteDropout",
        replaced_by(
            lambda units, seed, task: kerasdrop.ConcreteDropout(
                relu(units),
                **_common.concrete_regularizers(task.train_size),
                seed=seed,
            )
        ),
    ),
]


main = _common.script_main(VARIANTS, __doc__, prefix="dense", epochs=30)


if __name__ == "__main__":
    main()
