"""The nvjpeg backend's class, :class:`NvJPEGBackend` (kind ``batch``, BKD-042).

Importable from :mod:`ffcvx_nvjpeg`, whose module docstring tells what it does.
"""
import threading

import numpy as np

from ffcvx.backend_api import check_complete
from ffcvx.errors import BackendNotFoundError, DecodeError

from .decode import (JPEG_SOI, INSTALL_LINE, TORCHVISION_HINT, CropOutsideImageError,
                     SampleDecodeError, jpeg_frame, resize, same_size_or_raise,
                     torchvision_decode)

class NvJPEGBackend:
    """The backend object registered under ``ffcvx.decoders`` as ``nvjpeg``.

    Parameters
    ----------
    decode_fn : callable, optional
        ``decode_fn(data, device) -> list of torch.Tensor``: decodes a list of
        1-D ``torch.uint8`` CPU tensors (complete JPEG files) into ``uint8``
        tensors of shape ``(3, h, w)`` (RGB; ``(1, h, w)`` gray is expanded),
        on ``device`` (a ``torch.device``); raises on any undecodable stream.
        Default :func:`torchvision_decode`. Tests pass a CPU decoder here.
    py_device : str or torch.device, optional
        The device :meth:`decode_region_py` decodes on; default ``device``.
    device : {'cuda', 'cpu'}, default ``'cuda'``
        Where :meth:`decode_batch` decodes and puts its output by default, and
        the ``device`` attribute the Loader reads (BKD-003): the device of
        the batches an image decoder gets from this backend. ``'cpu'`` (with a
        CPU ``decode_fn``) runs the Loader's whole batch path on a machine
        without a GPU; then :meth:`available` needs no CUDA device.

    Attributes
    ----------
    name : str
        ``"nvjpeg"``.
    formats : frozenset of str
        ``{"jpeg"}``.
    supports_crop : bool
        True: :meth:`decode_batch` crops each image to its box (on the GPU,
        after a full decode; nvJPEG has no region decode).
    supports_scale : bool
        False: every image is decoded at full resolution (BKD-018).
    device : str
        ``"cuda"`` (the output is a CUDA tensor), or ``"cpu"`` when built so.
    kind : str
        ``"batch"``: called once per batch from Python (BKD-042); not callable
        from compiled per-sample code.
    """

    name = "nvjpeg"
    formats = frozenset({"jpeg"})
    supports_crop = True
    supports_scale = False
    device = "cuda"
    kind = "batch"

    def __init__(self, decode_fn=None, py_device=None, device="cuda"):
        if device not in ("cuda", "cpu"):
            raise ValueError(f"device must be 'cuda' or 'cpu' (BKD-003), got {device!r}")
        self._custom_decode = decode_fn is not None
        self._decode_fn = decode_fn if decode_fn is not None else torchvision_decode
        # An instance attribute: the class's "cuda" describes the registered object.
        self.device = device
        self.py_device = device if py_device is None else py_device
        self._availability = None
        self._availability_lock = threading.Lock()

    # -- availability ---------------------------------------------------------------

    def available(self):
        """Whether this backend can decode on its ``device`` here (BKD-005).

        Checked in this order, and the first failure is reported:

        1. a CUDA device (``torch.cuda.is_available()``; skipped when
           ``device`` is ``'cpu'``);
        2. torchvision imports (skipped when a ``decode_fn`` was given);
        3. torchvision decodes a small JPEG on ``device`` (on CUDA: its build
           has nvJPEG; skipped when a ``decode_fn`` was given).

        The result is computed once and cached; it never raises.

        Returns
        -------
        ok : bool
        reason : str
            Empty when ``ok``. Otherwise starts with ``"no CUDA device"``,
            or is :data:`TORCHVISION_HINT`, or says that torchvision cannot
            decode JPEG on CUDA; each says what to install.
        """
        with self._availability_lock:
            if self._availability is None:
                try:
                    self._availability = self._check_available()
                except BaseException as exc:  # noqa: B036 -- BKD-005: available() must not raise
                    self._availability = (False, f"availability check failed: {exc!r}")
            return self._availability

    def _check_available(self):
        try:
            import torch
        except Exception as exc:
            return False, f"no CUDA device: torch cannot be imported ({exc}); {INSTALL_LINE}"
        if self.device == "cuda" and not torch.cuda.is_available():
            build = (f"torch {torch.__version__} is a CPU-only build" if torch.version.cuda is None
                     else f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU")
            return False, (f"no CUDA device: torch.cuda.is_available() is False ({build}); "
                           f"nvjpeg needs an NVIDIA GPU and {INSTALL_LINE}")
        if self._custom_decode:
            return True, ""
        try:
            import torchvision.io  # noqa: F401
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] == "torchvision":
                return False, TORCHVISION_HINT
            return False, f"torchvision cannot be imported ({exc}): {INSTALL_LINE}"
        except Exception as exc:   # a build that does not match torch raises other errors
            return False, f"torchvision cannot be imported ({exc}): {INSTALL_LINE}"
        try:
            import torchvision
            from torchvision.io import encode_jpeg
            probe = encode_jpeg(torch.zeros((3, 16, 16), dtype=torch.uint8), quality=90)
            out = torchvision_decode([probe], torch.device(self.device))
            if len(out) != 1 or tuple(out[0].shape) != (3, 16, 16) or out[0].device.type != self.device:
                raise RuntimeError(f"unexpected result {[tuple(t.shape) for t in out]}")
        except Exception as exc:
            return False, (f"torchvision {torchvision.__version__} cannot decode JPEG on "
                           f"{'CUDA' if self.device == 'cuda' else 'the CPU'} ({exc}); install a CUDA "
                           f"build with nvJPEG: {INSTALL_LINE}")
        return True, ""

    def function_address(self, name):
        """Always fails: a batch backend has no per-sample C function.

        Raises
        ------
        TypeError
            For every ``name``: this backend is of kind ``batch`` (BKD-042) and
            is called with :meth:`decode_batch`, not from compiled code.
        """
        raise TypeError(f"the nvjpeg decoder backend is a batch backend (kind 'batch', BKD-042): "
                        f"it has no C function {name!r} for compiled per-sample decoders; "
                        f"call backend.decode_batch(sources, crops, output_size, flips) once "
                        f"per batch instead")

    # -- decoding -------------------------------------------------------------------

    def decode_batch(self, sources, crops=None, output_size=None, flips=None, device=None):
        """Decode, crop, resize and mirror a batch of JPEGs on one device.

        Parameters
        ----------
        sources : sequence of bytes-like
            ``B`` complete JPEG files (``bytes``, ``bytearray``, ``memoryview`` or
            1-D ``uint8`` ndarrays). They are copied to CPU tensors, so the
            caller's memory need only stay valid during the call.
        crops : ndarray of int64, shape (B, 4), optional
            One box ``(y, x, h, w)`` per image in full-resolution pixels
            (rows ``y..y+h``, columns ``x..x+w``). Default: the whole images,
            which must then all have the same size.
        output_size : tuple of int (H, W), optional
            Every box is resized to this size with antialiased bilinear
            interpolation (``torch.nn.functional.interpolate(mode='bilinear',
            antialias=True, align_corners=False)`` in float32, rounded half to
            even). Default: no resize; the boxes must then all have the same size.
        flips : ndarray of bool, shape (B,), optional
            Mirror sample ``k`` left-right (after the resize) where
            ``flips[k]``. Default: no flips.
        device : str or torch.device, optional
            Where to decode and where the output lives; default the backend's
            ``device``. ``'cpu'`` is for tests with a CPU ``decode_fn`` (or
            torchvision's CPU decoder).

        Returns
        -------
        torch.Tensor of torch.uint8, shape (B, H, W, 3), on ``device``
            Channels last, RGB, C-contiguous. ``(H, W)`` is ``output_size``,
            or the common size of the boxes (or images) without it. An empty
            ``sources`` gives ``(0, H, W, 3)`` when ``output_size`` is given.

        Raises
        ------
        SampleDecodeError (a ffcvx.errors.DecodeError)
            A stream is not a JPEG, is truncated, is CMYK/YCCK (BKD-020) or is
            corrupt. The message names its position in the batch and carries
            the decoder's (torchvision's) message; ``.position`` holds it.
        CropOutsideImageError (a DecodeError and a ValueError)
            A box does not lie inside its image or has a non-positive size.
        ValueError
            Arguments of the wrong shape; or, without ``crops`` (or without
            ``output_size``), images (or boxes) of different sizes: the
            message lists the sizes and the positions that have them.
        ffcvx.errors.BackendNotFoundError
            ``device`` is CUDA and :meth:`available` is False (its reason), or
            torchvision is missing for the default decoder.
        """
        import torch

        device = torch.device(self.device if device is None else device)
        count = len(sources)
        crops = self._check_crops(crops, count)
        flips = self._check_flips(flips, count)
        if output_size is not None:
            output_size = (int(output_size[0]), int(output_size[1]))
            if output_size[0] <= 0 or output_size[1] <= 0:
                raise ValueError(f"output_size must be two positive ints, got {output_size}")
        if count == 0:
            if output_size is None:
                raise ValueError("empty batch without output_size: the output shape is unknown")
            return torch.empty((0, *output_size, 3), dtype=torch.uint8, device=device)
        if device.type == "cuda" and not self._custom_decode:
            ok, why = self.available()
            if not ok:
                raise BackendNotFoundError(f"decoder backend 'nvjpeg' is unavailable here: {why}")

        tensors = [self._prepare(k, source, torch) for k, source in enumerate(sources)]
        images = self._decode(tensors, device)
        sizes = [tuple(int(v) for v in image.shape[1:]) for image in images]

        if crops is None:
            same_size_or_raise(sizes, "images", "pass crops, or an output_size with crops")
            crops = np.array([(0, 0, h, w) for h, w in sizes], dtype=np.int64)
        for k, ((height, width), (y, x, h, w)) in enumerate(zip(sizes, crops.tolist())):
            if h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > height or x + w > width:
                raise CropOutsideImageError(
                    f"nvjpeg: sample at position {k} of the batch: crop (y={y}, x={x}, h={h}, "
                    f"w={w}) is not inside the {height}x{width} image", k)
        if output_size is None:
            same_size_or_raise([(h, w) for _, _, h, w in crops.tolist()], "crops",
                                "pass output_size to resize them")
            output_size = (int(crops[0, 2]), int(crops[0, 3]))

        out_h, out_w = output_size
        out = torch.empty((count, out_h, out_w, 3), dtype=torch.uint8, device=device)
        for k, (image, (y, x, h, w)) in enumerate(zip(images, crops.tolist())):
            region = image[:, y:y + h, x:x + w]
            if (h, w) != output_size:
                region = resize(region, output_size, torch)
            if flips is not None and flips[k]:
                region = region.flip(-1)
            # (3, H, W) -> (H, W, 3): the copy into the slot does the transpose.
            out[k].copy_(region.permute(1, 2, 0))
        return out

    def decode_region_py(self, data, crop=None, target=None):
        """Decode one JPEG (or a box of it) to host memory, via :meth:`decode_batch` (BKD-030).

        Parameters
        ----------
        data : bytes-like or ndarray of uint8, shape (n,)
            One complete JPEG file.
        crop : tuple of 4 int (y, x, h, w), optional
            Full-resolution pixels; default the whole image.
        target : tuple of 2 int, optional
            Ignored: no DCT scaling (``supports_scale`` False, BKD-018), the box
            comes back at full resolution.

        Returns
        -------
        ndarray of uint8, shape (h, w, 3), C-contiguous
            RGB pixels, copied back from ``py_device``.

        Raises
        ------
        ffcvx.errors.DecodeError
            Corrupt, truncated, CMYK or non-JPEG data, with the decoder's message.
        ValueError
            (:class:`CropOutsideImageError`) The crop is not inside the image
            or has a non-positive size.
        ffcvx.errors.BackendNotFoundError
            When decoding on CUDA is not available here.
        """
        crops = None if crop is None else np.array([[int(v) for v in crop]], dtype=np.int64)
        out = self.decode_batch([data], crops=crops, device=self.py_device)
        return np.ascontiguousarray(out[0].cpu().numpy())

    def __repr__(self):
        return "<ffcvx decoder backend 'nvjpeg' (kind batch, torchvision nvJPEG on CUDA, crop on GPU)>"

    # -- helpers --------------------------------------------------------------------

    @staticmethod
    def _check_crops(crops, count):
        if crops is None:
            return None
        crops = np.asarray(crops)
        if crops.shape != (count, 4) or not np.issubdtype(crops.dtype, np.integer):
            raise ValueError(f"crops must be an integer array of shape ({count}, 4) of "
                             f"(y, x, h, w); got {crops.dtype} {crops.shape}")
        return crops.astype(np.int64, copy=False)

    @staticmethod
    def _check_flips(flips, count):
        if flips is None:
            return None
        flips = np.asarray(flips)
        if flips.shape != (count,):
            raise ValueError(f"flips must have shape ({count},); got {flips.shape}")
        return flips.astype(bool, copy=False)

    def _prepare(self, k, source, torch):
        """Sample ``k`` as a 1-D uint8 CPU tensor, after the cheap structural checks."""
        try:
            raw = memoryview(source).cast("B")
        except (TypeError, ValueError) as exc:
            raise SampleDecodeError(f"nvjpeg: sample at position {k} of the batch is not a "
                                    f"contiguous bytes-like object ({exc})", k) from exc
        where = f"nvjpeg: sample at position {k} of the batch"
        if len(raw) == 0:
            raise SampleDecodeError(f"{where}: empty data", k)
        # The one copy of the sample: private and writable (the caller's
        # buffer may be reused afterwards, and torch wraps only writable
        # memory); the checks below read it without copying again.
        data = bytearray(raw)
        if data[:3] != JPEG_SOI:
            raise SampleDecodeError(f"{where}: not JPEG data (starts {bytes(data[:8])!r})", k)
        try:
            check_complete(data, "jpeg")  # nvJPEG may decode a cut-off file without error
        except DecodeError as exc:
            raise SampleDecodeError(f"{where}: {exc}", k) from exc
        frame = jpeg_frame(data)
        if frame is not None and frame[2] == 4:
            raise SampleDecodeError(f"{where}: CMYK/YCCK JPEGs are not decoded (BKD-020)", k)
        return torch.frombuffer(data, dtype=torch.uint8)

    def _decode(self, tensors, device):
        """Run ``decode_fn`` on the batch; on failure find the culprit sample by sample."""
        import torch

        try:
            images = self._decode_fn(tensors, device)
        except ImportError as exc:
            raise BackendNotFoundError(f"decoder backend 'nvjpeg' cannot decode: {exc}; "
                                       f"{TORCHVISION_HINT}") from exc
        except Exception as batch_exc:
            # torchvision returns nothing and does not say which stream failed;
            # decoding one at a time names it (errors are rare, so is this cost).
            for k, tensor in enumerate(tensors):
                try:
                    self._decode_fn([tensor], device)
                except Exception as exc:
                    message = str(exc).strip() or type(exc).__name__
                    raise SampleDecodeError(f"nvjpeg: sample at position {k} of the batch: "
                                            f"JPEG decode failed: {message}", k) from exc
            raise DecodeError(f"nvjpeg: decoding the batch of {len(tensors)} failed, but every "
                              f"sample decodes alone: {batch_exc}") from batch_exc
        images = list(images)
        if len(images) != len(tensors):
            raise DecodeError(f"nvjpeg: the decoder returned {len(images)} images for "
                              f"{len(tensors)} streams")
        result = []
        for k, image in enumerate(images):
            if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3) \
                    or image.shape[1] == 0 or image.shape[2] == 0:
                raise SampleDecodeError(f"nvjpeg: sample at position {k} of the batch: the "
                                        f"decoder returned {image.dtype} {tuple(image.shape)}, "
                                        f"not uint8 (3, h, w)", k)
            if image.shape[0] == 1:  # gray: R = G = B (BKD-020)
                image = image.expand(3, -1, -1)
            result.append(image.to(device))
        return result
