"""NormalizeImage: ``(pixel - mean) / std`` per channel."""
import numpy as np
import torch

from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation


class NormalizeImage(Operation):
    """Normalise uint8 images per channel: ``(x - mean[c]) / std[c]``.

    Before ``ToTensor`` (jit mode) it maps each pixel through a 256x3 lookup
    table on the CPU threads; input ``ndarray[uint8] (B, H, W, C)``, output
    ``(B, H, W, C)`` of ``type``. float16 is produced as its int16 bit pattern
    (Numba has no float16); ``ToTorchImage`` views it back as float16.
    After ``ToTensor`` it runs as torch ops on the tensor's device; input
    (B, C, H, W) or (B, H, W, C) uint8.

    Parameters
    ----------
    mean, std : ndarray, shape (C,)
        In pixel units (0..255).
    type : numpy dtype
        ``np.float32`` or ``np.float16``.
    """

    def __init__(self, mean, std, type):
        super().__init__()
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        self.type = np.dtype(type)
        if self.type not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise ValueError(f"NormalizeImage supports float32 and float16, got {self.type}")
        values = np.arange(256, dtype=np.float64)[:, None]
        table = ((values - self.mean[None, :]) / self.std[None, :]).astype(self.type)
        self.table = table.view(np.int16) if self.type == np.float16 else table
        self._jit = True

    def generate_code(self):
        if not self._jit:
            mean = torch.tensor(self.mean, dtype=torch.float32)
            std = torch.tensor(self.std, dtype=torch.float32)
            out_dtype = torch.from_numpy(np.empty(0, self.type)).dtype
            channel_dim = self._channel_dim

            def normalize_torch(images, dst):
                shape = [1] * images.dim()
                shape[channel_dim] = -1
                m = mean.to(images.device).view(shape)
                s = std.to(images.device).view(shape)
                return ((images.float() - m) / s).to(out_dtype)
            return normalize_torch

        my_range = Compiler.get_iterator()
        table = self.table

        def normalize(images, dst):
            channels = images.shape[3]
            for i in my_range(images.shape[0]):
                image = images[i]
                out = dst[i]
                for y in range(image.shape[0]):
                    for x in range(image.shape[1]):
                        for c in range(channels):
                            out[y, x, c] = table[image[y, x, c], c]
            return dst
        normalize.is_parallel = True
        return normalize

    def declare_state_and_memory(self, previous_state):
        self._jit = previous_state.jit_mode
        if previous_state.jit_mode:
            dtype = np.dtype(np.int16) if self.type == np.float16 else self.type
            return (previous_state.replace(dtype=dtype),
                    AllocationQuery(previous_state.shape, dtype))
        shape = previous_state.shape
        self._channel_dim = 1 if shape[0] == len(self.mean) else len(shape)
        out_dtype = torch.from_numpy(np.empty(0, self.type)).dtype
        return previous_state.replace(dtype=out_dtype), None
