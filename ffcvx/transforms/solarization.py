"""FFCV-SSL's ``RandomSolarization`` and ``LabelSolarization``, with torchvision's semantics.

With probability ``solarization_prob`` every value ``>= threshold`` of an
image becomes ``255 - x`` (torchvision's ``solarize`` on uint8).
"""
import math
import numbers

import numpy as np

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import probability, require_images
from ._ssl import LabelColumns, check_seed, draw_applied, flag_label_code
from ._tv_color import solarize


def _threshold(op_name, threshold):
    if (isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real)
            or not -math.inf < threshold <= 255):
        raise ValueError(f"{op_name}: threshold must be a number <= 255 (uint8 images), "
                         f"got {threshold!r}")
    return float(threshold)


class RandomSolarization(Operation):
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
        At construction for arguments outside those ranges; when the Loader
        is built for input that is not uint8 ``(H, W, 3)`` before ``ToTensor()``.
    """

    seed_kind = 'RandomSolarization'

    def __init__(self, solarization_prob=0.5, threshold=128, seed=None):
        super().__init__()
        name = type(self).__name__
        self.solarization_prob = probability(name, 'solarization_prob', solarization_prob)
        self.threshold = _threshold(name, threshold)
        self.seed = check_seed(name, seed)

    def declare_state_and_memory(self, previous_state):
        require_images(type(self).__name__, previous_state, channels=3, dtype=np.uint8)
        return previous_state, None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        prob = self.solarization_prob
        # x >= t for uint8 x is x >= ceil(t); below 0 every value qualifies
        threshold = max(0, math.ceil(self.threshold))

        def solarization(images, dst, indices, seed):
            for k in my_range(images.shape[0]):
                seed_sample(seed, indices[k])
                if draw_applied(prob):
                    solarize(images[k], threshold)
            return images
        solarization.is_parallel = True
        solarization.with_seed = True
        return solarization


class LabelSolarization(LabelColumns):
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
        name = type(self).__name__
        self.solarization_prob = probability(name, 'solarization_prob', solarization_prob)
        self.threshold = _threshold(name, threshold)
        self.seed = check_seed(name, seed)

    def _label_code(self, width):
        return flag_label_code(width, self.solarization_prob)
