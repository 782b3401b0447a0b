"""The adapter of decoder backends of kind ``python`` (BKD-041): :class:`PythonDecoderBackend`.

Turns a plain Python ``decode(data, crop, target) -> ndarray`` into a
``decode_region`` C function that compiled (Numba) code can call, and an
optional ``decode_gray`` into ``decode_region_gray`` (BKD-025, BKD-026).
Importable from :mod:`ffcvx.backend_api`.
"""
import ctypes
import importlib
from abc import ABC, abstractmethod

import numpy as np

from ..errors import DecodeError
from .contract import (DECODE_BAD_ARGUMENT, DECODE_CAPACITY, DECODE_CORRUPT, DECODE_OK,
                       DECODE_REGION_PROTO, GRAY_FUNCTION, BadRegionError, check_complete,
                       sniff_format)


class _Memory:
    """Exposes caller-owned memory to numpy without copying (``__array_interface__``).

    ctypes array types (``c_uint8 * n``) would do the same, but ctypes caches
    one type per distinct length for the life of the process: with a new
    length for nearly every JPEG, that cache would grow without bound.
    """

    __slots__ = ('__array_interface__',)

    def __init__(self, address, shape, typestr, readonly):
        self.__array_interface__ = {'version': 3, 'data': (address, readonly),
                                    'shape': shape, 'typestr': typestr}


def _memory(address, shape, typestr, readonly):
    return np.asarray(_Memory(address, shape, typestr, readonly))


