"""``RandomResizedCrop``'s transform role: crop decoded images (FFCV 1.0's transform).

``RandomResizedCrop`` placed after step 0 of a pipeline runs as this
Operation (spec/pipeline.md PIP-011): it reads every parameter from the
``RandomResizedCrop`` it plays, when it is planned, so a change of that
object between epochs takes effect.
"""
import numba
import numpy as np

from ..decoders.kernels import resize_functions
from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ._checks import require_images
from ._crop_boxes import random_box_drawer


class RandomResizedCropOnPixels(Operation):
    """Crops the decoded ``(B, H, W, C)`` uint8 images (C = 3 or 1) as its crop would decode them.

    The same box (torchvision's sampler, the crop's seeds) and resize kernel
    as the decoder role. Output ``ndarray[uint8], shape (B, output_size[0],
    output_size[1], C)``.

    Parameters
    ----------
    crop : RandomResizedCrop
        The Operation the user placed; its ``output_size``, ``scale``,
        ``ratio``, ``seed`` and ``second_seed`` are this step's.

    Raises
    ------
    ValueError
        When planned on images that are not uint8 with 1 or 3 channels (e.g.
        after ``ToTensor()``).
    RuntimeError
        If the resize kernel fails (a bug: sizes are checked).
    """

    seed_kind = 'RandomResizedCrop'

    def __init__(self, crop):
        super().__init__()
        self.crop = crop
        self._scratch = 0
        self._channels = 3

    @property
    def seed(self):
        return self.crop.seed

    @property
    def seed_values(self):
        return self.crop.seed_values

    def _plan(self, previous_state):
        height, width, channels = require_images('RandomResizedCrop', previous_state, dtype=np.uint8)
        if channels not in (1, 3):
            raise ValueError(f"RandomResizedCrop needs 3- or 1-channel images, got shape "
                             f"{previous_state.shape}")
        _, _, scratch_bytes = resize_functions(channels)
        # The whole image bounds every box, so its need bounds the scratch.
        needed = int(scratch_bytes(height, width, *self.crop.output_size))
        if needed < 0:
            raise ValueError(f"RandomResizedCrop: cannot resize {height}x{width} images to "
                             f"{self.crop.output_size[0]}x{self.crop.output_size[1]}")
        self._scratch, self._channels = needed, channels

    def declare_shared_memory(self, previous_state):
        self._plan(previous_state)
        return AllocationQuery((numba.config.NUMBA_NUM_THREADS, self._scratch), np.dtype(np.uint8))

    def declare_state_and_memory(self, previous_state):
        self._plan(previous_state)
        shape = (*self.crop.output_size, self._channels)
        return (previous_state.replace(shape=shape),
                (AllocationQuery(shape, np.dtype(np.uint8)), AllocationQuery((), np.dtype(np.int32))))

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        status = destination[1]
        bad = np.flatnonzero(status)
        if bad.size:
            k = int(bad[0])
            raise RuntimeError(f"RandomResizedCrop: the resize kernel failed with status "
                               f"{int(status[k])} on sample {int(batch_indices[k])}")
        return result

    def generate_code(self):
        my_range = Compiler.get_iterator()
        thread_id = Compiler.thread_id()
        channels = self._channels
        resize, _, _ = resize_functions(channels)
        crop = self.crop
        draw_box = random_box_drawer(crop.scale, crop.ratio, crop.second_seed is not None)
        out_h, out_w = crop.output_size
        scratch_len = self._scratch

        def random_resized_crop(images, destination, indices, seed, shared):
            out, status = destination
            height, width = images.shape[1], images.shape[2]
            row_stride = images.strides[1]
            packed = images.strides[2] == channels and images.strides[3] == 1
            for k in my_range(images.shape[0]):
                if not packed:
                    status[k] = -3
                    continue
                i, j, h, w = draw_box(seed, indices[k], height, width)
                src = images.ctypes.data + k * images.strides[0] + i * row_stride + j * channels
                scratch = shared[thread_id()]
                status[k] = resize(src, h, w, row_stride, out[k].ctypes.data, out_h, out_w,
                                   scratch.ctypes.data, scratch_len)
            return out
        random_resized_crop.is_parallel = True
        random_resized_crop.with_seed = True
        return random_resized_crop

    def __repr__(self):
        return f"{self.crop!r} (as a transform)"
