"""RandomHorizontalFlip and LabelRandomHorizontalFlip (FFCV-SSL's label op)."""
from numba import njit

from ._args import probability, seed_arg
from ._per_sample import LabelOp, PerImageOp
from ._ssl import draw_applied, flag_column


@njit(nogil=True)
def mirror_in_place(image):
    """Mirror ``image`` (H, W, C) left-right in place: ``image[:, x] <-> image[:, W-1-x]``."""
    width, channels = image.shape[1], image.shape[2]
    for y in range(image.shape[0]):
        row = image[y]
        for x in range(width // 2):
            mirror = width - 1 - x
            for c in range(channels):
                value = row[x, c]
                row[x, c] = row[mirror, c]
                row[mirror, c] = value


@njit(nogil=True, inline='always')
def _flip_step(image, args):
    # args: (flip_prob,)
    if draw_applied(args[0]):
        mirror_in_place(image)


class RandomHorizontalFlip(PerImageOp):
    """Mirror each image left-right with probability ``flip_prob``, in place.

    A flipped image equals torchvision's ``horizontal_flip`` exactly. Input
    and output: ``ndarray, shape (B, H, W, C)`` (jit mode), the same buffer
    (no copy of the batch, unlike FFCV). Right after a crop decoder an
    unseeded flip is fused into the decoder's resize and costs nothing; the
    decoder then draws it from its own stream.

    Parameters
    ----------
    flip_prob : float, 0..1
    seed : int >= 0, optional
        FFCV-SSL's argument: each sample's draw depends on (seed, epoch,
        sample) only, the same as :class:`LabelRandomHorizontalFlip` with
        this seed draws. Such a flip is never fused (it must draw from its
        own stream). None follows the Loader's seed.

    Raises
    ------
    ValueError
        At construction, for ``flip_prob`` outside [0, 1] or a seed that is
        not a non-negative integer; when the Loader is built, after ``ToTensor()``.
    """

    #: Shared with the label op (``ffcvx.pipeline.seeds``), so subclasses keep matching it.
    seed_kind = 'RandomHorizontalFlip'

    def __init__(self, flip_prob=0.5, seed=None):
        super().__init__()
        self.flip_prob = probability('RandomHorizontalFlip', 'flip_prob', flip_prob)
        self.seed = seed_arg('RandomHorizontalFlip', seed)

    @property
    def horizontal_flip_probability(self):
        """What a crop decoder needs to do this flip itself (pipeline fusion).

        None (not fusable) for a flip with its own seed: a fused flip is
        drawn from the decoder's stream, which its label op cannot follow.
        """
        return self.flip_prob if self.seed is None else None

    def _image_step(self):
        return _flip_step, (self.flip_prob,)

    def declare_state_and_memory(self, previous_state):
        # Any (H, W, C) or other per-sample array of jit mode (FFCV's flip checks no more).
        if not previous_state.jit_mode:
            raise ValueError("RandomHorizontalFlip works on numpy images: put it before ToTensor()")
        return previous_state, None


class LabelRandomHorizontalFlip(LabelOp):
    """Append 1.0 to each label row whose image :class:`RandomHorizontalFlip` flipped, else 0.0.

    Constructed like the image op: with the same ``flip_prob`` and the same
    integer ``seed`` it reports exactly the flips that op made, sample by
    sample (it calls the same draw from the same stream). With ``seed=None``
    it draws on its own and matches nothing.

    Input: labels ``ndarray, shape (B,)`` or ``(B, k)`` (jit mode, e.g. ``IntDecoder()``'s
    ``(B, 1)`` int64, or another label op's output). Output:
    ``ndarray[float32], shape (B, k + 1)``: the input columns, then the flag.

    Parameters
    ----------
    flip_prob : float, 0..1
    seed : int >= 0, optional

    Raises
    ------
    ValueError
        As :class:`RandomHorizontalFlip`; when the Loader is built, for input
        that is not one row of numbers per sample.
    """

    seed_kind = 'RandomHorizontalFlip'
    columns = 1

    def __init__(self, flip_prob=0.5, seed=None):
        super().__init__()
        self.flip_prob = probability('LabelRandomHorizontalFlip', 'flip_prob', flip_prob)
        self.seed = seed_arg('LabelRandomHorizontalFlip', seed)

    def _label_step(self):
        return flag_column, (self.flip_prob,)
