# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Antialiased RGB and one-channel resize kernels used by ffcvx's image decoders.

The kernels are C, in ``resize_kernels.c`` (weights, portable passes,
dispatch) and ``resize_kernels_avx2.c`` (the AVX2 passes); this module is
their binding. The filter is separable resampling with a triangle
(bilinear) filter whose support widens with the downscale factor, the same
family as Pillow's ``Image.resize(size, Image.BILINEAR)``: when shrinking
by a factor ``s`` each output pixel is a weighted mean of about ``2*s``
input pixels along each axis; when enlarging it is plain bilinear
interpolation. Pixels are processed in fixed point (14-bit coefficients,
32-bit accumulators), the vertical pass runs first (so the gather-heavy
horizontal pass only touches the ``dst_h`` output rows) and the
intermediate image is rounded to uint8, as Pillow does. On x86-64 CPUs
with AVX2 both passes run as ``vpmaddwd`` kernels (selected at run time,
about 5x faster); elsewhere portable loops run, with bit-identical results.

C functions are exported with ``cdef api`` for compiled (Numba) code; get
their addresses with ``numba.extending.get_cython_function_address(
"ffcvx._ext.resize", name)``::

    int ffcvx_resize_rgb(const uint8_t *src, int64_t src_h, int64_t src_w,
                         int64_t src_stride, uint8_t *dst, int64_t dst_h,
                         int64_t dst_w, uint8_t *scratch, int64_t scratch_len)
    int64_t ffcvx_resize_scratch_bytes(int64_t src_h, int64_t src_w,
                                       int64_t dst_h, int64_t dst_w)

``ffcvx_resize_rgb_mirror`` has the signature of ``ffcvx_resize_rgb``; the
one-channel (grayscale) kernels ``ffcvx_resize_gray``,
``ffcvx_resize_gray_mirror`` and ``ffcvx_resize_gray_scratch_bytes`` have
the signatures of their RGB counterparts, with one byte per pixel. A gray
resize gives exactly channel 0 of the RGB resize of the image repeated into
R, G and B (same weights, same rounding), at a third of the work.

