"""`set_mc`, the switch that keeps a model's kerasdrop layers stochastic at test time (their ``mc`` flag), for
`model.predict`, reloaded models and SavedModels; `kerasdrop.MCDropout` needs no switch."""

from kerasdrop import _compat
from kerasdrop._validation import check_bool
from kerasdrop.layers._base import StochasticLayer

__all__ = ["set_mc"]


def kerasdrop_layers(model_or_layer):
    """Every kerasdrop stochastic layer inside ``model_or_layer`` (itself included), recursively."""
    return [layer for layer in _compat.flatten_layers(model_or_layer) if isinstance(layer, StochasticLayer)]


def set_mc(model_or_layer, enabled=True):
    """Switches Monte Carlo mode on (or off) for every kerasdrop layer inside ``model_or_layer``.

    The cached train/test/predict functions of every model inside are dropped, so the next `predict` or `fit`
    traces again and the switch takes effect at once. Returns the number of layers switched.

    Args:
        model_or_layer: a Keras model or layer.
        enabled: bool, the new `mc` value.
    """
    enabled = check_bool("enabled", enabled)
    switched = 0
    for layer in _compat.flatten_layers(model_or_layer):
        if isinstance(layer, StochasticLayer):
            layer.mc = enabled
            switched += 1
        _compat.reset_compiled_functions(layer)  # models among them retrace predict/fit
    return switched
