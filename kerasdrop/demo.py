"""`kerasdrop demo`: a small model with dropout variants on the digits, saved, reloaded and sampled with MCDropout.

It compares Monte Carlo averaging with the deterministic prediction (accuracy, NLL, ECE, Brier score), and the
uncertainty of test digits with that of inputs unlike the training data (uniform noise, digits rotated by 90°),
and writes a reliability diagram and an uncertainty histogram.
"""

import os

import keras
import numpy as np

from kerasdrop._validation import check_positive_int, check_seed


def build_demo_model(input_dim=64, classes=10, seed=0):
    """An MLP with kerasdrop dropout in Monte Carlo mode, so that the saved model samples on every prediction."""
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
    """Flat 8x8 images unlike the digits ``x`` ``(n, 64)``, from far off to deceptively close.

    Uniform noise and shuffled pixels (the digits' own pixel values, no shape) are far from the data; blends of two
    digits are ambiguous; upside-down digits are unfamiliar shapes; digits rotated by 90 degrees are the hard case:
    many still look like some digit to a small MLP, which then answers confidently.
    """
    rng = np.random.default_rng(seed)
    images = x.reshape(-1, 8, 8)
    flat = {
        "uniform noise": rng.random(x.shape),
        "shuffled pixels": np.take_along_axis(x, rng.permuted(np.tile(np.arange(64), (len(x), 1)), axis=1), axis=1),
        "blend of two digits": 0.5 * (x + x[rng.permutation(len(x))]),
        "upside-down digits": images[:, ::-1, :].reshape(len(x), 64),
        "rotated digits": np.rot90(images, k=1, axes=(1, 2)).reshape(len(x), 64),
    }
    return {name: np.ascontiguousarray(values, dtype="float32") for name, values in flat.items()}


