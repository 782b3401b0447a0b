"""RandomHorizontalFlip and LabelRandomHorizontalFlip (FFCV-SSL's label op)."""
from numba import njit

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import probability, require_numpy
from ._seeded import append_columns, optional_seed
from ._ssl import draw_applied


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


class RandomHorizontalFlip(Operation):
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
        self.seed = optional_seed('RandomHorizontalFlip', seed)

    @property
    def horizontal_flip_probability(self):
        """What a crop decoder needs to do this flip itself (pipeline fusion).

        None (not fusable) for a flip with its own seed: a fused flip is
        drawn from the decoder's stream, which its label op cannot follow.
        """
        return self.flip_prob if self.seed is None else None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        flip_prob = self.flip_prob

        def flip(images, dst, indices, seed):
            for i in my_range(images.shape[0]):
                seed_sample(seed, indices[i])
                if draw_applied(flip_prob):
                    mirror_in_place(images[i])
            return images
        flip.is_parallel = True
        flip.with_seed = True
        return flip

    def declare_state_and_memory(self, previous_state):
        if not previous_state.jit_mode:
            raise ValueError("RandomHorizontalFlip works on numpy images: put it before ToTensor()")
        return previous_state, None


class LabelRandomHorizontalFlip(Operation):
    """Append 1.0 to each label row whose image :class:`RandomHorizontalFlip` flipped, else 0.0.

    Constructed like the image op: with the same ``flip_prob`` and the same
    integer ``seed`` it reports exactly the flips that op made, sample by
    sample (it calls the same draw from the same stream). With ``seed=None``
    it draws on its own and matches nothing.

    Input: labels ``ndarray, shape (B, k)`` (jit mode, e.g. ``IntDecoder()``'s
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

    def __init__(self, flip_prob=0.5, seed=None):
        super().__init__()
        self.flip_prob = probability('LabelRandomHorizontalFlip', 'flip_prob', flip_prob)
        self.seed = optional_seed('LabelRandomHorizontalFlip', seed)

    def declare_state_and_memory(self, previous_state):
        require_numpy('LabelRandomHorizontalFlip', previous_state)
        return append_columns('LabelRandomHorizontalFlip', previous_state, 1)

    def generate_code(self):
        my_range = Compiler.get_iterator()
        flip_prob = self.flip_prob

        def label(labels, dst, indices, seed):
            k = labels.shape[1]
            for i in my_range(labels.shape[0]):
                for c in range(k):
                    dst[i, c] = labels[i, c]
                seed_sample(seed, indices[i])
                dst[i, k] = 1.0 if draw_applied(flip_prob) else 0.0
            return dst
        label.is_parallel = True
        label.with_seed = True
        return label
