"""Cutout: fill one random square of each image."""
import numpy as np
from numba import njit

from ._args import fill_vector, positive_int
from ._checks import fill_for
from ._per_sample import PerImageOp


@njit(nogil=True, inline='always')
def _cutout_step(image, args):
    # args: (crop_size, fill); the square's corner is drawn wholly inside the image
    size, fill = args
    top = np.random.randint(0, image.shape[0] - size + 1)
    left = np.random.randint(0, image.shape[1] - size + 1)
    for y in range(top, top + size):
        for x in range(left, left + size):
            for c in range(image.shape[2]):
                image[y, x, c] = fill[c]


class Cutout(PerImageOp):
    """Fill one ``crop_size x crop_size`` square of each image with ``fill``, in place.

    The square's top-left corner ``(y, x)`` is drawn uniformly per image from
    ``0 .. H - crop_size`` and ``0 .. W - crop_size``, so the square always
    lies wholly inside the image (FFCV 1.0's placement; some other Cutout
    implementations centre the square anywhere and clip it).

    Input and output: ``ndarray, shape (B, H, W, C)`` (jit mode, any numeric
    dtype, typically uint8), the same buffer.

    Parameters
    ----------
    crop_size : int, >= 1
        Side of the square, pixels; at most ``min(H, W)``.
    fill : sequence of C numbers (or of equal numbers, any length), default (0, 0, 0)
        Colour of the square, in pixel units of the images' dtype.

    Raises
    ------
    ValueError
        At construction, if ``crop_size`` is not a positive integer or
        ``fill`` is not a sequence of numbers; when the Loader is built, if
        the step comes after ``ToTensor()``, the input is not (H, W, C),
        ``crop_size`` exceeds the image's height or width, or ``fill`` has the
        wrong length or values the dtype cannot hold.
    """

    def __init__(self, crop_size, fill=(0, 0, 0)):
        super().__init__()
        self.crop_size = positive_int('Cutout', 'crop_size', crop_size)
        self.fill = fill_vector('Cutout', fill)
        self._fill = None

    def _accept_images(self, shape, dtype):
        if self.crop_size > min(shape[0], shape[1]):
            raise ValueError(f"Cutout: crop_size {self.crop_size} does not fit in images of "
                             f"{shape[0]}x{shape[1]} pixels")
        self._fill = fill_for('Cutout', self.fill, shape, dtype)

    def _image_step(self):
        return _cutout_step, (self.crop_size, self._fill)
