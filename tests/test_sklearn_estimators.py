"""`kerasdrop.sklearn`: scikit-learn estimators whose predictions are `kerasdrop.MCDropout`'s: the same numbers as
MCDropout on the fitted model, clear errors, clones and pickles that keep everything, scikit-learn's own estimator
checks, and split conformal prediction with MAPIE (an optional extra) reaching its coverage.

The fast tests fit with ``epochs=0`` (the model is built, not trained) or one epoch: what they check does not depend
on training. The estimator checks and MAPIE train, and are `slow`.
"""

import math
import os
import pathlib
import pickle
import subprocess
import sys

import keras
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import kerasdrop
from kerasdrop.sklearn import MCDropoutClassifier, MCDropoutRegressor

ROOT = pathlib.Path(__file__).resolve().parents[1]
X = np.random.default_rng(0).normal(size=(24, 4))
LABELS = np.array(["cat", "dog", "emu"])[np.random.default_rng(1).integers(0, 3, size=24)]
TARGETS = np.random.default_rng(2).normal(size=24)
NOT_TRAINED = {"epochs": 0, "verbose": 0}


def build(X, y, activation="softmax", loss="categorical_crossentropy", rate=0.3, units=None, learning_rate=0.01):
    """A small MLP with dropout, one output unit per column of the (one-hot) targets."""
    inputs = keras.Input((X.shape[1],))
    hidden = keras.layers.Dropout(rate)(keras.layers.Dense(32, activation="relu")(inputs))
    units = units or (y.shape[1] if y.ndim > 1 else 1)
    model = keras.Model(inputs, keras.layers.Dense(units, activation=activation, name="head")(hidden), name="mlp")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    return model


REGRESSION = {"activation": None, "loss": "mse"}


def classifier(**arguments):
    keras.utils.set_random_seed(0)
    return MCDropoutClassifier(**{"model": build, "samples": 7, "seed": 3, "fit_kwargs": NOT_TRAINED, **arguments})


def regressor(**arguments):
    keras.utils.set_random_seed(0)
    defaults = {"model": build, "samples": 7, "seed": 3, "model_kwargs": REGRESSION, "fit_kwargs": NOT_TRAINED}
    return MCDropoutRegressor(**{**defaults, **arguments})


# ---------------------------------------------------------------- the numbers are MCDropout's


def test_predict_proba_is_the_mcdropout_mean_and_predict_its_argmax_label():
    clf = classifier().fit(X, LABELS)
    expected = kerasdrop.MCDropout(clf.model_, samples=7, seed=3).predict(X, verbose=0).mean
    probabilities = clf.predict_proba(X)
    np.testing.assert_array_equal(probabilities, expected)
    assert list(clf.classes_) == ["cat", "dog", "emu"]
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[np.argmax(expected, axis=1)])
    assert len(set(clf.predict(X))) > 1, "the labels are read through classes_, not all one class"


