"""Monte Carlo dropout prediction (Gal & Ghahramani 2016): `MCDropout` and its result, `MCDropoutResult`."""

import collections.abc
import inspect
import sys

import keras
import numpy as np
from keras import ops

from kerasdrop import _sampler
from kerasdrop._validation import check_bool, check_positive_float, check_positive_int, check_seed
from kerasdrop.metrics import entropy_of

_VERBOSITY = ("auto", 0, 1, 2)


class MCDropoutResult:
    """What `MCDropout.predict` returns: moments of the ``T`` sampled outputs per input.

    Attributes:
        mean: float32 array ``(N, ...)``, the mean of the samples (the MC prediction).
        variance: float32 array ``(N, ...)``, their variance (``ddof=0``).
        std: its square root.
        samples: float32 array ``(T, N, ...)`` with ``keep_samples=True``, else None.
        num_samples: ``T``.

    For classifiers whose output is a probability vector (softmax, or a single sigmoid unit read as
    ``[1 - p, p]``) the entropies below are in nats over the last axis.
    """

    def __init__(self, mean, variance, expected_entropy, num_samples, samples=None):
        self.mean = mean
        self.variance = variance
        self.num_samples = num_samples
        self.samples = samples
        self._expected_entropy = expected_entropy

    @property
    def std(self):
        return np.sqrt(self.variance)

    def _require_probabilities(self):
        if self._expected_entropy is None:
            raise ValueError(
                "The entropies need outputs that are probability vectors (non-negative, each row summing to 1, or a "
                "single sigmoid unit in [0, 1]); this model's outputs are not. End the model with a softmax or "
                "sigmoid activation, or use `mean` and `variance`."
            )

    def predictive_entropy(self):
        """``H(mean)``: total uncertainty of the averaged prediction, shape ``mean.shape[:-1]``."""
        self._require_probabilities()
        return entropy_of(_as_categorical(self.mean.astype("float64"))).astype("float32")

    def expected_entropy(self):
        """Mean over the samples of each sample's entropy: the aleatoric part."""
        self._require_probabilities()
        return self._expected_entropy

    def mutual_information(self):
        """BALD: ``predictive_entropy() - expected_entropy()`` (never below 0), the epistemic part."""
        return np.maximum(self.predictive_entropy() - self.expected_entropy(), 0.0)

    def __repr__(self):
        kept = "" if self.samples is None else ", samples kept"
        return f"MCDropoutResult(num_samples={self.num_samples}, mean shape {self.mean.shape}{kept})"


def _as_categorical(probs):
    """A single sigmoid unit ``p`` becomes ``[1 - p, p]``; class probability vectors are left as they are."""
    if probs.shape[-1] == 1:
        return np.concatenate([1.0 - probs, probs], axis=-1)
    return probs


def _is_probability(chunk):
    """Rows of non-negative values summing to 1 (to the rounding of the output dtype), or one unit in [0, 1]."""
    tolerance = 1e-2 if chunk.dtype.itemsize <= 2 else 1e-3
    if chunk.size == 0 or not np.all(np.isfinite(chunk)) or chunk.min() < -1e-6 or chunk.max() > 1 + 1e-6:
        return False
    return chunk.shape[-1] == 1 or bool(np.all(np.abs(chunk.sum(axis=-1) - 1.0) <= tolerance))


class _Moments:
    """Running mean, sum of squared deviations (Chan et al.'s pairwise update) and mean entropy over sample chunks."""

    def __init__(self, keep_samples):
        self.count = 0
        self.mean = self.m2 = self.entropy = None
        self.probabilities = True
        self.kept = [] if keep_samples else None

    def add(self, chunk):
        if self.kept is not None:
            self.kept.append(chunk.astype("float32"))
        self.probabilities = self.probabilities and _is_probability(chunk)
        chunk = chunk.astype("float64")
        size = chunk.shape[0]
        chunk_mean = chunk.mean(axis=0)
        chunk_m2 = np.sum((chunk - chunk_mean) ** 2, axis=0)
        chunk_entropy = entropy_of(_as_categorical(np.clip(chunk, 0, 1))).sum(axis=0) if self.probabilities else 0
        if self.count == 0:
            self.mean, self.m2, self.entropy = chunk_mean, chunk_m2, chunk_entropy
        else:
            total = self.count + size
            delta = chunk_mean - self.mean
            self.mean = self.mean + delta * (size / total)
            self.m2 = self.m2 + chunk_m2 + delta**2 * (self.count * size / total)
            self.entropy = self.entropy + chunk_entropy
        self.count += size


