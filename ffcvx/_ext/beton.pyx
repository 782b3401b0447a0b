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
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint64_t

import numpy as np

from ffcvx.errors import BetonFormatError

#: Size of one allocation-table record, bytes (FMT-050).
ALLOC_RECORD_SIZE = 24

# RGB metadata member layout (FMT-036), offsets inside the 13-byte packed record,
# and the Bytes/JSON layout (FMT-033), inside the 16-byte packed record.
cdef enum:
    RGB_MODE = 0
    RGB_WIDTH = 1
    RGB_HEIGHT = 3
    RGB_DATA_PTR = 5
    RGB_RECORD = 13
    BYTES_PTR = 0
    BYTES_SIZE = 8
    BYTES_RECORD = 16

cdef uint64_t NO_PAGE = <uint64_t>0xFFFFFFFFFFFFFFFF
#: ``region_owners`` entry of a pointer that only zero-size records have.
NO_OWNER = 0xFFFFFFFFFFFFFFFF


cdef inline uint64_t load_u64(const uint8_t* p) noexcept nogil:
    return (<uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16)
            | (<uint64_t>p[3] << 24) | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40)
            | (<uint64_t>p[6] << 48) | (<uint64_t>p[7] << 56))


cdef inline uint16_t load_u16(const uint8_t* p) noexcept nogil:
    return <uint16_t>(p[0] | (p[1] << 8))


cdef inline int log2_exact(uint64_t value) noexcept nogil:
    cdef int shift = 0
    while shift < 64 and (<uint64_t>1 << shift) != value:
        shift += 1
    return shift


cdef inline int64_t find_region(const uint64_t[::1] region_ptrs, uint64_t ptr) noexcept nogil:
    """Index of ``ptr`` in the sorted ``region_ptrs``, or -1 when absent."""
    cdef int64_t lo = 0
    cdef int64_t hi = region_ptrs.shape[0]
    cdef int64_t mid
    while lo < hi:
        mid = lo + (hi - lo) // 2
        if region_ptrs[mid] < ptr:
            lo = mid + 1
        else:
            hi = mid
    if lo < region_ptrs.shape[0] and region_ptrs[lo] == ptr:
        return lo
    return -1


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


cdef inline void check_record_width(const uint8_t[:, ::1] meta, Py_ssize_t member, Py_ssize_t width) except *:
    if member < 0 or member + width > meta.shape[1]:
        raise ValueError(f"member at {member} of {width} bytes does not fit a {meta.shape[1]}-byte record")


cdef inline bint foreign(const uint64_t[::1] owners, bint owned, int64_t idx, Py_ssize_t sample) noexcept nogil:
    """True when the region at ``idx`` belongs to a sample other than ``sample`` (FMT-088)."""
    return owned and owners[idx] != <uint64_t>sample


def _foreign_error(prefix, ptr, owner, where):
    return BetonFormatError(
        f"{prefix}: pointer {ptr} names a region of sample {owner} in the allocation table; a "
        f"sample's metadata may only point at regions allocated to that sample",
        offset=where, clause="FMT-088")