class EpochProgress(keras.callbacks.Callback):
    """One progress bar over all epochs, with the loss and accuracy of the last epoch."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs
        self.bar = None

    def on_train_begin(self, logs=None):
        self.bar = keras.utils.Progbar(self.epochs, unit_name="epoch", stateful_metrics=["loss", "accuracy"])

    def on_epoch_end(self, epoch, logs=None):
        self.bar.update(epoch + 1, values=list((logs or {}).items()))


def auroc(in_scores, out_scores):
    """Area under the ROC curve of telling out-of-distribution inputs (higher score) from in-distribution ones."""
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    return float(roc_auc_score(truth, np.concatenate([in_scores, out_scores])))


def _train_save_reload(x_train, y_train, epochs, output_dir, seed, verbose, print_fn):
    """The demo model trained on the digits, saved to ``output_dir`` and loaded back: ``(reloaded model, path)``."""
    model = build_demo_model(seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print_fn(f"training an MLP with kerasdrop Dropout and GaussianDropout (mc=True) for {epochs} epochs")
    callbacks = [EpochProgress(epochs)] if verbose else []
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks)
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "demo_mlp.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    print_fn(f"saved and reloaded {path}")
    return reloaded, path


def _print_scores(scores, print_fn):
    print_fn(f"{'test digits':<24s}{'accuracy':>10s}{'NLL':>10s}{'ECE':>10s}{'Brier':>10s}")
    for name, row in scores.items():
        print_fn(f"{name:<24s}{row['accuracy']:>10.4f}{row['nll']:>10.4f}{row['ece']:>10.4f}{row['brier']:>10.4f}")


def _out_of_distribution(sampler, result, x_test, seed, print_fn):
    """Predictive entropy and mutual information of the test digits and of each kind of unlike input, and how well
    the entropy tells each kind from the test digits (AUROC); printed as a table."""
    entropy = {"test digits": result.predictive_entropy()}
    information = {"test digits": result.mutual_information()}
    for name, inputs in out_of_distribution_inputs(x_test, seed=seed).items():
        other = sampler.predict(inputs, verbose=0)
        entropy[name], information[name] = other.predictive_entropy(), other.mutual_information()
    print_fn(
        f"{'inputs':<24s}{'entropy':>10s}{'MI':>10s}{'AUROC(H)':>10s}{'AUROC(MI)':>10s}"
        "   (mean nats; AUROC: telling these inputs from test digits)"
    )
    separation = {}
    for name in entropy:
        if name == "test digits":
            row = ("", "")
        else:
            separation[name] = auroc(entropy["test digits"], entropy[name])
            row = (f"{separation[name]:.3f}", f"{auroc(information['test digits'], information[name]):.3f}")
        print_fn(f"{name:<24s}{entropy[name].mean():>10.4f}{information[name].mean():>10.4f}{row[0]:>10s}{row[1]:>10s}")
    return entropy, information, separation


def halves(count, seed):
    """The indices ``0 .. count - 1`` cut at random into two halves, each fitted on and applied to in turn."""
    first, second = np.array_split(np.random.default_rng(seed).permutation(count), 2)
    return ((first, second), (second, first))


def cross_fitted_calibration(samples, labels, seed, alpha=0.1):
    """Temperature scaling and split conformal sets (LAC and APS) of Monte Carlo samples ``(T, N, C)`` of labelled
    inputs, each fitted on one half of them and applied to the other, both ways, so that no input is scored by a
    calibrator fitted on it. Returns ``(calibrated probabilities (N, C), [two temperatures], {score: sets (N, C)})``."""
    from kerasdrop.calibration import SplitConformal, TemperatureScaling

    calibrated, temperatures = np.empty(samples.shape[1:]), []
    sets = {score: np.empty(samples.shape[1:], bool) for score in ("lac", "aps")}
    for fitted_on, applied_to in halves(len(labels), seed):
        scaling = TemperatureScaling().fit(samples[:, fitted_on], labels[fitted_on])
        calibrated[applied_to] = scaling.transform(samples[:, applied_to]).mean
        temperatures.append(scaling.temperature)
        for score, predicted in sets.items():
            conformal = SplitConformal(alpha, score).fit(samples[:, fitted_on], labels[fitted_on])
            predicted[applied_to] = conformal.predict_sets(samples[:, applied_to])
    return calibrated, temperatures, sets


def _print_conformal(sets, y_test, alpha, print_fn):
    print_fn(
        f"split conformal sets, alpha={alpha} (fitted on one half of the test digits, applied to the other, both ways):"
    )
    for score, predicted in sets.items():
        coverage = predicted[np.arange(len(y_test)), y_test].mean()
        print_fn(
            f"  {score.upper():<4s} coverage {coverage:.4f} (at least {1 - alpha:.2f} on average over calibration "
            f"sets), mean set size {predicted.sum(axis=1).mean():.3f}, empty sets "
            f"{int((predicted.sum(axis=1) == 0).sum())}"
        )


def _write_plots(result, y_test, entropy, plot_dir, print_fn):
    from kerasdrop import plot

    os.makedirs(plot_dir, exist_ok=True)
    reliability_path = os.path.join(plot_dir, "reliability_diagram.png")
    histogram_path = os.path.join(plot_dir, "uncertainty_histogram.png")
    plot.reliability_diagram(result.mean, y_test, path=reliability_path, title="MC dropout on test digits")
    outside = np.concatenate([entropy[name] for name in entropy if name != "test digits"])
    plot.uncertainty_histogram(
        entropy["test digits"], outside, path=histogram_path, labels=("test digits", "out-of-distribution inputs")
    )
    print_fn(f"wrote {reliability_path} and {histogram_path}")
    return [reliability_path, histogram_path]


def _print_most_uncertain(result, y_test, entropy, print_fn, count=5):
    print_fn("most uncertain test images:")
    for index in np.argsort(entropy)[::-1][:count]:
        print_fn(
            f"  #{index:<4d} label {y_test[index]}  predicted {result.mean[index].argmax()}  "
            f"p={result.mean[index].max():.2f}  entropy {entropy[index]:.3f}"
        )


def run_demo(epochs=40, samples=30, output_dir="saved_models", seed=0, plot_dir="plots", verbose=1, print_fn=print):
    """Trains, saves, reloads and samples the demo model; writes two plots; returns the figures printed as a dict."""
    import kerasdrop
    from kerasdrop import metrics
    from kerasdrop.datasets import load_digits

    check_positive_int("epochs", epochs)
    check_positive_int("samples", samples)
    check_seed(seed)
    keras.utils.set_random_seed(seed)
    (x_train, y_train), (x_test, y_test) = load_digits(seed=seed)
    print_fn(f"digits: {len(x_train)} training and {len(x_test)} test images of 8x8 pixels")
    reloaded, path = _train_save_reload(x_train, y_train, epochs, output_dir, seed, verbose, print_fn)

    sampler = kerasdrop.MCDropout(reloaded, samples=samples, seed=seed)
    print_fn(f"sampling the test digits {samples} times with MCDropout")
    result = sampler.predict(x_test, verbose=verbose, keep_samples=True)
    kerasdrop.set_mc(reloaded, False)  # dropout off: the deterministic (weight-averaging) prediction
    deterministic = reloaded.predict(x_test, verbose=0)
    calibrated, temperatures, sets = cross_fitted_calibration(result.samples, y_test, seed)
    scores = {
        "deterministic": metrics.classification_scores(deterministic, y_test),
        f"MC dropout, T={samples}": metrics.classification_scores(result.mean, y_test),
        "MC + temperature": metrics.classification_scores(calibrated, y_test),
    }
    _print_scores(scores, print_fn)
    print_fn(f"temperature (fitted on each half of the test digits): {temperatures[0]:.3f} and {temperatures[1]:.3f}")
    _print_conformal(sets, y_test, 0.1, print_fn)
    entropy, information, separation = _out_of_distribution(sampler, result, x_test, seed, print_fn)
    plots = _write_plots(result, y_test, entropy, plot_dir, print_fn)
    _print_most_uncertain(result, y_test, entropy["test digits"], print_fn)
    return {
        "accuracy": scores[f"MC dropout, T={samples}"]["accuracy"],
        "mean_entropy": float(entropy["test digits"].mean()),
        "scores": scores,
        "temperatures": temperatures,
        "conformal": {
            score: {
                "coverage": float(predicted[np.arange(len(y_test)), y_test].mean()),
                "mean_set_size": float(predicted.sum(axis=1).mean()),
            }
            for score, predicted in sets.items()
        },
        "entropy": {name: float(values.mean()) for name, values in entropy.items()},
        "mutual_information": {name: float(values.mean()) for name, values in information.items()},
        "auroc": separation,
        "model_path": path,
        "plots": plots,
    }
