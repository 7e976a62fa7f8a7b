"""Every private Keras API that `kerasdrop._compat` reads, checked against the installed Keras.

kerasdrop reads a few things that Keras does not export (see `kerasdrop._compat`). A newer Keras may rename or drop
any of them; each test here then fails with a message that names the private API and says what it breaks, instead
of a layer or `MCDropout` going wrong somewhere else, or silently.
"""

import keras
import numpy as np
import pytest

import kerasdrop
from kerasdrop import _compat
from tests import utils
from tests.backend import BACKEND, tensorflow_only

# Keras's noise layers, whose call `MCDropout` runs with `training=True` to sample them.
KERAS_NOISE_LAYERS = [
    keras.layers.Dropout(0.5),
    keras.layers.SpatialDropout1D(0.5),
    keras.layers.GaussianDropout(0.5),
    keras.layers.GaussianNoise(0.5),
    keras.layers.AlphaDropout(0.5),
]


def _functional_model():
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(4, name="hidden")(inputs)
    dropped = keras.layers.Dropout(0.5, name="dropped")(hidden)
    first = keras.layers.Dense(2, activation="softmax", name="first")(dropped)
    second = keras.layers.Dense(1, name="second")(dropped)
    return keras.Model(inputs, [first, second])


# --- The three whose change would go unnoticed: training=True, the cells' masks, Keras's module paths -------------


@pytest.mark.parametrize("layer", KERAS_NOISE_LAYERS, ids=lambda layer: type(layer).__name__)
def test_functional_passes_training_to_keras_noise_layers(layer):
    assert "training" in getattr(layer, "_call_context_args", ()), (
        f"Layer._call_context_args of keras.layers.{type(layer).__name__} does not hold 'training' (Keras "
        f"{keras.__version__}): `_compat.takes_training` reads it to decide, as Keras's Functional does, which nodes "
        "get `training=True` when MCDropout samples them. Check how this Keras's Functional passes `training`."
    )
    assert _compat.takes_training(layer)


def test_takes_training_is_false_for_plain_operations():
    inputs = keras.Input((3,))
    outputs = keras.ops.exp(inputs)
    operation = _compat.producing_operation(outputs)
    assert not isinstance(operation, keras.layers.Layer)
    assert not _compat.takes_training(operation)


def test_keras_rnn_draws_the_cells_masks_before_its_loop_and_resets_them_after():
    """kerasdrop's recurrent cells draw their per-sequence masks in ``get_dropout_mask`` and
    ``get_recurrent_dropout_mask`` and forget them in ``reset_dropout_mask`` and ``reset_recurrent_dropout_mask``
    (Keras's private ``DropoutRNNCell`` protocol): ``keras.layers.RNN`` must call the first two before its time
    loop and the last two after it, on every call."""
    events = []

    class Recording(kerasdrop.layers.VariationalLSTMCell):
        def get_dropout_mask(self, step_input):
            events.append("get_dropout_mask")
            return super().get_dropout_mask(step_input)

        def get_recurrent_dropout_mask(self, step_input):
            events.append("get_recurrent_dropout_mask")
            return super().get_recurrent_dropout_mask(step_input)

        def reset_dropout_mask(self):
            events.append("reset_dropout_mask")
            super().reset_dropout_mask()

        def reset_recurrent_dropout_mask(self):
            events.append("reset_recurrent_dropout_mask")
            super().reset_recurrent_dropout_mask()

        def call(self, inputs, states, training=False, plan=None, noise=None):
            events.append("step")
            return super().call(inputs, states, training=training, plan=plan, noise=noise)

    layer = keras.layers.RNN(Recording(3, dropout=0.5, recurrent_dropout=0.5, seed=1))
    x = np.ones((2, 4, 3), "float32")
    layer(x, training=True)  # builds the layer
    events.clear()
    layer(x, training=True)
    last_step = len(events) - 1 - events[::-1].index("step")
    resets = ["reset_dropout_mask", "reset_recurrent_dropout_mask"]
    assert set(events[: events.index("step")]) == {"get_dropout_mask", "get_recurrent_dropout_mask"}, (
        f"keras.layers.RNN no longer calls cell.get_dropout_mask/get_recurrent_dropout_mask before its loop (Keras "
        f"{keras.__version__}, DropoutRNNCell protocol; calls seen: {events}): kerasdrop's cells would draw their "
        "masks inside the loop, where JAX and a stateless scope drop the seed's update."
    )
    assert sorted(events[-2:]) == resets and not set(resets) & set(events[:last_step]), (
        f"keras.layers.RNN no longer calls cell.reset_dropout_mask/reset_recurrent_dropout_mask after its loop "
        f"(Keras {keras.__version__}, DropoutRNNCell protocol; calls seen: {events}): kerasdrop's cells would keep "
        "the masks of one call for every later call."
    )
    assert layer.cell._input_masks is None and layer.cell._recurrent_mask is None


