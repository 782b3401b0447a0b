"""The shared pieces of the decoder-backend contract (``spec/backends.md``).

The C prototype of ``decode_region`` and its status codes (BKD-010,
BKD-013), the names of formats, devices and kinds, the DCT-scale rule and
coordinate mapping (BKD-017), format sniffing and the completeness checks
every Python backend applies (BKD-021, BKD-022), and the conversion of
decoded pixels to 8 bits. Importable from :mod:`ffcvx.backend_api`.
"""
import ctypes

import numpy as np

from .. import status
from ..errors import DecodeError

#: ``int decode_region(const uint8_t *src, int64_t src_len, int64_t crop_y, int64_t crop_x,
#: int64_t crop_h, int64_t crop_w, int64_t target_h, int64_t target_w, uint8_t *out,
#: int64_t out_capacity, int64_t *out_hw)`` (BKD-010). Also the prototype of
#: ``decode_region_gray`` (BKD-026).
DECODE_REGION_PROTO = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int64,
    ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_int64, ctypes.c_int64,
    ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p)

#: Name of the optional one-channel function of backends with ``supports_gray`` (BKD-026).
GRAY_FUNCTION = 'decode_region_gray'

# Status codes of decode_region (BKD-013): the backend range of the decode
# layer's one table (ffcvx/status.py, BKD-070), which they come from.
DECODE_OK = status.OK
DECODE_CORRUPT = status.BACKEND_CORRUPT
DECODE_CAPACITY = status.BACKEND_CAPACITY
DECODE_BAD_ARGUMENT = status.BACKEND_BAD_ARGUMENT

#: Human words for the status codes, for error messages (``ffcvx.status.meanings``).
STATUS_MEANINGS = status.meanings(status.BACKEND)

#: Image formats a backend may declare (BKD-002).
FORMATS = frozenset({'jpeg', 'png', 'raw'})
#: Devices a backend may declare (BKD-003).
DEVICES = frozenset({'cpu', 'cuda'})
#: Backend kinds (BKD-004).
KINDS = frozenset({'native', 'python', 'batch'})
#: Kinds whose ``decode_region`` the per-sample CPU decoders can call (BKD-052).
CALLABLE_KINDS = frozenset({'native', 'python'})

#: The 8 bytes every PNG file starts with (BKD-021).
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
_JPEG_SOI = b'\xff\xd8\xff'
_JPEG_SOS = b'\xff\xda'
_JPEG_EOI = b'\xff\xd9'
_PNG_IEND = b'IEND'


class BadRegionError(ValueError):
    """The crop asked for is not inside the image or has a non-positive size (status -3, BKD-015)."""


def choose_scale(crop_h, crop_w, target_h, target_w):
    """The DCT scale numerator ``k`` (of ``k/8``) for a crop and a target size (BKD-017).

    Parameters
    ----------
    crop_h, crop_w : int
        Crop size, full-resolution pixels.
    target_h, target_w : int
        Smallest acceptable output size, pixels; ``<= 0`` on either axis means
        full scale.

    Returns
    -------
    int
        The smallest ``k`` in (1, 2, 4, 8) with ``crop_h * k >= 8 * target_h``
        and ``crop_w * k >= 8 * target_w``; 8 if none smaller fits.
    """
    if target_h <= 0 or target_w <= 0:
        return 8
    for k in (1, 2, 4):
        if crop_h * k >= 8 * target_h and crop_w * k >= 8 * target_w:
            return k
    return 8


def scaled_range(start, length, k):
    """Where the full-resolution range ``[start, start + length)`` lies at scale ``k/8`` (BKD-017).

    Both ends are rounded half up: ``x -> (2 * x * k + 8) // 16``.

    Returns
    -------
    (lo, hi) : tuple of int
        The half-open scaled range; ``hi - lo >= target`` whenever ``k`` came
        from :func:`choose_scale` with that target.
    """
    return (2 * start * k + 8) // 16, (2 * (start + length) * k + 8) // 16


