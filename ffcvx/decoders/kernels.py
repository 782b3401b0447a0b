"""Building blocks of the image decoders that transforms may use too (a public internal module).

Everything here is either a jitted function (callable from Numba code and
from Python) or a loader of a core C kernel; nothing depends on a field, a
backend or the pipeline. ``ffcvx.transforms`` imports this module and no
other part of ``ffcvx.decoders``.

* crop-region samplers: :func:`get_random_crop` (torchvision's
  RandomResizedCrop), :func:`get_center_crop` (FFCV's CenterCrop),
  :func:`whole_image`;
* the resize kernels of ``ffcvx/_ext/resize.pyx``: their ctypes prototypes
  :data:`RESIZE_PROTO` / :data:`RESIZE_SCRATCH_PROTO`,
  :func:`resize_functions`, :func:`resize_status`, which puts a kernel's
  status into the resize range of ``ffcvx.status`` (BKD-073), and
  :func:`flip_resize_function`, both kernels behind one flag;
* byte helpers for packed images: :func:`gray_to_rgb`, :func:`rgb_to_gray`,
  :func:`keep_channel0`, :func:`swap_rb`.
"""
import ctypes
from math import exp, sqrt

import numpy as np
from numba import njit
from numba.extending import get_cython_function_address

from ..status import RESIZE_BASE

#: ``int ffcvx_resize_rgb(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch, scratch_len)``;
#: also the prototype of the mirrored and one-channel kernels. Sizes and
#: strides in pixels / bytes as int64; returns 0, -2 (scratch too small) or
#: -3 (a size outside ``1 .. 2**24``).
RESIZE_PROTO = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64)

#: ``int64_t ffcvx_resize_scratch_bytes(src_h, src_w, dst_h, dst_w)``: bytes of
#: scratch the kernel needs, or -3 for a size outside ``1 .. 2**24``.
RESIZE_SCRATCH_PROTO = ctypes.CFUNCTYPE(
    ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)


def resize_functions(channels=3):
    """The resize kernel of ``ffcvx/_ext/resize.pyx`` for 3 (RGB) or 1 (gray) channels.

    Parameters
    ----------
    channels : {3, 1}
        Bytes per pixel of the source and destination.

    Returns
    -------
    (resize, resize_mirror, scratch_bytes) : ctypes functions
        ``ffcvx_resize_rgb``, ``ffcvx_resize_rgb_mirror`` (left-right mirror
        of the same result) and ``ffcvx_resize_scratch_bytes``, or their
        ``_gray`` forms; callable from Numba code without the GIL.
    """
    def address(name):
        return get_cython_function_address('ffcvx._ext.resize', name)
    kind = 'rgb' if channels == 3 else 'gray'
    scratch = 'ffcvx_resize_scratch_bytes' if channels == 3 else 'ffcvx_resize_gray_scratch_bytes'
    return (RESIZE_PROTO(address(f'ffcvx_resize_{kind}')),
            RESIZE_PROTO(address(f'ffcvx_resize_{kind}_mirror')),
            RESIZE_SCRATCH_PROTO(address(scratch)))


@njit(nogil=True)
def resize_status(rc):
    """The status-table code of a resize kernel's return value ``rc`` (BKD-073): 0, or ``-200 + rc``."""
    return rc if rc == 0 else RESIZE_BASE + rc


def flip_resize_function(channels=3):
    """A jitted ``resize(flip, src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len) -> status``.

    :func:`resize_functions`' plain or mirrored kernel (``flip`` true), its
    status moved into the resize range of ``ffcvx.status`` (BKD-073).
    """
    resize_plain, resize_mirror, _ = resize_functions(channels)

    @njit(nogil=True)
    def resize(flip, src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len):
        if flip:
            rc = resize_mirror(src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len)
        else:
            rc = resize_plain(src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len)
        return resize_status(rc)
    return resize


# -- crop-region samplers: (height, width, ...) -> (i, j, h, w), pixels -------------

