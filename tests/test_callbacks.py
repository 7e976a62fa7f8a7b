"""KLWarmup: the factor of every KL term follows its schedule exactly, inside compiled training steps, without
retracing; it is saved with the model; and it makes a from-scratch sparse-variational MLP train on the digits."""

import math

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop.callbacks import KLWarmup, kl_layers, set_kl_factor
from tests import backend, utils

# Every layer with a KL or regularisation term, with an input for it.
KL_LAYERS = {
    "VariationalDense": (lambda: kerasdrop.VariationalDense(3, kl_weight=0.01, seed=1), (5,)),
    "SparseVariationalDense": (lambda: kerasdrop.SparseVariationalDense(3, kl_weight=0.01, seed=1), (5,)),
    "SparseVariationalConv2D": (lambda: kerasdrop.SparseVariationalConv2D(2, 2, kl_weight=0.01, seed=1), (4, 4, 2)),
    "StructuredBayesianPruning": (lambda: kerasdrop.StructuredBayesianPruning(kl_weight=0.1, seed=1), (5,)),
    "ConcreteDropout": (lambda: kerasdrop.ConcreteDropout(keras.layers.Dense(3), weight_regularizer=0.1, seed=1), (5,)),
    "ConcreteSpatialDropout2D": (
        lambda: kerasdrop.ConcreteSpatialDropout2D(keras.layers.Conv2D(2, 2), weight_regularizer=0.1, seed=1),
        (4, 4, 2),
    ),
}


def _zero_data_loss(y_true, y_pred):
    """A data loss of 0 whatever the outputs: the loss `fit` reports is then the layers' added losses alone."""
    return 0.0 * keras.ops.sum(keras.ops.reshape(y_pred, (keras.ops.shape(y_pred)[0], -1)), axis=-1)


def _frozen_model(layers, input_shape):
    """A model of ``layers`` compiled with the zero data loss and a learning rate of 0: its weights never change."""
    model = keras.Sequential([keras.Input(input_shape), *layers])
    model.compile(keras.optimizers.SGD(0.0), loss=_zero_data_loss)
    return model


def _data(input_shape, rows=32):
    x = np.random.default_rng(0).normal(size=(rows, *input_shape)).astype("float32")
    return x, np.zeros((rows, 1), "float32")


def _added_term(layer, x):
    """The layer's term without the factor: its own weight times its KL (or regulariser), in float64."""
    if isinstance(layer, kerasdrop.ConcreteDropout | kerasdrop.ConcreteSpatialDropout2D):
        return float(utils.to_numpy(layer.regularization(keras.ops.convert_to_tensor(x))))
    return layer.kl_weight * float(utils.to_numpy(layer.kl_divergence()))


# ---------------------------------------------------------------- the schedule


def test_factor_grows_linearly_from_start_to_one_then_stays():
    assert [KLWarmup(4, start=0.5).factor(epoch) for epoch in range(7)] == [0.5, 0.625, 0.75, 0.875, 1.0, 1.0, 1.0]
    assert [KLWarmup(2).factor(epoch) for epoch in range(4)] == [0.0, 0.5, 1.0, 1.0]
    assert [KLWarmup(1, start=1.0).factor(epoch) for epoch in range(3)] == [1.0, 1.0, 1.0]


