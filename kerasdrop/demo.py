"""`kerasdrop demo`: a small model with dropout variants on the digits, saved, reloaded and sampled with MCDropout.

It compares Monte Carlo averaging with the deterministic prediction (accuracy, NLL, ECE, Brier score), and the
uncertainty of test digits with that of inputs unlike the training data (uniform noise, digits rotated by 90°),
and writes a reliability diagram and an uncertainty histogram.
"""

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


def out_of_distribution_inputs(x, seed=0):
    """``{"uniform noise": ..., "rotated digits": ...}``: flat 8x8 images unlike the digits ``x`` ``(n, 64)``."""
    rng = np.random.default_rng(seed)
    rotated = np.rot90(x.reshape(-1, 8, 8), k=1, axes=(1, 2)).reshape(len(x), 64)
    return {
        "uniform noise": rng.random(x.shape, dtype="float32"),
        "rotated digits": np.ascontiguousarray(rotated, dtype="float32"),
    }


def auroc(in_scores, out_scores):
    """Area under the ROC curve of telling out-of-distribution inputs (higher score) from in-distribution ones."""
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    return float(roc_auc_score(truth, np.concatenate([in_scores, out_scores])))


def _scores(probs, labels):
    from kerasdrop import metrics

    return {
        "accuracy": float(np.mean(probs.argmax(axis=-1) == labels)),
        "nll": metrics.negative_log_likelihood(probs, labels),
        "ece": metrics.expected_calibration_error(probs, labels),
        "brier": metrics.brier_score(probs, labels),
    }


def run_demo(epochs=40, samples=30, output_dir="saved_models", seed=0, plot_dir="plots", print_fn=print):
    """Trains, saves, reloads and samples the demo model; writes two plots; returns the figures printed as a dict."""
    import keras

    import kerasdrop
    from kerasdrop import plot
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

    sampler = kerasdrop.MCDropout(reloaded, samples=samples, seed=seed)
    result = sampler.predict(x_test, verbose=0)
    kerasdrop.set_mc(reloaded, False)  # dropout off: the deterministic (weight-averaging) prediction
    deterministic = reloaded.predict(x_test, verbose=0)
    scores = {"deterministic": _scores(deterministic, y_test), f"MC dropout, T={samples}": _scores(result.mean, y_test)}
    print_fn(f"{'test digits':<24s}{'accuracy':>10s}{'NLL':>10s}{'ECE':>10s}{'Brier':>10s}")
    for name, row in scores.items():
        print_fn(f"{name:<24s}{row['accuracy']:>10.4f}{row['nll']:>10.4f}{row['ece']:>10.4f}{row['brier']:>10.4f}")

    entropy = {"test digits": result.predictive_entropy()}
    information = {"test digits": result.mutual_information()}
    for name, inputs in out_of_distribution_inputs(x_test, seed=seed).items():
        other = sampler.predict(inputs, verbose=0)
        entropy[name], information[name] = other.predictive_entropy(), other.mutual_information()
    print_fn(f"{'inputs':<24s}{'entropy':>10s}{'MI':>10s}{'AUROC':>10s}   (means, nats; AUROC of entropy vs test)")
    for name in entropy:
        separation = auroc(entropy["test digits"], entropy[name]) if name != "test digits" else float("nan")
        print_fn(f"{name:<24s}{entropy[name].mean():>10.4f}{information[name].mean():>10.4f}{separation:>10.3f}")

    os.makedirs(plot_dir, exist_ok=True)
    reliability_path = os.path.join(plot_dir, "reliability_diagram.png")
    histogram_path = os.path.join(plot_dir, "uncertainty_histogram.png")
    plot.reliability_diagram(result.mean, y_test, path=reliability_path, title="MC dropout on test digits")
    outside = np.concatenate([entropy[name] for name in entropy if name != "test digits"])
    plot.uncertainty_histogram(
        entropy["test digits"], outside, path=histogram_path, labels=("test digits", "noise and rotated digits")
    )
    print_fn(f"wrote {reliability_path} and {histogram_path}")

    print_fn("most uncertain test images:")
    for index in np.argsort(entropy["test digits"])[::-1][:5]:
        print_fn(
            f"  #{index:<4d} label {y_test[index]}  predicted {result.mean[index].argmax()}  "
            f"p={result.mean[index].max():.2f}  entropy {entropy['test digits'][index]:.3f}"
        )
    return {
        "accuracy": scores[f"MC dropout, T={samples}"]["accuracy"],
        "mean_entropy": float(entropy["test digits"].mean()),
        "scores": scores,
        "entropy": {name: float(values.mean()) for name, values in entropy.items()},
        "mutual_information": {name: float(values.mean()) for name, values in information.items()},
        "model_path": path,
        "plots": [reliability_path, histogram_path],
    }
