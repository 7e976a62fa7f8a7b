"""What the layers read from the engines that run them: the only state shared between `kerasdrop.MCDropout` or
`kerasdrop.export_tflite` and the layers, thread-local, never stored on a layer.

- `selecting`: while `kerasdrop.MCDropout` traces its sampler in a thread, exactly the selected layers sample there
  (`selected`), and under joint draws the rows of each sample share their draws (`shared_copies`).
- `stateful_tensorflow_draws`: while `kerasdrop.export_tflite` traces a model in a thread, kerasdrop's random draws
  there use TensorFlow's stateful random ops, which TensorFlow Lite has builtins for (`stateful_draws`; see
  `kerasdrop._random`).

Joint draws ("consistent" sampling): the sampler runs ``copies`` samples of ``batch`` inputs as one tiled batch of
``copies * batch`` rows, sample-major (row ``s * batch + i`` is sample ``s`` of input ``i``). When every input must
see the same network in sample ``s``, each draw whose shape has a batch axis draws ``copies`` values along it (one
per sample) and repeats each over the ``batch`` rows of its sample: see `kerasdrop._random.shared_over_batch`.

Outside such a trace (any other thread, any other call of the model) `selected` is None, `shared_copies` None and
`stateful_draws` False: a layer follows its ``training`` argument and its ``mc`` flag, and draws one value per row
with ``keras.random``, as usual.
"""

import contextlib
import threading

_state = threading.local()


@contextlib.contextmanager
def _setting(**values):
    previous = {name: getattr(_state, name, None) for name in values}
    for name, value in values.items():
        setattr(_state, name, value)
    try:
        yield
    finally:
        for name, value in previous.items():
            setattr(_state, name, value)


def selecting(layer_ids, shared_copies=None):
    """While open in this thread, exactly the layers whose ``id`` is in ``layer_ids`` sample.

    ``shared_copies``: None (each row draws its own noise), or the number of samples (an int or a scalar int
    tensor) tiled along the batch axis, whose rows share their draws sample by sample.
    """
    return _setting(layer_ids=frozenset(layer_ids), copies=shared_copies)


def selected(layer):
    """True or False inside `selecting` (whether ``layer`` samples), None outside it."""
    layer_ids = getattr(_state, "layer_ids", None)
    if layer_ids is None:
        return None
    return id(layer) in layer_ids


def shared_copies():
    """The number of samples whose rows share their draws (see `selecting`), or None when every row draws its own."""
    return getattr(_state, "copies", None)


def stateful_tensorflow_draws():
    """While open in this thread, kerasdrop's draws use TensorFlow's stateful random ops (see `kerasdrop._random`)."""
    return _setting(stateful=True)


def stateful_draws():
    """True while `stateful_tensorflow_draws` is open in this thread."""
    return bool(getattr(_state, "stateful", False))