def test_sample_proba_holds_the_draws_whose_mean_is_predict_proba():
    clf = classifier().fit(X, LABELS)
    draws = clf.sample_proba(X)
    assert draws.shape == (7, 24, 3)
    np.testing.assert_allclose(draws.mean(axis=0), clf.predict_proba(X), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(draws.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.ptp(draws, axis=0).max() > 0.01, "the draws differ"
    # scikit-activeml's arguments: n_samples and random_state (an int, or a RandomState that draws one).
    more = clf.sample_proba(X, n_samples=11, random_state=5)
    expected = kerasdrop.MCDropout(clf.model_, samples=11, seed=5).predict(X, verbose=0, keep_samples=True)
    np.testing.assert_array_equal(more, expected.samples)
    state = np.random.RandomState(4)
    seed = np.random.RandomState(4).randint(np.iinfo(np.int32).max)
    np.testing.assert_array_equal(clf.sample_proba(X, random_state=state), clf.sample_proba(X, random_state=seed))


def test_a_seed_repeats_the_draws_and_none_draws_anew():
    seeded = classifier().fit(X, LABELS)
    np.testing.assert_array_equal(seeded.predict_proba(X), seeded.predict_proba(X))
    fresh = classifier(seed=None).fit(X, LABELS)
    assert not np.array_equal(fresh.predict_proba(X), fresh.predict_proba(X))


def test_logits_are_turned_into_probabilities_sample_by_sample():
    clf = classifier(output_type="logits", model_kwargs={"activation": None}).fit(X, LABELS)
    expected = kerasdrop.MCDropout(clf.model_, samples=7, seed=3, output_type="logits").predict(X, verbose=0)
    np.testing.assert_array_equal(clf.predict_proba(X), expected.mean)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)


def test_regressor_predicts_the_mcdropout_mean_and_std():
    reg = regressor().fit(X, TARGETS)
    expected = kerasdrop.MCDropout(reg.model_, samples=7, seed=3, output_type="regression").predict(X, verbose=0)
    mean, std = reg.predict(X, return_std=True)
    assert mean.shape == std.shape == (24,)
    np.testing.assert_array_equal(mean, expected.mean[:, 0])
    np.testing.assert_array_equal(std, expected.std[:, 0])
    np.testing.assert_array_equal(reg.predict(X), mean)
    assert std.min() > 0


def test_sample_y_holds_the_draws_in_scikit_learns_layout():
    reg = regressor().fit(X, TARGETS)
    draws = reg.sample_y(X)
    assert draws.shape == (24, 7)  # (n, n_samples), as GaussianProcessRegressor.sample_y
    np.testing.assert_allclose(draws.mean(axis=1), reg.predict(X), rtol=1e-5, atol=1e-6)
    expected = kerasdrop.MCDropout(reg.model_, samples=4, seed=9, output_type="regression")
    np.testing.assert_array_equal(
        reg.sample_y(X, 4, 9), expected.predict(X, verbose=0, keep_samples=True).samples[..., 0].T
    )


def test_consistent_draws_are_one_network_per_sample_for_every_input():
    """With consistent=True sample t of every input comes from one network: equal inputs get equal draws."""
    same = np.repeat(X[:1], 6, axis=0)
    joint = regressor(consistent=True).fit(X, TARGETS).sample_y(same)
    np.testing.assert_allclose(joint, np.broadcast_to(joint[:1], joint.shape), rtol=1e-6, atol=1e-7)
    independent = regressor().fit(X, TARGETS).sample_y(same)
    assert np.ptp(independent, axis=0).min() > 1e-4, "each input draws its own noise"


# ---------------------------------------------------------------- what a classifier needs, and bad arguments


def test_a_classifier_whose_output_is_read_as_regression_is_refused_naming_model_and_output():
    clf = classifier(model_kwargs={"activation": None}).fit(X, LABELS)
    message = r"MCDropoutClassifier needs class probabilities.*output 'head' of model 'mlp' as regression.*'logits'"
    for method in ("predict_proba", "predict", "sample_proba"):
        with pytest.raises(ValueError, match=message):
            getattr(clf, method)(X)


def test_independent_sigmoid_units_are_refused():
    clf = classifier(model_kwargs={"activation": "sigmoid", "loss": "binary_crossentropy"}).fit(X, LABELS)
    with pytest.raises(ValueError, match=r"one distribution over the 3 classes.*\(3,\).*each unit a probability"):
        clf.predict_proba(X)


def test_the_classifier_has_no_decision_function():
    clf = classifier().fit(X, LABELS)
    assert not hasattr(clf, "decision_function")
    with pytest.raises(AttributeError, match="no decision_function.*Monte Carlo means"):
        clf.decision_function(X)


@pytest.mark.parametrize(
    "argument, value, error",
    [
        ("samples", 0, ValueError),
        ("samples", 2.5, TypeError),
        ("seed", 1.5, TypeError),
        ("consistent", "yes", TypeError),
        ("warm_start", 1, TypeError),
        ("output_type", "regression", ValueError),
        ("model", 3, TypeError),
    ],
)
def test_bad_arguments_are_refused_at_fit_naming_argument_and_value(argument, value, error):
    clf = classifier(**{argument: value})  # scikit-learn's rule: nothing is checked before fit
    with pytest.raises(error, match=rf"`{argument}`.*Received: {argument}={value!r}"):
        clf.fit(X, LABELS)
    assert not hasattr(clf, "model_")


def test_a_model_function_that_returns_no_model_is_refused():
    with pytest.raises(TypeError, match="argument `model`.*returned an object of type NoneType"):
        MCDropoutRegressor(lambda X, y: None).fit(X, TARGETS)


def test_bad_sampling_arguments_are_refused_naming_them():
    clf, reg = classifier().fit(X, LABELS), regressor().fit(X, TARGETS)
    with pytest.raises(ValueError, match=r"`n_samples`.*Received: n_samples=0"):
        clf.sample_proba(X, n_samples=0)
    with pytest.raises(TypeError, match=r"`random_state`.*Received: random_state='a'"):
        reg.sample_y(X, random_state="a")
    with pytest.raises(TypeError, match=r"`return_std`.*Received: return_std=1"):
        reg.predict(X, return_std=1)
    reg.set_params(samples=-2)  # after fit: the sampler refuses it
    with pytest.raises(ValueError, match=r"`samples`.*Received: samples=-2"):
        reg.predict(X)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "sample_proba", "sample_y", "score"])
