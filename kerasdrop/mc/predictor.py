"""`MCDropout`, the Monte Carlo dropout predictor (Gal & Ghahramani 2016): one ``predict`` call runs straight
through the package, in the order of its modules: its inputs (`kerasdrop.mc.inputs`), the plan of the model's graph
(`kerasdrop.mc.plan`), the sampler's calls (`kerasdrop.mc.runner`, compiled by `kerasdrop.mc.compile`), the
moments of the samples (`kerasdrop.mc.moments`) and the result (`kerasdrop.mc.result`). Which layers make noise
is in `kerasdrop.mc.selection`.
"""

import itertools
import threading
import warnings

import keras

from kerasdrop._validation import _message, check_bool, check_positive_float, check_positive_int, check_seed
from kerasdrop.mc import compile
from kerasdrop.mc import inputs as _inputs
from kerasdrop.mc import likelihood as _likelihood
from kerasdrop.mc import outputs as _outputs
from kerasdrop.mc import result as _result
from kerasdrop.mc import runner as _runner
from kerasdrop.mc.result import MCDropoutResult
from kerasdrop.mc.selection import Selection

_VERBOSITY = ("auto", 0, 1, 2)

__all__ = ["MCDropout", "MCDropoutResult"]


def _sampling_notes(plan, output_type, model_name):
    """What the user should know about how a model is sampled: an output read as regression for want of a graph,
    and containers called with ``training=True`` so that Keras's noise layers inside them sample."""
    notes = []
    if not plan.functional and "auto" in keras.tree.flatten(output_type):
        notes.append(
            f"MCDropout: output_type='auto' cannot see the output activation of model {model_name!r} (it has no "
            "graph of layers), so its outputs are read as regression. Pass output_type='probabilities' or 'logits' "
            "for a classifier."
        )
    if plan.trained_containers:
        notes.append(
            f"MCDropout calls {plan.trained_containers} with training=True so that Keras's noise layers inside sample "
            "(nothing else inside changes in training). If their own code does something else in training (returns "
            "logits instead of probabilities, say), use kerasdrop's dropout layers there: they sample under "
            "MCDropout with training=False."
        )
    return notes


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"MCDropout expects a keras.Model. Received: model of type {type(model).__name__}")
    if not model.built:
        raise ValueError(
            f"MCDropout needs a built model; {model.name!r} is not built yet. Create it with `keras.Input`, or "
            "call it once on a batch of inputs."
        )
    return model


