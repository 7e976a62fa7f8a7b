"""Makes the small trained models shipped in saved_models/: kerasdrop layers of every family, with expected outputs.

For each model below, briefly trained on scikit-learn's digits, it writes:

  - ``saved_models/<name>.keras``: the model, saved without its optimizer;
  - ``saved_models/<name>.npz``: a fixed input ``x`` (16 test digits), the expected deterministic output
    ``expected`` (dropout off), the classes of every layer (``layers``: registered names, wrapped layers and RNN
    cells included), values of learned attributes (``attribute__<layer>__<name>``: a Concrete rate, a sparsity),
    and, for models with stochastic layers, ``mc_mean`` and ``mc_std``: the mean and standard deviation of
    ``mc_samples`` MCDropout samples with seed ``mc_seed``.

tests/test_saved_models.py loads every file with plain `keras.saving.load_model` and checks all of this, so that a
change to kerasdrop that breaks files users have already saved is caught. Regenerate (and commit the result) only
when a change of the saved format or of a test-time formula is intended, or make only new models:

    python examples/make_saved_models.py                     # about a minute on 2 CPU cores
    python examples/make_saved_models.py --only zoneout_rnn  # one model; the others stay as they are
"""

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable

EXAMPLES = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, EXAMPLES)

import _common  # noqa: E402  (sets the Keras backend)
import keras  # noqa: E402
import numpy as np  # noqa: E402

import kerasdrop  # noqa: E402
from kerasdrop.compression import compress  # noqa: E402

OUTPUT_DIR = os.path.join(os.path.dirname(EXAMPLES), "saved_models")
INPUT_ROWS = 16
MC_SAMPLES = 200
MC_SEED = 0
SEED = 0
UNITS = 16


@dataclasses.dataclass(frozen=True)
class Spec:
    """A shipped model: ``build(train_size) -> keras.Model`` (or ``derive(trained models) -> keras.Model``),
    its input layout, training epochs, and the learned attributes to record as ``(layer name, attribute)``."""

    name: str
    family: str
    layout: str
    build: Callable = None
    epochs: int = 10
    attributes: tuple = ()
    derive: Callable = None


def standard_mlp(train_size):
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(UNITS, activation="relu"),
            kerasdrop.Dropout(0.3, scaling="weight_scaling", seed=SEED, name="dropout_weight_scaling"),
            keras.layers.Dense(UNITS, activation="relu"),
            kerasdrop.GaussianDropout(0.2, seed=SEED + 1, name="gaussian_dropout"),
            kerasdrop.StochasticDropout(0.2, 0.05, seed=SEED + 2, name="stochastic_dropout"),
            kerasdrop.Dropout(0.1, noise_shape=(None, UNITS), seed=SEED + 3, name="dropout_noise_shape"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="standard_mlp",
    )


def weight_noise_mlp(train_size):
    """Every dense layer with its own noisy kernel, stacked: DropConnect, Standout, fast dropout,
    variational and sparse variational dropout, and Concrete dropout around the output layer."""
    kl_weight = 1.0 / train_size  # the KL terms per training sample
    inputs = keras.Input((64,))
    x = kerasdrop.DropConnectDense(
        UNITS, 0.3, activation="relu", scaling="weight_scaling", seed=SEED, name="drop_connect_dense"
    )(inputs)
    x = kerasdrop.StandoutDense(UNITS, alpha=1.0, beta=0.5, seed=SEED + 1, name="standout_dense")(x)
    x = kerasdrop.FastDropoutDense(UNITS, 0.3, activation="relu", seed=SEED + 2, name="fast_dropout_dense")(x)
    x = kerasdrop.VariationalDense(
        UNITS, activation="relu", kl_weight=kl_weight, seed=SEED + 3, name="variational_dense"
    )(x)
    x = kerasdrop.SparseVariationalDense(
        UNITS, activation="relu", kl_weight=kl_weight, seed=SEED + 4, name="sparse_variational_dense"
    )(x)
    outputs = kerasdrop.ConcreteDropout(
        keras.layers.Dense(10, activation="softmax"),
        **_common.concrete_regularizers(train_size),
        seed=SEED + 5,
        name="concrete_dropout",
    )(x)
    return keras.Model(inputs, outputs, name="weight_noise_mlp")


def pruning_mlp(train_size):
    """Structured Bayesian pruning of the hidden units, a sparse variational output layer: what `compress` reads."""
    layers = [keras.Input((64,))]
    for index in range(2):
        layers += [
            keras.layers.Dense(UNITS, name=f"dense_{index}"),
            kerasdrop.StructuredBayesianPruning(kl_weight=1.0 / train_size, seed=SEED + index, name=f"sbp_{index}"),
            keras.layers.ReLU(),
        ]
    layers.append(
        kerasdrop.SparseVariationalDense(
            10, activation="softmax", kl_weight=1.0 / train_size, seed=SEED + 2, name="sparse_output"
        )
    )
    return keras.Sequential(layers, name="pruning_mlp")


