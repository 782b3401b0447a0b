"""FFCV's ``ffcv.libffcv``: the C helpers custom decoders call from compiled code.

Each function is plain Python over ctypes calls, as in FFCV, so a custom
Operation can compile it (``Compiler.compile(imdecode)``) or call it from a
function that is compiled, and it also runs uncompiled (``Compiler.set_enabled(False)``).
The C behind them is ffcvx's: the JPEG decoder is the default backend of the
registry for ``"jpeg"`` (turbojpeg when installed, spec/backends.md BKD-052),
chosen when this module is first imported; the resize is ffcvx's antialiased
kernel (``ffcvx/_ext/resize.pyx``), not OpenCV's ``INTER_AREA``.
"""
import ctypes

import numpy as np

from .backend_api import DECODE_REGION_PROTO
from .decoders.kernels import resize_functions
from .registry import Registry, decoder_for_format

# The backend object owns the function behind the address (for a python
# backend its ctypes thunk, BKD-041), so it is kept for the module's lifetime.
_JPEG_BACKEND = decoder_for_format(Registry('ffcvx.decoders'), 'jpeg')
_decode_region = DECODE_REGION_PROTO(_JPEG_BACKEND.function_address('decode_region'))
_resize_rgb, _, _resize_scratch = resize_functions(3)

_libc = ctypes.CDLL(None, use_errno=True)
_pread = _libc.pread
_pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64]
_pread.restype = ctypes.c_ssize_t
_memmove = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_size_t)(ctypes.cast(_libc.memmove, ctypes.c_void_p).value)


def read(fileno, destination, offset):
    """``pread`` ``destination.size`` bytes at byte ``offset`` of an open file into ``destination``.

    Returns
    -------
    int
        Bytes read, or -1 on error (``errno`` set), as POSIX ``pread``.
    """
    return _pread(fileno, destination.ctypes.data, destination.size, offset)


def memcpy(source, dest):
    """Copy the bytes of ``source`` (``source.size * itemsize``) to the start of ``dest``.

    Both must be C-contiguous and ``dest`` at least as large, in bytes; FFCV's
    decoders use it to copy a raw image into its (possibly larger) slot.
    """
    _memmove(dest.ctypes.data, source.ctypes.data, source.size * source.itemsize)


def imdecode(source, dst, source_height, source_width, crop_height=None, crop_width=None,
             offset_x=0, offset_y=0, scale_factor_num=1, scale_factor_denom=1,
             enable_crop=False, do_flip=False):
    """Decode a JPEG (a crop of it, at a DCT scale) into ``dst``, FFCV's signature.

    Parameters
    ----------
    source : ndarray[uint8], shape (n,)
        One complete JPEG file.
    dst : ndarray[uint8], C-contiguous
        Receives the pixels packed as ``(h, w, 3)`` rows from its first byte.
    source_height, source_width : int, pixels
    crop_height, crop_width, offset_x, offset_y : int, pixels
        The window decoded when ``enable_crop`` (else the whole image).
    scale_factor_num, scale_factor_denom : int
        Decode at this scale: the backend's smallest DCT scale ``k/8`` no
        smaller than ``num/denom`` (BKD-017), so ``1/2`` gives half size.
    enable_crop, do_flip : bool
        ``do_flip`` mirrors the result left-right.

    Returns
    -------
    int
        0, or the backend's status (spec/backends.md BKD-013: -1 corrupt,
        -2 ``dst`` too small, -3 bad arguments).
    """
    if enable_crop:
        top, left, height, width = offset_y, offset_x, crop_height, crop_width
    else:
        top, left, height, width = 0, 0, source_height, source_width
    target_h = height * scale_factor_num // scale_factor_denom
    target_w = width * scale_factor_num // scale_factor_denom
    out_hw = np.zeros(2, np.int64)
    rc = _decode_region(source.ctypes.data, source.size, top, left, height, width,
                        target_h, target_w, dst.ctypes.data, dst.size, out_hw.ctypes.data)
    if rc == 0 and do_flip:
        flat = dst.reshape(-1)
        h, w = out_hw[0], out_hw[1]
        for r in range(h):
            row = r * w * 3
            for c in range(w // 2):
                a = row + 3 * c
                b = row + 3 * (w - 1 - c)
                for k in range(3):
                    t = flat[a + k]
                    flat[a + k] = flat[b + k]
                    flat[b + k] = t
    return rc


def resize_crop(source, start_row, end_row, start_col, end_col, destination):
    """Resample ``source[start_row:end_row, start_col:end_col]`` into ``destination``.

    Parameters
    ----------
    source : ndarray[uint8], shape (H, W, 3), rows C-contiguous
    start_row, end_row, start_col, end_col : int, pixels
    destination : ndarray[uint8], shape (h, w, 3), C-contiguous

    Returns
    -------
    int
        0, or the kernel's nonzero status for bad sizes. FFCV returned
        nothing and resampled with OpenCV's ``INTER_AREA``; this is ffcvx's
        antialiased kernel (the decoders' one).
    """
    dst_h, dst_w = destination.shape[0], destination.shape[1]
    src_h, src_w = end_row - start_row, end_col - start_col
    scratch = np.empty(max(_resize_scratch(src_h, src_w, dst_h, dst_w), 1), np.uint8)
    start = source.ctypes.data + start_row * source.strides[0] + start_col * 3
    return _resize_rgb(start, src_h, src_w, source.strides[0], destination.ctypes.data,
                       dst_h, dst_w, scratch.ctypes.data, scratch.size)
