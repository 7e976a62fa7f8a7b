"""What a test needs to know about the Keras backend it runs on, and the few calls that differ per backend.

The layer tests are written once for TensorFlow, JAX and PyTorch. Three things have no common Keras API and are
done here, per backend:

- `compiled`: a function of tensors that calls stateful layers, compiled the backend's way: ``tf.function`` on
  TensorFlow (with ``jit_compile`` for XLA), ``jax.jit`` on JAX with every variable it touches (weights and seed
  states) passed in and handed back through a ``keras.StatelessScope``, and eager on PyTorch (its graph compiler,
  ``torch.compile``, needs a C++ toolchain at run time and minutes per layer: not a unit-test tool);
- `gradients`: the gradient of a scalar loss with respect to Keras variables (``tf.GradientTape``, ``jax.grad``
  through a ``StatelessScope``, ``torch.autograd.grad``);
- `tensorflow_only`: a skip marker with the reason, for tests of TensorFlow's own features (``tf.distribute``,
  SavedModel export, TensorFlow Lite, ``tf.data``);
- `slow_on_jax`: the ``slow`` mark on JAX alone, for tests that compile many programs (XLA compiles each anew).

And `float64`, for finite differences: outside TensorFlow, Keras's type promotion turns float64 results into float32
(``keras.ops.matmul`` of two float64 tensors is float32 on PyTorch, ``keras.ops.tanh`` of one is float32 on JAX), and
JAX has no float64 at all unless its x64 mode is on.
"""

import contextlib

import keras
import pytest

BACKEND = keras.backend.backend()

# The compile modes a test of fresh noise goes through: (label, jit_compile); XLA is TensorFlow's extra mode.
COMPILE_MODES = [("compiled", False), ("compiled with XLA", True)] if BACKEND == "tensorflow" else [("compiled", False)]


def tensorflow_only(feature):
    """A ``pytest.mark.skipif`` for a test of ``feature``, which only the TensorFlow backend has."""
    return pytest.mark.skipif(BACKEND != "tensorflow", reason=f"{feature} is TensorFlow's; this run is on {BACKEND}")


# XLA compiles every new program on JAX: a test that makes many (a predictor per model, a loop per layer) takes
# seconds there and a fraction of a second on TensorFlow and PyTorch. Such a test is `slow` on JAX alone: `make test`
# runs it on TensorFlow and PyTorch, `make test-all` on JAX too. A list, for ``pytest.param(..., marks=...)``.
SLOW_ON_JAX = [pytest.mark.slow] if BACKEND == "jax" else []


def slow_on_jax(test):
    """Marks ``test`` `slow` when the run is on JAX (see `SLOW_ON_JAX`)."""
    for mark in SLOW_ON_JAX:
        test = mark(test)
    return test


@contextlib.contextmanager
def float64():
    """A context in which float64 layers, variables and tensors really compute in float64, as on TensorFlow.

    Outside TensorFlow, Keras's dtype promotion maps a float64 result to float32 (its rule for JAX without x64 mode,
    applied to PyTorch too); inside the context it keeps float64, and on JAX the x64 mode is on (for this thread).
    Keras's own arithmetic is unchanged otherwise. A test in float64 runs entirely inside it.
    """
    if BACKEND == "tensorflow":
        yield
        return
    from keras.src.backend.common import dtypes

    narrowed = dtypes.BIT64_TO_BIT32_DTYPE["float64"]
    dtypes.BIT64_TO_BIT32_DTYPE["float64"] = "float64"
    try:
        if BACKEND == "jax":
            import jax

            with jax.enable_x64(True):
                yield
        else:
            yield
    finally:
        dtypes.BIT64_TO_BIT32_DTYPE["float64"] = narrowed


def _variables_of(owners):
    """Every Keras variable of ``owners`` (layers, models or variables), seed generator states included, once."""
    seen, variables = set(), []
    for owner in owners:
        for variable in [owner] if isinstance(owner, keras.Variable) else owner.variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def compiled(function, owners=(), jit_compile=False):
    """``function`` (of tensors, returning tensors) compiled for the current backend.

    ``owners``: the layers (or models, or variables) whose variables ``function`` reads or writes; JAX needs them to
    pass their values in and write their new values back after each call (they must be built already). TensorFlow
    and PyTorch ignore it. ``jit_compile``: XLA on TensorFlow (JAX always compiles with XLA).
    """
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.function(function, jit_compile=jit_compile)
    if BACKEND != "jax":
        return function
    import jax

    variables = _variables_of(owners)

    def stateless(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values, strict=True))) as scope:
            outputs = function(*args)
        return outputs, [scope.get_current_value(variable) for variable in variables]

    jitted = jax.jit(stateless)

    def call(*args):
        outputs, values = jitted([variable.value for variable in variables], *args)
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
        return outputs

    return call


def gradients(loss_function, variables):
    """The gradients of the scalar ``loss_function()`` with respect to the Keras ``variables`` (None where the loss
    does not depend on one). Noise that ``loss_function`` draws comes from the layers' seed states as in an eager call;
    on JAX those states do not move (the loss is traced in a ``StatelessScope``, which also collects the losses that
    layers add, so that ``layer.losses`` inside ``loss_function`` holds those of its calls, as in an eager call)."""
    variables = list(variables)
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_function()
        return tape.gradient(loss, variables)
    if BACKEND == "jax":
        import jax

        def loss_of(values):
            mapping = list(zip(variables, values, strict=True))
            with keras.StatelessScope(state_mapping=mapping, collect_losses=True):
                return loss_function()

        return jax.grad(loss_of)([variable.value for variable in variables])
    import torch

    loss = loss_function()
    return torch.autograd.grad(loss, [variable.value for variable in variables], allow_unused=True)
