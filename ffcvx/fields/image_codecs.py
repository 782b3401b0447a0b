"""Pixels to stored bytes for the image fields: FFCV's shrink rule, area resampling, JPEG and PNG encoding.

Used by :mod:`.rgb_image` (the fields) and :mod:`.encoded` (encoded inputs
that must shrink); importable from :mod:`.rgb_image` as before.
"""
import io

import numpy as np
from PIL import Image

from .encoded import target_size


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


def encode_jpeg(image, quality):
    """Baseline JFIF bytes of ``image`` (RGB, 4:2:0), via Pillow."""
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
