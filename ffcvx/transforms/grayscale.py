"""FFCV-SSL's ``RandomGrayscale`` and ``LabelGrayscale``, with torchvision's semantics.

With probability ``gray_prob`` an image becomes torchvision's
``rgb_to_grayscale(image, num_output_channels=3)`` on uint8: each channel
``trunc(0.2989 r + 0.587 g + 0.114 b)`` in float32 (``_tv_color.py``).
"""
import numpy as np
from numba import njit

from ._args import probability, seed_arg
from ._per_sample import LabelOp, PerImageOp
from ._ssl import draw_applied, flag_column
from ._tv_color import to_grayscale


@njit(nogil=True, inline='always')
def _grayscale_step(image, args):
    # args: (gray_prob,)
    if draw_applied(args[0]):
        to_grayscale(image)


def _gray_arguments(op, gray_prob, seed):
    # the image op's and the label op's, alike
    name = type(op).__name__
    op.gray_prob = probability(name, 'gray_prob', gray_prob)
    op.seed = seed_arg(name, seed)


class RandomGrayscale(PerImageOp):
    """torchvision's ``RandomGrayscale(p=gray_prob)``, in place.

    Input and output: ``ndarray[uint8], shape (B, H, W, 3)`` (jit mode), the
    same buffer. Tolerance against ``rgb_to_grayscale(x, 3)``: 0 (asserted,
    measured 0 on the shared photos).

    Parameters
    ----------
    gray_prob : float in [0, 1]
    seed : int or None
        With an int, each sample's draw is a function of (seed, epoch,
        sample) only: the one :class:`LabelGrayscale` with that seed reports.
        None takes the Loader's seed.

    Raises
    ------
    ValueError
        At construction for ``gray_prob`` outside [0, 1] or a non-integer
        seed; when the Loader is built for input that is not uint8 ``(H, W, 3)``
        before ``ToTensor()``.
    """

    seed_kind = 'RandomGrayscale'
    image_channels, image_dtype = 3, np.uint8

    def __init__(self, gray_prob=0.2, seed=None):
        super().__init__()
        _gray_arguments(self, gray_prob, seed)

    def _image_step(self):
        return _grayscale_step, (self.gray_prob,)


class LabelGrayscale(LabelOp):
    """Append 1.0 where :class:`RandomGrayscale` with the same arguments and seed applied, else 0.0.

    Input ``(B,)``, ``(B, 1)`` or ``(B, k)`` labels; output
    ``ndarray[float32], shape (B, k + 1)``. (FFCV-SSL's own label op wrote
    the flag inverted, 0.0 where it applied, from a different draw.)

    Parameters
    ----------
    gray_prob, seed
        As for :class:`RandomGrayscale`.
    """

    seed_kind = RandomGrayscale.seed_kind
    columns = 1

    def __init__(self, gray_prob=0.2, seed=None):
        super().__init__()
        _gray_arguments(self, gray_prob, seed)

    def _label_step(self):
        return flag_column, (self.gray_prob,)
