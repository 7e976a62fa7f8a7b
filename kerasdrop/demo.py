"""`kerasdrop demo`: a small model with dropout variants on the digits, saved, reloaded and sampled."""

import os

import numpy as np

from kerasdrop._validation import check_positive_int, check_seed


def build_demo_model(input_dim=64, classes=10, seed=0):
    """An MLP with kerasdrop dropout in Monte Carlo mode, so that the saved model samples on every prediction."""
    import keras

    import kerasdrop

    initializer = keras.initializers.GlorotUniform
    return keras.Sequential(
        [
            keras.Input((input_dim,)),
            keras.layers.Dense(128, activation="relu", kernel_initializer=initializer(seed)),
            kerasdrop.Dropout(0.3, mc=True, seed=seed),
            keras.layers.Dense(128, activation="relu", kernel_initializer=initializer(seed + 1)),
            kerasdrop.GaussianDropout(0.2, mc=True, seed=seed + 1),
            keras.layers.Dense(classes, activation="softmax", kernel_initializer=initializer(seed + 2)),
        ],
        name="kerasdrop_demo_mlp",
    )


def entropy(probabilities):
    """Entropy (nats) of each row of class probabilities."""
    p = np.clip(probabilities, 1e-12, 1.0)
    return -np.sum(p * np.log(p), axis=-1)


def run_demo(epochs=40, samples=30, output_dir="saved_models", seed=0, print_fn=print):
    """Trains, saves, reloads and samples the demo model; returns the figures it printed as a dict."""
    import keras

    from kerasdrop.datasets import load_digits

    check_positive_int("epochs", epochs)
    check_positive_int("samples", samples)
    check_seed(seed)
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = load_digits(seed=seed)
    print_fn(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8 pixels")

    model = build_demo_model(seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)

    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "demo_mlp.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    print_fn(f"saved and reloaded {path}")

    draws = np.stack([reloaded.predict(x_test, verbose=0) for _ in range(samples)])
    mean = draws.mean(axis=0)
    accuracy = float(np.mean(mean.argmax(axis=-1) == y_test))
    predictive_entropy = entropy(mean)
    print_fn(
        f"Monte Carlo dropout, {samples} samples: test accuracy {accuracy:.4f}, "
        f"mean predictive entropy {predictive_entropy.mean():.4f} nats"
    )
    print_fn("most uncertain test images:")
    for index in np.argsort(predictive_entropy)[::-1][:5]:
        print_fn(
            f"  #{index:<4d} label {y_test[index]}  predicted {mean[index].argmax()}  "
            f"p={mean[index].max():.2f}  entropy {predictive_entropy[index]:.3f}"
        )
    return {"accuracy": accuracy, "mean_entropy": float(predictive_entropy.mean()), "model_path": path}
