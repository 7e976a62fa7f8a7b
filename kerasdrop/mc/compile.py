"""Every backend branch of the Monte Carlo engine: how the sampler is compiled and spread over replicas or devices
on TensorFlow, JAX and PyTorch, and what each backend's random generators need.

- TensorFlow: the prefix and the sampler are ``tf.function``s traced once, whatever the batch size and the number
  of copies. With a ``tf.distribute`` strategy of ``R`` replicas each replica samples with seed states of its own
  and the results are gathered along the first axis, replica after replica: ``R * copies`` samples a call.
- JAX: both are ``jax.jit`` computations. The model's variables are arguments (read in a ``keras.StatelessScope``),
  so a model trained further is sampled with its new weights and no weight is baked into the program; MCDropout's
  seed state goes in and its next value comes out, assigned after the call. The number of copies is static: one
  trace per batch shape and number of copies. On CPU the copies of a call run in steps of a ``jax.lax.scan``
  (`_cpu_steps`). With a ``keras.distribution.DataParallel`` of ``R`` devices (models whose noise is drawn per
  row), each call tiles ``R * copies`` copies laid out along the batch axis of its mesh, device after device; the
  draws over that global tensor give every device masks of its own.
- PyTorch: eager, without autograd (``torch.no_grad``): see docs/design.md for what ``torch.compile`` gave. Its
  calls take turns (`runs_eagerly`), and Keras's dropout without a seed draws from torch's global generator, which
  each pass seeds from MCDropout's generator (`seeded_global_generators`).
"""

import contextlib
import math
import threading
from typing import NamedTuple

import keras
from keras import ops

from kerasdrop import _compat
from kerasdrop._validation import ArgumentTypeError, _message

# The size of the tensors of one step of a JAX sampler on CPU (see `_cpu_steps`).
_CPU_STEP_BYTES = 16 * 2**20

# The largest memory budget of one call of a PyTorch sampler on CPU (see `call_budget_mb`).
_TORCH_CPU_CALL_MB = 32


def _backend():
    return keras.backend.backend()


# ---------------------------------------------------------------- strategies and devices


def check_strategy(strategy):
    """What to sample across, checked: a ``tf.distribute`` strategy on TensorFlow (None: the current one), a
    ``keras.distribution.DataParallel`` or None on JAX (None: the current distribution when it is one), None on
    PyTorch."""
    backend = _backend()
    if backend == "jax":
        if strategy is None:
            strategy = keras.distribution.distribution()
            return strategy if isinstance(strategy, keras.distribution.DataParallel) else None
        if not isinstance(strategy, keras.distribution.DataParallel):
            raise ArgumentTypeError(
                _message("strategy", "None or a keras.distribution.DataParallel with the JAX backend", strategy)
            )
        return strategy
    if backend != "tensorflow":
        if strategy is not None:
            raise ValueError(
                _message("strategy", f"None with the {backend} backend (it has no data-parallel sampling)", strategy)
            )
        return None
    import tensorflow as tf

    if strategy is None:
        return tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise ArgumentTypeError(_message("strategy", "None or a tf.distribute.Strategy", strategy))
    return strategy


class Spread(NamedTuple):
    """How one sampler call is spread: over the replicas of a ``tf.distribute`` ``strategy`` (TensorFlow), over the
    devices of a ``keras.distribution.DataParallel`` ``distribution`` (JAX), or neither; ``replicas`` of them."""

    strategy: object = None
    distribution: object = None
    replicas: int = 1


def spread(strategy, tileable):
    """The `Spread` of a checked strategy (see `check_strategy`) for a model whose noise is drawn per row when
    ``tileable``: only strategies of several replicas or devices spread anything."""
    backend = _backend()
    if strategy is not None and backend == "tensorflow" and int(strategy.num_replicas_in_sync) > 1:
        return Spread(strategy=strategy, replicas=int(strategy.num_replicas_in_sync))
    if strategy is not None and backend == "jax" and tileable:
        devices = batch_devices(strategy)
        if devices > 1:
            return Spread(distribution=strategy, replicas=devices)
    return Spread()


def batch_devices(distribution):
    """How many devices of a ``keras.distribution.DataParallel`` share its batch axis (its data-parallel replicas)."""
    mesh = distribution.device_mesh
    return int(mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)])


def _shard(distribution):
    """A function that splits a value (batch axis first) along the batch axis of the distribution's mesh."""

    def shard(value):
        return keras.distribution.distribute_tensor(value, distribution.get_data_layout(value.shape))

    return shard


