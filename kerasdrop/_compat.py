"""The few places where kerasdrop relies on something other than the public Keras 3 API.

Checked against Keras 3.10 - 3.15 with TensorFlow 2.16 - 2.21.
"""

import keras


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
