"""ffcvx decoder backend: whole-batch JPEG decoding on a CUDA GPU (nvJPEG via torchvision).

The entry point ``ffcvx.decoders: nvjpeg`` loads :data:`backend`, a
:class:`NvJPEGBackend` of kind ``batch`` (``spec/backends.md``, BKD-004,
BKD-042). It has no C function for the per-sample compiled decoders: one
Python call, :meth:`NvJPEGBackend.decode_batch`, decodes a whole batch with
``torchvision.io.decode_jpeg(list_of_tensors, device='cuda')`` (nvJPEG, with
the hardware JPEG engine on A100/H100/H200-class GPUs), then crops, resizes
(antialiased bilinear) and optionally mirrors each image on the GPU, and
returns one ``torch.uint8`` tensor of shape ``(B, H, W, 3)``, channels last,
RGB, on the CUDA device.

torch.cuda and torchvision are touched only on first use (BKD-007): loading
the entry point works on a machine without a GPU or without torchvision, and
:meth:`NvJPEGBackend.available` says which of them is missing.

The decode step is a constructor argument (``decode_fn``), so that every
other step (batching, crop, resize, flip, layout, error mapping) can be run
and tested on a CPU with any decoder of the same contract and
``device='cpu'``.
"""
# the per-image steps live in .decode, the backend class in .backend
from .backend import NvJPEGBackend
from .decode import (INSTALL_LINE, TORCHVISION_HINT, CropOutsideImageError,  # noqa: F401
                     SampleDecodeError, torchvision_decode)

__all__ = ["backend", "NvJPEGBackend", "SampleDecodeError", "CropOutsideImageError",
           "TORCHVISION_HINT", "torchvision_decode"]

#: The instance the entry point ``ffcvx.decoders: nvjpeg`` loads (BKD-004).
backend = NvJPEGBackend()
