"""RandomHorizontalFlip."""
import numpy as np

from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation


class RandomHorizontalFlip(Operation):
    """Mirror each image left-right with probability ``flip_prob``.

    Input and output: ``ndarray[uint8], shape (B, H, W, C)`` (jit mode).

    Parameters
    ----------
    flip_prob : float, 0..1
    """

    def __init__(self, flip_prob=0.5):
        super().__init__()
        self.flip_prob = flip_prob

    def generate_code(self):
        my_range = Compiler.get_iterator()
        flip_prob = self.flip_prob

        def flip(images, dst):
            for i in my_range(images.shape[0]):
                if np.random.rand() < flip_prob:
                    dst[i] = images[i, :, ::-1]
                else:
                    dst[i] = images[i]
            return dst
        flip.is_parallel = True
        return flip

    def declare_state_and_memory(self, previous_state):
        if not previous_state.jit_mode:
            raise ValueError("RandomHorizontalFlip works on numpy images: put it before ToTensor()")
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)
