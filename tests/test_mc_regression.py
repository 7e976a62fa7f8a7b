"""kerasdrop.MCDropout on regression outputs: a heteroscedastic head's moments (aleatoric, epistemic, predictive),
the streamed Monte Carlo log-likelihood against a direct logsumexp, and clear errors for what would be meaningless."""

import keras
import numpy as np
import pytest
from scipy.special import logsumexp

import kerasdrop
from tests import backend

X = np.random.default_rng(0).normal(size=(23, 3)).astype("float32")
Y = np.random.default_rng(1).normal(size=23)


def _model(units):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    hidden = keras.layers.Dropout(0.3)(keras.layers.Dense(16, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(units)(hidden))


def _mixture_log_likelihood(means, variances, y):
    """log (1/T) Σ_t N(y; means_t, variances_t), directly, per input."""
    log_densities = -0.5 * np.log(2 * np.pi * variances) - 0.5 * np.square(y - means) / variances
    return logsumexp(log_densities, axis=0) - np.log(len(means))


def test_gaussian_head_moments_are_those_of_its_samples():
    result = kerasdrop.MCDropout(_model(2), samples=200, output_type="gaussian", seed=3).predict(
        X, verbose=0, keep_samples=True
    )
    means, variances = result.samples.astype("float64"), result.sample_variances.astype("float64")
    assert result.output_type == "gaussian"
    assert means.shape == variances.shape == (200, 23, 1)
    assert np.all(variances > 0)
    np.testing.assert_allclose(result.mean, means.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.epistemic_variance, means.var(0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(result.aleatoric_variance, variances.mean(0), rtol=1e-5)
    np.testing.assert_allclose(result.predictive_variance(), means.var(0) + variances.mean(0), rtol=1e-4)


def test_gaussian_head_splits_the_last_axis_into_mean_and_log_variance():
    # A head whose second unit is 2 * first + 1 exactly: each sample's log variance is then 2 * its mean + 1.
    model = _model(2)
    kernel, bias = model.layers[-1].get_weights()
    kernel[:, 1] = 2 * kernel[:, 0]
    bias[1] = 2 * bias[0] + 1
    model.layers[-1].set_weights([kernel, bias])
    result = kerasdrop.MCDropout(model, samples=50, output_type="gaussian", seed=3).predict(
        X, verbose=0, keep_samples=True
    )
    assert np.ptp(result.samples, axis=0).max() > 0  # the samples differ
    np.testing.assert_allclose(np.log(result.sample_variances), 2 * result.samples + 1, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch_size", [None, 7])
def test_regression_log_likelihood_is_the_logsumexp_of_the_samples(batch_size):
    mc = kerasdrop.MCDropout(_model(1), samples=300, output_type="regression", seed=4)
    streamed = mc.log_likelihood(X, Y, noise_variance=0.5, batch_size=batch_size)
    samples = mc.predict(X, verbose=0, keep_samples=True, batch_size=batch_size).samples[..., 0].astype("float64")
    assert streamed.shape == (23,)
    np.testing.assert_allclose(streamed, _mixture_log_likelihood(samples, 0.5, Y), rtol=1e-10, atol=1e-10)


class SubclassedRegressor(keras.Model):
    """A subclassed model: it has no graph of layers, so its outputs are known only once it is called."""

    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.drop = keras.layers.Dropout(0.3)
        self.head = keras.layers.Dense(1)

    def call(self, inputs, training=False):
        return self.head(self.drop(self.hidden(inputs), training=training))


def test_log_likelihood_on_a_subclassed_model_before_any_predict():
    keras.utils.set_random_seed(0)
    model = SubclassedRegressor()
    model(X[:1])
    mc = kerasdrop.MCDropout(model, samples=100, output_type="regression", seed=4)
    streamed = mc.log_likelihood(X, Y, noise_variance=0.5, batch_size=7)
    samples = mc.predict(X, verbose=0, keep_samples=True, batch_size=7).samples[..., 0].astype("float64")
    np.testing.assert_allclose(streamed, _mixture_log_likelihood(samples, 0.5, Y), rtol=1e-10, atol=1e-10)


def test_gaussian_log_likelihood_uses_the_heads_own_variances():
    mc = kerasdrop.MCDropout(_model(2), samples=150, output_type="gaussian", seed=5)
    streamed = mc.log_likelihood(X, Y[:, None])
    result = mc.predict(X, verbose=0, keep_samples=True)
    means, variances = (values[..., 0].astype("float64") for values in (result.samples, result.sample_variances))
    np.testing.assert_allclose(streamed, _mixture_log_likelihood(means, variances, Y), rtol=1e-10, atol=1e-10)


def test_log_likelihood_refuses_what_would_be_meaningless():
    regression = kerasdrop.MCDropout(_model(1), samples=5, output_type="regression")
    with pytest.raises(ValueError, match="noise_variance.*observation noise variance 1/τ"):
        regression.log_likelihood(X, Y)
    for bad in (0.0, -1.0, float("nan"), [1.0, 2.0]):
        with pytest.raises(ValueError, match="noise_variance"):
            regression.log_likelihood(X, Y, noise_variance=bad)
    with pytest.raises(ValueError, match=r"`y`.*\(23, 1\)"):
        regression.log_likelihood(X, Y[:10], noise_variance=1.0)
    with pytest.raises(ValueError, match="`y`.*finite"):
        regression.log_likelihood(X, np.where(np.arange(23) == 3, np.nan, Y), noise_variance=1.0)
    gaussian = kerasdrop.MCDropout(_model(2), samples=5, output_type="gaussian")
    with pytest.raises(ValueError, match="noise_variance.*'gaussian'.*pass noise_variance=None"):
        gaussian.log_likelihood(X, Y, noise_variance=1.0)
    classifier = kerasdrop.MCDropout(_model(3), samples=5, output_type="logits")
    with pytest.raises(ValueError, match="single regression or gaussian output.*'logits'"):
        classifier.log_likelihood(X, Y, noise_variance=1.0)
    with pytest.raises(ValueError, match="takes arrays"):
        regression.log_likelihood((batch for batch in [X]), Y, noise_variance=1.0)


@pytest.mark.parametrize("units", [1, 3])
def test_a_gaussian_output_needs_an_even_last_axis(units):
    with pytest.raises(ValueError, match=rf"'gaussian' for the output .*\(None, {units}\).*even"):
        kerasdrop.MCDropout(_model(units), output_type="gaussian")


def test_regression_parts_are_refused_on_classifiers_and_noise_is_needed_without_a_head():
    logits = kerasdrop.MCDropout(_model(3), samples=5, output_type="logits").predict(X, verbose=0)
    for name in ("epistemic_variance", "aleatoric_variance"):
        with pytest.raises(ValueError, match="output_type='logits'"):
            getattr(logits, name)
    regression = kerasdrop.MCDropout(_model(1), samples=5, output_type="regression").predict(X, verbose=0)
    np.testing.assert_array_equal(regression.epistemic_variance, regression.variance)
    with pytest.raises(ValueError, match="aleatoric variance.*output_type='gaussian'"):
        _ = regression.aleatoric_variance


@pytest.mark.slow  # writes and loads a SavedModel
@backend.tensorflow_only("MCDropout.export (a SavedModel)")
def test_the_saved_model_serves_a_gaussian_heads_variances(tmp_path):
    import tensorflow as tf

    mc = kerasdrop.MCDropout(_model(2), samples=400, output_type="gaussian", seed=6)
    mc.export(tmp_path / "served")
    loaded = tf.saved_model.load(str(tmp_path / "served"))  # keep it: its variables live as long as it does
    served = {key: value.numpy() for key, value in loaded.serve(X).items()}
    assert set(served) == {"mean", "variance", "aleatoric_variance", "predictive_variance"}
    total = served["variance"] + served["aleatoric_variance"]
    np.testing.assert_allclose(served["predictive_variance"], total, rtol=1e-5)
    expected = mc.predict(X, verbose=0)  # the first call of the SavedModel draws what predict draws
    np.testing.assert_allclose(served["aleatoric_variance"], expected.aleatoric_variance, rtol=1e-4)
