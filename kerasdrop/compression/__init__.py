"""Compression with variational dropout: `sparsify`, `compress` and `StructuredBayesianPruning`.

A model trained with `SparseVariationalDense` / `SparseVariationalConv2D` (Molchanov et al. 2017) and
`StructuredBayesianPruning` (Neklyudov et al. 2017) knows which of its weights and units carry only noise.
``sparsify`` writes its test-time computation as a plain Keras model: pruned weights become exact zeros in `Dense` /
`Conv2D` layers, the test-time factor ``E[θ]`` of structured pruning is folded into the kernel and bias of the layer
before it, and dropout layers (the identity at test time) are left out. ``compress`` then removes the units and
filters that no longer matter and shrinks the next layer's input to match. Both results load with plain Keras, with
no kerasdrop import.

Example:
    ```python
    model = keras.Sequential([
        keras.Input((64,)),
        kerasdrop.SparseVariationalDense(300, activation="relu", kl_weight=1 / n),
        kerasdrop.SparseVariationalDense(10, activation="softmax", kl_weight=1 / n),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=200, callbacks=[kerasdrop.callbacks.KLWarmup(100)])
    small, report = kerasdrop.compression.compress(model)
    print(report)
    small.save("small.keras")   # loads with keras.saving.load_model, no kerasdrop needed
    ```
"""

import dataclasses

import keras
import numpy as np

from kerasdrop._validation import check_bool, check_float
from kerasdrop.compression import _surgery
from kerasdrop.compression._graph import ModelGraph
from kerasdrop.layers._base import ElementwiseDropout, RateDropout
from kerasdrop.layers.bayesian_pruning import StructuredBayesianPruning
from kerasdrop.layers.dropout import GaussianDropout, StochasticDropout
from kerasdrop.layers.image import Cutout, DropBlock2D
from kerasdrop.layers.variational import SparseVariationalConv2D, SparseVariationalDense

# Keras layers that are the identity at test time: left out of the plain model.
_KERAS_IDENTITY_AT_TEST = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
)
_KERASDROP_IDENTITY_AT_TEST = (GaussianDropout, StochasticDropout, Cutout, DropBlock2D)
_PLAIN_CLASSES = {SparseVariationalDense: keras.layers.Dense, SparseVariationalConv2D: keras.layers.Conv2D}
# Constructor arguments every Keras layer takes, besides those of its own signature.
_BASE_LAYER_ARGUMENTS = ("name", "dtype", "trainable")


@dataclasses.dataclass
class LayerReport:
    """What happened to one layer with weights.

    Attributes:
        name: the layer's name (the same in the plain model).
        source_class: class of the layer in the source model, e.g. ``"SparseVariationalDense"``.
        units_before: units (filters) of the layer in the source model, or None for a layer without a kernel.
        units_after: units kept in the returned model.
        params_before: parameters of the layer as a plain layer (kernel and bias; the variational parameters
            ``log_sigma2``, ``mu``, ``log_sigma`` are not needed at test time and are not counted).
        params_after: parameters of the layer in the returned model.
        nonzero_after: non-zero parameters of the layer in the returned model.
    """

    name: str
    source_class: str
    units_before: int | None
    units_after: int | None
    params_before: int
    params_after: int
    nonzero_after: int

    @property
    def sparsity(self):
        """Fraction of the layer's parameters that are zero or gone: ``1 - nonzero_after / params_before``."""
        return 1.0 - self.nonzero_after / self.params_before if self.params_before else 0.0


@dataclasses.dataclass
class CompressionReport:
    """Parameters before and after, compression ratio and per-layer sparsity of a `sparsify` / `compress` result.

    Attributes:
        layers: a `LayerReport` per layer with weights (source or result).
        params_before: parameters of the source model as a plain network (variational parameters not counted).
        params_after: parameters of the returned model (zeros included).
        nonzero_after: non-zero parameters of the returned model.
        notes: layers whose units could not be removed and why (``compress(..., strict=False)``).
    """

    layers: list
    params_before: int
    params_after: int
    nonzero_after: int
    notes: list = dataclasses.field(default_factory=list)

    @property
    def compression_ratio(self):
        """``params_before / nonzero_after``: how many times fewer non-zero parameters."""
        return self.params_before / max(self.nonzero_after, 1)

    @property
    def size_ratio(self):
        """``params_before / params_after``: how many times smaller the dense storage of the model is."""
        return self.params_before / max(self.params_after, 1)

    def as_dict(self):
        result = dataclasses.asdict(self)
        result["compression_ratio"] = self.compression_ratio
        result["size_ratio"] = self.size_ratio
        for row, layer in zip(result["layers"], self.layers, strict=True):
            row["sparsity"] = layer.sparsity
        return result

    def __str__(self):
        header = f"{'layer':<28s} {'source class':<24s} {'units':>11s} {'params':>9s} {'non-zero':>9s} {'sparsity':>8s}"
        lines = [header, "-" * len(header)]
        for layer in self.layers:
            units = "" if layer.units_before is None else f"{layer.units_before}->{layer.units_after}"
            lines.append(
                f"{layer.name:<28s} {layer.source_class:<24s} {units:>11s} {layer.params_before:>9d} "
                f"{layer.nonzero_after:>9d} {layer.sparsity:>8.1%}"
            )
        lines.append(
            f"parameters: {self.params_before} before, {self.params_after} after, {self.nonzero_after} non-zero; "
            f"compression {self.compression_ratio:.1f}x (non-zero), {self.size_ratio:.1f}x (dense size)"
        )
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


