"""One colour kernel set, with FFCV's or torchvision's rounding (internal to the transforms).

Brightness, contrast and saturation are one operation: blend each pixel
with a reference by a factor ``f``, ``out = f * x + (1 - f) * reference``,
the reference being black (brightness), the image's mean grey (contrast)
or the pixel's own grey (saturation). Where the two families differ is
only the arithmetic of the grey, the mean and the blend, given here as
two roundings:

FFCV's (``color_jitter.py``)
    float64; grey the unrounded ITU-R 601 luma ``0.299 R + 0.587 G + 0.114 B``;
    the blend clipped to 0..255 and rounded half up.
torchvision's (``colorjitter.py``, ``torchvision.transforms.v2.functional`` 0.29)
    float32 operation by operation; grey ``0.2989 r + 0.587 g + 0.114 b``
    floored; the mean of the floored greys rounded once to float32; the
    blend a fused multiply-add (as torch's ``add_(other, alpha=...)`` on
    AVX2), clamped and truncated (``.to(uint8)``).

:func:`blend_kernel` builds the compiled kernel of a rounding;
``FFCV_BLEND`` and ``TV_BLEND`` are the two.
"""
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

BRIGHTNESS, CONTRAST, SATURATION = 0, 1, 2

_f32 = np.float32
_ZERO, _MAX = _f32(0.0), _f32(255.0)
_R, _G, _B = _f32(0.2989), _f32(0.587), _f32(0.114)   # torchvision's luma weights


@intrinsic
def fma32(typingctx, a, b, c):
    """``a * b + c`` in float32 with one rounding (LLVM's ``llvm.fma.f32``)."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f32 = ir.FloatType()
        fn = builder.module.declare_intrinsic('llvm.fma', [f32], ir.FunctionType(f32, [f32] * 3))
        return builder.call(fn, args)
    return sig, codegen


# ---- FFCV's rounding ----------------------------------------------------------------------------

@njit(nogil=True)
def ffcv_grey(pixel):
    """The unrounded luma of one RGB pixel, float64."""
    return 0.299 * pixel[0] + 0.587 * pixel[1] + 0.114 * pixel[2]


@njit(nogil=True)
def ffcv_mean(total, count):
    """The mean grey, float64."""
    return total / count


@njit(nogil=True)
def ffcv_mix(value, factor, keep, reference):
    """``factor * value + keep * reference`` in float64, clipped to 0..255, rounded half up."""
    value = factor * value + keep * reference
    if value < 0.0:
        value = 0.0
    elif value > 255.0:
        value = 255.0
    return np.uint8(np.floor(value + 0.5))


# ---- torchvision's rounding ---------------------------------------------------------------------

@njit(nogil=True, inline='always')
def to_u8(value):
    """``clamp_(0, 255)`` then ``.to(uint8)``, which truncates."""
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


@njit(nogil=True)
def tv_grey(pixel):
    """The floored float32 grey (an integer: a sum of them is exact in float64)."""
    return np.floor(gray32(pixel))


@njit(nogil=True)
def tv_mean(total, count):
    """The sum of the floored greys over the pixel count, rounded once to float32.

    That is what torch's float32 mean gives while its partial sums stay
    below 2**24 (any image up to 256 x 256 pixels; beyond, torch's own
    rounding may differ by a unit in the mean's last place).
    """
    return _f32(total / count) if count > 0 else _ZERO


@njit(nogil=True)
def tv_mix(value, factor, keep, reference):
    """``image.mul(factor).add_(reference, alpha=keep)`` in float32 (one fma), clamped, truncated."""
    return to_u8(fma32(_f32(reference), _f32(keep), _f32(value) * _f32(factor)))


def blend_kernel(grey, mean, mix):
    """The compiled ``blend(image, factor, kind)`` of one rounding.

    Parameters
    ----------
    grey : compiled ``(pixel) -> float``
        A pixel's grey.
    mean : compiled ``(total, count) -> float``
        The mean grey from the sum of the greys and the pixel count.
    mix : compiled ``(value, factor, keep, reference) -> uint8``
        One channel's blend, ``keep = 1 - factor``.

    Returns
    -------
    blend : compiled ``(image, factor, kind) -> None``
        Blends one ``ndarray[uint8], shape (H, W, 3)`` in place: ``kind``
        is ``BRIGHTNESS``, ``CONTRAST`` or ``SATURATION``; factor 1 leaves
        the image unchanged, 0 gives the reference.
    """
    @njit(nogil=True)
    def blend(image, factor, kind):
        height, width = image.shape[0], image.shape[1]
        keep = 1.0 - factor
        reference = 0.0                       # black: brightness
        if kind == CONTRAST:
            total = 0.0
            for y in range(height):
                for x in range(width):
                    total += grey(image[y, x])
            reference = mean(total, height * width)
        for y in range(height):
            for x in range(width):
                pixel = image[y, x]
                if kind == SATURATION:
                    reference = grey(pixel)   # before the pixel changes
                for c in range(3):
                    pixel[c] = mix(pixel[c], factor, keep, reference)
    return blend


#: FFCV's colour jitter (``RandomBrightness`` etc.).
FFCV_BLEND = blend_kernel(ffcv_grey, ffcv_mean, ffcv_mix)
#: torchvision's ``adjust_brightness``, ``adjust_contrast``, ``adjust_saturation``.
TV_BLEND = blend_kernel(tv_grey, tv_mean, tv_mix)
