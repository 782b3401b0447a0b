"""Fixed-shape arrays: ``NDArrayField`` and ``TorchTensorField`` (FMT-023, FMT-034)."""
import json
import math

import numpy as np

from .base import Field, decoder_aliases, decoder_named, native_core, shift_member
from ..errors import BetonFormatError
from ..types import ARG_TYPE

#: An array's bytes lie in one region of one page (FMT-041), and pages are
#: below 2**32 bytes (FMT-013): a larger element size can never be read (FMT-089).
MAX_ELEMENT_SIZE = 1 << 32

#: Fixed part of an array field's ``arguments``: 32 dims + descr length (FMT-023).
NDArrayArgsType = np.dtype([
    ('shape', '<u8', 32),
    ('type_length', '<u8'),
])


def _check_element_dtype(dtype):
    """Raise ValueError unless ``dtype`` can be an array field's element type (FMT-023)."""
    if dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject or dtype.itemsize == 0:
        raise ValueError(f"array dtype {dtype.str!r} is not a plain, fixed-size, non-object "
                         f"element type")


def _to_dtype(value, dtype):
    """``value`` (an ndarray) as ``dtype``, refusing conversions that would change values.

    Equal dtypes pass untouched. Other dtypes are converted when numpy calls
    the cast ``same_kind`` (``'>i4'`` to ``'<i4'``, int to float, float64 to
    float32, ..., and any integer to any integer) and the conversion keeps every value: converted back, the
    array equals the input (NaN equal to NaN), so an int64 beyond 2**53 in a
    float64 field, a float64 that float32 rounds, or an int out of a narrow
    int's range is refused.

    Raises
    ------
    TypeError
        For a cast across kinds (float to int, so NaN to int too; complex to
        float, ...).
    ValueError
        When some value would change in the field's dtype.
    """
    if value.dtype == dtype:
        return value
    # signed <-> unsigned is allowed too: the round trip below catches every changed value
    integers = value.dtype.kind in 'biu' and dtype.kind in 'iu'
    if not (integers or np.can_cast(value.dtype, dtype, casting='same_kind')):
        raise TypeError(f"NDArrayField expects dtype {dtype}, got {value.dtype}; numpy would "
                        f"change kind ({value.dtype.kind!r} to {dtype.kind!r}), so convert "
                        f"explicitly if that is meant")
    with np.errstate(all='ignore'):       # an overflow is found below, by the round trip
        converted = value.astype(dtype)
        back = converted.astype(value.dtype)
    nan_aware = value.dtype.kind in 'fc'
    if integers and value.size:
        # a round trip cannot see -1 -> uint64 -> -1: compare with the range as Python ints
        info = np.iinfo(dtype)
        if int(value.min()) < info.min or int(value.max()) > info.max:
            raise ValueError(f"NDArrayField of dtype {dtype}: {value.dtype} values in "
                             f"[{int(value.min())}, {int(value.max())}] do not fit its range "
                             f"[{info.min}, {info.max}]; convert explicitly if that is meant")
    if not np.array_equal(back, value, equal_nan=nan_aware):
        changed = int(np.count_nonzero(~_equal(back, value, nan_aware)))
        raise ValueError(f"NDArrayField of dtype {dtype}: {changed} of {value.size} {value.dtype} "
                         f"values do not fit (out of range, or rounded); convert explicitly "
                         f"if that is meant")
    return converted


def _equal(a, b, nan_aware):
    same = a == b
    if nan_aware:
        same |= np.isnan(a) & np.isnan(b)
    return same


