"""kerasdrop.compression: sparsify / compress give plain Keras models with the sparse model's test-time predictions."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop.compression import compress, sparsify
from tests import backend

SPARSE = (kerasdrop.SparseVariationalDense, kerasdrop.SparseVariationalConv2D)
ATOL = 1e-5


def set_sparse(layer, keep, seed=0, bias=None):
    """Gives a sparse-variational layer random weights, with ``log α = ±6`` so that exactly ``keep`` survives."""
    rng = np.random.default_rng(seed)
    kernel = rng.uniform(0.2, 1.0, size=layer.kernel.shape) * rng.choice([-1.0, 1.0], size=layer.kernel.shape)
    log_sigma2 = np.log(kernel**2) + np.where(keep, -6.0, 6.0)
    bias = rng.normal(scale=0.3, size=layer.bias.shape) if bias is None else np.asarray(bias)
    layer.kernel.assign(kernel.astype("float32"))
    layer.log_sigma2.assign(log_sigma2.astype("float32"))
    layer.bias.assign(bias.astype("float32"))
    return np.where(keep, kernel, 0.0)


def random_keep(shape, fraction, seed):
    return np.random.default_rng(seed).uniform(size=shape) < fraction


def set_sbp(layer, off):
    """Units in ``off`` get a wide posterior (SNR about 0.33, switched off); the others a sharp one."""
    off = np.asarray(off, bool)
    layer.set_weights([np.where(off, -10.0, -0.3).astype("float32"), np.where(off, 3.0, -3.0).astype("float32")])


def assert_plain_keras(model):
    for layer in model.layers:
        assert type(layer).__module__.startswith("keras."), f"{layer.name} is a {type(layer).__module__} layer"
    assert "kerasdrop" not in json.dumps(model.get_config())


def assert_same_predictions(model, reference, x):
    np.testing.assert_allclose(model.predict(x, verbose=0), reference.predict(x, verbose=0), atol=ATOL)


def mlp(seed=0):
    """A small MLP with every kind of layer sparsify handles, with known pruning."""
    model = keras.Sequential(
        [
            keras.Input((12,)),
            kerasdrop.SparseVariationalDense(10, activation="relu", name="sv1"),
            kerasdrop.Dropout(0.3),
            keras.layers.Dropout(0.2),
            kerasdrop.SparseVariationalDense(8, name="sv2"),
            kerasdrop.StructuredBayesianPruning(name="sbp"),
            keras.layers.ReLU(),
            kerasdrop.SparseVariationalDense(3, activation="softmax", name="out"),
        ]
    )
    pruned = {
        name: set_sparse(
            model.get_layer(name), random_keep(model.get_layer(name).kernel.shape, 0.5, seed + i), seed=seed + i
        )
        for i, name in enumerate(["sv1", "sv2", "out"])
    }
    set_sbp(model.get_layer("sbp"), [0, 1, 0, 0, 0, 1, 0, 0])
    return model, pruned


X_FLAT = np.random.default_rng(42).normal(size=(32, 12)).astype("float32")


# ---------------------------------------------------------------- sparsify


def test_sparsify_gives_plain_model_with_same_predictions_and_exact_zeros():
    model, pruned = mlp()
    plain, report = sparsify(model)
    assert_plain_keras(plain)
    assert [type(layer).__name__ for layer in plain.layers] == ["Dense", "Dense", "ReLU", "Dense"]
    assert_same_predictions(plain, model, X_FLAT)
    np.testing.assert_array_equal(plain.get_layer("sv1").kernel.numpy(), pruned["sv1"].astype("float32"))
    # The SBP factor E[θ] (0 for switched-off units) is folded into sv2's kernel and bias.
    factor = keras.ops.convert_to_numpy(model.get_layer("sbp").test_multiplier())
    np.testing.assert_allclose(plain.get_layer("sv2").kernel.numpy(), pruned["sv2"] * factor, rtol=1e-6)
    assert np.all(plain.get_layer("sv2").kernel.numpy()[:, [1, 5]] == 0)
    assert np.all(plain.get_layer("sv2").bias.numpy()[[1, 5]] == 0)
    # Report: parameters of the plain architecture before, non-zero entries after.
    assert report.params_before == (12 * 10 + 10) + (10 * 8 + 8) + (8 * 3 + 3)
    assert report.params_after == plain.count_params() == report.params_before
    assert report.nonzero_after == sum(int(np.count_nonzero(w)) for w in plain.get_weights())
    assert report.compression_ratio == pytest.approx(report.params_before / report.nonzero_after)
    rows = {row.name: row for row in report.layers}
    assert set(rows) == {"sv1", "sv2", "out"}
    sv1 = model.get_layer("sv1")
    assert rows["sv1"].nonzero_after == np.count_nonzero(pruned["sv1"]) + np.count_nonzero(sv1.bias.numpy())
    assert rows["sv1"].sparsity == pytest.approx(1 - rows["sv1"].nonzero_after / 130)
    assert "compression" in str(report) and report.as_dict()["compression_ratio"] == report.compression_ratio


def test_sparsify_threshold():
    model, _ = mlp()
    layer = model.get_layer("sv1")
    log_alpha = np.log(np.exp(layer.log_sigma2.numpy()) / layer.kernel.numpy() ** 2)
    plain, _ = sparsify(model, threshold=-7.0)  # prunes every weight: all have log α = ±6
    assert np.count_nonzero(plain.get_layer("sv1").kernel.numpy()) == 0
    plain, _ = sparsify(model, threshold=7.0)  # keeps every weight
    assert np.count_nonzero(plain.get_layer("sv1").kernel.numpy()) == np.count_nonzero(log_alpha < 7)
    layer.threshold = 7.0
    plain, _ = sparsify(model, threshold=None)  # each layer's own threshold
    assert np.count_nonzero(plain.get_layer("sv1").kernel.numpy()) == layer.kernel.shape[0] * layer.kernel.shape[1]
    assert np.count_nonzero(plain.get_layer("sv2").kernel.numpy()) < 80
    assert layer.threshold == 7.0


def test_weight_scaling_dropout_is_folded():
    model = keras.Sequential(
        [
            keras.Input((12,)),
            kerasdrop.SparseVariationalDense(6, activation="relu"),
            keras.layers.Activation("relu"),
            kerasdrop.Dropout(0.4, scaling="weight_scaling"),
            keras.layers.Dense(2),
        ]
    )
    set_sparse(model.layers[0], random_keep((12, 6), 0.5, 1))
    plain, _ = sparsify(model)
    assert len(plain.layers) == 3
    assert_same_predictions(plain, model, X_FLAT)


# ---------------------------------------------------------------- compress


def test_compress_removes_exactly_the_dead_units_of_an_mlp():
    model = keras.Sequential(
        [
            keras.Input((12,)),
            kerasdrop.SparseVariationalDense(6, activation="relu", name="a"),
            kerasdrop.SparseVariationalDense(5, name="b"),
            kerasdrop.StructuredBayesianPruning(name="sbp"),
            keras.layers.Activation("relu"),
            kerasdrop.SparseVariationalDense(4, name="out"),
        ]
    )
    keep_a = random_keep((12, 6), 0.6, 0)
    keep_a[:, 2] = False  # unit a2: no input, constant relu(0.8), folded into b's bias
    keep_a[:, 5] = False  # unit a5: no input, constant relu(-0.5) = 0
    set_sparse(model.get_layer("a"), keep_a, bias=[0.1, 0.2, 0.8, 0.3, 0.4, -0.5])
    keep_b = random_keep((6, 5), 0.7, 1)
    keep_b[1] = False  # unit a1: nothing reads it
    keep_b[0, :] = True
    set_sparse(model.get_layer("b"), keep_b, seed=1)
    set_sbp(model.get_layer("sbp"), [0, 0, 1, 0, 0])  # unit b2 switched off
    keep_out = random_keep((5, 4), 0.7, 2)
    keep_out[4] = False  # unit b4: nothing reads it
    keep_out[:4, 0] = True
    set_sparse(model.get_layer("out"), keep_out, seed=2)
    compact, report = compress(model)
    assert_plain_keras(compact)
    assert_same_predictions(compact, model, X_FLAT)
    assert compact.get_layer("a").units == 3 and compact.get_layer("b").units == 3
    assert compact.get_layer("out").units == 4  # the outputs stay
    sparse, _ = sparsify(model)
    np.testing.assert_array_equal(
        compact.get_layer("a").kernel.numpy(), sparse.get_layer("a").kernel.numpy()[:, [0, 3, 4]]
    )
    assert compact.get_layer("b").kernel.shape == (3, 3)
    rows = {row.name: row for row in report.layers}
    assert (rows["a"].units_before, rows["a"].units_after) == (6, 3)
    assert (rows["b"].units_before, rows["b"].units_after) == (5, 3)
    assert report.params_after == compact.count_params() == (12 * 3 + 3) + (3 * 3 + 3) + (3 * 4 + 4)
    assert report.params_after < report.params_before == sparse.count_params()


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_compress_conv_through_pooling_batch_norm_and_flatten(data_format):
    image = (7, 7, 2) if data_format == "channels_last" else (2, 7, 7)
    model = keras.Sequential(
        [
            keras.Input(image),
            kerasdrop.SparseVariationalConv2D(6, 3, activation="relu", data_format=data_format, name="conv"),
            kerasdrop.StructuredBayesianPruning(data_format=data_format, name="sbp"),
            keras.layers.MaxPooling2D(2, data_format=data_format),
            keras.layers.BatchNormalization(axis=-1 if data_format == "channels_last" else 1, name="bn"),
            keras.layers.Flatten(),
            kerasdrop.SparseVariationalDense(5, activation="relu", name="dense"),
            keras.layers.Dense(3, name="out"),
        ]
    )
    set_sparse(model.get_layer("conv"), random_keep((3, 3, 2, 6), 0.7, 3))
    set_sbp(model.get_layer("sbp"), [0, 1, 0, 0, 1, 0])
    bn = model.get_layer("bn")
    rng = np.random.default_rng(4)
    bn.set_weights([rng.uniform(0.5, 2, 6), rng.normal(size=6), rng.normal(size=6), rng.uniform(0.5, 2, 6)])
    keep_dense = random_keep((6 * 2 * 2, 5), 0.5, 5)
    set_sparse(model.get_layer("dense"), keep_dense, seed=5)
    x = np.random.default_rng(6).normal(size=(16, *image)).astype("float32")
    compact, report = compress(model)
    assert_plain_keras(compact)
    assert_same_predictions(compact, model, x)
    # Switched-off filters 1 and 4 leave a constant BN output, moved into the dense layer's bias.
    assert compact.get_layer("conv").filters == 4
    assert [w.shape for w in compact.get_layer("bn").get_weights()] == [(4,)] * 4
    assert compact.get_layer("dense").kernel.shape == (4 * 2 * 2, 5)


@pytest.mark.parametrize(("padding", "filters_after"), [("valid", 3), ("same", 4)])
def test_constant_filter_folds_into_next_conv_only_without_padding(padding, filters_after):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            kerasdrop.SparseVariationalConv2D(4, 3, activation="relu", name="c1"),
            kerasdrop.SparseVariationalConv2D(3, 2, padding=padding, activation="relu", name="c2"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2),
        ]
    )
    keep = np.ones((3, 3, 2, 4), bool)
    keep[..., 1] = False  # filter 1 outputs the constant relu(0.7)
    set_sparse(model.get_layer("c1"), keep, bias=[0.1, 0.7, -0.2, 0.3])
    set_sparse(model.get_layer("c2"), np.ones((2, 2, 4, 3), bool), seed=1)
    x = np.random.default_rng(0).normal(size=(8, 6, 6, 2)).astype("float32")
    compact, _ = compress(model)
    assert compact.get_layer("c1").filters == filters_after
    assert_same_predictions(compact, model, x)


def test_compress_keeps_one_unit_when_all_are_dead():
    model = keras.Sequential(
        [
            keras.Input((12,)),
            kerasdrop.SparseVariationalDense(4, activation="relu"),
            kerasdrop.SparseVariationalDense(2),
        ]
    )
    set_sparse(model.layers[0], random_keep((12, 4), 0.5, 0))
    set_sparse(model.layers[1], np.zeros((4, 2), bool))
    compact, _ = compress(model)
    assert compact.layers[0].units == 1
    assert_same_predictions(compact, model, X_FLAT)


def functional_with_skip():
    inputs = keras.Input((12,))
    hidden = kerasdrop.SparseVariationalDense(8, activation="relu", name="hidden")(inputs)
    hidden = kerasdrop.Dropout(0.5)(hidden)
    branch = kerasdrop.SparseVariationalDense(8, name="branch")(hidden)
    outputs = keras.layers.Dense(2, name="out")(keras.layers.Add(name="add")([hidden, branch]))
    model = keras.Model(inputs, outputs)
    set_sparse(model.get_layer("hidden"), random_keep((12, 8), 0.5, 0))
    set_sparse(model.get_layer("branch"), random_keep((8, 8), 0.5, 1))
    return model


def test_functional_graph_it_cannot_shrink():
    model = functional_with_skip()
    plain, _ = sparsify(model)
    assert_plain_keras(plain)
    assert_same_predictions(plain, model, X_FLAT)
    with pytest.raises(ValueError, match=r"'hidden'.*feeds 2 layers.*'branch'.*'add' \(Add\).*strict=False"):
        compress(model)
    compact, report = compress(model, strict=False)
    assert_same_predictions(compact, model, X_FLAT)
    assert len(report.notes) == 2 and "'hidden'" in report.notes[0]


# ---------------------------------------------------------------- plain Keras files


@pytest.mark.slow
def test_results_save_and_load_without_kerasdrop(tmp_path):
    model, _ = mlp(seed=3)
    for name, function in (("sparse", sparsify), ("compact", compress)):
        result, _ = function(model)
        result.save(tmp_path / f"{name}.keras")
        np.save(tmp_path / f"{name}.npy", model.predict(X_FLAT, verbose=0))
        reloaded = keras.saving.load_model(tmp_path / f"{name}.keras", custom_objects={})
        assert_plain_keras(reloaded)
        np.testing.assert_allclose(reloaded.predict(X_FLAT, verbose=0), np.load(tmp_path / f"{name}.npy"), atol=ATOL)
    np.save(tmp_path / "x.npy", X_FLAT)
    # A fresh interpreter on the same backend that never imports kerasdrop loads both files and gives the sparse
    # model's predictions.
    script = textwrap.dedent(
        f"""
        import os, sys
        os.environ["KERAS_BACKEND"] = {backend.BACKEND!r}
        import keras, numpy as np
        x = np.load({str(tmp_path / "x.npy")!r})
        for name in ("sparse", "compact"):
            model = keras.saving.load_model({str(tmp_path)!r} + f"/{{name}}.keras")
            expected = np.load({str(tmp_path)!r} + f"/{{name}}.npy")
            np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol={ATOL})
        assert not any(module.startswith("kerasdrop") for module in sys.modules), "kerasdrop was imported"
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_dtype_policy_is_kept():
    model = keras.Sequential(
        [keras.Input((12,)), kerasdrop.SparseVariationalDense(4, dtype="mixed_float16"), keras.layers.Dense(2)]
    )
    plain, _ = sparsify(model)
    assert plain.layers[0].dtype_policy.name == "mixed_float16"
    assert plain.layers[0].kernel.dtype == "float32"


