"""Helpers of the corrupt-file tests (tests/test_corrupt*.py): offsets and the rejection check."""
import re
from pathlib import Path

import pytest

from ffcvx.errors import BetonFormatError
from ffcvx.reader import Reader
from ffcvx.types import ALLOC_TABLE_TYPE, metadata_offset

SPEC = Path(__file__).resolve().parents[1] / 'spec' / 'beton.md'

HEADER_VERSION, HEADER_FIELDS, HEADER_PAGE, HEADER_SAMPLES, HEADER_ALLOC = 0, 2, 4, 8, 16
DESC_SIZE, DESC_NAME, DESC_ARGS = 1041, 1, 17
REC = ALLOC_TABLE_TYPE.itemsize


def rejects(path, clause, offset='any', match=None, **kwargs):
    """Open ``path`` and check the BetonFormatError: clause, offset, message."""
    with pytest.raises(BetonFormatError) as info:
        Reader(path, **kwargs)
    error = info.value
    assert error.clause == clause, str(error)
    assert f'[{clause}]' in str(error)
    if offset != 'any':
        assert error.offset == offset, str(error)
        assert f'at byte offset {offset}' in str(error)
    if match is not None:
        assert re.search(match, str(error)), str(error)
    return error


def desc_at(index):
    return 24 + DESC_SIZE * index


def record_at(reader, index):
    return int(reader.header['alloc_table_ptr']) + REC * index


def meta_at(reader, sample, field, member=0):
    index = reader.field_names.index(field)
    return (metadata_offset(reader.num_fields) + sample * reader.metadata_type.itemsize
            + reader.metadata_type.fields[f'f{index}'][1] + member)