None allocates memory, holds the GIL or keeps state between calls; all are
safe to call from many threads at once with distinct scratch buffers.
"""

from libc.stdint cimport uint8_t, int64_t


cdef extern from "resize_kernels.h" nogil:
    enum:
        FFCVX_RESIZE_OK
        FFCVX_RESIZE_SCRATCH_TOO_SMALL
        FFCVX_RESIZE_BAD_ARGUMENT
    int64_t ffcvx_rk_scratch_bytes(int64_t src_h, int64_t src_w, int64_t dst_h,
                                   int64_t dst_w, int channels) noexcept
    int ffcvx_rk_resize(const uint8_t *src, int64_t src_h, int64_t src_w,
                        int64_t src_stride, uint8_t *dst, int64_t dst_h, int64_t dst_w,
                        uint8_t *scratch, int64_t scratch_len, int channels,
                        int allow_simd, int mirror) noexcept


cdef api int64_t ffcvx_resize_scratch_bytes(int64_t src_h, int64_t src_w,
                                            int64_t dst_h, int64_t dst_w) noexcept nogil:
    """Bytes of scratch memory ``ffcvx_resize_rgb`` needs for these sizes.

    Returns -3 when a size is not in ``1 .. 2**24``. The figure includes 64
    bytes of slack, so any base address works (the kernel aligns it).
    """
    return ffcvx_rk_scratch_bytes(src_h, src_w, dst_h, dst_w, 3)


cdef api int64_t ffcvx_resize_gray_scratch_bytes(int64_t src_h, int64_t src_w,
                                                 int64_t dst_h, int64_t dst_w) noexcept nogil:
    """Bytes of scratch memory ``ffcvx_resize_gray`` needs for these sizes.

    As ``ffcvx_resize_scratch_bytes``, for one byte per pixel (its weight
    tables can make it larger than the RGB figure for small images). Returns
    -3 when a size is not in ``1 .. 2**24``.
    """
    return ffcvx_rk_scratch_bytes(src_h, src_w, dst_h, dst_w, 1)



cdef api int ffcvx_resize_rgb(const uint8_t *src, int64_t src_h, int64_t src_w,
                              int64_t src_stride, uint8_t *dst, int64_t dst_h,
                              int64_t dst_w, uint8_t *scratch,
                              int64_t scratch_len) noexcept nogil:
    """Resize a packed RGB image (``src_h x src_w``) to ``dst_h x dst_w``.

    ``src`` rows are ``src_stride`` bytes apart (``>= 3 * src_w``); ``dst``
    is written packed (``3 * dst_w`` bytes per row) and must not overlap
    ``src`` or ``scratch``. ``scratch`` must hold
    ``ffcvx_resize_scratch_bytes(src_h, src_w, dst_h, dst_w)`` bytes.
    Returns 0, -2 when ``scratch_len`` is too small (or ``scratch`` is
    NULL), -3 for a NULL ``src``/``dst``, a size outside ``1 .. 2**24`` or
    ``src_stride < 3 * src_w``. An axis whose size does not change is
    copied exactly. Uses AVX2 when the CPU has it; results are identical
    either way.
    """
    return ffcvx_rk_resize(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch,
                           scratch_len, 3, 1, 0)


cdef api int ffcvx_resize_rgb_mirror(const uint8_t *src, int64_t src_h, int64_t src_w,
                                     int64_t src_stride, uint8_t *dst, int64_t dst_h,
                                     int64_t dst_w, uint8_t *scratch,
                                     int64_t scratch_len) noexcept nogil:
    """As ``ffcvx_resize_rgb``, writing the left-right mirror of the result.

    Costs the same as the plain resize: the horizontal pass reads its weights
    in reverse output order. Lets a crop decoder apply a random horizontal
    flip for free.
    """
    return ffcvx_rk_resize(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch,
                           scratch_len, 3, 1, 1)


cdef api int ffcvx_resize_gray(const uint8_t *src, int64_t src_h, int64_t src_w,
                               int64_t src_stride, uint8_t *dst, int64_t dst_h,
                               int64_t dst_w, uint8_t *scratch,
                               int64_t scratch_len) noexcept nogil:
    """Resize a one-channel image (``src_h x src_w`` bytes) to ``dst_h x dst_w``.

    The one-channel form of ``ffcvx_resize_rgb``: the result is exactly
    channel 0 of ``ffcvx_resize_rgb`` run on the image repeated into R, G
    and B (same weights and rounding), with a third of the work.

    ``src`` rows are ``src_stride`` bytes apart (``>= src_w``); ``dst`` is
    written packed (``dst_w`` bytes per row, ``dst_h`` rows) and must not
    overlap ``src`` or ``scratch``. ``scratch`` must hold
    ``ffcvx_resize_gray_scratch_bytes(src_h, src_w, dst_h, dst_w)`` bytes
    (any alignment). Returns 0; -2 when ``scratch_len`` is too small (or
    ``scratch`` is NULL); -3 for a NULL ``src``/``dst``, a size outside
    ``1 .. 2**24`` or ``src_stride < src_w``. Uses AVX2 when the CPU has
    it; results are identical either way.
    """
    return ffcvx_rk_resize(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch,
                           scratch_len, 1, 1, 0)


cdef api int ffcvx_resize_gray_mirror(const uint8_t *src, int64_t src_h, int64_t src_w,
                                      int64_t src_stride, uint8_t *dst, int64_t dst_h,
                                      int64_t dst_w, uint8_t *scratch,
                                      int64_t scratch_len) noexcept nogil:
    """As ``ffcvx_resize_gray``, writing the left-right mirror of the result (free)."""
    return ffcvx_rk_resize(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch,
                           scratch_len, 1, 1, 1)


def resize_scratch_bytes(int64_t src_h, int64_t src_w, int64_t dst_h, int64_t dst_w,
                         int channels=3):
    """Scratch size for :func:`resize_rgb` / ``ffcvx_resize_rgb`` (or the gray kernel).

    Parameters
    ----------
    src_h, src_w : int
        Input height and width in pixels.
    dst_h, dst_w : int
        Output height and width in pixels.
    channels : {3, 1}, optional
        3: ``ffcvx_resize_scratch_bytes`` (RGB); 1:
        ``ffcvx_resize_gray_scratch_bytes`` (:func:`resize_gray`).

    Returns
    -------
    int
        Bytes of scratch memory (any alignment).

    Raises
    ------
    ValueError
        If a size is not in ``1 .. 2**24``, or ``channels`` is not 1 or 3.
    """
    cdef int64_t n
    if channels == 3:
        n = ffcvx_resize_scratch_bytes(src_h, src_w, dst_h, dst_w)
    elif channels == 1:
        n = ffcvx_resize_gray_scratch_bytes(src_h, src_w, dst_h, dst_w)
    else:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if n < 0:
        raise ValueError(f"bad resize sizes {src_h}x{src_w} -> {dst_h}x{dst_w}")
    return n


cdef _run_resize(const uint8_t *src, int64_t h, int64_t w, int64_t stride, uint8_t *dst,
                 int64_t H, int64_t W, scratch, bint allow_simd, bint do_mirror, int channels):
    # The part of resize_rgb / resize_gray after their shape checks: scratch,
    # the kernel call without the GIL, and its status as a ValueError.
    cdef uint8_t[::1] tv
    cdef uint8_t *scratch_ptr
    cdef int64_t scratch_len
    cdef int rc
    cdef int64_t need = ffcvx_rk_scratch_bytes(h, w, H, W, channels)
    if need < 0:
        raise ValueError(f"bad resize sizes {h}x{w} -> {H}x{W}")
    if scratch is None:
        import numpy
        scratch = numpy.empty(need, dtype=numpy.uint8)
    tv = scratch
    scratch_len = tv.shape[0]
    scratch_ptr = &tv[0] if scratch_len > 0 else NULL
    with nogil:
        rc = ffcvx_rk_resize(src, h, w, stride, dst, H, W, scratch_ptr, scratch_len,
                             channels, allow_simd, do_mirror)
    if rc == FFCVX_RESIZE_SCRATCH_TOO_SMALL:
        raise ValueError(f"scratch has {scratch_len} bytes, resize needs {need}")
    if rc != FFCVX_RESIZE_OK:
        name = 'ffcvx_resize_rgb' if channels == 3 else 'ffcvx_resize_gray'
        raise ValueError(f"{name} rejected {h}x{w} -> {H}x{W} (status {rc})")


def resize_rgb(src, dst, scratch=None, simd=True, mirror=False):
    """Resize an RGB image into ``dst`` (antialiased bilinear, fixed point).

    Parameters
    ----------
    src : ndarray of uint8, shape (h, w, 3)
        Input image. Rows may be strided (e.g. a crop view), but each row's
        pixels must be packed: strides ``(any >= 3*w, 3, 1)``.
    dst : ndarray of uint8, shape (H, W, 3), C-contiguous
        Output; its shape sets the output size. Must not overlap ``src``.
    scratch : ndarray of uint8, shape (n,), optional
        Working memory of at least ``resize_scratch_bytes(h, w, H, W)``
        bytes; allocated per call when omitted.
    simd : bool, optional
        False forces the portable loops (for tests: the AVX2 kernels must
        give identical pixels).
    mirror : bool, optional
        Write the left-right mirror of the resized image.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        ``dst``.

    Raises
    ------
    ValueError
        If a shape is not (., ., 3), a size is 0 or above 2**24, the pixel
        rows of ``src`` are not packed, or ``scratch`` is too small.
    """
    cdef const uint8_t[:, :, :] sv = src
    cdef uint8_t[:, :, ::1] dv = dst
    cdef int64_t w = sv.shape[1]
    if sv.shape[2] != 3 or dv.shape[2] != 3:
        raise ValueError("src and dst must have 3 channels (shape (h, w, 3))")
    if sv.strides[2] != 1 or sv.strides[1] != 3 or sv.strides[0] < 3 * w:
        raise ValueError("src pixel rows must be packed RGB: strides (>= 3*w, 3, 1)")
    _run_resize(&sv[0, 0, 0], sv.shape[0], w, sv.strides[0], &dv[0, 0, 0], dv.shape[0], dv.shape[1],
                scratch, bool(simd), bool(mirror), 3)
    return dst


def resize_gray(src, dst, scratch=None, simd=True, mirror=False):
    """Resize a one-channel image into ``dst`` (``ffcvx_resize_gray``).

    Gives exactly channel 0 of :func:`resize_rgb` on the image repeated into
    three channels.

    Parameters
    ----------
    src : ndarray of uint8, shape (h, w)
        Input image. Rows may be strided (e.g. a crop view), but each row's
        pixels must be packed: strides ``(any >= w, 1)``.
    dst : ndarray of uint8, shape (H, W), C-contiguous
        Output; its shape sets the output size. Must not overlap ``src``.
    scratch : ndarray of uint8, shape (n,), optional
        Working memory of at least ``resize_scratch_bytes(h, w, H, W,
        channels=1)`` bytes; allocated per call when omitted.
    simd : bool, optional
        False forces the portable loops (for tests).
    mirror : bool, optional
        Write the left-right mirror of the resized image.

    Returns
    -------
    ndarray of uint8, shape (H, W)
        ``dst``.

    Raises
    ------
    ValueError
        If a size is 0 or above 2**24, the pixel rows of ``src`` are not
        packed, or ``scratch`` is too small.
    """
    cdef const uint8_t[:, :] sv = src
    cdef uint8_t[:, ::1] dv = dst
    cdef int64_t w = sv.shape[1]
    if sv.strides[1] != 1 or sv.strides[0] < w:
        raise ValueError("src pixel rows must be packed: strides (>= w, 1)")
    _run_resize(&sv[0, 0], sv.shape[0], w, sv.strides[0], &dv[0, 0], dv.shape[0], dv.shape[1],
                scratch, bool(simd), bool(mirror), 1)
    return dst