def compressed_mlp(models):
    """`compress` of the trained pruning_mlp: plain Keras `Dense` layers, the units switched off removed."""
    return compress(models["pruning_mlp"])[0]


def conv_cnn(train_size):
    """Every convolutional, pooling and image layer in one small CNN on 8x8 images (8 channels)."""
    inputs = keras.Input((8, 8, 1))
    x = kerasdrop.Cutout(2, holes=1, seed=SEED, name="cutout")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = kerasdrop.SpatialDropout2D(0.1, seed=SEED + 1, name="spatial_dropout2d")(x)
    x = kerasdrop.DropBlock2D(0.1, block_size=3, seed=SEED + 2, name="drop_block2d")(x)
    x = kerasdrop.MaxDrop2D(0.1, mode="channel", seed=SEED + 3, name="max_drop2d_channel")(x)
    x = kerasdrop.MaxPoolingDropout2D(0.2, seed=SEED + 4, name="max_pooling_dropout2d")(x)  # 4x4
    x = kerasdrop.DropConnectConv2D(8, 3, 0.2, padding="same", activation="relu", seed=SEED + 5)(x)
    x = kerasdrop.SpatialDropout3D(0.1, seed=SEED + 6, name="spatial_dropout3d")(keras.layers.Reshape((4, 4, 1, 8))(x))
    x = keras.layers.Reshape((4, 4, 8))(x)
    x = kerasdrop.ConcreteSpatialDropout2D(
        keras.layers.Conv2D(8, 3, padding="same"),
        **_common.concrete_regularizers(train_size),
        seed=SEED + 7,
        name="concrete_spatial_dropout2d",
    )(x)
    x = kerasdrop.StructuredBayesianPruning(kl_weight=1.0 / train_size, seed=SEED + 8, name="sbp_conv")(x)
    x = keras.layers.ReLU()(x)
    x = kerasdrop.SparseVariationalConv2D(
        8, 3, padding="same", activation="relu", kl_weight=1.0 / train_size, seed=SEED + 9, name="sparse_conv"
    )(x)
    x = kerasdrop.MaxDrop2D(0.1, mode="spatial", seed=SEED + 10, name="max_drop2d_spatial")(x)
    x = kerasdrop.AvgPoolingDropout2D(0.2, seed=SEED + 11, name="avg_pooling_dropout2d")(x)  # 2x2
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs, name="conv_cnn")


def recurrent_rnn(train_size):
    """Every recurrent layer, and a cell inside an unrolled `keras.layers.RNN`, side by side on 8-step sequences."""
    inputs = keras.Input((8, 8))
    x = kerasdrop.SpatialDropout1D(0.1, seed=SEED, name="spatial_dropout1d")(inputs)
    units = 12
    branches = [
        kerasdrop.VariationalLSTM(units, dropout=0.2, recurrent_dropout=0.2, seed=SEED + 1)(x),
        kerasdrop.VariationalGRU(units, dropout=0.2, recurrent_dropout=0.2, seed=SEED + 2)(x),
        kerasdrop.RNNDropLSTM(units, cell_dropout=0.2, seed=SEED + 3)(x),
        kerasdrop.SemeniutaLSTM(units, recurrent_dropout=0.2, per_step=False, seed=SEED + 4)(x),
        keras.layers.GlobalAveragePooling1D()(
            kerasdrop.SemeniutaGRU(units, recurrent_dropout=0.2, return_sequences=True, seed=SEED + 5)(x)
        ),
        # Unrolled: a cell that draws at every step samples under MCDropout on every backend (see the README).
        keras.layers.RNN(kerasdrop.SemeniutaLSTMCell(units, recurrent_dropout=0.2, seed=SEED + 6), unroll=True)(x),
    ]
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Concatenate()(branches))
    return keras.Model(inputs, outputs, name="recurrent_rnn")


def residual_cnn(train_size):
    """Stochastic depth: three residual blocks ending in DropPath at the rates of `drop_path_rates(3, 0.2)`, and a
    fourth with the paper's weight scaling (``keep · x`` at test time)."""
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    blocks = [(rate, "inverted") for rate in kerasdrop.drop_path_rates(3, 0.2)] + [(0.2, "weight_scaling")]
    for index, (rate, scaling) in enumerate(blocks):
        branch = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
        branch = keras.layers.Conv2D(8, 3, padding="same")(branch)
        branch = kerasdrop.DropPath(rate, scaling=scaling, seed=SEED + index, name=f"drop_path_{index}")(branch)
        x = keras.layers.ReLU()(keras.layers.Add()([x, branch]))
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="residual_cnn")


