"""The outputs of `uci_regression.py`: results.md (ours beside the published figures), results.json, results.png."""

import collections
import json
import math
import os
import sys


def machine():
    """The machine, as the benchmarks describe it (``benchmarks/_timing.py``)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "benchmarks"))
    import _timing

    return _timing.machine_description()


def _estimate(pair, digits):
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def gap(ours, published):
    """``(ours - published) / √(SE_ours² + SE_published²)``; None when both standard errors are 0."""
    scale = math.hypot(ours[1], published[1])
    return None if scale == 0 else (ours[0] - published[0]) / scale


def _gap_cell(ours, published):
    value = gap(ours, published)
    return "n/a" if value is None else f"{value:+.1f}"


def _most_common(values, digits=3):
    count = collections.Counter(round(value, 6) for value in values).most_common(1)[0]
    return f"{count[0]:.{digits}g} ({count[1]}/{len(values)})"


def choice(method, result):
    """The configuration the validation chose (most common over the splits), or the mean learned rates."""
    chosen = result["chosen"]
    if method == "concrete":
        rates = result["learned_rates"]
        means = [sum(split[layer] for split in rates) / len(rates) for layer in range(2)]
        return f"p {means[0]:.3f} / {means[1]:.3f} (mean learned, input / hidden), τ {_most_common(chosen['tau'])}"
    text = f"p {_most_common(chosen['rate'])}"
    return text if chosen["tau"] is None else f"{text}, τ {_most_common(chosen['tau'])}"


def check(result):
    agreement = result["agreement_split_0"]
    return f"{agreement['bonferroni_min_p']:.2f} / {100 * agreement['fraction_p_below_0.01']:.1f} %"


def dataset_rows(name, outcome, published, labels):
    """The table rows of one data set: the paper's, then ours."""
    paper = published[name]
    rows = [
        f"| {name} | paper: MC dropout, grid (p, τ) | {_estimate(paper['rmse'], 2)} | | "
        f"{_estimate(paper['log_likelihood'], 2)} | | | |"
    ]
    for method, result in outcome["methods"].items():
        rows.append(
            f"| {name} | {labels[method]} | {_estimate(result['rmse'], 3)} | "
            f"{_gap_cell(result['rmse'], paper['rmse'])} | {_estimate(result['log_likelihood'], 3)} | "
            f"{_gap_cell(result['log_likelihood'], paper['log_likelihood'])} | {choice(method, result)} | "
            f"{check(result)} |"
        )
    return rows


def timing_rows(name, outcome):
    rows = []
    for method, result in outcome["methods"].items():
        grid, final = result["timing"]["grid"], result["timing"]["final"]
        rows.append(
            f"| {name} | {method} | {grid['networks']} × {grid['steps']:,} steps, {grid['seconds']:.0f} s "
            f"({grid['ms_per_step']:.2f} ms/step) | {grid['validation_seconds']:.0f} s | {final['networks']} × "
            f"{final['steps']:,} steps, {final['seconds']:.0f} s ({final['ms_per_step']:.2f} ms/step) | "
            f"{final['test_seconds']:.0f} s | {result['timing']['seconds']:.0f} s |"
        )
    rows.append(f"| {name} | all | | | | | **{outcome['seconds']:.0f} s** |")
    return rows


