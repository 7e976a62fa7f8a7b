"""scikit-learn estimators that predict with Monte Carlo dropout: `MCDropoutClassifier` and `MCDropoutRegressor`.

They are Keras's own scikit-learn wrappers (``keras.wrappers.SKLearnClassifier`` and ``SKLearnRegressor``), which
build and train the Keras model, with every prediction made by `kerasdrop.MCDropout` on the trained model: the mean
of ``samples`` Monte Carlo draws, and the draws themselves for what needs them (active learning, Thompson
sampling). So scikit-learn tools take a Keras model with dropout: conformal prediction (MAPIE), model selection,
pipelines, active learning (``sample_proba``, ``sample_y`` and ``predict(X, return_std=True)`` are the methods that
scikit-activeml and scikit-learn's Gaussian processes name so).

scikit-learn (1.6 or newer) is needed to use them, not to import this module: Keras's wrappers raise an
``ImportError`` that says so when one is made without it.
"""

import keras
import numpy as np

from kerasdrop._validation import ArgumentTypeError, _message, check_bool, check_choice, check_positive_int, check_seed
from kerasdrop.mc import MCDropout, MCDropoutResult

__all__ = ["MCDropoutClassifier", "MCDropoutRegressor"]

_CLASSIFIER_OUTPUT_TYPES = ("auto", "probabilities", "logits")


def _output_of(model):
    """How messages name the output of ``model``."""
    names = getattr(model, "output_names", None)  # functional models
    if not names and isinstance(model, keras.Sequential) and model.layers:
        names = [model.layers[-1].name]
    where = f"output {names[0]!r}" if names else "the output"
    return f"{where} of model {model.name!r}"


class _Predictors:
    """The `kerasdrop.MCDropout` of a fitted estimator, made again when its arguments change (or the model).

    An attribute that compares by identity: predicting leaves the estimator's ``__dict__`` as it was (as
    scikit-learn checks). It is not pickled: an unpickled or copied estimator makes its own on its first prediction.
    """

    def __init__(self):
        self.key = self.mc = None

    def __reduce__(self):
        return (_Predictors, ())

    def get(self, model, **arguments):
        key = (model, *sorted(arguments.items()))
        if self.mc is None or self.key[0] is not model or self.key[1:] != key[1:]:
            self.key, self.mc = key, MCDropout(model, **arguments)
        return self.mc


class _MonteCarloEstimator:
    """What both estimators add to Keras's wrappers: their arguments checked, a copy of ``fit_kwargs`` per fit,
    ``warm_start``, a clone that keeps every argument, and Monte Carlo predictions."""

    def _check_arguments(self):
        if not (isinstance(self.model, keras.Model) or callable(self.model)):
            raise ArgumentTypeError(
                _message("model", "a compiled keras.Model, or a function that builds and compiles one", self.model)
            )
        check_positive_int("samples", self.samples)
        check_seed(self.seed)
        check_bool("consistent", self.consistent)
        check_bool("warm_start", self.warm_start)

    def fit(self, X, y, **kwargs):
        """Trains the Keras model on ``X`` and ``y`` (Keras's wrapper: ``model.fit(X, y, **fit_kwargs, **kwargs)``).

        Args:
            X: array-like ``(n_samples, n_features)``.
            y: array-like ``(n_samples,)``: class labels for the classifier, targets for the regressor.
            **kwargs: arguments of ``keras.Model.fit`` (``epochs``, ``batch_size``, ``verbose``, ``callbacks``,
                ...), over those of ``fit_kwargs``.

        Returns:
            The estimator.
        """
        self._check_arguments()
        fit_kwargs = self.fit_kwargs
        self.fit_kwargs = dict(fit_kwargs or {})  # Keras's fit adds `kwargs` to this dict: the argument stays as set
        try:
            super().fit(X, y, **kwargs)
        finally:
            self.fit_kwargs = fit_kwargs
        self._predictors = _Predictors()
        return self

    def _get_model(self, X, y):
        """The model to train: with ``warm_start`` the fitted one, else Keras's (a fresh clone, or built)."""
        if self.warm_start and isinstance(getattr(self, "model_", None), keras.Model):
            return self.model_
        model = super()._get_model(X, y)
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"Invalid value received for argument `model`: the function {self.model!r} returned an object of "
                f"type {type(model).__name__}. Expected it to build and return a compiled keras.Model."
            )
        return model

    def __sklearn_clone__(self):
        """An unfitted estimator with the same arguments (the model itself is shared: fitting never trains it)."""
        from sklearn.base import clone

        params = self.get_params(deep=False)
        return type(self)(
            **{name: value if name == "model" else clone(value, safe=False) for name, value in params.items()}
        )

    def _mc_result(self, X, samples=None, seed=None, keep_samples=False):
        """The `MCDropoutResult` of the fitted model on ``X`` (``samples`` and ``seed`` default to the estimator's)."""
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        predictors = self.__dict__.get("_predictors") or _Predictors()
        mc = predictors.get(
            self.model_,
            samples=self.samples if samples is None else samples,
            seed=self.seed if seed is None else seed,
            consistent=self.consistent,
            output_type=self._output_type(),
        )
        result = mc.predict(X, verbose=0, keep_samples=keep_samples)
        if not isinstance(result, MCDropoutResult):
            raise ValueError(
                f"{type(self).__name__} needs a model with one output; model {self.model_.name!r} has "
                f"{len(keras.tree.flatten(result))}."
            )
        return result


