# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The dataset writer's JPEG encoder, in compiled code without the GIL.

``encode_jpeg`` writes a baseline JFIF (4:2:0 for RGB, one component for
gray, ``JDCT_ISLOW``, standard tables scaled by ``jpeg_set_quality`` with
``force_baseline``) into memory: byte for byte what Pillow's
``save(format='JPEG', quality=q)`` writes, which every decoder backend
reads (FMT-036). Every libjpeg call goes through a setjmp wrapper of
``_errors.h``, so a libjpeg error is a ``ValueError``, never an exit.
The decoding half of the writer's codec is ``_libjpeg_write``.
"""

from libc.stdint cimport uint8_t, int64_t
from libc.stdlib cimport free
from libc.stdio cimport snprintf
from libc.string cimport memset

from ffcvx_turbojpeg._jpeglib cimport *


# Status codes of ffcvx_encode_jpeg.
cdef enum:
    ENCODE_OK = 0
    ENCODE_ERROR = -1          # libjpeg error
    ENCODE_BAD_ARGUMENT = -3

cdef enum:
    MSG_LEN = 256
    MAX_SIDE = 65500           # libjpeg's JPEG_MAX_DIMENSION


cdef enum:
    ENCODE_ROWS = 16           # rows handed to jpeg_write_scanlines per call


cdef int _encode_body(jpeg_compress_struct *cinfo, const uint8_t *pixels,
                      int64_t height, int64_t width, int channels, int quality,
                      unsigned char **outbuffer, unsigned long *outsize,
                      char *msg, size_t msg_len) noexcept nogil:
    """Parameters, then the rows; the JFIF ends up in ``*outbuffer``."""
    cdef JSAMPROW rows[ENCODE_ROWS]
    cdef JDIMENSION written, n, i
    cdef int64_t row_bytes = width * channels
    if ffcvx_jpeg_mem_dest(cinfo, outbuffer, outsize) != 0:
        return ENCODE_ERROR
    cinfo.image_width = <JDIMENSION>width
    cinfo.image_height = <JDIMENSION>height
    cinfo.input_components = channels
    cinfo.in_color_space = JCS_RGB if channels == 3 else JCS_GRAYSCALE
    # jpeg_set_defaults picks YCbCr with 2x2 luma sampling (4:2:0) for RGB
    # input, one component for gray, JFIF APP0, Huffman tables of the
    # standard: what Pillow's save(quality=q) writes. force_baseline keeps
    # every quantiser <= 255, i.e. an 8-bit-table SOF0 every decoder reads.
    if ffcvx_jpeg_set_defaults_quality(cinfo, quality, 1) != 0:
        return ENCODE_ERROR
    cinfo.dct_method = JDCT_ISLOW
    cinfo.optimize_coding = 0
    if ffcvx_jpeg_start_compress(cinfo) != 0:
        return ENCODE_ERROR
    while cinfo.next_scanline < cinfo.image_height:
        n = cinfo.image_height - cinfo.next_scanline
        if n > ENCODE_ROWS:
            n = ENCODE_ROWS
        for i in range(n):
            # libjpeg's API takes non-const rows but only reads them
            rows[i] = <JSAMPROW>(pixels + (cinfo.next_scanline + i) * row_bytes)
        if ffcvx_jpeg_write(cinfo, rows, n, &written) != 0:
            return ENCODE_ERROR
        if written == 0:
            snprintf(msg, msg_len, "libjpeg took no scanline at row %u", cinfo.next_scanline)
            return ENCODE_ERROR
    if ffcvx_jpeg_finish_compress(cinfo) != 0:
        return ENCODE_ERROR
    return ENCODE_OK


cdef api int ffcvx_encode_jpeg(const uint8_t *pixels, int64_t height, int64_t width,
                               int channels, int quality,
                               unsigned char **out, unsigned long *out_len,
                               char *msg, size_t msg_len) noexcept nogil:
    """Encode packed pixels (``channels`` 3: RGB, 1: gray) as a baseline JFIF.

    On 0, ``*out`` holds ``*out_len`` bytes that the caller must ``free()``;
    on any other status ``*out`` is NULL. Returns 0, -1 libjpeg error, -3 bad
    arguments (sizes outside 1..65500, channels not 1 or 3, quality outside
    1..100). Thread-safe: all state lives on the stack for one call.
    """
    cdef jpeg_compress_struct cinfo
    cdef ffcvx_jpeg_error_mgr jerr
    cdef char fallback[2]
    cdef int status
    cdef unsigned char *buffer = NULL
    cdef unsigned long size = 0
    if msg == NULL or msg_len == 0:
        msg = fallback
        msg_len = sizeof(fallback)
    msg[0] = 0
    if out == NULL or out_len == NULL:
        return ENCODE_BAD_ARGUMENT
    out[0] = NULL
    out_len[0] = 0
    if pixels == NULL or height < 1 or width < 1 or height > MAX_SIDE or width > MAX_SIDE \
            or (channels != 1 and channels != 3) or quality < 1 or quality > 100:
        snprintf(msg, msg_len, "bad arguments (%lldx%lld pixels, %d channels, quality %d)",
                 <long long>width, <long long>height, channels, quality)
        return ENCODE_BAD_ARGUMENT
    memset(&cinfo, 0, sizeof(cinfo))
    ffcvx_jpeg_error_init(&jerr, msg, msg_len)
    if ffcvx_jpeg_create_compress(&cinfo, &jerr) != 0:
        ffcvx_jpeg_destroy_compress(&cinfo)
        return ENCODE_ERROR
    status = _encode_body(&cinfo, pixels, height, width, channels, quality,
                          &buffer, &size, msg, msg_len)
    if ffcvx_jpeg_destroy_compress(&cinfo) != 0 and status == ENCODE_OK:
        status = ENCODE_ERROR
    if status == ENCODE_OK:
        out[0] = buffer
        out_len[0] = size
    else:
        # libjpeg's memory destination mallocs the buffer; nobody else frees it
        free(buffer)
    return status


def _pixels_2d(pixels):
    """``(pixels as C-contiguous uint8, rows, width, channels)``; ValueError for other layouts."""
    import numpy
    array = numpy.asarray(pixels)
    if array.dtype != numpy.uint8:
        raise ValueError(f"pixels must be uint8, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] in (1, 3):
        channels = array.shape[2]
    elif array.ndim == 2:
        channels = 1
    else:
        raise ValueError(f"pixels must have shape (H, W, 3), (H, W, 1) or (H, W), "
                         f"got {array.shape}")
    height, width = array.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"cannot encode an empty image ({width}x{height} pixels)")
    array = numpy.ascontiguousarray(array).reshape(height, width * channels)
    return array, height, width, channels


def encode_jpeg(pixels, int quality):
    """Encode pixels as a baseline JFIF JPEG (what Pillow's ``save(quality=q)`` writes).

    RGB input gives three YCbCr components, 4:2:0; gray input one
    component. ``JDCT_ISLOW``, standard Huffman tables, the standard
    quantisation tables scaled by ``quality`` (``jpeg_set_quality``, forced
    baseline: 8-bit tables, SOF0). Every decoder backend reads the result
    (FMT-036). The GIL is released while libjpeg encodes.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W, 3), (H, W, 1) or (H, W)
        RGB or gray; copied first if not C-contiguous. 1..65500 a side.
    quality : int
        1..100, as Pillow's and libjpeg's.

    Returns
    -------
    bytes
        The JPEG file.

    Raises
    ------
    ValueError
        Another dtype or shape, an empty image, a side over 65500 or a
        quality outside 1..100; a libjpeg error (its message).
    """
    array, height, width, channels = _pixels_2d(pixels)
    cdef const uint8_t[:, ::1] src = array
    cdef int64_t h = height, w = width
    cdef int ch = channels
    cdef unsigned char *buffer = NULL
    cdef unsigned long size = 0
    cdef char msg[MSG_LEN]
    cdef int status
    with nogil:
        status = ffcvx_encode_jpeg(&src[0, 0], h, w, ch, quality, &buffer, &size,
                                   msg, MSG_LEN)
    if status != ENCODE_OK:
        text = (<bytes>msg).decode("utf-8", "replace") or "no message"
        raise ValueError(f"JPEG encode: {text}" if status == ENCODE_BAD_ARGUMENT
                         else f"JPEG encode failed: {text}")
    try:
        return (<char *>buffer)[:size]
    finally:
        free(buffer)
