"""What the example scripts share: arguments, data in each family's layout, the train/save/reload/predict loop, and
the printed table. Each script only says which models it builds (a list of `Variant`).

The loop, for each variant: build the model (seeded), train it with Adam on sparse categorical cross-entropy, predict
the test set deterministically, save it as ``<output-dir>/<prefix>_<variant>.keras``, load the file back (no
``custom_objects``: kerasdrop layers are registered), predict again, and record the test accuracy and the largest
difference between the two predictions (the reload check).

The examples run on every Keras backend: ``KERAS_BACKEND=tensorflow|jax|torch`` (TensorFlow when unset).
"""

import argparse
import dataclasses
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Each model of an example traces its own predict function; TensorFlow would warn about "retracing" from the fifth.
logging.getLogger("tensorflow").setLevel(logging.ERROR)

import numpy as np  # noqa: E402

DATASETS = ("digits", "mnist", "cifar10")
# --quick: one epoch on a small subset, enough to check that every model trains, saves and reloads.
QUICK_TRAIN_SIZE = 256
QUICK_TEST_SIZE = 128
# Largest difference allowed between the predictions of a model and of its reloaded file (float32, same machine).
RELOAD_ATOL = 1e-5
PREDICT_BATCH = 256


@dataclasses.dataclass(frozen=True)
class Task:
    """What a model builder is told: ``input_shape`` (without the batch axis), ``classes``, ``train_size`` (the
    number of training samples, for KL and regulariser weights of ``1/N``) and ``seed``."""

    input_shape: tuple
    classes: int
    train_size: int
    seed: int


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model of an example: ``build(task) -> keras.Model``, fed inputs in ``layout`` (see `as_layout`)."""

    name: str
    build: Callable
    layout: str = "flat"


@dataclasses.dataclass
class Data:
    """A train/test split in one layout; ``test_images`` keeps the test set as ``(n, rows, cols, channels)``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_images: np.ndarray
    classes: int


@dataclasses.dataclass
class Result:
    """A trained variant: its file, the trained and the reloaded model, their test predictions, the test labels,
    the number of parameters and the training time."""

    variant: Variant
    path: str
    model: object
    reloaded: object
    probs: np.ndarray
    reloaded_probs: np.ndarray
    labels: np.ndarray
    params: int
    seconds: float

    @property
    def accuracy(self):
        return float(np.mean(self.probs.argmax(axis=-1) == self.labels))

    @property
    def reload_gap(self):
        """The largest difference between the predictions of the trained and of the reloaded model."""
        return float(np.max(np.abs(self.probs - self.reloaded_probs)))

    @property
    def reload_ok(self):
        return self.reload_gap <= RELOAD_ATOL

    def row(self):
        return {
            "variant": self.variant.name,
            "accuracy": self.accuracy,
            "params": self.params,
            "seconds": self.seconds,
            "reload_gap": self.reload_gap,
            "reload_ok": self.reload_ok,
            "reload": "ok" if self.reload_ok else "FAILED",
            "file": os.path.basename(self.path),
        }


EPILOG = (
    "Each trained model is saved as <output-dir>/<prefix>_<variant>.keras and loaded back with plain "
    "keras.saving.load_model (no custom_objects); the table's reload column is the largest difference between the "
    "reloaded model's test predictions and the trained model's."
)


def results_folder(output_dir, published, quick, name):
    """Where a study script writes: ``output_dir`` when given; else, with ``--quick``, a folder in the system's
    temporary one (a smoke test never replaces the published results); else ``published``."""
    if output_dir is not None:
        return output_dir
    return os.path.join(tempfile.gettempdir(), f"kerasdrop_{name}_quick") if quick else published


def read_results(output_dir, flag="--replot"):
    """The ``results.json`` of an earlier run in ``output_dir`` (for ``flag``); a clear exit when there is none."""
    import json

    path = os.path.join(output_dir, "results.json")
    if not os.path.exists(path):
        raise SystemExit(f"{flag}: no {path}; run the script first, or pass the --output-dir that holds it")
    with open(path) as handle:
        return json.load(handle)


