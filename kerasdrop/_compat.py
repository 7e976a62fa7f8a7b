"""The few places where kerasdrop relies on something other than the public Keras 3 API.

Every private Keras name that kerasdrop reads (a ``keras.src`` import, an underscore attribute or method of a Keras
object, a module path of Keras's) is read here, in a small function named for what it gives; the rest of the
package calls these functions. ``tests/test_compat.py`` tests each of them against the installed Keras, and its
failure messages name the private API that changed. One private method is overridden instead of read:
`kerasdrop.sklearn` gives Keras's scikit-learn wrappers its own ``_get_model`` (for ``warm_start``), and
``tests/test_compat.py`` checks that their ``fit`` still gets its model from it. The test suite has run on Keras
3.15.1 (with TensorFlow 2.21, JAX and PyTorch); earlier notes here named Keras 3.10 - 3.15 with TensorFlow 2.16 -
2.21 as checked.
"""

import inspect

import keras

# The package that defines every layer class of ``keras.layers`` (``keras.layers.Dropout.__module__`` is
# ``keras.src.layers.regularization.dropout``), and its sub-package of preprocessing and augmentation layers.
KERAS_LAYERS_PACKAGE = "keras.src.layers."
KERAS_PREPROCESSING_PACKAGE = "keras.src.layers.preprocessing"


def flatten_layers(layer):
    """``layer`` and every layer nested in it (sublayers, wrapped layers, RNN cells, nested models), once each.

    Keras has no public recursive walk; ``Layer._flatten_layers`` is the one Keras itself uses for tracking.
    """
    return list(layer._flatten_layers(include_self=True, recursive=True))


def replica_id():
    """The index of the current replica under a ``tf.distribute`` strategy, or the Python int 0 elsewhere.

    Used to give each replica of a ``MirroredStrategy`` its own masks: Keras's ``SeedGenerator`` state is one
    mirrored variable, so without it every replica draws the same mask (as Keras's own ``Dropout`` does).
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    import tensorflow as tf

    if not tf.distribute.has_strategy():
        return 0
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: no single replica
        return 0
    return context.replica_id_in_sync_group


def reset_compiled_functions(model):
    """Forget a model's cached train/test/predict functions so that the next call traces them again."""
    for attribute in ("train_function", "test_function", "predict_function"):
        if getattr(model, attribute, None) is not None:
            setattr(model, attribute, None)


def rnn_loop(step_function, inputs, initial_states, **kwargs):
    """The backend's time loop, the one ``keras.layers.RNN`` runs (masking, ``go_backwards``, ``unroll``).

    Keras 3 exports no public handle on it (``keras.src.backend.rnn``); the recurrent layers use it so that a whole
    sequence can share work prepared once before the loop (weights in gate blocks, per-sequence masks).
    """
    from keras.src import backend as src_backend

    return src_backend.rnn(step_function, inputs, initial_states, **kwargs)


def rnn_layer_loop(layer, step_function, inputs, initial_states, mask, input_length):
    """`rnn_loop` with the loop arguments of the RNN ``layer`` (``go_backwards``, ``unroll``, ``zero_output_for_mask``,
    ``return_sequences``): what ``keras.layers.RNN.inner_loop`` runs."""
    return rnn_loop(
        step_function,
        inputs,
        initial_states,
        go_backwards=layer.go_backwards,
        mask=mask,
        unroll=layer.unroll,
        input_length=input_length,
        zero_output_for_mask=layer.zero_output_for_mask,
        return_all_outputs=layer.return_sequences,
    )


def trackable_children(layer, owner, save_type, **kwargs):
    """The TensorFlow trackable children of ``layer`` (what its classes after ``owner`` in its MRO give, Keras's
    ``TFLayer._trackable_children``), plus the layer's seed-generator states for ``tf.saved_model.save``.

    ``owner`` is the class whose ``_trackable_children`` override calls this (``StochasticLayer``). A
    ``keras.random.SeedGenerator`` is no TensorFlow trackable, so its state variable is reachable only through
    Keras's own variable lists (``Layer._seed_generators``), which ``model.export`` reads but ``tf.saved_model.save``
    does not: a traced call that draws noise then captures an "untracked resource" and the save fails (Keras's own
    Dropout in ``mc`` use and its LSTM with dropout fail the same way). TensorFlow backend only.
    """
    children = super(owner, layer)._trackable_children(save_type, **kwargs)
    if save_type != "savedmodel":
        return children
    children = dict(children)
    for index, generator in enumerate(layer._seed_generators):
        children.setdefault(f"seed_generator_state_{index}", generator.state)
    return children


def own_variables(layer):
    """The variables that ``layer`` itself holds, trainable first, without its sublayers' (and without its seed
    generators' states): the list, in its order, that Keras's ``Layer.save_own_variables`` stores as ``"0"``,
    ``"1"``, ... and ``Layer.load_own_variables`` reads back (``Layer._trainable_variables +
    Layer._non_trainable_variables``)."""
    return list(layer._trainable_variables) + list(layer._non_trainable_variables)


def keep_only_seed_generator(layer, generator):
    """Stop tracking every seed generator of ``layer`` except ``generator``.

    A kerasdrop cell built on ``keras.layers.LSTMCell``/``GRUCell`` replaces the generator that the Keras cell makes
    in its ``__init__``; without this the orphan's state would still be listed in ``layer.variables``.
    """
    layer._seed_generators[:] = [item for item in layer._seed_generators if item is generator]


