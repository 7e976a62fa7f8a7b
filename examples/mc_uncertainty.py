"""Monte Carlo dropout: uncertainty and calibration of models with dropout, sampled with `kerasdrop.MCDropout`.

Four models are trained, saved and reloaded: an MLP with Keras's own `keras.layers.Dropout` (MCDropout samples Keras
dropout layers too), the same MLP with `kerasdrop.Dropout`, an MLP whose rates are learned by `ConcreteDropout`, and
a CNN with `SpatialDropout2D`. Each reloaded model is then predicted twice on the test set:

  - deterministically (dropout off: the usual weight-averaging prediction);
  - with MC dropout: the mean of ``--samples`` stochastic passes (Gal & Ghahramani 2016).

and compared on accuracy, negative log-likelihood (NLL), expected calibration error (ECE, 15 bins) and Brier score.
The MC prediction is also calibrated by temperature scaling and given split conformal prediction sets (APS, 90 %),
each fitted on one half of the test set and applied to the other, both ways
(`kerasdrop.demo.cross_fitted_calibration`).
The predictive entropy of the MC prediction is compared between the test images and images unlike the training
data (uniform noise, and test images rotated by 90 degrees); AUROC is how well entropy tells each of them from the
test images (1 = always, 0.5 = chance). A reliability diagram and an uncertainty histogram per model are written
into --plot-dir.

    python examples/mc_uncertainty.py                     # scikit-learn's digits, offline, about a minute
    python examples/mc_uncertainty.py --dataset mnist     # MNIST through keras.datasets (downloaded once)
    python examples/mc_uncertainty.py --quick             # a tiny budget, to check that it runs

The models are saved as saved_models/mc_<variant>.keras (see --output-dir). With a fixed ``seed``, MCDropout draws
the same samples for the trained and the reloaded model; the "MC reload" column is the largest difference of the two
MC means.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402  (sets the Keras backend)
import conv_variants  # noqa: E402
import dense_variants  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasdrop  # noqa: E402
from kerasdrop import metrics, plot  # noqa: E402
from kerasdrop.demo import auroc, cross_fitted_calibration  # noqa: E402

QUICK_SAMPLES = 10
ALPHA = 0.1  # conformal sets that hold the label 90 % of the time


def _named(module, name):
    return next(variant for variant in module.VARIANTS if variant.name == name)


VARIANTS = [
    _common.Variant(
        "MLP + keras.layers.Dropout 0.3",
        dense_variants.followed_by(lambda seed: keras.layers.Dropout(dense_variants.RATE, seed=seed)),
    ),
    _common.Variant("MLP + kerasdrop.Dropout 0.3", _named(dense_variants, "Dropout 0.3").build),
    _common.Variant("MLP + ConcreteDropout", _named(dense_variants, "ConcreteDropout").build),
    _common.Variant("CNN + SpatialDropout2D 0.2", _named(conv_variants, "SpatialDropout2D 0.2").build, "image"),
]

COLUMNS = [
    ("variant", "variant", "s"),
    ("accuracy det / MC", "accuracy", "s"),
    ("NLL det / MC", "nll", "s"),
    ("ECE det / MC", "ece", "s"),
    ("Brier det / MC", "brier", "s"),
    ("MC + temperature: NLL / ECE", "calibrated", "s"),
    ("APS 90 % sets: coverage / size", "conformal", "s"),
    ("entropy test / noise / rotated", "entropy", "s"),
    ("AUROC noise / rotated", "auroc", "s"),
    ("reload / MC reload", "reload", "s"),
]


def add_arguments(parser):
    parser.add_argument("--samples", type=int, default=50, help="Monte Carlo samples per input (default 50)")
    parser.add_argument("--plot-dir", default="plots", help="where the reliability diagrams and histograms go")


def unlike_training_data(images, seed):
    """``{name: images}`` unlike the (square) training images ``(n, rows, cols, channels)``: uniform noise, and the
    images rotated by 90 degrees."""
    return {
        "noise": np.random.default_rng(seed).random(images.shape, dtype="float32"),
        "rotated": np.ascontiguousarray(np.rot90(images, k=1, axes=(1, 2))),
    }


def evaluate(result, data, args, print_fn):
    """MC dropout on the reloaded model: scores, entropies, AUROC, plots; returns the row of the table."""
    sampler = kerasdrop.MCDropout(result.reloaded, samples=args.samples, seed=args.seed)
    mc = sampler.predict(data.x_test, verbose=0, keep_samples=True)
    original = kerasdrop.MCDropout(result.model, samples=args.samples, seed=args.seed).predict(data.x_test, verbose=0)
    mc_gap = float(np.max(np.abs(mc.mean - original.mean)))
    entropy = {"test": mc.predictive_entropy()}
    for kind, images in unlike_training_data(data.test_images, args.seed).items():
        entropy[kind] = sampler.predict(
            _common.as_layout(images, result.variant.layout), verbose=0
        ).predictive_entropy()
    outside = np.concatenate([entropy["noise"], entropy["rotated"]])
    deterministic, sampled = (
        metrics.classification_scores(result.probs, data.y_test),
        metrics.classification_scores(mc.mean, data.y_test),
    )
    calibrated, temperatures, sets = cross_fitted_calibration(mc.samples, data.y_test, args.seed, ALPHA)
    scaled = metrics.classification_scores(calibrated, data.y_test)
    aps = sets["aps"]
    name = _common.slug(result.variant.name)
    os.makedirs(args.plot_dir, exist_ok=True)
    paths = [os.path.join(args.plot_dir, f"mc_{name}_{kind}.png") for kind in ("reliability", "entropy")]
    plot.reliability_diagram(mc.mean, data.y_test, path=paths[0], title=f"{result.variant.name}, MC")
    plot.uncertainty_histogram(
        entropy["test"],
        outside,
        path=paths[1],
        labels=("test images", "noise and rotated"),
        title=f"{result.variant.name}, MC predictive entropy",
    )
    row = {
        "variant": result.variant.name,
        "deterministic": deterministic,
        "mc": sampled,
        "mc_temperature": scaled,
        "temperatures": temperatures,
        "aps_coverage": float(aps[np.arange(len(data.y_test)), data.y_test].mean()),
        "aps_set_size": float(aps.sum(axis=1).mean()),
        "mean_entropy": {kind: float(values.mean()) for kind, values in entropy.items()},
        "auroc_noise": auroc(entropy["test"], entropy["noise"]),
        "auroc_rotated": auroc(entropy["test"], entropy["rotated"]),
        "reload_gap": result.reload_gap,
        "mc_reload_gap": mc_gap,
        "reload_ok": result.reload_ok and mc_gap <= _common.RELOAD_ATOL,
        "plots": paths,
        "file": os.path.basename(result.path),
    }
    for key in deterministic:
        row[key] = f"{deterministic[key]:.3f} / {sampled[key]:.3f}"
    row["calibrated"] = f"{scaled['nll']:.3f} / {scaled['ece']:.3f} (τ {np.mean(temperatures):.2f})"
    row["conformal"] = f"{row['aps_coverage']:.3f} / {row['aps_set_size']:.2f}"
    row["entropy"] = " / ".join(f"{row['mean_entropy'][kind]:.3f}" for kind in ("test", "noise", "rotated"))
    row["auroc"] = f"{row['auroc_noise']:.3f} / {row['auroc_rotated']:.3f}"
    row["reload"] = f"{result.reload_gap:.0e} / {mc_gap:.0e} " + ("ok" if row["reload_ok"] else "FAILED")
    print_fn(f"  {result.variant.name:<40s} MC accuracy {sampled['accuracy']:.3f}, plots {', '.join(paths)}")
    return row


def main(argv=None, print_fn=print):
    """Runs the example; returns ``{"rows": [...], "results": [...], "data": {layout: Data}}``."""
    args = _common.parse_args(__doc__.split("\n")[0], argv, epochs=30, extra=add_arguments)
    if args.samples < 1:
        raise SystemExit(f"--samples must be a positive integer, got {args.samples}")
    if args.quick:
        args.samples = min(args.samples, QUICK_SAMPLES)
    results, data = _common.run_variants(VARIANTS, args, prefix="mc", print_fn=print_fn)
    print_fn(f"Monte Carlo dropout, {args.samples} samples per input:")
    rows = [evaluate(result, data[result.variant.layout], args, print_fn) for result in results]
    print_fn(_common.format_table(rows, COLUMNS))
    return {"rows": rows, "results": results, "data": data}


if __name__ == "__main__":
    main()
