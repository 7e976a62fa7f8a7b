"""`MCDropoutResult`, what `kerasdrop.MCDropout.predict` returns for each output, made from the moments of every
batch and put in the model's output structure."""

import warnings

import keras
import numpy as np

from kerasdrop import _gaussian_mixture
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

    def joined(values):
        return mask_rows(np.concatenate(values), finite, xp=np).astype("float32")

    second = joined([part.second / part.count for part in parts]) if kind.paired else None
    if not finite.all():
        warnings.warn(
            f"MCDropout: {int((~finite).sum())} of {len(finite)} inputs gave a NaN or inf in at least one sample of "
            f"{name}; their moments and entropies are NaN (the other inputs are unaffected).",
            RuntimeWarning,
            stacklevel=6,  # this, results, _sample_call, _call, predict (or log_likelihood), the user's call
        )
    samples = sample_variances = None
    if parts[0].kept is not None:
        samples = np.concatenate([np.concatenate(part.kept, axis=0) for part in parts], axis=1)
    if parts[0].kept_second is not None:
        sample_variances = np.concatenate([np.concatenate(part.kept_second, axis=0) for part in parts], axis=1)
    gaussian = kind.output_type == "gaussian"
    result = MCDropoutResult(
        joined([part.mean for part in parts]),
        joined([part.m2 / part.count for part in parts]),
        num_samples,
        samples,
        None if gaussian else second,
        kind,
        consistent,
        aleatoric_variance=second if gaussian else None,
        sample_variances=sample_variances,
    )
    if parts[0].log_density is not None:  # `MCDropout.log_likelihood`
        log_likelihoods = [part.log_density - np.log(part.count) for part in parts]
        result.log_likelihoods = mask_rows(np.concatenate(log_likelihoods), finite, xp=np)
    return result


class MCDropoutResult:
    """What `MCDropout.predict` returns for one output: moments of the ``T`` sampled outputs per input.

    Attributes:
        mean: float32 array ``(N, ...)``, the mean of the samples (the MC prediction; a probability for outputs
            read as logits, which are turned into probabilities sample by sample; for a "gaussian" head, the mean
            of the sampled means).
        variance: float32 array ``(N, ...)``, their variance (``ddof=0``): for regression the epistemic part.
        std: its square root.
        samples: float32 array ``(T, N, ...)`` with ``keep_samples=True``, else None (for a "gaussian" head, the
            sampled means; ``sample_variances`` holds the sampled variances ``exp(log variance)``).
        num_samples: ``T``.
        output_type: how the output was read: "probabilities", "logits", "regression" or "gaussian".
        consistent: True when sample ``t`` of every input was drawn by one and the same network (MCDropout's
            ``consistent=True``): the samples are then joint draws across inputs, as BatchBALD and any quantity
            across inputs (covariances, disagreement between two inputs) need. False when every input drew its own
            noise, which is right for per-input moments only.

    Inputs with a NaN or inf in any sample get NaN moments and entropies. For probability outputs the entropies
    below are in nats over the last axis: of the class distribution (softmax), or summed over units each read as
    a Bernoulli probability (sigmoid; one unit ``p`` is the distribution ``[1 - p, p]``). For regression outputs
    the predictive distribution is the mixture of one Gaussian per sample (Gal & Ghahramani 2016; Kendall & Gal
    2017): centred on the sample, of the noise variance given (``1 / tau``), or of the head's own variance.
    """

    def __init__(
        self,
        mean,
        variance,
        num_samples,
        samples=None,
        expected_entropy=None,
        kind=None,
        consistent=False,
        aleatoric_variance=None,
        sample_variances=None,
    ):
        self.mean = mean
        self.variance = variance
        self.num_samples = num_samples
        self.samples = samples
        self.sample_variances = sample_variances
        self._expected_entropy = expected_entropy
        self._aleatoric_variance = aleatoric_variance
        self._kind = kind if kind is not None else OutputKind("regression", None)
        self.output_type = self._kind.output_type
        self.consistent = consistent

    @property
    def std(self):
        return np.sqrt(self.variance)

    def _require(self, output_types, what, advice):
        if self.output_type not in output_types:
            raise ValueError(f"{what} of this result (output_type={self.output_type!r}) {advice}")

    def _require_probabilities(self):
        self._require(
            ("probabilities", "logits"),
            "The entropies",
            "need probability outputs (with output_type='auto' an output whose layer has no softmax or sigmoid "
            "activation is read as regression). Pass output_type='probabilities' or 'logits' to MCDropout for a "
            "classifier, or use `mean` and `variance`.",
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

    @property
    def epistemic_variance(self):
        """Regression: the variance of the sampled predictions (of the sampled means for a "gaussian" head)."""
        self._require(("regression", "gaussian"), "The epistemic variance", "needs a regression output.")
        return self.variance

    @property
    def aleatoric_variance(self):
        """A "gaussian" head's noise: the mean over the samples of its variance ``exp(log variance)``."""
        self._require(
            ("gaussian",),
            "The aleatoric variance",
            "is what a heteroscedastic head predicts (MCDropout's output_type='gaussian'). For a plain regression "
            "output pass the noise variance (1 / tau) to `predictive_variance(noise_variance=...)`.",
        )
        return self._aleatoric_variance

    def predictive_variance(self, noise_variance=None):
        """The variance of the predictive mixture: ``variance + noise_variance`` for a regression output (the noise
        variance ``1 / tau`` is needed: a float or an array broadcastable to ``mean``, all above 0), aleatoric plus
        epistemic for a "gaussian" head (which takes no ``noise_variance``: it predicts its own)."""
        self._require(_gaussian_mixture.MIXTURE_OUTPUT_TYPES, "The predictive variance", "needs a regression output.")
        what = "the predictive variance of a regression output"
        noise = _gaussian_mixture.component_noise(self.output_type, noise_variance, self.mean.shape, what)
        return self.variance + (self._aleatoric_variance if noise is None else noise.astype("float32"))

    def interval(self, level, noise_variance=None):
        """``(lower, upper)``, each like ``mean``: the central interval of probability ``level`` in (0, 1) of the
        predictive mixture (one Gaussian per kept sample, of variance ``noise_variance`` for a regression output or
        the head's own for a "gaussian" one). Needs the samples: predict with ``keep_samples=True``."""
        self._require(_gaussian_mixture.MIXTURE_OUTPUT_TYPES, "The interval", "needs a regression output.")
        means, variances = _gaussian_mixture.mixture_components(self, noise_variance)
        return _gaussian_mixture.central_interval(means, variances, level)

    def __repr__(self):
        kept = "" if self.samples is None else ", samples kept"
        kept += ", consistent" if self.consistent else ""
        return (
            f"MCDropoutResult(num_samples={self.num_samples}, output_type={self.output_type!r}, "
            f"mean shape {self.mean.shape}{kept})"
        )
