"""What `kerasdrop.MCDropout` makes of a model's outputs: their type (probabilities, logits, regression), the
per-sample transform and entropies, the running moments, and the result object, `MCDropoutResult`."""

import warnings

import keras
import numpy as np
from keras import ops

from kerasdrop import _compat
from kerasdrop._validation import _message

OUTPUT_TYPES = ("auto", "probabilities", "logits", "regression")


class OutputKind:
    """How one output is read.

    Attributes:
        output_type: "probabilities", "logits" or "regression" (after "auto" is decided).
        transform: None, "softmax" or "sigmoid": applied to each sample before the moments.
        entropy: None, "categorical" (one distribution over the last axis), "binary" (each unit of the last axis a
            Bernoulli probability; their entropies add up) or "bernoulli" (an output of rank 1: one Bernoulli
            probability per input).
    """

    def __init__(self, output_type, units, activation=None):
        self.output_type = output_type
        self.transform = None
        self.entropy = None
        binary = "bernoulli" if units is None else "binary"
        if output_type == "logits":
            self.transform = "sigmoid" if units in (None, 1) else "softmax"
            self.entropy = binary if units in (None, 1) else "categorical"
        elif output_type == "probabilities":
            self.entropy = binary if units in (None, 1) or activation == "sigmoid" else "categorical"

    def __repr__(self):
        return f"OutputKind({self.output_type!r}, transform={self.transform!r}, entropy={self.entropy!r})"


def _activation_name(tensor):
    """ "softmax", "sigmoid" or None: the activation that produced a symbolic output tensor."""
    operation = _compat.producing_operation(tensor)
    if isinstance(operation, keras.Model):
        graph = _compat.functional_graph(operation)
        if graph is None:
            return None
        return _activation_name(graph[1][tensor._keras_history.tensor_index])
    while isinstance(getattr(operation, "layer", None), keras.layers.Layer):  # TimeDistributed and other wrappers
        operation = operation.layer
    if operation is None:
        return None
    if isinstance(operation, keras.layers.Softmax) or type(operation).__name__ in ("Softmax", "Sigmoid"):
        return "softmax" if "Softmax" in type(operation).__name__ else "sigmoid"  # a layer, or a keras.ops node
    name = getattr(getattr(operation, "activation", None), "__name__", None)
    return {"softmax": "softmax", "softmax_v2": "softmax", "sigmoid": "sigmoid"}.get(name)


def _check_type(value, requested):
    if not isinstance(value, str) or value not in OUTPUT_TYPES:
        raise ValueError(_message("output_type", f"one of {OUTPUT_TYPES}, or a list/dict of them", requested))
    return value


def check_output_type(output_type):
    """The ``output_type`` argument with each entry checked (its structure is checked against the outputs later)."""
    if isinstance(output_type, dict):
        for value in output_type.values():
            _check_type(value, output_type)
    elif isinstance(output_type, (list, tuple)):
        if not output_type:
            raise ValueError(_message("output_type", "a string, or a non-empty list/dict", output_type))
        for value in output_type:
            _check_type(value, output_type)
    else:
        _check_type(output_type, output_type)
    return output_type


def output_kinds(output_type, structure, tensors, model_name):
    """One `OutputKind` per output, in flat order.

    Args:
        output_type: the checked ``output_type`` argument: a string, a list, or a dict keyed like the outputs.
        structure: the model's output structure (a tensor, a list or a dict of them).
        tensors: the flat list of output tensors (symbolic ones tell their activation; any give their last axis).
        model_name: for messages.
    """
    flat_types = _flat_types(output_type, structure, model_name)
    kinds = []
    for index, (requested, tensor) in enumerate(zip(flat_types, tensors, strict=True)):
        activation = _activation_name(tensor) if isinstance(tensor, keras.KerasTensor) else None
        if requested == "logits" and activation is not None:
            name = output_name(structure, index, len(flat_types))
            raise ValueError(
                f"Invalid value received for argument `output_type`: 'logits' for {name} of model {model_name!r}, "
                f"whose activation is {activation}: its values are already probabilities, and reading them as "
                f"logits would apply {'softmax' if activation == 'softmax' else 'a sigmoid'} twice (mutual "
                "information far too small). Pass output_type='probabilities' (or 'auto') for it."
            )
        if requested == "auto":
            requested = "probabilities" if activation is not None else "regression"
        units = tensor.shape[-1] if len(tensor.shape) > 1 else None  # None: rank 1, no units axis
        kinds.append(OutputKind(requested, units, activation))
    return kinds


