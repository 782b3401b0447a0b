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

A GrayscaleImageField (FMT-083) decoded to one channel stays one channel
end to end: its JPEG and PNG samples go through the backend's
``decode_region_gray`` when the backend ``supports_gray`` (BKD-025 to
BKD-027; else through ``decode_region``, keeping channel 0 of the region),
and through ``ffcvx_resize_gray``, which gives exactly channel 0 of the RGB
kernel's result on R = G = B, at a third of the work.

Raw samples skip the decoder: the crop is resized straight from the stored
pixels. Errors are recorded as status codes by the compiled code and raised
afterwards, in Python, with the library's own message (``finish_batch``).

A backend of kind ``batch`` (BKD-042, e.g. nvjpeg), chosen only when the user
names it, replaces all of that with a plain-Python step per batch (the *batch
path*, set up once in ``generate_code``): small jitted helpers copy the
samples' bytes into one reused host buffer and draw the crops (and flips), and
one ``backend.decode_batch`` call returns the ``(B, H, W, 3)`` uint8 tensor on
the backend's device. It needs a field whose samples are all JPEGs and an RGB
output; anything else raises ``BackendNotFoundError`` when the Loader is built.
"""
import ctypes
from contextlib import nullcontext
from abc import abstractmethod
from math import exp, log, sqrt

import numba
import numpy as np
import torch
from numba import njit
from numba.extending import get_cython_function_address

from ..backend_api import DECODE_REGION_PROTO, GRAY_FUNCTION, STATUS_MEANINGS
from ..errors import BackendNotFoundError, DecodeError
from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ..pipeline.state import State, concrete_device
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
#: Status recorded when a raw sample's region is shorter than ``height*width*channels``.
STATUS_SHORT_RAW = -103

#: Values of the decoders' ``png_channel_order`` (FMT-086).
PNG_CHANNEL_ORDERS = ('rgb', 'bgr')


@njit(nogil=True)
def _gray_to_rgb(src, dst, n):
    # Repeat each of the n gray bytes of src three times into dst.
    for p in range(n):
        v = src[p]
        dst[3 * p] = v
        dst[3 * p + 1] = v
        dst[3 * p + 2] = v


@njit(nogil=True)
def _rgb_to_gray(src, dst, n):
    # Keep channel R of n RGB pixels. The source is a gray image decoded or
    # resized as RGB, where R = G = B, so this loses nothing.
    for p in range(n):
        dst[p] = src[3 * p]


@njit(nogil=True)
def _keep_channel0(buf, i, j, h, w, width):
    # In place: the R bytes of the h x w box at (i, j) of a packed RGB image of
    # the given width, packed as a gray h x w image at the start of buf. Each
    # gray byte is written at or before the RGB byte it comes from, and before
    # every RGB byte still to be read, so the forward loop reads them intact.
    for r in range(h):
        src = ((i + r) * width + j) * 3
        dst = r * w
        for c in range(w):
            buf[dst + c] = buf[src + 3 * c]


@njit(nogil=True)
def _swap_rb(img, n):
    # Swap channels R and B of n RGB pixels in place (erow PNGs, FMT-086).
    for p in range(n):
        r = img[3 * p]
        img[3 * p] = img[3 * p + 2]
        img[3 * p + 2] = r


@njit(nogil=True)
def _whole_image(height, width):
    # The "crop" of the Simple decoder on the batch path: the whole image.
    return 0, 0, height, width


def _batch_helpers(mem_read, sample_crop, flip_prob):
    """The two jitted steps of the batch path that need compiled code.

    ``mem_read`` (the memory strategy's reader) and ``sample_crop`` (a
    decoder's jitted crop sampler) are Numba functions, callable only from
    compiled code, so the gathering of bytes and the drawing of crops happen
    here; everything else on the batch path is plain Python.

    Returns
    -------
    gather : ``(batch_indices, metadata, storage_state, buffer, offsets) -> int``
        Copies sample ``k``'s stored bytes to ``buffer[offsets[k]:offsets[k + 1]]``
        (``buffer`` uint8, ``offsets`` int64 of length ``B + 1``) and returns
        the bytes needed; when that exceeds ``len(buffer)`` nothing past the
        end is written and the caller grows the buffer and calls again.
    plan : ``(batch_indices, metadata, crops, flips, seed) -> None``
        Fills ``crops`` (int64, ``(B, 4)``, ``(y, x, h, w)`` pixels) from the
        sampler and ``flips`` (bool, ``(B,)``) with probability ``flip_prob``,
        drawing per sample from ``seed`` (``ffcvx.pipeline.seeds``).
    """
    @njit(nogil=True)
    def gather(batch_indices, metadata, storage_state, buffer, offsets):
        total = 0
        capacity = buffer.shape[0]
        for k in range(batch_indices.shape[0]):
            data = mem_read(metadata[batch_indices[k]]['data_ptr'], storage_state)
            n = data.shape[0]
            offsets[k] = total
            if total + n <= capacity:
                buffer[total:total + n] = data
            total += n
        offsets[batch_indices.shape[0]] = total
        return total

    @njit(nogil=True)
    def plan(batch_indices, metadata, crops, flips, seed):
        for k in range(batch_indices.shape[0]):
            seed_sample(seed, batch_indices[k])
            record = metadata[batch_indices[k]]
            i, j, h, w = sample_crop(np.int64(record['height']), np.int64(record['width']))
            crops[k, 0] = i
            crops[k, 1] = j
            crops[k, 2] = h
            crops[k, 3] = w
            flips[k] = flip_prob > 0 and np.random.rand() < flip_prob
    return gather, plan


def _resize_functions(channels=3):
    """The resize kernel of ``ffcvx/_ext/resize.pyx`` for 3 (RGB) or 1 (gray) channels.

    Returns
    -------
    (resize, resize_mirror, scratch_bytes) : ctypes functions
        ``ffcvx_resize_rgb``, ``ffcvx_resize_rgb_mirror`` and
        ``ffcvx_resize_scratch_bytes``, or their ``_gray`` forms.
    """
    def address(name):
        return get_cython_function_address('ffcvx._ext.resize', name)
    kind = 'rgb' if channels == 3 else 'gray'
    scratch = 'ffcvx_resize_scratch_bytes' if channels == 3 else 'ffcvx_resize_gray_scratch_bytes'
    return (RESIZE_PROTO(address(f'ffcvx_resize_{kind}')),
            RESIZE_PROTO(address(f'ffcvx_resize_{kind}_mirror')),
            RESIZE_SCRATCH_PROTO(address(scratch)))


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

    On a :class:`~ffcvx.fields.GrayscaleImageField` (FMT-083) the output is
    ``(B, H, W, 1)``, or ``(B, H, W, 3)`` with ``channels=3``. For one
    channel, gray JPEG and PNG samples are decoded straight into the output
    with the backend's ``decode_region_gray`` when it ``supports_gray``
    (BKD-027); otherwise the RGB ``decode_region`` (R = G = B, BKD-020)
    decodes into scratch memory and channel 0 is kept. The pixels are the
    same either way (BKD-026).

    Parameters
    ----------
    channels : {None, 1, 3}
        Output channels. None: the field's own (3 for RGB, 1 for gray). 3 on a
        gray field repeats the channel; 1 on an RGB field is refused.
    png_channel_order : {'rgb', 'bgr'}
        'bgr' swaps R and B of every PNG (mode 2) sample after decoding, to
        read the R/B-swapped PNGs written by FFCV's "erow" fork (FMT-086).
        Raw and JPEG samples are not touched.

    Raises
    ------
    ValueError
        For a bad ``channels`` or ``png_channel_order``; at Loader
        construction, for ``channels=1`` on an RGB field.
    TypeError
        At Loader construction, if the images differ in size.
    BackendNotFoundError
        At Loader construction, when a named backend of kind ``batch``
        (BKD-042) meets a field with PNG or raw samples or a one-channel
        output. With a batch backend the output is instead a ``torch.uint8``
        tensor ``(B, H, W, 3)`` on the backend's device (also for the crop
        decoders).
    DecodeError
        While iterating, if a sample's bytes cannot be decoded; the message
        names the sample and carries the decoder library's message.
    """

    def __init__(self, channels=None, png_channel_order='rgb'):
        super().__init__()
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
        if png_channel_order not in PNG_CHANNEL_ORDERS:
            raise ValueError(f"png_channel_order must be one of {PNG_CHANNEL_ORDERS}, "
                             f"got {png_channel_order!r}")
        self.channels = channels
        self.png_channel_order = png_channel_order
        self._backends = {}
        #: The backend of kind ``batch`` decoding this field, or None (per-sample path).
        self._batch_backend = None

    def _in_channels(self):
        # Channels of a stored sample: 1 for GrayscaleImageField, else 3.
        return int(getattr(self.field, 'channels', 3)) if self.field is not None else 3

    def _one_channel(self):
        # A gray field decoded to one channel: the case that never needs RGB.
        return self._in_channels() == 1 and self._out_channels() == 1

    def _decodes_rgb(self):
        # Whether some chosen backend decodes this field's samples to RGB:
        # always for an RGB output, and for one channel unless every backend
        # in use has decode_region_gray (BKD-025, BKD-027).
        return not self._one_channel() or not all(
            getattr(b, 'supports_gray', False) is True for b in self._backends.values())

    def _out_channels(self):
        in_c = self._in_channels()
        out_c = in_c if self.channels is None else self.channels
        if in_c == 3 and out_c == 1:
            raise ValueError(f"{type(self).__name__}(channels=1) needs a GrayscaleImageField; "
                             f"this field stores RGB images")
        return out_c

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
        if self._in_channels() != 3 and len(self.metadata):
            # Readers check RGB records at open time (FMT-082); a gray field is
            # a custom one to them (FMT-083), so its records are checked here.
            if (self.metadata['width'] == 0).any() or (self.metadata['height'] == 0).any():
                raise DecodeError("field has images of width or height 0 (FMT-083, FMT-082)")
        self._backends = {fmt: select_backend(fmt)
                          for mode, fmt in _FORMAT_OF_MODE.items() if mode in modes}
        self._batch_backend = self._batch_backend_for(modes)
        # Resolved now, in the thread that builds the Loader (see concrete_device).
        self._batch_device = (concrete_device(self._batch_backend.device)
                              if self._batch_backend is not None else None)

    def _batch_backend_for(self, modes):
        """The chosen backend of kind ``batch``, if any, after checking the field suits it.

        Raises
        ------
        BackendNotFoundError
            If a batch backend was named but this field cannot be decoded by it
            alone: samples that are not JPEGs (PNG or raw; mixing per-sample CPU
            decodes into a device batch is not implemented), a one-channel
            field or output, or a backend without ``decode_batch`` (BKD-042).
        """
        chosen = [b for b in self._backends.values() if getattr(b, 'kind', None) == 'batch']
        if not chosen:
            return None
        backend = chosen[0]
        problems = []
        others = sorted(_MODE_NAMES[m] for m in modes if m != IMAGE_MODES['jpg'])
        if others:
            problems.append(f"the field also stores {' and '.join(others)} samples; batch backends "
                            f"need a JPEG-only field (write it with write_mode='jpg')")
        if self._in_channels() != 3 or self._out_channels() != 3:
            problems.append("the field or the requested output is not 3-channel RGB")
        if not callable(getattr(backend, 'decode_batch', None)):
            problems.append("the backend has no decode_batch method")
        if problems:
            raise BackendNotFoundError(
                f"decoder backend {backend.name!r} is of kind 'batch': batch decoding is not "
                f"implemented for this {type(self).__name__} here: {'; '.join(problems)}. "
                f"Use a per-sample backend (backend=None or e.g. 'turbojpeg') for this Loader "
                f"(spec/backends.md BKD-042)")
        return backend

    def _batch_state(self, height, width):
        # The batch path's output: a uint8 tensor already on the backend's device.
        return State(False, self._batch_device, (height, width, 3), torch.uint8)

    def _batch_crop_sampler(self):
        return _whole_image

    def _batch_code(self):
        """The plain-Python decode step of the batch path (BKD-042).

        Called as ``code(batch_indices, None, metadata, storage_state, seed)``;
        returns ``torch.Tensor`` of ``torch.uint8``, shape ``(B, H, W, 3)``,
        on the backend's device, which the backend allocates. On the host
        only the gathered bytes (one buffer, reused and grown to the largest
        batch seen) and the small crop, flip and offset arrays are kept.

        Raises (in the training loop)
        -----------------------------
        DecodeError
            A sample cannot be decoded: the message names the dataset sample
            (``batch_indices[position]``) and carries the backend's message.
        """
        backend = self._batch_backend
        device = self._batch_device
        # The pipeline runs in the Loader's thread, whose current CUDA device
        # is not the user's: decode under the resolved one.
        on_device = (lambda: torch.cuda.device(device)) if device.type == 'cuda' else nullcontext
        flip_prob = float(getattr(self, 'flip_prob', 0.0))
        gather, plan = _batch_helpers(self.memory_read, self._batch_crop_sampler(), flip_prob)
        output_size = tuple(self.output_size)
        host = {'bytes': np.empty(0, np.uint8), 'offsets': np.empty(1, np.int64),
                'crops': np.empty((0, 4), np.int64), 'flips': np.empty(0, np.bool_)}

        def decode(batch_indices, destination, metadata, storage_state, seed):
            count = batch_indices.shape[0]
            if host['flips'].shape[0] < count:
                host['offsets'] = np.empty(count + 1, np.int64)
                host['crops'] = np.empty((count, 4), np.int64)
                host['flips'] = np.empty(count, np.bool_)
            offsets = host['offsets']
            needed = gather(batch_indices, metadata, storage_state, host['bytes'], offsets)
            if needed > host['bytes'].shape[0]:
                # Grown with headroom so later batches of similar size fit.
                host['bytes'] = np.empty(needed + needed // 4, np.uint8)
                gather(batch_indices, metadata, storage_state, host['bytes'], offsets)
            crops, flips = host['crops'][:count], host['flips'][:count]
            plan(batch_indices, metadata, crops, flips, seed)
            data = host['bytes']
            # Views only: decode_batch copies each sample before it returns,
            # so the buffer may be refilled by the next batch.
            sources = [data[offsets[k]:offsets[k + 1]] for k in range(count)]
            try:
                with on_device():
                    return backend.decode_batch(sources, crops=crops, output_size=output_size,
                                                flips=flips if flip_prob > 0 else None, device=device)
            except DecodeError as exc:
                position = getattr(exc, 'position', None)
                if position is None or not 0 <= int(position) < count:
                    raise
                sample = int(batch_indices[int(position)])
                raise DecodeError(f"{self._where(sample)}: {backend.name} failed: {exc}") from exc
        decode.with_seed = True
        return decode

    def _decode_function(self, fmt):
        """The compiled decoders' view of the backend chosen for ``fmt``.

        Returns
        -------
        function : ctypes function of ``DECODE_REGION_PROTO``
            ``decode_region_gray`` for a one-channel field and output when the
            backend ``supports_gray`` (BKD-027), else ``decode_region``; a
            stub returning ``STATUS_NO_BACKEND`` when no backend was chosen.
        crops : bool
            The backend's ``supports_crop``.
        gray : bool
            Whether ``function`` writes one byte per pixel.
        """
        # The ctypes object only wraps the address; the backend object, kept
        # in self._backends for the decoder's lifetime, owns the function
        # (for a python backend, the callback thunk, BKD-041).
        backend = self._backends.get(fmt)
        if backend is None:
            return _NO_BACKEND_FN, False, False
        gray = self._one_channel() and getattr(backend, 'supports_gray', False) is True
        name = GRAY_FUNCTION if gray else 'decode_region'
        return DECODE_REGION_PROTO(backend.function_address(name)), bool(backend.supports_crop), gray

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
        if self._batch_backend is not None:
            return self._batch_state(h, w), None
        c = self._out_channels()
        return (State(True, _CPU, (h, w, c), np.dtype(np.uint8)),
                (AllocationQuery((h, w, c), np.dtype(np.uint8)), AllocationQuery((), np.dtype(np.int32))))

    def declare_shared_memory(self, previous_state):
        # Full decodes go straight into the output slot, so one row of 2 ints
        # per thread is enough, unless a one-channel output is decoded by a
        # backend without decode_region_gray: that decodes an RGB image into
        # scratch first.
        if self._batch_backend is not None:
            return None
        h, w = self._max_size()
        scratch = h * w * 3 if self._out_channels() == 1 and self._decodes_rgb() else 1
        return (AllocationQuery((numba.config.NUMBA_NUM_THREADS, scratch), np.dtype(np.uint8)),
                AllocationQuery((numba.config.NUMBA_NUM_THREADS, 2), np.dtype(np.int64)))

    def generate_code(self):
        # One code path for every case. in_c, out_c and swap_png are closure
        # constants, so Numba compiles away the branches of the cases not in
        # use: plain RGB in and out costs what it did before gray existed.
        if self._batch_backend is not None:
            return self._batch_code()
        mem_read = self.memory_read
        decode_jpeg, _, jpeg_gray = self._decode_function('jpeg')
        decode_png, _, png_gray = self._decode_function('png')
        my_range = Compiler.get_iterator()
        thread_id = numba.get_thread_id
        jpg, raw, png = IMAGE_MODES['jpg'], IMAGE_MODES['raw'], IMAGE_MODES['png']
        in_c, out_c = self._in_channels(), self._out_channels()
        swap_png = self.png_channel_order == 'bgr'

        def decode(batch_indices, destination, metadata, storage_state, shared):
            images, status = destination
            scratch_all, out_hw_all = shared
            for k in my_range(batch_indices.shape[0]):
                record = metadata[batch_indices[k]]
                height = np.int64(record['height'])
                width = np.int64(record['width'])
                mode = record['mode']
                data = mem_read(record['data_ptr'], storage_state)
                flat = images[k].reshape(-1)
                pixels = height * width
                t = thread_id()
                if mode == raw:
                    if data.shape[0] < pixels * in_c:
                        status[k] = STATUS_SHORT_RAW
                    elif in_c == out_c:
                        flat[:pixels * out_c] = data[:pixels * out_c]
                        status[k] = 0
                    else:
                        _gray_to_rgb(data, flat, pixels)
                        status[k] = 0
                    continue
                # Compressed: decoded straight into the output when it has 3
                # channels, or 1 and the backend decodes one (gray_decode);
                # else an RGB decode into scratch keeps channel 0.
                gray_decode = (mode == jpg and jpeg_gray) or (mode == png and png_gray)
                direct = out_c == 3 or gray_decode
                buf = flat if direct else scratch_all[t]
                capacity = pixels if gray_decode else pixels * 3
                out_hw = out_hw_all[t]
                if mode == jpg:
                    rc = decode_jpeg(data.ctypes.data, data.shape[0], 0, 0, height, width, 0, 0,
                                     buf.ctypes.data, capacity, out_hw.ctypes.data)
                elif mode == png:
                    rc = decode_png(data.ctypes.data, data.shape[0], 0, 0, height, width, 0, 0,
                                    buf.ctypes.data, capacity, out_hw.ctypes.data)
                else:
                    rc = STATUS_BAD_MODE
                if rc == 0 and (out_hw[0] != height or out_hw[1] != width):
                    rc = STATUS_SIZE_MISMATCH
                if rc == 0:
                    if not direct:
                        _rgb_to_gray(buf, flat, pixels)
                    elif swap_png and mode == png and out_c == 3:
                        _swap_rb(flat, pixels)
                status[k] = rc
            return images
        decode.is_parallel = True
        return decode

    # -- errors --------------------------------------------------------------

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        if self._batch_backend is not None:
            return result   # the batch path raises its errors itself
        status = destination[1]
        failed = np.flatnonzero(status[:len(batch_indices)])
        if len(failed) == 0:
            return result
        k = int(failed[0])
        raise self._decode_error(int(batch_indices[k]), int(status[k]), storage_state)

    def _where(self, sample):
        # How error messages name a dataset sample.
        record = self.metadata[sample]
        mode = _MODE_NAMES.get(int(record['mode']), f"unknown ({int(record['mode'])})")
        return (f"sample {sample} ({mode}, {int(record['width'])}x{int(record['height'])} pixels, "
                f"data at byte {int(record['data_ptr'])})")

    def _decode_error(self, sample, code, storage_state):
        record = self.metadata[sample]
        where = self._where(sample)
        if code == STATUS_SIZE_MISMATCH:
            return DecodeError(f"{where}: decoded size differs from the size in the metadata")
        if code == STATUS_NO_BACKEND:
            return DecodeError(f"{where}: no decoder backend for this image format")
        if code == STATUS_BAD_MODE:
            return DecodeError(f"{where}: unknown image mode (FMT-036)")
        if code == STATUS_SHORT_RAW:
            return DecodeError(f"{where}: raw region is shorter than height*width*"
                               f"{self._in_channels()} bytes (FMT-083)")
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

    On a GrayscaleImageField decoded to one channel the region is decoded
    with the backend's ``decode_region_gray`` where it has one (else decoded
    as RGB and channel 0 of the crop kept in place, BKD-027), and raw crops
    are read straight from the stored pixels; the one-channel kernel
    ``ffcvx_resize_gray`` then writes the output slot: the same pixels as
    resizing R = G = B and keeping one channel, a third of the work. With
    ``channels=3`` the crop is resized as RGB (a raw gray crop box is first
    expanded to RGB in scratch).

    Parameters
    ----------
    output_size : tuple of int (height, width), pixels
    channels : {None, 1, 3}
        As for :class:`SimpleRGBImageDecoder`.
    png_channel_order : {'rgb', 'bgr'}
        As for :class:`SimpleRGBImageDecoder` (FMT-086); the swap is applied to
        the resized output, which is the same as swapping before resizing
        since the resize treats channels independently.
    """

    def __init__(self, output_size, channels=None, png_channel_order='rgb'):
        super().__init__(channels=channels, png_channel_order=png_channel_order)
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

    def _batch_crop_sampler(self):
        return self.crop_sampler()

    def declare_state_and_memory(self, previous_state):
        h, w = self.output_size
        if self._batch_backend is not None:
            return self._batch_state(h, w), None
        c = self._out_channels()
        return (State(True, _CPU, (h, w, c), np.dtype(np.uint8)),
                (AllocationQuery((h, w, c), np.dtype(np.uint8)), AllocationQuery((), np.dtype(np.int32))))

    def _scratch_layout(self):
        # Per thread: the decoded region (RGB, or one byte per pixel when no
        # backend in use decodes RGB), then the resize kernel's scratch.
        max_h, max_w = self._max_size()
        _, _, resize_scratch = _resize_functions(1 if self._one_channel() else 3)
        region_bytes = max_h * max_w * (3 if self._decodes_rgb() else 1)
        resize_bytes = int(resize_scratch(max_h, max_w, *self.output_size))
        return region_bytes, max(resize_bytes, 0)

    def declare_shared_memory(self, previous_state):
        if self._batch_backend is not None:
            return None
        region_bytes, resize_bytes = self._scratch_layout()
        threads = numba.config.NUMBA_NUM_THREADS
        return (AllocationQuery((threads, region_bytes + resize_bytes), np.dtype(np.uint8)),
                AllocationQuery((threads, 2), np.dtype(np.int64)))

    def generate_code(self):
        # One path for every case (scratch layout: region | resize scratch).
        # The region is decoded, then resized straight into the output slot:
        # as RGB, or as one channel for a gray field decoded to one channel
        # (gray), where a backend without decode_region_gray decodes RGB and
        # channel 0 of the crop is kept in place first. in_c, out_c, gray,
        # swap_png and the backends' capabilities are closure constants, so
        # Numba compiles away the branches of the cases not in use (plain RGB
        # pays nothing for them).
        if self._batch_backend is not None:
            return self._batch_code()
        mem_read = self.memory_read
        decode_jpeg, jpeg_crops, jpeg_gray = self._decode_function('jpeg')
        decode_png, png_crops, png_gray = self._decode_function('png')
        gray = self._one_channel()
        px = 1 if gray else 3      # bytes per pixel of what is resized
        resize_plain, resize_mirror, _ = _resize_functions(px)
        flip_prob = self.flip_prob
        region_bytes, resize_bytes = self._scratch_layout()
        in_c, out_c = self._in_channels(), self._out_channels()
        swap_png = self.png_channel_order == 'bgr'

        @njit(nogil=True)
        def resize(src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len):
            if flip_prob > 0 and np.random.rand() < flip_prob:
                return resize_mirror(src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len)
            return resize_plain(src, src_h, src_w, stride, dst, dst_h, dst_w, scratch, scratch_len)
        out_h, out_w = self.output_size
        out_pixels = out_h * out_w
        sample_crop = self.crop_sampler()
        my_range = Compiler.get_iterator()
        thread_id = numba.get_thread_id
        jpg, raw, png = IMAGE_MODES['jpg'], IMAGE_MODES['raw'], IMAGE_MODES['png']

        def decode(batch_indices, destination, metadata, storage_state, seed, shared):
            images, status = destination
            scratch_all, out_hw_all = shared
            for k in my_range(batch_indices.shape[0]):
                # The crop and the fused flip draw from this sample's seed.
                seed_sample(seed, batch_indices[k])
                record = metadata[batch_indices[k]]
                height = np.int64(record['height'])
                width = np.int64(record['width'])
                mode = record['mode']
                i, j, h, w = sample_crop(height, width)
                data = mem_read(record['data_ptr'], storage_state)
                flat = images[k].reshape(-1)
                t = thread_id()
                scratch = scratch_all[t]
                region_ptr = scratch.ctypes.data
                resize_ptr = region_ptr + region_bytes
                dst_ptr = flat.ctypes.data
                if mode == raw:
                    if data.shape[0] < height * width * in_c:
                        status[k] = STATUS_SHORT_RAW
                        continue
                    if in_c == px:
                        # RGB, or gray to one channel: straight from the stored pixels
                        rc = resize(data.ctypes.data + (i * width + j) * px, h, w, width * px,
                                    dst_ptr, out_h, out_w, resize_ptr, resize_bytes)
                    else:
                        # Expand only the crop box to RGB, rows packed (stride w*3).
                        for r in range(h):
                            start = (i + r) * width + j
                            _gray_to_rgb(data[start:start + w], scratch[r * w * 3:(r + 1) * w * 3], w)
                        rc = resize(region_ptr, h, w, w * 3, dst_ptr, out_h, out_w,
                                    resize_ptr, resize_bytes)
                else:
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
                    # The box to resize within the decoded image: the whole
                    # decoded region, or the crop of a whole-image decode.
                    by, bx, bh, bw, row = i, j, h, w, width
                    if rc == 0:
                        if crops:
                            by, bx, bh, bw, row = 0, 0, out_hw[0], out_hw[1], out_hw[1]
                        elif out_hw[0] != height or out_hw[1] != width:
                            rc = STATUS_SIZE_MISMATCH
                    if rc == 0:
                        if gray and not ((mode == jpg and jpeg_gray) or (mode == png and png_gray)):
                            # RGB decode for a one-channel output: keep channel 0
                            _keep_channel0(scratch, by, bx, bh, bw, row)
                            by, bx, row = 0, 0, bw
                        rc = resize(region_ptr + (by * row + bx) * px, bh, bw, row * px,
                                    dst_ptr, out_h, out_w, resize_ptr, resize_bytes)
                    if rc == 0 and swap_png and mode == png and out_c == 3:
                        _swap_rb(flat, out_pixels)
                status[k] = rc
            return images
        decode.is_parallel = True
        decode.with_seed = True
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
    channels : {None, 1, 3}
    png_channel_order : {'rgb', 'bgr'}
        As for :class:`ResizedCropRGBImageDecoder`.
    """

    def __init__(self, output_size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), channels=None,
                 png_channel_order='rgb'):
        super().__init__(output_size, channels=channels, png_channel_order=png_channel_order)
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
    channels : {None, 1, 3}
    png_channel_order : {'rgb', 'bgr'}
        As for :class:`ResizedCropRGBImageDecoder`.
    """

    def __init__(self, output_size, ratio=224 / 256, channels=None, png_channel_order='rgb'):
        super().__init__(output_size, channels=channels, png_channel_order=png_channel_order)
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}")
        self.ratio = float(ratio)

    def crop_sampler(self):
        ratio = self.ratio

        @njit(nogil=True)
        def sample(height, width):
            return get_center_crop(height, width, ratio)
        return sample
