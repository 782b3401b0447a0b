"""RandomResizedCrop on images already decoded (torchvision's sampler, ffcvx's resize kernel)."""
from math import log

import numba
import numpy as np

from ..decoders.kernels import get_random_crop, resize_functions
from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import positive_int, require_images


def _range(op_name, name, value):
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{op_name}: {name} must be a pair (low, high) of numbers, got {value!r}") from None
    if not 0 < lo <= hi:
        raise ValueError(f"{op_name}: {name} must satisfy 0 < low <= high, got {value!r}")
    return lo, hi


class RandomResizedCrop(Operation):
    """Crop a random box of each decoded image and resize it to ``size x size``.

    The box is drawn by the same sampler as
    :class:`~ffcvx.fields.decoders.RandomResizedCropRGBImageDecoder`
    (torchvision's: up to 10 tries of area ``U(scale) * H * W`` and aspect
    ratio ``exp(U(log ratio))``, else a centred box clamped to the ratio
    range) and resampled with the same antialiased kernel
    (``ffcvx_resize_rgb``, or ``ffcvx_resize_gray`` for one channel). Prefer that decoder where possible: it decodes
    only the box. This step is for images that are already pixels (e.g.
    after ``SimpleRGBImageDecoder`` and other transforms).

    Input: ``ndarray[uint8], shape (B, H, W, C)``, C = 3 or 1 (jit mode).
    Output: ``ndarray[uint8], shape (B, size, size, C)``, a new buffer.

    Parameters
    ----------
    scale : (float, float)
        Range of the box's area as a fraction of the image's, ``0 < low <= high``.
    ratio : (float, float)
        Range of the box's aspect ratio (width / height), ``0 < low <= high``.
    size : int
        Side of the square output, pixels.

    Raises
    ------
    ValueError
        At construction, for a malformed ``scale``, ``ratio`` or ``size``;
        when the Loader is built, if the step comes after ``ToTensor()`` or
        the input is not uint8 ``(H, W, 3)`` or ``(H, W, 1)``.
    RuntimeError
        In the training loop, if the resize kernel reports a failure (which
        would be a bug: sizes are checked beforehand).
    """

    def __init__(self, scale, ratio, size):
        super().__init__()
        self.scale = _range('RandomResizedCrop', 'scale', scale)
        self.ratio = _range('RandomResizedCrop', 'ratio', ratio)
        self.size = positive_int('RandomResizedCrop', 'size', size)
        self._scratch_bytes = None
        self._channels = 3

    def _check(self, previous_state):
        height, width, channels = require_images('RandomResizedCrop', previous_state, dtype=np.uint8)
        if channels not in (1, 3):
            raise ValueError(f"RandomResizedCrop needs 3- or 1-channel images, got shape "
                             f"{previous_state.shape}")
        self._channels = channels
        _, _, scratch_bytes = resize_functions(channels)
        # The scratch need grows with the source size: the whole image bounds every box.
        needed = int(scratch_bytes(height, width, self.size, self.size))
        if needed < 0:
            raise ValueError(f"RandomResizedCrop: cannot resize {height}x{width} images to "
                             f"{self.size}x{self.size}")
        self._scratch_bytes = needed

    def declare_shared_memory(self, previous_state):
        self._check(previous_state)
        return AllocationQuery((numba.config.NUMBA_NUM_THREADS, self._scratch_bytes), np.dtype(np.uint8))

    def declare_state_and_memory(self, previous_state):
        self._check(previous_state)
        shape = (self.size, self.size, self._channels)
        return (previous_state.replace(shape=shape),
                (AllocationQuery(shape, np.dtype(np.uint8)), AllocationQuery((), np.dtype(np.int32))))

    def generate_code(self):
        my_range = Compiler.get_iterator()
        thread_id = Compiler.thread_id()
        channels = self._channels
        resize, _, _ = resize_functions(channels)
        scale_lo, scale_hi = self.scale
        log_lo, log_hi = log(self.ratio[0]), log(self.ratio[1])
        size = self.size
        scratch_len = self._scratch_bytes

        def random_resized_crop(images, destination, indices, seed, shared):
            out, status = destination
            height, width = images.shape[1], images.shape[2]
            row_stride = images.strides[1]
            packed = images.strides[2] == channels and images.strides[3] == 1
            for k in my_range(images.shape[0]):
                if not packed:
                    status[k] = -3
                    continue
                seed_sample(seed, indices[k])
                i, j, h, w = get_random_crop(height, width, scale_lo, scale_hi, log_lo, log_hi)
                src = images.ctypes.data + k * images.strides[0] + i * row_stride + j * channels
                scratch = shared[thread_id()]
                status[k] = resize(src, h, w, row_stride, out[k].ctypes.data, size, size,
                                   scratch.ctypes.data, scratch_len)
            return out
        random_resized_crop.is_parallel = True
        random_resized_crop.with_seed = True
        return random_resized_crop

    def finish_batch(self, result, destination, batch_indices):
        status = destination[1]
        bad = np.flatnonzero(status)
        if bad.size:
            k = int(bad[0])
            raise RuntimeError(f"RandomResizedCrop: the resize kernel failed with status "
                               f"{int(status[k])} on sample {int(batch_indices[k])}")
        return result
