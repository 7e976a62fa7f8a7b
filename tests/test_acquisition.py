"""`kerasdrop.acquisition`: each score against its closed form, `batch_bald` against the brute-force greedy choice."""

import itertools
import math
import re

import numpy as np
import pytest

from kerasdrop import acquisition
from kerasdrop.acquisition import _JointLabels
from kerasdrop.mc.outputs import OutputKind
from kerasdrop.mc.result import MCDropoutResult

SCORES = ["bald", "max_entropy", "variation_ratio", "mean_std", "margin", "random"]


def softmax_samples(shape, seed, scale=2.0):
    """Monte Carlo samples ``(T, N, C)`` of random softmax probabilities."""
    logits = np.random.default_rng(seed).normal(scale=scale, size=shape)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probs / probs.sum(axis=-1, keepdims=True)


def one_hot(labels, classes):
    """Samples ``(T, N, C)`` that each put all their mass on one class: ``labels`` ``(T, N)``."""
    return np.eye(classes)[np.asarray(labels)]


def entropy(p):
    p = np.asarray(p, dtype="float64")
    return -sum(value * math.log(value) for value in p.ravel() if value > 0)


def brute_force_joint_mutual_information(samples, points):
    """``I(y_points; w)`` by summing over every label configuration of ``points``."""
    count, _, classes = samples.shape
    joint = 0.0
    for labels in itertools.product(range(classes), repeat=len(points)):
        p = np.mean(np.prod([samples[:, j, c] for j, c in zip(points, labels, strict=True)], axis=0))
        joint -= p * math.log(p) if p > 0 else 0.0
    conditional = sum(np.mean([entropy(samples[t, j]) for t in range(count)]) for j in points)
    return joint - conditional


def dirichlet_samples(shape, seed, concentration=0.5):
    """Monte Carlo samples ``(T, N, C)`` drawn from a symmetric Dirichlet: confident samples that disagree."""
    count, pool, classes = shape
    return np.random.default_rng(seed).dirichlet(np.full(classes, concentration), size=(count, pool))


def result_of(samples, consistent):
    """The `MCDropoutResult` of a softmax output whose kept samples are ``samples`` ``(T, N, C)``."""
    kind = OutputKind("probabilities", samples.shape[-1], "softmax")
    mean, variance = samples.mean(axis=0), samples.var(axis=0)
    return MCDropoutResult(mean, variance, len(samples), samples=samples, kind=kind, consistent=consistent)


def brute_force_greedy(samples, k):
    chosen = []
    for _ in range(k):
        candidates = [n for n in range(samples.shape[1]) if n not in chosen]
        values = [brute_force_joint_mutual_information(samples, [*chosen, n]) for n in candidates]
        chosen.append(candidates[int(np.argmax(values))])
    return chosen


# ---------------------------------------------------------------- closed forms


def test_members_that_agree_have_zero_bald_and_members_that_disagree_completely_ln_c():
    classes = 4
    agree = np.broadcast_to(softmax_samples((1, 5, classes), seed=0), (6, 5, classes))
    np.testing.assert_allclose(acquisition.bald(agree), 0.0, atol=1e-12)
    # Each of C samples is sure of a different class: the mean is uniform, every sample has entropy 0.
    disagree = one_hot(np.tile(np.arange(classes)[:, None], (1, 3)), classes)
    np.testing.assert_allclose(acquisition.bald(disagree), math.log(classes), rtol=1e-12)
    np.testing.assert_allclose(acquisition.max_entropy(disagree), math.log(classes), rtol=1e-12)
    np.testing.assert_allclose(acquisition.mean_std(disagree), math.sqrt(classes - 1) / classes, rtol=1e-12)
    np.testing.assert_allclose(acquisition.variation_ratio(disagree), 1 - 1 / classes, rtol=1e-12)
    np.testing.assert_allclose(acquisition.margin(disagree), 0.0, atol=1e-12)


