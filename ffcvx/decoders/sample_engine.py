"""The per-sample engine: compiled code that decodes each sample into its own slot.

Used with backends of kind ``native`` and ``python`` (BKD-040, BKD-041). The
decoder's code is compiled by the pipeline with Numba and runs on the
Loader's threads without the GIL; per sample it calls, through one helper
(:class:`SampleHelpers`\\ ``.decode``), the ``decode_region`` of the backend
chosen for the sample's format, then (crop decoders) a resize kernel.

Buffers (BKD-074): the engine declares the output buffer the decoder asks
for, one ``AllocationQuery`` of uint8 images, and nothing else per batch, so
a subclass may declare its own buffer (FFCV's documented interface) and the
same code still works. Everything else is shared memory, allocated once per
Loader, one row per Numba thread:

* ``scratch`` (uint8): the decoded region and the resize kernel's scratch;
* ``out_hw`` (int64, 2): the size ``decode_region`` reports (BKD-012);
* ``errors`` (int64, 2): this thread's first failure in the batch, as
  ``(position in the batch, status code)``, code 0 for none. The code
  clears it at the start of each batch and returns it with the images;
  :meth:`SampleEngine.finish_batch` reads it and raises.
"""
from collections import namedtuple

import numba
import numpy as np
import torch
from numba import njit

from .. import status
from ..types import IMAGE_MODES
from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.state import State
from .headers import header_matches

_CPU = torch.device('cpu')
_UINT8 = np.dtype(np.uint8)
_INT64 = np.dtype(np.int64)

#: What a decoder's per-sample code is built from (see :meth:`SampleEngine.helpers`).
SampleHelpers = namedtuple('SampleHelpers', 'decode writes_gray record clear')


@njit(nogil=True)
def clear_errors(errors):
    """Set every thread's ``(position, code)`` row of ``errors`` to ``(0, 0)``."""
    for t in range(errors.shape[0]):
        errors[t, 0] = 0
        errors[t, 1] = 0


@njit(nogil=True)
def record_error(errors, t, k, code):
    """Record status ``code`` of batch position ``k`` in thread ``t``'s row, if it is that row's first.

    "First" is the lowest position, not the earliest in time: with every
    thread keeping its lowest, the batch's first failing sample is reported
    whichever thread decoded it, as when one status per sample was kept.
    """
    if errors[t, 1] == 0 or k < errors[t, 0]:
        errors[t, 0] = k
        errors[t, 1] = code