def parse_args(description, argv=None, epochs=20, extra=None):
    """The arguments every example takes; ``extra(parser)`` may add a script's own."""
    parser = argparse.ArgumentParser(description=description, epilog=EPILOG)
    parser.add_argument("--dataset", choices=DATASETS, default="digits", help="digits (offline) or keras.datasets")
    parser.add_argument("--epochs", type=int, default=epochs, help=f"training epochs per model (default {epochs})")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0, help="seed of the data split, the weights and the noise")
    parser.add_argument("--train-limit", type=int, default=None, help="use at most this many training samples")
    parser.add_argument("--output-dir", default="saved_models", help="where the trained models are saved")
    parser.add_argument("--only", nargs="+", metavar="VARIANT", help="run only these variants (names or file names)")
    parser.add_argument("--quick", action="store_true", help="one epoch on a small subset, to check that it runs")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    for name in ("epochs", "batch_size", "train_limit"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if not args.learning_rate > 0:
        parser.error(f"--learning-rate must be positive, got {args.learning_rate}")
    if args.quick:
        args.epochs = 1
        args.train_limit = min(args.train_limit or QUICK_TRAIN_SIZE, QUICK_TRAIN_SIZE)
    return args


def slug(name):
    """``"DropConnectDense 0.3 (weight scaling)"`` -> ``"drop_connect_dense_0_3_weight_scaling"``: a file name."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def select(variants, only):
    """The variants named in ``only`` (by name or slug), all of them when ``only`` is None."""
    if not only:
        return list(variants)
    known = {key: variant for variant in variants for key in (variant.name, slug(variant.name))}
    unknown = [name for name in only if name not in known]
    if unknown:
        choices = ", ".join(slug(variant.name) for variant in variants)
        raise SystemExit(f"Unknown variant(s) {unknown}; choose among: {choices}")
    return list(dict.fromkeys(known[name] for name in only))


def as_layout(images, layout):
    """Images ``(n, rows, cols, channels)`` as a model's input: ``"image"`` unchanged, ``"flat"`` ``(n, features)``,
    ``"sequence"`` ``(n, rows, cols * channels)``: one image row a time step."""
    images = np.ascontiguousarray(images, dtype="float32")
    if layout == "image":
        return images
    if layout == "flat":
        return images.reshape(len(images), -1)
    if layout == "sequence":
        return images.reshape(images.shape[0], images.shape[1], -1)
    raise ValueError(f"Unknown layout {layout!r}; expected 'flat', 'image' or 'sequence'.")


def _subset(x, y, size, seed):
    if size is None or size >= len(x):
        return x, y
    index = np.sort(np.random.default_rng(seed).permutation(len(x))[:size])
    return x[index], y[index]


def load_images(dataset, seed=0, train_limit=None, test_limit=None):
    """``(x_train, y_train), (x_test, y_test)`` as float32 images in [0, 1]: scikit-learn's 8x8 digits (offline), or
    MNIST / CIFAR-10 through ``keras.datasets`` (downloaded once; a clear error without network)."""
    from kerasdrop.datasets import load_digits, load_keras_dataset

    if dataset == "digits":
        (x_train, y_train), (x_test, y_test) = load_digits("image", seed=seed)
    else:
        (x_train, y_train), (x_test, y_test) = load_keras_dataset(dataset)
    return _subset(x_train, y_train, train_limit, seed), _subset(x_test, y_test, test_limit, seed + 1)


def in_layouts(images, layouts):
    """``{layout: Data}`` from the ``(x_train, y_train), (x_test, y_test)`` images of `load_images`."""
    (x_train, y_train), (x_test, y_test) = images
    classes = int(max(y_train.max(), y_test.max())) + 1
    return {
        layout: Data(as_layout(x_train, layout), y_train, as_layout(x_test, layout), y_test, x_test, classes)
        for layout in dict.fromkeys(layouts)
    }


def load_data(args, layouts):
    """``{layout: Data}`` for the dataset, the limits and the seed of ``args``."""
    test_limit = QUICK_TEST_SIZE if args.quick else None
    return in_layouts(load_images(args.dataset, args.seed, args.train_limit, test_limit), layouts)


def train(model, data, epochs, batch_size=32, learning_rate=2e-3):
    """Adam on sparse categorical cross-entropy (plus the KL and regulariser losses the layers add)."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, batch_size=batch_size, epochs=epochs, verbose=0)
    return model


def train_save_reload(variant, data, args, prefix):
    """Builds, trains, saves and reloads one variant; returns its `Result`."""
    import keras

    keras.utils.set_random_seed(args.seed)
    task = Task(tuple(data.x_train.shape[1:]), data.classes, len(data.x_train), args.seed)
    model = variant.build(task)
    start = time.perf_counter()
    train(model, data, args.epochs, args.batch_size, args.learning_rate)
    seconds = time.perf_counter() - start
    probs = model.predict(data.x_test, batch_size=PREDICT_BATCH, verbose=0)
    path = os.path.join(args.output_dir, f"{prefix}_{slug(variant.name)}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    reloaded_probs = reloaded.predict(data.x_test, batch_size=PREDICT_BATCH, verbose=0)
    params = int(model.count_params())
    return Result(variant, path, model, reloaded, probs, reloaded_probs, data.y_test, params, seconds)


def run_variants(variants, args, prefix, print_fn=print):
    """Trains, saves and reloads each selected variant; returns ``(results, {layout: Data})``."""
    chosen = select(variants, args.only)
    data = load_data(args, [variant.layout for variant in chosen])
    first = next(iter(data.values()))
    print_fn(
        f"{args.dataset}: {len(first.x_train)} training and {len(first.x_test)} test samples, {first.classes} "
        f"classes; {len(chosen)} model(s), {args.epochs} epoch(s) each; saving into {args.output_dir}/"
    )
    os.makedirs(args.output_dir, exist_ok=True)
    results = []
    for variant in chosen:
        result = train_save_reload(variant, data[variant.layout], args, prefix)
        print_fn(f"  {variant.name:<40s} test accuracy {result.accuracy:.3f}  ({result.seconds:.1f} s)")
        results.append(result)
    return results, data


def format_table(rows, columns):
    """A Markdown table: ``columns`` is a list of ``(header, key, format spec)``; cells padded to align."""
    cells = [[header for header, _, _ in columns]]
    cells += [[format(row[key], spec) for _, key, spec in columns] for row in rows]
    widths = [max(len(line[index]) for line in cells) for index in range(len(columns))]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) + " |" for line in cells
    ]
    lines.insert(1, "| " + " | ".join("-" * width for width in widths) + " |")
    return "\n".join(lines)