def test_keras_rnn_resets_cells_inside_stacked_cells():
    cells = [kerasdrop.layers.VariationalLSTMCell(3, dropout=0.5, seed=seed) for seed in (1, 2)]
    layer = keras.layers.RNN(keras.layers.StackedRNNCells(cells))
    layer(np.ones((2, 4, 3), "float32"), training=True)
    assert all(cell._input_masks is None for cell in cells), (
        "keras.layers.RNN no longer resets the masks of the cells inside StackedRNNCells after its loop "
        f"(Keras {keras.__version__}, RNN._maybe_reset_dropout_masks)."
    )


@pytest.mark.parametrize("layer", KERAS_NOISE_LAYERS, ids=lambda layer: type(layer).__name__)
def test_keras_noise_layers_are_defined_under_the_package_checked(layer):
    module = type(layer).__module__
    assert module.startswith(_compat.KERAS_LAYERS_PACKAGE), (
        f"keras.layers.{type(layer).__name__} is defined in {module}, no longer under "
        f"{_compat.KERAS_LAYERS_PACKAGE!r} (Keras {keras.__version__}): `_compat.is_keras_layer` would take Keras's "
        "own layers for a user's, and MCDropout would probe them for noise."
    )
    assert _compat.is_keras_layer(layer)
    assert not _compat.is_keras_preprocessing_layer(layer)


@pytest.mark.parametrize(
    "layer_class",
    [keras.layers.RandomFlip, keras.layers.RandomRotation, keras.layers.RandomContrast, keras.layers.Rescaling],
    ids=lambda cls: cls.__name__,
)
def test_keras_augmentation_layers_are_defined_under_the_preprocessing_package(layer_class):
    layer = layer_class(0.5) if layer_class is not keras.layers.RandomFlip else layer_class()
    module = type(layer).__module__
    assert module.startswith(_compat.KERAS_PREPROCESSING_PACKAGE), (
        f"keras.layers.{layer_class.__name__} is defined in {module}, no longer under "
        f"{_compat.KERAS_PREPROCESSING_PACKAGE!r} (Keras {keras.__version__}): `_compat.is_keras_preprocessing_layer` "
        "would miss Keras's random augmentation, which MCDropout must not take for model noise."
    )
    assert _compat.is_keras_preprocessing_layer(layer)
    assert _compat.is_keras_layer(layer)


def test_kerasdrop_layers_are_not_keras_layers():
    assert not _compat.is_keras_layer(kerasdrop.layers.Dropout(0.5))
    assert not _compat.is_keras_preprocessing_layer(kerasdrop.layers.Dropout(0.5))


# --- Layers' own state: variables, seed generators, build -----------------------------------------------------------


