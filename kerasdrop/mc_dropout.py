"""Monte Carlo dropout (Gal & Ghahramani 2016): the predictor `MCDropout` and its result, `MCDropoutResult`, and
`set_mc`, the switch that keeps a model's kerasdrop layers stochastic at test time.

How the predictor runs a model is in `kerasdrop._sampler`; which layers make noise, in `kerasdrop._noise_layers`.
"""

import threading
import warnings

import keras
from keras import ops

from kerasdrop import _compat, _mc_batches, _mc_inputs, _mc_outputs, _sampler
from kerasdrop._mc_outputs import MCDropoutResult
from kerasdrop._noise_layers import Selection
from kerasdrop._validation import (
    ArgumentTypeError,
    _message,
    check_bool,
    check_positive_float,
    check_positive_int,
    check_seed,
)
from kerasdrop.layers._base import StochasticLayer

_VERBOSITY = ("auto", 0, 1, 2)

__all__ = ["MCDropout", "MCDropoutResult", "set_mc"]


def _check_strategy(strategy):
    """What to sample across, checked: a ``tf.distribute`` strategy on TensorFlow (None: the current one), a
    ``keras.distribution.DataParallel`` or None on JAX (None: the current distribution when it is one), None on
    PyTorch."""
    backend = keras.backend.backend()
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