def test_scores_equal_their_formulas_input_by_input():
    samples = softmax_samples((7, 9, 5), seed=1)
    mean = samples.mean(axis=0)
    for n in range(samples.shape[1]):
        expected_entropy = entropy(mean[n])
        assert acquisition.max_entropy(samples)[n] == pytest.approx(expected_entropy, rel=1e-12)
        conditional = np.mean([entropy(samples[t, n]) for t in range(7)])
        assert acquisition.bald(samples)[n] == pytest.approx(expected_entropy - conditional, rel=1e-10)
        stds = [math.sqrt(np.mean((samples[:, n, c] - mean[n, c]) ** 2)) for c in range(5)]
        assert acquisition.mean_std(samples)[n] == pytest.approx(np.mean(stds), rel=1e-12)
        top, second = sorted(mean[n])[-1], sorted(mean[n])[-2]
        assert acquisition.margin(samples)[n] == pytest.approx(second - top, rel=1e-12)


def test_variation_ratio_counts_the_modal_label():
    # Input 0: labels 2, 2, 1, 2 -> 1 - 3/4; input 1: 0, 1, 2, 3 -> 1 - 1/4; input 2: all 3 -> 0.
    labels = np.array([[2, 0, 3], [2, 1, 3], [1, 2, 3], [2, 3, 3]])
    np.testing.assert_allclose(acquisition.variation_ratio(one_hot(labels, 4)), [0.25, 0.75, 0.0])


def test_one_unit_is_a_binary_classifiers_probability_of_the_positive_class():
    p = np.random.default_rng(3).random((6, 9, 1))
    two_classes = np.concatenate([1 - p, p], axis=-1)
    for name in ("bald", "max_entropy", "variation_ratio", "mean_std", "margin"):
        np.testing.assert_array_equal(getattr(acquisition, name)(p), getattr(acquisition, name)(two_classes))
    np.testing.assert_array_equal(acquisition.batch_bald(p, 4), acquisition.batch_bald(two_classes, 4))
    certain = np.ones((3, 2, 1))  # sure of the positive class
    for name in ("bald", "max_entropy", "variation_ratio", "mean_std"):
        np.testing.assert_array_equal(getattr(acquisition, name)(certain), [0.0, 0.0])
    np.testing.assert_array_equal(acquisition.margin(certain), [-1.0, -1.0])
    with pytest.raises(ValueError, match=r"`samples`.*\[0, 1\].*sigmoid.*\[1.001, 1.973\]"):
        acquisition.bald(p + 1.0)


def test_one_sample_has_no_disagreement():
    one_sample = softmax_samples((1, 4, 3), seed=2)
    np.testing.assert_allclose(acquisition.bald(one_sample), 0.0, atol=1e-12)
    np.testing.assert_array_equal(acquisition.variation_ratio(one_sample), 0.0)


def test_random_scores_are_uniform_reproducible_and_new_without_seed():
    samples = np.full((2, 10_000, 3), 1 / 3)
    scores = acquisition.random(samples, seed=3)
    assert scores.shape == (10_000,) and scores.min() >= 0.0 and scores.max() < 1.0
    np.testing.assert_array_equal(scores, acquisition.random(samples, seed=3))
    assert not np.array_equal(acquisition.random(samples), acquisition.random(samples))
    # Uniform on [0, 1): mean 1/2 within 5 standard errors (sd 1/sqrt(12)).
    assert abs(scores.mean() - 0.5) < 5 / math.sqrt(12 * scores.size)


# ---------------------------------------------------------------- top_k


def test_top_k_orders_by_score_and_breaks_ties_by_index():
    np.testing.assert_array_equal(acquisition.top_k([0.1, 0.9, 0.5, 0.9, 0.2], 3), [1, 3, 2])
    np.testing.assert_array_equal(acquisition.top_k(np.array([3, 1, 2]), 3), [0, 2, 1])
    assert acquisition.top_k([1.0], 1).dtype == np.int64


