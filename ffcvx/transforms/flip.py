"""RandomHorizontalFlip."""
import numpy as np

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample


class RandomHorizontalFlip(Operation):
    """Mirror each image left-right with probability ``flip_prob``, in place.

    Input and output: ``ndarray[uint8], shape (B, H, W, C)`` (jit mode), the
    same buffer: images that are not flipped cost nothing, flipped ones swap
    pixels within each row (no copy of the batch, unlike FFCV). Right after
    a crop decoder it is fused into the decoder's resize and costs nothing.

    Parameters
    ----------
    flip_prob : float, 0..1
    """

    def __init__(self, flip_prob=0.5):
        super().__init__()
        self.flip_prob = flip_prob

    @property
    def horizontal_flip_probability(self):
        """What a crop decoder needs to do this flip itself (pipeline fusion)."""
        return self.flip_prob

    def generate_code(self):
        my_range = Compiler.get_iterator()
        flip_prob = self.flip_prob

        def flip(images, dst, indices, seed):
            width = images.shape[2]
            channels = images.shape[3]
            for i in my_range(images.shape[0]):
                seed_sample(seed, indices[i])
                if np.random.rand() < flip_prob:
                    image = images[i]
                    for y in range(image.shape[0]):
                        row = image[y]
                        for x in range(width // 2):
                            mirror = width - 1 - x
                            for c in range(channels):
                                value = row[x, c]
                                row[x, c] = row[mirror, c]
                                row[mirror, c] = value
            return images
        flip.is_parallel = True
        flip.with_seed = True
        return flip

    def declare_state_and_memory(self, previous_state):
        if not previous_state.jit_mode:
            raise ValueError("RandomHorizontalFlip works on numpy images: put it before ToTensor()")
        return previous_state, None
