# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Region decoding of JPEG images with the libjpeg API of libjpeg-turbo.

``decode_region`` (a ``cdef api`` function, for compiled callers) decodes
only a rectangle of a JPEG, at the smallest DCT scale ``k/8`` (k in 1, 2, 4,
8) at which the rectangle is still at least the requested target size:

- rows above the rectangle are skipped with ``jpeg_skip_scanlines`` (entropy
  decoded, not inverse-DCT'd nor colour converted), rows below it are never
  read (the decompressor is destroyed instead);
- columns are limited with ``jpeg_crop_scanline``, which widens the range to
  iMCU boundaries; only the requested columns are copied out;
- ``dct_method = JDCT_IFAST`` with libjpeg's default fancy upsampling, so a
  full-scale decode is bit-identical to ``tjDecompress2(..., TJPF_RGB,
  TJFLAG_FASTDCT)`` (what FFCV 1.0 produces);
- output is packed RGB; grayscale JPEGs are expanded to RGB, CMYK/YCCK JPEGs
  are refused with status -1.

``decode_region_gray`` (BKD-025, BKD-026) is the same decode with libjpeg's
``out_color_space = JCS_GRAYSCALE``: one byte per pixel. For a one-component
JPEG libjpeg then copies the decoded component where the RGB decode repeats
it three times, so the output is exactly channel 0 of ``decode_region``'s;
for a colour JPEG it is libjpeg's luma (Y).

The Python entry points (``decode_region_into``, ``decode_region_py``) are in
``_libjpeg_py``, which cimports the decode declared in ``_libjpeg.pxd``.

Coordinate mapping at scale ``k/8`` (documented rounding)
---------------------------------------------------------
libjpeg's scaled image is ``ceil(H*k/8) x ceil(W*k/8)``. A full-resolution
range ``[a, a + n)`` maps to the scaled range ``[round(a*k/8),
round((a + n)*k/8))`` with halves rounded up, i.e. ``(2*a*k + 8) // 16``.
Because ``k`` is only chosen when ``n*k/8 >= target``, the scaled range is
never shorter than the target. At ``k = 8`` the mapping is the identity.

Edge exactness
--------------
Fancy (triangle) chroma upsampling reads one chroma sample on each side of
an output pixel. When the crop does not start or end at the image edge, the
decoder asks libjpeg for one extra scaled pixel on each side horizontally
(free in practice: libjpeg rounds the start down to the iMCU anyway), so the
copied columns see the same chroma neighbours as in a full decode.
"""

from libc.stdint cimport uint8_t, int64_t
from libc.string cimport memcpy, memset
from libc.stdio cimport snprintf


from ffcvx_turbojpeg._jpeglib cimport *


# libjpeg's JDIMENSION is 32-bit and its images at most 65500 pixels a side.
cdef enum:
    MAX_SIDE = 65500


cdef inline int64_t _scaled(int64_t full, int64_t k) noexcept nogil:
    """Position ``full`` (full-resolution pixels) at scale k/8, rounded half up."""
    return (2 * full * k + 8) // 16


cdef inline int64_t _choose_k(int64_t crop_h, int64_t crop_w,
                              int64_t target_h, int64_t target_w) noexcept nogil:
    """Smallest k in (1, 2, 4, 8) with crop*k/8 >= target on both axes."""
    cdef int64_t k = 1
    if target_h <= 0 or target_w <= 0:
        return 8
    while k < 8:
        if crop_h * k >= 8 * target_h and crop_w * k >= 8 * target_w:
            return k
        k *= 2
    return 8


cdef int _decode_body(jpeg_decompress_struct *cinfo,
                      const uint8_t *src, int64_t src_len, bint whole,
                      int64_t crop_y, int64_t crop_x, int64_t crop_h, int64_t crop_w,
                      int64_t target_h, int64_t target_w,
                      uint8_t *out, int64_t out_capacity, int64_t *out_hw,
                      bint gray, char *msg, size_t msg_len) noexcept nogil:
    """The decode; ``gray``: one byte per pixel (JCS_GRAYSCALE), else RGB."""
    cdef int64_t channels = 1 if gray else 3
    cdef int64_t img_h, img_w, k, y0, y1, x0, x1, out_h, out_w, sw, sh
    cdef int64_t ctx0, ctx1, dx, row_bytes, r
    cdef JDIMENSION xoff, width, got
    cdef JSAMPARRAY rowbuf
    cdef JSAMPROW direct[1]
    cdef JSAMPROW bounce[1]
    cdef uint8_t *dest
    cdef bint direct_ok

    if ffcvx_jpeg_read_header(cinfo, src, <unsigned long>src_len) != 0:
        return DECODE_CORRUPT
    img_h = cinfo.image_height
    img_w = cinfo.image_width
    if whole:
        crop_y = 0
        crop_x = 0
        crop_h = img_h
        crop_w = img_w
    if crop_y + crop_h > img_h or crop_x + crop_w > img_w:
        if msg != NULL:
            snprintf(msg, msg_len,
                     "crop (y=%lld, x=%lld, h=%lld, w=%lld) is not inside the %lldx%lld image",
                     <long long>crop_y, <long long>crop_x, <long long>crop_h,
                     <long long>crop_w, <long long>img_h, <long long>img_w)
        return DECODE_BAD_ARGUMENT
    if cinfo.jpeg_color_space == JCS_CMYK or cinfo.jpeg_color_space == JCS_YCCK:
        if msg != NULL:
            snprintf(msg, msg_len, "CMYK/YCCK JPEGs are not supported (convert to RGB first)")
        return DECODE_CORRUPT

    k = _choose_k(crop_h, crop_w, target_h, target_w)
    cinfo.scale_num = <unsigned int>k
    cinfo.scale_denom = 8
    cinfo.out_color_space = JCS_GRAYSCALE if gray else JCS_RGB
    cinfo.dct_method = JDCT_IFAST
    cinfo.do_fancy_upsampling = 1
    if ffcvx_jpeg_calc_dimensions(cinfo) != 0:
        return DECODE_CORRUPT
    sh = cinfo.output_height
    sw = cinfo.output_width

    if k == 8:
        y0 = crop_y
        y1 = crop_y + crop_h
        x0 = crop_x
        x1 = crop_x + crop_w
    else:
        y0 = _scaled(crop_y, k)
        y1 = _scaled(crop_y + crop_h, k)
        x0 = _scaled(crop_x, k)
        x1 = _scaled(crop_x + crop_w, k)
    # guards; with k chosen as above these never trigger
    if y1 > sh:
        y1 = sh
    if x1 > sw:
        x1 = sw
    if y1 <= y0:
        y0 = y1 - 1
    if x1 <= x0:
        x0 = x1 - 1
    out_h = y1 - y0
    out_w = x1 - x0
    out_hw[0] = out_h
    out_hw[1] = out_w
    if out_h * out_w * channels > out_capacity or out == NULL:
        if msg != NULL:
            snprintf(msg, msg_len, "output needs %lld bytes (%lldx%lldx%lld), capacity is %lld",
                     <long long>(out_h * out_w * channels), <long long>out_h,
                     <long long>out_w, <long long>channels, <long long>out_capacity)
        return DECODE_CAPACITY

    if ffcvx_jpeg_start(cinfo) != 0:
        return DECODE_CORRUPT
    if cinfo.output_components != channels or cinfo.output_width != sw or cinfo.output_height != sh:
        if msg != NULL:
            snprintf(msg, msg_len, "libjpeg produced an unexpected output geometry")
        return DECODE_CORRUPT

    # horizontal range, with one context pixel on each side
    ctx0 = x0 - 1 if x0 > 0 else 0
    ctx1 = x1 + 1 if x1 < sw else sw
    xoff = <JDIMENSION>ctx0
    width = <JDIMENSION>(ctx1 - ctx0)
    if ctx0 > 0 or ctx1 < sw:
        if ffcvx_jpeg_crop(cinfo, &xoff, &width) != 0:
            return DECODE_CORRUPT
    else:
        xoff = 0
        width = <JDIMENSION>sw
    dx = x0 - <int64_t>xoff
    if dx < 0 or dx + out_w > <int64_t>width:
        if msg != NULL:
            snprintf(msg, msg_len, "libjpeg cropped to an unexpected column range")
        return DECODE_CORRUPT

    if y0 > 0:
        if ffcvx_jpeg_skip(cinfo, <JDIMENSION>y0) != 0:
            return DECODE_CORRUPT

    # libjpeg-turbo's SIMD colour converters write 16-byte-aligned rows with
    # non-temporal stores, which bypass the cache: the pixels would then have
    # to come back from DRAM for the copy / resize that follows (measured:
    # +40% decode time). So rows are never handed to libjpeg 16-byte aligned:
    # the bounce row starts 1 byte past an aligned address, and a row of
    # ``out`` is only decoded in place when its address is not aligned.
    row_bytes = out_w * channels
    direct_ok = dx == 0 and <int64_t>width == out_w
    if ffcvx_jpeg_alloc_rows(cinfo, <JDIMENSION>(width * channels + 32), 1, &rowbuf) != 0:
        return DECODE_CORRUPT
    bounce[0] = rowbuf[0] + 1
    r = 0
    while r < out_h:
        dest = out + r * row_bytes
        if direct_ok and (<size_t>dest) % 16 != 0:
            direct[0] = dest
            if ffcvx_jpeg_read(cinfo, direct, 1, &got) != 0:
                return DECODE_CORRUPT
        else:
            if ffcvx_jpeg_read(cinfo, bounce, 1, &got) != 0:
                return DECODE_CORRUPT
            if got == 1:
                memcpy(dest, bounce[0] + dx * channels, <size_t>row_bytes)
        if got != 1:
            if msg != NULL:
                snprintf(msg, msg_len, "libjpeg returned no scanline at row %lld",
                         <long long>(y0 + r))
            return DECODE_CORRUPT
        r += 1
    return DECODE_OK


cdef int _decode_region_impl(const uint8_t *src, int64_t src_len, bint whole,
                             int64_t crop_y, int64_t crop_x, int64_t crop_h, int64_t crop_w,
                             int64_t target_h, int64_t target_w,
                             uint8_t *out, int64_t out_capacity, int64_t *out_hw,
                             bint gray, char *msg, size_t msg_len) noexcept nogil:
    """Argument checks, then one decompressor on the stack for one decode.

    Shared by ``decode_region`` (RGB) and ``decode_region_gray`` (``gray``).
    """
    cdef jpeg_decompress_struct cinfo
    cdef ffcvx_jpeg_error_mgr jerr
    cdef int status
    if msg != NULL and msg_len > 0:
        msg[0] = 0
    if out_hw == NULL:
        return DECODE_BAD_ARGUMENT
    out_hw[0] = 0
    out_hw[1] = 0
    if src == NULL or src_len <= 0 or out_capacity < 0:
        if msg != NULL:
            snprintf(msg, msg_len, "bad source buffer or capacity")
        return DECODE_BAD_ARGUMENT
    if not whole and (crop_y < 0 or crop_x < 0 or crop_h <= 0 or crop_w <= 0
                      or crop_h > MAX_SIDE or crop_w > MAX_SIDE
                      or crop_y > MAX_SIDE or crop_x > MAX_SIDE):
        if msg != NULL:
            snprintf(msg, msg_len, "bad crop (y=%lld, x=%lld, h=%lld, w=%lld)",
                     <long long>crop_y, <long long>crop_x, <long long>crop_h,
                     <long long>crop_w)
        return DECODE_BAD_ARGUMENT
    if target_h > MAX_SIDE or target_w > MAX_SIDE:
        if msg != NULL:
            snprintf(msg, msg_len, "bad target size %lldx%lld",
                     <long long>target_h, <long long>target_w)
        return DECODE_BAD_ARGUMENT

    memset(&cinfo, 0, sizeof(cinfo))
    ffcvx_jpeg_error_init(&jerr, msg, msg_len)
    if ffcvx_jpeg_create(&cinfo, &jerr) != 0:
        ffcvx_jpeg_destroy(&cinfo)
        return DECODE_CORRUPT
    status = _decode_body(&cinfo, src, src_len, whole, crop_y, crop_x, crop_h, crop_w,
                          target_h, target_w, out, out_capacity, out_hw, gray, msg, msg_len)
    # destroy releases every pool; rows below the crop are never decoded
    if ffcvx_jpeg_destroy(&cinfo) != 0 and status == DECODE_OK:
        status = DECODE_CORRUPT
    return status


cdef api int decode_region(const uint8_t *src, int64_t src_len,
                           int64_t crop_y, int64_t crop_x, int64_t crop_h, int64_t crop_w,
                           int64_t target_h, int64_t target_w,
                           uint8_t *out, int64_t out_capacity,
                           int64_t *out_hw) noexcept nogil:
    """Decode a rectangle of a JPEG into packed RGB (the backend contract).

    Rows ``crop_y .. crop_y + crop_h`` and columns ``crop_x .. crop_x +
    crop_w`` (full-resolution pixels) are decoded at the smallest scale k/8
    (k in 1, 2, 4, 8) at which the crop is at least ``target_h x target_w``
    (a target <= 0 means full scale) into ``out`` (``out_hw[0]`` rows of
    ``3 * out_hw[1]`` bytes). ``out_hw`` is filled whenever the header could
    be read, also on status -2, so a caller can size a buffer.

    Returns 0; -1 corrupt or unsupported data (including CMYK); -2
    ``out_capacity`` too small (or ``out`` NULL); -3 bad arguments (NULL
    pointers, non-positive sizes, crop not inside the image).
    Thread-safe: all state lives on the caller's stack for one call.
    """
    return _decode_region_impl(src, src_len, False, crop_y, crop_x, crop_h, crop_w,
                               target_h, target_w, out, out_capacity, out_hw, False, NULL, 0)


cdef api int decode_region_gray(const uint8_t *src, int64_t src_len,
                                int64_t crop_y, int64_t crop_x, int64_t crop_h, int64_t crop_w,
                                int64_t target_h, int64_t target_w,
                                uint8_t *out, int64_t out_capacity,
                                int64_t *out_hw) noexcept nogil:
    """``decode_region`` with one byte per pixel (BKD-025, BKD-026).

    Same arguments, scale rule, checks and status codes as
    ``decode_region``; writes ``out_hw[0]`` rows of ``out_hw[1]`` bytes
    (libjpeg's ``JCS_GRAYSCALE`` output), so status -2 means
    ``out_capacity < h * w``. For a one-component JPEG the pixels are
    exactly channel 0 of ``decode_region``'s output; for a colour JPEG,
    libjpeg's luma. Thread-safe like ``decode_region``.
    """
    return _decode_region_impl(src, src_len, False, crop_y, crop_x, crop_h, crop_w,
                               target_h, target_w, out, out_capacity, out_hw, True, NULL, 0)
