"""Which kerasdrop layers sample while `kerasdrop.MCDropout` traces its sampler, without touching the layers.

The sampler opens `selecting` around its own trace, in its own thread; a kerasdrop layer asks `selected` in its
``call``. Outside such a trace (any other thread, any other call of the model) `selected` is None and the layer
follows its ``training`` argument and its ``mc`` flag as usual.
"""

import contextlib
import threading

_state = threading.local()


@contextlib.contextmanager
def selecting(layer_ids):
    """While open in this thread, exactly the layers whose ``id`` is in ``layer_ids`` sample."""
    previous = getattr(_state, "layer_ids", None)
    _state.layer_ids = frozenset(layer_ids)
    try:
        yield
    finally:
        _state.layer_ids = previous


def selected(layer):
    """True or False inside `selecting` (whether ``layer`` samples), None outside it."""
    layer_ids = getattr(_state, "layer_ids", None)
    if layer_ids is None:
        return None
    return id(layer) in layer_ids
