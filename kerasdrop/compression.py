"""Compression with variational dropout (SPEC §7): structured Bayesian pruning, `sparsify` and `compress`."""

from kerasdrop.layers.bayesian_pruning import StructuredBayesianPruning

__all__ = ["StructuredBayesianPruning"]