# --- Functional graphs, run node by node by kerasdrop.MCDropout (checked against Keras 3.15.1) ----------------------


def functional_graph(model):
    """``(inputs, outputs, nodes)`` of a functional or Sequential model, or None for any other model.

    ``nodes`` lists the graph's nodes in execution order (what ``Function._run_through_graph`` iterates), each with
    ``node.operation``, ``node.input_tensors`` and ``node.outputs``. Keras has no public handle on them: this reads
    ``Sequential._functional``, ``Function._nodes_by_depth`` and ``Node.is_input``.
    """
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if not isinstance(graph, keras.Function):
        return None
    nodes = []
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        nodes.extend(node for node in graph._nodes_by_depth[depth] if node.operation and not node.is_input)
    return list(graph.inputs), list(graph.outputs), nodes


def output_structure(model):
    """The structure of a functional or Sequential model's outputs (a tensor, a list or a dict of them), or None.

    ``model.output`` raises for a Sequential model; the graph's ``Function._outputs_struct`` is what both return.
    """
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if not isinstance(graph, keras.Function):
        return None
    return graph._outputs_struct


def run_node(node, tensors, call):
    """Runs one graph node on the values in ``tensors`` (a dict ``id(KerasTensor) -> value``) and stores its outputs.

    ``call(operation, args, kwargs)`` does the call, so that the caller decides on the `training` argument.
    """
    args, kwargs = node.arguments.fill_in(tensors)
    outputs = call(node.operation, args, kwargs)
    for symbolic, value in zip(node.outputs, keras.tree.flatten(outputs), strict=True):
        tensors[id(symbolic)] = value


def takes_training(operation):
    """Whether a functional model passes the `training` call-context argument to ``operation`` when it runs the node.

    ``Functional`` passes it to a layer whose ``Layer._call_context_args`` holds ``"training"`` (every layer, in Keras
    3.15), never to a plain operation (a ``keras.ops`` node). A layer without that attribute gets it where its
    ``call`` takes it, as ``Functional`` passed it before the attribute existed (``Layer._call_has_training_arg``):
    Keras's noise layers then still see ``training=True`` when they sample.
    """
    if not isinstance(operation, keras.layers.Layer):
        return False
    context_args = getattr(operation, "_call_context_args", None)
    if context_args is None:
        return call_takes_training(operation)
    return "training" in context_args


def call_takes_training(layer):
    """Whether the ``call`` of ``layer`` itself has a `training` argument (Functional passes it to every layer)."""
    return "training" in inspect.signature(layer.call).parameters


def keras_mask(tensor):
    """The Keras mask attached to a tensor or a symbolic ``KerasTensor`` (``backend.get_keras_mask``), or None."""
    from keras.src import backend as src_backend

    return src_backend.get_keras_mask(tensor)


def global_seed_generator():
    """The ``SeedGenerator`` that Keras's random ops draw from when given ``seed=None`` (created if need be).

    Keras 3 has no public accessor: ``keras.src.random.seed_generator.global_seed_generator`` is what its
    ``draw_seed`` calls (checked against Keras 3.10 - 3.15).
    """
    from keras.src.random.seed_generator import global_seed_generator as keras_global_seed_generator

    return keras_global_seed_generator()


def set_keras_mask(tensor, mask):
    """Attaches a Keras mask to a tensor, as ``Layer.__call__`` does (``backend.set_keras_mask``; Keras 3 has no public
    setter)."""
    from keras.src import backend as src_backend

    src_backend.set_keras_mask(tensor, mask)


def sublayers(layer):
    """The layers directly inside ``layer`` (``Layer._layers``, what `flatten_layers` walks)."""
    return list(layer._layers)


def seed_generators(layer):
    """The ``keras.random.SeedGenerator``s that ``layer`` itself tracks (``Layer._seed_generators``)."""
    return list(layer._seed_generators)


def producing_operation(tensor):
    """The operation (layer) whose output the symbolic ``tensor`` is (``KerasTensor._keras_history``)."""
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history.operation


def output_index(tensor):
    """The position of the symbolic ``tensor`` among the flat outputs of the operation that produced it
    (``KerasTensor._keras_history.tensor_index``): ``graph_outputs[output_index(tensor)]`` is the tensor inside a
    nested model that ``tensor`` stands for outside it."""
    return tensor._keras_history.tensor_index


def build_at_init(layer):
    """Marks ``layer`` built when it has no ``build`` of its own, as Keras's stateless layers are once created.

    ``Layer._build_at_init`` is what Keras's own `Dropout` calls; Keras versions without it get the same effect.
    """
    if hasattr(layer, "_build_at_init"):
        layer._build_at_init()
    elif getattr(type(layer).build, "_is_default", False):
        layer.built = True


def is_keras_layer(layer):
    """Whether the class of ``layer`` is one of Keras's own layers, defined in ``keras.src.layers`` as every layer of
    ``keras.layers`` is (the wrappers of other frameworks' models, ``TFSMLayer``, ``JaxLayer``, ``TorchModuleWrapper``,
    are defined elsewhere)."""
    return type(layer).__module__.startswith(KERAS_LAYERS_PACKAGE)


def is_keras_preprocessing_layer(layer):
    """Whether the class of ``layer`` is one of Keras's preprocessing and augmentation layers
    (``keras.layers.RandomFlip``, ``Rescaling``, ...), defined in ``keras.src.layers.preprocessing``."""
    return type(layer).__module__.startswith(KERAS_PREPROCESSING_PACKAGE)
