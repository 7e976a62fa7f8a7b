"""Argument validation shared by every public class.

Each checker returns the normalised value or raises with one message format, which begins with Keras's own wording:
``Invalid value received for argument `rate`. Expected a float value between 0 and 1 (1 excluded). Received:
rate=1.5``. Values of the right type outside their range raise ``ValueError``; wrong Python types raise
`ArgumentTypeError`, which is both a ``TypeError`` and the ``ValueError`` that Keras's layers raise there.
"""

import math
import numbers

import numpy as np


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong Python type: a ``TypeError``, and a ``ValueError`` as Keras raises for its layers."""


def _message(name, expected, value):
    return f"Invalid value received for argument `{name}`. Expected {expected}. Received: {name}={value!r}"


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_float(name, value, low=None, high=None, low_inclusive=True, high_inclusive=True, expected=None):
    """A finite real number in the interval given by ``low``/``high`` (either may be None)."""
    low_bracket = "[" if low_inclusive else "("
    high_bracket = "]" if high_inclusive else ")"
    if expected is None:
        if low is None and high is None:
            expected = "a finite float"
        else:
            low_text = "-inf" if low is None else f"{low:g}"
            high_text = "inf" if high is None else f"{high:g}"
            expected = f"a float in {low_bracket}{low_text}, {high_text}{high_bracket}"
    if not _is_real(value):
        raise ArgumentTypeError(_message(name, expected, value))
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise ValueError(_message(name, expected, value))
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise ValueError(_message(name, expected, value))
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise ValueError(_message(name, expected, value))
    return value


RATE_EXPECTED = "a float value between 0 and 1 (1 excluded)"


def check_rate(name, value):
    """A dropout rate: probability of dropping, in [0, 1)."""
    return check_float(name, value, 0.0, 1.0, high_inclusive=False, expected=RATE_EXPECTED)


def check_positive_float(name, value):
    return check_float(name, value, 0.0, None, low_inclusive=False, expected="a finite float > 0")


def check_non_negative_float(name, value):
    return check_float(name, value, 0.0, None, expected="a finite float >= 0")


def check_positive_int(name, value):
    if not _is_int(value):
        raise ArgumentTypeError(_message(name, "a positive integer", value))
    if value <= 0:
        raise ValueError(_message(name, "a positive integer", value))
    return int(value)


def check_int_tuple(name, value, length):
    """An int (repeated ``length`` times) or a tuple/list of ``length`` positive ints, as for `pool_size`."""
    expected = f"a positive integer or a tuple of {length} positive integers"
    if _is_int(value):
        value = (value,) * length
    if not isinstance(value, (tuple, list)):
        raise ArgumentTypeError(_message(name, expected, value))
    if len(value) != length:
        raise ValueError(_message(name, expected, value))
    for item in value:
        if not _is_int(item):
            raise ArgumentTypeError(_message(name, expected, value))
        if item <= 0:
            raise ValueError(_message(name, expected, value))
    return tuple(int(item) for item in value)


def check_seed(value):
    """None or an int."""
    if value is None:
        return None
    if not _is_int(value):
        raise ArgumentTypeError(_message("seed", "an int or None", value))
    return int(value)


def check_bool(name, value):
    """True or False (NumPy booleans too); ints and strings are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(_message(name, "a bool (True or False)", value))
    return bool(value)


def check_choice(name, value, choices):
    expected = "one of " + ", ".join(repr(choice) for choice in choices)
    if not isinstance(value, str):
        raise ArgumentTypeError(_message(name, expected, value))
    if value not in choices:
        raise ValueError(_message(name, expected, value))
    return value


def check_data_format(value):
    """None (use ``keras.config.image_data_format()``), "channels_last" or "channels_first"."""
    if value is None:
        import keras

        return keras.config.image_data_format()
    return check_choice("data_format", value, ("channels_last", "channels_first"))


def check_noise_shape(value):
    """None, or a tuple/list whose entries are positive ints or None (None = size of the input there).

    The three messages begin as Keras's `Dropout` words them.
    """
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise ArgumentTypeError(
            _message("noise_shape", "a tuple or list of integers (or None, the input's size there)", value)
        )
    for index, item in enumerate(value):
        if item is None:
            continue
        if not _is_int(item):
            raise ArgumentTypeError(
                _message("noise_shape", f"all elements to be integers or None; element {index} is {item!r}", value)
            )
        if item <= 0:
            raise ValueError(
                _message(
                    "noise_shape", f"all dimensions to be positive integers or None; element {index} is {item}", value
                )
            )
    return tuple(None if item is None else int(item) for item in value)


def check_numeric_array(name, values):
    """``values`` as a NumPy array of numbers or booleans (its own dtype); `ArgumentTypeError` otherwise."""
    array = np.asarray(values)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ArgumentTypeError(
            f"Invalid value received for argument `{name}`. Expected a numeric array. Received: {name} "
            f"of dtype {array.dtype}"
        )
    return array


def check_instance(name, value, types, expected):
    """An instance of ``types`` (a class or tuple of classes); ``expected`` describes it in the message."""
    if not isinstance(value, types):
        raise ArgumentTypeError(_message(name, expected, value))
    return value