@pytest.mark.slow
def test_loss_added_in_fit_follows_the_schedule_exactly():
    """Each epoch's loss is the epoch's factor times the sum of the layers' terms: a model with every layer that has
    a KL term, frozen (learning rate 0) and with a data loss of 0, so the terms stay constant."""
    layers = {name: factory() for name, (factory, _) in KL_LAYERS.items()}
    inputs = {shape: keras.Input(shape) for _, shape in KL_LAYERS.values()}
    outputs = [keras.layers.Flatten()(layers[name](inputs[shape])) for name, (_, shape) in KL_LAYERS.items()]
    model = keras.Model(list(inputs.values()), keras.layers.Concatenate()(outputs))
    model.compile(keras.optimizers.SGD(0.0), loss=_zero_data_loss)
    x = [_data(shape)[0] for shape in inputs]
    y = np.zeros((32, 1), "float32")
    model([value[:1] for value in x])
    terms = [_added_term(layers[name], x[list(inputs).index(shape)][:8]) for name, (_, shape) in KL_LAYERS.items()]
    assert min(abs(term) for term in terms) > 1e-3
    configs = [layer.get_config() for layer in layers.values()]
    history = model.fit(x, y, batch_size=8, epochs=6, verbose=0, callbacks=[KLWarmup(4, start=0.5)]).history
    expected = [0.5, 0.625, 0.75, 0.875, 1.0, 1.0]
    assert history["kl_factor"] == expected
    np.testing.assert_allclose(history["loss"], [factor * sum(terms) for factor in expected], rtol=2e-6)
    assert kl_layers(model) == list(layers.values())
    assert [float(utils.to_numpy(layer.kl_factor)) for layer in layers.values()] == [1.0] * len(layers)
    # The warm-up leaves every layer's config (its kl_weight or regularisers) as the user gave it.
    assert [layer.get_config() for layer in layers.values()] == configs


@pytest.mark.slow
def test_every_layer_of_a_model_gets_the_factor_and_the_others_are_left_alone():
    layers = [kerasdrop.SparseVariationalDense(6, kl_weight=0.01, seed=1), kerasdrop.Dropout(0.5, seed=2)]
    layers += [kerasdrop.StructuredBayesianPruning(kl_weight=0.1, seed=3), keras.layers.Dense(2)]
    model = _frozen_model(layers, (5,))
    x, y = _data((5,))
    model(x[:1])
    term = _added_term(layers[0], x) + _added_term(layers[2], x)
    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[KLWarmup(2)]).history
    np.testing.assert_allclose(history["loss"], [0.0, 0.5 * term, term], rtol=2e-6)
    assert kl_layers(model) == [layers[0], layers[2]]
    assert [w.name for w in layers[1].weights + layers[3].weights] == ["kernel", "bias"]


@pytest.mark.slow
@pytest.mark.skipif(backend.BACKEND == "torch", reason="PyTorch runs `fit` eagerly: it has no trace to repeat")
def test_changing_the_factor_needs_no_retrace():
    """The Python code of a model's layers runs once per trace: as often with the warm-up as without it."""
    traces = []

    class CountTraces(keras.layers.Layer):
        def call(self, inputs):
            traces.append(1)
            return inputs

    counts = []
    for callbacks in ([], [KLWarmup(3)]):
        model = _frozen_model([CountTraces(), kerasdrop.SparseVariationalDense(3, kl_weight=0.01, seed=1)], (5,))
        x, y = _data((5,))
        model(x[:1])
        traces.clear()
        history = model.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=callbacks).history
        counts.append(len(traces))
    assert counts[0] == counts[1] >= 1
    assert history["kl_factor"] == [0.0, 1 / 3, 2 / 3, 1.0, 1.0]


# ---------------------------------------------------------------- saving


@pytest.mark.slow
def test_factor_is_saved_with_the_model_and_the_schedule_resumes(tmp_path):
    layer = kerasdrop.SparseVariationalDense(3, kl_weight=0.01, seed=1)
    model = _frozen_model([layer, kerasdrop.StructuredBayesianPruning(kl_weight=0.1, seed=2)], (5,))
    x, y = _data((5,))
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[KLWarmup(4)])
    model.save(tmp_path / "warming.keras")
    loaded = keras.saving.load_model(tmp_path / "warming.keras", compile=False)
    assert [float(utils.to_numpy(each.kl_factor)) for each in kl_layers(loaded)] == [0.5, 0.5]
    assert loaded.layers[0].get_config()["kl_weight"] == 0.01
    loaded.compile(keras.optimizers.SGD(0.0), loss=_zero_data_loss)
    history = loaded.fit(x, y, batch_size=8, epochs=5, initial_epoch=3, verbose=0, callbacks=[KLWarmup(4)]).history
    assert history["kl_factor"] == [0.75, 1.0]
    assert set_kl_factor(loaded, 0.25) == 2
    assert [float(utils.to_numpy(each.kl_factor)) for each in kl_layers(loaded)] == [0.25, 0.25]