def zoneout_rnn(train_size):
    """The zoneout layers side by side on 8-step sequences, and zoneout cells inside an unrolled `keras.layers.RNN`."""
    inputs = keras.Input((8, 8))
    units = 12
    branches = [
        kerasdrop.ZoneoutLSTM(units, cell_zoneout=0.5, hidden_zoneout=0.05, seed=SEED)(inputs),
        kerasdrop.ZoneoutGRU(units, zoneout=0.1, dropout=0.1, seed=SEED + 1)(inputs),
        kerasdrop.ZoneoutGRU(units, zoneout=0.2, reset_after=False, seed=SEED + 2)(inputs),
        keras.layers.RNN(
            kerasdrop.ZoneoutLSTMCell(units, cell_zoneout=0.2, hidden_zoneout=0.1, seed=SEED + 3), unroll=True
        )(inputs),
        keras.layers.RNN(kerasdrop.ZoneoutGRUCell(units, zoneout=0.15, seed=SEED + 4), unroll=True)(inputs),
    ]
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Concatenate()(branches))
    return keras.Model(inputs, outputs, name="zoneout_rnn")


def mc_mlp(train_size):
    """Dropout in Monte Carlo mode: the saved model samples on every prediction."""
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(UNITS, activation="relu"),
            kerasdrop.Dropout(0.25, mc=True, seed=SEED, name="mc_dropout"),
            keras.layers.Dense(UNITS, activation="relu"),
            kerasdrop.GaussianDropout(0.25, mc=True, seed=SEED + 1, name="mc_gaussian_dropout"),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="mc_mlp",
    )


SPECS = [
    Spec("standard_mlp", "standard", "flat", standard_mlp),
    Spec(
        "weight_noise_mlp",
        "weight noise, variational, concrete",
        "flat",
        weight_noise_mlp,
        epochs=20,
        attributes=(
            ("variational_dense", "dropout_rate"),
            ("sparse_variational_dense", "sparsity"),
            ("concrete_dropout", "rate"),
        ),
    ),
    Spec(
        "pruning_mlp",
        "compression (source)",
        "flat",
        pruning_mlp,
        epochs=30,
        attributes=(("sbp_0", "sparsity"), ("sbp_1", "sparsity")),
    ),
    Spec("compressed_mlp", "compression (plain Keras output)", "flat", derive=compressed_mlp),
    Spec(
        "conv_cnn",
        "convolutional, pooling, image",
        "image",
        conv_cnn,
        attributes=(("concrete_spatial_dropout2d", "rate"), ("sparse_conv", "sparsity"), ("sbp_conv", "sparsity")),
    ),
    Spec("recurrent_rnn", "recurrent", "sequence", recurrent_rnn, epochs=8),
    Spec("residual_cnn", "stochastic depth", "image", residual_cnn),
    Spec("zoneout_rnn", "recurrent (zoneout)", "sequence", zoneout_rnn, epochs=8),
    Spec("mc_mlp", "Monte Carlo mode", "flat", mc_mlp),
]


def layer_names(model):
    """Registered class names of every layer of ``model`` in order, wrapped layers and RNN cells included."""
    names = []

    def visit(layer):
        names.append(keras.saving.get_registered_name(type(layer)))
        children = list(getattr(layer, "layers", None) or [])
        for attribute in ("layer", "cell", "forward_layer", "backward_layer"):
            child = getattr(layer, attribute, None)
            if isinstance(child, keras.layers.Layer):
                children.append(child)
        for child in children + list(getattr(layer, "cells", None) or []):
            visit(child)

    for layer in model.layers:
        visit(layer)
    return names


def has_stochastic_layers(model):
    return any(name.startswith("kerasdrop>") for name in layer_names(model))


def attribute_value(model, layer_name, attribute):
    value = getattr(model.get_layer(layer_name), attribute)
    return np.asarray(value() if callable(value) else value, dtype="float64")


def deterministic_output(model, x):
    """The test-time output (Monte Carlo mode switched off for the call, then restored)."""
    modes = {layer.name: layer.mc for layer in model.layers if getattr(layer, "mc", False)}
    kerasdrop.set_mc(model, False)
    try:
        return model.predict(x, verbose=0)
    finally:
        for name in modes:
            kerasdrop.set_mc(model.get_layer(name), True)