def _test_time_role(layer):
    """How ``layer`` enters the plain model: ``"keep"``, ``"identity"``, ``"multiplier"`` or ``"convert"``."""
    if isinstance(layer, tuple(_PLAIN_CLASSES)):
        return "convert"
    if isinstance(layer, StructuredBayesianPruning):
        return "multiplier"
    if isinstance(layer, RateDropout):
        return "multiplier" if layer.scaling == "weight_scaling" and layer.rate > 0 else "identity"
    if isinstance(layer, _KERASDROP_IDENTITY_AT_TEST + _KERAS_IDENTITY_AT_TEST):
        return "identity"
    if isinstance(layer, ElementwiseDropout) or type(layer).__module__.startswith("kerasdrop"):
        raise ValueError(
            f"Cannot convert layer {layer.name!r} ({type(layer).__name__}) to plain Keras: compression supports "
            "SparseVariationalDense, SparseVariationalConv2D, StructuredBayesianPruning and dropout layers that "
            "are the identity at test time."
        )
    return "keep"


def _test_multiplier(layer):
    """The factor a multiplier layer applies at test time: one per channel, or a scalar."""
    if isinstance(layer, StructuredBayesianPruning):
        return keras.ops.convert_to_numpy(layer.test_multiplier()).astype("float32")
    return np.float32(1.0 - layer.rate)  # Dropout with weight scaling: keep * x


def _plain_layer(layer):
    """A new `Dense` / `Conv2D` with the constructor arguments of a sparse-variational layer."""
    plain_class = next(plain for source, plain in _PLAIN_CLASSES.items() if isinstance(layer, source))
    accepted = set(_surgery.constructor_arguments(plain_class)) | set(_BASE_LAYER_ARGUMENTS)
    config = {key: value for key, value in layer.get_config().items() if key in accepted}
    return plain_class.from_config(config)


def _pruned_weights(layer, threshold):
    """``[kernel, bias]`` of a sparse-variational layer with the weights of ``log α > threshold`` set to zero."""
    own_threshold = layer.threshold
    if threshold is not None:
        layer.threshold = threshold  # the layer's own test-time rule (`pruned_kernel`), at this threshold
    try:
        weights = [keras.ops.convert_to_numpy(layer.pruned_kernel()).astype("float32")]
    finally:
        layer.threshold = own_threshold
    if layer.use_bias:
        weights.append(keras.ops.convert_to_numpy(layer.bias).astype("float32"))
    return weights


def _rewrite(model, threshold, purpose):
    """The plain-Keras graph of ``model`` and the weights of the layers it changed."""
    graph = ModelGraph(model, purpose=purpose)
    weights = {}
    for name in graph.names:
        if graph.entries[name]["class_name"] == "InputLayer":
            continue
        layer = graph.layer(name)
        role = _test_time_role(layer)
        if role == "convert":
            graph.replace(name, _plain_layer(layer))
            weights[name] = _pruned_weights(layer, threshold)
        elif role == "multiplier":
            _surgery.fold_multiplier(graph, weights, name, _test_multiplier(layer))
            graph.remove(name)
        elif role == "identity":
            graph.remove(name)
    return graph, weights


def _params_before(model):
    """Parameters per layer of ``model`` as a plain network: kernels and biases, without variational parameters."""
    counts = {}
    for layer in model.layers:
        if isinstance(layer, tuple(_PLAIN_CLASSES)):
            counts[layer.name] = int(np.prod(layer.kernel.shape)) + (
                int(np.prod(layer.bias.shape)) if layer.use_bias else 0
            )
        elif not isinstance(layer, StructuredBayesianPruning):
            counts[layer.name] = int(sum(np.prod(w.shape) for w in layer.weights))
    return counts