RESULT_COLUMNS = [
    ("variant", "variant", "s"),
    ("test accuracy", "accuracy", ".3f"),
    ("parameters", "params", ",d"),
    ("training (s)", "seconds", ".1f"),
    ("reload max |diff|", "reload_gap", ".1e"),
    ("reload", "reload", "s"),
    ("file", "file", "s"),
]


def script_main(variants, doc, prefix, epochs):
    """The ``main(argv=None, print_fn=print)`` of an example script that trains ``variants``, with the first line of
    the script's ``doc`` as description. It returns ``{"rows": [...], "results": [...], "data": {layout: Data}}``:
    the table's rows (dicts), the `Result`s and the data used."""

    def main(argv=None, print_fn=print):
        args = parse_args(doc.split("\n")[0], argv, epochs=epochs)
        results, data = run_variants(variants, args, prefix, print_fn)
        rows = [result.row() for result in results]
        print_fn(format_table(rows, RESULT_COLUMNS))
        return {"rows": rows, "results": results, "data": data}

    return main


def concrete_regularizers(train_size):
    """Gal et al.'s Concrete dropout regularisers for ``N`` training samples and the prior length scale 0.01 of
    these examples, as keyword arguments (`kerasdrop.concrete_regularizers`)."""
    import kerasdrop

    return kerasdrop.concrete_regularizers(train_size, length_scale=1e-2)
