"""Pixels to stored bytes for the image fields: FFCV's shrink rule, area resampling, JPEG and PNG encoding.

Used by :mod:`.rgb_image` (the fields) and :mod:`.encoded` (encoded inputs
that must shrink); importable from :mod:`.rgb_image` as before.

When the optional backend package ffcvx-turbojpeg is installed, JPEG
encoding (and the decoding of encoded JPEG inputs, :mod:`.encoded`) runs in
its compiled codec without the GIL (:func:`compiled_codec`); otherwise
Pillow does the same work. Both write the same bytes.
"""
import functools
import io
import types

import numpy as np
from PIL import Image

from .pixels import to_gray_array

#: A JPEG that must shrink is decoded at the smallest libjpeg DCT scale (1/8,
#: 1/4, 1/2) whose image is still at least this many times the target size on
#: both axes, then area-shrunk. Measured on 200 JPEGs of 300..2000 px shrunk
#: to 256 and stored at quality 90 (benchmarks/bench_write_codec.py), the
#: stored JPEG against full decode + INTER_AREA + the same encoding: 2x loses
#: 0.62 dB PSNR, 3x 0.22 dB (within the 0.3 dB the writer allows), 1.5x 1.6 dB.
DRAFT_MARGIN = 3


def target_size(width, height, max_resolution):
    """FFCV 1.0's shrunk size ``(w, h)`` for ``max_resolution``, or None when no shrink is needed.

    ``ratio = max_resolution / max(W, H)``; if below 1, ``(ratio * [W, H]).astype(int)``
    (a side truncated to 0 becomes 1; see :func:`ffcvx.fields.rgb_image.shrink_to`).
    """
    if max_resolution is None:
        return None
    # FFCV computes this in numpy float64 (int64 sides); Python floats do the same IEEE
    # division, product and truncation without numpy's cost (this runs several times a
    # sample). A numpy scalar limit is made a Python number first: numpy would divide a
    # float32 by int64 sides in float64, as Python's float does.
    if not isinstance(max_resolution, (int, float)):
        max_resolution = float(max_resolution)
    ratio = max_resolution / max(int(width), int(height))
    if ratio >= 1:
        return None
    return max(1, int(ratio * int(width))), max(1, int(ratio * int(height)))


def shrink_to(image, max_resolution):
    """Shrink ``image`` so its longest side is at most ``max_resolution``, as FFCV 1.0 writes it.

    Implements the ``max_resolution`` step of FFCV 1.0's image writer
    (``ffcv/fields/rgb_image.py: resizer``) with the same arithmetic:
    ``ratio = max_resolution / max(W, H)`` (float64); if ``ratio < 1`` the
    new size is ``(ratio * [W, H]).astype(int)`` (float64 products truncated
    toward zero) and the pixels are resampled with OpenCV's
    ``cv2.resize(..., interpolation=cv2.INTER_AREA)``: each output pixel is
    the mean of the input pixels under its footprint, each weighted by the
    fraction it covers, rounded to the nearest integer. With the same OpenCV
    the result is FFCV's, pixel for pixel.

    Images are never enlarged: when ``ratio >= 1`` the input is returned as
    it is. Where FFCV's rule truncates a side to 0 (a side shorter than
    ``max(W, H) / max_resolution``, e.g. 600x1 at 256), FFCV's
    ``cv2.resize`` call fails; here that side becomes 1 pixel instead.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3), (H, W, 1) or (H, W)
        RGB or one-channel pixels.
    max_resolution : int or None
        Longest side allowed, in pixels; ``None`` keeps every image as it is.

    Returns
    -------
    ndarray of uint8, shape (H', W', 3), (H', W', 1) or (H', W')
        The same layout as ``image`` (OpenCV drops a last axis of length 1;
        it is put back), C-contiguous when shrunk; ``image`` itself when no
        shrink is needed.
    """
    h, w = image.shape[:2]
    target = target_size(w, h, max_resolution)
    if target is None:
        return image
    return area_resize(image, target)


def area_resize(image, size):
    """``image`` resampled to ``size = (w, h)`` by OpenCV's ``INTER_AREA`` (see :func:`shrink_to`)."""
    new_w, new_h = size
    import cv2  # here, not at module level: importing the format layer stays light
    out = cv2.resize(np.ascontiguousarray(image), (new_w, new_h), interpolation=cv2.INTER_AREA)
    return out.reshape((new_h, new_w) + image.shape[2:])