def check_ndarray_pointers(const uint8_t[:, ::1] meta, Py_ssize_t member, uint64_t element_size,
                           const uint64_t[::1] region_ptrs, const uint64_t[::1] region_sizes,
                           uint64_t meta_offset, str field_name, region_owners=None):
    """Check that every NDArray pointer starts a region of exactly ``element_size`` bytes (FMT-034).

    Parameters
    ----------
    meta : uint8 memoryview, shape (num_samples, itemsize)
        Raw metadata records.
    member : int, bytes
        Offset of this field's ``<u8`` pointer inside a record.
    element_size : int, bytes
        ``dtype.itemsize * prod(shape)``, below 2**64 (FMT-089 keeps it below 2**32).
    region_ptrs, region_sizes : ndarray[uint64], shape (m,)
        From :func:`check_alloc_table`.
    meta_offset : int, bytes
        File offset of the metadata table (FMT-030), for error offsets.
    field_name : str
    region_owners : ndarray[uint64], shape (m,), optional
        From :func:`check_alloc_table`; when given, each region must be the sample's own.

    Raises
    ------
    BetonFormatError
        FMT-079 the pointer starts no region; FMT-080 the region's size is not
        ``element_size``; FMT-088 the region is another sample's. ``offset`` is
        the pointer's position in the file.
    """
    check_record_width(meta, member, 8)
    cdef const uint64_t[::1] owners = region_owners if region_owners is not None else region_ptrs
    cdef bint owned = region_owners is not None
    cdef Py_ssize_t n = meta.shape[0]
    cdef Py_ssize_t i, bad = -1
    cdef int64_t idx = 0
    cdef int err = 0
    cdef uint64_t ptr = 0
    with nogil:
        for i in range(n):
            ptr = load_u64(&meta[i, member])
            idx = find_region(region_ptrs, ptr)
            if idx < 0:
                err = 79
            elif region_sizes[idx] != element_size:
                err = 80
            elif foreign(owners, owned, idx, i):
                err = 88
            if err != 0:
                bad = i
                break
    if err == 0:
        return
    where = meta_offset + <uint64_t>bad * <uint64_t>meta.shape[1] + <uint64_t>member
    prefix = f"sample {bad}, field {field_name!r}"
    if err == 79:
        raise BetonFormatError(
            f"{prefix}: array pointer {ptr} is not the start of any allocation-table region",
            offset=where, clause="FMT-079")
    if err == 88:
        raise _foreign_error(prefix, ptr, owners[idx], where)
    raise BetonFormatError(
        f"{prefix}: the region at {ptr} holds {region_sizes[idx]} bytes, the array needs exactly "
        f"{element_size}", offset=where, clause="FMT-080")


def check_bytes_pointers(const uint8_t[:, ::1] meta, Py_ssize_t member,
                         const uint64_t[::1] region_ptrs, const uint64_t[::1] region_sizes,
                         uint64_t meta_offset, str field_name, region_owners=None):
    """Check every Bytes/JSON ``{ptr, size}`` record against the regions (FMT-033, FMT-035).

    A record with ``size == 0`` references no bytes and is accepted whatever its
    ``ptr``. Otherwise ``ptr`` must start a region of at least ``size`` bytes,
    the sample's own when ``region_owners`` is given (FMT-088).

    Parameters
    ----------
    meta : uint8 memoryview, shape (num_samples, itemsize)
    member : int, bytes
        Offset of this field's 16-byte record inside a metadata record.
    region_ptrs, region_sizes : ndarray[uint64], shape (m,)
    meta_offset : int, bytes
    field_name : str
    region_owners : ndarray[uint64], shape (m,), optional

    Raises
    ------
    BetonFormatError
        FMT-079 (offset of ``ptr``), FMT-080 (offset of ``size``) or FMT-088
        (offset of ``ptr``).
    """
    check_record_width(meta, member, BYTES_RECORD)
    cdef const uint64_t[::1] owners = region_owners if region_owners is not None else region_ptrs
    cdef bint owned = region_owners is not None
    cdef Py_ssize_t n = meta.shape[0]
    cdef Py_ssize_t i, bad = -1
    cdef int64_t idx = 0
    cdef int err = 0
    cdef uint64_t ptr = 0, size = 0
    with nogil:
        for i in range(n):
            size = load_u64(&meta[i, member + BYTES_SIZE])
            if size == 0:
                continue
            ptr = load_u64(&meta[i, member + BYTES_PTR])
            idx = find_region(region_ptrs, ptr)
            if idx < 0:
                err = 79
            elif region_sizes[idx] < size:
                err = 80
            elif foreign(owners, owned, idx, i):
                err = 88
            if err != 0:
                bad = i
                break
    if err == 0:
        return
    where = meta_offset + <uint64_t>bad * <uint64_t>meta.shape[1] + <uint64_t>member
    prefix = f"sample {bad}, field {field_name!r}"
    if err == 79:
        raise BetonFormatError(
            f"{prefix}: payload pointer {ptr} is not the start of any allocation-table region",
            offset=where + BYTES_PTR, clause="FMT-079")
    if err == 88:
        raise _foreign_error(prefix, ptr, owners[idx], where + BYTES_PTR)
    raise BetonFormatError(
        f"{prefix}: metadata says {size} bytes but the region at {ptr} holds only "
        f"{region_sizes[idx]}", offset=where + BYTES_SIZE, clause="FMT-080")