def test_predicting_before_fit_raises_not_fitted(method):
    estimator = regressor() if method == "sample_y" else classifier()
    arguments = (X, LABELS) if method == "score" else (X,)
    with pytest.raises(NotFittedError):
        getattr(estimator, method)(*arguments)


# Run in a fresh interpreter where scikit-learn cannot be imported.
WITHOUT_SKLEARN = """
import sys
sys.modules["sklearn"] = None
import kerasdrop
try:
    kerasdrop.sklearn.MCDropoutRegressor(lambda X, y: None)
except ImportError as error:
    print(error)
"""


@pytest.mark.slow
def test_kerasdrop_imports_without_scikit_learn_and_the_estimators_say_they_need_it():
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_SKLEARN],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MCDropoutRegressor requires `scikit-learn` to be installed" in done.stdout


# ---------------------------------------------------------------- fit, clone, pickle


def test_fit_leaves_its_arguments_as_set():
    fit_kwargs = {"epochs": 0, "verbose": 0}
    clf = MCDropoutClassifier(build, fit_kwargs=fit_kwargs).fit(X, LABELS, batch_size=4)
    assert clf.fit_kwargs is fit_kwargs and fit_kwargs == {"epochs": 0, "verbose": 0}


def test_warm_start_goes_on_training_the_fitted_model():
    one_epoch = {"epochs": 1, "verbose": 0}
    warm = classifier(warm_start=True, fit_kwargs=one_epoch).fit(X, LABELS)
    model, weights = warm.model_, warm.model_.get_weights()
    warm.fit(X, LABELS)
    assert warm.model_ is model
    assert not np.array_equal(model.get_weights()[0], weights[0]), "trained further"
    cold = classifier(fit_kwargs=one_epoch).fit(X, LABELS)
    first = cold.model_
    assert cold.fit(X, LABELS).model_ is not first


def test_clone_keeps_every_argument_and_nothing_fitted():
    clf = classifier(samples=4, seed=8, consistent=True, output_type="probabilities", warm_start=True)
    clf.set_params(model_kwargs={"rate": 0.2})
    twin = clone(clf.fit(X, LABELS))
    assert twin.get_params() == clf.get_params()
    assert twin.fit_kwargs == NOT_TRAINED and twin.fit_kwargs is not clf.fit_kwargs
    assert not hasattr(twin, "model_") and not hasattr(twin, "classes_")
    reg = regressor(samples=5, seed=1, consistent=True)
    assert clone(reg).get_params() == reg.get_params()


def test_a_pickled_estimator_predicts_the_same():
    one_epoch = {"epochs": 1, "verbose": 0}
    clf, reg = classifier(fit_kwargs=one_epoch).fit(X, LABELS), regressor(fit_kwargs=one_epoch).fit(X, TARGETS)
    expected = clf.predict_proba(X), reg.predict(X, return_std=True)
    clf, reg = pickle.loads(pickle.dumps(clf)), pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(clf.predict_proba(X), expected[0])
    np.testing.assert_array_equal(reg.predict(X, return_std=True), expected[1])
    assert list(clf.predict(X)) == list(clf.classes_[np.argmax(expected[0], axis=1)])


# ---------------------------------------------------------------- scikit-learn's estimator checks

# Checks that fit twice and compare: training a neural network is not reproducible within a process (random initial
# weights and batch order are drawn anew by each fit; `seed` seeds the Monte Carlo sampling, not the training).
NOT_REPRODUCIBLE = "fits twice and compares the predictions: each fit draws new initial weights and batch order"
EXPECTED_FAILED_CHECKS = {
    "MCDropoutClassifier": {
        "check_classifier_data_not_an_array": NOT_REPRODUCIBLE,
        "check_supervised_y_2d": NOT_REPRODUCIBLE,
        "check_fit_idempotent": NOT_REPRODUCIBLE,
        "check_classifiers_one_label_sample_weights": (
            "expects the classes of weight 0 never predicted: whether two epochs from random initial weights drive "
            "their probabilities below the one class trained on depends on those weights (not on TensorFlow here)"
        ),
    },
    "MCDropoutRegressor": {
        "check_regressor_data_not_an_array": NOT_REPRODUCIBLE,
        "check_supervised_y_2d": NOT_REPRODUCIBLE,
        "check_regressors_int": NOT_REPRODUCIBLE,
        "check_fit_idempotent": NOT_REPRODUCIBLE,
    },
}


class Build:
    """`build` with a repr that names it: the checks' test ids hold the estimators' reprs, which must be the same in
    every pytest-xdist worker (a function's repr holds its address)."""

    def __call__(self, X, y, **arguments):
        return build(X, y, **arguments)

    def __repr__(self):
        return "build"


