"""Many small regression networks trained side by side as one Keras model, for `uci_regression.py`.

Gal & Ghahramani's UCI protocol trains, per data set, one network per (split, dropout rate, τ): 20 × 12 networks of
one hidden layer, each for 4,000 epochs of a few hundred rows. One Keras ``fit`` per network spends its time in
Python between tiny steps. Here the networks of all splits and all configurations are one model whose weights are
stacked, ``kernel1 (S, G, D, H)``, ``bias1 (S, G, H)``, ``kernel2 (S, G, H, O)``, ``bias2 (S, G, O)``: network
``(s, g)`` is split ``s`` with configuration ``g``. A batch holds, for every split, ``batch`` rows of that split's
own training set, ``x (batch, S, D)`` and ``y (batch, S, 1)``; every configuration of a split sees the split's rows.
The loss is the sum over the networks of each one's own loss, so each network's gradient is exactly its own, and
Adam, which works element by element, moves each network as it would alone: side by side equals one by one, up to
floating point (the example's test checks it).

`StackedModel.train` runs whole epochs in one XLA-compiled call (a ``tf.while_loop`` over epochs, one over batches,
the Keras model's own call, loss and Adam inside), the batch order drawn in the loop (`epoch_order`). Dropout masks
come from a counter-based hash (`hash_uniform`) of (step key, network, row, unit): TensorFlow's Philox uniforms cost
more than the rest of a step on CPU, and far more under XLA. A network's masks and initial weights depend only on its
own id and the seed, so a network trained alone, or in another stack, with the same id, is the same network. Why
and what was measured: ``docs/design.md``, "UCI regression: many small networks as one model".
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops
from scipy.special import logit

LENGTH_SCALE = 1e-2
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
# Epochs per compiled training call (the calls are cheap: this only bounds the time between two Python returns).
EPOCHS_PER_CALL = 500
# Elements of the hidden activations ``(S, G, rows, H)`` one compiled sampling call may hold (32 MiB of float32).
SAMPLE_BUDGET = 8 * 2**20
# Concrete dropout's initial rate and temperature (Gal, Hron & Kendall 2017's code, kerasdrop's defaults).
CONCRETE_INIT_RATE = 0.1
CONCRETE_TEMPERATURE = 0.1  # `StackedNetworks` computes the relaxed mask for this temperature (a power of 10)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _mix32(value):
    """Wellons's "lowbias32" integer hash: a bijection of uint32 whose output bits each flip with probability
    about 1/2 when any input bit flips."""
    value = ops.bitwise_xor(value, ops.right_shift(value, 16))
    value = value * np.uint32(0x7FEB352D)
    value = ops.bitwise_xor(value, ops.right_shift(value, 15))
    value = value * np.uint32(0x846CA68B)
    return ops.bitwise_xor(value, ops.right_shift(value, 16))


def hash_bits(key, network_ids, rows, units):
    """Random uint32 ``(S, G, rows, units)`` for the networks ``network_ids`` (uint32 ``(S, G)``).

    Entry ``(s, g, r, u)`` is a hash of the key (two integers, e.g. a ``SeedGenerator`` state), the network's id
    and the counter ``r * units + u``: two keyed rounds of `_mix32`, whose keys depend on the network and the
    key, so that networks and steps draw unrelated streams.
    """
    key = ops.cast(key, "uint32")
    stream = _mix32(ops.bitwise_xor(ops.cast(network_ids, "uint32"), _mix32(key[0])))
    second = _mix32(ops.bitwise_xor(stream, key[1]))[:, :, None, None]
    stream = stream[:, :, None, None]
    counter = ops.cast(ops.arange(rows * units, dtype="int32"), "uint32")
    counter = ops.reshape(counter, (1, 1, rows, units))
    return _mix32(ops.bitwise_xor(_mix32(ops.bitwise_xor(counter, stream)), second))


def unit_interval(bits):
    """uint32 -> float32 in (0, 1): the top 23 bits ``k``, centred, ``(k + 1/2) / 2**23``; exact in float32, so
    never 0 or 1 (with 24 bits the largest would round to 1, and ``u / (1 - u)`` be infinite)."""
    return (ops.cast(ops.right_shift(bits, 9), "float32") + 0.5) * (1.0 / 2**23)


def hash_uniform(key, network_ids, rows, units):
    """Uniform floats in (0, 1) (`unit_interval`) of `hash_bits`."""
    return unit_interval(hash_bits(key, network_ids, rows, units))


def _glorot(seed, network_ids, fan_in, fan_out, layer):
    """Keras's ``glorot_uniform`` for the ``Dense`` kernels ``(fan_in, fan_out)`` of the networks ``network_ids``:
    U(-limit, limit), ``limit = √(6 / (fan_in + fan_out))``, drawn with `hash_uniform` from the network's id, so
    that a network starts from the same weights in any stack."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    key = np.array([seed, 2**32 - 1 - layer], dtype="uint32")  # counters the training keys never reach

    def initializer(shape, dtype=None):
        return (2.0 * hash_uniform(key, network_ids, fan_in, fan_out) - 1.0) * limit

    return initializer


