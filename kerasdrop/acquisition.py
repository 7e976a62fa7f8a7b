"""Active learning with Monte Carlo dropout: which unlabelled inputs to label next (Gal, Islam & Ghahramani 2017).

Every score takes the Monte Carlo samples of a classifier's probabilities, an array ``(T, N, C)`` (``T`` samples of
``N`` pool inputs over ``C`` classes, as ``MCDropout.predict(x, keep_samples=True).samples`` gives them; that result
itself is accepted too), and returns one float per input, ``(N,)``: higher means more worth labelling. One unit,
``(T, N, 1)``, is a binary classifier's sigmoid output ``p``, read as the two classes ``[1 - p, p]``.
`top_k` turns scores into the indices to label; `batch_bald` chooses a whole batch at once. NumPy in, NumPy out;
entropies in nats.

The per-input scores read each input's ``T`` samples on their own, so any samples do. `batch_bald` also reads
across inputs: its joint entropies need sample ``t`` of every input to come from one and the same network, as
``MCDropout(model, ..., consistent=True)`` draws them. It refuses an `MCDropoutResult` drawn without, and trusts a
plain array to be such joint draws.

Example:
    ```python
    pool = kerasdrop.MCDropout(model, samples=50, consistent=True).predict(x_pool, keep_samples=True)
    chosen = kerasdrop.acquisition.top_k(kerasdrop.acquisition.bald(pool), k=10)
    # or, for a batch whose points do not repeat each other's information:
    chosen, scores = kerasdrop.acquisition.batch_bald(pool, k=10, return_scores=True)
    ```
"""

import numpy as np

from kerasdrop._gaussian_mixture import MIXTURE_OUTPUT_TYPES
from kerasdrop._validation import ArgumentTypeError, _message, check_bool, check_positive_int, check_seed
from kerasdrop.mc.result import MCDropoutResult
from kerasdrop.metrics import check_probabilities, entropy_of

__all__ = ["bald", "max_entropy", "variation_ratio", "mean_std", "margin", "random", "top_k", "batch_bald"]

# How many float64 values batch_bald's joint probabilities of one chunk of candidates may hold (32 MiB).
_CHUNK_VALUES = 4 * 1024 * 1024


def _checked_samples(samples):
    """``samples`` as float64 ``(T, N, C)`` probabilities with at least one sample and one input, each row divided by
    its sum (float32 and float16 outputs sum to 1 only within their rounding), one unit ``p`` as ``[1 - p, p]``;
    raises otherwise."""
    if isinstance(samples, MCDropoutResult):
        if samples.output_type in MIXTURE_OUTPUT_TYPES:
            raise ValueError(
                "Invalid value received for argument `samples`: an MCDropoutResult of "
                f"output_type={samples.output_type!r}. "
                "Acquisition scores need a classifier's probabilities; its values are not probabilities. If the "
                "output is a classifier's, sample it with `MCDropout(model, output_type='probabilities')` (or "
                "'logits' for an output without softmax or sigmoid)."
            )
        samples = samples.samples
        if samples is None:
            raise ValueError(
                "Invalid value received for argument `samples`: an MCDropoutResult without its samples. Predict with "
                "`MCDropout.predict(x, keep_samples=True)` to keep them."
            )
    if samples is None:
        raise ValueError(
            "Invalid value received for argument `samples`. Expected Monte Carlo samples of shape (T, N, C), as "
            "`MCDropout.predict(x, keep_samples=True).samples` gives them. Received: samples=None"
        )
    array = np.asarray(samples)
    if array.ndim == 3 and array.shape[-1] == 1 and array.dtype.kind in "fiub":
        positive = array.astype("float64")
        if np.all(np.isfinite(positive)) and positive.size and (positive.min() < 0 or positive.max() > 1):
            raise ValueError(
                "Invalid value received for argument `samples`. Expected probabilities in [0, 1] (one unit: a "
                "sigmoid output; apply a sigmoid to logits first). Received values in "
                f"[{positive.min():.4g}, {positive.max():.4g}]"
            )
        array = np.concatenate([1.0 - positive, positive], axis=-1)
    samples = check_probabilities("samples", array, 3)
    if samples.shape[0] == 0 or samples.shape[1] == 0:
        raise ValueError(
            "Invalid value received for argument `samples`. Expected at least one Monte Carlo sample of at least one "
            f"input, shape (T, N, C) with T, N >= 1. Received: samples of shape {samples.shape}"
        )
    return samples / samples.sum(axis=-1, keepdims=True)