@pytest.mark.parametrize(
    ("scores", "k", "error", "message"),
    [
        ([0.1, 0.2], 3, ValueError, "`k`.*at most the number of pool inputs, 2.*k=3"),
        ([0.1, 0.2], 0, ValueError, "`k`.*positive integer.*k=0"),
        ([0.1, 0.2], 2.0, TypeError, "`k`.*positive integer.*k=2.0"),
        ([0.1, 0.2], True, TypeError, "`k`.*positive integer.*k=True"),
        ([0.1, float("nan")], 1, ValueError, "`scores`.*NaN"),
        ([[0.1, 0.2]], 1, ValueError, r"`scores`.*\(N,\).*shape \(1, 2\)"),
        (["a", "b"], 1, TypeError, "`scores`.*real-valued.*dtype <U1"),
        ([1 + 2j, 0j], 1, TypeError, "`scores`.*real-valued.*dtype complex128"),
    ],
)
def test_top_k_errors_name_the_argument_and_the_value(scores, k, error, message):
    with pytest.raises(error, match=message):
        acquisition.top_k(scores, k)


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize("name", [*SCORES, "batch_bald"])
@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.full((4, 3), 0.25), r"`samples`.*\(T, N, C\).*\(4, 3\)"),
        (np.full((2, 3, 2), 0.7), "`samples`"),  # rows sum to 1.4
        (np.stack([np.full((3, 2), 0.5), np.array([[1.5, -0.5]] * 3)]), "`samples`"),
        (np.full((2, 3, 2), np.nan), "`samples`.*NaN"),
        (np.zeros((0, 3, 2)), "`samples`.*at least one"),
    ],
    ids=["rank 2", "sums", "range", "nan", "no samples"],
)
def test_bad_samples_are_refused_with_the_argument_named(name, samples, message):
    function = getattr(acquisition, name)
    with pytest.raises(ValueError, match=message):
        function(samples, 1) if name == "batch_bald" else function(samples)


def test_batch_bald_argument_errors():
    samples = softmax_samples((3, 4, 2), seed=0)
    with pytest.raises(ValueError, match="`k`.*at most the number of pool inputs, 4.*k=5"):
        acquisition.batch_bald(samples, 5)
    with pytest.raises(ValueError, match="`num_joint_samples`.*num_joint_samples=0"):
        acquisition.batch_bald(samples, 2, num_joint_samples=0)
    for value in (True, 1.5):
        with pytest.raises(TypeError, match=f"`num_joint_samples`.*num_joint_samples={value}"):
            acquisition.batch_bald(samples, 2, num_joint_samples=value)


def test_rows_are_renormalised_and_low_precision_samples_accepted():
    samples = softmax_samples((6, 8, 5), seed=3)
    off = samples * 1.0005  # rows summing to 1.0005: within float32 rounding over many classes
    np.testing.assert_allclose(acquisition.bald(off), acquisition.bald(samples), rtol=1e-12)
    for dtype, tolerance in (("float32", 1e-5), ("float16", 2e-2)):
        np.testing.assert_allclose(acquisition.bald(samples.astype(dtype)), acquisition.bald(samples), atol=tolerance)
        assert acquisition.batch_bald(samples.astype(dtype), 8).tolist().count(0) == 1


# ---------------------------------------------------------------- BatchBALD


@pytest.mark.parametrize("seed", range(6))
def test_batch_bald_starts_with_balds_argmax(seed):
    samples = softmax_samples((8, 30, 4), seed=seed)
    np.testing.assert_array_equal(acquisition.batch_bald(samples, 1), [np.argmax(acquisition.bald(samples))])
    assert acquisition.batch_bald(samples, 3)[0] == np.argmax(acquisition.bald(samples))


def test_first_choice_among_equal_inputs_is_the_lowest_index_in_a_pool_larger_than_a_chunk():
    """3,000 copies of one input and a few less informative ones: BALD ties, so the first copy is chosen, as
    `top_k` would."""
    best, other = softmax_samples((10, 2, 10), seed=5, scale=0.5).transpose(1, 0, 2)
    pool = np.stack([best] * 3000 + [0.5 * best + 0.5 / 10] * 3, axis=1)  # the last 3 are flatter
    assert acquisition.batch_bald(pool, 1).tolist() == [0]
    assert acquisition.top_k(acquisition.bald(pool), 1).tolist() == [0]


@pytest.mark.parametrize("seed", range(4))
def test_first_choice_resolves_bald_differences_below_float32_rounding(seed):
    """Inputs that differ by one part in a million: their BALDs differ below float32's resolution, and the first
    choice is still BALD's argmax."""
    base = softmax_samples((10, 1, 10), seed=seed)
    noise = 1.0 + 1e-6 * np.random.default_rng(seed).normal(size=(10, 40, 10))
    pool = base * noise
    pool /= pool.sum(axis=-1, keepdims=True)
    assert acquisition.batch_bald(pool, 1).tolist() == [int(np.argmax(acquisition.bald(pool)))]


def test_batch_bald_with_one_class_or_one_sample():
    assert sorted(acquisition.batch_bald(np.ones((4, 5, 1)), 5).tolist()) == [0, 1, 2, 3, 4]
    assert sorted(acquisition.batch_bald(softmax_samples((1, 6, 3), seed=0), 6).tolist()) == list(range(6))


