"""Crop decoders: decode a box of each image and resize it (RandomResizedCrop, CenterCrop)."""
from abc import abstractmethod
from math import log

import numpy as np
from numba import njit

from .. import status
from ..errors import BackendNotFoundError
from ..types import IMAGE_MODES
from ..pipeline.compiler import Compiler
from .kernels import (get_center_crop, get_random_crop, gray_to_rgb, keep_channel0,
                      flip_resize_function, resize_functions, swap_rb)
from .simple import SimpleRGBImageDecoder
from .views import ViewsDecoder


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

    ``output_size`` (and the samplers' parameters) may be changed between
    epochs, e.g. for progressive resizing: the Loader declares and generates
    the code again. The compiled code reads the output height and width from
    the buffer it is given (BKD-074); a slot whose channels differ from the
    output's gives ``DECODER_BUFFER_TOO_SMALL``.

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

    #: True in a subclass whose stage-method overrides only add another role
    #: (FFCV-SSL's RandomResizedCrop): as a decoder its code, buffers and
    #: draws are this class's, so views may share its decode (PIP-012).
    decodes_as_view = False

    def __init__(self, output_size, channels=None, png_channel_order='rgb'):
        super().__init__(channels=channels, png_channel_order=png_channel_order)
        self.output_size = (int(output_size[0]), int(output_size[1]))

    def shares_decode(self, select_backend):
        """Whether views may share this decode (spec/pipeline.md PIP-012, ``can_share``).

        Only in the per-sample engine: not when JPEGs go to a backend of
        kind ``batch``, nor when no JPEG backend is found (the views' own
        decoders then say so).
        """
        if not can_share(self):
            return False
        try:
            return getattr(select_backend('jpeg'), 'kind', None) != 'batch'
        except BackendNotFoundError:
            return False

    def share_decode(self, views, names):
        """A :class:`~ffcvx.decoders.views.ViewsDecoder` of ``views`` (PIP-012)."""
        return ViewsDecoder(views, names)

    def absorb(self, operation):
        """Take over a following ``RandomHorizontalFlip`` (pipeline fusion).

        The flip then costs nothing: the resize writes the mirrored image
        directly. The flip is kept in :attr:`absorbed` and its probability
        (``horizontal_flip_probability``) read each time code is generated,
        so a change between epochs takes effect. Returns whether
        ``operation`` was absorbed; offering the same flip again (a second
        Loader on the same Operations) answers True.
        """
        if any(op is operation for op in self.absorbed):
            return True
        if self.absorbed or operation.horizontal_flip_probability is None:
            return False
        own_seeds = self.seed_values or (self.seed,)
        if any(seed is not None for seed in own_seeds):
            # A fused flip draws from the decoder's stream: an unseeded flip
            # would then repeat with the decoder's own seed, whatever the Loader's.
            return False
        self.absorbed.append(operation)
        return True

    @abstractmethod
    def crop_sampler(self):
        """A jitted ``(height, width) -> (i, j, h, w)`` giving the box to decode, pixels."""

    def view_draw(self):
        """A jitted ``(height, width, index, seed) -> (i, j, h, w, flip)``: one sample's draws.

        The same draws, in the same order, as this decoder's own code makes
        for sample ``index`` (``ffcvx.decoders.views.ViewsDecoder`` runs it
        for each view of a shared decode).
        """
        draw_box = self._seeded_region_sampler()
        flip_prob = self.flip_prob

        @njit(nogil=True)
        def draw(height, width, index, seed):
            i, j, h, w = draw_box(seed, index, height, width)
            flip = flip_prob > 0 and np.random.rand() < flip_prob
            return i, j, h, w, 1 if flip else 0
        return draw

    def _region_sampler(self):
        return self.crop_sampler()

    def declare_state_and_memory(self, previous_state):
        h, w = self.output_size
        return self.engine.declare(self, h, w, self._out_channels())

    def _slot_needs(self, record, slot_bytes):
        return (f"the output buffer must be (height, width, {self._out_channels()}) uint8 per "
                f"sample, one channel count with the output's")

    def _scratch_layout(self):
        # Per thread: the decoded region (RGB, or one byte per pixel when no
        # backend in use decodes RGB), then the resize kernel's scratch.
        max_h, max_w = self._max_size()
        _, _, resize_scratch = resize_functions(1 if self._one_channel() else 3)
        region_bytes = max_h * max_w * (3 if self._decodes_rgb() else 1)
        resize_bytes = int(resize_scratch(max_h, max_w, int(self.output_size[0]),
                                          int(self.output_size[1])))
        return region_bytes, max(resize_bytes, 0)

    def _scratch_bytes(self):
        return sum(self._scratch_layout())

    def _sample_code(self, helpers):
        # One path for every case (scratch layout: region | resize scratch).
        # The region is decoded, then resized straight into the output slot:
        # as RGB, or as one channel for a gray field decoded to one channel
        # (gray), where a backend without decode_region_gray decodes RGB and
        # channel 0 of the crop is kept in place first. in_c, out_c, gray,
        # swap_png and the backends' capabilities are closure constants, so
        # Numba compiles away the branches of the cases not in use (plain RGB
        # pays nothing for them).
        mem_read = self.memory_read
        decode_region, writes_gray, record, clear = helpers
        gray = self._one_channel()
        px = 1 if gray else 3      # bytes per pixel of what is resized
        resize = flip_resize_function(px)
        flip_prob = self.flip_prob
        region_bytes, resize_bytes = self._scratch_layout()
        in_c, out_c = self._in_channels(), self._out_channels()
        swap_png = self.png_channel_order == 'bgr'
        draw_box = self._seeded_region_sampler()
        my_range = Compiler.get_iterator()
        thread_id = Compiler.thread_id()
        raw, png = IMAGE_MODES['raw'], IMAGE_MODES['png']
        short_raw, too_small = status.DECODER_SHORT_RAW, status.DECODER_BUFFER_TOO_SMALL

        @njit(nogil=True)
        def draw_flip():
            # Jitted even when the step runs as plain Python (Compiler
            # disabled): only then does it draw from the generator that
            # seed_sample seeded, Numba's, and give the compiled batches.
            return flip_prob > 0 and np.random.rand() < flip_prob


        def decode(batch_indices, destination, metadata, storage_state, seed, shared):
            scratch_all, out_hw_all, errors = shared
            clear(errors)
            # The output size is the buffer's, read at run time (BKD-074).
            out_h, out_w = destination.shape[1], destination.shape[2]
            fits = destination.shape[3] == out_c
            for k in my_range(batch_indices.shape[0]):
                t = thread_id()
                if not fits:
                    record(errors, t, k, too_small)
                    continue
                record_ = metadata[batch_indices[k]]
                height = np.int64(record_['height'])
                width = np.int64(record_['width'])
                mode = record_['mode']
                # The crop, then the fused flip, draw from this sample's seed.
                i, j, h, w = draw_box(seed, batch_indices[k], height, width)
                flip = draw_flip()
                data = mem_read(record_['data_ptr'], storage_state)
                scratch = scratch_all[t]
                region_ptr = scratch.ctypes.data
                resize_ptr = region_ptr + region_bytes
                slot = destination[k]
                dst_ptr = slot.ctypes.data
                if mode == raw:
                    if data.shape[0] < height * width * in_c:
                        rc = short_raw
                    elif in_c == px:
                        # RGB, or gray to one channel: straight from the stored pixels
                        rc = resize(flip, data.ctypes.data + (i * width + j) * px, h, w, width * px,
                                    dst_ptr, out_h, out_w, resize_ptr, resize_bytes)
                    else:
                        # Expand only the crop box to RGB, rows packed (stride w*3).
                        for r in range(h):
                            start = (i + r) * width + j
                            gray_to_rgb(data[start:start + w], scratch[r * w * 3:(r + 1) * w * 3], w)
                        rc = resize(flip, region_ptr, h, w, w * 3, dst_ptr, out_h, out_w,
                                    resize_ptr, resize_bytes)
                else:
                    out_hw = out_hw_all[t]
                    rc, cropped = decode_region(mode, data, i, j, h, w, height, width, out_h, out_w,
                                                region_ptr, region_bytes, out_hw)
                    # The box to resize within the decoded image: the whole
                    # decoded region, or the crop of a whole-image decode.
                    by, bx, bh, bw, row = i, j, h, w, width
                    if rc == 0 and cropped:
                        by, bx, bh, bw, row = 0, 0, out_hw[0], out_hw[1], out_hw[1]
                    if rc == 0:
                        if gray and not writes_gray(mode):
                            # RGB decode for a one-channel output: keep channel 0
                            keep_channel0(scratch, by, bx, bh, bw, row)
                            by, bx, row = 0, 0, bw
                        rc = resize(flip, region_ptr + (by * row + bx) * px, bh, bw, row * px,
                                    dst_ptr, out_h, out_w, resize_ptr, resize_bytes)
                    if rc == 0 and swap_png and mode == png and out_c == 3:
                        swap_rb(slot.reshape(-1), out_h * out_w)
                if rc != 0:
                    record(errors, t, k, rc)
            return destination, errors
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
        scale_lo, scale_hi = float(self.scale[0]), float(self.scale[1])
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
        ratio = float(self.ratio)

        @njit(nogil=True)
        def sample(height, width):
            return get_center_crop(height, width, ratio)
        return sample


def can_share(decoder):
    """Whether ``decoder`` can be one view of a :class:`ViewsDecoder`.

    A crop decoder of ffcvx's own (its code, buffers and draws unchanged by
    a subclass: those are what the views decoder reproduces, or a subclass
    whose ``decodes_as_view`` says its overrides keep them as a decoder)
    with one or two seed streams, writing RGB from an RGB field without the
    PNG channel swap.
    """
    cls = type(decoder)
    own_code = all(getattr(cls, name) is getattr(ResizedCropRGBImageDecoder, name)
                   for name in ('declare_state_and_memory', 'generate_code', '_sample_code',
                                'finish_batch'))
    # One or two seed streams per view (``second_seed``): see _link.
    return (isinstance(decoder, ResizedCropRGBImageDecoder)
            and (own_code or decoder.decodes_as_view is True)
            and len(decoder.seed_values or (None,)) in (1, 2)
            and getattr(cls, 'view_draw', None) is not None
            and decoder.channels in (None, 3) and decoder.png_channel_order == 'rgb')
