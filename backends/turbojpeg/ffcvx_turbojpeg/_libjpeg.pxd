# What _libjpeg shares with the other modules of ffcvx-turbojpeg: the status
# codes of decode_region (spec/backends.md) and the decode itself, which
# _libjpeg_py (the Python entry points) calls without the GIL.
from libc.stdint cimport uint8_t, int64_t

# Status codes of decode_region (spec/backends.md).
cdef enum:
    DECODE_OK = 0
    DECODE_CORRUPT = -1
    DECODE_CAPACITY = -2
    DECODE_BAD_ARGUMENT = -3


cdef int _decode_region_impl(const uint8_t *src, int64_t src_len, bint whole,
                             int64_t crop_y, int64_t crop_x, int64_t crop_h, int64_t crop_w,
                             int64_t target_h, int64_t target_w,
                             uint8_t *out, int64_t out_capacity, int64_t *out_hw,
                             bint gray, char *msg, size_t msg_len) noexcept nogil
