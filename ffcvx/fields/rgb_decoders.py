"""Decoders of RGBImageField: full images, random resized crops, centre crops.

The compiled code calls two C functions per sample, without the GIL:

* a decoder backend's ``decode_region`` (``spec/backends.md``), one backend
  per stored format (JPEG, mode 0; PNG, mode 2, FMT-037), chosen when the
  Loader is built (BKD-052, BKD-053). A backend that ``supports_crop`` decodes
  only the crop region, at the smallest DCT scale that still covers the
  output size if it ``supports_scale``; any other backend decodes the whole
  image and the resize reads the crop out of it. A ``native`` backend's
  function runs without the GIL; a ``python`` backend's is a ctypes callback
  that takes the GIL for as long as it runs (BKD-041);
* the core ``ffcvx_resize_rgb`` kernel (``ffcvx/_ext/resize.pyx``), which
  resamples that region into the sample's slot of the output batch.

Raw samples skip the decoder: the crop is resized straight from the stored
pixels. Errors are recorded as status codes by the compiled code and raised
afterwards, in Python, with the library's own message (``finish_batch``).
"""
import ctypes
from abc import abstractmethod
from math import exp, log, sqrt

import numba
import numpy as np
import torch
from numba import njit
from numba.extending import get_cython_function_address

from ..backend_api import DECODE_REGION_PROTO, STATUS_MEANINGS
from ..errors import DecodeError
from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.state import State
from .rgb_image import IMAGE_MODES

_CPU = torch.device('cpu')
_MODE_NAMES = {v: k for k, v in IMAGE_MODES.items()}
_FORMAT_OF_MODE = {IMAGE_MODES['jpg']: 'jpeg', IMAGE_MODES['png']: 'png'}

#: ``int ffcvx_resize_rgb(src, src_h, src_w, src_stride, dst, dst_h, dst_w, scratch, scratch_len)``
RESIZE_PROTO = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64)

RESIZE_SCRATCH_PROTO = ctypes.CFUNCTYPE(
    ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64)

#: Status recorded when a sample's decoded size differs from its metadata.
STATUS_SIZE_MISMATCH = -100
#: Status recorded when no backend decodes the sample's storage mode.
STATUS_NO_BACKEND = -101
#: Status recorded for an unknown storage mode byte.
STATUS_BAD_MODE = -102


def _resize_functions():
    def address(name):
        return get_cython_function_address('ffcvx._ext.resize', name)
    return (RESIZE_PROTO(address('ffcvx_resize_rgb')),
            RESIZE_PROTO(address('ffcvx_resize_rgb_mirror')),
            RESIZE_SCRATCH_PROTO(address('ffcvx_resize_scratch_bytes')))


@DECODE_REGION_PROTO
def _no_backend(src, src_len, cy, cx, ch, cw, th, tw, out, cap, out_hw):
    # Placeholder for a storage mode with no backend; the metadata scan at
    # set-up time makes sure it is never reached for data that exist.
    return STATUS_NO_BACKEND


_NO_BACKEND_FN = DECODE_REGION_PROTO(ctypes.cast(_no_backend, ctypes.c_void_p).value)


