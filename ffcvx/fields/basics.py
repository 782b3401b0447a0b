"""Scalar fields: ``IntField`` (int64) and ``FloatField`` (float64).

Both refuse, before anything is stored, a value they cannot store exactly
(``spec/beton.md``, "Writer faults"): a non-integral, NaN or infinite float
or an out-of-range integer for ``IntField``; an integer that float64 cannot
hold exactly for ``FloatField``; and any value that is not a number (str,
None, complex, ...) for either. The writer adds the sample index and field
name to the message.
"""
import math
import numbers
import operator

import numpy as np

from .base import Field, copy_unchanged, decoder_aliases, decoder_named, zero_arguments


INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _scalar(value, field):
    """``value`` itself, or the one element of a 0-d or one-element array.

    Array-likes (``torch.tensor(3)``, as many datasets return labels) go
    through ``np.asarray`` first, as FFCV's ``destination[0] = value`` did.
    """
    if not isinstance(value, (np.ndarray, np.generic)) and hasattr(value, '__array__'):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError, RuntimeError):
            return value   # refused below with the type's name
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise TypeError(f"{field} expects one number, got an array of shape {value.shape}")
        value = value.reshape(-1)[0]
    return value


def exact_int64(value):
    """``value`` as a Python int that int64 holds, or an error.

    Parameters
    ----------
    value : int, bool, numpy integer, integral float, an object with ``__index__``, or a
        one-element array or array-like (``torch.tensor(3)``) of these

    Returns
    -------
    int
        In ``[-2**63, 2**63 - 1]``.

    Raises
    ------
    TypeError
        For a value that is not a real number (str, None, complex, ...).
    ValueError
        For a float that is NaN, infinite or not integral, or an integer out of the int64 range.
    """
    value = _scalar(value, 'IntField')
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)):
        if not math.isfinite(value) or not float(value).is_integer():
            raise ValueError(f"IntField stores integers; {value!r} is not an integral number "
                             f"(convert it explicitly, or use FloatField)")
        number = int(value)
    elif hasattr(type(value), '__index__'):   # integer types of other libraries
        number = operator.index(value)
    else:
        raise TypeError(f"IntField expects an integer, got {type(value).__name__} {value!r}")
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"IntField stores int64; {number} is out of range "
                         f"[{INT64_MIN}, {INT64_MAX}]")
    return number


def exact_float64(value):
    """``value`` as a float64 that equals it, or an error.

    Raises
    ------
    TypeError
        For a value that is not a real number (str, None, complex, ...).
    ValueError
        For an integer or extended-precision float that float64 cannot hold
        exactly (e.g. ``2**53 + 1``). NaN and infinities are stored as they are.
    """
    value = _scalar(value, 'FloatField')
    if isinstance(value, (bool, np.bool_, int, np.integer)):
        integer = int(value)
        if abs(integer) >= (1 << 1024):
            raise ValueError(f"FloatField stores float64; an integer of {len(str(abs(integer)))} "
                             f"digits is out of its range")
        number = float(integer)
        if number != integer:
            raise ValueError(f"FloatField stores float64, which cannot hold the integer "
                             f"{integer} exactly (nearest: {number!r})")
        return np.float64(number)
    if isinstance(value, (float, np.floating)):
        number = np.float64(value)
        if number != value and not (math.isnan(number) and math.isnan(value)):
            raise ValueError(f"FloatField stores float64, which cannot hold {value!r} "
                             f"({type(value).__name__}) exactly")
        return number
    if isinstance(value, numbers.Real):   # e.g. fractions.Fraction
        number = np.float64(float(value))
        if number != value:
            raise ValueError(f"FloatField stores float64, which cannot hold {value!r} exactly")
        return number
    raise TypeError(f"FloatField expects a real number, got {type(value).__name__} {value!r}")


class _ScalarField(Field):
    """A number per sample, stored in the metadata table itself (FMT-032).

    Subclasses name, as class keywords, the stored dtype (``dtype``), the
    check that a value fits it exactly (``exact``) and their decoder
    (``decoder``); each such class gets its own static ``from_binary``
    returning an instance of it, as FFCV's fields have. A subclass of one of
    them, without keywords, inherits all four.
    """

    _dtype = None
    _exact = None
    _decoder = None

    def __init_subclass__(cls, dtype=None, exact=None, decoder=None, **kwargs):
        super().__init_subclass__(**kwargs)
        if dtype is None:
            return
        cls._dtype, cls._exact, cls._decoder = dtype, staticmethod(exact), decoder

        def from_binary(binary):
            """A new field: it has no arguments to read (FMT-032)."""
            return cls()
        from_binary.__qualname__ = f'{cls.__qualname__}.from_binary'
        cls.from_binary = staticmethod(from_binary)

    @property
    def metadata_type(self):
        return np.dtype(self._dtype)

    def to_binary(self):
        return zero_arguments()

    def encode(self, destination, field, malloc):
        """Store ``field`` exactly as the metadata type (:func:`exact_float64`, :func:`exact_int64`)."""
        destination[0] = self._exact(field)

    def relocate(self, values, shift):
        """The values unchanged: a number holds no pointer (FMT-032, FMT-092).

        A subclass with another metadata type is refused as custom fields are.
        """
        if self.metadata_type != np.dtype(self._dtype):
            return super().relocate(values, shift)
        return copy_unchanged(values)

    def get_decoder_class(self):
        return decoder_named(self._decoder)


class FloatField(_ScalarField, dtype='<f8', exact=exact_float64, decoder='FloatDecoder'):
    """A float64 per sample, stored in the metadata table itself (FMT-032)."""


class IntField(_ScalarField, dtype='<i8', exact=exact_int64, decoder='IntDecoder'):
    """An int64 per sample, stored in the metadata table itself (FMT-032)."""


# FFCV 1.0's import path for this field's decoder(s), resolved on first use.
__getattr__ = decoder_aliases(__name__, 'FloatDecoder', 'IntDecoder')