def _flat_types(output_type, structure, model_name):
    count = len(keras.tree.flatten(structure))
    if isinstance(output_type, str):
        return [output_type] * count
    if isinstance(output_type, dict):
        if not isinstance(structure, dict) or set(output_type) != set(structure):
            keys = sorted(structure) if isinstance(structure, dict) else None
            raise ValueError(
                _message("output_type", f"one string, or a dict with the keys of the outputs ({keys})", output_type)
                + f" (model {model_name!r} has {count} output(s))"
            )
        return keras.tree.flatten({key: output_type[key] for key in structure})
    if isinstance(structure, dict):
        raise ValueError(
            _message(
                "output_type", f"one string, or a dict with the keys of the outputs ({sorted(structure)})", output_type
            )
            + f" (model {model_name!r} has a dict of outputs: a list would depend on their order)"
        )
    if len(output_type) != count:
        raise ValueError(
            _message("output_type", f"one string, or a list of {count} (one per output)", output_type)
            + f" (model {model_name!r} has {count} output(s))"
        )
    return list(output_type)


def _x_log_x(p, xp):
    positive = p > 0
    return xp.where(positive, p * xp.log(xp.where(positive, p, 1.0)), 0.0)


def entropy(probs, kind, xp=ops):
    """Entropy in nats of probabilities read as ``kind`` (see `OutputKind`), NaN where a value is not finite.

    "categorical" reduces the last axis; "binary" adds up the Bernoulli entropies of the last axis; "bernoulli"
    gives one entropy per value. ``xp`` is ``keras.ops`` (tensors) or NumPy (arrays, in their own dtype).
    """
    probs = ops.convert_to_tensor(probs) if xp is ops else np.asarray(probs)
    finite = xp.isfinite(probs)
    p = xp.clip(probs, 0.0, 1.0)
    if kind == "categorical":
        value = -xp.sum(_x_log_x(p, xp), axis=-1)
    else:
        value = -(_x_log_x(p, xp) + _x_log_x(1.0 - p, xp))
    if kind in ("categorical", "binary"):
        finite = xp.all(finite, axis=-1)
        value = value if kind == "categorical" else xp.sum(value, axis=-1)
    return xp.where(finite, value, float("nan"))


def chunk_moments(samples, entropies=None, xp=ops):
    """Of samples ``(k, N, ...)``: mean and sum of squared deviations over the k samples, the sum of the samples'
    entropies ``(N, ...)`` (zeros without), and which inputs had only finite values, all in float64.

    ``xp`` is ``keras.ops`` (inside a compiled program) or NumPy (on the host: JAX computes float64 only with its
    x64 mode on, and would give float32 with a warning)."""

    def as_float64(values):
        if xp is np:
            return np.asarray(values, "float64")
        return ops.cast(ops.convert_to_tensor(values), "float64")

    samples = as_float64(samples)
    mean = xp.mean(samples, axis=0)
    m2 = xp.sum(xp.square(samples - mean), axis=0)
    finite = xp.isfinite(samples)
    finite = xp.all(xp.reshape(finite, (xp.shape(finite)[0], xp.shape(finite)[1], -1)), axis=(0, 2))
    if entropies is None:
        entropy_sum = xp.zeros_like(finite, "float64")
    else:
        entropy_sum = xp.sum(as_float64(entropies), axis=0)
    return mean, m2, entropy_sum, finite


def mask_rows(value, finite, xp=ops):
    """``value`` with NaN in the rows (first axis) where ``finite`` is False (``xp``: as in `chunk_moments`)."""
    rows = xp.reshape(finite, (-1,) + (1,) * (len(value.shape) - 1))
    return xp.where(rows, value, float("nan"))


def output_name(structure, index, count):
    """How messages name output ``index`` of ``count``: "the output", or "output 'key'"."""
    if count == 1:
        return "the output"
    return f"output {output_keys(structure, count)[index]!r}"


# How far probabilities may stray from [0, 1] and from a sum of 1: beyond float16 and bfloat16 rounding of a softmax.
_PROBABILITY_TOLERANCE = 1e-2


