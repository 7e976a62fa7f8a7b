"""What `kerasdrop.MCDropout` tells the layers while it traces its sampler, without touching the layers.

The sampler opens `selecting` around its own trace, in its own thread. A kerasdrop layer asks `selected` in its
``call`` whether it samples; a draw of noise asks `shared_copies` whether samples must be joint draws.

Joint draws ("consistent" sampling): the sampler runs ``copies`` samples of ``batch`` inputs as one tiled batch of
``copies * batch`` rows, sample-major (row ``s * batch + i`` is sample ``s`` of input ``i``). When every input must
see the same network in sample ``s``, each draw whose shape has a batch axis draws ``copies`` values along it (one
per sample) and repeats each over the ``batch`` rows of its sample: see `kerasdrop._random`.

Outside such a trace (any other thread, any other call of the model) `selected` is None and `shared_copies` None:
the layer follows its ``training`` argument and its ``mc`` flag, and draws one value per row, as usual.
"""

import contextlib
import threading

_state = threading.local()


@contextlib.contextmanager
def selecting(layer_ids, shared_copies=None):
    """While open in this thread, exactly the layers whose ``id`` is in ``layer_ids`` sample.

    ``shared_copies``: None (each row draws its own noise), or the number of samples (an int or a scalar int
    tensor) tiled along the batch axis, whose rows share their draws sample by sample.
    """
    previous = getattr(_state, "layer_ids", None), getattr(_state, "copies", None)
    _state.layer_ids = frozenset(layer_ids)
    _state.copies = shared_copies
    try:
        yield
    finally:
        _state.layer_ids, _state.copies = previous


def selected(layer):
    """True or False inside `selecting` (whether ``layer`` samples), None outside it."""
    layer_ids = getattr(_state, "layer_ids", None)
    if layer_ids is None:
        return None
    return id(layer) in layer_ids


def shared_copies():
    """The number of samples whose rows share their draws (see `selecting`), or None when every row draws its own."""
    return getattr(_state, "copies", None)