@pytest.mark.parametrize("seed", range(5))
def test_batch_bald_is_the_brute_force_greedy_choice(seed):
    """Exact joint entropies (3^4 configurations fit the default budget): the greedy batch of the brute force."""
    samples = softmax_samples((6, 7, 3), seed=10 + seed)
    assert acquisition.batch_bald(samples, 4).tolist() == brute_force_greedy(samples, 4)


def test_batch_bald_never_repeats_a_point():
    samples = softmax_samples((5, 12, 3), seed=4)
    for budget in (1_000, 20):  # exact, then drawn configurations from the third choice on
        chosen = acquisition.batch_bald(samples, 12, num_joint_samples=budget, seed=0)
        assert sorted(chosen.tolist()) == list(range(12))


def test_drawn_configurations_are_reproducible_with_a_seed():
    samples = softmax_samples((20, 200, 10), seed=6)
    first = acquisition.batch_bald(samples, 8, num_joint_samples=50, seed=3)
    np.testing.assert_array_equal(acquisition.batch_bald(samples, 8, num_joint_samples=50, seed=3), first)
    assert len(set(first.tolist())) == 8


def test_batch_bald_skips_a_duplicate_that_top_k_bald_takes():
    """Two copies of the most informative input, and a third input about other classes: BALD's top 2 are the two
    copies, whose second label tells nothing new; BatchBALD takes the third input instead."""
    labels = np.array([[0, 0, 2], [1, 1, 3], [0, 0, 3], [1, 1, 2]])  # (T=4, N=3): each sample sure of one class
    samples = one_hot(labels, 4)
    samples[:, 2] = 0.9 * samples[:, 2] + 0.1 / 4  # a little less informative than the copies
    assert acquisition.top_k(acquisition.bald(samples), 2).tolist() == [0, 1]
    assert acquisition.batch_bald(samples, 2).tolist() == [0, 2]


def test_drawn_configurations_estimate_the_joint_entropy_within_five_standard_errors():
    """Past the budget, ``H(y_A, y_n)`` is estimated from configurations drawn from the mixture of the samples: it is
    within 5 standard errors of the exact value, the standard error computed exactly from every configuration."""
    samples = softmax_samples((5, 6, 6), seed=7)
    # 6^3 = 216 configurations of three labels, one more than the budget: drawn at the third input, and the fourth
    # input's labels drawn into the same configurations.
    chosen, budget = [0, 1, 2, 3], 215
    joint = _JointLabels(samples, budget, np.random.default_rng(1))
    for index in chosen:
        joint.add(index)
    assert joint.log_scale is not None and joint.probs.shape == (budget, 5), "the configurations were not drawn"
    estimate = joint.entropy_with_each()
    labels = np.array(list(itertools.product(range(6), repeat=len(chosen))))  # (1296, 4)
    given_w = np.prod([samples[:, j, labels[:, i]] for i, j in enumerate(chosen)], axis=0).T  # (configurations, T)
    p_m = given_w.mean(axis=1)
    for n in range(samples.shape[1]):
        # h(m) = -sum_c p(c | m) log p(m, c) for each configuration m; H = E_m h(m) under p(m).
        p_mc = given_w @ samples[:, n, :] / samples.shape[0]  # (configurations, C)
        values = -np.sum(p_mc / p_m[:, None] * np.log(p_mc), axis=1)
        exact = np.sum(p_m * values)
        standard_error = math.sqrt(np.sum(p_m * (values - exact) ** 2) / budget)
        assert standard_error > 1e-3  # the draws vary: the bound is not trivially met
        assert abs(estimate[n] - exact) < 5 * standard_error, (n, estimate[n], exact, standard_error)


def joint_entropy_estimate_standard_error(samples, chosen, n, budget):
    """The standard error of ``H(y_chosen, y_n)`` estimated from ``budget`` configurations of ``chosen`` drawn from
    the mixture of the samples, computed exactly from every configuration (see the test above)."""
    count, _, classes = samples.shape
    labels = np.array(list(itertools.product(range(classes), repeat=len(chosen))))
    given_w = np.prod([samples[:, j, labels[:, i]] for i, j in enumerate(chosen)], axis=0).T  # (configurations, T)
    p_m = given_w.mean(axis=1)
    p_mc = given_w @ samples[:, n, :] / count
    values = -np.sum(p_mc / p_m[:, None] * np.log(p_mc), axis=1)
    exact = np.sum(p_m * values)
    return math.sqrt(np.sum(p_m * (values - exact) ** 2) / budget)


