"""ffcvx decoder backend for JPEG and PNG using Pillow: the plain reference decoder.

The entry point ``ffcvx.decoders: pillow`` loads :data:`backend`, a
:class:`ffcvx.backend_api.PythonDecoderBackend` (kind ``python``, BKD-041):
compiled decoders call its ``decode_region`` through a ctypes callback that
takes the GIL while it runs. Pillow releases the GIL inside its codecs, so
several Loader threads still decode in parallel, though less well than with a
native backend.

It has no shortcut: every image is decoded whole at full resolution, then
cropped (``supports_crop = False``, ``supports_scale = False``; BKD-018,
BKD-019). That makes it the reference the faster backends are compared with.

One channel (``supports_gray``, BKD-025, BKD-026): ``decode_region_gray``
returns a mode ``L`` image's pixels as they are, and channel 0 of the RGB
decode of any other image, so it always equals channel 0 of
``decode_region``.

Colour (BKD-020): RGB images come out unchanged; gray, 1-bit, palette and
YCbCr images are converted to RGB; an alpha channel is dropped (not
composited); 16-bit samples keep their high byte. CMYK/YCCK JPEGs are refused
(status -1), as with the other backends: without the embedded colour profile
there is no single right conversion.

Pillow is imported on first use (BKD-007), so loading the entry point costs
nothing.
"""
import io

from ffcvx.backend_api import PythonDecoderBackend, sniff_format, to_rgb8

__all__ = ["backend", "PillowBackend"]

# Pillow's plugin name per backend format: Image.open is restricted to it, so
# data of another format never reaches another of Pillow's many decoders.
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG"}


class PillowBackend(PythonDecoderBackend):
    """The backend object registered under ``ffcvx.decoders`` as ``pillow``.

    Attributes
    ----------
    name : str
        ``"pillow"``.
    formats : frozenset of str
        ``{"jpeg", "png"}``.
    supports_crop, supports_scale : bool
        False: full decode, then crop (BKD-019); targets are ignored (BKD-018).
    supports_gray : bool
        True: :meth:`decode_gray` (BKD-026).
    device : str
        ``"cpu"``.
    kind : str
        ``"python"``.
    """

    name = "pillow"
    formats = frozenset({"jpeg", "png"})
    supports_crop = False
    supports_scale = False
    supports_gray = True
    device = "cpu"
    kind = "python"
    requires = ("PIL.Image",)
    install_hint = "pip install pillow"

    def decode(self, data, crop, target):
        """Decode a whole JPEG or PNG file with Pillow.

        Parameters
        ----------
        data : bytes
            The complete file; its signature is that of ``fmt``, and it is not
            truncated (checked by the base class, BKD-021, BKD-022).
        crop, target : None
            Always None: this backend neither crops nor scales.

        Returns
        -------
        ndarray of uint8, shape (H, W, 3)

        Raises
        ------
        ValueError
            For a CMYK/YCCK JPEG.
        Exception
            Pillow's own (``OSError``, ``SyntaxError``, ...) for corrupt data;
            the base class turns it into ``DecodeError`` / status -1.
        """
        with _open(data) as image:
            return _pil_to_rgb8(image)

    def decode_gray(self, data, crop, target):
        """Decode a whole JPEG or PNG file to one channel (BKD-026).

        Parameters
        ----------
        data : bytes
            As for :meth:`decode`.
        crop, target : None
            Always None.

        Returns
        -------
        ndarray of uint8, shape (H, W)
            A mode ``L`` image (one-component JPEG, 8-bit gray PNG) as
            decoded; otherwise channel 0 of :meth:`decode`'s pixels.

        Raises
        ------
        ValueError, Exception
            As for :meth:`decode`.
        """
        import numpy as np

        with _open(data) as image:
            if image.mode == "L":
                return np.asarray(image)
            return _pil_to_rgb8(image)[:, :, 0]

    def __repr__(self):
        return "<ffcvx decoder backend 'pillow' (Pillow, JPEG + PNG, full decode then crop)>"


def _open(data):
    """The loaded Pillow image of a JPEG or PNG file, its plugin fixed by the signature."""
    from PIL import Image

    image = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[sniff_format(data)]])
    try:
        image.load()
    except BaseException:
        image.close()
        raise
    return image


def _pil_to_rgb8(image):
    """Packed RGB ``ndarray[uint8] (H, W, 3)`` of a loaded Pillow image (BKD-020)."""
    import numpy as np

    mode = image.mode
    if mode in ("CMYK", "YCCK"):
        raise ValueError(f"{mode} JPEGs are not supported (convert to RGB first)")
    if mode in ("RGB", "RGBA", "L", "LA"):
        return to_rgb8(np.asarray(image))
    if mode.startswith("I;16") or mode == "I":
        # 16-bit gray: keep the high byte, as for 16-bit RGB (which Pillow
        # itself reads as 8-bit RGB by taking the high byte).
        wide = np.asarray(image).astype(np.int64)
        return to_rgb8((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))
    # 1-bit, palette (with or without transparency), YCbCr, ...
    return to_rgb8(np.asarray(image.convert("RGB")))


#: The object the entry point loads.
backend = PillowBackend()