def check_probability_values(samples, kind, name):
    """Raises a clear ``ValueError`` when the samples of an output read as probabilities are not: a value below 0
    or above 1, or (one distribution over the last axis) a row whose sum is not 1, beyond float16 rounding.
    Rows with a non-finite value are left to the non-finite handling. ``name()`` names the output, for the message."""
    if kind.output_type != "probabilities" or samples.size == 0:
        return
    low, high = float(samples.min()), float(samples.max())
    if not (np.isfinite(low) and np.isfinite(high)):  # rare: only then the copy that leaves non-finite values out
        values = samples[np.isfinite(samples)]
        if values.size == 0:
            return
        low, high = float(values.min()), float(values.max())
    problem = None
    if low < -_PROBABILITY_TOLERANCE or high > 1 + _PROBABILITY_TOLERANCE:
        problem = f"values in [{low:.4g}, {high:.4g}]"
    elif kind.entropy == "categorical":
        sums = samples.sum(axis=-1)
        sums = sums[np.isfinite(sums)]
        if sums.size and np.abs(sums - 1.0).max() > _PROBABILITY_TOLERANCE:
            problem = f"rows summing to values in [{float(sums.min()):.4g}, {float(sums.max()):.4g}]"
    if problem is not None:
        raise ValueError(
            f"Invalid value received for argument `output_type`: 'probabilities' for {name()}, whose samples are not "
            f"probabilities ({problem}). Pass output_type='logits' for an output without softmax or sigmoid (each "
            "sample then goes through softmax, or a sigmoid for one unit), or 'regression'."
        )


def output_keys(structure, count):
    """Names of the outputs, in flat order: the dict keys, or "0", "1", ... for a list."""
    if isinstance(structure, dict):
        return [str(key) for key in keras.tree.flatten({key: key for key in structure})]
    return [str(index) for index in range(count)]


def postprocess(outputs, kinds):
    """Per output: its samples in float32 (softmax/sigmoid applied for logits), then, for probability outputs, the
    entropy of each sample. A flat list of tensors."""
    flat = []
    for output, kind in zip(outputs, kinds, strict=True):
        values = ops.cast(output, "float32")
        if kind.transform == "softmax":
            values = ops.softmax(values, axis=-1)
        elif kind.transform == "sigmoid":
            values = ops.sigmoid(values)
        flat.append(values)
        if kind.entropy is not None:
            flat.append(entropy(values, kind.entropy))
    return flat


def split(flat, kinds):
    """The inverse of `postprocess`'s flattening: a list of ``(samples, entropies or None)``, one per output."""
    pairs, index = [], 0
    for kind in kinds:
        entropies = flat[index + 1] if kind.entropy is not None else None
        pairs.append((flat[index], entropies))
        index += 2 if kind.entropy is not None else 1
    return pairs


def merge_moments(count_a, mean_a, m2_a, count_b, mean_b, m2_b):
    """Mean and sum of squared deviations of two groups merged (Chan et al.): works on arrays and tensors alike."""
    total = count_a + count_b
    delta = mean_b - mean_a
    return mean_a + delta * (count_b / total), m2_a + m2_b + delta * delta * (count_a * count_b / total)


class Moments:
    """Running mean, sum of squared deviations and mean entropy over chunks of samples ``(k, N, ...)``, in float64,
    and which inputs (rows) gave a non-finite value in any sample."""

    def __init__(self, keep_samples):
        self.count = 0
        self.mean = self.m2 = self.entropy = self.finite = None
        self.kept = [] if keep_samples else None

    def add(self, samples, entropies=None):
        if self.kept is not None:
            self.kept.append(samples)
        samples = ops.convert_to_numpy(samples)
        chunk = chunk_moments(samples, None if entropies is None else ops.convert_to_numpy(entropies), xp=np)
        if self.count == 0:
            self.mean, self.m2, self.entropy, self.finite = chunk
        else:
            self.mean, self.m2 = merge_moments(self.count, self.mean, self.m2, len(samples), chunk[0], chunk[1])
            self.entropy = self.entropy + chunk[2]
            self.finite = self.finite & chunk[3]
        self.count += len(samples)


