"""The UCI regression data sets in the layout of Hernández-Lobato & Adams's splits, for `uci_regression.py`.

One folder per data set: ``data.txt`` (whitespace-separated numbers, one row per example), ``index_features.txt``
and ``index_target.txt`` (0-based columns), ``index_train_{i}.txt`` and ``index_test_{i}.txt`` (0-based rows of
split ``i``), ``n_splits.txt``, ``n_hidden.txt``, ``n_epochs.txt`` (the table's epochs are 100 times it),
``dropout_rates.txt`` and ``tau_values.txt`` (the grid). Every problem is a `DataError` naming the file.
"""

import dataclasses
import os

import numpy as np

DATASETS = ("concrete", "energy", "kin8nm", "wine-quality-red", "yacht")
# The published epochs are 100 times n_epochs.txt (the authors' result files are named "..._100_xepochs_...").
EPOCHS_MULTIPLIER = 100
# The first 80 % of a split's training rows train during the grid search, the rest validate.
TRAIN_FRACTION = 0.8


class DataError(ValueError):
    """A data set folder that cannot be read as the layout above; the message names the file."""


@dataclasses.dataclass
class Dataset:
    """One data set: inputs ``x (rows, D)``, targets ``y (rows,)``, the splits' row indices, and the grid.

    ``train``/``test`` hold the splits read (the first ``splits``); ``available`` is ``n_splits.txt``.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    train: list
    test: list
    rates: np.ndarray
    taus: np.ndarray
    hidden: int
    epochs: int
    available: int

    @property
    def train_rows(self):
        return len(self.train[0])

    def stacked(self, parts, stats=None):
        """``(x (rows, S, D), y (rows, S), stats)`` of the rows ``parts[s]`` of each split ``s``; ``x`` is normalised
        with ``stats = (x_mean, x_std)`` of shape ``(S, D)``, computed from these rows when None (a zero std counts
        as 1; NumPy's ``std``, ddof 0, as the paper's code)."""
        x = np.stack([self.x[part] for part in parts], axis=1)
        if stats is None:
            std = x.std(axis=0)
            stats = (x.mean(axis=0), np.where(std == 0, 1.0, std))
        return (x - stats[0]) / stats[1], np.stack([self.y[part] for part in parts], axis=1), stats


def normalised_targets(y):
    """``(y normalised, mean (S,), std (S,))`` of targets ``y (rows, S)``, per split (a zero std counts as 1)."""
    mean, std = y.mean(axis=0), y.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return (y - mean) / std, mean, std


def _read(folder, name, integer=False):
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise DataError(f"{path} is missing")
    try:
        values = np.loadtxt(path, ndmin=1 if integer else 2)
    except (OSError, ValueError) as error:
        raise DataError(f"{path} cannot be read as numbers: {error}") from None
    if values.size == 0 or not np.isfinite(values).all():
        raise DataError(f"{path} is empty or holds a value that is not a finite number")
    if integer:
        if values.ndim != 1 or (values != np.round(values)).any() or (values < 0).any():
            raise DataError(f"{path} must hold non-negative integers, one a line")
        return values.astype(np.int64)
    return values


def _indices(folder, name, bound):
    values = _read(folder, name, integer=True)
    if values.max() >= bound:
        raise DataError(f"{os.path.join(folder, name)} holds index {values.max()}, beyond the {bound} available")
    return values


def _one(folder, name):
    values = _read(folder, name, integer=True)
    if len(values) != 1 or values[0] < 1:
        raise DataError(f"{os.path.join(folder, name)} must hold one positive integer")
    return int(values[0])


def _grid(folder, name, low, high):
    values = _read(folder, name).ravel()
    if not ((values >= low) & (values < high)).all():
        raise DataError(f"{os.path.join(folder, name)} must hold values in [{low}, {high}); it holds {values}")
    return values


def load(root, name, splits):
    """The data set ``name`` of folder ``root`` with its first ``splits`` splits; a `DataError` if anything is
    missing or malformed, or if it has fewer splits."""
    folder = _folder(root, name)
    data = _read(folder, "data.txt")
    features = _indices(folder, "index_features.txt", data.shape[1])
    target = _indices(folder, "index_target.txt", data.shape[1])
    if len(target) != 1:
        raise DataError(f"{os.path.join(folder, 'index_target.txt')} must hold one column index")
    available = _one(folder, "n_splits.txt")
    if splits > available:
        raise DataError(f"--splits {splits}: data set {name!r} has {available} splits ({folder}/n_splits.txt)")
    train = [_indices(folder, f"index_train_{split}.txt", len(data)) for split in range(splits)]
    test = [_indices(folder, f"index_test_{split}.txt", len(data)) for split in range(splits)]
    if len({len(rows) for rows in train}) != 1:
        raise DataError(f"the training splits of {folder} differ in size; they must all have the same number of rows")
    return Dataset(
        name=name,
        x=data[:, features],
        y=data[:, target[0]],
        train=train,
        test=test,
        rates=_grid(folder, "dropout_rates.txt", 0.0, 1.0),
        taus=_grid(folder, "tau_values.txt", 1e-12, np.inf),
        hidden=_one(folder, "n_hidden.txt"),
        epochs=_one(folder, "n_epochs.txt") * EPOCHS_MULTIPLIER,
        available=available,
    )


def count_splits(root, name):
    """``n_splits.txt`` of data set ``name`` (a `DataError` if its folder or the file is missing or malformed)."""
    return _one(_folder(root, name), "n_splits.txt")


def _folder(root, name):
    folder = os.path.join(root, name)
    if not os.path.isdir(folder):
        raise DataError(f"{folder} is missing (no folder for data set {name!r})")
    return folder
