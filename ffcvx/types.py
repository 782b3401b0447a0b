"""Structured dtypes of the ``.beton`` format, version 2 (spec/beton.md).

All integers are little-endian (FMT-001). These dtypes are the single source of
truth for byte offsets; the spec's layout tables and these definitions must agree
(tests/format/test_types.py checks the offsets).
"""
import numpy as np

#: Format version this package reads and writes (FMT-010).
CURRENT_VERSION = 2

#: Smallest page size a writer may use, bytes (FMT-013).
MIN_PAGE_SIZE = 1 << 21
#: Page sizes must be strictly below this, bytes (FMT-013).
MAX_PAGE_SIZE = 1 << 32
#: FFCV's default page size, bytes.
DEFAULT_PAGE_SIZE = 4 * MIN_PAGE_SIZE

#: Header at offset 0, 24 bytes (FMT-010).
HeaderType = np.dtype([
    ('version', '<u2'),
    ('num_fields', '<u2'),
    ('page_size', '<u4'),
    ('num_samples', '<u8'),
    ('alloc_table_ptr', '<u8'),
], align=True)

#: Length of a field name in a descriptor, bytes (FMT-020).
FIELD_NAME_LENGTH = 16
#: Length of a field descriptor's ``arguments`` blob, bytes (FMT-021).
ARGUMENTS_LENGTH = 1024

ARG_TYPE = np.dtype([('', '<u1', ARGUMENTS_LENGTH)])

#: One field descriptor, 1041 bytes, packed (FMT-020).
FieldDescType = np.dtype([
    ('type_id', '<u1'),
    ('name', ('<u1', FIELD_NAME_LENGTH)),
    ('arguments', ('<u1', ARGUMENTS_LENGTH)),
], align=True)

#: One allocation-table record, 24 bytes, packed (FMT-050).
ALLOC_TABLE_TYPE = np.dtype([
    ('sample_id', '<u8'),
    ('ptr', '<u8'),
    ('size', '<u8'),
])

#: Per-sample storage modes of an image record's ``mode`` byte (FMT-036,
#: FMT-037). Here, with the other format constants, so that the decoders read
#: it without importing the field layer; ``ffcvx.fields.rgb_image`` re-exports it.
IMAGE_MODES = {'jpg': 0, 'raw': 1, 'png': 2}

#: Type id written for a field class that is not one of the built-in ones (FMT-022).
CUSTOM_TYPE_ID = 255

assert HeaderType.itemsize == 24
assert FieldDescType.itemsize == 1041
assert ALLOC_TABLE_TYPE.itemsize == 24


def metadata_offset(num_fields):
    """Byte offset of the metadata table (FMT-030): ``24 + 1041 * num_fields``."""
    return HeaderType.itemsize + FieldDescType.itemsize * num_fields


def align_to_page(offset, page_size):
    """Round ``offset`` up to a multiple of ``page_size`` (FMT-040)."""
    rem = offset % page_size
    return offset if rem == 0 else offset + page_size - rem


def get_metadata_type(handlers):
    """Metadata record dtype for the given fields, in descriptor order (FMT-031).

    Parameters
    ----------
    handlers : sequence of Field
        Field instances in file order.

    Returns
    -------
    numpy.dtype
        An aligned struct with members ``f0``, ``f1``, ... whose types are each
        field's ``metadata_type``.
    """
    return np.dtype([('', h.metadata_type) for h in handlers], align=True)


def __getattr__(name):
    """FFCV 1.0 also has ``TYPE_ID_HANDLER`` and ``get_handlers`` in ``ffcv.types``.

    They live in :mod:`ffcvx.fields`, which imports this module; serving them
    on first use (PEP 562) instead of importing them here avoids the cycle.
    """
    if name in ('TYPE_ID_HANDLER', 'get_handlers'):
        from . import fields
        return getattr(fields, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
