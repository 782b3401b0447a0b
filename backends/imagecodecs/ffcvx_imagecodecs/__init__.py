"""ffcvx decoder backend for PNG and JPEG using imagecodecs: a pure-pip fallback.

The entry point ``ffcvx.decoders: imagecodecs`` loads :data:`backend`, a
:class:`ffcvx.backend_api.PythonDecoderBackend` (kind ``python``, BKD-041).
The ``imagecodecs`` wheels bundle libpng and libjpeg-turbo, so this backend
needs no system packages: it is the default PNG decoder and the JPEG decoder
to fall back on where the turbojpeg backend cannot be built.

- PNG: ``imagecodecs.png_decode`` (libpng).
- JPEG: ``imagecodecs.jpeg8_decode(data, outcolorspace='RGB')``
  (libjpeg-turbo's libjpeg API, its default ISLOW IDCT).

imagecodecs (checked with 2026.3.6) has no region or scaled decode for either
format: ``jpeg8_decode`` takes ``tables``, ``colorspace``, ``outcolorspace``,
``shape`` (for abbreviated streams) and ``out`` only, ``png_decode`` only
``out``. So ``supports_crop = False`` and ``supports_scale = False``: every
image is decoded whole at full resolution, then cropped (BKD-018, BKD-019).

One channel (``supports_gray``, BKD-025, BKD-026): one-component JPEGs are
decoded with ``outcolorspace='GRAY'`` (the same samples the RGB decode
repeats; libjpeg's luma for a colour JPEG), PNGs keep channel 0 of what the
RGB decode would give (the gray channel, or R).

Colour (BKD-020): gray JPEGs are expanded by libjpeg; gray, gray + alpha,
1-bit and palette PNGs (libpng expands palettes) are converted to RGB, alpha
is dropped (not composited) and 16-bit samples keep their high byte. CMYK/YCCK
JPEGs are refused by libjpeg ("Unsupported color conversion request", status
-1).

imagecodecs is imported on first use (BKD-007), so loading the entry point
costs nothing.
"""
from ffcvx.backend_api import PythonDecoderBackend, sniff_format, to_gray8, to_rgb8

__all__ = ["backend", "ImagecodecsBackend"]


class ImagecodecsBackend(PythonDecoderBackend):
    """The backend object registered under ``ffcvx.decoders`` as ``imagecodecs``.

    Attributes
    ----------
    name : str
        ``"imagecodecs"``.
    formats : frozenset of str
        ``{"jpeg", "png"}``.
    supports_crop, supports_scale : bool
        False: imagecodecs decodes whole images only (BKD-018, BKD-019).
    supports_gray : bool
        True: :meth:`decode_gray` (BKD-026).
    device : str
        ``"cpu"``.
    kind : str
        ``"python"``.
    """

    name = "imagecodecs"
    formats = frozenset({"jpeg", "png"})
    supports_crop = False
    supports_scale = False
    supports_gray = True
    device = "cpu"
    kind = "python"
    requires = ("imagecodecs",)
    install_hint = "pip install imagecodecs"

    def available(self):
        """Whether imagecodecs imports and was built with its PNG and JPEG8 codecs (BKD-005).

        Returns
        -------
        ok : bool
        reason : str
            Empty when ``ok``; otherwise what is missing and how to fix it.
        """
        ok, why = super().available()
        if not ok:
            return ok, why
        import imagecodecs
        missing = [codec for codec in ("PNG", "JPEG8")
                   if not getattr(getattr(imagecodecs, codec, None), "available", False)]
        if missing:
            return False, (f"imagecodecs {imagecodecs.__version__} lacks the {', '.join(missing)} "
                           f"codec(s); pip install --force-reinstall imagecodecs (a binary wheel)")
        return True, ""

    def decode(self, data, crop, target):
        """Decode a whole PNG or JPEG file with imagecodecs.

        Parameters
        ----------
        data : bytes
            The complete file; its signature is PNG or JPEG, and it is not
            truncated (checked by the base class, BKD-021, BKD-022).
        crop, target : None
            Always None: this backend neither crops nor scales.

        Returns
        -------
        ndarray of uint8, shape (H, W, 3)

        Raises
        ------
        Exception
            imagecodecs' own (``PngError``, ``Jpeg8Error``, ``ValueError``) for
            corrupt or unsupported data; the base class turns it into
            ``DecodeError`` / status -1.
        """
        import imagecodecs

        if sniff_format(data) == "png":
            return to_rgb8(imagecodecs.png_decode(data))
        return to_rgb8(imagecodecs.jpeg8_decode(data, outcolorspace="RGB"))

    def decode_gray(self, data, crop, target):
        """Decode a whole PNG or JPEG file to one channel (BKD-026).

        Parameters
        ----------
        data : bytes
            As for :meth:`decode`.
        crop, target : None
            Always None.

        Returns
        -------
        ndarray of uint8, shape (H, W)
            PNG: channel 0 of :meth:`decode`'s pixels (a gray PNG decodes to
            2-D already). JPEG: libjpeg's grayscale output, the decoded
            component itself for a one-component JPEG (which :meth:`decode`
            repeats into R, G and B); CMYK/YCCK are refused as there.

        Raises
        ------
        Exception
            As for :meth:`decode`.
        """
        import imagecodecs

        if sniff_format(data) == "png":
            return to_gray8(imagecodecs.png_decode(data))
        return to_gray8(imagecodecs.jpeg8_decode(data, outcolorspace="GRAY"))

    def __repr__(self):
        return "<ffcvx decoder backend 'imagecodecs' (libpng + libjpeg-turbo wheels, full decode then crop)>"


#: The object the entry point loads.
backend = ImagecodecsBackend()