class PythonDecoderBackend(ABC):
    """Base class of decoder backends of kind ``python`` (BKD-041).

    A subclass sets the class attributes and implements :meth:`decode`; this
    class provides everything else the backend interface asks for:
    ``function_address('decode_region')`` (a ctypes callback with the exact C
    signature of BKD-010, callable from nogil compiled code: the ctypes thunk
    takes the GIL itself), ``decode_region_py`` (BKD-030), crop and scale
    handling for libraries without them (BKD-018, BKD-019), format and
    truncation checks (BKD-021, BKD-022), the capacity check (BKD-014) and
    the status codes (BKD-013). A subclass that sets ``supports_gray`` and
    implements :meth:`decode_gray` also gets ``decode_region_gray``
    (BKD-025, BKD-026), with the same checks.

    A subclass that defines ``__init__`` must call ``super().__init__()``.

    Attributes
    ----------
    name : str
        The entry-point name (BKD-001).
    formats : frozenset of str
        Subset of ``{'jpeg', 'png'}`` (BKD-002).
    supports_crop : bool
        True when :meth:`decode` decodes only the crop it is given; False: it
        is always asked for the whole image and this class crops (BKD-019).
    supports_scale : bool
        True when :meth:`decode` honours ``target`` (BKD-017); needs
        ``supports_crop``.
    supports_gray : bool
        True when :meth:`decode_gray` is implemented (BKD-025); only then
        ``function_address('decode_region_gray')`` answers.
    device : str
        ``'cpu'``.
    kind : str
        ``'python'``.
    requires : tuple of str
        Modules :meth:`available` tries to import.
    install_hint : str
        What to run when one of them is missing.
    """

    name = None
    formats = frozenset()
    supports_crop = False
    supports_scale = False
    supports_gray = False
    device = 'cpu'
    kind = 'python'
    requires = ()
    install_hint = ''

    def __init__(self):
        # The CFUNCTYPE objects own the C thunks whose addresses compiled code
        # calls; they live exactly as long as this backend object (BKD-041).
        self._callbacks = {'decode_region': DECODE_REGION_PROTO(self._decode_region_c),
                           GRAY_FUNCTION: DECODE_REGION_PROTO(self._decode_region_gray_c)}
        self._addresses = {name: ctypes.cast(callback, ctypes.c_void_p).value
                           for name, callback in self._callbacks.items()}

    # -- to implement -----------------------------------------------------------

    @abstractmethod
    def decode(self, data, crop, target):
        """Decode one encoded image; the only method a subclass must implement.

        Parameters
        ----------
        data : bytes
            The complete encoded file (a copy: the backend may keep it). Its
            signature has already been checked against ``formats`` and it is
            not truncated (BKD-021, BKD-022).
        crop : tuple of 4 int (y, x, h, w) or None
            Full-resolution pixels. Always None unless ``supports_crop``.
        target : tuple of 2 int (target_h, target_w) or None
            Always None unless ``supports_scale``; None means full scale.

        Returns
        -------
        ndarray of uint8, shape (h, w, 3)
            Any strides (a view is fine). :func:`to_rgb8` converts gray,
            alpha and 16-bit results.

        Raises
        ------
        BadRegionError
            When given a crop that is not inside the image (status -3).
        Exception
            Anything else means the data could not be decoded (status -1);
            the message should be the library's.
        """

    def decode_gray(self, data, crop, target):
        """Decode one encoded image to one channel; needed with ``supports_gray`` (BKD-026).

        Parameters
        ----------
        data, crop, target
            As for :meth:`decode`.

        Returns
        -------
        ndarray of uint8, shape (h, w)
            For a one-component (grayscale) source exactly channel 0 of what
            :meth:`decode` returns for the same arguments. :func:`to_gray8`
            converts what :func:`to_rgb8` would take.

        Raises
        ------
        BadRegionError, Exception
            As for :meth:`decode`.
        """
        raise NotImplementedError(f"{type(self).__name__} declares supports_gray but does not "
                                  f"implement decode_gray")

    # -- the backend interface --------------------------------------------------

    def available(self):
        """Whether the backend can run here (BKD-005).

        Returns
        -------
        ok : bool
            True when every module in ``requires`` imports.
        reason : str
            Empty when ``ok``; otherwise the import error and ``install_hint``.
        """
        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception as exc:  # ImportError, or a broken build raising anything
                hint = f"; {self.install_hint}" if self.install_hint else ''
                return False, f"cannot import {module} ({exc}){hint}"
        return True, ''

    def function_address(self, name):
        """Address of the backend's C function ``name`` (BKD-010, BKD-026).

        Parameters
        ----------
        name : str
            ``'decode_region'``, or ``'decode_region_gray'`` when
            ``supports_gray``.

        Returns
        -------
        int
            Address of a ctypes callback with the signature of
            :data:`DECODE_REGION_PROTO`; valid while this object lives.

        Raises
        ------
        KeyError
            If ``name`` is not a function of this backend.
        """
        names = ('decode_region', GRAY_FUNCTION) if self.supports_gray else ('decode_region',)
        if name not in names:
            raise KeyError(f"{self.name} backend has no function {name!r}; "
                           f"it exports {', '.join(names)}")
        if getattr(self, '_addresses', None) is None:
            raise TypeError(f"{type(self).__name__}.__init__ did not call "
                            f"PythonDecoderBackend.__init__()")
        return self._addresses[name]

    def decode_region_py(self, data, crop=None, target=None, gray=False):
        """Decode (a region of) an image from Python (BKD-030).

        Parameters
        ----------
        data : bytes-like or ndarray of uint8, shape (n,)
            The complete encoded file.
        crop : tuple of 4 int (y, x, h, w), optional
            Full-resolution pixels; default the whole image.
        target : tuple of 2 int (target_h, target_w), optional
            Smallest acceptable output size (only used when
            ``supports_scale``); default full scale.
        gray : bool, optional
            Decode one channel, the pixels ``decode_region_gray`` writes
            (needs ``supports_gray``; an ffcvx convenience, not in BKD-030).

        Returns
        -------
        ndarray of uint8, shape (h, w, 3) or, with ``gray``, (h, w); C-contiguous
            The same pixels ``decode_region`` (``decode_region_gray``) writes.

        Raises
        ------
        ffcvx.errors.DecodeError
            Corrupt, truncated or unsupported data, or a format this backend
            does not declare; the message carries the library's.
        ValueError
            (:class:`BadRegionError`) The crop is not inside the image or has a
            non-positive size.
        ValueError
            ``gray`` without ``supports_gray`` (as ``function_address`` then
            refuses ``decode_region_gray``, BKD-010).
        """
        if gray and not self.supports_gray:
            raise ValueError(f"{self.name} backend has no gray decode (supports_gray is False)")
        if isinstance(data, np.ndarray):
            if not data.flags.c_contiguous:
                raise ValueError("array data must be C-contiguous")
            data = data.reshape(-1).view(np.uint8)
        region = self._region(data, crop, target, gray)
        return np.ascontiguousarray(region)

    def __repr__(self):
        return (f"<ffcvx decoder backend {self.name!r} ({type(self).__name__}, kind python, "
                f"formats {', '.join(sorted(self.formats))})>")

    # -- shared by both entry points ----------------------------------------------

    def _region(self, data, crop, target, gray=False):
        """Checked decode of ``crop`` at ``target``; raises DecodeError or BadRegionError.

        ``gray``: with :meth:`decode_gray`, shape ``(h, w)``; else ``(h, w, 3)``.
        """
        if crop is not None:
            y, x, h, w = (int(v) for v in crop)
            if h <= 0 or w <= 0 or y < 0 or x < 0:
                raise BadRegionError(f"crop (y={y}, x={x}, h={h}, w={w}) has a negative "
                                     f"position or a non-positive size")
            crop = (y, x, h, w)
        if target is not None and (int(target[0]) <= 0 or int(target[1]) <= 0):
            target = None
        # One copy into bytes: the caller's memory is only valid during the
        # call, and Pillow and imagecodecs both take bytes without copying again.
        data = data if isinstance(data, bytes) else memoryview(data).cast('B').tobytes()
        if not data:
            # As src_len <= 0 in C: a bad argument (BKD-015, BKD-030), not corrupt data.
            raise BadRegionError(f"{self.name}: empty data (no bytes to decode)")
        fmt = sniff_format(data)
        if fmt is None or fmt not in self.formats:
            what = f"{fmt.upper()} data" if fmt else f"data starting {bytes(data[:8])!r}"
            raise DecodeError(f"{self.name} decodes {', '.join(sorted(self.formats))}; got {what}")
        check_complete(data, fmt)
        own_crop = crop if self.supports_crop else None
        own_target = target if (self.supports_scale and own_crop is not None) else None
        try:
            image = (self.decode_gray if gray else self.decode)(data, own_crop, own_target)
        except (DecodeError, BadRegionError):
            raise
        except Exception as exc:  # the library's own exception types vary
            message = str(exc) or type(exc).__name__
            raise DecodeError(f"{fmt.upper()} decode failed ({self.name}): {message}") from exc
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 \
                or image.ndim != (2 if gray else 3) or (not gray and image.shape[2] != 3):
            shape = getattr(image, 'shape', None)
            method, want = ('decode_gray', '(h, w)') if gray else ('decode', '(h, w, 3)')
            raise DecodeError(f"{self.name}.{method} returned {type(image).__name__} {shape}, "
                              f"not uint8 {want}")
        if crop is None:
            return image
        y, x, h, w = crop
        if own_crop is None:
            full_h, full_w = image.shape[:2]
            if y + h > full_h or x + w > full_w:
                raise BadRegionError(f"crop (y={y}, x={x}, h={h}, w={w}) is not inside the "
                                     f"{full_h}x{full_w} image")
            return image[y:y + h, x:x + w]
        if own_target is None and image.shape[:2] != (h, w):
            raise DecodeError(f"{self.name}.decode returned {image.shape[:2]} for a {h}x{w} crop")
        return image

    def _decode_region_gray_c(self, src, src_len, crop_y, crop_x, crop_h, crop_w,
                              target_h, target_w, out, out_capacity, out_hw):
        # Body of the decode_region_gray callback (BKD-026).
        return self._decode_region_c(src, src_len, crop_y, crop_x, crop_h, crop_w,
                                     target_h, target_w, out, out_capacity, out_hw, True)

    def _decode_region_c(self, src, src_len, crop_y, crop_x, crop_h, crop_w,
                         target_h, target_w, out, out_capacity, out_hw, gray=False):
        # Body of the ctypes callbacks. An exception escaping a ctypes callback
        # is printed and the C caller sees 0 (success, garbage pixels), so
        # every path must end in a status code (BKD-024).
        try:
            # c_void_p arguments arrive as int, or None for NULL.
            if not src or not out_hw or src_len <= 0:
                return DECODE_BAD_ARGUMENT
            data = _memory(src, (int(src_len),), '|u1', True)
            target = (target_h, target_w) if target_h > 0 and target_w > 0 else None
            try:
                region = self._region(data, (crop_y, crop_x, crop_h, crop_w), target, gray)
            except BadRegionError:
                return DECODE_BAD_ARGUMENT
            except Exception:
                return DECODE_CORRUPT
            h, w = region.shape[:2]
            hw = _memory(out_hw, (2,), '<i8', False)
            hw[0] = h
            hw[1] = w
            # Capacity first: nothing may be written past out_capacity (BKD-014).
            if not out or out_capacity < region.size:
                return DECODE_CAPACITY
            np.copyto(_memory(out, region.shape, '|u1', False), region)
            return DECODE_OK
        except BaseException:  # noqa: B036 -- see the comment above; never let anything escape
            return DECODE_CORRUPT