def _replicate(distribution):
    """A function that holds a value whole on every device of the distribution's mesh (a no-op when it already is)."""

    def replicate(value):
        layout = keras.distribution.TensorLayout([None] * len(value.shape), distribution.device_mesh)
        return keras.distribution.distribute_tensor(value, layout)

    return replicate


def call_budget_mb(model, memory_budget_mb):
    """The memory budget of one sampler call: PyTorch on CPU takes at most `_TORCH_CPU_CALL_MB` a call, since its
    large tensors are fresh memory maps from the C allocator, page-faulted in at every allocation, while smaller
    ones reuse freed memory (docs/design.md)."""
    if _backend() == "torch" and _torch_on_cpu(model):
        return min(memory_budget_mb, _TORCH_CPU_CALL_MB)
    return memory_budget_mb


def _torch_on_cpu(model):
    """Whether a PyTorch model's weights (or, without weights, Keras's default device) are on the CPU."""
    import torch

    if model.weights:
        return model.weights[0].value.device.type == "cpu"
    return not torch.cuda.is_available()


# ---------------------------------------------------------------- random generators


def runs_eagerly():
    """Whether the sampler runs the layers eagerly (PyTorch). Its calls then take turns: Keras's RNN cells keep the
    masks of the sequence they run on themselves, and two sequences run side by side would share them."""
    return _backend() == "torch"


def global_seed_rows():
    """How many seed states a pass needs besides those of the seed variables: one on PyTorch, which seeds torch's
    global generator for the pass (`seeded_global_generators`), none elsewhere."""
    return 1 if _backend() == "torch" else 0


def traces_unseeded_draws():
    """Whether a compiled sampler can run a layer that draws from Keras's global seed generator (``seed=None``):
    not on JAX, whose traced programs cannot advance it."""
    return _backend() != "jax"


def draws_from_global_generator(layer):
    """Whether Keras's own ``Dropout`` draws its mask from torch's global generator (PyTorch, without a seed of
    its own): the sampler then draws the mask itself, from the layer's seed state."""
    return _backend() == "torch" and type(layer) is keras.layers.Dropout and layer.rate > 0


