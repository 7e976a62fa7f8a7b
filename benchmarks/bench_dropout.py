"""Training step of an MLP with `kerasdrop.Dropout` against the same MLP with `keras.layers.Dropout`.

Both models are trained in the same process, one step each in turn; the figure is the ratio of median step times.
Runs on the backend KERAS_BACKEND names (TensorFlow by default). Goal on every backend: kerasdrop / keras <= 1.05.

    KERAS_BACKEND=jax python benchmarks/bench_dropout.py [--steps 200] [--batch 128]
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from _timing import median_times, report  # noqa: E402


def build_mlp(dropout_class, seed):
    import keras

    initializer = keras.initializers.GlorotUniform
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(512, activation="relu", kernel_initializer=initializer(seed)),
            dropout_class(0.5),
            keras.layers.Dense(512, activation="relu", kernel_initializer=initializer(seed + 1)),
            dropout_class(0.5),
            keras.layers.Dense(10, kernel_initializer=initializer(seed + 2)),
        ]
    )
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()

    import keras
    import numpy as np

    import kerasdrop

    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.normal(size=(args.batch, 784)).astype("float32"))
    y = keras.ops.convert_to_tensor(rng.integers(0, 10, size=args.batch))
    models = {
        "keras.layers.Dropout": build_mlp(keras.layers.Dropout, seed=0),
        "kerasdrop.Dropout": build_mlp(kerasdrop.Dropout, seed=0),
        "kerasdrop.Dropout(weight_scaling)": build_mlp(
            lambda rate: kerasdrop.Dropout(rate, scaling="weight_scaling"), seed=0
        ),
    }
    candidates = {name: (lambda model=model: model.train_on_batch(x, y)) for name, model in models.items()}
    medians = median_times(candidates, repeats=args.steps, warmup=10)
    report(
        f"MLP 784-512-512-10, dropout 0.5, batch {args.batch}, backend {keras.backend.backend()}: median training "
        f"step over {args.steps} steps",
        medians,
        baseline="keras.layers.Dropout",
        goal="kerasdrop.Dropout / keras.layers.Dropout <= 1.05",
    )


if __name__ == "__main__":
    main()
