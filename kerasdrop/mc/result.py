"""`MCDropoutResult`, what `kerasdrop.MCDropout.predict` returns for each output, made from the moments of every
batch and put in the model's output structure."""

import warnings

import keras
import numpy as np

from kerasdrop.mc.moments import entropy, mask_rows
from kerasdrop.mc.outputs import OutputKind, output_names


def results(parts, kinds, samples, structure, consistent=False):
    """The `MCDropoutResult` of each output from the moments of every sub-batch, in the model's output structure."""
    names = output_names(structure, len(kinds))
    per_output = [
        result_from([part[index] for part in parts], kind, samples, names[index], consistent)
        for index, kind in enumerate(kinds)
    ]
    if not keras.tree.is_nested(structure):
        return per_output[0]
    return keras.tree.pack_sequence_as(structure, per_output)


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