@pytest.mark.parametrize("seed", range(4))
def test_batch_bald_scores_are_the_brute_force_joint_mutual_information(seed):
    """Exact joint entropies (3^6 configurations of the first six choices fit the default budget): each score is
    the mutual information of the batch so far, enumerated over every label configuration."""
    samples = dirichlet_samples((6, 7, 3), seed=20 + seed)
    chosen, scores = acquisition.batch_bald(samples, 7, return_scores=True)
    assert scores.dtype == np.float64 and scores.shape == (7,)
    expected = [brute_force_joint_mutual_information(samples, chosen[: i + 1].tolist()) for i in range(7)]
    np.testing.assert_allclose(scores, expected, rtol=1e-9, atol=1e-12)
    assert scores[0] == acquisition.bald(samples)[chosen[0]]
    np.testing.assert_array_equal(acquisition.batch_bald(samples, 7), chosen)


@pytest.mark.parametrize("seed", range(3))
def test_batch_bald_scores_never_decrease_while_exact(seed):
    """A superset's information is never smaller (3^6 configurations of the first six choices: exact)."""
    samples = dirichlet_samples((8, 12, 3), seed=30 + seed)
    chosen, scores = acquisition.batch_bald(samples, 7, return_scores=True)
    assert len(set(chosen.tolist())) == 7
    assert np.all(np.diff(scores) >= -1e-12 * scores[-1]), np.diff(scores)
    assert scores[-1] > scores[0] + 0.1  # the batch gained information: the check above is not trivially met


@pytest.mark.parametrize("seed", range(3))
def test_batch_bald_scores_stall_at_ln_t_once_the_batch_tells_the_samples_apart(seed):
    """One-hot samples of four inputs, each twice: the labels are a function of the sample ``t``, so the batch's
    information is at most ``H(t) = ln T``. Once its labels tell the 8 samples apart, each further choice adds
    exactly nothing: the scores stay at ``ln 8``, up to rounding, and never fall."""
    labels = np.random.default_rng(60 + seed).integers(3, size=(8, 4))
    samples = one_hot(np.concatenate([labels, labels], axis=1), 3)
    chosen, scores = acquisition.batch_bald(samples, 7, return_scores=True)
    expected = [brute_force_joint_mutual_information(samples, chosen[: i + 1].tolist()) for i in range(7)]
    np.testing.assert_allclose(scores, expected, rtol=1e-9, atol=1e-12)
    assert np.all(np.diff(scores) >= -1e-12), np.diff(scores)
    np.testing.assert_allclose(scores[-3:], math.log(8), rtol=1e-12)


def test_batch_bald_scores_past_the_budget_are_estimates_within_five_standard_errors():
    """With a budget of 100 configurations the first five scores are exact (3^4 configurations of the first four
    choices) and the last two estimated from drawn configurations: within 5 standard errors of the exact value."""
    samples, budget = dirichlet_samples((6, 7, 3), seed=40), 100
    chosen, scores = acquisition.batch_bald(samples, 7, num_joint_samples=budget, seed=2, return_scores=True)
    np.testing.assert_array_equal(acquisition.batch_bald(samples, 7, num_joint_samples=budget, seed=2), chosen)
    expected = [brute_force_joint_mutual_information(samples, chosen[: i + 1].tolist()) for i in range(7)]
    np.testing.assert_allclose(scores[:5], expected[:5], rtol=1e-9)
    for i in (5, 6):
        standard_error = joint_entropy_estimate_standard_error(samples, chosen[:i].tolist(), chosen[i], budget)
        assert standard_error > 1e-3  # the draws vary: the bound is not trivially met
        assert abs(scores[i] - expected[i]) < 5 * standard_error, (i, scores[i], expected[i], standard_error)


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_return_scores_must_be_a_bool(value):
    samples = softmax_samples((3, 4, 2), seed=0)
    with pytest.raises(
        TypeError,
        match=re.escape(f"`return_scores`. Expected a bool (True or False). Received: return_scores={value!r}"),
    ):
        acquisition.batch_bald(samples, 2, return_scores=value)
    chosen, _ = acquisition.batch_bald(samples, 2, return_scores=np.True_)
    np.testing.assert_array_equal(chosen, acquisition.batch_bald(samples, 2, return_scores=np.False_))