@njit(nogil=True)
def get_random_crop(height, width, scale_lo, scale_hi, log_ratio_lo, log_ratio_hi):
    """Sample a RandomResizedCrop box, torchvision's and FFCV's algorithm.

    Up to 10 tries of area ``U(scale) * H * W`` and aspect ``exp(U(log ratio))``;
    if none fits, a centred crop clamped to the ratio range.

    Returns
    -------
    (i, j, h, w) : tuple of int, pixels
        Top, left, height and width of the box; always inside the image.
    """
    area = height * width
    for _ in range(10):
        target_area = area * np.random.uniform(scale_lo, scale_hi)
        aspect = exp(np.random.uniform(log_ratio_lo, log_ratio_hi))
        w = int(round(sqrt(target_area * aspect)))
        h = int(round(sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            i = int(np.random.uniform(0, height - h + 1))
            j = int(np.random.uniform(0, width - w + 1))
            return min(i, height - h), min(j, width - w), h, w
    in_ratio = width / height
    ratio_lo = exp(log_ratio_lo)
    ratio_hi = exp(log_ratio_hi)
    if in_ratio < ratio_lo:
        w = width
        h = min(height, max(1, int(round(w / ratio_lo))))
    elif in_ratio > ratio_hi:
        h = height
        w = min(width, max(1, int(round(h * ratio_hi))))
    else:
        w = width
        h = height
    return (height - h) // 2, (width - w) // 2, h, w


@njit(nogil=True)
def get_center_crop(height, width, ratio):
    """Square centre crop of side ``int(ratio * min(H, W))`` (FFCV's CenterCrop).

    Returns
    -------
    (i, j, h, w) : tuple of int, pixels
    """
    side = max(1, int(ratio * min(height, width)))
    return (height - side) // 2, (width - side) // 2, side, side


class SimpleRGBImageDecoder(Operation):
    """Decode whole images of one size: ``ndarray[uint8], shape (B, H, W, 3)``.

    Every image of the field must have the same height and width (use a crop
    decoder otherwise). JPEG samples are decoded at full scale (with
    libjpeg-turbo's IFAST IDCT this is bit-identical to FFCV 1.0), raw samples
    are copied, PNG samples (FMT-037) decoded losslessly.

    Raises
    ------
    TypeError
        At Loader construction, if the images differ in size.
    DecodeError
        While iterating, if a sample's bytes cannot be decoded; the message
        names the sample and carries the decoder library's message.
    """

    def __init__(self):
        super().__init__()
        self._backends = {}

    # -- set-up ------------------------------------------------------------

    def accept_backends(self, select_backend):
        """Choose a backend for each format the field stores (BKD-052, BKD-053).

        Called by the Loader with ``select_backend(format) -> backend``. Only
        formats present in the metadata need a backend, so a JPEG-only field
        never asks for a PNG decoder.

        Raises
        ------
        BackendNotFoundError
            From ``select_backend``, when no usable backend decodes a stored format.
        DecodeError
            If a sample has an unknown mode byte (FMT-036).
        """
        modes = set(int(m) for m in np.unique(self.metadata['mode'])) if len(self.metadata) else set()
        unknown = modes - set(_MODE_NAMES)
        if unknown:
            raise DecodeError(f"field has samples with unknown image mode(s) {sorted(unknown)} (FMT-036)")
        self._backends = {fmt: select_backend(fmt)
                          for mode, fmt in _FORMAT_OF_MODE.items() if mode in modes}

    def _decode_function(self, fmt):
        # The ctypes object only wraps the address; the backend object, kept
        # in self._backends for the decoder's lifetime, owns the function
        # (for a python backend, the callback thunk, BKD-041).
        backend = self._backends.get(fmt)
        if backend is None:
            return _NO_BACKEND_FN, False
        return DECODE_REGION_PROTO(backend.function_address('decode_region')), bool(backend.supports_crop)

    def _max_size(self):
        if len(self.metadata) == 0:
            return 1, 1
        return int(self.metadata['height'].max()), int(self.metadata['width'].max())

    def declare_state_and_memory(self, previous_state):
        heights = np.unique(self.metadata['height'])
        widths = np.unique(self.metadata['width'])
        if len(heights) > 1 or len(widths) > 1:
            raise TypeError(
                f"SimpleRGBImageDecoder needs images of one size, but this field has heights "
                f"{heights.min()}..{heights.max()} and widths {widths.min()}..{widths.max()}; "
                f"use RandomResizedCropRGBImageDecoder or CenterCropRGBImageDecoder")
        h, w = self._max_size()
        self.output_size = (h, w)
        return (State(True, _CPU, (h, w, 3), np.dtype(np.uint8)),
                (AllocationQuery((h, w, 3), np.dtype(np.uint8)), AllocationQuery((), np.dtype(np.int32))))

    def declare_shared_memory(self, previous_state):
        # Full decodes go straight into the output slot; only PNG backends
        # without region support need no scratch either, so one row of 2 ints
        # per thread is enough.
        return (AllocationQuery((numba.config.NUMBA_NUM_THREADS, 1), np.dtype(np.uint8)),
                AllocationQuery((numba.config.NUMBA_NUM_THREADS, 2), np.dtype(np.int64)))

    def generate_code(self):
        mem_read = self.memory_read
        decode_jpeg, _ = self._decode_function('jpeg')
        decode_png, _ = self._decode_function('png')
        my_range = Compiler.get_iterator()
        thread_id = numba.get_thread_id
        jpg, raw, png = IMAGE_MODES['jpg'], IMAGE_MODES['raw'], IMAGE_MODES['png']

        def decode(batch_indices, destination, metadata, storage_state, shared):
            images, status = destination
            _, out_hw_all = shared
            for k in my_range(batch_indices.shape[0]):
                record = metadata[batch_indices[k]]
                height = np.int64(record['height'])
                width = np.int64(record['width'])
                mode = record['mode']
                data = mem_read(record['data_ptr'], storage_state)
                out = images[k]
                nbytes = height * width * 3
                if mode == raw:
                    out.reshape(-1)[:] = data[:nbytes]
                    status[k] = 0
                    continue
                out_hw = out_hw_all[thread_id()]
                if mode == jpg:
                    rc = decode_jpeg(data.ctypes.data, data.shape[0], 0, 0, height, width, 0, 0,
                                     out.ctypes.data, nbytes, out_hw.ctypes.data)
                elif mode == png:
                    rc = decode_png(data.ctypes.data, data.shape[0], 0, 0, height, width, 0, 0,
                                    out.ctypes.data, nbytes, out_hw.ctypes.data)
                else:
                    rc = STATUS_BAD_MODE
                if rc == 0 and (out_hw[0] != height or out_hw[1] != width):
                    rc = STATUS_SIZE_MISMATCH
                status[k] = rc
            return images
        decode.is_parallel = True
        return decode

    # -- errors --------------------------------------------------------------

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        status = destination[1]
        failed = np.flatnonzero(status[:len(batch_indices)])
        if len(failed) == 0:
            return result
        k = int(failed[0])
        raise self._decode_error(int(batch_indices[k]), int(status[k]), storage_state)

    def _decode_error(self, sample, code, storage_state):
        record = self.metadata[sample]
        mode = _MODE_NAMES.get(int(record['mode']), f"unknown ({int(record['mode'])})")
        where = (f"sample {sample} ({mode}, {int(record['width'])}x{int(record['height'])} pixels, "
                 f"data at byte {int(record['data_ptr'])})")
        if code == STATUS_SIZE_MISMATCH:
            return DecodeError(f"{where}: decoded size differs from the size in the metadata")
        if code == STATUS_NO_BACKEND:
            return DecodeError(f"{where}: no decoder backend for this image format")
        if code == STATUS_BAD_MODE:
            return DecodeError(f"{where}: unknown image mode (FMT-036)")
        backend = self._backends.get(_FORMAT_OF_MODE.get(int(record['mode'])))
        message = f"status {code} ({STATUS_MEANINGS.get(code, 'unknown status')})"
        if backend is not None and storage_state is not None:
            data = bytes(self.memory_read(record['data_ptr'], storage_state))
            try:
                backend.decode_region_py(data)
            except DecodeError as exc:
                message = str(exc)
        return DecodeError(f"{where}: {backend.name if backend else 'decoder'} failed: {message}")


class ResizedCropRGBImageDecoder(SimpleRGBImageDecoder):
    """Base of the crop decoders: crop a box, then resize it to ``output_size``.

    Output ``ndarray[uint8], shape (B, output_size[0], output_size[1], 3)``.
    Images may differ in size. With a backend that supports crop and scale
    (turbojpeg), JPEG samples are decoded only inside the box, at the smallest
    DCT scale k/8 that keeps the box at least ``output_size`` (BKD-017); with
    any other backend (PNG, python backends) the whole image is decoded into
    scratch memory and the box read out of it (BKD-019). The box is then
    resampled with an antialiased separable filter.

    Parameters
    ----------
    output_size : tuple of int (height, width), pixels
    """

    def __init__(self, output_size):
        super().__init__()
        self.output_size = (int(output_size[0]), int(output_size[1]))
        #: Probability of mirroring the output, set when a following
        #: RandomHorizontalFlip is fused into this decoder (see ``absorb``).
        self.flip_prob = 0.0

    def absorb(self, operation):
        """Take over a following ``RandomHorizontalFlip`` (pipeline fusion).

        The flip then costs nothing: the resize writes the mirrored image
        directly. Returns whether ``operation`` was absorbed.
        """
        probability = getattr(operation, 'horizontal_flip_probability', None)
        if probability is None or self.flip_prob:
            return False
        self.flip_prob = float(probability)
        return True

    @abstractmethod
    def crop_sampler(self):
        """A jitted ``(height, width) -> (i, j, h, w)`` giving the box to decode, pixels."""

    def declare_state_and_memory(self, previous_state):
        h, w = self.output_size
        return (State(True, _CPU, (h, w, 3), np.dtype(np.uint8)),
                (AllocationQuery((h, w, 3), np.dtype(np.uint8)), AllocationQuery((), np.dtype(np.int32))))

    def _scratch_layout(self):
        max_h, max_w = self._max_size()
        _, _, resize_scratch = _resize_functions()
        region_bytes = max_h * max_w * 3
        resize_bytes = int(resize_scratch(max_h, max_w, *self.output_size))
        return region_bytes, max(resize_bytes, 0)

    def declare_shared_memory(self, previous_state):
        region_bytes, resize_bytes = self._scratch_layout()
        threads = numba.config.NUMBA_NUM_THREADS
        return (AllocationQuery((threads, region_bytes + resize_bytes), np.dtype(np.uint8)),
                AllocationQuery((threads, 2), np.dtype(np.int64)))

    def generate_code(self):
        mem_read = self.memory_read
        decode_jpeg, jpeg_crops = self._decode_function('jpeg')
        decode_png, png_crops = self._decode_function('png')
        resize_plain, resize_mirror, _ = _resize_functions()
        flip_prob = self.flip_prob
        region_bytes, resize_bytes = self._scratch_layout()

        @njit(nogil=True)
        def resize(src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len):
            if flip_prob > 0 and np.random.rand() < flip_prob:
                return resize_mirror(src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len)
            return resize_plain(src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len)
        out_h, out_w = self.output_size
        sample_crop = self.crop_sampler()
        my_range = Compiler.get_iterator()
        thread_id = numba.get_thread_id
        jpg, raw, png = IMAGE_MODES['jpg'], IMAGE_MODES['raw'], IMAGE_MODES['png']

        def decode(batch_indices, destination, metadata, storage_state, shared):
            images, status = destination
            scratch_all, out_hw_all = shared
            for k in my_range(batch_indices.shape[0]):
                record = metadata[batch_indices[k]]
                height = np.int64(record['height'])
                width = np.int64(record['width'])
                mode = record['mode']
                i, j, h, w = sample_crop(height, width)
                data = mem_read(record['data_ptr'], storage_state)
                out_ptr = images[k].ctypes.data
                t = thread_id()
                scratch = scratch_all[t]
                region_ptr = scratch.ctypes.data
                resize_ptr = region_ptr + region_bytes
                if mode == raw:
                    rc = resize(data.ctypes.data + (i * width + j) * 3, h, w, width * 3,
                                out_ptr, out_h, out_w, resize_ptr, resize_bytes)
                    status[k] = rc
                    continue
                out_hw = out_hw_all[t]
                crops = False
                if mode == jpg:
                    crops = jpeg_crops
                    if crops:
                        rc = decode_jpeg(data.ctypes.data, data.shape[0], i, j, h, w, out_h, out_w,
                                         region_ptr, region_bytes, out_hw.ctypes.data)
                    else:
                        rc = decode_jpeg(data.ctypes.data, data.shape[0], 0, 0, height, width, 0, 0,
                                         region_ptr, region_bytes, out_hw.ctypes.data)
                elif mode == png:
                    crops = png_crops
                    if crops:
                        rc = decode_png(data.ctypes.data, data.shape[0], i, j, h, w, out_h, out_w,
                                        region_ptr, region_bytes, out_hw.ctypes.data)
                    else:
                        rc = decode_png(data.ctypes.data, data.shape[0], 0, 0, height, width, 0, 0,
                                        region_ptr, region_bytes, out_hw.ctypes.data)
                else:
                    rc = STATUS_BAD_MODE
                if rc == 0:
                    if crops:
                        rc = resize(region_ptr, out_hw[0], out_hw[1], out_hw[1] * 3,
                                    out_ptr, out_h, out_w, resize_ptr, resize_bytes)
                    elif out_hw[0] != height or out_hw[1] != width:
                        rc = STATUS_SIZE_MISMATCH
                    else:
                        rc = resize(region_ptr + (i * width + j) * 3, h, w, width * 3,
                                    out_ptr, out_h, out_w, resize_ptr, resize_bytes)
                status[k] = rc
            return images
        decode.is_parallel = True
        return decode


class RandomResizedCropRGBImageDecoder(ResizedCropRGBImageDecoder):
    """Random resized crop, decoded region only (torchvision's sampler).

    Output ``ndarray[uint8], shape (B, output_size[0], output_size[1], 3)``.

    Parameters
    ----------
    output_size : tuple of int (height, width), pixels
    scale : tuple of float
        Range of the crop's area as a fraction of the image's.
    ratio : tuple of float
        Range of the crop's aspect ratio (width / height).
    """

    def __init__(self, output_size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        super().__init__(output_size)
        if not (0 < scale[0] <= scale[1]) or not (0 < ratio[0] <= ratio[1]):
            raise ValueError(f"need 0 < scale[0] <= scale[1] and 0 < ratio[0] <= ratio[1], "
                             f"got scale={scale}, ratio={ratio}")
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))

    def crop_sampler(self):
        scale_lo, scale_hi = self.scale
        log_lo, log_hi = log(self.ratio[0]), log(self.ratio[1])

        @njit(nogil=True)
        def sample(height, width):
            return get_random_crop(height, width, scale_lo, scale_hi, log_lo, log_hi)
        return sample


class CenterCropRGBImageDecoder(ResizedCropRGBImageDecoder):
    """Centre square crop of side ``ratio * min(H, W)``, resized to ``output_size``.

    Parameters
    ----------
    output_size : tuple of int (height, width), pixels
    ratio : float
        E.g. ``224 / 256`` for the usual ImageNet evaluation crop.
    """

    def __init__(self, output_size, ratio=224 / 256):
        super().__init__(output_size)
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.ratio = float(ratio)

    def crop_sampler(self):
        ratio = self.ratio

        @njit(nogil=True)
        def sample(height, width):
            return get_center_crop(height, width, ratio)
        return sample
