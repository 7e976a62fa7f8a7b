"""`kerasdrop.MCDropout.export`: a TensorFlow SavedModel that serves Monte Carlo moments with TensorFlow alone.

The SavedModel holds the model's variables, the sampler's seed state and one graph: the deterministic prefix once,
then the stochastic part on tiled inputs, chunk after chunk, inside a ``tf.while_loop``, the moments merged as they
come (`kerasdrop.mc.moments.merge_moments`). Nothing in it refers to a Python class, so it loads without kerasdrop.
"""

import os

import keras
from keras import ops

from kerasdrop._validation import ArgumentTypeError, _message
from kerasdrop.mc import inputs as _inputs
from kerasdrop.mc import moments
from kerasdrop.mc import outputs as _outputs
from kerasdrop.mc.plan import rows_within


class _SeedHolder(keras.layers.Layer):
    """A layer that only holds the sampler's seed generator, so that the SavedModel tracks its state."""

    def __init__(self, generator, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = generator
        self.built = True


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(_message("path", "a folder path (str or os.PathLike)", path))
    path = os.fspath(path)
    if not path or (os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path))):
        raise ValueError(_message("path", "a folder that does not exist yet, or an empty one", path))
    return path


def input_signature_of(model, plan, input_signature):
    """The checked ``input_signature`` of `MCDropout.export`, or for a graph model without one its inputs'."""
    import tensorflow as tf

    if input_signature is None:
        if not plan.functional:
            raise ValueError(
                _message("input_signature", "a tf.TensorSpec (or a list of them) for a model without a graph", None)
                + f" (model {model.name!r} is subclassed: its inputs are not known)"
            )
        return _inputs.serving_signature(model, plan.inputs)
    flat = keras.tree.flatten(input_signature)
    if not flat or not all(isinstance(spec, tf.TensorSpec) for spec in flat):
        raise ArgumentTypeError(_message("input_signature", "None, a tf.TensorSpec or a list of them", input_signature))
    if plan.functional:
        expected = [(None, *tuple(t.shape)[1:]) for t in plan.inputs]
        shapes = [tuple(spec.shape) for spec in flat]
        compatible = len(shapes) == len(expected) and all(
            len(shape) == len(want) and all(w is None or s in (None, w) for s, w in zip(shape, want, strict=True))
            for shape, want in zip(shapes, expected, strict=True)
        )
        if not compatible:
            raise ValueError(
                _message("input_signature", f"tf.TensorSpec of the model's input shapes {expected}", input_signature)
            )
    return input_signature


def _statistics(kind, count, mean, m2, second_sum, finite):
    """The served tensors of one output, float32, NaN in the rows that had a non-finite sample."""
    values = {"mean": mean, "variance": m2 / count}
    if kind.output_type == "gaussian":
        values.update(aleatoric_variance=second_sum / count, predictive_variance=(m2 + second_sum) / count)
    elif kind.entropy is not None:
        predictive = moments.entropy(mean, kind.entropy)
        expected = second_sum / count
        values.update(
            predictive_entropy=predictive,
            expected_entropy=expected,
            mutual_information=ops.maximum(predictive - expected, 0.0),
        )
    return {name: ops.cast(moments.mask_rows(value, finite), "float32") for name, value in values.items()}


def _chunk(sampler, frontier, copies, batch):
    """One sampler call of ``copies`` samples: per output `kerasdrop.mc.moments.chunk_moments`."""
    import tensorflow as tf

    flat = sampler.sample_once(frontier, copies, sampler.draw_states(1)[0])

    def by_sample(values):  # rows (copies * batch, ...) -> (copies, batch, ...)
        return tf.reshape(values, tf.concat([[copies, batch], tf.shape(values)[1:]], 0))

    return [
        moments.chunk_moments(by_sample(samples), None if second is None else by_sample(second))
        for samples, second in _outputs.split(flat, sampler.kinds)
    ]


def serving_function(sampler, structure, total, memory_budget_mb):
    """``serve(x)``: the dict of served tensors of ``total`` samples for a batch of inputs (traced into the
    SavedModel); ``structure``: the model's output structure."""
    import tensorflow as tf

    plan = sampler.plan

    def serve(x):
        inputs = keras.tree.flatten(x) if plan.functional else x
        frontier = plan.run_prefix(inputs) if plan.functional and plan.prefix else inputs
        batch = tf.shape(keras.tree.flatten(frontier)[0])[0]
        rows = rows_within(memory_budget_mb, plan.row_bytes(keras.tree.flatten(frontier)))
        copies = tf.clip_by_value(rows // tf.maximum(batch, 1), 1, total) if plan.tileable else tf.constant(1)
        first = _chunk(sampler, frontier, copies, batch)

        def body(drawn, state):
            step = tf.minimum(copies, total - drawn)
            merged = []
            for (mean, m2, second_sum, finite), chunk in zip(
                state, _chunk(sampler, frontier, step, batch), strict=True
            ):
                counts = tf.cast(drawn, "float64"), tf.cast(step, "float64")
                new_mean, new_m2 = moments.merge_moments(counts[0], mean, m2, counts[1], chunk[0], chunk[1])
                merged.append((new_mean, new_m2, second_sum + chunk[2], finite & chunk[3]))
            return drawn + step, merged

        _, state = tf.while_loop(lambda drawn, state: drawn < total, body, (copies, first))
        served = [_statistics(kind, total, *values) for kind, values in zip(sampler.kinds, state, strict=True)]
        if len(served) == 1:
            return served[0]
        keys = _outputs.output_keys(structure, len(served))
        return {
            f"{key}_{name}": value for key, values in zip(keys, served, strict=True) for name, value in values.items()
        }

    return serve


def example_inputs(signature):
    """One input of zeros per spec of a checked input signature, in its structure."""
    return keras.tree.map_structure(lambda spec: ops.zeros((1, *tuple(spec.shape)[1:]), spec.dtype), signature)


def export(path, sampler, structure, samples, memory_budget_mb, initial_seed_state, signature):
    """Writes the SavedModel of `MCDropout.export` (see there) from its parts: the `Sampler` (its output kinds
    decided), the model's output ``structure``, the number of ``samples``, the memory budget of a call, the seed
    state the first call starts from (None: the sampler's generator as it is) and the checked input signature."""
    path = _check_path(path)
    if initial_seed_state is not None:  # the first call of the SavedModel draws what `predict` draws
        sampler.generator.state.assign(initial_seed_state)
    archive = keras.export.ExportArchive()
    archive.track(_SeedHolder(sampler.generator, name="mc_dropout_seed"))
    archive.add_endpoint("serve", serving_function(sampler, structure, samples, memory_budget_mb), [signature])
    archive.write_out(path, verbose=False)