def _sample_arguments(n_samples, random_state):
    """``(samples, seed)`` for `MCDropout` from scikit-learn's ``n_samples`` and ``random_state`` (None: the
    estimator's); a ``numpy.random.RandomState`` gives the seed it draws next."""
    if n_samples is not None:
        n_samples = check_positive_int("n_samples", n_samples)
    if isinstance(random_state, np.random.RandomState):
        return n_samples, int(random_state.randint(np.iinfo(np.int32).max))
    if random_state is None or (isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)):
        return n_samples, None if random_state is None else int(random_state)
    raise ArgumentTypeError(_message("random_state", "None, an int or a numpy.random.RandomState", random_state))


def _no_decision_function(self):
    raise AttributeError(
        f"{type(self).__name__} has no decision_function: its predictions are Monte Carlo means of the class "
        "probabilities (predict_proba); Keras's decision_function would be one pass with dropout off."
    )


class MCDropoutClassifier(_MonteCarloEstimator, keras.wrappers.SKLearnClassifier):
    """A scikit-learn classifier around a Keras model with dropout, predicting by Monte Carlo dropout.

    ``fit`` is Keras's ``SKLearnClassifier.fit``: the labels are one-hot encoded (``classes_``, in sorted order) and
    the model trained on them, so it must output one probability per class (softmax, or logits with
    ``output_type="logits"``). ``predict_proba(X)`` is the mean of ``samples`` Monte Carlo draws of those
    probabilities, ``kerasdrop.MCDropout(model_, samples, seed).predict(X).mean``; ``predict(X)`` the class of
    highest mean probability; ``sample_proba(X)`` the draws ``(samples, n, n_classes)``.

    Args:
        model: a compiled ``keras.Model`` (cloned, with fresh weights, by each ``fit``), or a function
            ``model(X=..., y=..., **model_kwargs)`` that builds and compiles one (``y`` is one-hot encoded).
        samples: int > 0, the Monte Carlo samples ``T`` per prediction.
        seed: None or int. With an int every prediction draws the same noise for the same inputs (it seeds the
            sampling, not the training). With None each prediction draws anew.
        consistent: bool, whether sample ``t`` of every input is drawn by one and the same network (joint draws
            across inputs, as BatchBALD needs); see `kerasdrop.MCDropout`.
        output_type: how the model's output is read: "auto" (probabilities when the output layer's activation is
            softmax, an error otherwise), "probabilities" or "logits" (softmax applied to each sample).
        warm_start: bool. True: a second ``fit`` goes on training the fitted model instead of a fresh one.
        model_kwargs: dict or None, keyword arguments of ``model`` when it is a function.
        fit_kwargs: dict or None, keyword arguments of ``keras.Model.fit`` (those passed to ``fit`` win).

    Attributes:
        model_: the trained ``keras.Model``.
        classes_: the class labels, in the order of the probabilities.
        history_: the ``History`` of the last ``fit``.

    Example:
        ```python
        def build(X, y):
            inputs = keras.Input((X.shape[1],))
            hidden = keras.layers.Dropout(0.2)(keras.layers.Dense(64, activation="relu")(inputs))
            model = keras.Model(inputs, keras.layers.Dense(y.shape[1], activation="softmax")(hidden))
            model.compile(optimizer="adam", loss="categorical_crossentropy")
            return model

        clf = kerasdrop.sklearn.MCDropoutClassifier(build, samples=50, seed=0, fit_kwargs={"epochs": 20})
        clf.fit(X_train, y_train)
        clf.predict_proba(X_test)  # (n, n_classes): Monte Carlo means
        clf.sample_proba(X_test)   # (50, n, n_classes): the draws
        ```
    """

    def __init__(
        self,
        model,
        samples=30,
        seed=None,
        consistent=False,
        output_type="auto",
        warm_start=False,
        model_kwargs=None,
        fit_kwargs=None,
    ):
        super().__init__(model, warm_start=warm_start, model_kwargs=model_kwargs, fit_kwargs=fit_kwargs)
        self.samples = samples
        self.seed = seed
        self.consistent = consistent
        self.output_type = output_type

    decision_function = property(_no_decision_function)

    def _check_arguments(self):
        super()._check_arguments()
        check_choice("output_type", self.output_type, _CLASSIFIER_OUTPUT_TYPES)

    def _output_type(self):
        return self.output_type

    def _probabilities(self, X, samples=None, seed=None, keep_samples=False):
        """The `MCDropoutResult` of ``X``, its output checked to be one distribution over ``classes_``."""
        result = self._mc_result(X, samples, seed, keep_samples)
        where = _output_of(self.model_)
        if result.output_type not in ("probabilities", "logits"):
            raise ValueError(
                f"{type(self).__name__} needs class probabilities, but MCDropout reads {where} as "
                f"{result.output_type} (output_type={self.output_type!r}; its layer has no softmax activation). "
                "Give it activation='softmax', or pass output_type='logits' if it outputs raw scores."
            )
        if result.mean.ndim != 2 or result.mean.shape[1] != len(self.classes_) or result._kind.entropy != "categorical":
            raise ValueError(
                f"{type(self).__name__} needs one distribution over the {len(self.classes_)} classes per input (a "
                f"softmax over {len(self.classes_)} units), but {where} gives {result.output_type} of shape "
                f"{result.mean.shape[1:]} per input"
                + (", each unit a probability of its own (sigmoid)." if result._kind.entropy == "binary" else ".")
            )
        return result

    def predict_proba(self, X):
        """The Monte Carlo mean of the class probabilities, float32 ``(n, n_classes)`` (columns as ``classes_``)."""
        return self._probabilities(X).mean

    def predict(self, X):
        """The class labels of highest Monte Carlo mean probability, ``(n,)``."""
        probabilities = self.predict_proba(X)  # first: it raises NotFittedError before fit
        return self.classes_.take(np.argmax(probabilities, axis=1))

    def sample_proba(self, X, n_samples=None, random_state=None):
        """The Monte Carlo samples of the class probabilities, float32 ``(n_samples, n, n_classes)`` (scikit-activeml's
        ``sample_proba``; their mean is ``predict_proba(X)`` when both use the estimator's ``samples`` and ``seed``).

        Args:
            X: array-like ``(n, n_features)``.
            n_samples: int > 0, or None for the estimator's ``samples``.
            random_state: None (the estimator's ``seed``), an int, or a ``numpy.random.RandomState``.
        """
        samples, seed = _sample_arguments(n_samples, random_state)
        return self._probabilities(X, samples, seed, keep_samples=True).samples


