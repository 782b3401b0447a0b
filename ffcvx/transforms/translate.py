"""RandomTranslate: shift each image by a random offset, filling the uncovered border."""
import numpy as np
from numba import njit

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import fill_for, fill_vector, positive_int, require_images


@njit(nogil=True)
def shift_in_place(image, dy, dx, fill):
    """Set ``image[y, x] = image[y + dy, x + dx]``, or ``fill`` where that is outside.

    Rows and columns are visited in the order that reads every source pixel
    before it is overwritten (as ``memmove`` does), so no copy is needed.

    Parameters
    ----------
    image : ndarray, shape (H, W, C)
        Modified in place.
    dy, dx : int
        Shift in pixels; any sign.
    fill : ndarray, shape (C,)
        Value of the pixels whose source lies outside the image.
    """
    height, width, channels = image.shape
    for t in range(height):
        y = t if dy >= 0 else height - 1 - t
        ys = y + dy
        if ys < 0 or ys >= height:
            for x in range(width):
                for c in range(channels):
                    image[y, x, c] = fill[c]
            continue
        for u in range(width):
            x = u if dx >= 0 else width - 1 - u
            xs = x + dx
            if xs < 0 or xs >= width:
                for c in range(channels):
                    image[y, x, c] = fill[c]
            else:
                for c in range(channels):
                    image[y, x, c] = image[ys, xs, c]


class RandomTranslate(Operation):
    """Translate each image by a random offset of up to ``padding`` pixels per axis.

    The result equals padding the image by ``padding`` pixels of ``fill`` on
    every side and taking the ``H x W`` window whose top-left corner is at
    ``(y, x)`` of the padded image, with ``y`` and ``x`` drawn independently
    and uniformly from ``0 .. 2 * padding`` for each image (so ``padding`` is
    the unshifted window). It is computed in place, without a padded buffer.

    Input and output: ``ndarray, shape (B, H, W, C)`` (jit mode, any numeric
    dtype, typically uint8), the same buffer.

    Parameters
    ----------
    padding : int, >= 0
        Largest shift in pixels; 0 leaves images unchanged.
    fill : sequence of C numbers (or of equal numbers, any length), default (0, 0, 0)
        Colour of the uncovered border, in pixel units of the images' dtype.

    Raises
    ------
    ValueError
        At construction, if ``padding`` is not a non-negative integer or
        ``fill`` is not a sequence of numbers; when the Loader is built, if
        the step comes after ``ToTensor()``, the input is not (H, W, C), or
        ``fill`` has the wrong length or values the dtype cannot hold.
    """

    def __init__(self, padding, fill=(0, 0, 0)):
        super().__init__()
        self.padding = positive_int('RandomTranslate', 'padding', padding, minimum=0)
        self.fill = fill_vector('RandomTranslate', fill)
        self._fill = None

    def declare_state_and_memory(self, previous_state):
        shape = require_images('RandomTranslate', previous_state)
        self._fill = fill_for('RandomTranslate', self.fill, shape, previous_state.dtype)
        return previous_state, None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        padding = self.padding
        fill = self._fill
        if padding == 0:
            def unchanged(images, dst):
                return images
            return unchanged

        def translate(images, dst, indices, seed):
            for k in my_range(images.shape[0]):
                seed_sample(seed, indices[k])
                y = np.random.randint(0, 2 * padding + 1)
                x = np.random.randint(0, 2 * padding + 1)
                shift_in_place(images[k], y - padding, x - padding, fill)
            return images
        translate.is_parallel = True
        translate.with_seed = True
        return translate