def markdown(report, labels):
    settings = report["settings"]
    lines = [
        "# UCI regression: Gal & Ghahramani's protocol (MC dropout, Table 1), ours beside the published figures",
        "",
        f"Written by `examples/uci_regression.py`. Settings: {settings['splits']} splits, {settings['epochs']} "
        f"epochs, T = {settings['samples']:,} test samples, {settings['val_samples']:,} validation samples, seed "
        f"{settings['seed']}. Machine: {report['machine']}.",
        "",
        "Mean over the splits ± standard error (NumPy's std over the splits, ddof 0, / √splits, as the authors' "
        "code). Δ: (ours − paper) / √(SE ours² + SE paper²). The published row: the 'Dropout (grid search, new)' "
        "column of github.com/yaringal/DropoutUncertaintyExps (20 splits, 4,000 epochs). MCDropout check, on split "
        "0: the stacked networks' own Monte Carlo samples against MCDropout's on the plain Keras copy, a "
        "Kolmogorov-Smirnov test per test row: the smallest p-value × rows (Bonferroni), and the share of rows "
        "with p < 0.01 (about 1 % when they agree).",
        "",
        "| data set | row | RMSE | Δ RMSE | log-likelihood | Δ LL | chosen by validation | MCDropout check |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, outcome in report["datasets"].items():
        lines += dataset_rows(name, outcome, report["published"], labels)
    lines += [
        "",
        "Wall time: training of the grid (networks × steps, one step a batch of 128 rows for every network), "
        "validation scoring, retraining of the chosen networks, test sampling with MCDropout, total.",
        "",
        "| data set | row | grid training | validation | retraining | test | total |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, outcome in report["datasets"].items():
        lines += timing_rows(name, outcome)
    total = sum(outcome["seconds"] for outcome in report["datasets"].values())
    lines += ["", f"Total wall time: {total:.0f} s ({total / 60:.1f} min)."]
    for update in report.get("updates", []):
        lines.append(
            f"Rows {', '.join(labels[method] for method in update['methods'])} of {', '.join(update['datasets'])} "
            "were redone by a later run (`--update`); their times are that run's."
        )
    return "\n".join(lines) + "\n"


def plot(report, labels, path):
    """Per data set, each row's test log-likelihood with its standard error, the paper's first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["datasets"])
    figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        methods = report["datasets"][name]["methods"]
        entries = [("paper", report["published"][name]["log_likelihood"])]
        entries += [(labels[method], result["log_likelihood"]) for method, result in methods.items()]
        for index, (label, (mean, error)) in enumerate(entries):
            axis.errorbar([index], [mean], yerr=[error], marker="o", capsize=4, color=f"C{index}", label=label)
        axis.set_xticks(range(len(entries)), [label.split(",")[0] for label, _ in entries], rotation=30, ha="right")
        axis.set_title(name)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("test log-likelihood (mean ± SE)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# The settings two reports must share for their rows to be put in one table.
SHARED_SETTINGS = ("splits", "epochs", "samples", "val_samples", "seed")


def read(folder, settings):
    """The report of ``folder``'s results.json, to be updated by a run of ``settings``; a `ValueError` naming the
    difference when its settings differ, or when there is none."""
    path = os.path.join(folder, "results.json")
    if not os.path.isfile(path):
        raise ValueError(f"--update: there is no {path} to update")
    with open(path) as handle:
        earlier = json.load(handle)
    for key in SHARED_SETTINGS:
        if earlier["settings"][key] != settings[key]:
            raise ValueError(
                f"--update: {path} was run with {key} {earlier['settings'][key]!r}, this run with {settings[key]!r}; "
                "rows of different settings do not go in one table"
            )
    return earlier


def merge(earlier, report):
    """``report`` with the rows of ``earlier`` (None: none) that it did not redo; a data set's wall time is then
    the sum of its rows'."""
    if earlier is None:
        return report
    merged = json.loads(json.dumps(earlier))
    merged["machine"] = report["machine"]
    for name, outcome in report["datasets"].items():
        methods = {**merged["datasets"].get(name, {}).get("methods", {}), **outcome["methods"]}
        seconds = sum(result["timing"]["seconds"] for result in methods.values())
        merged["datasets"][name] = {"methods": methods, "seconds": seconds}
    merged.setdefault("updates", []).append(
        {"methods": report["settings"]["methods"], "datasets": list(report["datasets"])}
    )
    settings = merged["settings"]
    settings["datasets"] = list(dict.fromkeys(settings["datasets"] + report["settings"]["datasets"]))
    settings["methods"] = list(dict.fromkeys(settings["methods"] + report["settings"]["methods"]))
    return merged


def write(report, labels, folder):
    """results.md, results.json and results.png of ``report`` into ``folder``; returns their paths."""
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, name) for name in ("results.md", "results.json", "results.png")]
    with open(paths[0], "w") as handle:
        handle.write(markdown(report, labels))
    with open(paths[1], "w") as handle:
        json.dump(report, handle, indent=2)
    plot(report, labels, paths[2])
    return paths