@njit(nogil=True)
def get_random_crop(height, width, scale_lo, scale_hi, log_ratio_lo, log_ratio_hi):
    """Sample a RandomResizedCrop box, torchvision's and FFCV's algorithm.

    Up to 10 tries of area ``U(scale) * H * W`` and aspect ``exp(U(log ratio))``;
    if none fits, a centred crop clamped to the ratio range. Draws from
    NumPy's generator of the calling thread (seed it per sample with
    ``ffcvx.pipeline.seeds.seed_sample`` first).

    Parameters
    ----------
    height, width : int
        Image size, pixels (at least 1).
    scale_lo, scale_hi : float
        Range of the box's area as a fraction of the image's.
    log_ratio_lo, log_ratio_hi : float
        Natural logarithms of the range of the aspect ratio (width / height).

    Returns
    -------
    (i, j, h, w) : tuple of int, pixels
        Top, left, height and width of the box; always inside the image.
    """
    area = height * width
    for _ in range(10):
        target_area = area * np.random.uniform(scale_lo, scale_hi)
        aspect = exp(np.random.uniform(log_ratio_lo, log_ratio_hi))
        w = int(round(sqrt(target_area * aspect)))
        h = int(round(sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = int(np.random.uniform(0, height - h + 1))
            j = int(np.random.uniform(0, width - w + 1))
            return min(i, height - h), min(j, width - w), h, w
    in_ratio = width / height
    ratio_lo = exp(log_ratio_lo)
    ratio_hi = exp(log_ratio_hi)
    if in_ratio < ratio_lo:
        w = width
        h = min(height, max(1, int(round(w / ratio_lo))))
    elif in_ratio > ratio_hi:
        h = height
        w = min(width, max(1, int(round(h * ratio_hi))))
    else:
        w = width
        h = height
    return (height - h) // 2, (width - w) // 2, h, w


@njit(nogil=True)
def get_center_crop(height, width, ratio):
    """Square centre crop of side ``int(ratio * min(H, W))``, at least 1 (FFCV's CenterCrop).

    Returns
    -------
    (i, j, h, w) : tuple of int, pixels
    """
    side = max(1, int(ratio * min(height, width)))
    return (height - side) // 2, (width - side) // 2, side, side


@njit(nogil=True)
def whole_image(height, width):
    """The "crop" of a full decode: ``(0, 0, height, width)``."""
    return 0, 0, height, width


# -- byte helpers on packed (row-major, no padding) uint8 images --------------------

@njit(nogil=True)
def gray_to_rgb(src, dst, n):
    """Write each of the ``n`` bytes of ``src`` three times into ``dst`` (``3 * n`` bytes)."""
    for p in range(n):
        v = src[p]
        dst[3 * p] = v
        dst[3 * p + 1] = v
        dst[3 * p + 2] = v


@njit(nogil=True)
def rgb_to_gray(src, dst, n):
    """Keep channel R of ``n`` RGB pixels of ``src`` in ``dst`` (``n`` bytes).

    Meant for gray images decoded as RGB, where R = G = B: nothing is lost.
    """
    for p in range(n):
        dst[p] = src[3 * p]


@njit(nogil=True)
def keep_channel0(buf, i, j, h, w, width):
    """In place: the R bytes of the ``h x w`` box at ``(i, j)`` of a packed RGB image ``width`` wide.

    The box is packed as a one-channel ``h x w`` image at the start of
    ``buf``. Each gray byte lands at or before the RGB byte it comes from and
    before every RGB byte still to be read, so a forward loop is safe.
    """
    for r in range(h):
        src = ((i + r) * width + j) * 3
        dst = r * w
        for c in range(w):
            buf[dst + c] = buf[src + 3 * c]


@njit(nogil=True)
def swap_rb(img, n):
    """Swap channels R and B of ``n`` packed RGB pixels in place (FFCV "erow" PNGs, FMT-086)."""
    for p in range(n):
        r = img[3 * p]
        img[3 * p] = img[3 * p + 2]
        img[3 * p + 2] = r
