"""The size an encoded image's header claims, read before any backend decodes it (BKD-075).

A damaged or hostile sample may carry a header that claims far more pixels
than its record (e.g. 65500 x 65500 for a 160 x 128 record): a backend that
trusts the header allocates gigabytes and decodes for minutes. The image
decoders therefore read the header's size here, in compiled code and in
microseconds, and refuse a sample whose header and record disagree before
calling any backend.
"""
import numpy as np
from numba import njit

#: Bytes of the PNG signature, then the IHDR chunk's length, type, width and height.
_PNG_HEAD = np.frombuffer(b'\x89PNG\r\n\x1a\n', np.uint8)
_IHDR = np.frombuffer(b'IHDR', np.uint8)
_JPEG_HEAD = np.frombuffer(b'\xff\xd8\xff', np.uint8)


@njit(nogil=True)
def _is_sof(marker):
    # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
    return 0xC0 <= marker <= 0xCF and marker != 0xC4 and marker != 0xC8 and marker != 0xCC


@njit(nogil=True)
def _be16(data, p):
    return (np.int64(data[p]) << 8) | np.int64(data[p + 1])


@njit(nogil=True)
def _be32(data, p):
    return (_be16(data, p) << 16) | _be16(data, p + 2)


@njit(nogil=True)
def jpeg_header_size(data):
    """``(height, width)`` of a JPEG's first frame header, or ``(-1, -1)`` if it has none.

    Walks the marker segments from SOI to the first SOF marker and stops at
    SOS, EOI or the end of ``data``. Bytes between segments that are not a
    marker are skipped, as libjpeg does (with a warning), so that a size
    libjpeg would find is found here too.

    Parameters
    ----------
    data : ndarray[uint8], shape (n,)

    Returns
    -------
    (height, width) : tuple of int64, pixels
        As the frame header says (a height of 0, defined later by a DNL
        marker, is returned as 0).
    """
    n = data.shape[0]
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        return np.int64(-1), np.int64(-1)
    p = 2
    while p + 1 < n:
        if data[p] != 0xFF:
            p += 1
            continue
        marker = np.int64(data[p + 1])
        if marker == 0xFF:           # fill byte before a marker
            p += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:   # markers without a length
            p += 2
            continue
        if marker == 0xD9 or marker == 0xDA or p + 3 >= n:
            break
        length = _be16(data, p + 2)
        if length < 2:
            break
        if _is_sof(marker):
            if p + 8 >= n or length < 8:
                break
            return _be16(data, p + 5), _be16(data, p + 7)
        p += 2 + length
    return np.int64(-1), np.int64(-1)


@njit(nogil=True)
def png_header_size(data):
    """``(height, width)`` from a PNG's IHDR chunk, or ``(-1, -1)`` if it has none.

    Parameters and result as :func:`jpeg_header_size`.
    """
    if data.shape[0] < 24:
        return np.int64(-1), np.int64(-1)
    for k in range(8):
        if data[k] != _PNG_HEAD[k]:
            return np.int64(-1), np.int64(-1)
    for k in range(4):
        if data[12 + k] != _IHDR[k]:
            return np.int64(-1), np.int64(-1)
    return _be32(data, 20), _be32(data, 16)


@njit(nogil=True)
def _has_signature(data, signature, length):
    if data.shape[0] < length:
        return False
    for k in range(length):
        if data[k] != signature[k]:
            return False
    return True


@njit(nogil=True)
def header_size(data):
    """``(signed, height, width)``: what an encoded image's header claims, by its signature.

    The format is the data's own (BKD-021: a backend may decode a PNG stored
    under the JPEG mode), not the record's mode.

    Returns
    -------
    signed : bool
        Whether ``data`` starts with the JPEG (``FF D8 FF``) or PNG signature.
    height, width : int64, pixels
        The header's size; ``-1`` when not signed or no size is found.
    """
    if _has_signature(data, _PNG_HEAD, 8):
        h, w = png_header_size(data)
        return True, h, w
    if _has_signature(data, _JPEG_HEAD, 3):
        h, w = jpeg_header_size(data)
        return True, h, w
    return False, np.int64(-1), np.int64(-1)


@njit(nogil=True)
def header_matches(data, height, width):
    """False when ``data`` is a signed JPEG or PNG whose header is not ``height x width`` (BKD-075).

    Unsigned data (neither signature) is left to the backend, which returns
    corrupt for it at once (BKD-021).
    """
    signed, h, w = header_size(data)
    return not signed or (h == height and w == width)