class MCDropout:
    """Monte Carlo dropout predictions (Gal & Ghahramani 2016) of any Keras model with noise layers.

    ``predict`` runs the model ``samples`` times per input with only its noise layers sampling: kerasdrop layers,
    and Keras's ``Dropout``, ``SpatialDropout1D/2D/3D``, ``GaussianDropout``, ``GaussianNoise``, ``AlphaDropout``,
    the attention dropout of ``MultiHeadAttention`` and the dropout of Keras RNN layers. Everything else runs in
    inference mode (BatchNormalization uses its moving statistics).

    The model is never modified, not even for a moment: no attribute, method, flag, seed state or variable of the
    model or its layers changes while this object is built, traced or used, so other threads may use the same
    model meanwhile (with their own MCDropout, or this one). Sampling is a matter of how the model is run: each
    layer gets the ``training`` value it needs, kerasdrop layers learn from a thread-local selection that they
    sample, and the noise layers draw from seed states handed to them in a ``keras.StatelessScope``.

    Functional and Sequential models (reloaded ones included) run the part of the network before the first
    sampling layer once per input, and the rest on inputs tiled along the batch axis, so one call draws as many
    samples as the memory budget allows; subclassed models run whole. If a sampling layer shares one draw across the
    batch (``Dropout`` with ``noise_shape=(1, ...)``, ``StochasticDropout``), samples are drawn one call at a time.
    The sampler is a ``tf.function`` traced once on TensorFlow, a ``jax.jit`` function on JAX (compiled once per
    batch shape and number of samples a call, with the model's variables as arguments: a model trained further is
    sampled with its new weights), and eager without autograd on PyTorch, where Keras's own dropout inside RNN
    cells, attention layers and layers called whole draws from torch's global generator unless the layer has a
    seed: the sampler seeds that generator from its own for each pass and gives it back its state afterwards. The
    README's Monte Carlo section has the details.

    Args:
        model: a built ``keras.Model``.
        samples: int > 0, the number ``T`` of Monte Carlo samples per input.
        seed: None or int. With an int every ``predict`` call starts from the same seed, so the same inputs (with
            the same ``batch_size``, memory budget and replicas) give the same result; with None each call draws
            new samples.
        memory_budget_mb: float > 0, the memory (MiB) the tensors of one sampler call may take on one replica,
            estimated from the model's layer output shapes; it caps how many samples share a call. A PyTorch model
            on CPU takes at most 32 MiB a call, which is faster there.
        stochastic_layers: None (every noise layer samples), or a list of layers or layer names: only the noise
            layers they are or hold sample; the others run as at test time.
        output_type: how outputs are read, one string or a list/dict matching the model's outputs: "auto"
            (probabilities when the output layer's activation is softmax or sigmoid, else regression),
            "probabilities", "logits" (each sample goes through softmax, or sigmoid for one unit, before the
            moments) or "regression" (moments only).
        strategy: what the samples are spread over, per backend. TensorFlow: None (the current ``tf.distribute``
            strategy) or a ``tf.distribute.Strategy``; with several replicas each call samples on every replica,
            with masks of its own, and the samples are pooled, replica after replica. JAX: None (the current
            ``keras.distribution``, when it is a ``DataParallel``) or a ``keras.distribution.DataParallel``; with
            several devices on the batch axis of its mesh each call draws as many times the samples, laid out along
            that axis, device after device, each device with masks of its own; models whose noise is shared across
            the batch draw one sample a call, on one layout. PyTorch: None (no data-parallel sampling). Read when
            this object is made.
        fast_masks: bool, whether Bernoulli dropout with a dyadic keep uses packed masks (same distribution).
        consistent: bool. False (default): every input draws its own noise, which is right for per-input moments
            (mean, variance, entropies, BALD). True: sample ``t`` of every input is drawn by one and the same
            network: the same masks and weight noise for every input, every batch, sub-batch and chunk of a
            ``predict`` call and every replica, and, with an int ``seed``, of every ``predict`` call (for inputs of
            the same shapes). The ``T`` samples are then joint draws of ``T`` networks (function samples), as
            BatchBALD, Thompson sampling and any quantity across inputs (covariances, disagreement between two
            inputs) need; each input's own distribution is the same in both modes. The layers that draw per input
            by construction (the local reparameterisation of ``VariationalDense``, ``SparseVariationalDense`` and
            ``SparseVariationalConv2D``, and ``FastDropoutDense``) then draw their weights once per sample, as the
            posterior does; input-dependent noise (Standout's rates, Max-Drop, Cutout's position) keeps its
            dependence on the input, and shares its random numbers. Keras's ``Dropout``, spatial dropouts,
            ``GaussianDropout``, ``GaussianNoise``, ``AlphaDropout`` and the dropout of ``LSTM``, ``GRU`` and
            ``SimpleRNN`` are computed by the sampler from their own config, weights and seed states, with Keras's
            formulas; a noise layer whose draws cannot be shared (the attention dropout of ``MultiHeadAttention``, a
            Keras noise layer called inside a layer of the user's own) is refused, by name.

    Example:
        ```python
        mc = kerasdrop.MCDropout(model, samples=50, seed=0)
        result = mc.predict(x_test)
        result.mean, result.std, result.mutual_information()
        ```

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
        self.output_type = _mc_outputs.check_output_type(output_type)
        self.fast_masks = check_bool("fast_masks", fast_masks)
        self.consistent = check_bool("consistent", consistent)
        self.strategy = _check_strategy(strategy)
        self.selection = Selection(model, stochastic_layers)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self._initial_state = self.seed_generator.state.numpy()
        self._sampler = _sampler.Sampler(
            model,
            self.selection,
            self.seed_generator,
            self._postprocess,
            self.fast_masks,
            self.strategy,
            joint=self.consistent,
        )
        self._kinds = None
        self._warned = False
        self._lock = threading.Lock()
        if self._sampler.plan.functional:
            plan = self._sampler.plan
            self._kinds = _mc_outputs.output_kinds(self.output_type, self._structure(), plan.outputs, model.name)

    @property
    def stochastic_layers(self):
        """Names of the noise layers that sample."""
        return [layer.name for layer in self.selection.layers]

    @property
    def replicas(self):
        """How many replicas share each sampler call: those of the ``tf.distribute`` strategy (TensorFlow), the
        devices on the batch axis of the ``keras.distribution.DataParallel`` (JAX, for models whose noise is drawn
        per row), else 1."""
        return self._sampler.replicas

    @property
    def vectorized(self):
        """True when several samples share one batch (no sampling layer shares its noise across the batch)."""
        return self._sampler.plan.tileable

    @property
    def trace_count(self):
        """How many times the sampler was traced: on TensorFlow once, whatever the inputs' batch sizes; on JAX once
        per batch shape and number of samples a call; on PyTorch, which runs it eagerly, once per call."""
        return self._sampler.trace_count

    def _output_kinds(self):
        return self._kinds

    def _structure(self):
        return self._sampler.plan.output_structure

    def _postprocess(self, outputs):
        if self._kinds is None:  # a model without a graph: its outputs are known once it runs
            self._kinds = _mc_outputs.output_kinds(self.output_type, self._structure(), outputs, self.model.name)
        return _mc_outputs.postprocess(outputs, self._kinds)

    def _warn_once(self, stacklevel):
        """What the user should know about how this model is sampled, said once (from `predict`)."""
        if not self._warned:
            self._warned = True
            for message in _sampling_notes(self._sampler.plan, self.output_type, self.model.name):
                warnings.warn(message, stacklevel=stacklevel + 1)

    def rows_per_call(self, inputs):
        """``(bytes_per_row, rows)`` for a batch of ``inputs``: the estimated size of one (input, sample) row of the
        sampler's tensors, and how many rows one call may hold under the memory budget (per replica)."""
        row_bytes = self._sampler.plan.row_bytes(self._standardize(inputs))
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
        if verbose not in _VERBOSITY or isinstance(verbose, bool):
            raise ValueError(_message("verbose", f"one of {_VERBOSITY}", verbose))
        keep_samples = check_bool("keep_samples", keep_samples)
        x = _mc_inputs.as_arrays(x)
        batched = _mc_inputs.is_batched_source(x)
        if batched and batch_size is not None:
            raise ValueError(
                "Invalid value received for argument `batch_size`: datasets and generators are already batched, "
                f"so leave it None. Received: batch_size={batch_size}"
            )
        if not batched and self._sampler.plan.functional:
            _mc_inputs.ordered_inputs(self.model, self._sampler.plan.inputs, x)  # check whole arrays first
        if not batched and batch_size is None:
            batch_size = self._default_batch_size(x)
        elif not batched:
            batch_size = check_positive_int("batch_size", batch_size)
        if self.seed is None:
            return self._predict(x, batched, batch_size, verbose, keep_samples)
        with self._lock:  # a shared seeded MCDropout: one call at a time, so that each is reproducible
            self.seed_generator.state.assign(self._initial_state)
            return self._predict(x, batched, batch_size, verbose, keep_samples)

    def _predict(self, x, batched, batch_size, verbose, keep_samples):
        target = None if batched else _mc_inputs.batch_size_of(x)
        bar = keras.utils.Progbar(target, verbose=1 if verbose == "auto" else verbose, unit_name="input")
        parts, done, blocks = [], 0, None
        for batch in _mc_inputs.iterate_batches(x, batch_size):
            inputs = self._standardize(batch)
            rows = self.rows_per_call(batch)[1]  # per batch: a dataset's batches may differ in their other sizes
            if self.consistent and blocks is None:  # one cut of the samples for the whole call
                blocks = _mc_batches.SampleBlocks.first(self._sampler, self.samples, rows)
            frontier = self._sampler.prefix(inputs)
            kinds = self._output_kinds
            parts.extend(
                _mc_batches.sample_batch(
                    self._sampler, frontier, self.samples, rows, kinds, keep_samples, blocks, self._structure
                )
            )
            self._warn_once(stacklevel=3)
            done += _mc_inputs.batch_size_of(inputs)
            if verbose != 0:
                bar.update(done)
        if not parts:
            raise ValueError("MCDropout.predict received no inputs (an empty array, dataset or generator).")
        if verbose != 0 and target is None:
            bar.update(done, finalize=True)
        return _mc_batches.results(parts, self._kinds, self.samples, self._structure(), self.consistent)

    def _default_batch_size(self, x):
        rows = self.rows_per_call(keras.tree.map_structure(lambda array: array[:1], x))[1]
        return max(32, rows // self.samples if self.vectorized else rows)

    def export(self, path, input_signature=None):
        """Writes a TensorFlow SavedModel that serves these Monte Carlo predictions, for TF Serving and the like.

        Its ``serve(x)`` endpoint (also the ``serving_default`` signature) draws ``samples`` samples of each input
        and returns a dict of float32 tensors: ``mean`` and ``variance``, and for probability outputs
        ``predictive_entropy``, ``expected_entropy`` and ``mutual_information``; with several outputs the keys are
        prefixed with the output's key or index (``"0_mean"``). Each call draws new samples; with an int ``seed``
        the first call draws the samples ``predict`` draws. The SavedModel runs with TensorFlow alone, no kerasdrop
        needed: ``loaded = tf.saved_model.load(path)``, then ``loaded.serve(x)`` (keep ``loaded``: its variables
        live as long as it does).

        The chunk size (samples a call) is set from the memory budget for the whole batch of a call, with sizes
        that are unknown in the model's input shapes counted as 1: split very large batches before serving.

        Args:
            path: a folder that does not exist yet, or an empty one.
            input_signature: None (from the model's inputs), or a ``tf.TensorSpec`` (a list of them for several
                inputs) with the batch axis None: needed for subclassed models without ``model.inputs``.
        """
        from kerasdrop import _mc_export

        _mc_export.export(self, path, input_signature)

    def _standardize(self, batch):
        """Model inputs as tensors: for a graph model a list in the order of its inputs, checked against their specs."""
        if not self._sampler.plan.functional:
            return keras.tree.map_structure(ops.convert_to_tensor, batch)
        symbolic = self._sampler.plan.inputs
        values = _mc_inputs.ordered_inputs(self.model, symbolic, batch)
        return [ops.convert_to_tensor(value, dtype=t.dtype) for t, value in zip(symbolic, values, strict=True)]


def kerasdrop_layers(model_or_layer):
    """Every kerasdrop stochastic layer inside ``model_or_layer`` (itself included), recursively."""
    return [layer for layer in _compat.flatten_layers(model_or_layer) if isinstance(layer, StochasticLayer)]


def set_mc(model_or_layer, enabled=True):
    """Switches Monte Carlo mode on (or off) for every kerasdrop layer inside ``model_or_layer``.

    The cached train/test/predict functions of every model inside are dropped, so the next `predict` or `fit`
    traces again and the switch takes effect at once. Returns the number of layers switched.

    Args:
        model_or_layer: a Keras model or layer.
        enabled: bool, the new `mc` value.
    """
    enabled = check_bool("enabled", enabled)
    switched = 0
    for layer in _compat.flatten_layers(model_or_layer):
        if isinstance(layer, StochasticLayer):
            layer.mc = enabled
            switched += 1
        _compat.reset_compiled_functions(layer)  # models among them retrace predict/fit
    return switched