def global_generator_states():
    """The states of PyTorch's default generators (CPU, and CUDA once started), or None on other backends.

    Keras's dropout on PyTorch draws from them when its layer has no seed: the dropout of Keras's RNN cells and
    attention layers, and of a Keras ``Dropout`` inside a layer that MCDropout calls whole. A change of state tells
    that such a layer drew noise.
    """
    if _backend() != "torch":
        return None
    import torch

    states = [torch.random.get_rng_state()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states.extend(torch.cuda.get_rng_state_all())
    return states


def global_generators_moved(before):
    """Whether the generators whose `global_generator_states` were ``before`` have drawn since."""
    if before is None:
        return False
    import torch

    return any(not torch.equal(old, new) for old, new in zip(before, global_generator_states(), strict=True))


@contextlib.contextmanager
def seeded_global_generators(state):
    """On PyTorch (``state`` not None): torch's global generators seeded from ``state`` (int ``(2,)``) while open,
    and given back their own states when closed, so that draws from them follow MCDropout's ``seed`` like the others
    and the user's own random stream is left where it was."""
    if state is None:
        yield
        return
    import torch

    devices = range(torch.cuda.device_count()) if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    first, second = (int(value) for value in ops.convert_to_numpy(state))
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(first * 2**31 + second)
        yield


def multiplies_masks(inputs):
    """Whether packed-mask dropout multiplies ``inputs`` by a float mask rather than selecting with a boolean one:
    on PyTorch (eager), when every input is finite, where the product is the selection (a dropped unit is 0, of the
    input's sign). PyTorch's selection with a boolean mask broadcast over the copies is much slower than the product
    (docs/design.md); an inf or NaN input keeps the selection, whose dropped units are exactly 0.

    One pass decides: a float32 sum is finite only if every input is (an overflowing sum of finite inputs, which
    keeps the selection too, is merely slower)."""
    if _backend() != "torch":
        return False
    return math.isfinite(float(ops.sum(ops.cast(inputs, "float32"))))


def require_tensorflow(feature):
    """Raises a clear error unless the backend is TensorFlow, which ``feature`` (e.g. "MCDropout.export writes a
    TensorFlow SavedModel") needs."""
    if _backend() != "tensorflow":
        raise ValueError(
            f"{feature}: it needs the TensorFlow backend, not {_backend()!r}. Save the model "
            "(`model.save('model.keras')`), load it in a process started with KERAS_BACKEND=tensorflow (a .keras file "
            "loads on every backend) and export it there."
        )


# ---------------------------------------------------------------- one call of the sampler, compiled


def sample_call(sampler, frontier, copies, block_seed=None, mapping=()):
    """The body of a compiled sampler call: ``sampler.sample_once`` of ``replicas * copies`` samples, in steps on
    JAX's CPU, on every replica of a ``tf.distribute`` strategy, or laid out over a distribution's devices."""
    sampler.trace_count += 1
    where = sampler.spread
    steps = _cpu_steps(sampler, frontier, copies)
    if steps > 1:
        return _sample_in_steps(sampler, frontier, copies, steps, mapping)
    states = sampler.draw_states(where.replicas if where.strategy is not None else 1, block_seed)
    if where.strategy is None:
        shard = _shard(where.distribution) if where.distribution is not None else None
        return sampler.sample_once(frontier, copies * where.replicas, states[0], mapping, shard)

    def replica_sample(frontier, copies, states):
        return sampler.sample_once(frontier, copies, ops.take(states, _compat.replica_id(), axis=0))

    per_replica = where.strategy.run(replica_sample, args=(frontier, copies, states))
    # Gathered across every replica, on every worker of a multi-worker strategy too, in replica order.
    return [where.strategy.gather(value, axis=0) for value in keras.tree.flatten(per_replica)]


def _cpu_steps(sampler, frontier, copies):
    """In how many steps of equal size a JAX sampler on CPU draws its ``copies`` (1 elsewhere).

    On a CPU, XLA streams each large tensor through memory several times (a random draw over all the rows of a
    call, then the comparison, the selection, ...); a loop (``jax.lax.scan``) over steps of about `_CPU_STEP_BYTES`
    keeps each step's tensors in cache. Measured on the MLP of benchmarks/bench_mc.py: see docs/design.md.
    Accelerators, a mesh of devices, and joint draws (whose steps would depend on the batch size, and the networks
    of a sample may not) take the call in one step.
    """
    if _backend() != "jax" or sampler.spread.distribution is not None or sampler.joint:
        return 1
    if not isinstance(copies, int) or copies < 2:
        return 1
    import jax

    if jax.default_backend() != "cpu":
        return 1
    flat = keras.tree.flatten(frontier)
    rows = max(1, _CPU_STEP_BYTES // sampler.plan.row_bytes(flat))
    largest = max(1, rows // max(1, int(flat[0].shape[0])))
    chunk = max(size for size in range(1, min(largest, copies) + 1) if copies % size == 0)
    return copies // chunk


def _sample_in_steps(sampler, frontier, copies, steps, mapping):
    """``sample_once`` in a ``jax.lax.scan`` of ``steps`` steps of ``copies // steps`` copies, each with seed states
    of its own; the outputs in the layout of one call (sample-major)."""
    import jax

    def step(carry, states):
        return carry, sampler.sample_once(frontier, copies // steps, states, mapping)

    _, outputs = jax.lax.scan(step, 0, sampler.draw_states(steps))
    return [ops.reshape(value, (-1, *value.shape[2:])) for value in outputs]


def compile_sample(sampler):
    """``sample(frontier, copies, block_seed)``: `sample_call` compiled the backend's way, for any int ``copies``
    and a ``block_seed`` (int32 ``(2,)``) under joint draws, None otherwise. A flat list of tensors."""
    backend, joint = _backend(), sampler.joint
    if backend == "jax":
        variables = _variables_of(sampler.model, sampler.seed_variables)
        where = sampler.spread.distribution
        jitted = _jax_jit(
            lambda mapping, frontier, *seed_and_copies: sample_call(
                sampler, frontier, seed_and_copies[-1], seed_and_copies[0] if joint else None, mapping
            ),
            variables,
            # Joint draws read only their block seed: writing back a state they never move would undo the move of
            # a `draw_key` running in another thread.
            carried=[] if joint else [sampler.generator.state],
            static_copies=True,
            place=_replicate(where) if where is not None else None,
        )
        if joint:
            return lambda frontier, copies, block_seed: jitted(frontier, _int32(block_seed), copies)
        return lambda frontier, copies, block_seed: jitted(frontier, copies)
    if backend == "tensorflow":
        symbolic = sampler.plan.frontier if sampler.plan.functional else None
        if joint:
            traced = _tf_function(lambda f, c, b: sample_call(sampler, f, c, b), symbolic, copies=True, block_seed=True)
            return lambda frontier, copies, block_seed: traced(frontier, _int32(copies), _int32(block_seed))
        traced = _tf_function(lambda f, c: sample_call(sampler, f, c), symbolic, copies=True)
        return lambda frontier, copies, block_seed: traced(frontier, _int32(copies))
    eager = _without_gradients(lambda f, c, b: sample_call(sampler, f, c, None if b is None else _int32(b)))
    return lambda frontier, copies, block_seed: eager(frontier, copies, block_seed)


def compile_prefix(sampler):
    """``prefix(inputs)``: the plan's deterministic prefix compiled the backend's way, or None without one."""
    plan = sampler.plan
    if not (plan.functional and plan.prefix):
        return None
    backend = _backend()
    if backend == "jax":
        where = sampler.spread.distribution
        return _jax_jit(
            lambda mapping, inputs: plan.run_prefix(inputs, mapping),
            _variables_of(sampler.model, sampler.seed_variables),
            place=_replicate(where) if where is not None else None,
        )
    if backend == "tensorflow":
        return _tf_function(plan.run_prefix, plan.inputs)
    return _without_gradients(plan.run_prefix)


def _int32(value):
    return ops.convert_to_tensor(value, "int32")


def _variables_of(model, extra):
    """Every variable of ``model`` (weights, statistics, seed states) and of ``extra``, once each."""
    seen, variables = set(), []
    for variable in [*model.variables, *extra]:
        if id(variable) not in seen:
            seen.add(id(variable))
            variables.append(variable)
    return variables


def _tf_function(function, symbolic=None, copies=False, block_seed=False):
    """``function`` as a ``tf.function`` (TensorFlow backend).

    Its first argument is a list of tensors shaped like the KerasTensors ``symbolic`` with any batch size (and, with
    ``copies``, an int32 scalar after it; with ``block_seed``, an int32 ``(2,)`` seed after that), so it is traced
    once; without ``symbolic`` it retraces only when needed.
    """
    import tensorflow as tf

    def traced(*args):  # a function of its own: TensorFlow counts retracing per Python function, not per method
        return function(*args)

    if symbolic is None:
        return tf.function(traced, reduce_retracing=True)
    signature = [[tf.TensorSpec((None, *tuple(tensor.shape)[1:]), tensor.dtype) for tensor in symbolic]]
    if copies:
        signature.append(tf.TensorSpec((), "int32"))
    if block_seed:
        signature.append(tf.TensorSpec((2,), "int32"))
    return tf.function(traced, input_signature=signature)


def _jax_jit(function, variables, carried=(), static_copies=False, place=None):
    """``function(mapping, *args)`` as one ``jax.jit`` computation that takes every Keras variable it reads as an
    argument (JAX backend).

    ``mapping`` is the list of ``(variable, traced value)`` pairs of ``variables``; ``function`` runs in a
    ``keras.StatelessScope`` that holds them and the ``carried`` variables, and must pass ``mapping`` on to any
    stateless scope it opens. After each call the new values of the ``carried`` variables (MCDropout's seed state)
    are assigned; ``variables`` are only read, never written. Values read at call time, not at trace time: nothing
    goes stale, and no weight becomes a constant of the program. With ``static_copies`` the last argument is a
    static int. ``place``: None, or a function that puts each array argument where the program runs (the devices of
    a distribution). Calls of one compiled function take turns, so that two threads never start from the same seed
    state.
    """
    import jax

    variables, carried = list(variables), list(carried)

    def stateless(values, carried_values, *args):
        mapping = list(zip(variables, values, strict=True))
        with keras.StatelessScope(state_mapping=[*mapping, *zip(carried, carried_values, strict=True)]) as scope:
            outputs = function(mapping, *args)
        return outputs, [scope.get_current_value(variable) for variable in carried]

    jitted = {}  # by the number of arguments: the static copies come last
    lock = threading.Lock()

    def call(*args):
        arrays = args[:-1] if static_copies else args
        if len(args) not in jitted:
            jitted[len(args)] = jax.jit(stateless, static_argnums=(len(args) + 1,) if static_copies else ())
        with lock:
            values, carried_values = [v.value for v in variables], [v.value for v in carried]
            if place is not None:
                values, carried_values, arrays = jax.tree_util.tree_map(place, (values, carried_values, arrays))
            outputs, new_values = jitted[len(args)](values, carried_values, *arrays, *args[len(arrays) :])
            for variable, value in zip(carried, new_values, strict=True):
                variable.assign(value)
        return outputs

    return call


def _without_gradients(function):
    """``function`` run under ``torch.no_grad()`` (PyTorch backend): Monte Carlo samples need no autograd graph."""
    import torch

    def call(*args):
        with torch.no_grad():
            return function(*args)

    return call
