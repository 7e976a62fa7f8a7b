"""How `kerasdrop.MCDropout` draws its samples: the seed states of every pass, the compiled sampler of a model, and
how one batch is cut into sub-batches and chunks of samples under the memory budget, accumulated into moments.

A call of the sampler tiles the frontier ``copies`` times along the batch axis (sample-major: row ``s * b + i`` is
sample ``s`` of input ``i``), runs the stochastic part on it (`kerasdrop.mc.plan`), and turns the outputs into
float32 samples and their entropies inside the compiled program (`kerasdrop.mc.outputs.postprocess`). How each
backend compiles it and spreads it over replicas or devices is in `kerasdrop.mc.compile`.
"""

import math
import threading
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from kerasdrop import _context
from kerasdrop.mc import compile
from kerasdrop.mc import joint_draws as _joint_draws
from kerasdrop.mc import outputs as _outputs
from kerasdrop.mc.moments import Moments
from kerasdrop.mc.plan import GraphPlan, rows_within
from kerasdrop.mc.sampling_pass import SamplingPass


class Sampler:
    """The compiled functions of a model: ``prefix(inputs)`` once per input batch and ``sample(frontier, copies)``.

    ``trace_count`` counts the traces of the sampling function (on PyTorch, which does not trace, its calls).

    Args:
        model: the model.
        selection: its `Selection`.
        generator: ``keras.random.SeedGenerator`` of MCDropout: each call draws every seed state from it.
        packed_masks: bool, whether Bernoulli dropout with a dyadic keep uses packed masks.
        strategy: None, or a strategy checked by `compile.check_strategy`: a ``tf.distribute.Strategy``
            (TensorFlow; used when it has several replicas) or a ``keras.distribution.DataParallel`` (JAX; used
            when its mesh has several devices on the batch axis and no sampling layer shares its noise across the
            batch).
        joint: bool, whether every input of a sample sees the same network (MCDropout's ``consistent``).

    ``kinds`` (one `OutputKind` per output) must be set before the first ``sample``: at once for a functional
    model, from `GraphPlan.output_specs` of the first batch for any other.
    """

    def __init__(self, model, selection, generator, packed_masks=True, strategy=None, joint=False):
        self.model = model
        self.selection = selection
        self.generator = generator
        self.packed_masks = packed_masks
        self.joint = joint
        self.kinds = None
        self.plan = GraphPlan(model, selection, packed_masks)
        if joint:
            _joint_draws.check_joint_draws(model, self.plan, selection)
        # Under joint draws the seed states of a call come from the block seed it is given, through this generator.
        self._block_generator = keras.random.SeedGenerator(0)
        # Calls that draw from MCDropout's generator take turns, so that two threads never start from one seed
        # state; so do all calls where the layers run eagerly (see `compile.runs_eagerly`).
        self._lock = threading.Lock()
        self.seed_variables = [v for group in selection.seed_variables(model) for v in group]
        self._global_seed_rows = compile.global_seed_rows()
        self.trace_count = 0
        self.spread = compile.spread(strategy, self.plan.tileable)
        self.replicas = self.spread.replicas
        self._compiled_sample = compile.compile_sample(self)
        self._compiled_prefix = compile.compile_prefix(self)

    def rows_per_call(self, memory_budget_mb, row_bytes):
        """How many rows of ``row_bytes`` one call holds under the budget (see `compile.call_budget_mb`)."""
        return rows_within(compile.call_budget_mb(self.model, memory_budget_mb), row_bytes)

    def prefix(self, inputs):
        """The frontier values for a batch of model inputs (the inputs themselves when there is no prefix)."""
        if self._compiled_prefix is None:
            return inputs
        return self._compiled_prefix(inputs)

    def sample(self, frontier, copies, block_seed=None):
        """The flat list of postprocessed outputs of ``replicas * copies`` samples of the frontier values.

        ``block_seed``: under joint draws, the int32 ``(2,)`` seed that every seed state of this call derives from
        (the same block seed gives the same networks, whatever the inputs); None otherwise (drawn from MCDropout's
        generator). Joint draws read only the block seed given: their compiled calls may run side by side.
        """
        if not self.joint or compile.runs_eagerly():
            with self._lock:
                return self._compiled_sample(frontier, copies, block_seed)
        return self._compiled_sample(frontier, copies, block_seed)

    def draw_key(self):
        """The key of a call under joint draws, int32 ``(2,)``, from MCDropout's generator (taking turns with other
        threads, so that no two calls get the same key)."""
        with self._lock:
            key = keras.random.randint((2,), 0, 2**30, seed=self.generator, dtype="int32")
            return ops.convert_to_numpy(key).astype("int32")

    def draw_states(self, count, block_seed=None):
        """``count`` sets of seed states, ``(count, seed states of a pass, 2)`` int32: from MCDropout's generator,
        or, given a ``block_seed``, a function of it alone."""
        shape = (count, len(self.seed_variables) + self._global_seed_rows, 2)
        if block_seed is None:
            return keras.random.randint(shape, 0, 2**31 - 1, seed=self.generator, dtype="int32")
        state = ops.cast(block_seed, self._block_generator.state.dtype)
        with keras.StatelessScope(state_mapping=[(self._block_generator.state, state)]):
            return keras.random.randint(shape, 0, 2**31 - 1, seed=self._block_generator, dtype="int32")

    def sample_once(self, frontier, copies, states, mapping=(), shard=None):
        """The postprocessed outputs of ``copies`` tiled samples, with seed states ``states`` (see `draw_states`).

        ``mapping``: ``(variable, value)`` pairs the model's variables are read from (see `SamplingPass`);
        ``shard``: how tiled tensors are laid out over devices (see `GraphPlan.run_suffix`).
        """
        initial = {
            id(variable): ops.cast(states[index], variable.dtype) for index, variable in enumerate(self.seed_variables)
        }
        sampling_pass = SamplingPass(self.selection, initial, self.packed_masks, mapping, joint=self.joint)
        shared_copies = copies if self.joint else None
        with (
            compile.seeded_global_generators(states[-1] if self._global_seed_rows else None),
            _context.selecting(self.selection.ids, shared_copies),
            keras.StatelessScope(state_mapping=mapping),
        ):
            outputs = self.plan.run_suffix(frontier, copies, sampling_pass, shard)
        silent = [layer.name for layer in self.selection.layers if id(layer) not in sampling_pass.drew]
        if silent:
            raise ValueError(
                f"MCDropout: the noise layers {silent} of model {self.model.name!r} drew no noise when the model ran "
                "(a subclassed model or layer that skips its dropout outside training?), so their noise cannot be "
                "sampled. Call the dropout layers unconditionally (they already do nothing at test time), or build "
                "the model with the functional or Sequential API."
            )
        return _outputs.postprocess(outputs, self.kinds)


