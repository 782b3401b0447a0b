"""torchvision's colour kernels on uint8 RGB images, compiled (internal to the transforms).

Each function works in place on one ``ndarray[uint8], shape (H, W, 3)`` and
repeats the float32 arithmetic of ``torchvision.transforms.v2.functional``
(0.29) on a uint8 tensor, operation by operation: the same constants rounded
to float32, the same truncations (``.to(uint8)`` and ``floor_``), and a fused
multiply-add where torch's ``add_(other, alpha=...)`` uses one (its AVX2
kernels do; measured: without it 1,638 saturation pixels of 8 photos differ).
Shared by ``colorjitter.py``, ``grayscale.py`` and ``solarization.py``.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

_f32 = np.float32
_ZERO, _ONE, _TWO, _FOUR, _SIX = _f32(0.0), _f32(1.0), _f32(2.0), _f32(4.0), _f32(6.0)
_MAX = _f32(255.0)
_R, _G, _B = _f32(0.2989), _f32(0.587), _f32(0.114)   # torchvision's luma weights
_INV255 = _f32(1.0 / 255)                             # to_dtype_image, uint8 -> float
_TO_U8 = _f32(255 + 1.0 - 1e-3)                       # to_dtype_image, float -> uint8
_SIXTH = _f32(1.0 / 6.0)


@intrinsic
def fma32(typingctx, a, b, c):
    """``a * b + c`` in float32 with one rounding (LLVM's ``llvm.fma.f32``)."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = builder.module.declare_intrinsic('llvm.fma', [f32], ir.FunctionType(f32, [f32] * 3))
        return builder.call(fn, args)
    return sig, codegen


@njit(nogil=True, inline='always')
def _to_u8(value):
    # clamp_(0, 255) then .to(uint8), which truncates
    if value < _ZERO:
        value = _ZERO
    elif value > _MAX:
        value = _MAX
    return np.uint8(value)


@njit(nogil=True, inline='always')
def gray32(pixel):
    """torchvision's grey of one RGB pixel, float32: ``r*0.2989 + 0.587 g + 0.114 b``."""
    value = _f32(pixel[0]) * _R
    value = fma32(_f32(pixel[1]), _G, value)
    return fma32(_f32(pixel[2]), _B, value)


@njit(nogil=True, inline='always')
def _blend(pixel, factor, keep, reference):
    # _blend: image.mul(ratio).add_(reference, alpha=1 - ratio), clamp, truncate
    for c in range(3):
        pixel[c] = _to_u8(fma32(reference, keep, _f32(pixel[c]) * factor))


@njit(nogil=True)
def adjust_brightness(image, factor):
    """``trunc(clamp(x * factor, 0, 255))`` (float32 product), in place; ``factor >= 0``."""
    f = _f32(factor)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            for c in range(3):
                image[y, x, c] = _to_u8(_f32(image[y, x, c]) * f)


@njit(nogil=True)
def adjust_saturation(image, factor):
    """Blend each pixel with its floored grey by ``factor`` (0: grey, 1: unchanged), in place."""
    f, keep = _f32(factor), _f32(1.0 - factor)
    for y in range(image.shape[0]):
        for x in range(image.shape[1]):
            pixel = image[y, x]
            _blend(pixel, f, keep, np.floor(gray32(pixel)))


@njit(nogil=True)
def adjust_contrast(image, factor):
    """Blend with the mean of the floored greys by ``factor``, in place.

    The floored greys are integers, so their sum is exact in int64; the mean
    is that sum over the pixel count rounded once to float32, which is what
    torch's float32 mean gives while its partial sums stay below 2**24
    (any image up to 256 x 256 pixels; beyond, torch's own rounding may
    differ by a unit in the mean's last place).
    """
    height, width = image.shape[0], image.shape[1]
    total = 0
    for y in range(height):
        for x in range(width):
            total += np.int64(np.floor(gray32(image[y, x])))
    mean = _f32(total / (height * width)) if height * width > 0 else _ZERO
    f, keep = _f32(factor), _f32(1.0 - factor)
    for y in range(height):
        for x in range(width):
            _blend(image[y, x], f, keep, mean)


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
