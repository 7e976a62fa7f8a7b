"""The random draws of the kerasdrop layers: `keras.random`, or TensorFlow's stateful random ops while exporting.

Every draw of a kerasdrop layer goes through `uniform`, `normal` or `randint`. Normally they are exactly
``keras.random.uniform``, ``keras.random.normal`` and ``keras.random.randint`` (same arguments, same seeds, same
numbers). While `kerasdrop._context.stateful_tensorflow_draws` is open in a thread, they draw in that thread with
TensorFlow's stateful ``RandomUniform`` and ``RandomStandardNormal`` ops instead, which TensorFlow Lite has builtins
for (``RANDOM_UNIFORM``, ``RANDOM_STANDARD_NORMAL``); `kerasdrop.export_tflite` opens it while it traces the model. In
that mode the ``seed`` argument is ignored and its generator is not advanced: the ops carry the seed attributes 0
and 0, so TensorFlow (and TensorFlow Lite, in each interpreter) seeds them from the system, whatever global seed
``tf.random.set_seed`` or ``keras.utils.set_random_seed`` set.

The context is thread-local (`kerasdrop._context`): other threads keep drawing with ``keras.random`` meanwhile.

A draw whose shape has a batch axis names it (``batch_axis``). While `kerasdrop.MCDropout` samples joint draws
(`kerasdrop._context.shared_copies`), such a draw makes one value per sample along that axis and repeats
it over the rows of the sample, so that every input of a sample sees the same noise (see `shared_over_batch`).
"""

import keras
from keras import ops

from kerasdrop import _context


def _shape_tensor(tf, shape):
    """``shape`` (ints and scalar tensors, or a 1-D tensor) as a 1-D int32 tensor."""
    if tf.is_tensor(shape):
        return tf.cast(shape, tf.int32)
    dims = [tf.cast(dim, tf.int32) if tf.is_tensor(dim) else int(dim) for dim in shape]
    if not dims:
        return tf.zeros((0,), tf.int32)
    if all(isinstance(dim, int) for dim in dims):
        return tf.constant(dims, tf.int32)
    return tf.stack([tf.constant(dim, tf.int32) if isinstance(dim, int) else dim for dim in dims])


def _float_dtype(dtype):
    return keras.backend.standardize_dtype(keras.config.floatx() if dtype is None else dtype)


def _stateful_uniform(shape, minval, maxval, dtype):
    """Uniform on ``[minval, maxval)`` from one float32 ``RandomUniform`` op (seeds 0, 0), cast to ``dtype``."""
    import tensorflow as tf

    unit = tf.raw_ops.RandomUniform(shape=_shape_tensor(tf, shape), dtype=tf.float32, seed=0, seed2=0)
    if minval != 0.0 or maxval != 1.0:
        unit = unit * (maxval - minval) + minval
    return tf.cast(unit, dtype)


def shared_over_batch(shape, batch_axis, draw):
    """``draw(shape)``, except while MCDropout samples joint draws: then the noise of the ``copies`` samples tiled
    along ``batch_axis`` (sample-major) is drawn once per sample and repeated over that sample's rows.

    With ``batch_axis=None`` (the shape has no batch axis: a kernel mask, a rate) it is always ``draw(shape)``.
    ``shape``'s entries may be ints or scalar tensors.
    """
    copies = _context.shared_copies()
    if copies is None or batch_axis is None:
        return draw(shape)
    shape = list(shape)
    before, rows, after = shape[:batch_axis], shape[batch_axis], shape[batch_axis + 1 :]
    noise = draw((*before, copies, 1, *after))
    noise = ops.broadcast_to(noise, (*before, copies, rows // copies, *after))
    return ops.reshape(noise, (*before, rows, *after))


def uniform(shape, seed, dtype="float32", minval=0.0, maxval=1.0, batch_axis=None):
    """Uniform floats on ``[minval, maxval)`` of ``shape``; ``seed`` is an int or a ``keras.random.SeedGenerator``.

    ``dtype=None`` means ``keras.config.floatx()``, as in Keras. In the stateful mode the draw is made in float32 and
    cast to ``dtype``. ``batch_axis``: the axis of ``shape`` that runs over the batch, if any (see
    `shared_over_batch`).
    """
    if batch_axis is not None:
        return shared_over_batch(shape, batch_axis, lambda part: uniform(part, seed, dtype, minval, maxval))
    if _context.stateful_draws():
        return _stateful_uniform(shape, minval, maxval, _float_dtype(dtype))
    return keras.random.uniform(shape, minval=minval, maxval=maxval, dtype=dtype, seed=seed)


def normal(shape, seed, mean=0.0, stddev=1.0, dtype="float32", batch_axis=None):
    """Normal floats ``N(mean, stddev^2)`` of ``shape``; ``seed`` is an int or a ``keras.random.SeedGenerator``.

    ``dtype=None`` means ``keras.config.floatx()``, as in Keras. In the stateful mode the draw is made in float32 and
    cast to ``dtype``. ``batch_axis``: the axis of ``shape`` that runs over the batch, if any (see
    `shared_over_batch`).
    """
    if batch_axis is not None:
        return shared_over_batch(shape, batch_axis, lambda part: normal(part, seed, mean, stddev, dtype))
    if _context.stateful_draws():
        import tensorflow as tf

        unit = tf.raw_ops.RandomStandardNormal(shape=_shape_tensor(tf, shape), dtype=tf.float32, seed=0, seed2=0)
        if stddev != 1.0:
            unit = unit * stddev
        if mean != 0.0:
            unit = unit + mean
        return tf.cast(unit, _float_dtype(dtype))
    return keras.random.normal(shape, mean=mean, stddev=stddev, dtype=dtype, seed=seed)


def randint(shape, low, high, seed, dtype="int32", batch_axis=None):
    """Integers uniform on ``[low, high)`` of ``shape``; ``seed`` is an int or a ``keras.random.SeedGenerator``.

    In the stateful mode: ``floor(u * (high - low)) + low`` with ``u`` a float32 uniform (2**23 equally likely
    values in [0, 1)), clipped below ``high``. Each integer then has probability ``floor(2**23 / n) / 2**23`` or
    ``ceil(2**23 / n) / 2**23`` for ``n = high - low``, a relative error below ``n / 2**23`` (0.6% for the 50,176
    pixels of a 224 x 224 image, where `kerasdrop.Cutout` draws its centres); exact for powers of two up to 2**23.
    ``low`` and ``high`` may be ints or scalar int tensors. ``batch_axis``: the axis of ``shape`` that runs over the
    batch, if any (see `shared_over_batch`).
    """
    if batch_axis is not None:
        return shared_over_batch(shape, batch_axis, lambda part: randint(part, low, high, seed, dtype))
    if _context.stateful_draws():
        import tensorflow as tf

        low = tf.cast(low, tf.float32)
        high = tf.cast(high, tf.float32)
        unit = _stateful_uniform(shape, 0.0, 1.0, tf.float32)
        values = tf.minimum(tf.floor(unit * (high - low)) + low, high - 1.0)
        return tf.cast(values, dtype)
    return keras.random.randint(shape, low, high, dtype=dtype, seed=seed)