def bald(samples):
    """BALD (Houlsby et al. 2011): the mutual information between an input's label and the model's weights,
    ``H(mean_t p_t) - mean_t H(p_t)``: high where the samples are each confident but disagree.

    Args:
        samples: array ``(T, N, C)`` of Monte Carlo class probabilities.

    Returns:
        ``(N,)`` float64, in ``[0, ln C]``.
    """
    samples = _checked_samples(samples)
    return np.maximum(entropy_of(samples.mean(axis=0)) - entropy_of(samples).mean(axis=0), 0.0)


def max_entropy(samples):
    """The predictive entropy ``H(mean_t p_t)`` (Shannon 1948): high where the averaged prediction is unsure.

    Args:
        samples: array ``(T, N, C)`` of Monte Carlo class probabilities.

    Returns:
        ``(N,)`` float64, in ``[0, ln C]``.
    """
    return entropy_of(_checked_samples(samples).mean(axis=0))


def variation_ratio(samples):
    """Freeman's variation ratio of the sampled labels, ``1 - f / T``, with ``f`` the number of samples whose most
    probable class is the most frequent one (Gal et al. 2017's sampled form of ``1 - max_y p(y | x)``).

    A sample's label is the first of its most probable classes.

    Args:
        samples: array ``(T, N, C)`` of Monte Carlo class probabilities.

    Returns:
        ``(N,)`` float64, in ``[0, 1 - 1/min(T, C)]``.
    """
    samples = _checked_samples(samples)
    count, _, classes = samples.shape
    labels = samples.argmax(axis=-1)  # (T, N)
    votes = (labels[..., None] == np.arange(classes)).sum(axis=0)  # (N, C)
    return 1.0 - votes.max(axis=-1) / count


def mean_std(samples):
    """The standard deviation over samples of each class's probability, averaged over the classes (Kampffmeyer et
    al. 2016): ``mean_c sqrt(E_t[p_c²] - E_t[p_c]²)``.

    Args:
        samples: array ``(T, N, C)`` of Monte Carlo class probabilities.

    Returns:
        ``(N,)`` float64, in ``[0, 1/2]``.
    """
    return _checked_samples(samples).std(axis=0).mean(axis=-1)


def margin(samples):
    """The negated margin between the two most probable classes of the mean prediction, ``-(p_(1) - p_(2))``:
    highest (0) where the two top classes tie.

    Args:
        samples: array ``(T, N, C)`` of Monte Carlo class probabilities.

    Returns:
        ``(N,)`` float64, in ``[-1, 0]``.
    """
    mean = _checked_samples(samples).mean(axis=0)
    top_two = np.sort(mean, axis=-1)[:, -2:]
    return top_two[:, 0] - top_two[:, 1]


def random(samples, seed=None):
    """Uniform scores in ``[0, 1)``, one per input: the baseline that labels inputs at random.

    Args:
        samples: array ``(T, N, C)`` of Monte Carlo class probabilities (only ``N`` is read).
        seed: None or int, for reproducible scores.

    Returns:
        ``(N,)`` float64.
    """
    samples = _checked_samples(samples)
    return np.random.default_rng(check_seed(seed)).random(samples.shape[1])


def _check_k(k, pool):
    k = check_positive_int("k", k)
    if k > pool:
        raise ValueError(_message("k", f"at most the number of pool inputs, {pool}", k))
    return k


