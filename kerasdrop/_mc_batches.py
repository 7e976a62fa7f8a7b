"""How `kerasdrop.MCDropout.predict` cuts its work: each batch into sub-batches and its samples into sampler calls
of at most the rows the memory budget allows, accumulated into moments and returned in the model's output structure.
"""

import math
from typing import NamedTuple

import keras
import numpy as np
from keras import ops

from kerasdrop import _mc_inputs, _mc_outputs


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


def sample_batch(sampler, frontier, samples, rows, output_kinds, keep_samples, blocks=None, structure=None):
    """Moments of every input of one batch, in sub-batches and sample chunks of at most ``rows`` rows a replica.

    ``frontier`` is the batch after the sampler's prefix; ``output_kinds()`` gives the kinds of the model's outputs
    (known after the first sampler call for a model without a graph); ``blocks``: the `SampleBlocks` of joint draws,
    or None; ``structure()``: the model's output structure, for messages. Yields one list of `Moments` (one per
    output) per sub-batch.
    """
    size = _mc_inputs.batch_size_of(frontier)
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
        count = _mc_inputs.batch_size_of(part)
        moments = None
        drawn = chunk = 0
        while drawn < samples:
            wanted = samples - drawn
            per_replica = min(copies, math.ceil(wanted / sampler.replicas))
            block_seed = None if blocks is None else blocks.seed(chunk)
            flat = [ops.convert_to_numpy(value) for value in sampler.sample(part, per_replica, block_seed)]
            chunk += 1
            step = min(wanted, len(flat[0]) // count)
            kinds = output_kinds()
            moments = moments or [_mc_outputs.Moments(keep_samples) for _ in kinds]
            pairs, outputs = _mc_outputs.split(flat, kinds), len(kinds)
            for index, (accumulator, (drawn_samples, entropies)) in enumerate(zip(moments, pairs, strict=True)):
                _mc_outputs.check_probability_values(
                    drawn_samples,
                    kinds[index],
                    lambda i=index, n=outputs: _mc_outputs.output_name(structure() if structure else None, i, n),
                )
                drawn_samples = drawn_samples.reshape((-1, count) + drawn_samples.shape[1:])[:step]
                if entropies is not None:
                    entropies = entropies.reshape((-1, count) + entropies.shape[1:])[:step]
                accumulator.add(drawn_samples, entropies)
            drawn += step
        yield moments


def results(parts, kinds, samples, structure, consistent=False):
    """The `MCDropoutResult` of each output from the moments of every sub-batch, in the model's output structure."""
    if len(kinds) == 1:
        names = ["the output"]
    else:
        names = [f"output {key!r}" for key in _mc_outputs.output_keys(structure, len(kinds))]
    per_output = [
        _mc_outputs.result_from([part[index] for part in parts], kind, samples, names[index], consistent)
        for index, kind in enumerate(kinds)
    ]
    if not keras.tree.is_nested(structure):
        return per_output[0]
    return keras.tree.pack_sequence_as(structure, per_output)