def sniff_format(data):
    """The image format of encoded bytes, from their signature (BKD-021).

    Parameters
    ----------
    data : bytes-like or ndarray of uint8, shape (n,)

    Returns
    -------
    str or None
        ``'png'`` (8-byte PNG signature), ``'jpeg'`` (``FF D8 FF``), or None.
    """
    head = bytes(memoryview(data)[:8])
    if head == PNG_SIGNATURE:
        return 'png'
    if head[:3] == _JPEG_SOI:
        return 'jpeg'
    return None


def check_complete(data, fmt):
    """Refuse encoded bytes that are visibly cut short (BKD-022).

    libjpeg only *warns* about a JPEG that ends early and fills the missing
    rows with grey, and Pillow does the same for any format when
    ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is set; a backend that cannot see
    those warnings would return garbage pixels with status 0. The checks are
    structural and cheap (a backwards search from the end):

    * JPEG: an end-of-image marker ``FF D9`` must follow the last start-of-scan
      marker ``FF DA`` (entropy-coded data never contains ``FF D9``, because
      ``FF`` bytes there are stuffed);
    * PNG: an ``IEND`` chunk type must be present.

    Parameters
    ----------
    data : bytes-like or ndarray of uint8, shape (n,)
    fmt : str
        ``'jpeg'`` or ``'png'``.

    Raises
    ------
    DecodeError
        If the data is truncated.
    """
    raw = data if isinstance(data, (bytes, bytearray)) else memoryview(data).cast('B').tobytes()
    if fmt == 'jpeg':
        end = raw.rfind(_JPEG_EOI)
        if end < 0 or end < raw.rfind(_JPEG_SOS):
            raise DecodeError("truncated JPEG: no end-of-image marker after the last scan")
    elif fmt == 'png':
        if raw.rfind(_PNG_IEND) < 0:
            raise DecodeError("truncated PNG: no IEND chunk")


def to_rgb8(pixels):
    """Turn a decoded image into packed 8-bit RGB (BKD-020).

    Parameters
    ----------
    pixels : ndarray, shape (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4)
        dtype uint8, or uint16 (16-bit PNG; each sample keeps its high byte,
        ``v >> 8``). Channels are gray, gray + alpha, RGB or RGB + alpha.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        Gray is repeated into R, G and B; alpha is dropped (not composited).
        May be a view of ``pixels`` when no conversion was needed.

    Raises
    ------
    DecodeError
        For any other dtype or shape.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise DecodeError(f"decoded pixels have dtype {pixels.dtype}; expected uint8 or uint16")
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4) or 0 in pixels.shape:
        raise DecodeError(f"decoded pixels have shape {pixels.shape}; expected (H, W, 1..4)")
    channels = pixels.shape[2]
    if channels == 3:
        return pixels
    if channels == 4:
        return pixels[:, :, :3]
    # gray (+ alpha): repeat the gray channel
    return np.repeat(pixels[:, :, :1], 3, axis=2)


def to_gray8(pixels):
    """Channel 0 of :func:`to_rgb8`'s result, without building the other two (BKD-026).

    Parameters
    ----------
    pixels : ndarray, shape (H, W), (H, W, 1), (H, W, 2), (H, W, 3) or (H, W, 4)
        As for :func:`to_rgb8`.

    Returns
    -------
    ndarray of uint8, shape (H, W)
        The gray channel (R for colour pixels); may be a view of ``pixels``.

    Raises
    ------
    DecodeError
        For any other dtype or shape.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] in (1, 2, 3, 4):
        pixels = pixels[:, :, 0]    # gray (+ alpha) or R: channel 0 of to_rgb8
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise DecodeError(f"decoded pixels have dtype {pixels.dtype}; expected uint8 or uint16")
    if pixels.ndim != 2 or 0 in pixels.shape:
        raise DecodeError(f"decoded pixels have shape {pixels.shape}; expected (H, W, 1..4)")
    return pixels
