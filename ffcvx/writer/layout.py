"""The file layout that :class:`ffcvx.writer.DatasetWriter` writes.

A dataset is written into the layout of FFCV 1.0 (format version 2,
``spec/beton.md``)::

    offset 0                      header, 24 bytes (FMT-010)
    offset 24                     one 1041-byte descriptor per field (FMT-020, FMT-022)
    offset 24 + 1041 * F          metadata table, one record per sample (FMT-030, FMT-031)
    ...                           zero padding up to the next page boundary (FMT-040)
    D0 = align_to_page(...)       data pages, each exactly ``page_size`` bytes (FMT-040)
    D0 + P * page_size            allocation table, 24 bytes per region, to EOF (FMT-050)

The descriptors are written first, the data pages by the workers
(:mod:`ffcvx.writer.pages`), then the metadata table, the allocation table
and, last, the header (:func:`write_tables`).
"""
import os

import numpy as np

from ..fields import type_id_of
from ..types import (CURRENT_VERSION, FieldDescType, HeaderType, align_to_page,
                     metadata_offset)
from .pages import pwrite_all

__all__ = ['Offsets', 'descriptors', 'header_bytes', 'sorted_records', 'table_ptr',
           'write_descriptors', 'write_tables']


class Offsets:
    """Where the metadata table and the data pages of a file start (FMT-030, FMT-040)."""

    def __init__(self, num_fields, num_samples, metadata_type, page_size):
        self.num_fields = num_fields
        self.num_samples = num_samples
        self.page_size = page_size
        self.meta_start = metadata_offset(num_fields)                      # FMT-030
        self.meta_bytes = num_samples * metadata_type.itemsize
        self.data_start = align_to_page(self.meta_start + self.meta_bytes, page_size)  # FMT-040


def descriptors(handlers, stored_names, field_names):
    """The field descriptor table (FMT-020, FMT-021, FMT-022)."""
    desc = np.zeros(len(handlers), dtype=FieldDescType)
    for i, (field, raw) in enumerate(zip(handlers, stored_names)):
        desc['type_id'][i] = type_id_of(field)
        desc['name'][i][:len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        arguments = np.frombuffer(field.to_binary().tobytes(), dtype=np.uint8)
        if arguments.size != desc['arguments'].shape[1]:
            raise ValueError(f"field {field_names[i]!r}: to_binary() returned "
                             f"{arguments.size} bytes, expected {desc['arguments'].shape[1]}")
        desc['arguments'][i] = arguments
    return desc


def write_descriptors(fd, handlers, stored_names, field_names):
    """Write the descriptor table right after the (not yet written) header."""
    pwrite_all(fd, descriptors(handlers, stored_names, field_names).tobytes(), HeaderType.itemsize)


def sorted_records(records):
    """The allocation records in (sample, malloc) order, whatever the worker count (FMT-050)."""
    if len(records):
        return records[np.argsort(records['sample_id'], kind='stable')]
    return records


def table_ptr(at, num_pages):
    """Where the allocation table starts: after the pages, or the metadata without any (FMT-073)."""
    return at.data_start + num_pages * at.page_size if num_pages else at.meta_start + at.meta_bytes


def header_bytes(at, alloc_table_ptr):
    """The 24-byte header (FMT-010) of a file laid out as ``at``."""
    header = np.zeros(1, dtype=HeaderType)
    header['version'] = CURRENT_VERSION
    header['num_fields'] = at.num_fields
    header['page_size'] = at.page_size
    header['num_samples'] = at.num_samples
    header['alloc_table_ptr'] = alloc_table_ptr
    return header.tobytes()


def write_tables(fd, at, metadata, records, num_pages):
    """Write the metadata table, the allocation table and, last, the header.

    ``at`` is the file's :class:`Offsets`, ``records`` the allocation records
    the workers returned, ``num_pages`` the number of data pages they filled.
    The file is truncated after the allocation table.
    """
    pwrite_all(fd, metadata.tobytes(), at.meta_start)
    records = sorted_records(records)
    ptr = table_ptr(at, num_pages)
    pwrite_all(fd, records.tobytes(), ptr)
    os.ftruncate(fd, ptr + records.nbytes)
    pwrite_all(fd, header_bytes(at, ptr), 0)                     # FMT-010, written last
