"""Every per-sample status code of the decode layer, in one table (spec/backends.md BKD-070).

Compiled decoders cannot raise, so each sample's outcome is an ``int``
recorded by the compiled code and turned into a :class:`~ffcvx.errors.DecodeError`
afterwards, in Python. Three parts of the decode can fail, and each has its
own range of codes, so that a number alone says which part failed:

* ``-1 .. -99``, decoder backend: ``decode_region``'s statuses, a C ABI
  (BKD-013, BKD-071);
* ``-100 .. -199``, decoder: the image decoders' own checks (BKD-072, BKD-074);
* ``-200 .. -299``, resize kernel: an ``ffcvx_resize_*`` status ``c`` is
  recorded as ``-200 + c`` (BKD-073).

``0`` is success everywhere. The module is pure Python (no numpy, torch or
Numba), so any layer may import it; the integer constants are plain ``int``
and so are compile-time constants in Numba code.
"""
from collections import namedtuple
from types import MappingProxyType

#: One row of :data:`TABLE`.
Status = namedtuple('Status', 'code source meaning clause')

#: The value every source uses for success.
OK = 0

# -- decoder backend: decode_region's return values (BKD-013). Part of the C ABI
# that backends implement: the values never change.
BACKEND_CORRUPT = -1
BACKEND_CAPACITY = -2
BACKEND_BAD_ARGUMENT = -3

# -- decoder: the image decoders' own checks of a sample and its buffers.
DECODER_SIZE_MISMATCH = -100
DECODER_NO_BACKEND = -101
DECODER_BAD_MODE = -102
DECODER_SHORT_RAW = -103
DECODER_BUFFER_TOO_SMALL = -104
DECODER_HEADER_MISMATCH = -105

# -- resize kernel: ffcvx/_ext/resize.pyx returns -2 and -3 (its own enum, which
# matches BKD-013's words but not its meaning for the caller). The decoders
# add RESIZE_BASE at the call site instead of changing the C.
RESIZE_BASE = -200
RESIZE_SCRATCH_TOO_SMALL = RESIZE_BASE - 2
RESIZE_BAD_ARGUMENT = RESIZE_BASE - 3

#: Name of each source, as error messages print it.
BACKEND, DECODER, RESIZE = 'decoder backend', 'decoder', 'resize kernel'

#: ``(source, highest code, lowest code)`` of each range, highest first.
RANGES = ((BACKEND, -1, -99), (DECODER, -100, -199), (RESIZE, -200, -299))

_ROWS = (
    Status(BACKEND_CORRUPT, BACKEND, 'corrupt or unsupported data', 'BKD-013'),
    Status(BACKEND_CAPACITY, BACKEND, 'output buffer too small', 'BKD-014'),
    Status(BACKEND_BAD_ARGUMENT, BACKEND, 'bad arguments', 'BKD-015'),
    Status(DECODER_SIZE_MISMATCH, DECODER, 'decoded size differs from the size in the metadata',
           'BKD-072'),
    Status(DECODER_NO_BACKEND, DECODER, 'no decoder backend for this image format', 'BKD-072'),
    Status(DECODER_BAD_MODE, DECODER, 'unknown image mode (FMT-036)', 'BKD-072'),
    Status(DECODER_SHORT_RAW, DECODER, 'raw region shorter than height*width*channels bytes',
           'BKD-072'),
    Status(DECODER_BUFFER_TOO_SMALL, DECODER, 'declared output buffer too small for this image',
           'BKD-074'),
    Status(DECODER_HEADER_MISMATCH, DECODER,
           "the image header's size differs from the metadata, or it has none; not decoded",
           'BKD-075'),
    Status(RESIZE_SCRATCH_TOO_SMALL, RESIZE, 'scratch memory too small', 'BKD-073'),
    Status(RESIZE_BAD_ARGUMENT, RESIZE, 'bad arguments (a size outside 1..2**24)', 'BKD-073'),
)

#: ``code -> Status`` for every known non-zero code (read-only).
TABLE = MappingProxyType({row.code: row for row in _ROWS})


def source_of(code):
    """Which part of the decode a status code comes from (BKD-070).

    Parameters
    ----------
    code : int

    Returns
    -------
    str or None
        :data:`BACKEND`, :data:`DECODER` or :data:`RESIZE`; None for 0 and
        for codes outside every range. Positive codes, which BKD-013 forbids,
        count as the backend's.
    """
    code = int(code)
    if code > 0:
        return BACKEND
    for source, high, low in RANGES:
        if low <= code <= high:
            return source
    return None


def meanings(source):
    """``code -> meaning`` of one source's known codes, e.g. ``meanings(BACKEND)``."""
    return {row.code: row.meaning for row in _ROWS if row.source == source}


def describe(code):
    """One line naming the part that failed and what the code means.

    Parameters
    ----------
    code : int

    Returns
    -------
    str
        E.g. ``"resize kernel: scratch memory too small (status -202, BKD-073)"``,
        ``"decoder backend: unknown status -7 (BKD-013)"``, ``"ok (status 0)"``.
    """
    code = int(code)
    if code == OK:
        return 'ok (status 0)'
    row = TABLE.get(code)
    if row is not None:
        return f"{row.source}: {row.meaning} (status {code}, {row.clause})"
    source = source_of(code)
    if source is None:
        return f"unknown status {code}, outside every range (BKD-070)"
    clause = {BACKEND: 'BKD-013', DECODER: 'BKD-072', RESIZE: 'BKD-073'}[source]
    return f"{source}: unknown status {code} ({clause})"


def resize_status(rc):
    """The table's code for a status ``rc`` returned by an ``ffcvx_resize_*`` kernel (BKD-073)."""
    rc = int(rc)
    return OK if rc == 0 else RESIZE_BASE + rc


__all__ = ['Status', 'TABLE', 'RANGES', 'OK', 'BACKEND', 'DECODER', 'RESIZE', 'BACKEND_CORRUPT',
           'BACKEND_CAPACITY', 'BACKEND_BAD_ARGUMENT', 'DECODER_SIZE_MISMATCH', 'DECODER_NO_BACKEND',
           'DECODER_BAD_MODE', 'DECODER_SHORT_RAW', 'DECODER_BUFFER_TOO_SMALL',
           'DECODER_HEADER_MISMATCH', 'RESIZE_BASE', 'RESIZE_SCRATCH_TOO_SMALL', 'RESIZE_BAD_ARGUMENT', 'source_of', 'meanings', 'describe',
           'resize_status']