def top_k(scores, k):
    """The indices of the ``k`` highest ``scores``, highest first; ties go to the lower index.

    Args:
        scores: array ``(N,)`` of finite scores (an acquisition function's).
        k: int in ``[1, N]``.

    Returns:
        ``(k,)`` int64 indices into the pool.
    """
    array = np.asarray(scores)
    real = np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating) or array.dtype == bool
    if not real:
        raise ArgumentTypeError(
            "Invalid value received for argument `scores`. Expected a real-valued array of shape (N,). Received: "
            f"scores of dtype {array.dtype}"
        )
    if array.ndim != 1:
        raise ValueError(
            "Invalid value received for argument `scores`. Expected an array of shape (N,). Received: scores of "
            f"shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("Invalid value received for argument `scores`: it contains NaN or infinite values.")
    k = _check_k(k, array.shape[0])
    return np.argsort(-array.astype("float64"), kind="stable")[:k].astype("int64")


def batch_bald(samples, k, num_joint_samples=1000, seed=None, return_scores=False):
    """BatchBALD (Kirsch, van Amersfoort & Gal 2019): a batch of ``k`` inputs chosen greedily by the mutual
    information between their joint labels and the model's weights.

    Step ``i`` adds the input ``n`` that maximises ``I(y_A, y_n; w) = H(y_A, y_n) - sum_{j in A + n} E_t H(y_j | w_t)``
    for the inputs ``A`` chosen so far, so that a batch does not spend its labels on inputs that tell the same thing
    (BALD's top k often are near-duplicates). The first choice is BALD's argmax. The joint entropy ``H(y_A, y_n)``
    is exact while the label configurations of ``A`` number at most ``num_joint_samples``; beyond, it is estimated
    from ``num_joint_samples`` configurations drawn from the mixture of the samples (the paper's importance-sampled
    estimator), so time and memory stay bounded for any ``k``.

    The joint entropies average over the samples ``t`` of several inputs together, so sample ``t`` of every input must
    come from one and the same network ``w_t``: ``MCDropout(model, ..., consistent=True)`` draws them so.

    Args:
        samples: array ``(T, N, C)`` of Monte Carlo class probabilities whose sample ``t`` is one network's for
            every input, or the `MCDropoutResult` of ``MCDropout(model, ..., consistent=True).predict(x,
            keep_samples=True)``; a result drawn without ``consistent=True`` is refused (its inputs drew their own
            masks), an array is taken on trust.
        k: int in ``[1, N]``, the batch size.
        num_joint_samples: int > 0, the most label configurations held: exact up to there, sampled beyond.
        seed: None or int, for the sampled configurations.
        return_scores: bool, also return the batch's mutual information after each choice.

    Returns:
        ``(k,)`` int64 indices into the pool, in the order chosen; no index repeats. With ``return_scores=True``,
        ``(indices, scores)``: ``scores`` ``(k,)`` float64, ``scores[i]`` the mutual information
        ``I(y_{a_1}, ..., y_{a_{i+1}}; w)`` of the first ``i + 1`` choices (``scores[0]`` is the first choice's
        BALD), computed in float64 from the joint entropy that made choice ``i``: exact while that was exact (then
        non-decreasing in ``i`` up to rounding, as a superset's information never is smaller), else its estimate
        from the drawn configurations, which may dip by the estimate's error.
    """
    _check_joint_draws(samples)
    samples = _checked_samples(samples)
    k = _check_k(k, samples.shape[1])
    budget = check_positive_int("num_joint_samples", num_joint_samples)
    rng = np.random.default_rng(check_seed(seed))
    return_scores = check_bool("return_scores", return_scores)
    conditional = entropy_of(samples).mean(axis=0)  # E_t H(y_n | w_t), (N,)
    # The first choice is BALD's argmax, computed in float64 like `bald` (the joint entropies below are float32).
    first = entropy_of(samples.mean(axis=0)) - conditional
    chosen = [int(np.argmax(first))]
    scores = [max(float(first[chosen[0]]), 0.0)]  # as `bald` gives it
    available = np.ones(samples.shape[1], dtype=bool)
    available[chosen[0]] = False
    joint = _JointLabels(samples, budget, rng)
    for _ in range(k - 1):
        joint.add(chosen[-1])
        ranking = joint.entropy_with_each() - conditional - conditional[chosen].sum()
        ranking[~available] = -np.inf
        best = int(np.argmax(ranking))
        chosen.append(best)
        available[best] = False
        if return_scores:
            scores.append(joint.entropy_with(best) - conditional[chosen].sum())
    indices = np.asarray(chosen, dtype="int64")
    return (indices, np.asarray(scores, dtype="float64")) if return_scores else indices


def _check_joint_draws(samples):
    """Refuses an `MCDropoutResult` whose inputs drew their own masks: its samples are no joint draws."""
    if isinstance(samples, MCDropoutResult) and not samples.consistent:
        raise ValueError(
            "Invalid value received for argument `samples`: an MCDropoutResult whose samples are not joint draws "
            "(consistent=False: each input drew its own dropout masks), so sample t of two inputs comes from two "
            "different networks and BatchBALD's joint entropies would mean nothing. Sample the pool with "
            "`MCDropout(model, ..., consistent=True)`, whose sample t of every input is one and the same network."
        )


class _JointLabels:
    """The label configurations of the inputs chosen so far, each with its probability under every sample.

    ``probs[m, t]`` is ``p(y_A = config m | w_t)``. Exact (every configuration) while there are at most ``budget``
    configurations. Beyond, ``budget`` configurations drawn from the mixture ``(1/T) sum_t p(. | w_t)`` (a sample
    index ``t_m`` each, then every label from ``p(. | w_{t_m})``), each row rescaled to mean 1 so that long products
    do not underflow, its logarithmic scale kept in ``log_scale``.
    """

    def __init__(self, samples, budget, rng):
        self.samples = samples  # (T, N, C)
        self.samples32 = samples.astype("float32")
        self.budget = budget
        self.rng = rng
        self.probs = np.ones((1, samples.shape[0]))
        self.log_scale = None  # set once the configurations are drawn
        self.drawn_from = None  # the sample index t_m of each drawn configuration
        self.chosen = []

    def entropy_with_each(self):
        """``H(y_A, y_n)`` for every input ``n`` of the pool, ``(N,)``.

        The joint probabilities and their logarithms are float32 (NumPy's float32 logarithm is vectorised, its
        float64 one is not), summed over the configurations in float32 and over the classes in float64."""
        count, pool, classes = self.samples.shape
        flat = self.samples32.reshape(count, pool * classes)
        rows = len(self.probs)
        probs = (self.probs / count).astype("float32")
        chunk = max(1, _CHUNK_VALUES // (rows * classes))
        result = np.empty(pool)
        for start in range(0, pool, chunk):
            stop = min(pool, start + chunk)
            # p(y_A = m, y_n = c) = (1/T) sum_t p(m | w_t) p(c | w_t), for the inputs of this chunk.
            joint = probs @ flat[:, start * classes : stop * classes]
            np.maximum(joint, np.finfo("float32").tiny, out=joint)  # 0 log 0 = 0
            sums = np.einsum("mk,mk->k", joint, np.log(joint))  # sum over the configurations, (chunk * C,)
            result[start:stop] = -sums.reshape(stop - start, classes).sum(axis=-1, dtype="float64")
        if self.log_scale is not None:
            # Drawn configurations: the estimate E_m[-sum_c p(c | y_A = m) log p(y_A = m, y_n = c)], with rows of mean
            # probability 1, so p(c | m) is the joint itself and log p gains each row's scale.
            result = result / rows - self.log_scale.mean()
        return result

    def entropy_with(self, index):
        """``H(y_A, y_index)`` for one input in float64: the value `entropy_with_each` ranks it by, without float32's
        rounding."""
        joint = self.probs @ self.samples[:, index, :] / self.samples.shape[0]  # (configurations, C)
        result = -np.sum(joint * np.log(np.where(joint > 0, joint, 1.0)))
        if self.log_scale is not None:  # as in `entropy_with_each`
            result = result / len(self.probs) - self.log_scale.mean()
        return float(result)

    def add(self, index):
        """Extends the configurations with the labels of input ``index``."""
        self.chosen.append(index)
        probs = self.samples[:, index, :]  # (T, C)
        configurations = len(self.probs) * probs.shape[1]
        if self.drawn_from is None and configurations <= self.budget:
            self.probs = (self.probs[:, None, :] * probs.T[None, :, :]).reshape(configurations, -1)
            return
        if self.drawn_from is None:  # from here on, drawn configurations of every chosen input
            self.drawn_from = self.rng.integers(self.samples.shape[0], size=self.budget)
            self.probs = np.ones((self.budget, self.samples.shape[0]))
            self.log_scale = np.zeros(self.budget)
            for chosen in self.chosen:
                self._draw_labels(chosen)
        else:
            self._draw_labels(index)

    def _draw_labels(self, index):
        """Draws the label of input ``index`` in each configuration from its own sample ``t_m``, multiplies each
        configuration's probabilities under every sample by that label's, and rescales the rows to mean 1."""
        probs = self.samples[:, index, :]  # (T, C)
        weights = probs[self.drawn_from]  # (M, C), each configuration's own sample
        cumulative = np.cumsum(weights, axis=-1)
        uniform = self.rng.random(self.budget)[:, None] * cumulative[:, -1:]
        # At most the last class of positive probability, should rounding make the uniform draw reach the total.
        last_positive = weights.shape[1] - 1 - np.argmax(weights[:, ::-1] > 0, axis=-1)
        labels = np.minimum((cumulative <= uniform).sum(axis=-1), last_positive)
        self.probs = self.probs * probs[:, labels].T
        scale = self.probs.mean(axis=1)
        self.probs /= scale[:, None]
        self.log_scale += np.log(scale)