class StackedNetworks(keras.layers.Layer):
    """``S × G`` networks ``Dropout(p) → Dense(H, relu) → Dropout(p) → Dense(O)`` applied side by side.

    Network ``(s, g)`` reads split ``s`` of the input ``x (batch, S, D)`` and writes ``(batch, S, G, O)``. Each has
    its own dropout rate: a Bernoulli mask ``u < 1 - p`` with inverted scaling ``1 / (1 - p)`` (as
    ``keras.layers.Dropout``), or, with ``concrete=True``, Gal, Hron & Kendall's relaxed mask with a learned rate
    per network and layer (as `kerasdrop.ConcreteDropout`): ``z = sigmoid((logit p + log u - log(1 - u)) / t)``,
    the input scaled by ``(1 - z) / (1 - p)``, ``p = sigmoid(p_logit)``.

    Args:
        rates: float array ``(S, G)`` in [0, 1): the dropout rates (the initial rates with ``concrete``).
        features: int, the inputs ``D`` of a network.
        hidden: int, the hidden units ``H``.
        outputs: int, the outputs ``O`` (2 for a mean and a log variance).
        concrete: bool, learn the rates (Concrete dropout) instead of fixing them.
        seed: int, seeds the initial weights and the masks.
        first_id: int, the id of network ``(0, 0)``; the others follow in row-major order. Masks depend only on
            a network's id (and the step), so a network trained alone with the same id draws the same masks.
    """

    def __init__(self, rates, features, hidden=50, outputs=1, concrete=False, seed=0, first_id=0, **kwargs):
        super().__init__(**kwargs)
        self.rates = np.asarray(rates, dtype="float32")
        if self.rates.ndim != 2 or not ((self.rates >= 0) & (self.rates < 1)).all():
            raise ValueError(f"rates must be an (S, G) array in [0, 1); received {rates!r}")
        self.splits, self.configs = self.rates.shape
        self.features, self.hidden, self.outputs = int(features), int(hidden), int(outputs)
        self.concrete = bool(concrete)
        self.seed = int(seed)
        self.first_id = int(first_id)
        count = self.splits * self.configs
        self.network_ids = np.arange(first_id, first_id + count, dtype="uint32").reshape(self.rates.shape)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        stack = (self.splits, self.configs)
        d, h, o = self.features, self.hidden, self.outputs
        self.kernel1 = self.add_weight(
            name="kernel1", shape=(*stack, d, h), initializer=_glorot(self.seed, self.network_ids, d, h, 0)
        )
        self.bias1 = self.add_weight(name="bias1", shape=(*stack, h), initializer="zeros")
        self.kernel2 = self.add_weight(
            name="kernel2", shape=(*stack, h, o), initializer=_glorot(self.seed, self.network_ids, h, o, 1)
        )
        self.bias2 = self.add_weight(name="bias2", shape=(*stack, o), initializer="zeros")
        if self.concrete:
            initial = np.full((*stack, 2), logit(CONCRETE_INIT_RATE), dtype="float32")
            self.p_logit = self.add_weight(
                name="p_logit", shape=(*stack, 2), initializer=keras.initializers.Constant(initial)
            )

    def kernels(self):
        return [self.kernel1, self.kernel2]

    def subset(self, split, config=None):
        """A built copy of the networks of split ``split`` (all its configurations, or configuration ``config``
        alone): same ids, weights and seed state, so it computes and draws what they do in the stack."""
        configs = slice(None) if config is None else slice(config, config + 1)
        first_id = int(self.network_ids[split, configs][0])
        copy = StackedNetworks(
            self.rates[split : split + 1, configs],
            self.features,
            self.hidden,
            self.outputs,
            self.concrete,
            self.seed,
            first_id,
        )
        copy.build(None)
        for source, target in zip(self.weights, copy.weights, strict=True):
            target.assign(ops.convert_to_numpy(source)[split : split + 1, configs])
        copy.seed_generator.state.assign(self.seed_generator.state.value)
        return copy

    def dropout_rates(self):
        """``(S, G, 2)``: each network's rate before its hidden layer and before its output layer."""
        if self.concrete:
            return ops.sigmoid(self.p_logit)
        return ops.convert_to_tensor(np.repeat(self.rates[..., None], 2, axis=-1))

    def _drop(self, inputs, layer, key):
        """Drops entries of ``inputs (S, G, rows, units)`` with each network's mask of dropout layer ``layer``."""
        rows, units = ops.shape(inputs)[2], ops.shape(inputs)[3]
        u = hash_uniform(key, self.network_ids, rows, units)
        if self.concrete:
            # 1 - z = 1 / (1 + exp((logit p + log u - log(1 - u)) / t)) = 1 / (1 + (odds(p) odds(u))^(1/t)), and
            # 1 / (1 - p) = 1 + odds(p): with 1/t = 10, products only, no logarithm or exponential per entry (a
            # third less time a step than the logarithms). The odds are clipped to [1e-3, 1e3], where 1 - z is within
            # 1e-30 of 1 or of 0 already, so that neither the power nor its gradient overflows.
            odds = ops.exp(self.p_logit[:, :, layer, None, None])
            base = ops.clip(odds * (u / (1.0 - u)), 1e-3, 1e3)
            squared = base * base
            kept = 1.0 / (1.0 + ops.square(ops.square(squared)) * squared)  # base ** 10
            return inputs * (kept * (1.0 + odds))
        keep = ops.convert_to_tensor(1.0 - self.rates[:, :, None, None])
        return ops.where(u < keep, inputs / keep, 0.0)

    def forward(self, inputs, keys):
        """``inputs (S, G, rows, D)`` -> ``(S, G, rows, O)``; ``keys`` = two mask keys, or None (no dropout)."""
        if keys is not None:
            inputs = self._drop(inputs, 0, keys[0])
        hidden = ops.relu(ops.matmul(inputs, self.kernel1) + self.bias1[:, :, None, :])
        if keys is not None:
            hidden = self._drop(hidden, 1, keys[1])
        return ops.matmul(hidden, self.kernel2) + self.bias2[:, :, None, :]

    def call(self, x, training=False):
        """``x (batch, S, D)`` -> ``(batch, S, G, O)``; dropout only with ``training=True``."""
        batch = ops.shape(x)[0]
        inputs = ops.broadcast_to(
            ops.transpose(x, (1, 0, 2))[:, None], (self.splits, self.configs, batch, self.features)
        )
        keys = (self.seed_generator.next(), self.seed_generator.next()) if training else None
        return ops.transpose(self.forward(inputs, keys), (2, 0, 1, 3))

    def sample(self, x, samples, keys):
        """``samples`` stochastic passes of ``x (rows, S, D)`` -> ``(S, G, samples, rows, O)``, the masks of the two
        dropout layers drawn from ``keys`` (two pairs of integers)."""
        rows = ops.shape(x)[0]
        inputs = ops.transpose(x, (1, 0, 2))[:, None, None]
        inputs = ops.broadcast_to(inputs, (self.splits, self.configs, samples, rows, self.features))
        inputs = ops.reshape(inputs, (self.splits, self.configs, samples * rows, self.features))
        outputs = self.forward(inputs, keys)
        return ops.reshape(outputs, (self.splits, self.configs, samples, rows, self.outputs))


