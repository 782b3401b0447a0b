"""FFCV-SSL's ``RandomGrayscale`` and ``LabelGrayscale``, with torchvision's semantics.

With probability ``gray_prob`` an image becomes torchvision's
``rgb_to_grayscale(image, num_output_channels=3)`` on uint8: each channel
``trunc(0.2989 r + 0.587 g + 0.114 b)`` in float32 (``_tv_color.py``).
"""
import numpy as np

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import probability, require_images
from ._ssl import LabelColumns, check_seed, draw_applied, flag_label_code
from ._tv_color import to_grayscale


class RandomGrayscale(Operation):
    """torchvision's ``RandomGrayscale(p=gray_prob)``, in place.

    Input and output: ``ndarray[uint8], shape (B, H, W, 3)`` (jit mode), the
    same buffer. Tolerance against ``rgb_to_grayscale(x, 3)``: 0 (asserted,
    measured 0 on the shared photos).

    Parameters
    ----------
    gray_prob : float in [0, 1]
    seed : int or None
        None follows the Loader's seed; an int draws from (seed, epoch,
        sample), as :class:`LabelGrayscale` with that seed.

    Raises
    ------
    ValueError
        At construction for ``gray_prob`` outside [0, 1] or a non-integer
        seed; when the Loader is built for input that is not uint8 ``(H, W, 3)``
        before ``ToTensor()``.
    """

    seed_kind = 'RandomGrayscale'

    def __init__(self, gray_prob=0.2, seed=None):
        super().__init__()
        self.gray_prob = probability(type(self).__name__, 'gray_prob', gray_prob)
        self.seed = check_seed(type(self).__name__, seed)

    def declare_state_and_memory(self, previous_state):
        require_images(type(self).__name__, previous_state, channels=3, dtype=np.uint8)
        return previous_state, None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        prob = self.gray_prob

        def grayscale(images, dst, indices, seed):
            for k in my_range(images.shape[0]):
                seed_sample(seed, indices[k])
                if draw_applied(prob):
                    to_grayscale(images[k])
            return images
        grayscale.is_parallel = True
        grayscale.with_seed = True
        return grayscale


class LabelGrayscale(LabelColumns):
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
        self.gray_prob = probability(type(self).__name__, 'gray_prob', gray_prob)
        self.seed = check_seed(type(self).__name__, seed)

    def _label_code(self, width):
        return flag_label_code(width, self.gray_prob)