class MCDropoutRegressor(_MonteCarloEstimator, keras.wrappers.SKLearnRegressor):
    """A scikit-learn regressor around a Keras model with dropout, predicting by Monte Carlo dropout.

    ``fit`` is Keras's ``SKLearnRegressor.fit`` (a target per input, ``y`` of shape ``(n,)``). ``predict(X)`` is the
    mean of ``samples`` Monte Carlo draws of the model's output, ``kerasdrop.MCDropout(model_, samples, seed,
    output_type="regression").predict(X).mean``, with ``return_std=True`` also their standard deviation (the
    epistemic part: no observation noise is added), as scikit-learn's ``GaussianProcessRegressor`` returns them;
    ``sample_y(X, n_samples)`` gives the draws ``(n, n_samples)``, also in its layout.

    Args:
        model: a compiled ``keras.Model`` (cloned, with fresh weights, by each ``fit``), or a function
            ``model(X=..., y=..., **model_kwargs)`` that builds and compiles one. One output unit per target.
        samples: int > 0, the Monte Carlo samples ``T`` per prediction.
        seed: None or int. With an int every prediction draws the same noise for the same inputs (it seeds the
            sampling, not the training). With None each prediction draws anew.
        consistent: bool, whether sample ``t`` of every input is drawn by one and the same network: the draws of
            ``sample_y`` are then functions, jointly drawn across inputs; see `kerasdrop.MCDropout`.
        warm_start: bool. True: a second ``fit`` goes on training the fitted model instead of a fresh one.
        model_kwargs: dict or None, keyword arguments of ``model`` when it is a function.
        fit_kwargs: dict or None, keyword arguments of ``keras.Model.fit`` (those passed to ``fit`` win).

    Attributes:
        model_: the trained ``keras.Model``.
        history_: the ``History`` of the last ``fit``.

    Example:
        ```python
        def build(X, y):
            inputs = keras.Input((X.shape[1],))
            hidden = keras.layers.Dropout(0.1)(keras.layers.Dense(64, activation="relu")(inputs))
            model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
            model.compile(optimizer="adam", loss="mse")
            return model

        reg = kerasdrop.sklearn.MCDropoutRegressor(build, samples=50, seed=0, fit_kwargs={"epochs": 50})
        reg.fit(X_train, y_train)
        mean, std = reg.predict(X_test, return_std=True)
        draws = reg.sample_y(X_test, n_samples=20)  # (n, 20)
        ```
    """

    def __init__(
        self,
        model,
        samples=30,
        seed=None,
        consistent=False,
        warm_start=False,
        model_kwargs=None,
        fit_kwargs=None,
    ):
        super().__init__(model, warm_start=warm_start, model_kwargs=model_kwargs, fit_kwargs=fit_kwargs)
        self.samples = samples
        self.seed = seed
        self.consistent = consistent

    def _output_type(self):
        return "regression"

    def predict(self, X, return_std=False):
        """The Monte Carlo mean of the model's output, ``(n,)`` for one unit (else ``(n, units)``).

        Args:
            X: array-like ``(n, n_features)``.
            return_std: bool, whether to return also the standard deviation of the samples (like the mean).

        Returns:
            The mean, or ``(mean, std)`` with ``return_std=True``; float32.
        """
        return_std = check_bool("return_std", return_std)
        result = self._mc_result(X)
        mean, std = _one_unit_as_vector(result.mean), _one_unit_as_vector(result.std)
        return (mean, std) if return_std else mean

    def sample_y(self, X, n_samples=None, random_state=None):
        """The Monte Carlo samples of the model's output, float32 ``(n, n_samples)`` for one unit (else ``(n, units,
        n_samples)``), in the layout of scikit-learn's ``GaussianProcessRegressor.sample_y``; draws of the model's
        prediction, without observation noise.

        Args:
            X: array-like ``(n, n_features)``.
            n_samples: int > 0, or None for the estimator's ``samples``.
            random_state: None (the estimator's ``seed``), an int, or a ``numpy.random.RandomState``.
        """
        samples, seed = _sample_arguments(n_samples, random_state)
        draws = self._mc_result(X, samples, seed, keep_samples=True).samples  # (T, n, units)
        return _one_unit_as_vector(np.moveaxis(draws, 0, -1))


def _one_unit_as_vector(values):
    """Values ``(n, 1, ...)`` of one output unit as ``(n, ...)``, as Keras's regressor gives its predictions."""
    return values[:, 0] if values.ndim >= 2 and values.shape[1] == 1 else values