class StackedModel(keras.Model):
    """`StackedNetworks` trained on the sum over its networks of each one's loss.

    Each network's loss is its data term, averaged over the batch, on normalised targets: the squared error
    ``(y - ŷ)²`` (``likelihood="squared_error"``), or for a mean and log variance head the Gaussian negative
    log-likelihood ``0.5 (log σ² + (y - μ)² / σ²)`` (``"gaussian"``), plus its regulariser: ``weight_decay · Σ W²``
    over both kernels (not the biases), or with Concrete dropout, per dropout layer, Gal, Hron & Kendall's
    ``weight_regularizer · ‖W‖² / (1 - p) + dropout_regularizer · K · (p log p + (1 - p) log(1 - p))``, ``W`` the
    kernel of the layer the dropout feeds and ``K`` its input units (`kerasdrop.ConcreteDropout.regularization`).

    Args:
        networks: a `StackedNetworks`.
        likelihood: "squared_error" or "gaussian".
        weight_decay: float array ``(S, G)``, each network's L2 coefficient (ignored with Concrete dropout).
        concrete_regularizers: with Concrete dropout, ``(weight_regularizer, dropout_regularizer)``, two float
            arrays ``(S, G)`` (`kerasdrop.concrete_regularizers` of each network's ``N`` and ``τ``).
    """

    def __init__(self, networks, likelihood="squared_error", weight_decay=None, concrete_regularizers=None, **kwargs):
        super().__init__(**kwargs)
        if likelihood not in ("squared_error", "gaussian"):
            raise ValueError(f"likelihood must be 'squared_error' or 'gaussian'; received {likelihood!r}")
        self.networks = networks
        self.likelihood = likelihood
        self._epochs_function = None
        stack = networks.rates.shape
        self.weight_decay = np.zeros(stack, "float32") if weight_decay is None else np.asarray(weight_decay, "float32")
        if networks.concrete:
            self.weight_regularizer, self.dropout_regularizer = (
                np.asarray(c, "float32") for c in concrete_regularizers
            )

    def call(self, x, training=False):
        return self.networks(x, training=training)

    def data_terms(self, y, y_pred):
        """``(S, G)``: each network's data term averaged over the batch; ``y (batch, S, 1)``."""
        target = y[:, :, None, 0]
        if self.likelihood == "squared_error":
            return ops.mean(ops.square(target - y_pred[..., 0]), axis=0)
        # kerasdrop.losses.GaussianNLL's terms, per network of the stack, without its clip of the log variance to
        # [-20, 20] (standard deviations from 4.5e-5 to 2.2e4 times that of the normalised targets).
        mean, log_variance = y_pred[..., 0], y_pred[..., 1]
        return ops.mean(0.5 * (log_variance + ops.square(target - mean) * ops.exp(-log_variance)), axis=0)

    def penalties(self):
        """``(S, G)``: each network's regulariser."""
        squares = [ops.sum(ops.square(kernel), axis=(2, 3)) for kernel in self.networks.kernels()]
        if not self.networks.concrete:
            return self.weight_decay * (squares[0] + squares[1])
        p_logit = self.networks.p_logit
        rate, keep = ops.sigmoid(p_logit), ops.sigmoid(-p_logit)
        negative_entropy = rate * -ops.softplus(-p_logit) + keep * -ops.softplus(p_logit)
        units = (self.networks.features, self.networks.hidden)
        total = 0.0
        for layer in range(2):
            total = total + self.weight_regularizer * squares[layer] / keep[..., layer]
            total = total + self.dropout_regularizer * units[layer] * negative_entropy[..., layer]
        return total

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return ops.sum(self.data_terms(y, y_pred)) + ops.sum(self.penalties())

    def _step(self, x, y):
        """One Adam step on a batch; returns the loss."""
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            loss = self.compute_loss(y=y, y_pred=self(x, training=True))
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        return loss

    def _epochs(self, x, y, first, count, seed):
        """Epochs ``first, …, first + count - 1``: each a permutation of the rows (`epoch_order`), batches of
        `BATCH_SIZE` and a last partial one. Returns the mean loss of the last epoch's steps."""
        rows = x.shape[0]
        full, rest = divmod(rows, BATCH_SIZE)

        def batch(order, start, size):
            index = ops.slice(order, [start], [size])
            return ops.take(x, index, axis=0), ops.take(y, index, axis=0)

        def epoch(index, _):
            order = epoch_order(rows, seed, first + index)
            step = lambda i, total: (i + 1, total + self._step(*batch(order, i * BATCH_SIZE, BATCH_SIZE)))  # noqa: E731
            total = tf.constant(0.0)
            if full:
                _, total = tf.while_loop(lambda i, _: i < full, step, (tf.constant(0), total))
            if rest:
                total = total + self._step(*batch(order, full * BATCH_SIZE, rest))
            return index + 1, total / (full + (rest > 0))

        return tf.while_loop(lambda index, _: index < count, epoch, (tf.constant(0), tf.constant(0.0)))[1]

    def train(self, x, y, epochs, seed, epochs_per_call=EPOCHS_PER_CALL):
        """Trains on ``x (rows, S, D)``, ``y (rows, S, 1)`` for ``epochs`` epochs: every step of ``epochs_per_call``
        epochs runs in one XLA-compiled call (one ``tf.while_loop`` over epochs, one over batches). Each epoch is
        one permutation of the rows, applied to every split's own row order. Returns the steps and the mean loss of
        the last epoch."""
        if self._epochs_function is None:
            self._epochs_function = tf.function(self._epochs, jit_compile=True)
        x, y = tf.constant(x, "float32"), tf.constant(y, "float32")
        loss = None
        for first in range(0, epochs, epochs_per_call):
            count = min(epochs_per_call, epochs - first)
            loss = self._epochs_function(x, y, tf.constant(first), tf.constant(count), tf.constant(seed))
        return epochs * -(-len(x) // BATCH_SIZE), float(loss)


def epoch_order(rows, seed, epoch):
    """The order of the rows in epoch ``epoch``: a uniformly random permutation of ``range(rows)``, the ranks of
    32-bit `hash_bits` keyed by ``(seed, epoch)`` (a tensor; traced or eager)."""
    key = ops.stack([ops.cast(seed, "uint32"), ops.cast(epoch, "uint32")])
    return ops.argsort(ops.cast(hash_bits(key, np.zeros((1, 1), "uint32"), 1, rows)[0, 0, 0], "int64"))


def build(networks, **losses):
    """A `StackedModel` of ``networks`` with Adam (learning rate 1e-3), built."""
    model = StackedModel(networks, **losses)
    model(np.zeros((1, networks.splits, networks.features), "float32"))
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    model.optimizer.build(model.trainable_variables)
    return model


class Scorer:
    """Monte Carlo log-likelihood and RMSE of every network of a `StackedNetworks` on held-out rows.

    ``samples`` stochastic passes per row, ``ŷ_t`` de-normalised with each split's target mean and std; per row
    the log-likelihood ``logsumexp_t(-τ/2 (y - ŷ_t)²) - log T - ½ log 2π + ½ log τ`` (``τ`` each network's
    precision), or for a mean and log variance head ``logsumexp_t log N(y; μ_t, σ_t²) - log T``; the RMSE is that
    of the mean of the samples. The samples are drawn in compiled blocks under `SAMPLE_BUDGET` and never kept:
    each block's log-sum-exp (TensorFlow's ``reduce_logsumexp``, over the block's samples) is folded into a running
    one inside the compiled loop; the calls' results are joined with ``scipy.special.logsumexp``.

    Args:
        networks: a `StackedNetworks`.
        seed: int, the first key of the masks (the networks' own training masks use their own seed).
    """

    def __init__(self, networks, seed):
        self.networks = networks
        self.seed = int(seed)
        self._calls = 0
        self._run = tf.function(self._blocks, jit_compile=True)

    def _blocks(self, x, y, mean, std, precision, block_samples, blocks, first_key):
        networks = self.networks
        shape = (networks.splits, networks.configs, ops.shape(x)[0])

        def body(index, log_sum, total):
            key = first_key + 2 * index
            keys = (ops.stack([self.seed, key]), ops.stack([self.seed, key + 1]))
            outputs = networks.sample(x, block_samples, keys)
            mean_t = outputs[..., 0] * std[:, None, None, None] + mean[:, None, None, None]
            target = ops.transpose(y)[:, None, None, :]
            if networks.outputs == 1:
                terms = -0.5 * precision[:, :, None, None] * ops.square(target - mean_t)
            else:
                # log σ² = log variance + 2 log std: one exponential per entry, no logarithm.
                log_variance = outputs[..., 1] + 2.0 * ops.log(std)[:, None, None, None]
                error = ops.square(target - mean_t) * ops.exp(-log_variance)
                terms = -0.5 * (math.log(2.0 * math.pi) + log_variance + error)
            block = tf.reduce_logsumexp(terms, axis=2)
            log_sum = tf.reduce_logsumexp(ops.stack([log_sum, block]), axis=0)
            return index + 1, log_sum, total + ops.sum(mean_t, axis=2)

        start = (tf.constant(0), tf.fill(shape, -np.inf), tf.zeros(shape))
        _, log_sum, total = tf.while_loop(lambda index, *_: index < blocks, body, start)
        return log_sum, total

    def score(self, x, y, mean, std, samples, precision=None):
        """``(log_likelihood, rmse)``, each ``(S, G)``, averaged over the rows of ``x (rows, S, D)`` (normalised
        inputs), ``y (rows, S)`` (targets in their units); ``mean``, ``std`` ``(S,)`` normalise the targets;
        ``precision (S, G)`` is each network's τ (None for a mean and log variance head)."""
        from scipy.special import logsumexp

        networks = self.networks
        width = networks.splits * networks.configs * max(networks.hidden, networks.features)
        rows_per_call = max(1, min(len(x), SAMPLE_BUDGET // width))
        block = max(1, min(samples, SAMPLE_BUDGET // (width * rows_per_call)))
        runs = [(block, samples // block)] + ([(samples % block, 1)] if samples % block else [])
        precision = np.ones(networks.rates.shape) if precision is None else precision
        constants = [tf.constant(value, "float32") for value in (mean, std, precision)]
        log_sums, totals = [], []
        for start in range(0, len(x), rows_per_call):
            parts = slice(start, start + rows_per_call)
            x_part, y_part = tf.constant(x[parts], "float32"), tf.constant(y[parts], "float32")
            pieces = []
            for block_samples, blocks in runs:
                first_key = tf.constant(self._calls, "int32")
                pieces.append(self._run(x_part, y_part, *constants, block_samples, tf.constant(blocks), first_key))
                self._calls += 2 * blocks
            log_sums.append(logsumexp(np.stack([np.asarray(p[0], "float64") for p in pieces]), axis=0))
            totals.append(sum(np.asarray(p[1], "float64") for p in pieces))
        log_sum, total = np.concatenate(log_sums, axis=-1), np.concatenate(totals, axis=-1)
        per_row = log_sum - math.log(samples)
        if networks.outputs == 1:
            per_row = per_row - _HALF_LOG_2PI + 0.5 * np.log(precision)[:, :, None]
        errors = np.asarray(y, "float64").T[:, None, :] - total / samples
        return per_row.mean(axis=-1), np.sqrt(np.mean(np.square(errors), axis=-1))