def test_own_variables_are_what_keras_saves_for_a_layer():
    dense = kerasdrop.layers.ConcreteDropout(keras.layers.Dense(2))
    dense.build((None, 3))
    own = _compat.own_variables(dense)
    store = {}
    keras.layers.Layer.save_own_variables(dense, store)
    assert [variable.path for variable in own] == [variable.path for variable in (dense.p_logit, dense.kl_factor)], (
        "Layer._trainable_variables + Layer._non_trainable_variables no longer list a layer's own variables, "
        f"without its sublayers' (Keras {keras.__version__}): KLTerm.load_own_variables reads them."
    )
    assert sorted(store) == [str(index) for index in range(len(own))]
    for index, variable in enumerate(own):
        np.testing.assert_array_equal(utils.to_numpy(store[str(index)]), utils.to_numpy(variable))


def test_seed_generators_of_a_keras_layer():
    layer = keras.layers.Dropout(0.5, seed=1)
    generators = _compat.seed_generators(layer)
    assert generators == [layer.seed_generator], (
        f"Layer._seed_generators no longer lists the seed generators a layer tracks (Keras {keras.__version__}): "
        "MCDropout hands each noise layer its seed states through it."
    )


def test_keep_only_seed_generator_drops_the_keras_cells_own_generator():
    cell = keras.layers.LSTMCell(2, dropout=0.5)
    own, replacement = cell.seed_generator, keras.random.SeedGenerator(3)
    cell.replacement = replacement
    assert _compat.seed_generators(cell) == [own, replacement]
    _compat.keep_only_seed_generator(cell, replacement)
    cell.build((None, 3))
    states = {id(variable) for variable in cell.variables} & {id(own.state), id(replacement.state)}
    assert _compat.seed_generators(cell) == [replacement]
    assert states == {id(replacement.state)}, (
        "A Keras cell still lists the seed generator that `_compat.keep_only_seed_generator` removed from "
        f"Layer._seed_generators (Keras {keras.__version__}): kerasdrop's cells would carry an orphan seed state."
    )


def test_build_at_init_builds_a_layer_without_build():
    class Plain(keras.layers.Layer):
        def call(self, inputs):
            return inputs

    class WithBuild(keras.layers.Layer):
        def build(self, input_shape):
            pass

        def call(self, inputs):
            return inputs

    plain, with_build = Plain(), WithBuild()
    plain.built = with_build.built = False
    _compat.build_at_init(plain)
    _compat.build_at_init(with_build)
    assert hasattr(keras.layers.Layer, "_build_at_init"), (
        f"Layer._build_at_init is gone (Keras {keras.__version__}): `_compat.build_at_init` falls back to "
        "`build._is_default`; check that kerasdrop layers without weights are built once created."
    )
    assert plain.built and not with_build.built


def test_flatten_layers_and_sublayers_walk_nested_layers():
    inner = keras.Sequential([keras.layers.Dense(2), keras.layers.Dropout(0.5)])
    outer = keras.Sequential([keras.Input((3,)), inner, keras.layers.Dense(1)])
    flat = _compat.flatten_layers(outer)
    assert flat[0] is outer and {id(layer) for layer in [inner, *inner.layers, *outer.layers]} <= set(map(id, flat)), (
        f"Layer._flatten_layers no longer walks nested layers (Keras {keras.__version__}): MCDropout finds the "
        "noise layers of a model with it."
    )
    assert len(flat) == len({id(layer) for layer in flat})
    direct = {id(layer) for layer in _compat.sublayers(outer)}
    assert {id(layer) for layer in outer.layers} <= direct and not direct & {id(layer) for layer in inner.layers}, (
        f"Layer._layers no longer lists a layer's direct sublayers, and only those (Keras {keras.__version__})."
    )


def test_flatten_layers_reaches_the_cell_of_an_rnn():
    layer = keras.layers.RNN(kerasdrop.layers.VariationalLSTMCell(2, dropout=0.5))
    assert any(sub is layer.cell for sub in _compat.flatten_layers(layer))


