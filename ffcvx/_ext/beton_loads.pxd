# Little-endian loads and the region lookup that the .beton native core's
# modules (beton.pyx, beton_records.pyx) share: inline, so each module that
# cimports them compiles its own copy, with no call between extension modules.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint64_t


cdef inline uint64_t load_u64(const uint8_t* p) noexcept nogil:
    return (<uint64_t>p[0] | (<uint64_t>p[1] << 8) | (<uint64_t>p[2] << 16)
            | (<uint64_t>p[3] << 24) | (<uint64_t>p[4] << 32) | (<uint64_t>p[5] << 40)
            | (<uint64_t>p[6] << 48) | (<uint64_t>p[7] << 56))


cdef inline uint16_t load_u16(const uint8_t* p) noexcept nogil:
    return <uint16_t>(p[0] | (p[1] << 8))


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