class NDArrayField(Field):
    """An array of fixed ``shape`` and ``dtype`` per sample.

    The metadata record is the absolute file offset (``<u8``) of
    ``dtype.itemsize * prod(shape)`` bytes holding the array in C order
    (FMT-034).

    Parameters
    ----------
    dtype : numpy.dtype or anything ``numpy.dtype()`` takes
        Element type, plain and fixed-size (no struct, sub-array or object);
        stored as ``json.dumps(dtype.descr)`` (FMT-023).
    shape : tuple of int
        At most 32 dimensions, each > 0.

    Attributes
    ----------
    dtype : numpy.dtype
    shape : tuple of int
    element_size : int, bytes
        ``dtype.itemsize * prod(shape)``, the size of each sample's region.

    Raises
    ------
    ValueError
        For a dtype that is not plain, more than 32 dimensions or a
        dimension below 1.
    """

    def __init__(self, dtype, shape):
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        _check_element_dtype(self.dtype)
        if len(self.shape) > 32:
            raise ValueError(f"NDArrayField supports at most 32 dimensions, got {len(self.shape)}")
        if any(s <= 0 for s in self.shape):
            raise ValueError(f"NDArrayField dimensions must be positive, got {self.shape}")
        self.element_size = self.dtype.itemsize * math.prod(self.shape)

    @property
    def metadata_type(self):
        return np.dtype('<u8')

    @staticmethod
    def from_binary(binary):
        """Rebuild an ``NDArrayField`` from FMT-023 arguments.

        Always an ``NDArrayField``, also for type id 6 (``TorchTensorField``
        inherits this method, as in FFCV 1.0).

        Raises
        ------
        BetonFormatError
            Clause FMT-023, for arguments that break it; FMT-089 for an
            element size of 2**32 bytes or more.
        """
        raw = np.frombuffer(memoryview(binary).tobytes(), dtype=np.uint8)
        header = raw[:NDArrayArgsType.itemsize].view(NDArrayArgsType)[0]
        type_length = int(header['type_length'])
        if type_length == 0 or type_length > raw.size - NDArrayArgsType.itemsize:
            raise BetonFormatError(
                f"array field arguments: dtype description length {type_length} out of range",
                clause='FMT-023')
        text = raw[NDArrayArgsType.itemsize:NDArrayArgsType.itemsize + type_length].tobytes()
        try:
            descr = json.loads(text.decode('ascii'))
            if not isinstance(descr, list) or len(descr) != 1:
                raise ValueError("it must describe exactly one member")
            dtype = np.dtype([tuple(x) for x in descr])['f0']
            _check_element_dtype(dtype)
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError) as exc:
            raise BetonFormatError(f"array field arguments: bad dtype description {text!r} ({exc})",
                                   clause='FMT-023') from None
        shape = [int(s) for s in header['shape']]
        while shape and shape[-1] == 0:
            shape.pop()
        if not shape or 0 in shape:
            raise BetonFormatError(f"array field arguments: bad shape {header['shape'].tolist()}",
                                   clause='FMT-023')
        element_size = dtype.itemsize * math.prod(shape)
        if element_size >= MAX_ELEMENT_SIZE:
            raise BetonFormatError(
                f"array field arguments: shape {shape} of {dtype.str} is {element_size} bytes per "
                f"sample; an array must fit in one page, below {MAX_ELEMENT_SIZE} bytes",
                clause='FMT-089')
        return NDArrayField(dtype, shape)

    def to_binary(self):
        result = np.zeros(1, dtype=ARG_TYPE)[0]
        raw = result[0]
        header = np.zeros(1, dtype=NDArrayArgsType)
        header['shape'][0][:len(self.shape)] = self.shape
        descr = json.dumps(self.dtype.descr).encode('ascii')
        header['type_length'][0] = len(descr)
        raw[:NDArrayArgsType.itemsize] = header.view('<u1')
        raw[NDArrayArgsType.itemsize:NDArrayArgsType.itemsize + len(descr)] = np.frombuffer(descr, '<u1')
        return result

    def encode(self, destination, field, malloc):
        """Store one array: its ``prod(shape)`` elements in C order, in ``dtype``.

        As in FFCV 1.0 only the elements count, not the shape: a 0-d array
        fills a ``shape=(1,)`` field, a (3, 4) array a (4, 3) one (C order).

        Parameters
        ----------
        field : array_like
            ``prod(shape)`` elements of ``dtype`` or of a dtype that converts
            to it without a change of kind (see ``_to_dtype``).

        Raises
        ------
        ValueError
            If the number of elements is not ``prod(shape)``, or an integer
            does not fit the field's integer dtype.
        TypeError
            For a dtype of another kind (float values for an int field, ...).
        """
        value = np.asarray(field)
        count = math.prod(self.shape)
        if value.size != count:
            raise ValueError(f"NDArrayField expects {count} elements (shape {self.shape}), "
                             f"got shape {value.shape}")
        value = _to_dtype(value, self.dtype)
        ptr, buffer = malloc(self.element_size)
        buffer[:] = np.ascontiguousarray(value).reshape(-1).view('<u1')
        destination[0] = ptr

    def check_metadata(self, column, regions):
        """FMT-079/FMT-080/FMT-088: each pointer starts a region of the sample's own of exactly
        ``element_size`` bytes."""
        if self.metadata_type == np.dtype('<u8'):
            native_core().check_ndarray_pointers(column.raw, column.member, self.element_size,
                                                 regions.ptrs, regions.sizes, column.table_offset,
                                                 column.name, regions.owners)

    def data_regions(self, values, regions):
        """``(ptr, element_size)`` per record (FMT-034)."""
        if self.metadata_type != np.dtype('<u8'):
            return None
        ptrs = np.asarray(values, dtype=np.uint64).reshape(-1)
        return ptrs, np.full(ptrs.shape, self.element_size, dtype=np.int64)

    def relocate(self, values, shift):
        """Each record, a ``<u8`` pointer, moved by ``shift`` bytes (FMT-034, FMT-092).

        TorchTensorField inherits it. A subclass with another metadata type
        is refused as custom fields are.
        """
        if self.metadata_type != np.dtype('<u8'):
            return super().relocate(values, shift)
        return shift_member(values, None, shift)

    def get_decoder_class(self):
        return decoder_named('NDArrayDecoder')


class TorchTensorField(NDArrayField):
    """A torch tensor of fixed shape and dtype, stored exactly like an NDArrayField.

    Written with type id 6 (FMT-022) and the arguments of an NDArrayField of
    the equivalent numpy dtype (FMT-023). As in FFCV 1.0 it reads back as a
    plain :class:`NDArrayField` (this class inherits ``from_binary``), so a
    Loader yields the numpy dtype from ``NDArrayDecoder`` and, after
    ``ToTensor``, the equivalent torch dtype.

    Parameters
    ----------
    dtype : torch.dtype
        Any torch dtype with a numpy equivalent (not bfloat16).
    shape : tuple of int

    Attributes
    ----------
    dtype : numpy.dtype
        The numpy equivalent of ``torch_dtype`` (as FFCV sets it).
    torch_dtype : torch.dtype
    """

    def __init__(self, dtype, shape):
        import torch
        self.torch_dtype = dtype
        np_dtype = torch.empty((), dtype=dtype).numpy().dtype
        super().__init__(np_dtype, shape)

    def encode(self, destination, field, malloc):
        """Store one tensor (or anything NDArrayField takes), moved to the CPU first."""
        if hasattr(field, 'detach'):
            field = field.detach().cpu().numpy()
        super().encode(destination, field, malloc)


# FFCV 1.0's import path for this field's decoder(s), resolved on first use.
__getattr__ = decoder_aliases(__name__, 'NDArrayDecoder')