@pytest.mark.slow  # writes and loads a SavedModel
@tensorflow_only("tf.saved_model.save")
def test_trackable_children_add_the_seed_states_for_saved_model(tmp_path):
    import tensorflow as tf
    from keras.src.backend.tensorflow.layer import TFLayer

    assert "_trackable_children" in vars(TFLayer), (
        f"Keras's TensorFlow layer no longer implements _trackable_children (Keras {keras.__version__}): "
        "`_compat.trackable_children` extends it so that tf.saved_model.save tracks kerasdrop's seed states."
    )
    layer = kerasdrop.layers.Dropout(0.5, mc=True)
    module = tf.Module()
    module.layer = layer
    module.call = tf.function(layer.__call__, input_signature=[tf.TensorSpec((None, 64), "float32")])
    tf.saved_model.save(module, str(tmp_path / "saved_model"))  # fails on an untracked seed state
    loaded = tf.saved_model.load(str(tmp_path / "saved_model"))
    x = tf.ones((4, 64))
    assert not np.array_equal(loaded.call(x).numpy(), loaded.call(x).numpy())


# --- Functional graphs, run node by node by MCDropout ---------------------------------------------------------------


def test_functional_graph_runs_node_by_node_like_the_model():
    model = _functional_model()
    graph = _compat.functional_graph(model)
    assert graph is not None, (
        f"Function._nodes_by_depth no longer gives a functional model's nodes (Keras {keras.__version__})."
    )
    inputs, outputs, nodes = graph
    names = [node.operation.name for node in nodes]
    assert names[:2] == ["hidden", "dropped"] and sorted(names[2:]) == ["first", "second"]
    x = np.linspace(-1.0, 1.0, 12, dtype="float32").reshape(4, 3)
    tensors = {id(inputs[0]): keras.ops.convert_to_tensor(x)}
    for node in nodes:
        _compat.run_node(node, tensors, lambda operation, args, kwargs: operation(*args, **kwargs))
    expected = model(x)
    for tensor, value in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(utils.to_numpy(tensors[id(tensor)]), utils.to_numpy(value), rtol=1e-6)


def test_functional_graph_of_a_sequential_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="only")])
    graph = _compat.functional_graph(model)
    assert graph is not None, (
        f"Sequential._functional no longer holds a Sequential model's graph (Keras {keras.__version__})."
    )
    assert [node.operation.name for node in graph[2]] == ["only"]
    assert _compat.functional_graph(keras.layers.Dense(2)) is None


def test_output_structure_of_functional_and_sequential_models():
    inputs = keras.Input((3,))
    model = keras.Model(inputs, {"a": keras.layers.Dense(2)(inputs), "b": keras.layers.Dense(1)(inputs)})
    structure = _compat.output_structure(model)
    assert isinstance(structure, dict) and sorted(structure) == ["a", "b"], (
        f"Function._outputs_struct no longer holds a model's output structure (Keras {keras.__version__})."
    )
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert isinstance(_compat.output_structure(sequential), keras.KerasTensor)


def test_producing_operation_and_output_index():
    model = _functional_model()
    first, second = model.outputs
    assert _compat.producing_operation(second) is model.get_layer("second"), (
        f"KerasTensor._keras_history.operation no longer names the layer of an output (Keras {keras.__version__})."
    )
    assert _compat.producing_operation(np.ones(2)) is None
    outer_inputs = keras.Input((3,))
    outer_outputs = model(outer_inputs)
    assert [_compat.output_index(tensor) for tensor in outer_outputs] == [0, 1], (
        f"KerasTensor._keras_history.tensor_index no longer gives an output's position (Keras {keras.__version__}): "
        "MCDropout reads the activation of a nested model's output through it."
    )
    assert _compat.producing_operation(outer_outputs[1]) is model


def test_keras_mask_is_set_and_read():
    x = keras.ops.ones((2, 3))
    mask = keras.ops.convert_to_tensor([[True, True, False], [True, False, False]])
    assert _compat.keras_mask(x) is None
    _compat.set_keras_mask(x, mask)
    assert _compat.keras_mask(x) is not None, (
        f"keras.src.backend.get_keras_mask/set_keras_mask no longer attach a mask (Keras {keras.__version__})."
    )
    np.testing.assert_array_equal(utils.to_numpy(_compat.keras_mask(x)), utils.to_numpy(mask))
    masked = keras.layers.Masking()(keras.Input((4, 2)))
    assert _compat.keras_mask(masked) is not None