@pytest.mark.parametrize("name", list(KL_LAYERS))
def test_weights_saved_before_layers_had_a_factor_load_with_factor_one(name):
    """Files and weight lists of earlier versions lack `kl_factor`: they load, and the factor is 1 (or kept)."""
    factory, input_shape = KL_LAYERS[name]
    source, target = factory(), factory()
    for layer in (source, target):
        layer.build((None, *input_shape))
    rng = np.random.default_rng(3)
    for weight in source.trainable_weights:
        weight.assign(rng.normal(size=weight.shape, scale=0.3))
    store, loaded = {}, {}
    source.save_own_variables(store)
    store = {key: utils.to_numpy(value) for key, value in store.items()}
    factor_key = str(len(store) - 1)
    assert store.pop(factor_key).shape == ()
    target.kl_factor.assign(0.25)
    target.load_own_variables(store)
    target.save_own_variables(loaded)
    assert float(utils.to_numpy(loaded.pop(factor_key))) == 1.0
    assert sorted(loaded) == sorted(store)
    for key, value in store.items():
        np.testing.assert_array_equal(utils.to_numpy(loaded[key]), value)
    target.kl_factor.assign(0.25)
    earlier = [
        value for w, value in zip(source.weights, source.get_weights(), strict=True) if w is not source.kl_factor
    ]
    target.set_weights(earlier)
    for mine, theirs in zip(target.weights, source.weights, strict=True):
        if theirs is not source.kl_factor:
            np.testing.assert_array_equal(utils.to_numpy(mine), utils.to_numpy(theirs))
    assert float(utils.to_numpy(target.kl_factor)) == 0.25


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": -2}, ValueError, "epochs"),
        ({"epochs": 2.5}, (TypeError, ValueError), "epochs"),
        ({"epochs": 2, "start": -0.1}, ValueError, "start"),
        ({"epochs": 2, "start": 1.5}, ValueError, "start"),
        ({"epochs": 2, "start": math.nan}, ValueError, "start"),
    ],
)
def test_bad_arguments_are_refused_with_their_name(kwargs, error, message):
    with pytest.raises(error, match=message):
        KLWarmup(**kwargs)


def test_a_model_without_kl_terms_is_refused():
    model = _frozen_model([kerasdrop.Dropout(0.5), keras.layers.Dense(2)], (5,))
    x, y = _data((5,))
    with pytest.raises(ValueError, match="no layer with a KL term in model 'sequential"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[KLWarmup(2)])
    with pytest.raises(ValueError, match="factor"):
        set_kl_factor(model, 1.5)


# ---------------------------------------------------------------- training from scratch


def _from_scratch_accuracy(data, callbacks):
    """Test accuracy of a sparse-variational MLP 64-300-100-10 trained 20 epochs from random weights, KL 1/N."""
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(0)
    kl_weight = 1 / len(x_train)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            kerasdrop.SparseVariationalDense(300, activation="relu", kl_weight=kl_weight, seed=0),
            kerasdrop.SparseVariationalDense(100, activation="relu", kl_weight=kl_weight, seed=1),
            kerasdrop.SparseVariationalDense(10, activation="softmax", kl_weight=kl_weight, seed=2),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, batch_size=64, epochs=20, verbose=0, callbacks=callbacks)
    return float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test)), len(y_test)


@pytest.mark.slow
def test_warm_up_saves_a_from_scratch_model_that_collapses_without_it():
    """With the ELBO's weight from the first step the KL term prunes the weights before they learn (the model
    collapses towards chance); warmed up over the first half, the same training classifies the digits."""
    from kerasdrop.datasets import load_digits

    data = load_digits("flat")
    collapsed, n = _from_scratch_accuracy(data, [])
    warmed, _ = _from_scratch_accuracy(data, [KLWarmup(10)])
    assert collapsed < 0.5, "without a collapse this test could not tell the warm-up's effect"
    # Ten standard errors of an accuracy measured on n test images, at its widest (p = 1/2).
    assert warmed > collapsed + 10 * math.sqrt(0.25 / n)
