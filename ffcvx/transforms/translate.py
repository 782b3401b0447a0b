"""RandomTranslate: shift each image by a random offset, filling the uncovered border; LabelTranslate."""
import numpy as np
from numba import njit

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import fill_for, fill_vector, positive_int, require_images, require_numpy
from ._seeded import append_columns, optional_seed


@njit(nogil=True)
def draw_offset(padding):
    """One sample's window corner ``(y, x)``, each uniform in ``0 .. 2 * padding``.

    Two draws from this thread's generator (``y`` first), after
    ``seed_sample``; the shift is ``(y - padding, x - padding)``. Jitted and
    shared by :class:`RandomTranslate` and :class:`LabelTranslate`, so one
    seed gives both the same offsets (plain-Python steps included).
    """
    y = np.random.randint(0, 2 * padding + 1)
    x = np.random.randint(0, 2 * padding + 1)
    return y, x


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
        FFCV 1.0's default; FFCV-SSL's is (128, 128, 128).
    seed : int >= 0, optional
        FFCV-SSL's argument: each sample's offset depends on (seed, epoch,
        sample) only, the same as :class:`LabelTranslate` with this seed
        reports. None follows the Loader's seed.

    Raises
    ------
    ValueError
        At construction, if ``padding`` or ``seed`` is not a non-negative
        integer or ``fill`` is not a sequence of numbers; when the Loader is built, if
        the step comes after ``ToTensor()``, the input is not (H, W, C), or
        ``fill`` has the wrong length or values the dtype cannot hold.
    """

    #: Shared with the label op (``ffcvx.pipeline.seeds``), so subclasses keep matching it.
    seed_kind = 'RandomTranslate'

    def __init__(self, padding, fill=(0, 0, 0), seed=None):
        super().__init__()
        self.padding = positive_int('RandomTranslate', 'padding', padding, minimum=0)
        self.fill = fill_vector('RandomTranslate', fill)
        self.seed = optional_seed('RandomTranslate', seed)
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
                y, x = draw_offset(padding)
                shift_in_place(images[k], y - padding, x - padding, fill)
            return images
        translate.is_parallel = True
        translate.with_seed = True
        return translate


class LabelTranslate(Operation):
    """Append each sample's :class:`RandomTranslate` window corner ``(y, x)`` to its label row.

    Constructed like the image op: with the same ``padding`` and integer
    ``seed`` it reports exactly the offsets that op drew for each sample
    (same draw, same stream). The columns are FFCV-SSL's: ``y`` then ``x``,
    each in ``0 .. 2 * padding``, the top-left corner of the image's window
    in the padded image, i.e. the shift plus ``padding``: output pixel
    ``(r, c)`` is input pixel ``(r + y - padding, c + x - padding)`` (or fill).
    With ``seed=None`` it draws on its own and matches nothing.

    Input: labels ``ndarray, shape (B, k)`` (jit mode). Output:
    ``ndarray[float32], shape (B, k + 2)``: the input columns, then ``y, x``.

    Parameters
    ----------
    padding : int, >= 0
    fill : sequence of numbers, default (0, 0, 0)
        The image op's argument, accepted (and checked) so that both take
        the same arguments; offsets do not depend on it.
    seed : int >= 0, optional

    Raises
    ------
    ValueError
        As :class:`RandomTranslate`; when the Loader is built, for input that
        is not one row of numbers per sample.
    """

    seed_kind = 'RandomTranslate'

    def __init__(self, padding, fill=(0, 0, 0), seed=None):
        super().__init__()
        self.padding = positive_int('LabelTranslate', 'padding', padding, minimum=0)
        self.fill = fill_vector('LabelTranslate', fill)
        self.seed = optional_seed('LabelTranslate', seed)

    def declare_state_and_memory(self, previous_state):
        require_numpy('LabelTranslate', previous_state)
        return append_columns('LabelTranslate', previous_state, 2)

    def generate_code(self):
        my_range = Compiler.get_iterator()
        padding = self.padding

        def label(labels, dst, indices, seed):
            k = labels.shape[1]
            for i in my_range(labels.shape[0]):
                for c in range(k):
                    dst[i, c] = labels[i, c]
                seed_sample(seed, indices[i])
                y, x = draw_offset(padding)
                dst[i, k] = y
                dst[i, k + 1] = x
            return dst
        label.is_parallel = True
        label.with_seed = True
        return label
