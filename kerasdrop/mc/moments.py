"""The statistics of Monte Carlo samples: entropies of probabilities, and the mean, sum of squared deviations and
mean entropy of samples, computed chunk by chunk (in a compiled program or on the host) and merged as they come."""

import numpy as np
from keras import ops
from scipy.special import logsumexp


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


def merge_moments(count_a, mean_a, m2_a, count_b, mean_b, m2_b):
    """Mean and sum of squared deviations of two groups merged (Chan et al.): works on arrays and tensors alike."""
    total = count_a + count_b
    delta = mean_b - mean_a
    return mean_a + delta * (count_b / total), m2_a + m2_b + delta * delta * (count_a * count_b / total)


def log_density_sum(means, variances, targets):
    """``log Σ_k N(targets; means_k, variances_k)`` over the ``k`` samples of a chunk, per input: ``(N,)`` float64.

    ``means`` ``(k, N, ...)``, ``variances`` broadcastable to them (all above 0), ``targets`` like ``means[0]``;
    the densities of the several values of an input multiply (their logs add up)."""
    means = np.asarray(means, "float64")
    variances = np.broadcast_to(np.asarray(variances, "float64"), means.shape)
    log_densities = -0.5 * (np.log(2 * np.pi * variances) + np.square(targets - means) / variances)
    return logsumexp(log_densities.reshape(means.shape[0], means.shape[1], -1).sum(axis=-1), axis=0)


class Moments:
    """Running mean, sum of squared deviations and sum of each sample's second tensor (its entropies, or a gaussian
    head's variances: see `OutputKind.paired`) over chunks of samples ``(k, N, ...)``, in float64, and which inputs
    (rows) gave a non-finite value in any sample. With ``keep_samples`` the samples are kept, and with
    ``keep_second`` their second tensors too. Given ``targets`` (like one sample), the log of the summed Gaussian
    densities of the targets (`log_density_sum`), of variance ``noise_variance``, or, when None, each sample's
    second tensor (a gaussian head's variances)."""

    def __init__(self, keep_samples, keep_second=False, targets=None, noise_variance=None):
        self.count = 0
        self.mean = self.m2 = self.second = self.finite = self.log_density = None
        self.kept = [] if keep_samples else None
        self.kept_second = [] if keep_samples and keep_second else None
        self.targets, self.noise_variance = targets, noise_variance

    def add(self, samples, second=None):
        if self.kept is not None:
            self.kept.append(samples)
        if self.kept_second is not None:
            self.kept_second.append(second)
        samples = ops.convert_to_numpy(samples)
        second = None if second is None else ops.convert_to_numpy(second)
        chunk = chunk_moments(samples, second, xp=np)
        if self.targets is not None:
            variances = second if self.noise_variance is None else self.noise_variance
            log_density = log_density_sum(samples, variances, self.targets)
            self.log_density = log_density if self.count == 0 else np.logaddexp(self.log_density, log_density)
        if self.count == 0:
            self.mean, self.m2, self.second, self.finite = chunk
        else:
            self.mean, self.m2 = merge_moments(self.count, self.mean, self.m2, len(samples), chunk[0], chunk[1])
            self.second = self.second + chunk[2]
            self.finite = self.finite & chunk[3]
        self.count += len(samples)