def _is_batched_source(x):
    """A tf.data.Dataset, a keras PyDataset, a generator or another iterator: batches come ready-made."""
    if isinstance(x, keras.utils.PyDataset) or inspect.isgenerator(x) or isinstance(x, collections.abc.Iterator):
        return True
    tensorflow = sys.modules.get("tensorflow")
    return tensorflow is not None and isinstance(x, tensorflow.data.Dataset)


def _iterate_batches(x, batch_size):
    """Yields the batches of a batched source, or of arrays split into ``batch_size`` rows."""
    if _is_batched_source(x):
        batches = (x[i] for i in range(len(x))) if isinstance(x, keras.utils.PyDataset) else x
        for element in batches:
            yield keras.utils.unpack_x_y_sample_weight(element)[0]
        return
    size = _batch_size_of(x)
    for start in range(0, size, batch_size):
        yield keras.tree.map_structure(lambda array, s=start: array[s : s + batch_size], x)


def _batch_size_of(x):
    leaves = keras.tree.flatten(x)
    if not leaves:
        raise ValueError("MCDropout.predict received no input arrays.")
    return int(leaves[0].shape[0])


def _as_arrays(x):
    """Lists of numbers become arrays; arrays, tensors and structures of them are kept."""
    if isinstance(x, (list, tuple)) and x and not any(hasattr(leaf, "shape") for leaf in keras.tree.flatten(x)):
        return np.asarray(x)
    return x