class SampleEngine:
    """The per-sample compiled engine of an image decoder (stateless; the decoder is passed in).

    Code signature of what :meth:`generate_code` returns:
    ``code(batch_indices, destination, metadata, storage_state[, seed], shared)
    -> (destination, errors)`` with ``destination`` the declared image
    buffer, ``uint8`` ``(B, H, W, C)``, and ``errors`` the shared
    ``int64`` ``(threads, 2)`` record; :meth:`finish_batch` hands the images on.
    """

    #: No backend of kind ``batch`` is in use.
    batch_backend = None

    def declare(self, decoder, height, width, channels):
        """``(State, AllocationQuery)`` of ``uint8`` images ``(height, width, channels)`` on the CPU."""
        shape = (int(height), int(width), int(channels))
        return State(True, _CPU, shape, _UINT8), AllocationQuery(shape, _UINT8)

    def shared_memory(self, decoder):
        """``(scratch, out_hw, errors)`` queries, one row per Numba thread (module docstring)."""
        threads = numba.config.NUMBA_NUM_THREADS
        return (AllocationQuery((threads, max(1, int(decoder._scratch_bytes()))), _UINT8),
                AllocationQuery((threads, 2), _INT64),
                AllocationQuery((threads, 2), _INT64))

    def helpers(self, decoder):
        """The jitted pieces every per-sample decode step shares.

        Returns
        -------
        SampleHelpers
            ``decode(mode, data, i, j, h, w, height, width, target_h, target_w,
            out_ptr, capacity, out_hw) -> (status, cropped)``: the one call of
            the backends. For the sample's mode (JPEG or PNG) it calls the
            chosen backend's function; a backend that ``supports_crop`` is
            asked for the box ``(i, j, h, w)`` scaled towards ``(target_h,
            target_w)`` (BKD-017) and ``cropped`` is True; any other decodes
            the whole ``height x width`` image (BKD-019), whose size it then
            checks against the metadata (``DECODER_SIZE_MISMATCH``). Before
            any backend runs, the header's size is compared with the record's
            ``height x width`` (``DECODER_HEADER_MISMATCH``, BKD-075), so no
            backend allocates for a size the record does not have. Another
            mode gives ``DECODER_BAD_MODE``. ``out_hw`` is an int64 array of 2.

            ``writes_gray(mode) -> bool``: whether ``decode`` writes one byte
            per pixel for that mode (``decode_region_gray``, BKD-027).

            ``record`` and ``clear``: :func:`record_error`, :func:`clear_errors`.
        """
        decode_jpeg, jpeg_crops, jpeg_gray = decoder._decode_function('jpeg')
        decode_png, png_crops, png_gray = decoder._decode_function('png')
        jpg, png = IMAGE_MODES['jpg'], IMAGE_MODES['png']
        bad_mode, mismatch = status.DECODER_BAD_MODE, status.DECODER_SIZE_MISMATCH
        bad_header = status.DECODER_HEADER_MISMATCH

        @njit(nogil=True)
        def writes_gray(mode):
            return (mode == jpg and jpeg_gray) or (mode == png and png_gray)

        @njit(nogil=True)
        def decode(mode, data, i, j, h, w, height, width, target_h, target_w, out_ptr, capacity,
                   out_hw):
            crops = (mode == jpg and jpeg_crops) or (mode == png and png_crops)
            if crops:
                cy, cx, ch, cw, th, tw = i, j, h, w, target_h, target_w
            else:
                cy, cx, ch, cw, th, tw = 0, 0, height, width, 0, 0
            # Two calls with the same arguments: a ctypes function is a
            # compile-time constant in Numba, so one variable cannot hold either.
            if (mode == jpg or mode == png) and not header_matches(data, height, width):
                rc = bad_header
            elif mode == jpg:
                rc = decode_jpeg(data.ctypes.data, data.shape[0], cy, cx, ch, cw, th, tw,
                                 out_ptr, capacity, out_hw.ctypes.data)
            elif mode == png:
                rc = decode_png(data.ctypes.data, data.shape[0], cy, cx, ch, cw, th, tw,
                                out_ptr, capacity, out_hw.ctypes.data)
            else:
                rc = bad_mode
            if rc == 0 and not crops and (out_hw[0] != height or out_hw[1] != width):
                rc = mismatch
            return rc, crops
        return SampleHelpers(decode, writes_gray, record_error, clear_errors)

    def generate_code(self, decoder):
        """The decoder's per-sample step (``decoder._sample_code``), built on :meth:`helpers`."""
        return decoder._sample_code(self.helpers(decoder))

    def finish_batch(self, decoder, result, destination, batch_indices, storage_state):
        """Return the batch's images, or raise the DecodeError of its first failing sample.

        Raises
        ------
        DecodeError
            Naming the dataset sample and, through ``ffcvx.status.describe``,
            the part that failed (BKD-070).
        """
        if not isinstance(result, tuple):
            # Code from a subclass's own generate_code: its errors are its own.
            return result
        images, errors = result
        codes = errors[:, 1]
        if not codes.any():
            return images
        rows = np.flatnonzero(codes)
        row = rows[np.argmin(errors[rows, 0])]
        k, code = int(errors[row, 0]), int(errors[row, 1])
        errors[:] = 0
        slot_bytes = int(images[k].nbytes) if k < len(images) else None
        raise decoder._decode_error(int(batch_indices[k]), code, storage_state, slot_bytes)
