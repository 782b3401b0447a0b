# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Native core of the ``.beton`` reader: allocation-table and metadata checks, region lookup.

Every function here walks one table of the file in C, with no Python work per
record, so that opening a dataset of millions of samples stays cheap. The
callers (``ffcvx.reader``) hand over raw bytes as typed memoryviews:

- the allocation table as ``uint8[n, 24]`` (records of FMT-050),
- the metadata table as ``uint8[num_samples, itemsize]`` (records of FMT-031),

and every multi-byte number is assembled little-endian by hand (FMT-001), so
the code is independent of host byte order and of the alignment of the
(packed, often unaligned) members.

On a violation each function raises :class:`ffcvx.errors.BetonFormatError`
whose message names the record and whose ``offset`` is the absolute byte
offset, in the file, of the offending value; ``clause`` is the reader clause of
``spec/beton.md`` ("What a reader must reject").
"""
from libc.stdint cimport int64_t, uint8_t, uint64_t

from ffcvx._ext.beton_loads cimport find_region, load_u64

import numpy as np

from ffcvx.errors import BetonFormatError

#: Size of one allocation-table record, bytes (FMT-050).
ALLOC_RECORD_SIZE = 24

cdef uint64_t NO_PAGE = <uint64_t>0xFFFFFFFFFFFFFFFF
#: ``region_owners`` entry of a pointer that only zero-size records have.
NO_OWNER = 0xFFFFFFFFFFFFFFFF


cdef inline int log2_exact(uint64_t value) noexcept nogil:
    cdef int shift = 0
    while shift < 64 and (<uint64_t>1 << shift) != value:
        shift += 1
    return shift


def check_alloc_table(const uint8_t[:, ::1] table, uint64_t num_samples, uint64_t data_start,
                      uint64_t table_ptr, uint64_t page_size):
    """Validate the allocation table and build the region lookup table.

    Parameters
    ----------
    table : uint8 memoryview, shape (n, 24)
        The raw allocation-table records, in file order (FMT-050).
    num_samples : int
        ``header['num_samples']``.
    data_start : int, bytes
        First byte of the data region, ``align_up(end of metadata, page_size)`` (FMT-040).
    table_ptr : int, bytes
        ``header['alloc_table_ptr']``: where the table starts and the data region ends.
    page_size : int, bytes
        A power of two (checked by the caller, FMT-062).

    Returns
    -------
    region_ptrs : ndarray[uint64], shape (m,)
        Distinct region start offsets (absolute file offsets, bytes), ascending.
    region_sizes : ndarray[uint64], shape (m,)
        Size in bytes of the region at each ``region_ptrs`` entry; where several
        records share a pointer (a zero-size record ahead of the next region),
        the largest size.
    region_owners : ndarray[uint64], shape (m,)
        ``sample_id`` of the non-empty record at each ``region_ptrs`` entry
        (there is at most one, FMT-077); ``2**64 - 1`` where every record at
        that pointer is empty. Metadata pointers are checked against it (FMT-088).

    Raises
    ------
    BetonFormatError
        FMT-074 ``sample_id >= num_samples``; FMT-075 a non-empty region outside
        ``[data_start, table_ptr)`` or a zero-size record past ``table_ptr``;
        FMT-076 a non-empty region crossing a page boundary; FMT-077 two
        non-empty regions overlapping; FMT-078 one sample's non-empty regions in
        different pages. ``offset`` points at the offending record's field.
    ValueError
        If ``table`` does not have 24 columns.
    """
    if table.shape[1] != ALLOC_RECORD_SIZE:
        raise ValueError(f"allocation table rows must be {ALLOC_RECORD_SIZE} bytes, got {table.shape[1]}")
    cdef Py_ssize_t n = table.shape[0]
    cdef int shift = log2_exact(page_size)
    cdef Py_ssize_t i, k, j, bad = -1, other = -1
    cdef int err = 0
    cdef uint64_t sid = 0, ptr = 0, size = 0, page = 0

    ptrs_arr = np.empty(n, dtype=np.uint64)
    cdef uint64_t[::1] ptrs = ptrs_arr
    # Page of each sample's first non-empty region; only needed when the table has records.
    page_arr = np.full(num_samples if n > 0 else 0, NO_PAGE, dtype=np.uint64)
    cdef uint64_t[::1] sample_page = page_arr

    with nogil:
        for i in range(n):
            sid = load_u64(&table[i, 0])
            ptr = load_u64(&table[i, 8])
            size = load_u64(&table[i, 16])
            ptrs[i] = ptr
            if sid >= num_samples:
                err = 74
            elif size == 0:
                if ptr > table_ptr:
                    err = 75
            elif ptr < data_start or ptr > table_ptr or size > table_ptr - ptr:
                err = 75
            elif (ptr >> shift) != ((ptr + size - 1) >> shift):
                err = 76
            else:
                page = ptr >> shift
                if sample_page[sid] == NO_PAGE:
                    sample_page[sid] = page
                elif sample_page[sid] != page:
                    err = 78
            if err != 0:
                bad = i
                break

    if err != 0:
        where = f"allocation record {bad} (sample_id {sid}, ptr {ptr}, size {size})"
        record = table_ptr + <uint64_t>bad * ALLOC_RECORD_SIZE
        if err == 74:
            raise BetonFormatError(f"{where}: sample_id is not below num_samples {num_samples}",
                                   offset=record, clause="FMT-074")
        if err == 75:
            if size == 0:
                raise BetonFormatError(
                    f"{where}: zero-size record points past the data region end {table_ptr}",
                    offset=record + 8, clause="FMT-075")
            raise BetonFormatError(
                f"{where}: region is not inside the data region [{data_start}, {table_ptr})",
                offset=record + 8, clause="FMT-075")
        if err == 76:
            raise BetonFormatError(
                f"{where}: region crosses the boundary of page {ptr >> shift} "
                f"(page size {page_size})", offset=record + 8, clause="FMT-076")
        raise BetonFormatError(
            f"{where}: sample {sid} has regions in page {sample_page[sid]} and page {ptr >> shift}; "
            f"all regions of one sample must lie in one page", offset=record + 8, clause="FMT-078")

    order_arr = np.argsort(ptrs_arr).astype(np.int64)
    cdef const int64_t[::1] order = order_arr
    out_ptrs_arr = np.empty(n, dtype=np.uint64)
    out_sizes_arr = np.empty(n, dtype=np.uint64)
    out_owners_arr = np.empty(n, dtype=np.uint64)
    cdef uint64_t[::1] out_ptrs = out_ptrs_arr
    cdef uint64_t[::1] out_sizes = out_sizes_arr
    cdef uint64_t[::1] out_owners = out_owners_arr
    cdef Py_ssize_t count = 0
    cdef uint64_t prev_end = 0
    cdef Py_ssize_t prev_rec = -1

    with nogil:
        for k in range(n):
            j = order[k]
            ptr = ptrs[j]
            size = load_u64(&table[j, 16])
            if count > 0 and out_ptrs[count - 1] == ptr:
                if size > out_sizes[count - 1]:
                    out_sizes[count - 1] = size
            else:
                out_ptrs[count] = ptr
                out_sizes[count] = size
                out_owners[count] = NO_PAGE
                count += 1
            if size > 0:
                out_owners[count - 1] = load_u64(&table[j, 0])
            if size > 0:
                if prev_rec >= 0 and ptr < prev_end:
                    err = 77
                    bad = j
                    other = prev_rec
                    break
                prev_end = ptr + size
                prev_rec = j

    if err != 0:
        raise BetonFormatError(
            f"allocation records {other} and {bad} overlap: region at {ptr} of {size} bytes starts "
            f"before the end ({prev_end}) of the region of record {other}",
            offset=table_ptr + <uint64_t>bad * ALLOC_RECORD_SIZE + 8, clause="FMT-077")

    return out_ptrs_arr[:count].copy(), out_sizes_arr[:count].copy(), out_owners_arr[:count].copy()


def region_size(const uint64_t[::1] region_ptrs, const uint64_t[::1] region_sizes, uint64_t ptr):
    """Size of the region that starts at ``ptr``.

    Parameters
    ----------
    region_ptrs, region_sizes : ndarray[uint64], shape (m,)
        As returned by :func:`check_alloc_table`.
    ptr : int
        Absolute file offset, bytes.

    Returns
    -------
    int
        The region's size in bytes, or -1 when no region starts at ``ptr``.
    """
    cdef int64_t idx = find_region(region_ptrs, ptr)
    if idx < 0:
        return -1
    return int(region_sizes[idx])

# The metadata checks (FMT-079 to FMT-082, FMT-088) live in ffcvx._ext.beton_records;
# importable from here as before.
from ffcvx._ext.beton_records import (check_bytes_pointers, check_ndarray_pointers,  # noqa: E402
                                      check_rgb_records)
