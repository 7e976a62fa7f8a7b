"""kerasdrop.calibration.TemperatureScaling: the fitted temperature minimises a direct NumPy computation of the Monte
Carlo NLL, recovers a known temperature, is applied to every sample before the average (softmax or sigmoid), keeps
the result's API, and refuses what it cannot calibrate."""

import keras
import numpy as np
import pytest
from scipy.special import expit, softmax

import kerasdrop
from kerasdrop.calibration import TemperatureScaling


def _draw(rng, probs):
    """One class per row of ``probs``, drawn from it."""
    return (rng.uniform(size=(len(probs), 1)) > np.cumsum(probs, axis=-1)).sum(axis=-1)


def _overconfident(n=4000, classes=4, samples=8, sharpness=3.0, seed=0):
    """Labels drawn from softmax(z) and Monte Carlo samples softmax(sharpness · (z + noise_t)): overconfident."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)) * 1.5
    labels = _draw(rng, softmax(logits, axis=-1))
    noisy = logits[None] + 0.3 * rng.normal(size=(samples, n, classes))
    return softmax(sharpness * noisy, axis=-1), labels, sharpness * noisy


def _nll_by_hand(logits, labels, temperature):
    """-(1/N) Σ_n log((1/T) Σ_t softmax(z_t / τ)[y_n]), with exponentials and sums only."""
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    probs = np.exp(scaled) / np.exp(scaled).sum(axis=-1, keepdims=True)
    return -np.mean(np.log(probs[:, np.arange(len(labels)), labels].mean(axis=0)))


def test_the_temperature_minimises_the_monte_carlo_nll():
    samples, labels, logits = _overconfident()
    scaling = TemperatureScaling().fit(samples, labels)
    grid = np.exp(np.linspace(np.log(0.5), np.log(10.0), 200))
    by_hand = np.array([_nll_by_hand(logits, labels, t) for t in grid])
    best = grid[np.argmin(by_hand)]
    assert abs(np.log(scaling.temperature / best)) <= np.log(grid[1] / grid[0])  # within one grid step
    assert scaling.nll_after <= by_hand.min() + 1e-9
    assert scaling.nll_before == pytest.approx(_nll_by_hand(logits, labels, 1.0), rel=1e-10)
    assert scaling.nll_after == pytest.approx(_nll_by_hand(logits, labels, scaling.temperature), rel=1e-10)


def test_a_known_temperature_is_recovered_from_one_sample():
    # One sample: the predictions are softmax(3 z), the labels drawn from softmax(z), so τ = 3 is the truth. With
    # these 20,000 seeded labels the fitted τ is 3.02.
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(20_000, 4)) * 1.5
    labels = _draw(rng, softmax(logits, axis=-1))
    scaling = TemperatureScaling().fit(softmax(3.0 * logits, axis=-1)[None], labels)
    assert scaling.temperature == pytest.approx(3.0, abs=0.15)


def test_every_sample_is_scaled_before_the_average():
    samples, labels, logits = _overconfident(n=300)
    scaling = TemperatureScaling().fit(samples, labels)
    calibrated = scaling.transform(samples)
    expected = softmax(logits / scaling.temperature, axis=-1)
    np.testing.assert_allclose(calibrated.samples, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(calibrated.mean, expected.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(calibrated.samples.argmax(-1), samples.argmax(-1))
    np.testing.assert_allclose(
        calibrated.expected_entropy(), kerasdrop.metrics.expected_entropy(expected), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        calibrated.mutual_information(), kerasdrop.metrics.mutual_information(expected), rtol=1e-3, atol=1e-5
    )
    assert calibrated.output_type == "probabilities" and calibrated.num_samples == 8


def test_sigmoid_outputs_scale_their_log_odds():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(5, 3000)) + 2.0 * rng.normal(size=3000)
    labels = (rng.uniform(size=3000) < expit(z.mean(axis=0) / 2.5)).astype(int)
    scaling = TemperatureScaling().fit(expit(z), labels)
    grid = np.linspace(1.0, 5.0, 401)
    by_hand = [-np.mean(np.log(np.where(labels == 1, expit(z / t), expit(-z / t)).mean(axis=0))) for t in grid]
    assert scaling.temperature == pytest.approx(grid[np.argmin(by_hand)], abs=0.01)
    calibrated = scaling.transform(expit(z))
    np.testing.assert_allclose(calibrated.samples, expit(z / scaling.temperature), rtol=1e-5, atol=1e-7)
    assert calibrated.predictive_entropy().shape == (3000,)


def _classifier(units, activation):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5,))
    hidden = kerasdrop.Dropout(0.3)(keras.layers.Dense(32, activation="relu")(inputs))
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation)(hidden))


@pytest.mark.parametrize(
    "units, activation, labels_shape", [(3, "softmax", (40,)), (1, "sigmoid", (40, 1)), (1, "sigmoid", (40,))]
)
def test_results_of_mc_dropout_keep_their_api(units, activation, labels_shape):
    x = np.random.default_rng(3).normal(size=(40, 5)).astype("float32")
    result = kerasdrop.MCDropout(_classifier(units, activation), samples=6, seed=1, consistent=True).predict(
        x, verbose=0, keep_samples=True
    )
    rng = np.random.default_rng(4)  # labels drawn from the predictions: a temperature near 1, inside the bounds
    if units > 1:
        labels = _draw(rng, result.mean)
    else:
        labels = (rng.uniform(size=(40, 1)) < result.mean).astype(int).reshape(labels_shape)
    scaling = TemperatureScaling().fit(result, labels)
    calibrated = scaling.transform(result)
    assert calibrated.consistent and calibrated.samples.shape == result.samples.shape
    assert calibrated.mutual_information().shape == (40,)
    again = TemperatureScaling().fit(result.samples if units > 1 else result.samples[..., 0], labels.reshape(40))
    assert again.temperature == pytest.approx(scaling.temperature, rel=1e-9)


def test_uninformative_predictions_warn_at_the_bound():
    samples = np.full((3, 200, 2), 0.5)
    samples[..., 0] = 0.9
    samples[..., 1] = 0.1
    labels = np.random.default_rng(5).integers(0, 2, size=200)  # half of them the class given 0.1
    with pytest.warns(RuntimeWarning, match="lowest at the bound"):
        TemperatureScaling(bounds=(0.5, 1.5)).fit(samples, labels)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s, y: TemperatureScaling().fit(s, y + 4), r"labels in \[0, 4\)"),
        (lambda s, y: TemperatureScaling().fit(s * 2, y), "probabilities"),
        (lambda s, y: TemperatureScaling().fit(s[0], y), r"0/1 labels of shape \(4,\)"),
        (lambda s, y: TemperatureScaling().fit(s, y[:10]), r"shape \(300,\)"),
        (lambda s, y: TemperatureScaling().transform(s), "not fitted"),
        (lambda s, y: TemperatureScaling(bounds=(2.0, 3.0)), "0 < low < 1 < high"),
        (lambda s, y: TemperatureScaling(bounds=0.5), "a pair"),
        (lambda s, y: TemperatureScaling().fit(s[..., 0], y), r"0 or 1"),
    ],
)
def test_bad_input_raises_naming_it(call, message):
    samples, labels, _ = _overconfident(n=300)
    with pytest.raises(ValueError, match=message):
        call(samples, labels)


def test_results_that_cannot_be_calibrated_are_refused():
    x = np.ones((4, 5), "float32")
    classifier = _classifier(3, "softmax")
    without_samples = kerasdrop.MCDropout(classifier, samples=3).predict(x, verbose=0)
    with pytest.raises(ValueError, match="keep_samples=True"):
        TemperatureScaling().fit(without_samples, np.zeros(4, int))
    regression = kerasdrop.MCDropout(classifier, samples=3, output_type="regression").predict(
        x, verbose=0, keep_samples=True
    )
    with pytest.raises(ValueError, match="output_type='regression'.*class probabilities"):
        TemperatureScaling().fit(regression, np.zeros(4, int))