def _units(layer):
    for attribute in ("units", "filters"):
        if isinstance(getattr(layer, attribute, None), int):
            return getattr(layer, attribute)
    return None


def _report(source, result, notes=()):
    before = _params_before(source)
    rows = []
    for layer in source.layers:
        try:
            plain = result.get_layer(layer.name)
        except ValueError:
            plain = None
        params_after = 0 if plain is None else int(sum(np.prod(w.shape) for w in plain.weights))
        if not before.get(layer.name) and not params_after:
            continue
        nonzero = 0 if plain is None else int(sum(np.count_nonzero(w) for w in plain.get_weights()))
        rows.append(
            LayerReport(
                name=layer.name,
                source_class=type(layer).__name__,
                units_before=_units(layer),
                units_after=None if plain is None else _units(plain),
                params_before=before.get(layer.name, 0),
                params_after=params_after,
                nonzero_after=nonzero,
            )
        )
    return CompressionReport(
        layers=rows,
        params_before=sum(before.values()),
        params_after=int(result.count_params()),
        nonzero_after=int(sum(np.count_nonzero(w) for w in result.get_weights())),
        notes=list(notes),
    )


def sparsify(model, threshold=3.0):
    """Writes a trained sparse-variational model as a plain Keras model with the pruned weights set to zero.

    `SparseVariationalDense` / `SparseVariationalConv2D` become `Dense` / `Conv2D` with their test-time kernel
    (weights with ``log α > threshold`` exactly zero). The test-time factor of each `StructuredBayesianPruning`
    layer (``E[θ]``, 0 for units switched off) is folded into the kernel and bias of the dense or convolutional
    layer before it (allowed in between: ReLU-like activations and pooling, which commute with a positive factor);
    a kerasdrop `Dropout` with ``scaling="weight_scaling"`` is folded the same way. Dropout layers that are the
    identity at test time are left out. Other Keras layers are copied with their weights. The result gives the
    predictions of ``model`` at test time (``training=False``) and loads with plain Keras.

    Args:
        model: a built Sequential or functional model (no nested models or shared layers).
        threshold: float, or None to use each layer's own ``threshold``: weights with ``log α > threshold`` are
            pruned. 3.0 is the value of the paper (and the layers' default).

    Returns:
        ``(plain_model, report)``: a new `keras.Model` and a `CompressionReport`.

    Raises:
        ValueError: for a layer with no plain-Keras equivalent, or a structured-pruning factor that cannot be
            folded into the layer before it; the message names the layer.
    """
    if threshold is not None:
        threshold = check_float("threshold", threshold)
    graph, weights = _rewrite(model, threshold, purpose="sparsify")
    result = graph.build(weights)
    return result, _report(model, result)


def compress(model, threshold=3.0, strict=True):
    """Like `sparsify`, and also removes the units and filters that no longer matter, giving smaller layers.

    A unit (a filter of a convolution) of a `Dense` / `Conv1D/2D/3D` layer is removed when every weight that reads
    it in the next such layer is zero, or when it is constant (all its incoming weights are zero, or structured
    pruning switched it off) and its constant contribution can be moved into the next layer's bias (exactly for a
    dense next layer or a convolution with ``padding="valid"``; for other paddings only a zero constant). The next
    layer's input shrinks to match, also through `Flatten` after a convolution (the index mapping is worked out for
    either data format). Between the two layers may come activations, pooling and `BatchNormalization` (whose
    per-channel weights shrink too). The last layer's units (the model's outputs) are never removed.

    Args:
        model: a built Sequential or functional model, as for `sparsify`.
        threshold: as for `sparsify`.
        strict: bool. True raises a ValueError naming the layers when a layer's units cannot be removed because
            of what follows it (several consumers, a layer compress does not know how to shrink); False keeps
            such layers whole and lists them in ``report.notes``.

    Returns:
        ``(compact_model, report)``: a new `keras.Model` whose predictions equal the sparse model's at test time,
        and a `CompressionReport` (units before/after per layer).
    """
    if threshold is not None:
        threshold = check_float("threshold", threshold)
    strict = check_bool("strict", strict)
    graph, weights = _rewrite(model, threshold, purpose="compress")
    sparse = graph.build(weights)
    compact_graph = ModelGraph(sparse, purpose="compress")
    compact_weights = {layer.name: layer.get_weights() for layer in sparse.layers}
    notes = _surgery.remove_dead_units(compact_graph, compact_weights, strict=strict)
    result = compact_graph.build(compact_weights)
    return result, _report(model, result, notes)


__all__ = ["CompressionReport", "LayerReport", "StructuredBayesianPruning", "compress", "sparsify"]