def result_from(parts, kind, num_samples, name, consistent=False):
    """The `MCDropoutResult` of one output from its `Moments`, one per input batch; rows with a non-finite sample
    get NaN moments and entropies, with a warning that counts them."""
    finite = np.concatenate([part.finite for part in parts])
    mean = mask_rows(np.concatenate([part.mean for part in parts]), finite, xp=np)
    variance = mask_rows(np.concatenate([part.m2 / part.count for part in parts]), finite, xp=np)
    expected = None
    if kind.entropy is not None:
        expected = np.concatenate([part.entropy / part.count for part in parts])
        expected = mask_rows(expected, finite, xp=np).astype("float32")
    if not finite.all():
        warnings.warn(
            f"MCDropout: {int((~finite).sum())} of {len(finite)} inputs gave a NaN or inf in at least one sample of "
            f"{name}; their moments and entropies are NaN (the other inputs are unaffected).",
            RuntimeWarning,
            stacklevel=4,  # the caller of MCDropout.predict
        )
    samples = None
    if parts[0].kept is not None:
        samples = np.concatenate([np.concatenate(part.kept, axis=0) for part in parts], axis=1)
    return MCDropoutResult(
        mean.astype("float32"), variance.astype("float32"), num_samples, samples, expected, kind, consistent
    )


class MCDropoutResult:
    """What `MCDropout.predict` returns for one output: moments of the ``T`` sampled outputs per input.

    Attributes:
        mean: float32 array ``(N, ...)``, the mean of the samples (the MC prediction; a probability for outputs
            read as logits, which are turned into probabilities sample by sample).
        variance: float32 array ``(N, ...)``, their variance (``ddof=0``).
        std: its square root.
        samples: float32 array ``(T, N, ...)`` with ``keep_samples=True``, else None.
        num_samples: ``T``.
        output_type: how the output was read: "probabilities", "logits" or "regression".
        consistent: True when sample ``t`` of every input was drawn by one and the same network (MCDropout's
            ``consistent=True``): the samples are then joint draws across inputs, as BatchBALD and any quantity
            across inputs (covariances, disagreement between two inputs) need. False when every input drew its own
            noise, which is right for per-input moments only.

    Inputs with a NaN or inf in any sample get NaN moments and entropies. For probability outputs the entropies
    below are in nats over the last axis: of the class distribution (softmax), or summed over units each read as
    a Bernoulli probability (sigmoid; one unit ``p`` is the distribution ``[1 - p, p]``).
    """

    def __init__(self, mean, variance, num_samples, samples=None, expected_entropy=None, kind=None, consistent=False):
        self.mean = mean
        self.variance = variance
        self.num_samples = num_samples
        self.samples = samples
        self._expected_entropy = expected_entropy
        self._kind = kind if kind is not None else OutputKind("regression", None)
        self.output_type = self._kind.output_type
        self.consistent = consistent

    @property
    def std(self):
        return np.sqrt(self.variance)

    def _require_probabilities(self):
        if self._kind.entropy is None:
            raise ValueError(
                "The entropies need probability outputs; this output was read as regression (with "
                "output_type='auto' its layer has no softmax or sigmoid activation). Pass "
                "output_type='probabilities' or 'logits' to MCDropout for a classifier, or use `mean` and `variance`."
            )

    def predictive_entropy(self):
        """``H(mean)``: total uncertainty of the averaged prediction, shape ``mean.shape[:-1]``."""
        self._require_probabilities()
        return entropy(self.mean.astype("float64"), self._kind.entropy, xp=np).astype("float32")

    def expected_entropy(self):
        """Mean over the samples of each sample's entropy: the aleatoric part."""
        self._require_probabilities()
        return self._expected_entropy

    def mutual_information(self):
        """BALD: ``predictive_entropy() - expected_entropy()`` (never below 0), the epistemic part."""
        difference = self.predictive_entropy() - self.expected_entropy()
        return np.where(np.isnan(difference), np.nan, np.maximum(difference, 0.0)).astype("float32")

    def __repr__(self):
        kept = "" if self.samples is None else ", samples kept"
        kept += ", consistent" if self.consistent else ""
        return (
            f"MCDropoutResult(num_samples={self.num_samples}, output_type={self.output_type!r}, "
            f"mean shape {self.mean.shape}{kept})"
        )
