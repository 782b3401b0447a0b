"""Random erasing (FFCV-SSL's ``RandomErasing``), torchvision's box sampling and fill."""
import math

import numpy as np
from numba import njit

from ._args import fill_vector, probability, range_pair, seed_arg
from ._per_sample import PerImageOp


@njit(nogil=True)
def erase_box(erase_prob, height, width, scale_lo, scale_hi, log_lo, log_hi):
    """One sample's draw: ``(i, j, h, w)`` of the box to fill, or ``h == -1`` for none.

    torchvision's ``RandomErasing`` rule: applied with probability
    ``erase_prob``; then up to 10 attempts of an area ``H * W * U(scale)``
    and an aspect ``exp(U(log ratio))``, ``h = round(sqrt(area * aspect))``,
    ``w = round(sqrt(area / aspect))`` (half to even), the first with
    ``h < H`` and ``w < W`` accepted and placed at ``i ~ U{0..H-h}``,
    ``j ~ U{0..W-w}``. No box if every attempt fails. Call after
    ``seed_sample``.
    """
    if not np.random.rand() < erase_prob:
        return 0, 0, -1, -1
    area = height * width
    for _ in range(10):
        erase_area = area * np.random.uniform(scale_lo, scale_hi)
        aspect = np.exp(np.random.uniform(log_lo, log_hi))
        h = int(np.rint(np.sqrt(erase_area * aspect)))
        w = int(np.rint(np.sqrt(erase_area / aspect)))
        if h < height and w < width:
            i = np.random.randint(0, height - h + 1)
            j = np.random.randint(0, width - w + 1)
            return i, j, h, w
    return 0, 0, -1, -1


@njit(nogil=True)
def fill_box(image, i, j, h, w, value):
    """``image[i:i+h, j:j+w, c] = value[c]`` for one ``(H, W, C)`` image, in place."""
    channels = image.shape[2]
    for y in range(i, i + h):
        for x in range(j, j + w):
            for c in range(channels):
                image[y, x, c] = value[c]


@njit(nogil=True, inline='always')
def _erasing_step(image, args):
    # args: (erase_prob, scale_lo, scale_hi, log_ratio_lo, log_ratio_hi, fill value)
    i, j, h, w = erase_box(args[0], image.shape[0], image.shape[1], args[1], args[2], args[3],
                           args[4])
    if h > 0 and w > 0:
        fill_box(image, i, j, h, w, args[5])


class RandomErasing(PerImageOp):
    """Fill one random box of each image, with probability ``erase_prob``, with ``mean``.

    torchvision's ``RandomErasing(p=erase_prob, scale, ratio, value=mean)``
    per image, in place: the box is drawn by torchvision's rule
    (:func:`erase_box`), and filled as ``torchvision.transforms.v2.functional.erase``
    fills uint8 images (a fractional value is truncated). Exact: no tolerance.
    FFCV-SSL's own version called its crop sampler with the wrong arguments;
    its argument names and defaults are kept.

    Input and output: ``ndarray[uint8], shape (B, H, W, C)`` (jit mode), the
    same buffer.

    Parameters
    ----------
    erase_prob : float in [0, 1], default 0.5
        Probability that an image gets a box.
    scale : (float, float), default (0.08, 0.4)
        Range of the box's area as a fraction of the image's, in [0, 1].
    ratio : (float, float), default (0.3, 3)
        Range of the box's aspect (height / width), > 0, drawn log-uniformly.
    mean : sequence of C numbers (or one number), default (128, 128, 128)
        Fill colour per channel, in [0, 255].
    seed : int or None
        None follows the Loader's seed; an int gives draws depending only on
        (seed, epoch, sample).

    Raises
    ------
    ValueError
        At construction for a bad argument; when the Loader is built, if the
        step comes after ``ToTensor()``, the input is not uint8 (H, W, C), or
        ``mean`` has neither 1 nor C values.
    """

    image_dtype = np.uint8

    def __init__(self, erase_prob=0.5, scale=(0.08, 0.4), ratio=(0.3, 3), mean=(128, 128, 128),
                 seed=None):
        super().__init__()
        self.erase_prob = probability('RandomErasing', 'erase_prob', erase_prob)
        self.scale = range_pair('RandomErasing', 'scale', scale, low=0, high=1)
        self.ratio = range_pair('RandomErasing', 'ratio', ratio, low=0, low_open=True)
        try:
            self.mean = fill_vector('RandomErasing', mean if isinstance(mean, (tuple, list, np.ndarray))
                                    else (mean,))
        except ValueError:
            raise ValueError(f"RandomErasing: mean must be a number or a sequence of numbers, one "
                             f"per channel, got {mean!r}") from None
        if self.mean.min() < 0 or self.mean.max() > 255:
            raise ValueError(f"RandomErasing: mean values must lie in [0, 255], got {mean!r}")
        self.seed = seed_arg('RandomErasing', seed)
        self._value = None

    def _accept_images(self, shape, dtype):
        if self.mean.size not in (1, shape[2]):
            raise ValueError(f"RandomErasing: mean has {self.mean.size} values but the images have "
                             f"{shape[2]} channels (shape {shape})")
        # torchvision assigns float values into uint8 images: truncation
        self._value = np.broadcast_to(np.trunc(self.mean), (shape[2],)).astype(np.uint8)

    def _image_step(self):
        return _erasing_step, (self.erase_prob, *self.scale, math.log(self.ratio[0]),
                               math.log(self.ratio[1]), self._value)
