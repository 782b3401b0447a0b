"""Constructor argument checks of every transform (not part of the public API).

Each check returns the value in the form the op keeps (``int``, ``float``,
a tuple of floats, an array) or raises ValueError with a message of the one
form ``"<Op>: <argument> must be <what the rules ask>, got <value>"``, the
rules written out, so that every op refuses a bad argument in the same words.
State checks (what a step needs from the previous one) are in ``_checks.py``.
"""
import math
import numbers

import numpy as np


def is_number(value):
    """True for a real number (Python's or NumPy's), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def seed_arg(op_name, seed, name='seed'):
    """FFCV-SSL's ``seed`` argument: None, or ``int(seed)`` for an integer >= 0 (not a bool).

    Raises
    ------
    ValueError
        Naming the op and the argument, for anything else.
    """
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{op_name}: {name} must be None or an integer >= 0, got {seed!r}")
    return int(seed)


def positive_int(op_name, name, value, minimum=1):
    """``int(value)`` if it is an integer ``>= minimum``, else ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{op_name}: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{op_name}: {name} must be at least {minimum}, got {value}")
    return int(value)


def _bounds_text(low, low_open, high, variable):
    # "0 < x", "0 <= x <= 1", "x <= 255", or "" for no bound
    text = variable
    if low is not None:
        text = f"{low:g} {'<' if low_open else '<='} {text}"
    if high is not None:
        text = f"{text} <= {high:g}"
    return text


def _interval_text(low, low_open, high):
    # " >= 0", " > 0", " <= 255", " in [0, 1]" or ""
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}]"
    if low is not None:
        return f" {'>' if low_open else '>='} {low:g}"
    return f" <= {high:g}" if high is not None else ''


def _within(value, low, low_open, high):
    if low is not None and not (value > low if low_open else value >= low):
        return False
    return high is None or value <= high


def number(op_name, name, value, low=None, low_open=False, high=None, finite=True, unit=None):
    """``float(value)`` for a real number within the bounds, else ValueError.

    Parameters
    ----------
    op_name, name : str
        The op and the argument, for the message.
    value : object
        What the caller passed.
    low : float, optional
        Least value allowed; excluded itself when ``low_open``.
    high : float, optional
        Greatest value allowed (included).
    finite : bool
        Refuse infinities (NaN is always refused).
    unit : str, optional
        Named in the message, e.g. ``'radians'``.
    """
    if (not is_number(value) or math.isnan(value) or (finite and math.isinf(value))
            or not _within(value, low, low_open, high)):
        what = ('a finite number' if finite else 'a number') + _interval_text(low, low_open, high)
        raise ValueError(f"{op_name}: {name} must be {what}{f' ({unit})' if unit else ''}, "
                         f"got {value!r}")
    return float(value)


def probability(op_name, name, value):
    """``float(value)`` if it is a number in [0, 1], else ValueError."""
    return number(op_name, name, value, low=0.0, high=1.0)


def range_pair(op_name, name, value, low=None, low_open=False, high=None, finite=True,
               scalar=False):
    """A range ``(min, max)`` as two floats, checked against explicit rules.

    Parameters
    ----------
    op_name, name : str
        The op and the argument, for the message.
    value : pair of real numbers, or one number when ``scalar``
        Anything that unpacks into two numbers (tuple, list, array); with
        ``scalar`` a single number ``x`` stands for ``(x, x)``.
    low : float, optional
        Bound on ``min``: ``min >= low``, or ``min > low`` when ``low_open``.
    high : float, optional
        Bound on ``max``: ``max <= high``.
    finite : bool
        Refuse infinite ends (NaN is always refused).
    scalar : bool
        Accept a single number for a range of one value.

    Returns
    -------
    (float, float)
        ``min <= max``, within the bounds.

    Raises
    ------
    ValueError
        ``"<op>: <name> must be a pair (min, max) with <rules>, got <value>"``.
    """
    pair = (value, value) if scalar and is_number(value) else _unpack_pair(value)
    if (pair is None or not all(is_number(v) and not math.isnan(v)
                                and not (finite and math.isinf(v)) for v in pair)
            or not _within(pair[0], low, low_open, None) or not _within(pair[1], None, False, high)
            or pair[0] > pair[1]):
        rules = _bounds_text(low, low_open, high, 'min <= max')
        what = f"{'a number or ' if scalar else ''}a pair (min, max) with {rules}"
        raise ValueError(f"{op_name}: {name} must be {what}{', finite' if finite else ''}, "
                         f"got {value!r}")
    return float(pair[0]), float(pair[1])


def _unpack_pair(value):
    if isinstance(value, (str, bytes)):
        return None
    try:
        first, second = value
    except (TypeError, ValueError):
        return None
    return first, second


def fill_vector(op_name, fill):
    """A fill colour as a 1-D float64 array (checked against the images later).

    Raises
    ------
    ValueError
        If ``fill`` is not a non-empty 1-D sequence of finite numbers.
    """
    try:
        values = np.asarray(fill, dtype=np.float64)
    except (TypeError, ValueError):
        values = None
    if values is None or values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"{op_name}: fill must be a sequence of numbers, one per channel, "
                         f"got {fill!r}")
    return values


def sample_indices(op_name, indices):
    """Sorted, distinct sample indices as ``ndarray[uint64]`` (what the Loader passes).

    Raises
    ------
    ValueError
        If ``indices`` is not a 1-D collection of non-negative integers.
    """
    values = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if values.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if values.ndim != 1 or values.dtype.kind not in 'iu':
        raise ValueError(f"{op_name}: indices must be a 1-D collection of sample numbers "
                         f"(integers), got dtype {values.dtype} and shape {values.shape}")
    if values.min() < 0:
        raise ValueError(f"{op_name}: indices must be non-negative, got {int(values.min())}")
    return np.unique(values.astype(np.uint64))