def without_optimizer(model):
    """A copy of ``model`` with the same weights and no compiled state, so that the file holds the model only."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def record(spec, model, x, data):
    """The arrays of ``<name>.npz`` for the reloaded ``model``."""
    arrays = {
        "x": x,
        "expected": deterministic_output(model, x),
        "layers": np.array(layer_names(model)),
        "accuracy": np.float64(np.mean(deterministic_output(model, data.x_test).argmax(-1) == data.y_test)),
    }
    for layer_name, attribute in spec.attributes:
        arrays[f"attribute__{layer_name}__{attribute}"] = attribute_value(model, layer_name, attribute)
    if has_stochastic_layers(model):
        arrays.update(mc_statistics(model, x))
    return arrays


def mc_statistics(model, x):
    """The recorded Monte Carlo mean and std of ``model`` on ``x`` (fixed seed)."""
    result = kerasdrop.MCDropout(model, samples=MC_SAMPLES, seed=MC_SEED).predict(x, verbose=0)
    return {"mc_mean": result.mean, "mc_std": result.std, "mc_samples": MC_SAMPLES, "mc_seed": MC_SEED}


def refresh_mc_statistics(output_dir, print_fn):
    """Recomputes only the Monte Carlo statistics of the shipped models (after a change of MCDropout's random
    streams), leaving the models and their other recorded outputs as they are."""
    for spec in SPECS:
        path = os.path.join(output_dir, f"{spec.name}.npz")
        with np.load(path) as stored:
            arrays = dict(stored)
        if "mc_mean" not in arrays:
            continue
        model = keras.saving.load_model(os.path.join(output_dir, f"{spec.name}.keras"))
        arrays.update(mc_statistics(model, arrays["x"]))
        np.savez_compressed(path, **arrays)
        print_fn(f"  {spec.name:<18s} Monte Carlo statistics recomputed")


def make(spec, models, data, output_dir, print_fn):
    """Trains (or derives) one model, saves it, reloads it and writes its expected outputs."""
    keras.utils.set_random_seed(SEED)
    if spec.derive is None:
        model = spec.build(len(data[spec.layout].x_train))
        _common.train(model, data[spec.layout], spec.epochs, learning_rate=3e-3)
        model = without_optimizer(model)
    else:
        model = spec.derive(models)
    models[spec.name] = model
    path = os.path.join(output_dir, f"{spec.name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    x = data[spec.layout].x_test[:INPUT_ROWS]
    arrays = record(spec, reloaded, x, data[spec.layout])
    gap = np.max(np.abs(arrays["expected"] - deterministic_output(model, x)))
    if gap > 1e-6:
        raise AssertionError(f"{spec.name}: the reloaded model differs from the trained one by {gap}")
    np.savez_compressed(os.path.join(output_dir, f"{spec.name}.npz"), **arrays)
    print_fn(f"  {spec.name:<18s} test accuracy {float(arrays['accuracy']):.3f}, {os.path.getsize(path):,} bytes")
    return arrays


def write_readme(output_dir, specs, outputs):
    lines = [
        "# Shipped models",
        "",
        "Small models trained briefly on scikit-learn's digits, made by `python examples/make_saved_models.py`; "
        "`tests/test_saved_models.py` loads each with `keras.saving.load_model` (no `custom_objects`) and checks the "
        "outputs stored beside it in `<name>.npz`. They are fixtures of the file format, not good classifiers.",
        "",
        "| file | family | kerasdrop layers | test accuracy | size (bytes) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in specs:
        arrays = outputs[spec.name]
        layers = sorted({str(name).split(">", 1)[1] for name in arrays["layers"] if str(name).startswith("kerasdrop>")})
        size = os.path.getsize(os.path.join(output_dir, f"{spec.name}.keras"))
        lines.append(
            f"| `{spec.name}.keras` | {spec.family} | {', '.join(layers) or 'none (plain Keras)'} | "
            f"{float(arrays['accuracy']):.3f} | {size:,} |"
        )
    with open(os.path.join(output_dir, "README.md"), "w") as handle:
        handle.write("\n".join(lines) + "\n")


def main(argv=None, print_fn=print):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output-dir", default=OUTPUT_DIR, help="where to write (default: the repository's)")
    parser.add_argument(
        "--mc-only", action="store_true", help="only recompute the Monte Carlo statistics of the models there"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[spec.name for spec in SPECS if spec.derive is None],
        help="make only these models (after adding one, say); the others stay as they are",
    )
    args = parser.parse_args(argv)
    if args.mc_only:
        return refresh_mc_statistics(args.output_dir, print_fn)
    os.makedirs(args.output_dir, exist_ok=True)
    data = _common.in_layouts(_common.load_images("digits", seed=SEED), [spec.layout for spec in SPECS])
    models, outputs = {}, {}
    for spec in SPECS:
        if args.only and spec.name not in args.only:
            with np.load(os.path.join(args.output_dir, f"{spec.name}.npz")) as stored:
                outputs[spec.name] = dict(stored)
            continue
        outputs[spec.name] = make(spec, models, data, args.output_dir, print_fn)
    write_readme(args.output_dir, SPECS, outputs)
    return outputs


if __name__ == "__main__":
    main()
