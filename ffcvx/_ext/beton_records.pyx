# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Native core of the ``.beton`` reader: the metadata pointer checks (FMT-079 to FMT-082, FMT-088).

Each function walks one field's column of the metadata table (``uint8[num_samples,
itemsize]``, FMT-031) in C and checks every record's pointer against the
allocation table's regions (as :func:`ffcvx._ext.beton.check_alloc_table`
returns them). Numbers are assembled little-endian by hand (FMT-001). On a
violation a :class:`ffcvx.errors.BetonFormatError` names the record, the
absolute byte ``offset`` of the offending value and the reader ``clause``.
Importable from :mod:`ffcvx._ext.beton` as before.
"""
from libc.stdint cimport UINT64_MAX, int64_t, uint8_t, uint16_t, uint64_t

from ffcvx.errors import BetonFormatError

from ffcvx._ext.beton_loads cimport find_region, load_u16, load_u64

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


cdef inline void check_record_width(const uint8_t[:, ::1] meta, Py_ssize_t member, Py_ssize_t width) except *:
    if member < 0 or member + width > meta.shape[1]:
        raise ValueError(f"member at {member} of {width} bytes does not fit a {meta.shape[1]}-byte record")


cdef inline bint foreign(const uint64_t[::1] owners, bint owned, int64_t idx, Py_ssize_t sample) noexcept nogil:
    """True when the region at ``idx`` belongs to a sample other than ``sample`` (FMT-088)."""
    return owned and owners[idx] != <uint64_t>sample


cdef inline int pointer_error(const uint64_t[::1] region_ptrs, const uint64_t[::1] region_sizes,
                              const uint64_t[::1] owners, bint owned, uint64_t ptr, uint64_t low,
                              uint64_t high, Py_ssize_t sample, int64_t *idx) noexcept nogil:
    """0 when ``ptr`` starts a region of ``low`` to ``high`` bytes that is ``sample``'s own.

    Else the clause it breaks: 79 no region starts at ``ptr``, 80 the region's
    size is out of range, 88 the region is another sample's. ``idx[0]`` is
    set to the region's index (-1 when none).
    """
    idx[0] = find_region(region_ptrs, ptr)
    if idx[0] < 0:
        return 79
    if region_sizes[idx[0]] < low or region_sizes[idx[0]] > high:
        return 80
    if foreign(owners, owned, idx[0], sample):
        return 88
    return 0


def _region_error(int err, prefix, what, ptr, owners, int64_t idx, where):
    """The FMT-079 or FMT-088 error of pointer ``ptr`` at file offset ``where``; None for others.

    ``what`` names the pointer (``'array pointer'``); ``owners[idx]`` is read
    only for FMT-088, when ``idx`` is a region's index.
    """
    if err == 79:
        return BetonFormatError(
            f"{prefix}: {what} {ptr} is not the start of any allocation-table region",
            offset=where, clause="FMT-079")
    if err == 88:
        return _foreign_error(prefix, ptr, owners[idx], where)
    return None


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
            err = pointer_error(region_ptrs, region_sizes, owners, owned, ptr, element_size,
                                element_size, i, &idx)
            if err != 0:
                bad = i
                break
    if err == 0:
        return
    where = meta_offset + <uint64_t>bad * <uint64_t>meta.shape[1] + <uint64_t>member
    prefix = f"sample {bad}, field {field_name!r}"
    failure = _region_error(err, prefix, "array pointer", ptr, owners, idx, where)
    if failure is not None:
        raise failure
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
            err = pointer_error(region_ptrs, region_sizes, owners, owned, ptr, size, UINT64_MAX,
                                i, &idx)
            if err != 0:
                bad = i
                break
    if err == 0:
        return
    where = meta_offset + <uint64_t>bad * <uint64_t>meta.shape[1] + <uint64_t>member
    prefix = f"sample {bad}, field {field_name!r}"
    failure = _region_error(err, prefix, "payload pointer", ptr, owners, idx, where + BYTES_PTR)
    if failure is not None:
        raise failure
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
                # raw: exactly the pixels; encoded: at least one byte
                need = width * height * <uint64_t>channels if mode == 1 else 1
                err = pointer_error(region_ptrs, region_sizes, owners, owned, ptr, need,
                                    need if mode == 1 else UINT64_MAX, i, &idx)
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
    failure = _region_error(err, prefix, "image data_ptr", ptr, owners, idx, where + RGB_DATA_PTR)
    if failure is not None:
        raise failure
    if mode == 1:
        raise BetonFormatError(
            f"{prefix}: raw {width}x{height} image of {channels} channel(s) needs exactly {need} "
            f"bytes, the region at {ptr} holds {region_sizes[idx]}",
            offset=where + RGB_DATA_PTR, clause="FMT-080")
    raise BetonFormatError(
        f"{prefix}: encoded image (mode {mode}) at {ptr} has an empty region",
        offset=where + RGB_DATA_PTR, clause="FMT-080")
