# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The Python entry points of the region decoder: :func:`decode_region_into`, :func:`decode_region_py`.

They check and convert Python arguments, then run the same decode as
``decode_region`` (``ffcvx_turbojpeg._libjpeg``, whose docstring tells how
it crops and scales) without the GIL, and turn its status into an exception.
"""
from libc.stdint cimport uint8_t, int64_t

from ffcvx_turbojpeg._libjpeg cimport (DECODE_BAD_ARGUMENT, DECODE_CAPACITY, DECODE_CORRUPT,
                                       DECODE_OK, _decode_region_impl)


cdef enum:
    MSG_LEN = 256


def _status_error(int status, bytes message):
    """Exception for a non-zero status, carrying libjpeg's (or our) message."""
    from ffcvx.errors import DecodeError
    text = message.decode("utf-8", "replace") or "no message"
    if status == DECODE_CORRUPT:
        return DecodeError(f"JPEG decode failed: {text}")
    if status == DECODE_BAD_ARGUMENT:
        return ValueError(f"bad decode_region arguments: {text}")
    return DecodeError(f"decode_region failed with status {status}: {text}")


def _as_bytes_1d(buf):
    """A 1-D uint8 view of a bytes-like object or a C-contiguous ndarray."""
    import numpy
    if isinstance(buf, numpy.ndarray):
        if not buf.flags.c_contiguous:
            raise ValueError("array buffers must be C-contiguous")
        return buf.reshape(-1).view(numpy.uint8)
    return numpy.frombuffer(buf, dtype=numpy.uint8)


def decode_region_into(data, crop, target, out, gray=False):
    """Decode a region of a JPEG into a caller-provided buffer.

    Parameters
    ----------
    data : bytes-like (1-D, uint8)
        The complete JPEG file.
    crop : tuple of 4 int or None
        ``(y, x, h, w)`` in full-resolution pixels; None for the whole image.
    target : tuple of 2 int or None
        ``(target_h, target_w)`` minimum output size that sets the DCT
        scale; None (or zeros) for full scale.
    out : writable bytes-like (uint8), C-contiguous
        Destination; the first ``h * w * 3`` bytes receive packed RGB rows
        (``h * w`` bytes of one channel with ``gray``).
    gray : bool, optional
        Decode one channel, as ``decode_region_gray``.

    Returns
    -------
    status : int
        0, or -1 / -2 / -3 as in ``decode_region``.
    shape : tuple of 2 int
        ``(h, w)`` of the decoded region (0, 0 when the header was not read).
    message : str
        libjpeg's message (or the reason for -2/-3); empty on success.
    """
    cdef const uint8_t[::1] src = _as_bytes_1d(data)
    cdef uint8_t[::1] dst = _as_bytes_1d(out)
    cdef int64_t cy = 0, cx = 0, ch = 0, cw = 0, th = 0, tw = 0
    cdef bint whole = crop is None
    cdef bint one_channel = bool(gray)
    cdef int64_t hw[2]
    cdef char msg[MSG_LEN]
    cdef int status
    cdef const uint8_t *sp = NULL
    cdef uint8_t *dp = NULL
    cdef int64_t n_src = src.shape[0], n_dst = dst.shape[0]
    if not whole:
        cy, cx, ch, cw = crop
    if target is not None:
        th, tw = target
    if n_src > 0:
        sp = &src[0]
    if n_dst > 0:
        dp = &dst[0]
    hw[0] = 0
    hw[1] = 0
    msg[0] = 0
    with nogil:
        status = _decode_region_impl(sp, n_src, whole, cy, cx, ch, cw, th, tw,
                                     dp, n_dst, hw, one_channel, msg, MSG_LEN)
    return status, (hw[0], hw[1]), (<bytes>msg).decode("utf-8", "replace")


def decode_region_py(data, crop=None, target=None, gray=False):
    """Decode a region of a JPEG into a new array.

    Parameters
    ----------
    data : bytes-like or ndarray of uint8, shape (n,)
        The complete JPEG file.
    crop : tuple of 4 int, optional
        ``(y, x, h, w)``: rows ``y .. y+h`` and columns ``x .. x+w`` in
        full-resolution pixels. Default: the whole image.
    target : tuple of 2 int, optional
        ``(target_h, target_w)``: the decode runs at the smallest DCT scale
        k/8 (k in 1, 2, 4, 8) at which the crop is still at least this big.
        Default: full scale.
    gray : bool, optional
        Decode one channel, as ``decode_region_gray`` (BKD-026).

    Returns
    -------
    ndarray of uint8, shape (h, w, 3), or (h, w) with ``gray``
        Packed RGB (or gray) pixels of the region at the chosen scale.

    Raises
    ------
    ffcvx.errors.DecodeError
        The data is not a decodable JPEG (corrupt, truncated, CMYK); the
        message is libjpeg's own.
    ValueError
        The crop is not inside the image or has a non-positive size.
    """
    import numpy
    status, shape, message = decode_region_into(data, crop, target, bytearray(0), gray)
    if status == DECODE_CAPACITY:
        out = numpy.empty((shape[0], shape[1]) if gray else (shape[0], shape[1], 3),
                          dtype=numpy.uint8)
        status, shape2, message = decode_region_into(data, crop, target, out, gray)
        if status == DECODE_OK and shape2 != shape:
            raise RuntimeError("decode_region changed its output size between calls")
        if status == DECODE_OK:
            return out
    raise _status_error(status, message.encode("utf-8"))