@functools.lru_cache(maxsize=None)
def compiled_codec():
    """ffcvx-turbojpeg's writer codec, or None.

    Probed once, on first use: the core never imports the optional package
    at module import time, and works the same (through Pillow) without it.

    Returns
    -------
    types.SimpleNamespace or None
        ``decode_shrunk`` and ``UnsupportedJPEGError`` of
        ``ffcvx_turbojpeg._libjpeg_write``, ``encode_jpeg`` of
        ``ffcvx_turbojpeg._libjpeg_encode``.
    """
    try:
        from ffcvx_turbojpeg import _libjpeg_encode, _libjpeg_write
    except ImportError:
        return None
    return types.SimpleNamespace(decode_shrunk=_libjpeg_write.decode_shrunk,
                                 UnsupportedJPEGError=_libjpeg_write.UnsupportedJPEGError,
                                 encode_jpeg=_libjpeg_encode.encode_jpeg)


def decode_compiled(encoded, info, field_name, max_resolution, channels):
    """:meth:`EncodedImage.decode`'s result through ffcvx-turbojpeg's ``decode_shrunk``, or None.

    None means "use Pillow": no compiled codec, or a JPEG it does not take.
    Taken: 8-bit sequential or progressive Huffman JPEGs (SOF0..SOF2) of one
    component, or of three that libjpeg reads as YCbCr (not RGB by an Adobe
    transform 0), within Pillow's decompression-bomb limit (larger ones go
    to Pillow, which refuses or warns as before). A shrink of a ``draft``
    input decodes at the smallest DCT scale keeping ``DRAFT_MARGIN`` (3)
    times the target and area-shrinks in C (``JDCT_ISLOW``, as Pillow).
    Otherwise it decodes at full size: Pillow's decode bit for bit, so raw
    and PNG samples keep today's pixels. A colour JPEG for a gray field is decoded as RGB and
    converted by Pillow's RGB-to-L, as a PIL input is: libjpeg's own luma
    output (Y before clipping to RGB) differs from it by up to 20 levels
    on saturated colours of the shared photos.

    Parameters
    ----------
    encoded : EncodedImage
    info : JpegInfo
        Its :attr:`~EncodedImage.jpeg_header`.
    field_name : str
        For messages.
    max_resolution : int or None
    channels : {1, 3}
        The field's: gray (H, W) or RGB (H, W, 3) pixels.

    Returns
    -------
    (ndarray of uint8, bool) or None
        The pixels and whether they are already shrunk to FFCV's target;
        None when the codec is missing or does not take this JPEG, or when
        libjpeg reports damaged data: the caller then decodes with Pillow,
        which decodes what it can (as FFCV does) and raises for the rest.
    """
    codec = compiled_codec()
    if codec is None or info.precision != 8 or info.sof_kind not in (0, 1, 2):
        return None
    if info.components not in (1, 3) or info.adobe_transform == 0:
        return None
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and info.width * info.height > limit:
        return None
    target = target_size(info.width, info.height, max_resolution)
    shrink = target is not None and encoded.draft
    width, height = target if shrink else (info.width, info.height)
    gray = channels == 1 and info.components == 1
    try:
        pixels = codec.decode_shrunk(encoded.data, width, height, gray=gray, margin=DRAFT_MARGIN)
    except codec.UnsupportedJPEGError:
        return None
    except ValueError:
        # libjpeg's warnings of damaged data (a stray marker, a bad Huffman code, a
        # premature end) are errors here; Pillow decodes such files, as FFCV does, and
        # raises for the ones it cannot: whether a file is written must not depend on
        # whether the backend is installed
        return None
    if channels == 1 and not gray:
        pixels = to_gray_array(pixels)
    return pixels, shrink


def encode_jpeg(image, quality):
    """Baseline JFIF bytes of ``image``: RGB 4:2:0, or one component for gray pixels.

    ``jpeg_set_quality(quality)`` tables, forced baseline, ``JDCT_ISLOW``,
    standard Huffman tables: Pillow's ``save(format='JPEG', quality=q)``.
    Encoded by ffcvx-turbojpeg's compiled codec (GIL released) when it is
    installed, else by Pillow; today both give the same bytes.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3) or (H, W)
    quality : int, 1..100

    Returns
    -------
    bytes
    """
    codec = compiled_codec()
    if codec is not None:
        return codec.encode_jpeg(image, int(quality))
    out = io.BytesIO()
    Image.fromarray(image).save(out, format='JPEG', quality=int(quality))
    return out.getvalue()


def encode_png(image):
    """Standard RGB PNG bytes of ``image`` (colour type 2, channel order R, G, B; FMT-037), via Pillow.

    Any PNG backend decodes them back to exactly ``image`` (BKD-023).
    """
    out = io.BytesIO()
    Image.fromarray(image).save(out, format='PNG', compress_level=3)
    return out.getvalue()