def check_rgb_records(const uint8_t[:, ::1] meta, Py_ssize_t member,
                      const uint64_t[::1] region_ptrs, const uint64_t[::1] region_sizes,
                      uint64_t meta_offset, str field_name, region_owners=None, int channels=3):
    """Check every image record (FMT-036, FMT-037; one-channel images FMT-083).

    ``mode`` must be 0 (JPEG), 1 (raw) or 2 (PNG); ``width`` and ``height`` must
    be positive; ``data_ptr`` must start a region, of exactly
    ``width*height*channels`` bytes for raw samples and of at least one byte
    otherwise, and the sample's own when ``region_owners`` is given (FMT-088).

    Parameters
    ----------
    meta : uint8 memoryview, shape (num_samples, itemsize)
    member : int, bytes
        Offset of this field's 13-byte record inside a metadata record.
    region_ptrs, region_sizes : ndarray[uint64], shape (m,)
    meta_offset : int, bytes
    field_name : str
    region_owners : ndarray[uint64], shape (m,), optional
    channels : int
        Bytes per raw pixel: 3 (RGBImageField) or 1 (GrayscaleImageField).

    Raises
    ------
    BetonFormatError
        FMT-081 bad mode; FMT-082 zero width or height; FMT-079 ``data_ptr``
        starts no region; FMT-080 region size wrong for the mode; FMT-088 the
        region is another sample's. ``offset`` is the offending member's
        position in the file.
    """
    check_record_width(meta, member, RGB_RECORD)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    cdef const uint64_t[::1] owners = region_owners if region_owners is not None else region_ptrs
    cdef bint owned = region_owners is not None
    cdef Py_ssize_t n = meta.shape[0]
    cdef Py_ssize_t i, bad = -1
    cdef int64_t idx = 0
    cdef int err = 0
    cdef uint8_t mode = 0
    cdef uint64_t width = 0, height = 0, ptr = 0, need = 0
    with nogil:
        for i in range(n):
            mode = meta[i, member + RGB_MODE]
            width = load_u16(&meta[i, member + RGB_WIDTH])
            height = load_u16(&meta[i, member + RGB_HEIGHT])
            ptr = load_u64(&meta[i, member + RGB_DATA_PTR])
            if mode > 2:
                err = 81
            elif width == 0 or height == 0:
                err = 82
            else:
                idx = find_region(region_ptrs, ptr)
                need = width * height * <uint64_t>channels if mode == 1 else 1
                if idx < 0:
                    err = 79
                elif mode == 1 and region_sizes[idx] != need:
                    err = 80
                elif mode != 1 and region_sizes[idx] == 0:
                    err = 80
                elif foreign(owners, owned, idx, i):
                    err = 88
            if err != 0:
                bad = i
                break
    if err == 0:
        return
    where = meta_offset + <uint64_t>bad * <uint64_t>meta.shape[1] + <uint64_t>member
    prefix = f"sample {bad}, field {field_name!r}"
    if err == 81:
        raise BetonFormatError(f"{prefix}: image mode {mode} is not 0 (jpg), 1 (raw) or 2 (png)",
                               offset=where + RGB_MODE, clause="FMT-081")
    if err == 82:
        raise BetonFormatError(f"{prefix}: image size {width}x{height} has a zero side",
                               offset=where + (RGB_WIDTH if width == 0 else RGB_HEIGHT),
                               clause="FMT-082")
    if err == 79:
        raise BetonFormatError(
            f"{prefix}: image data_ptr {ptr} is not the start of any allocation-table region",
            offset=where + RGB_DATA_PTR, clause="FMT-079")
    if err == 88:
        raise _foreign_error(prefix, ptr, owners[idx], where + RGB_DATA_PTR)
    if mode == 1:
        raise BetonFormatError(
            f"{prefix}: raw {width}x{height} image of {channels} channel(s) needs exactly {need} "
            f"bytes, the region at {ptr} holds {region_sizes[idx]}",
            offset=where + RGB_DATA_PTR, clause="FMT-080")
    raise BetonFormatError(
        f"{prefix}: encoded image (mode {mode}) at {ptr} has an empty region",
        offset=where + RGB_DATA_PTR, clause="FMT-080")
