"""FFCV-SSL's ``RandomSolarization`` and ``LabelSolarization``, with torchvision's semantics.

With probability ``solarization_prob`` every value ``>= threshold`` of an
image becomes ``255 - x`` (torchvision's ``solarize`` on uint8).
"""
import math

import numpy as np
from numba import njit

from ._args import number, probability, seed_arg
from ._per_sample import LabelOp, PerImageOp
from ._ssl import draw_applied, flag_column
from ._tv_color import solarize


@njit(nogil=True, inline='always')
def _solarization_step(image, args):
    # args: (solarization_prob, integer threshold)
    if draw_applied(args[0]):
        solarize(image, args[1])


def _solarization_arguments(op, solarization_prob, threshold, seed):
    # the image op's and the label op's, alike
    name = type(op).__name__
    op.solarization_prob = probability(name, 'solarization_prob', solarization_prob)
    op.threshold = number(name, 'threshold', threshold, high=255, unit='uint8 images')
    op.seed = seed_arg(name, seed)


class RandomSolarization(PerImageOp):
    """torchvision's ``RandomSolarize(threshold, p=solarization_prob)``, in place.

    Input and output: ``ndarray[uint8], shape (B, H, W, 3)`` (jit mode), the
    same buffer. Tolerance against ``solarize``: 0 (asserted, measured 0).

    Parameters
    ----------
    solarization_prob : float in [0, 1]
    threshold : float <= 255
        Values ``>= threshold`` are inverted (a fractional threshold acts as
        its ceiling).
    seed : int or None
        None follows the Loader's seed; an int draws from (seed, epoch,
        sample), as :class:`LabelSolarization` with that seed.

    Raises
    ------
    ValueError
        At construction, for a probability outside [0, 1], a threshold
        above 255 or a seed that is not an integer >= 0; when the Loader is
        built, for input other than uint8 ``(H, W, 3)`` images in jit mode.
    """

    seed_kind = 'RandomSolarization'
    image_channels, image_dtype = 3, np.uint8

    def __init__(self, solarization_prob=0.5, threshold=128, seed=None):
        super().__init__()
        _solarization_arguments(self, solarization_prob, threshold, seed)

    def _image_step(self):
        # x >= t for uint8 x is x >= ceil(t); below 0 every value qualifies
        return _solarization_step, (self.solarization_prob, max(0, math.ceil(self.threshold)))


class LabelSolarization(LabelOp):
    """Append 1.0 where :class:`RandomSolarization` with the same arguments and seed applied, else 0.0.

    Input ``(B,)``, ``(B, 1)`` or ``(B, k)`` labels; output
    ``ndarray[float32], shape (B, k + 1)`` (FFCV-SSL's column).

    Parameters
    ----------
    solarization_prob, threshold, seed
        As for :class:`RandomSolarization`.
    """

    seed_kind = RandomSolarization.seed_kind
    columns = 1

    def __init__(self, solarization_prob=0.5, threshold=128, seed=None):
        super().__init__()
        _solarization_arguments(self, solarization_prob, threshold, seed)

    def _label_step(self):
        return flag_column, (self.solarization_prob,)
