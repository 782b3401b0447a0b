"""Cutout: fill one random square of each image."""
import numpy as np

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import fill_for, fill_vector, positive_int, require_images


class Cutout(Operation):
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

    def declare_state_and_memory(self, previous_state):
        shape = require_images('Cutout', previous_state)
        if self.crop_size > min(shape[0], shape[1]):
            raise ValueError(f"Cutout: crop_size {self.crop_size} does not fit in images of "
                             f"{shape[0]}x{shape[1]} pixels")
        self._fill = fill_for('Cutout', self.fill, shape, previous_state.dtype)
        return previous_state, None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        size = self.crop_size
        fill = self._fill

        def cutout(images, dst, indices, seed):
            height, width, channels = images.shape[1], images.shape[2], images.shape[3]
            for k in my_range(images.shape[0]):
                seed_sample(seed, indices[k])
                top = np.random.randint(0, height - size + 1)
                left = np.random.randint(0, width - size + 1)
                image = images[k]
                for y in range(top, top + size):
                    for x in range(left, left + size):
                        for c in range(channels):
                            image[y, x, c] = fill[c]
            return images
        cutout.is_parallel = True
        cutout.with_seed = True
        return cutout
