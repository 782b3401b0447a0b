"""Crop boxes of FFCV-SSL's crop decoders: seeded draws, second-seed coupling, corners, padding.

Every function here is jitted (callable from compiled pipeline code and
from Python). Boxes are ``(i, j, h, w)``: top, left, height, width in
pixels of the stored image, always inside it.
"""
from math import exp, log

from numba import njit

from ..decoders.kernels import get_random_crop
from ..pipeline.seeds import seed_sample

#: FFCV-SSL's ``CornerCrop`` corners, in the order of their code numbers.
CORNERS = ('top_left', 'top_right', 'bottom_left', 'bottom_right')


@njit(nogil=True)
def _capacity(bh, bw, ratio_lo, ratio_hi):
    # Area of the largest box of aspect (w / h) in the ratio range that fits bh x bw.
    if bw > bh * ratio_hi:
        return bh * bh * ratio_hi
    if bw < bh * ratio_lo:
        return bw * bw / ratio_lo
    return float(bh * bw)


@njit(nogil=True)
def get_disjoint_crop(height, width, i1, j1, h1, w1, scale_lo, scale_hi, log_lo, log_hi):
    """A RandomResizedCrop box that avoids the box ``(i1, j1, h1, w1)`` when room allows.

    The rule: of the four free bands around the first box (the rows above
    it, the rows below it, the columns left of it, the columns right of it,
    each spanning the image the other way), take the one that holds the
    largest box with an aspect ratio in range (first in that order on a
    tie). If that box has at least ``scale_lo`` of the image's area, draw
    torchvision's crop inside the band with the area range rescaled so that
    areas stay fractions of the *image* (``[scale_lo, min(scale_hi, band)]``);
    the result never overlaps the first box. Otherwise draw the ordinary crop
    of the whole image (which may overlap). Draws from the calling thread's
    generator, like :func:`~ffcvx.decoders.kernels.get_random_crop`.

    Returns
    -------
    (i, j, h, w) : tuple of int, pixels
    """
    area = height * width
    ratio_lo, ratio_hi = exp(log_lo), exp(log_hi)
    best, best_cap = -1, 0.0
    top, left, bh, bw = 0, 0, 0, 0
    for b in range(4):
        if b == 0:
            t, l, hh, ww = 0, 0, i1, width
        elif b == 1:
            t, l, hh, ww = i1 + h1, 0, height - i1 - h1, width
        elif b == 2:
            t, l, hh, ww = 0, 0, height, j1
        else:
            t, l, hh, ww = 0, j1 + w1, height, width - j1 - w1
        if hh <= 0 or ww <= 0:
            continue
        cap = _capacity(hh, ww, ratio_lo, ratio_hi)
        if cap > best_cap:
            best, best_cap = b, cap
            top, left, bh, bw = t, l, hh, ww
    if best < 0 or best_cap < scale_lo * area:
        return get_random_crop(height, width, scale_lo, scale_hi, log_lo, log_hi)
    band = bh * bw
    lo = scale_lo * area / band
    hi = min(1.0, scale_hi * area / band)
    i, j, h, w = get_random_crop(bh, bw, lo, hi, log_lo, log_hi)
    return top + i, left + j, h, w


def random_box_drawer(scale, ratio, coupled):
    """The jitted draw of FFCV-SSL's RandomResizedCrop: ``(seed, index, height, width) -> (i, j, h, w)``.

    Parameters
    ----------
    scale, ratio : (float, float)
        As for RandomResizedCrop.
    coupled : bool
        False: ``seed`` is one ``uint64``; the box is torchvision's crop
        drawn from it. True (``second_seed``): ``seed`` is ``(own, other)``;
        the box that ``other`` gives (what ``RandomResizedCrop(seed=other)``
        draws for this sample) is drawn first, then this op's own box from
        ``own`` by :func:`get_disjoint_crop`. Either way the thread's
        generator is left on this op's own stream (an absorbed flip draws
        from it next).
    """
    scale_lo, scale_hi = float(scale[0]), float(scale[1])
    log_lo, log_hi = log(ratio[0]), log(ratio[1])
    if not coupled:
        @njit(nogil=True)
        def draw(seed, index, height, width):
            seed_sample(seed, index)
            return get_random_crop(height, width, scale_lo, scale_hi, log_lo, log_hi)
        return draw

    @njit(nogil=True)
    def draw_coupled(seeds, index, height, width):
        seed_sample(seeds[1], index)
        i1, j1, h1, w1 = get_random_crop(height, width, scale_lo, scale_hi, log_lo, log_hi)
        seed_sample(seeds[0], index)
        return get_disjoint_crop(height, width, i1, j1, h1, w1, scale_lo, scale_hi, log_lo, log_hi)
    return draw_coupled


def corner_sampler(ratio, corner):
    """Jitted ``(height, width) -> (i, j, h, w)``: the square of side ``max(1, int(ratio * min(H, W)))`` at ``corner``."""
    code = CORNERS.index(corner)
    ratio = float(ratio)

    @njit(nogil=True)
    def sample(height, width):
        side = max(1, int(ratio * min(height, width)))
        i = height - side if code >= 2 else 0
        j = width - side if code % 2 == 1 else 0
        return i, j, side, side
    return sample


@njit(nogil=True)
def pad_in_place(images, heights, widths):
    """Spread packed images into their padded slots: top-left, zeros right of and below each.

    ``images`` is ``uint8 (B, Hmax, Wmax, C)`` where slot ``k`` holds, from its
    first byte, ``heights[k] x widths[k]`` packed pixels (what
    ``SimpleRGBImageDecoder`` writes). Rows move from the last to the first
    and each row back to front: a row's target never starts before its
    source, so nothing is overwritten before it is read.
    """
    stride = images.shape[2] * images.shape[3]
    for k in range(images.shape[0]):
        flat = images[k].reshape(-1)
        h, row = heights[k], widths[k] * images.shape[3]
        for r in range(h - 1, -1, -1):
            src, dst = r * row, r * stride
            if dst != src:
                for c in range(row - 1, -1, -1):
                    flat[dst + c] = flat[src + c]
            flat[dst + row:dst + stride] = 0
        flat[h * stride:] = 0
