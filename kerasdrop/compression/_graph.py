"""A Keras model as an editable graph of layer configs, the representation `kerasdrop.compression` rewrites.

It works on the public serialized form (``model.get_config()``), for Sequential and functional models alike: layers
can be removed (their consumers are rewired to their input), replaced by another layer, or given new constructor
arguments, and the graph is built back into a model with ``from_config`` and given new weights by layer name.
"""

import copy

import keras

_KERAS_TENSOR = "__keras_tensor__"


def _is_history(value):
    """A serialized reference to a tensor: ``[layer_name, node_index, tensor_index]``."""
    return (
        isinstance(value, list)
        and len(value) == 3
        and isinstance(value[0], str)
        and all(isinstance(index, int) for index in value[1:])
    )


def _as_lists(structure):
    """A deep copy of a config with every tuple turned into a list, as after a JSON round trip (so it can be edited)."""
    if isinstance(structure, dict):
        return {key: _as_lists(value) for key, value in structure.items()}
    if isinstance(structure, (list, tuple)):
        return [_as_lists(value) for value in structure]
    return copy.deepcopy(structure)


def _histories(structure):
    """Every tensor reference inside a serialized call (args/kwargs) or an ``output_layers`` structure."""
    if _is_history(structure):
        yield structure
    elif isinstance(structure, dict):
        if structure.get("class_name") == _KERAS_TENSOR:
            yield structure["config"]["keras_history"]
        else:
            for value in structure.values():
                yield from _histories(value)
    elif isinstance(structure, list):
        for value in structure:
            yield from _histories(value)


class ModelGraph:
    """The layers of a built Sequential or functional model, their connections, and edits to them.

    Args:
        model: a built ``keras.Sequential`` or functional ``keras.Model`` (no nested models, no shared layers).
        purpose: what the graph is for, used in error messages.
    """

    def __init__(self, model, purpose="compress"):
        if not model.built or not model.inputs:
            raise ValueError(f"Cannot {purpose} model {model.name!r}: build it first (e.g. start it with keras.Input).")
        self.model = model
        self.sequential = isinstance(model, keras.Sequential)
        self.config = _as_lists(model.get_config())
        if "layers" not in self.config:
            raise ValueError(
                f"Cannot {purpose} model {model.name!r} ({type(model).__name__}): only Sequential and functional "
                "models can be rewritten."
            )
        self.entries = {self._name(entry): entry for entry in self.config["layers"]}
        for layer in model.layers:
            if isinstance(layer, keras.Model):
                raise ValueError(
                    f"Cannot {purpose} model {model.name!r}: layer {layer.name!r} is a nested model "
                    f"({type(layer).__name__}). Rebuild it as one flat Sequential or functional model."
                )
        if not self.sequential:
            for name, entry in self.entries.items():
                if len(entry.get("inbound_nodes", [])) > 1:
                    raise ValueError(
                        f"Cannot {purpose} model {model.name!r}: layer {name!r} is shared (called "
                        f"{len(entry['inbound_nodes'])} times)."
                    )

    def _name(self, entry):
        return entry["config"]["name"] if self.sequential else entry["name"]

    @property
    def names(self):
        """Layer names in topological order."""
        return list(self.entries)

    def layer(self, name):
        """The layer of the source model with this name."""
        return self.model.get_layer(name)

    def inputs_of(self, name):
        """Names of the layers whose outputs this layer takes."""
        if self.sequential:
            names = self.names
            index = names.index(name)
            return [names[index - 1]] if index > 0 else []
        nodes = self.entries[name].get("inbound_nodes", [])
        return [history[0] for node in nodes for history in _histories(node)]

    def consumers_of(self, name):
        """Names of the layers that take this layer's output."""
        return [other for other in self.names if name in self.inputs_of(other)]

    def is_output(self, name):
        if self.sequential:
            return self.names[-1] == name
        return any(history[0] == name for history in _histories(self.config["output_layers"]))

    def remove(self, name):
        """Removes a single-input layer; whatever used its output now uses its input."""
        if self.sequential:
            del self.entries[name]
            return
        (source,) = list(_histories(self.entries[name]["inbound_nodes"]))
        del self.entries[name]
        structures = [entry.get("inbound_nodes", []) for entry in self.entries.values()]
        for history in _histories([*structures, self.config["output_layers"]]):
            if history[0] == name:
                history[:] = source

    def replace(self, name, layer):
        """Puts ``layer`` (a new, unbuilt layer with the same name) in place of the layer ``name``."""
        entry = keras.saving.serialize_keras_object(layer)
        if not self.sequential:
            entry["name"] = name
            entry["inbound_nodes"] = self.entries[name].get("inbound_nodes", [])
        self.entries[name] = entry

    def update_arguments(self, name, **arguments):
        """Changes constructor arguments of the layer ``name`` (e.g. ``units``)."""
        self.entries[name]["config"].update(arguments)

    def build(self, weights):
        """A new model from the edited graph; ``weights[name]`` (or the source layer's weights) for each layer."""
        config = copy.deepcopy(self.config)
        config["layers"] = []
        for entry in self.entries.values():
            entry = copy.deepcopy(entry)
            entry.pop("build_config", None)  # shapes may have changed: layers are built by calling them
            config["layers"].append(entry)
        model = (keras.Sequential if self.sequential else keras.Model).from_config(config)
        for layer in model.layers:
            if layer.name in weights:
                layer.set_weights(weights[layer.name])
            elif layer.weights:
                layer.set_weights(self.layer(layer.name).get_weights())
        return model
