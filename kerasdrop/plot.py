"""Plots of calibration and uncertainty (matplotlib, drawn off-screen on the Agg canvas; no window, no pyplot state).

Each function returns the ``matplotlib.figure.Figure`` it drew (its axes hold the plotted data) and writes it as a
PNG when given a ``path``. Needs matplotlib: ``pip install 'kerasdrop[examples]'``.
"""

import numpy as np

from kerasdrop import metrics
from kerasdrop._validation import check_positive_int
from kerasdrop.metrics.regression import check_intervals


def _figure(size=(5.0, 4.0)):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("kerasdrop.plot needs matplotlib: pip install 'kerasdrop[examples]'") from error
    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
    if path is not None:
        figure.savefig(path, format="png")
    return figure


def reliability_diagram(probs, labels, path=None, bins=15, title="Reliability diagram"):
    """Accuracy against confidence in equal-width bins of the top-class probability (Guo et al. 2017).

    Bars show each bin's accuracy, a hatched bar on top of it the gap to the bin's mean confidence, and the dashed
    diagonal perfect calibration; the title gives the expected calibration error.

    Args:
        probs: array ``(N, C)`` of class probabilities (e.g. an MC dropout ``result.mean``).
        labels: integer array ``(N,)``.
        path: None, or where to write the PNG.
        bins: int > 0, number of bins.
        title: str, the title before "(ECE ...)".

    Returns:
        The figure; ``figure.axes[0].containers`` holds the accuracy bars then the gap bars.
    """
    curve = metrics.calibration_curve(probs, labels, bins)
    ece = metrics.calibration_error_of(curve)
    accuracy = np.nan_to_num(curve.accuracy)
    confidence = np.where(curve.counts > 0, curve.confidence, accuracy)
    figure = _figure((5.0, 5.0))
    axes = figure.add_subplot()
    left, width = curve.edges[:-1], np.diff(curve.edges)
    axes.bar(left, accuracy, width=width, align="edge", color="tab:blue", edgecolor="black", label="accuracy")
    axes.bar(
        left,
        confidence - accuracy,
        bottom=accuracy,
        width=width,
        align="edge",
        color="tab:red",
        alpha=0.3,
        hatch="//",
        edgecolor="tab:red",
        label="gap to confidence",
    )
    axes.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    axes.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top-class probability)", ylabel="accuracy")
    axes.set_title(f"{title} (ECE {ece:.3f})")
    axes.legend(loc="upper left")
    return _save(figure, path)


def _check_values(name, values):
    array = np.asarray(values, dtype="float64").ravel()
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"Invalid value received for argument `{name}`: expected a non-empty array of finite values.")
    return array


def uncertainty_histogram(
    in_distribution,
    out_of_distribution,
    path=None,
    bins=30,
    xlabel="predictive entropy (nats)",
    labels=("in-distribution", "out-of-distribution"),
    title="Uncertainty",
):
    """Overlaid histograms of an uncertainty score (entropy, mutual information, std) on two sets of inputs.

    Both histograms share the same bin edges, so their bars can be compared; a model that knows what it does not
    know puts the out-of-distribution inputs to the right.

    Args:
        in_distribution: array of scores on inputs like the training data.
        out_of_distribution: array of scores on other inputs (noise, rotated images, another dataset).
        path: None, or where to write the PNG.
        bins: int > 0, number of bins over the range of both sets.
        xlabel: str, the score's name.
        labels: two legend labels.
        title: str.

    Returns:
        The figure; ``figure.axes[0].containers`` holds the two histograms' bars, in that order.
    """
    first = _check_values("in_distribution", in_distribution)
    second = _check_values("out_of_distribution", out_of_distribution)
    bins = check_positive_int("bins", bins)
    edges = np.histogram_bin_edges(np.concatenate([first, second]), bins=bins)
    figure = _figure()
    axes = figure.add_subplot()
    for values, label, color in zip((first, second), labels, ("tab:blue", "tab:orange"), strict=True):
        axes.hist(values, bins=edges, alpha=0.55, color=color, edgecolor="black", label=f"{label} (n={values.size})")
    axes.set(xlabel=xlabel, ylabel="inputs", title=title)
    axes.legend()
    return _save(figure, path)


def regression_calibration(
    result_or_samples,
    y,
    noise_variance=None,
    path=None,
    levels=metrics.regression.DEFAULT_LEVELS,
    title="Regression calibration",
):
    """Observed against expected coverage of the central predictive intervals (Kuleshov et al. 2018).

    The line gives, at each level, the fraction of the targets inside the central interval of that level (from
    `kerasdrop.metrics.regression_calibration_curve`); the dashed diagonal is perfect calibration. Below it the
    intervals are too narrow (overconfident), above it too wide.

    Args:
        result_or_samples: Monte Carlo samples ``(T, N)`` or ``(T, N, d)``, or a result of
            ``MCDropout.predict(..., keep_samples=True)``.
        y: targets ``(N,)`` or ``(N, d)``.
        noise_variance: the observation noise variance for samples and "regression" results; None for "gaussian"
            results (see `kerasdrop.metrics.regression`).
        path: None, or where to write the PNG.
        levels: the levels of the intervals, in (0, 1).
        title: str.

    Returns:
        The figure; ``figure.axes[0].lines`` holds the observed coverage (x the levels), then the diagonal.
    """
    curve = metrics.regression_calibration_curve(result_or_samples, y, noise_variance, levels)
    figure = _figure((5.0, 5.0))
    axes = figure.add_subplot()
    axes.plot(curve.expected, curve.observed, marker="o", color="tab:blue", label="observed coverage")
    axes.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="expected coverage (level of the central interval)",
        ylabel="observed coverage",
        title=title,
    )
    axes.legend(loc="upper left")
    return _save(figure, path)


def regression_fit(
    x,
    y,
    mean,
    lower,
    upper,
    path=None,
    title="Predictive mean and interval",
    xlabel="x",
    ylabel="y",
    interval_label="predictive interval",
):
    """A 1-D regression: the data points, the predictive mean and the band of a predictive interval.

    Args:
        x: inputs ``(N,)``, one feature (in any order: the line and the band are drawn sorted by ``x``).
        y: targets ``(N,)``.
        mean: the predictive mean at ``x`` (e.g. an MC dropout ``result.mean``), ``(N,)``.
        lower, upper: the interval at ``x`` (from `kerasdrop.metrics.predictive_interval`), ``(N,)`` each.
        path: None, or where to write the PNG.
        title, xlabel, ylabel: str.
        interval_label: the legend's name of the band (its level, for instance).

    Returns:
        The figure; in ``figure.axes[0]``, ``lines[0]`` is the mean, ``collections[0]`` the band and
        ``collections[1]`` the points.
    """
    lower, upper, x, y, mean = check_intervals(lower, upper, ("x", x), ("y", y), ("mean", mean))
    if lower.ndim == 2 and lower.shape[1] != 1:
        raise ValueError(
            f"Invalid value received for argument `lower`. Expected one output: shape (N,) or (N, 1). Received: "
            f"lower of shape {lower.shape}"
        )
    x, y, mean, lower, upper = (array.ravel() for array in (x, y, mean, lower, upper))
    order = np.argsort(x, kind="stable")
    figure = _figure((6.0, 4.0))
    axes = figure.add_subplot()
    axes.fill_between(x[order], lower[order], upper[order], color="tab:blue", alpha=0.25, label=interval_label)
    axes.plot(x[order], mean[order], color="tab:blue", label="predictive mean")
    axes.scatter(x, y, s=10, color="black", label=f"data (n={x.size})")
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axes.legend()
    return _save(figure, path)