def test_batch_bald_refuses_a_result_whose_inputs_drew_their_own_masks():
    """Per-input scores read any result; BatchBALD's joint entropies need joint draws, which a result records."""
    samples = dirichlet_samples((6, 9, 3), seed=50)
    independent = result_of(samples, consistent=False)
    with pytest.raises(ValueError, match=r"`samples`.*not joint draws.*`MCDropout\(model, \.\.\., consistent=True\)`"):
        acquisition.batch_bald(independent, 3)
    for name in ("bald", "max_entropy", "variation_ratio", "mean_std", "margin"):
        np.testing.assert_array_equal(getattr(acquisition, name)(independent), getattr(acquisition, name)(samples))
    joint = result_of(samples, consistent=True)
    np.testing.assert_array_equal(acquisition.batch_bald(joint, 5), acquisition.batch_bald(samples, 5))
    chosen, scores = acquisition.batch_bald(joint, 5, return_scores=True)
    np.testing.assert_array_equal(scores, acquisition.batch_bald(samples, 5, return_scores=True)[1])
    np.testing.assert_array_equal(chosen, acquisition.batch_bald(samples, 5))


def test_a_result_without_samples_or_none_says_to_keep_them():
    import keras

    import kerasdrop

    model = keras.Sequential([keras.Input((4,)), kerasdrop.Dropout(0.5), keras.layers.Dense(3, activation="softmax")])
    result = kerasdrop.MCDropout(model, samples=4, seed=0).predict(np.zeros((5, 4), "float32"), verbose=0)
    for samples in (result, result.samples):
        with pytest.raises(ValueError, match="`samples`.*keep_samples=True"):
            acquisition.bald(samples)


def test_batch_bald_reads_joint_mc_dropout_samples_and_refuses_independent_ones():
    import keras

    import kerasdrop

    model = keras.Sequential(
        [keras.Input((4,)), kerasdrop.Dropout(0.5, seed=1), keras.layers.Dense(3, activation="softmax")]
    )
    x = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    result = kerasdrop.MCDropout(model, samples=8, seed=0, consistent=True).predict(x, verbose=0, keep_samples=True)
    chosen = acquisition.batch_bald(result, 3)
    np.testing.assert_array_equal(chosen, acquisition.batch_bald(result.samples, 3))
    assert chosen[0] == np.argmax(acquisition.bald(result.samples))
    np.testing.assert_allclose(acquisition.bald(result.samples), result.mutual_information(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(acquisition.bald(result), acquisition.bald(result.samples))
    independent = kerasdrop.MCDropout(model, samples=8, seed=0).predict(x, verbose=0, keep_samples=True)
    with pytest.raises(ValueError, match="`samples`.*not joint draws.*consistent=True"):
        acquisition.batch_bald(independent, 3)


def test_bald_of_a_sigmoid_classifier_is_its_mutual_information():
    import keras

    import kerasdrop

    model = keras.Sequential(
        [keras.Input((4,)), kerasdrop.Dropout(0.5, seed=1), keras.layers.Dense(1, activation="sigmoid")]
    )
    x = np.random.default_rng(0).normal(size=(20, 4)).astype("float32")
    result = kerasdrop.MCDropout(model, samples=8, seed=0).predict(x, verbose=0, keep_samples=True)
    assert result.samples.shape == (8, 20, 1)
    np.testing.assert_allclose(acquisition.bald(result), result.mutual_information(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", [*SCORES, "batch_bald"])
def test_a_regression_result_is_refused_naming_its_output_type(name):
    """A regression output's values are not probabilities, even when they lie in [0, 1] and sum to 1."""
    samples = dirichlet_samples((4, 5, 3), seed=0)
    result = MCDropoutResult(samples.mean(0), samples.var(0), 4, samples=samples, consistent=True)
    assert result.output_type == "regression"
    function = getattr(acquisition, name)
    with pytest.raises(ValueError, match=r"output_type='regression'"):
        function(result, k=2) if name == "batch_bald" else function(result)
    # The same samples read as a classifier's are scored.
    probabilities = result_of(samples, consistent=True)
    function(probabilities, k=2) if name == "batch_bald" else function(probabilities)
