"""RandomTranslate: shift each image by a random offset, filling the uncovered border; LabelTranslate."""
import numpy as np
from numba import njit

from ._args import fill_vector, positive_int, seed_arg
from ._checks import fill_for
from ._per_sample import LabelOp, PerImageOp


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


@njit(nogil=True, inline='always')
def _translate_step(image, args):
    # args: (padding, fill)
    padding = args[0]
    y, x = draw_offset(padding)
    shift_in_place(image, y - padding, x - padding, args[1])


@njit(nogil=True, inline='always')
def _offset_columns(args, out):
    # args: (padding,); FFCV-SSL's columns y, x
    y, x = draw_offset(args[0])
    out[0] = y
    out[1] = x


def _unchanged(images, dst):
    return images


class RandomTranslate(PerImageOp):
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
        self.seed = seed_arg('RandomTranslate', seed)
        self._fill = None

    def _accept_images(self, shape, dtype):
        self._fill = fill_for('RandomTranslate', self.fill, shape, dtype)

    def _image_step(self):
        return _translate_step, (self.padding, self._fill)

    def generate_code(self):
        # padding 0: nothing to draw or move
        return _unchanged if self.padding == 0 else super().generate_code()


class LabelTranslate(LabelOp):
    """Append each sample's :class:`RandomTranslate` window corner ``(y, x)`` to its label row.

    Constructed like the image op: with the same ``padding`` and integer
    ``seed`` it reports exactly the offsets that op drew for each sample
    (same draw, same stream). The columns are FFCV-SSL's: ``y`` then ``x``,
    each in ``0 .. 2 * padding``, the top-left corner of the image's window
    in the padded image, i.e. the shift plus ``padding``: output pixel
    ``(r, c)`` is input pixel ``(r + y - padding, c + x - padding)`` (or fill).
    With ``seed=None`` it draws on its own and matches nothing.

    Input: labels ``ndarray, shape (B,)`` or ``(B, k)`` (jit mode). Output:
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
    columns = 2

    def __init__(self, padding, fill=(0, 0, 0), seed=None):
        super().__init__()
        self.padding = positive_int('LabelTranslate', 'padding', padding, minimum=0)
        self.fill = fill_vector('LabelTranslate', fill)
        self.seed = seed_arg('LabelTranslate', seed)

    def _label_step(self):
        return _offset_columns, (self.padding,)