def test_global_seed_generator_is_what_unseeded_draws_advance():
    generator = _compat.global_seed_generator()
    assert isinstance(generator, keras.random.SeedGenerator)
    before = utils.to_numpy(generator.state)
    keras.random.uniform((2,))
    assert not np.array_equal(utils.to_numpy(_compat.global_seed_generator().state), before), (
        "keras.src.random.seed_generator.global_seed_generator is no longer what keras.random draws from with "
        f"seed=None (Keras {keras.__version__}): MCDropout could not give such draws seed states of its own."
    )


# --- Recurrent loops -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("go_backwards", [False, True])
def test_rnn_layer_loop_is_the_loop_of_keras_rnn(go_backwards):
    layer = keras.layers.SimpleRNN(3, return_sequences=True, go_backwards=go_backwards)
    x = np.linspace(-1.0, 1.0, 2 * 5 * 4, dtype="float32").reshape(2, 5, 4)
    expected = layer(x)
    initial = [keras.ops.zeros((2, 3))]

    def step(inputs, states):
        return layer.cell(inputs, states)

    _, outputs, _ = _compat.rnn_layer_loop(layer, step, keras.ops.convert_to_tensor(x), initial, None, 5)
    assert np.allclose(utils.to_numpy(outputs), utils.to_numpy(expected), rtol=1e-5, atol=1e-6), (
        f"keras.src.backend.rnn no longer runs keras.layers.RNN's loop (Keras {keras.__version__})."
    )


# --- Models and replicas ---------------------------------------------------------------------------------------------


def test_reset_compiled_functions_makes_predict_trace_again():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.predict(np.ones((2, 3), "float32"), verbose=0)
    assert model.predict_function is not None, (
        f"Model.predict_function no longer caches the compiled predict step (Keras {keras.__version__})."
    )
    _compat.reset_compiled_functions(model)
    assert model.predict_function is None


def test_replica_id_outside_a_strategy_is_zero():
    assert _compat.replica_id() == 0


@tensorflow_only("tf.distribute")
def test_replica_id_inside_a_mirrored_strategy(strategy):
    import tensorflow as tf

    ids = strategy.run(lambda: tf.convert_to_tensor(_compat.replica_id()))
    assert sorted(int(value) for value in strategy.experimental_local_results(ids)) == [0, 1]


@pytest.mark.skipif(BACKEND == "tensorflow", reason="replica_id is TensorFlow's; this checks the other backends")
def test_replica_id_elsewhere_is_the_int_zero():
    assert _compat.replica_id() == 0 and isinstance(_compat.replica_id(), int)


# --- scikit-learn wrappers -------------------------------------------------------------------------------------------


def test_keras_sklearn_wrappers_fit_the_model_that_get_model_returns():
    """`kerasdrop.sklearn` overrides ``_get_model(X, y)`` of Keras's scikit-learn wrappers (``warm_start`` returns
    the fitted model there): their ``fit`` must still get its model from that method."""
    asked = []

    def build(X, y):
        model = keras.Sequential([keras.Input((X.shape[1],)), keras.layers.Dense(y.shape[1], activation="softmax")])
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
        return model

    class Recording(keras.wrappers.SKLearnClassifier):
        def _get_model(self, X, y):
            asked.append(super()._get_model(X, y))
            return asked[-1]

    fitted = Recording(build, fit_kwargs={"epochs": 0, "verbose": 0}).fit(np.ones((4, 3)), np.array([0, 1, 0, 1]))
    assert asked and fitted.model_ is asked[-1], (
        f"keras.wrappers.SKLearnClassifier.fit no longer gets its model from `_get_model(X, y)` (Keras "
        f"{keras.__version__}): kerasdrop.sklearn's warm_start overrides that method. Check how this Keras's "
        "wrappers build the model they fit."
    )
