"""SimpleRGBImageDecoder: whole images, each written at the start of its own slot."""
import numpy as np

from .. import status
from ..types import IMAGE_MODES
from ..pipeline.compiler import Compiler
from .image import ImageDecoder
from .kernels import gray_to_rgb, rgb_to_gray, swap_rb, whole_image


class SimpleRGBImageDecoder(ImageDecoder):
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

    Buffers (BKD-074): sample ``k``'s ``h * w * c`` bytes are written,
    packed, at the start of its slot ``destination[k]`` (FFCV's behaviour),
    and never past its end. A subclass may so override
    ``declare_state_and_memory`` to declare one ``AllocationQuery((max_h,
    max_w, c), uint8)`` and read images of several sizes, FFCV's way of
    loading variable-size images; a slot smaller than its image gives a
    ``DecodeError`` (``DECODER_BUFFER_TOO_SMALL``).

    Parameters
    ----------
    channels : {None, 1, 3}
        As for :class:`~ffcvx.decoders.image.ImageDecoder`.
    png_channel_order : {'rgb', 'bgr'}
        As for :class:`~ffcvx.decoders.image.ImageDecoder` (PNG samples
        only: raw and JPEG samples are not touched).

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
        While iterating, if a sample cannot be decoded; the message names
        the sample, the part that failed (``ffcvx.status``, BKD-070) and,
        for a backend failure, the decoder library's message.
    """

    def declare_state_and_memory(self, previous_state):
        heights = np.unique(self.metadata['height'])
        widths = np.unique(self.metadata['width'])
        if len(heights) > 1 or len(widths) > 1:
            raise TypeError(
                f"SimpleRGBImageDecoder needs images of one size, but this field has heights "
                f"{heights.min()}..{heights.max()} and widths {widths.min()}..{widths.max()}; "
                f"use RandomResizedCropRGBImageDecoder or CenterCropRGBImageDecoder")
        # Set here, from the data, every time: the same value on each re-plan.
        self.output_size = self._max_size()
        return self.engine.declare(self, *self.output_size, self._out_channels())

    def _scratch_bytes(self):
        # Full decodes go straight into the output slot, so scratch is only
        # needed when a one-channel output is decoded by a backend without
        # decode_region_gray: that decodes an RGB image into scratch first.
        h, w = self._max_size()
        return h * w * 3 if self._out_channels() == 1 and self._decodes_rgb() else 1

    def _region_sampler(self):
        return whole_image

    def _sample_code(self, helpers):
        # One code path for every case. in_c, out_c and swap_png are closure
        # constants, so Numba compiles away the branches of the cases not in
        # use: plain RGB in and out costs what it did before gray existed.
        mem_read = self.memory_read
        decode_region, writes_gray, record, clear = helpers
        my_range = Compiler.get_iterator()
        thread_id = Compiler.thread_id()
        raw, png = IMAGE_MODES['raw'], IMAGE_MODES['png']
        in_c, out_c = self._in_channels(), self._out_channels()
        swap_png = self.png_channel_order == 'bgr'
        short_raw, too_small = status.DECODER_SHORT_RAW, status.DECODER_BUFFER_TOO_SMALL
        mismatch = status.DECODER_SIZE_MISMATCH

        def decode(batch_indices, destination, metadata, storage_state, shared):
            scratch_all, out_hw_all, errors = shared
            clear(errors)
            for k in my_range(batch_indices.shape[0]):
                record_ = metadata[batch_indices[k]]
                height = np.int64(record_['height'])
                width = np.int64(record_['width'])
                mode = record_['mode']
                pixels = height * width
                t = thread_id()
                # The slot is whatever the Operation declared: only its first
                # pixels * out_c bytes are written, and only if they fit.
                slot = destination[k]
                if slot.nbytes < pixels * out_c:
                    record(errors, t, k, too_small)
                    continue
                flat = slot.reshape(-1)
                data = mem_read(record_['data_ptr'], storage_state)
                if mode == raw:
                    rc = 0
                    if data.shape[0] < pixels * in_c:
                        rc = short_raw
                    elif in_c == out_c:
                        flat[:pixels * out_c] = data[:pixels * out_c]
                    else:
                        gray_to_rgb(data, flat, pixels)
                else:
                    # Decoded straight into the slot when it has 3 channels,
                    # or 1 and the backend decodes one (gray); else an RGB
                    # decode into scratch keeps channel 0.
                    gray = writes_gray(mode)
                    direct = out_c == 3 or gray
                    buf = flat if direct else scratch_all[t]
                    out_hw = out_hw_all[t]
                    rc, _ = decode_region(mode, data, 0, 0, height, width, height, width, 0, 0,
                                          buf.ctypes.data, pixels if gray else pixels * 3, out_hw)
                    if rc == 0 and (out_hw[0] != height or out_hw[1] != width):
                        rc = mismatch
                    if rc == 0:
                        if not direct:
                            rgb_to_gray(buf, flat, pixels)
                        elif swap_png and mode == png and out_c == 3:
                            swap_rb(flat, pixels)
                if rc != 0:
                    record(errors, t, k, rc)
            return destination, errors
        decode.is_parallel = True
        return decode