class MCDropout:
    """Monte Carlo dropout predictions (Gal & Ghahramani 2016) of any Keras model with stochastic layers.

    ``predict`` runs the model ``samples`` times per input with only its stochastic layers sampling: kerasdrop
    layers, and Keras's ``Dropout``, ``SpatialDropout1D/2D/3D``, ``GaussianDropout``, ``GaussianNoise``,
    ``AlphaDropout`` and the dropout of Keras RNN layers. Everything else runs in inference mode
    (BatchNormalization uses its moving statistics) and no variable of the model changes: the stochastic layers
    draw from this object's own seed generator, not from their own.

    How it is fast, for functional and Sequential models (models reloaded from ``.keras`` included):
    the part of the network before the first stochastic layer runs once per input; the rest runs on the inputs
    tiled ``k`` times along the batch axis, so one call draws ``k`` samples of each input, with ``k`` as large as
    the memory budget allows; the sampler is compiled once (``tf.function``); Bernoulli dropout with a dyadic keep
    probability (rate 0.5, 0.25, 0.75, ...) draws 30 masks per random integer. Subclassed models are run whole
    (no prefix), as long as they call their dropout layers when ``training=False`` (else a clear error).

    If a stochastic layer shares one draw across the batch (``noise_shared_across_batch``, e.g. ``Dropout`` with
    ``noise_shape=(1, ...)``, ``StochasticDropout``), tiled copies would share their noise, so samples are then
    drawn one call at a time; each input still gets ``samples`` independent draws.

    Multi-output models are refused with a clear error: sample ``keras.Model(model.inputs, model.outputs[i])``.

    The sampler is traced on the first ``predict``; while it is, the stochastic layers are switched briefly (their
    ``call``, ``mc`` and seed generator, all restored at once), so do not call the same model from another thread at
    that moment.

    Args:
        model: a built ``keras.Model``.
        samples: int > 0, the number ``T`` of Monte Carlo samples per input.
        seed: None or int. With an int every ``predict`` call starts from the same seed, so the same inputs (with
            the same ``batch_size`` and memory budget) give the same result; with None each call draws new samples.
        memory_budget_mb: float > 0, the memory (MiB) the tensors of one sampler call may take, estimated from the
            model's layer output shapes; it caps how many samples share a call.
        fast_masks: bool, whether Bernoulli dropout with a dyadic keep uses packed masks (same distribution).

    Example:
        ```python
        mc = kerasdrop.MCDropout(model, samples=50, seed=0)
        result = mc.predict(x_test)
        result.mean, result.std, result.mutual_information()
        ```

    Reference:
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1506.02142)
    """

    def __init__(self, model, samples=50, seed=None, memory_budget_mb=256, fast_masks=True):
        if not isinstance(model, keras.Model):
            raise TypeError(f"MCDropout expects a keras.Model. Received: model of type {type(model).__name__}")
        if not model.built:
            raise ValueError(
                f"MCDropout needs a built model; {model.name!r} is not built yet. Create it with `keras.Input`, or "
                "call it once on a batch of inputs."
            )
        self.model = model
        self.samples = check_positive_int("samples", samples)
        self.seed = check_seed(seed)
        self.memory_budget_mb = check_positive_float("memory_budget_mb", memory_budget_mb)
        self.fast_masks = check_bool("fast_masks", fast_masks)
        layers = _sampler.find_stochastic_layers(model)
        if not layers:
            raise ValueError(
                f"MCDropout found no stochastic layer in model {model.name!r}, so every sample would be the same. It "
                f"samples through {_sampler.SUPPORTED}. Add one, e.g. `keras.layers.Dropout(0.5)` or "
                "`kerasdrop.Dropout(0.5)` before the last Dense layer, and train the model with it."
            )
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self._initial_state = ops.convert_to_numpy(self.seed_generator.state.value)
        self._sampler = _sampler.Sampler(model, layers, self.seed_generator, packed_masks=self.fast_masks)

    @property
    def stochastic_layers(self):
        """Names of the layers that sample."""
        return [layer.name for layer in self._sampler.layers]

    @property
    def vectorized(self):
        """True when several samples share one batch (no layer shares its noise across the batch)."""
        return self._sampler.plan.tileable

    @property
    def trace_count(self):
        """How many times the sampler was traced (TensorFlow backend: once, whatever the inputs' batch sizes)."""
        return self._sampler.trace_count

    def rows_per_call(self, inputs):
        """``(bytes_per_row, rows)`` for a batch of ``inputs``: the estimated size of one (input, sample) row of the
        sampler's tensors, and how many rows one call may hold under the memory budget."""
        row_bytes = self._sampler.plan.row_bytes(self._standardize(inputs))
        return row_bytes, max(1, int(self.memory_budget_mb * 2**20 // row_bytes))

    def predict(self, x, batch_size=None, verbose="auto", keep_samples=False):
        """Draws ``samples`` Monte Carlo predictions per input and returns their moments.

        Args:
            x: NumPy array (or a list/dict of arrays for a multi-input model), a batched ``tf.data.Dataset`` (its
                elements may be ``(x, y)`` pairs), a ``keras.utils.PyDataset``, or a generator of batches.
            batch_size: int or None: inputs per batch for arrays. None takes as many as let all the samples of a
                batch share one call under the memory budget (at least 32). Datasets and generators are used as
                they are batched.
            verbose: "auto" (= 1), 0 (silent), 1 (progress bar) or 2 (one line at the end).
            keep_samples: bool, keep every sample in ``result.samples`` ``(T, N, ...)``.

        Returns:
            `MCDropoutResult`.
        """
        if verbose not in _VERBOSITY or isinstance(verbose, bool):
            raise ValueError(
                f"Invalid value received for argument `verbose`. Expected one of {_VERBOSITY}. "
                f"Received: verbose={verbose!r}"
            )
        keep_samples = check_bool("keep_samples", keep_samples)
        x = _as_arrays(x)
        batched = _is_batched_source(x)
        if batched and batch_size is not None:
            raise ValueError(
                "Invalid value received for argument `batch_size`: datasets and generators are already batched, "
                f"so leave it None. Received: batch_size={batch_size}"
            )
        if not batched and self._sampler.plan.functional:
            self._ordered_inputs(x)  # check the shapes of the whole arrays before anything runs
        if not batched and batch_size is None:
            batch_size = self._default_batch_size(x)
        elif not batched:
            batch_size = check_positive_int("batch_size", batch_size)
        if self.seed is not None:
            self.seed_generator.state.assign(self._initial_state)
        target = None if batched else _batch_size_of(x)
        bar = keras.utils.Progbar(target, verbose=1 if verbose == "auto" else verbose, unit_name="input")
        parts, done, rows = [], 0, None
        for batch in _iterate_batches(x, batch_size):
            inputs = self._standardize(batch)
            if rows is None:
                rows = self.rows_per_call(batch)[1]
            parts.extend(self._sample_batch(self._sampler.prefix(inputs), rows, keep_samples))
            done += _batch_size_of(inputs)
            if verbose != 0:
                bar.update(done)
        if not parts:
            raise ValueError("MCDropout.predict received no inputs (an empty array, dataset or generator).")
        if verbose != 0 and target is None:
            bar.update(done, finalize=True)
        return self._result(parts, keep_samples)

    def _default_batch_size(self, x):
        rows = self.rows_per_call(keras.tree.map_structure(lambda array: array[:1], x))[1]
        return max(32, rows // self.samples if self.vectorized else rows)

    def _sample_batch(self, frontier, rows, keep_samples):
        """Moments of every input of one batch, in sub-batches and sample chunks of at most ``rows`` rows."""
        size = _batch_size_of(frontier)
        sub_batch = min(size, rows)
        copies = max(1, min(self.samples, rows // sub_batch)) if self.vectorized else 1
        for start in range(0, size, sub_batch):
            part = frontier
            if sub_batch < size:
                part = keras.tree.map_structure(lambda value, s=start: value[s : s + sub_batch], frontier)
            count = _batch_size_of(part)
            moments = _Moments(keep_samples)
            drawn = 0
            while drawn < self.samples:
                step = min(copies, self.samples - drawn)
                outputs = ops.convert_to_numpy(self._sampler.sample(part, step))
                moments.add(outputs.reshape((step, count) + outputs.shape[1:]))
                drawn += step
            yield moments

    def _result(self, parts, keep_samples):
        probabilities = all(part.probabilities for part in parts)
        mean = np.concatenate([part.mean for part in parts]).astype("float32")
        variance = np.concatenate([part.m2 / part.count for part in parts]).astype("float32")
        expected = None
        if probabilities:
            expected = np.concatenate([part.entropy / part.count for part in parts]).astype("float32")
        samples = None
        if keep_samples:
            samples = np.concatenate([np.concatenate(part.kept, axis=0) for part in parts], axis=1)
        return MCDropoutResult(mean, variance, expected, self.samples, samples)

    def _standardize(self, batch):
        """Model inputs as tensors: for a graph model a list in the order of its inputs, checked against their specs."""
        if not self._sampler.plan.functional:
            return keras.tree.map_structure(ops.convert_to_tensor, batch)
        values = self._ordered_inputs(batch)
        symbolic = self._sampler.plan.inputs
        return [ops.convert_to_tensor(value, dtype=t.dtype) for t, value in zip(symbolic, values, strict=True)]

    def _ordered_inputs(self, batch):
        """The arrays of ``batch`` in the order of the graph's inputs, each checked against its input's shape."""
        symbolic = self._sampler.plan.inputs
        structure = getattr(self.model, "input", None)
        if isinstance(batch, dict) and isinstance(structure, dict) and set(batch) == set(structure):
            values = keras.tree.flatten({key: batch[key] for key in structure})  # the order of the model's inputs
        elif isinstance(batch, dict):
            missing = [tensor.name for tensor in symbolic if tensor.name not in batch]
            if missing:
                raise ValueError(
                    f"MCDropout: the input dict has no entry for the model inputs {missing}. "
                    f"Received keys: {sorted(batch)}"
                )
            values = [batch[tensor.name] for tensor in symbolic]
        elif isinstance(batch, (list, tuple)):
            values = list(batch)
        else:
            values = [batch]
        if len(values) != len(symbolic):
            raise ValueError(
                f"MCDropout: model {self.model.name!r} takes {len(symbolic)} input(s); received {len(values)} arrays."
            )
        for tensor, value in zip(symbolic, values, strict=True):
            _check_input_shape(self.model, tensor, value)
        return values


def _check_input_shape(model, symbolic, value):
    shape = tuple(value.shape)
    expected = tuple(symbolic.shape)
    if len(shape) != len(expected) or any(e is not None and e != s for e, s in zip(expected, shape, strict=True)):
        raise ValueError(
            f"MCDropout: input {symbolic.name!r} of model {model.name!r} expects arrays of shape {expected} (None: "
            f"any size). Received an array of shape {shape}"
        )
