"""torchvision's colour kernels on uint8 RGB images, compiled (internal to the transforms).

Each function works in place on one ``ndarray[uint8], shape (H, W, 3)`` and
repeats the float32 arithmetic of ``torchvision.transforms.v2.functional``
(0.29) on a uint8 tensor, operation by operation: the same constants rounded
to float32, the same truncations (``.to(uint8)`` and ``floor_``), and a fused
multiply-add where torch's ``add_(other, alpha=...)`` uses one (its AVX2
kernels do; measured: without it 1,638 saturation pixels of 8 photos differ).
Brightness, contrast and saturation are ``_color.py``'s blend with
torchvision's rounding. Shared by ``colorjitter.py``, ``grayscale.py`` and
``solarization.py``.
"""
import numpy as np
from numba import njit

from ._color import BRIGHTNESS, CONTRAST, SATURATION, TV_BLEND, gray32

_f32 = np.float32
_ZERO, _ONE, _TWO, _FOUR, _SIX = _f32(0.0), _f32(1.0), _f32(2.0), _f32(4.0), _f32(6.0)
_INV255 = _f32(1.0 / 255)                             # to_dtype_image, uint8 -> float
_TO_U8 = _f32(255 + 1.0 - 1e-3)                       # to_dtype_image, float -> uint8
_SIXTH = _f32(1.0 / 6.0)


@njit(nogil=True)
def adjust_brightness(image, factor):
    """``trunc(clamp(x * factor, 0, 255))`` (float32 product), in place; ``factor >= 0``."""
    TV_BLEND(image, factor, BRIGHTNESS)


@njit(nogil=True)
def adjust_saturation(image, factor):
    """Blend each pixel with its floored grey by ``factor`` (0: grey, 1: unchanged), in place."""
    TV_BLEND(image, factor, SATURATION)


@njit(nogil=True)
def adjust_contrast(image, factor):
    """Blend with the mean of the floored greys by ``factor`` (float32, ``_color.tv_mean``), in place."""
    TV_BLEND(image, factor, CONTRAST)


@njit(nogil=True, inline='always')
def _clamp01(value):
    if value < _ZERO:
        return _ZERO
    if value > _ONE:
        return _ONE
    return value


@njit(nogil=True)
def adjust_hue(image, hue):
    """Shift the hue by ``hue`` turns (in [-0.5, 0.5]): RGB -> HSV, shift, -> RGB, in place.

    torchvision's ``_rgb_to_hsv`` / ``_hsv_to_rgb`` on ``x / 255`` in float32,
    step by step, back to uint8 as ``trunc(v * 255.999)``.
    """
    shift = _f32(hue)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            pixel = image[y, x]
            r, g, b = _f32(pixel[0]) * _INV255, _f32(pixel[1]) * _INV255, _f32(pixel[2]) * _INV255
            maxc = max(r, max(g, b))
            minc = min(r, min(g, b))
            span = maxc - minc
            if maxc == minc:
                s = span / _ONE
                divisor = _ONE
            else:
                s = span / maxc
                divisor = span
            rc, gc, bc = (maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor
            if maxc == r:
                h = bc - gc
            elif maxc == g:
                h = (rc + _TWO) - bc
            else:
                h = (gc + _FOUR) - rc
            h = np.fmod(h * _SIXTH + _ONE, _ONE)
            h = np.fmod(h + shift, _ONE)              # remainder_(1.0): fmod, then into [0, 1)
            if h < _ZERO:
                h = h + _ONE
            h6 = h * _SIX
            i_float = np.floor(h6)
            frac = h6 - i_float
            sector = np.int64(i_float) % 6
            sxf = s * frac
            one_minus_s = _ONE - s
            v = maxc
            q = _clamp01((_ONE - sxf) * v)
            t = _clamp01((sxf + one_minus_s) * v)
            p = _clamp01(one_minus_s * v)
            if sector == 0:
                r, g, b = v, t, p
            elif sector == 1:
                r, g, b = q, v, p
            elif sector == 2:
                r, g, b = p, v, t
            elif sector == 3:
                r, g, b = p, q, v
            elif sector == 4:
                r, g, b = t, p, v
            else:
                r, g, b = v, p, q
            pixel[0] = np.uint8(r * _TO_U8)
            pixel[1] = np.uint8(g * _TO_U8)
            pixel[2] = np.uint8(b * _TO_U8)


@njit(nogil=True)
def to_grayscale(image):
    """``rgb_to_grayscale(image, 3)``: every channel becomes ``trunc(grey)``, in place."""
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            pixel = image[y, x]
            value = np.uint8(gray32(pixel))
            pixel[0] = value
            pixel[1] = value
            pixel[2] = value


@njit(nogil=True)
def solarize(image, threshold):
    """``x >= threshold`` becomes ``255 - x``, in place (all channels)."""
    flat = image.reshape(-1)
    for i in range(flat.shape[0]):
        # a select, not a branch, so that the loop vectorises
        value = flat[i]
        flat[i] = np.uint8(255) - value if value >= threshold else value