class SampleBlocks(NamedTuple):
    """How the samples of one ``predict`` call are cut under joint draws: the same for every batch and sub-batch.

    Chunk ``j`` of every sub-batch holds samples ``[j * copies, (j + 1) * copies)`` (``copies`` a replica) and draws
    its noise from the block seed ``key + (j, 0)`` alone, so that sample ``t`` is one network for every input.
    """

    copies: int
    key: np.ndarray

    @classmethod
    def first(cls, sampler, samples, rows):
        """The cut for a call whose first batch allows ``rows`` rows a sampler call, with a key of its own."""
        copies = max(1, min(samples, rows)) if sampler.plan.tileable else 1
        return cls(copies, sampler.draw_key())

    def seed(self, chunk):
        return self.key + np.asarray([chunk, 0], dtype="int32")


def sample_batch(sampler, frontier, samples, rows, keep_samples, names, blocks=None, targets=None):
    """Moments of every input of one batch, in sub-batches and sample chunks of at most ``rows`` rows a replica.

    ``frontier`` is the batch after the sampler's prefix; ``names``: how messages name each output; ``blocks``: the
    `SampleBlocks` of joint draws, or None; ``targets``: None, or ``(y, noise_variance)`` of the batch for the
    log-likelihood of a single output (see `Moments`). Yields one list of `Moments` (one per output) per sub-batch.
    """
    size = int(keras.tree.flatten(frontier)[0].shape[0])
    if blocks is None:
        sub_batch = min(size, rows)
        copies = max(1, min(samples, rows // sub_batch)) if sampler.plan.tileable else 1
    else:
        copies = blocks.copies
        sub_batch = min(size, max(1, rows // copies))
    for start in range(0, size, sub_batch):
        part = frontier
        if sub_batch < size:
            part = keras.tree.map_structure(lambda value, s=start: value[s : s + sub_batch], frontier)
        count = int(keras.tree.flatten(part)[0].shape[0])
        part_targets = (None, None) if targets is None else (targets[0][start : start + count], targets[1])
        moments = [Moments(keep_samples, kind.output_type == "gaussian", *part_targets) for kind in sampler.kinds]
        drawn = chunk = 0
        while drawn < samples:
            wanted = samples - drawn
            per_replica = min(copies, math.ceil(wanted / sampler.replicas))
            block_seed = None if blocks is None else blocks.seed(chunk)
            flat = [ops.convert_to_numpy(value) for value in sampler.sample(part, per_replica, block_seed)]
            chunk += 1
            step = min(wanted, len(flat[0]) // count)
            pairs = _outputs.split(flat, sampler.kinds)
            for accumulator, kind, name, (drawn_samples, second) in zip(
                moments, sampler.kinds, names, pairs, strict=True
            ):
                _outputs.check_probability_values(drawn_samples, kind, name)
                drawn_samples = drawn_samples.reshape((-1, count) + drawn_samples.shape[1:])[:step]
                if second is not None:
                    second = second.reshape((-1, count) + second.shape[1:])[:step]
                accumulator.add(drawn_samples, second)
            drawn += step
        yield moments