CHECKED = [
    MCDropoutClassifier(Build(), samples=5, seed=0, fit_kwargs={"epochs": 2, "verbose": 0}),
    MCDropoutRegressor(Build(), samples=5, seed=0, model_kwargs=REGRESSION, fit_kwargs={"epochs": 2, "verbose": 0}),
]


@pytest.mark.slow
@parametrize_with_checks(CHECKED, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__])
def test_scikit_learn_estimator_checks(estimator, check):
    keras.utils.set_random_seed(0)
    check(estimator)


# ---------------------------------------------------------------- split conformal prediction with MAPIE

SIGMAS = 3.0


def _coverage_bounds(alpha, n_conformalize, n_test):
    """Split conformal coverage on ``n_test`` held-out points: at least ``1 - alpha`` and at most ``1 - alpha +
    1 / (n_conformalize + 1)`` in expectation, within 3 standard errors of the calibration quantile's and the test
    points' binomial spread."""
    spread = SIGMAS * math.sqrt(alpha * (1 - alpha) * (1 / n_conformalize + 1 / n_test))
    return 1 - alpha - spread, 1 - alpha + 1 / (n_conformalize + 1) + spread


def _splits(x, y):
    """Train, conformalize and test sets of 1,000, 1,000 and 2,000 points."""
    return (x[:1000], y[:1000]), (x[1000:2000], y[1000:2000]), (x[2000:], y[2000:])


@pytest.mark.slow
def test_mapie_split_conformal_sets_reach_their_coverage():
    mapie = pytest.importorskip("mapie.classification", reason="MAPIE is the optional extra kerasdrop[conformal]")
    from sklearn.datasets import make_classification

    x, y = make_classification(4000, n_features=6, n_informative=4, n_classes=3, n_clusters_per_class=1, random_state=0)
    labels = np.array([10, 20, 30])[y]
    (x_train, y_train), (x_conformalize, y_conformalize), (x_test, y_test) = _splits(x, labels)
    keras.utils.set_random_seed(0)
    clf = MCDropoutClassifier(build, samples=30, seed=0, fit_kwargs={"epochs": 20, "batch_size": 64, "verbose": 0})
    clf.fit(x_train, y_train)
    alpha = 0.1
    conformal = mapie.SplitConformalClassifier(clf, confidence_level=1 - alpha, prefit=True)
    predicted, sets = conformal.conformalize(x_conformalize, y_conformalize).predict_set(x_test)
    np.testing.assert_array_equal(predicted, clf.predict(x_test))
    covered = sets[np.arange(len(y_test)), np.searchsorted(clf.classes_, y_test), 0]
    low, high = _coverage_bounds(alpha, 1000, 2000)
    assert low <= covered.mean() <= high, f"coverage {covered.mean():.4f} outside [{low:.4f}, {high:.4f}]"
    accuracy = np.mean(predicted == y_test)
    # Informative sets: a set holds the predicted class and, beyond it, about what the errors need.
    assert sets[..., 0].sum(axis=1).mean() < 1 + 2 * (1 - accuracy), f"accuracy {accuracy:.3f}"


@pytest.mark.slow
def test_mapie_split_conformal_intervals_reach_their_coverage():
    mapie = pytest.importorskip("mapie.regression", reason="MAPIE is the optional extra kerasdrop[conformal]")
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, size=(4000, 2))
    noise = 0.3
    y = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] + rng.normal(scale=noise, size=4000)
    (x_train, y_train), (x_conformalize, y_conformalize), (x_test, y_test) = _splits(x, y)
    keras.utils.set_random_seed(0)
    reg = MCDropoutRegressor(
        build,
        samples=30,
        seed=0,
        model_kwargs={**REGRESSION, "rate": 0.1},
        fit_kwargs={"epochs": 60, "batch_size": 64, "verbose": 0},
    )
    reg.fit(x_train, y_train)
    alpha = 0.1
    conformal = mapie.SplitConformalRegressor(reg, confidence_level=1 - alpha, prefit=True)
    predicted, intervals = conformal.conformalize(x_conformalize, y_conformalize).predict_interval(x_test)
    np.testing.assert_array_equal(predicted, reg.predict(x_test))
    lower, upper = intervals[:, 0, 0], intervals[:, 1, 0]
    covered = (lower <= y_test) & (y_test <= upper)
    low, high = _coverage_bounds(alpha, 1000, 2000)
    assert low <= covered.mean() <= high, f"coverage {covered.mean():.4f} outside [{low:.4f}, {high:.4f}]"
    # Informative intervals: the width of the noise's own 90% interval (2 × 1.645 σ), up to the model's error.
    assert np.mean(upper - lower) < 1.5 * 2 * 1.645 * noise