def _model_batches(mc, x, batch_size):
    """``(batches of model inputs, number of inputs, batch size)`` (the last two None for a batched source);
    arrays are checked once, whole. The output kinds are decided on the first batch (see `decide_outputs`)."""
    plan = mc._sampler.plan
    if _inputs.is_batched_source(x):
        if batch_size is not None:
            raise ValueError(
                "Invalid value received for argument `batch_size`: datasets and generators are already batched, "
                f"so leave it None. Received: batch_size={batch_size}"
            )
        return _decided(mc, _inputs.source_batches(plan, mc.model, x)), None, None
    ordered = _inputs.in_model_order(plan, mc.model, x)
    if batch_size is None:
        rows = mc.rows_per_call(keras.tree.map_structure(lambda array: array[:1], ordered))[1]
        batch_size = max(32, rows // mc.samples if mc.vectorized else rows)
    batch_size = check_positive_int("batch_size", batch_size)
    batches = _inputs.array_batches(plan, mc.model, ordered, batch_size)
    return _decided(mc, batches), _inputs.batch_size_of(ordered), batch_size


def _decided(mc, batches):
    """``batches`` again, once the output kinds are decided from the first (an empty source refused)."""
    first = next(batches, None)
    if first is None:
        raise ValueError("MCDropout.predict received no inputs (an empty array, dataset or generator).")
    mc.decide_outputs(first)
    return itertools.chain([first], batches)


def _sample_call(mc, batches, count, verbose, keep_samples, targets=None):
    """The straight loop of a call: batches of model inputs -> prefix -> sampler calls -> moments -> results.
    ``targets``: None, or ``(y, noise_variance)`` of every input, for `MCDropout.log_likelihood`."""
    if not mc._warned:  # what the user should know about how this model is sampled, said once
        mc._warned = True
        for message in _sampling_notes(mc._sampler.plan, mc.output_type, mc.model.name):
            warnings.warn(message, stacklevel=4)  # this, _call, predict, the user's call
    sampler, names = mc._sampler, _outputs.output_names(mc.output_structure, len(mc.output_kinds))
    bar = keras.utils.Progbar(count, verbose=1 if verbose == "auto" else verbose, unit_name="input")
    parts, done, blocks = [], 0, None
    for inputs in batches:
        rows = sampler.rows_per_call(mc.memory_budget_mb, sampler.plan.row_bytes(inputs))
        if mc.consistent and blocks is None:  # one cut of the samples for the whole call
            blocks = _runner.SampleBlocks.first(sampler, mc.samples, rows)
        frontier = sampler.prefix(inputs)
        size = _inputs.batch_size_of(inputs)
        batch_targets = None if targets is None else (targets[0][done : done + size], targets[1])
        parts.extend(
            _runner.sample_batch(sampler, frontier, mc.samples, rows, keep_samples, names, blocks, batch_targets)
        )
        done += size
        if verbose != 0:
            bar.update(done)
    if verbose != 0 and count is None:
        bar.update(done, finalize=True)
    return _result.results(parts, mc.output_kinds, mc.samples, mc.output_structure, mc.consistent)


class MCDropout:
    """Monte Carlo dropout predictions (Gal & Ghahramani 2016) of any Keras model with noise layers.

    ``predict`` runs the model ``samples`` times per input with only its noise layers sampling: kerasdrop layers,
    and Keras's ``Dropout``, ``SpatialDropout1D/2D/3D``, ``GaussianDropout``, ``GaussianNoise``, ``AlphaDropout``,
    the attention dropout of ``MultiHeadAttention`` and the dropout of Keras RNN layers. Everything else runs in
    inference mode (BatchNormalization uses its moving statistics).

    The model is never modified, not even for a moment, so other threads may use it meanwhile (with their own
    MCDropout, or this one): each layer gets the ``training`` value it needs, and the noise layers draw from seed
    states handed to them in a ``keras.StatelessScope``.

    Functional and Sequential models run the part of the network before the first sampling layer once per input,
    and the rest on inputs tiled along the batch axis, as many samples a call as the memory budget allows;
    subclassed models run whole. The sampler is traced once on TensorFlow, compiled per batch shape on JAX (a model
    trained further is sampled with its new weights), and eager on PyTorch (`kerasdrop.mc.compile`).

    Args:
        model: a built ``keras.Model``.
        samples: int > 0, the number ``T`` of Monte Carlo samples per input.
        seed: None or int. With an int every ``predict`` call starts from the same seed: the same inputs (same
            ``batch_size``, memory budget and replicas) give the same result. With None each call draws anew.
        memory_budget_mb: float > 0, the memory (MiB) the tensors of one sampler call may take on one replica,
            estimated from the model's layer output shapes; it caps how many samples share a call. A PyTorch model
            on CPU takes at most 32 MiB a call, which is faster there.
        stochastic_layers: None (every noise layer samples), or a list of layers or layer names: only the noise
            layers they are or hold sample; the others run as at test time.
        output_type: how outputs are read, one string or a list/dict matching the model's outputs: "auto"
            (probabilities when the output layer's activation is softmax or sigmoid, else regression),
            "probabilities", "logits" (each sample goes through softmax, or sigmoid for one unit, before the
            moments), "regression", or "gaussian" (a heteroscedastic head: mean and log variance in the two halves
            of the last axis).
        strategy: what the samples are spread over, read when this object is made. TensorFlow: None (the current
            ``tf.distribute`` strategy) or a ``tf.distribute.Strategy``: each call samples on every replica, with
            masks of its own. JAX: None (the current ``keras.distribution``, when it is a ``DataParallel``) or a
            ``keras.distribution.DataParallel``: each call samples on every device of the mesh's batch axis, with
            masks of its own. PyTorch: None.
        fast_masks: bool, whether Bernoulli dropout with a dyadic keep uses packed masks (same distribution).
        consistent: bool. False (default): every input draws its own noise, which is right for per-input moments
            (mean, variance, entropies, BALD). True: sample ``t`` of every input is drawn by one and the same
            network: the same masks and weight noise for every input, every batch, sub-batch and chunk of a
            ``predict`` call and every replica, and, with an int ``seed``, of every ``predict`` call (for inputs of
            the same shapes). The ``T`` samples are then joint draws of ``T`` networks (function samples), as
            BatchBALD, Thompson sampling and any quantity across inputs need; each input's own distribution is the
            same in both modes. Layers that draw per input by construction (local reparameterisation) then draw
            their weights once per sample; Keras's noise layers and RNNs are computed by the sampler with Keras's
            formulas (`kerasdrop.mc.joint_draws`); a noise layer whose draws cannot be shared (the attention
            dropout of ``MultiHeadAttention``, Keras noise inside a layer of the user's own) is refused, by name.

    Example:
        ```python
        mc = kerasdrop.MCDropout(model, samples=50, seed=0)
        result = mc.predict(x_test)
        result.mean, result.std, result.mutual_information()
        ```

    Attributes:
        stochastic_layers: names of the noise layers that sample.
        replicas: how many replicas or devices share each sampler call (see ``strategy``), else 1.
        vectorized: True when several samples share one call (no sampling layer shares its noise across a batch).

    Reference:
        - [Gal & Ghahramani, 2016](https://arxiv.org/abs/1506.02142)
    """

    def __init__(
        self,
        model,
        samples=50,
        seed=None,
        memory_budget_mb=256,
        stochastic_layers=None,
        output_type="auto",
        strategy=None,
        fast_masks=True,
        consistent=False,
    ):
        self.model = _check_model(model)
        self.samples = check_positive_int("samples", samples)
        self.seed = check_seed(seed)
        self.memory_budget_mb = check_positive_float("memory_budget_mb", memory_budget_mb)
        self.output_type = _outputs.check_output_type(output_type)
        self.fast_masks = check_bool("fast_masks", fast_masks)
        self.consistent = check_bool("consistent", consistent)
        self.strategy = compile.check_strategy(strategy)
        self.selection = Selection(model, stochastic_layers)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.initial_seed_state = self.seed_generator.state.numpy()
        self._sampler = _runner.Sampler(
            model, self.selection, self.seed_generator, self.fast_masks, self.strategy, joint=self.consistent
        )
        self.stochastic_layers = [layer.name for layer in self.selection.layers]
        self.replicas = self._sampler.replicas
        self.vectorized = self._sampler.plan.tileable
        self._lock = threading.Lock()
        self._warned = False
        self.output_structure = None  # with `output_kinds`, decided before the first sample (`decide_outputs`)
        if self._sampler.plan.functional:  # at once
            self.decide_outputs(None)

    @property
    def trace_count(self):
        """How many times the sampler was traced: on TensorFlow once, whatever the inputs' batch sizes; on JAX once
        per batch shape and number of samples a call; on PyTorch, which runs it eagerly, once per call."""
        return self._sampler.trace_count

    @property
    def output_kinds(self):
        """One `OutputKind` per output, in flat order (None until `decide_outputs`)."""
        return self._sampler.kinds

    def decide_outputs(self, inputs):
        """Decides once, before the first sample, how the outputs are read (see `GraphPlan.output_specs`)."""
        if self._sampler.kinds is None:
            structure, flat = self._sampler.plan.output_specs(inputs)
            self._sampler.kinds = _outputs.output_kinds(self.output_type, structure, flat, self.model.name)
            self.output_structure = structure

    def rows_per_call(self, inputs):
        """``(bytes_per_row, rows)`` for a batch of ``inputs``: the estimated size of one (input, sample) row of the
        sampler's tensors, and how many rows one call may hold under the memory budget (per replica)."""
        row_bytes = self._sampler.plan.row_bytes(_inputs.standardize(self._sampler.plan, self.model, inputs))
        return row_bytes, self._sampler.rows_per_call(self.memory_budget_mb, row_bytes)

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
            `MCDropoutResult` for a single-output model; for several outputs one per output, in the structure of
            the model's outputs (a list or a dict). The outputs of one sample come from the same masks.
        """
        keep_samples = check_bool("keep_samples", keep_samples)
        batches, count, _ = _model_batches(self, _inputs.as_arrays(x), batch_size)
        return self._call(batches, count, verbose, keep_samples)

    def log_likelihood(self, x, y, noise_variance=None, batch_size=None, verbose=0):
        """Per input, the Monte Carlo predictive log-likelihood of its target (Gal & Ghahramani 2016), float64
        ``(N,)``: ``log (1/T) Σ_t N(y; ŷ_t, σ_t²)``, summed over the output's values, streamed chunk by chunk (the
        samples are never all held: ``T = 10,000`` over any number of inputs takes the memory of one chunk).

        Args:
            x, batch_size, verbose: as in `predict` (arrays only).
            y: array of targets, shaped like the single output (a trailing axis of 1 may be left out).
            noise_variance: for a "regression" output the noise variance ``σ²`` (``1 / tau``), a float or an array
                broadcastable to one input's output, above 0; a "gaussian" head takes None (its own variances).
        """
        batches, count, _ = _model_batches(self, _inputs.as_arrays(x), batch_size)
        targets = _likelihood.targets(
            self.output_kinds, self.output_structure, self.model.name, y, noise_variance, count
        )
        return self._call(batches, count, verbose, False, targets).log_likelihoods

    def _call(self, batches, count, verbose, keep_samples, targets=None):
        if verbose not in _VERBOSITY or isinstance(verbose, bool):
            raise ValueError(_message("verbose", f"one of {_VERBOSITY}", verbose))
        if self.seed is None:
            return _sample_call(self, batches, count, verbose, keep_samples, targets)
        with self._lock:  # a shared seeded MCDropout: one call at a time, so that each is reproducible
            self.seed_generator.state.assign(self.initial_seed_state)
            return _sample_call(self, batches, count, verbose, keep_samples, targets)

    def export(self, path, input_signature=None):
        """Writes a TensorFlow SavedModel that serves these Monte Carlo predictions, for TF Serving and the like.

        ``serve(x)`` (also ``serving_default``) returns a dict of float32 tensors: ``mean``, ``variance``, for
        probability outputs the three entropies, for a "gaussian" head ``aleatoric_variance`` and
        ``predictive_variance`` (keys prefixed by the output's key or index for several outputs).
        With an int ``seed`` its first call draws what ``predict`` draws. It loads with TensorFlow alone
        (``tf.saved_model.load(path).serve(x)``); see `kerasdrop.mc.export`.

        Args:
            path: a folder that does not exist yet, or an empty one.
            input_signature: None (from the model's inputs), or a ``tf.TensorSpec`` (a list of them for several
                inputs) with the batch axis None: needed for subclassed models without ``model.inputs``.
        """
        from kerasdrop.mc import export as _export

        compile.require_tensorflow("MCDropout.export writes a TensorFlow SavedModel")
        signature = _export.input_signature_of(self.model, self._sampler.plan, input_signature)
        self.decide_outputs(_export.example_inputs(signature))  # a model without a graph: from the signature
        state = None if self.seed is None else self.initial_seed_state
        parts = (self._sampler, self.output_structure, self.samples, self.memory_budget_mb, state, signature)
        _export.export(path, *parts)