# ---------------------------------------------------------------- errors


def test_unsupported_kerasdrop_layer_is_named():
    model = keras.Sequential(
        [keras.Input((12,)), kerasdrop.DropConnectDense(4, 0.5, name="dc"), kerasdrop.SparseVariationalDense(2)]
    )
    with pytest.raises(ValueError, match=r"layer 'dc' \(DropConnectDense\)"):
        sparsify(model)


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ([keras.layers.Dense(4, activation="tanh", name="d")], r"'d' has activation 'tanh'"),
        ([], "no dense or convolutional layer comes before it"),
        ([keras.layers.Dense(4, name="d"), keras.layers.Activation("sigmoid", name="act")], r"'act' \(Activation\)"),
    ],
)
def test_structured_pruning_that_cannot_be_folded(layers, match):
    model = keras.Sequential([keras.Input((4,)), *layers, kerasdrop.StructuredBayesianPruning(name="sbp")])
    with pytest.raises(ValueError, match=r"'sbp'.*" + match):
        compress(model)


def test_models_it_cannot_rewrite():
    with pytest.raises(ValueError, match="build it first"):
        sparsify(keras.Sequential([kerasdrop.SparseVariationalDense(2)]))
    inner = keras.Sequential([keras.Input((12,)), kerasdrop.SparseVariationalDense(3)], name="inner")
    outer = keras.Sequential([keras.Input((12,)), inner, keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="'inner' is a nested model"):
        sparsify(outer)
    shared = kerasdrop.SparseVariationalDense(12, name="shared")
    inputs = keras.Input((12,))
    with pytest.raises(ValueError, match="'shared' is shared"):
        compress(keras.Model(inputs, shared(shared(inputs))))


@pytest.mark.parametrize(
    ("kwargs", "error"), [({"threshold": float("nan")}, ValueError), ({"threshold": "3"}, TypeError)]
)
def test_bad_arguments(kwargs, error):
    model, _ = mlp()
    with pytest.raises(error, match="`threshold`"):
        sparsify(model, **kwargs)
    with pytest.raises(TypeError, match="`strict`"):
        compress(model, strict="yes")
