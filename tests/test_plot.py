"""kerasdrop.plot: valid PNG files, and figures that hold the data they claim to show."""

import numpy as np
import pytest

from kerasdrop import metrics, plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_valid_png(path, width, height):
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 10_000  # axes, bars, text: far more than an empty image
    image = matplotlib.image.imread(str(path))
    assert image.shape[:2] == (height, width)
    assert image[..., :3].std() > 0.05  # not a blank canvas


def predictions(n=400, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)) * 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.where(rng.random(n) < 0.7, probs.argmax(axis=1), rng.integers(0, classes, n))
    return probs, labels


def test_reliability_diagram_png_and_data(tmp_path):
    probs, labels = predictions()
    path = tmp_path / "reliability.png"
    figure = plot.reliability_diagram(probs, labels, path=str(path), bins=10)
    assert_valid_png(path, 500, 500)
    curve = metrics.calibration_curve(probs, labels, bins=10)
    accuracy_bars, gap_bars = figure.axes[0].containers
    heights = np.array([bar.get_height() for bar in accuracy_bars])
    np.testing.assert_allclose(heights, np.nan_to_num(curve.accuracy), atol=1e-12)
    filled = curve.counts > 0
    gaps = np.array([bar.get_height() for bar in gap_bars])
    np.testing.assert_allclose(gaps[filled], (curve.confidence - curve.accuracy)[filled], atol=1e-12)
    np.testing.assert_allclose([bar.get_x() for bar in accuracy_bars], curve.edges[:-1], atol=1e-12)
    ece = metrics.expected_calibration_error(probs, labels, bins=10)
    assert f"ECE {ece:.3f}" in figure.axes[0].get_title()


def test_reliability_diagram_without_path_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    probs, labels = predictions(50)
    figure = plot.reliability_diagram(probs, labels)
    assert len(figure.axes[0].containers[0]) == 15
    assert list(tmp_path.iterdir()) == []


def test_uncertainty_histogram_png_and_data(tmp_path):
    rng = np.random.default_rng(1)
    inside, outside = rng.gamma(1.0, 0.1, 500), rng.uniform(0.5, 2.0, 300)
    path = tmp_path / "histogram.png"
    figure = plot.uncertainty_histogram(inside, outside, path=str(path), bins=20)
    assert_valid_png(path, 500, 400)
    edges = np.histogram_bin_edges(np.concatenate([inside, outside]), bins=20)
    first, second = figure.axes[0].containers
    np.testing.assert_array_equal([bar.get_height() for bar in first], np.histogram(inside, edges)[0])
    np.testing.assert_array_equal([bar.get_height() for bar in second], np.histogram(outside, edges)[0])
    np.testing.assert_allclose([bar.get_x() for bar in second], edges[:-1])
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["in-distribution (n=500)", "out-of-distribution (n=300)"]


@pytest.mark.parametrize("inside, outside", [([], [1.0]), ([0.1, np.nan], [1.0]), ([0.1], [np.inf])])
def test_uncertainty_histogram_rejects_empty_or_non_finite(inside, outside):
    with pytest.raises(ValueError, match="finite"):
        plot.uncertainty_histogram(inside, outside)


def test_reliability_diagram_checks_its_inputs():
    with pytest.raises(ValueError, match="sum to 1"):
        plot.reliability_diagram([[0.9, 0.9]], [0])
    with pytest.raises(ValueError, match="`bins`"):
        plot.reliability_diagram([[0.9, 0.1]], [0], bins=0)


def regression_predictions(n=300, seed=2):
    """Samples ``(T, N)`` of a 1-D regression, and targets a little noisier than the noise variance 0.5 says."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n)
    samples = np.sin(x) + 0.3 * rng.normal(size=(20, n))
    return x, samples, np.sin(x) + rng.normal(size=n)


def test_regression_calibration_png_and_data(tmp_path):
    _, samples, y = regression_predictions()
    path = tmp_path / "regression_calibration.png"
    figure = plot.regression_calibration(samples, y, noise_variance=0.5, path=str(path))
    assert_valid_png(path, 500, 500)
    curve = metrics.regression_calibration_curve(samples, y, 0.5)
    observed, diagonal = figure.axes[0].lines
    np.testing.assert_allclose(observed.get_xdata(), curve.expected, atol=1e-12)
    np.testing.assert_allclose(observed.get_ydata(), curve.observed, atol=1e-12)
    np.testing.assert_allclose(diagonal.get_xydata(), [[0, 0], [1, 1]])
    assert figure.axes[0].get_title() == "Regression calibration"


def test_regression_calibration_levels_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, samples, y = regression_predictions(50)
    figure = plot.regression_calibration(samples, y, 0.5, levels=[0.5, 0.9])
    np.testing.assert_allclose(figure.axes[0].lines[0].get_xdata(), [0.5, 0.9])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="`noise_variance`"):
        plot.regression_calibration(samples, y)
    with pytest.raises(ValueError, match="`levels`"):
        plot.regression_calibration(samples, y, 0.5, levels=[1.0])


def test_regression_fit_png_and_data(tmp_path):
    x, samples, y = regression_predictions()
    lower, upper = metrics.predictive_interval(samples, 0.9, noise_variance=0.5)
    mean = samples.mean(0)
    path = tmp_path / "fit.png"
    figure = plot.regression_fit(x, y, mean, lower, upper, path=str(path), interval_label="90% interval")
    assert_valid_png(path, 600, 400)
    axes = figure.axes[0]
    order = np.argsort(x)
    np.testing.assert_allclose(axes.lines[0].get_xydata(), np.column_stack([x[order], mean[order]]))
    band, points = axes.collections
    np.testing.assert_allclose(points.get_offsets(), np.column_stack([x, y]))
    # The band's outline passes through every (x, lower) and (x, upper).
    outline = band.get_paths()[0].vertices
    for ends in (lower, upper):
        for point in np.column_stack([x, ends]):
            assert np.any(np.all(np.isclose(outline, point, rtol=0, atol=1e-9), axis=1)), point
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["90% interval", "predictive mean", "data (n=300)"]


def test_regression_fit_checks_its_inputs():
    x = np.arange(3.0)
    with pytest.raises(ValueError, match=r"`upper`.*upper >= lower.*upper\[1\]"):
        plot.regression_fit(x, x, x, [0.0, 2.0, 0.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"`mean`.*\(3,\).*shape \(2,\)"):
        plot.regression_fit(x, x, x[:2], x - 1, x + 1)
    with pytest.raises(ValueError, match=r"`lower`.*one output.*\(3, 2\)"):
        plot.regression_fit(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"`y`.*finite"):
        plot.regression_fit(x, [0.0, np.nan, 1.0], x, x - 1, x + 1)
