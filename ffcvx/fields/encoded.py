"""Encoded writer inputs of the image fields: file paths, encoded bytes, unloaded PIL JPEGs.

An image field takes, besides pixels (arrays, PIL images), an image still in
its file format: a path (``str`` / ``os.PathLike``), the file's bytes
(``bytes``, ``bytearray``, ``memoryview``) or a ``PIL.JpegImagePlugin.JpegImageFile``
that ``Image.open`` returned and nobody has ``load()``\\ ed yet. The bytes
are read without decoding; :func:`parse_jpeg` reads a JPEG's frame header in
pure Python, so a JPEG that every decoder backend and FFCV 1.0 read can be
stored byte for byte (``jpeg_passthrough``); anything else is decoded with
Pillow (:meth:`EncodedImage.decode`) and written as pixels are.
"""
import io
import os

from PIL import Image

# the JPEG header parser lives in .jpeg_header, the shrink rule in .image_codecs;
# both importable from here as before
from .image_codecs import DRAFT_MARGIN, area_resize, decode_compiled, target_size
from .jpeg_header import JpegInfo, jpeg_passes_through, parse_jpeg

__all__ = ['DRAFT_MARGIN', 'EncodedImage', 'JpegInfo', 'encoded_input', 'jpeg_passes_through', 'parse_jpeg',
           'target_size']


class EncodedImage:
    """An image still in its file format, and the name of where it came from.

    Attributes
    ----------
    data : bytes
        The file's bytes, not decoded.
    name : str
        For messages: ``"image file '/path'"``, ``"encoded image bytes"``, ...
    draft : bool
        Whether :meth:`decode` may use libjpeg's reduced-scale decoding to
        shrink (paths and bytes; not PIL images, which FFCV decodes whole).
    """

    def __init__(self, data, name, draft=True):
        self.data = data
        self.name = name
        self.draft = draft
        self._header = False
        self._info = False

    def _parse(self, walk):
        if self.data[:2] != b'\xff\xd8':
            return None
        try:
            return parse_jpeg(self.data, walk=walk)
        except ValueError:
            return None

    @property
    def jpeg_header(self):
        """JpegInfo with ``complete`` None (the file is not walked), or None when not a JPEG.

        What a decode needs (size, components, SOF kind), read from the
        markers up to the frame header only: cheap for any file size.
        """
        if self._header is False:
            self._header = self._parse(walk=False)
        return self._header

    @property
    def jpeg_info(self):
        """JpegInfo with ``complete`` walked, or None when no JPEG frame header could be read.

        Walks the whole file (:func:`parse_jpeg`): ask only when a pass-through
        (FMT-090) is being considered; :attr:`jpeg_header` for anything else.
        """
        if self._info is False:
            self._info = self._parse(walk=True)
        return self._info

    def decode(self, to_pixels, field_name, max_resolution, channels=None):
        """Decode into ``to_pixels(image)``'s pixels; ``(pixels, shrunk)``.

        A JPEG that must shrink is decoded at the smallest libjpeg DCT scale
        (1/8, 1/4, 1/2) that keeps at least :data:`DRAFT_MARGIN` (3) times
        the target size, then area-shrunk to FFCV's target size of the full image (``shrunk`` is
        then True: the pixels are already at that size).

        With ``channels`` (1 or 3: the field's ``to_pixels`` is the standard
        gray or RGB conversion) and the compiled codec of ffcvx-turbojpeg
        installed, an 8-bit Huffman JPEG of one or three YCbCr components is
        decoded in C without the GIL
        (:func:`~ffcvx.fields.image_codecs.decode_compiled`); everything
        else, and everything without the package, through Pillow's
        ``draft``. Both give the same pixels where no shrink is needed.

        Raises
        ------
        ValueError
            Naming :attr:`name`: not an image Pillow reads, truncated or
            corrupt (the compiled decoder also counts libjpeg's warnings of
            damaged data, which Pillow ignores), or 0 pixels.
        """
        info = self.jpeg_header
        if info is not None and (info.width == 0 or info.height == 0):
            raise ValueError(f"{field_name} cannot store an empty image "
                             f"({info.width}x{info.height} pixels in its frame header) "
                             f"from {self.name}: width and height must be at least 1")
        if channels in (1, 3) and info is not None:
            decoded = decode_compiled(self, info, field_name, max_resolution, channels)
            if decoded is not None:
                return decoded
        try:
            image = Image.open(io.BytesIO(self.data))
        except Image.UnidentifiedImageError:
            raise ValueError(f"{field_name} cannot read {self.name}: not an image format Pillow "
                             f"knows ({len(self.data)} bytes starting "
                             f"{bytes(self.data[:8])!r})") from None
        except Image.DecompressionBombError as exc:
            raise ValueError(f"{field_name} refuses {self.name}: {exc}") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ValueError(f"{field_name} cannot decode {self.name}: truncated or corrupt "
                             f"image data ({exc})") from exc
        width, height = image.size
        if width == 0 or height == 0:
            raise ValueError(f"{field_name} cannot store an empty image ({width}x{height} pixels) "
                             f"from {self.name}: width and height must be at least 1")
        target = target_size(width, height, max_resolution)
        if target is not None and self.draft and image.format == 'JPEG':
            image.draft(image.mode, (DRAFT_MARGIN * target[0], DRAFT_MARGIN * target[1]))
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise ValueError(f"{field_name} cannot decode {self.name}: truncated or corrupt "
                             f"{image.format} data ({exc})") from exc
        try:
            pixels = to_pixels(image)
        except TypeError as exc:         # e.g. 16 bits per channel: name where it came from
            raise TypeError(f"{exc} (image from {self.name})") from None
        if target is None or image.size == (width, height):
            return pixels, False
        return area_resize(pixels, target), True


def _read_file(path, field_name):
    name = f"image file {os.fsdecode(path)!r}"
    try:
        with open(path, 'rb') as handle:
            return EncodedImage(handle.read(), name)
    except IsADirectoryError:
        raise IsADirectoryError(f"{field_name} cannot read {name}: it is a directory") from None
    except OSError as exc:
        raise type(exc)(f"{field_name} cannot read {name}: "
                        f"{exc.strerror or exc}") from exc


def _unloaded_jpeg(image):
    """The original bytes of an unloaded ``JpegImageFile`` whose size and mode are its file's."""
    from PIL.JpegImagePlugin import JpegImageFile
    if not isinstance(image, JpegImageFile) or not image.tile:
        return None                     # loaded (tile emptied) or not a JPEG
    name = f"PIL image of {image.filename!r}" if image.filename else "PIL JPEG image"
    fp = getattr(image, 'fp', None)
    data = None
    if fp is not None and not getattr(fp, 'closed', False):
        try:
            position = fp.tell()
            fp.seek(0)                  # Image.open reads from offset 0
            data = fp.read()
            fp.seek(position)
        except (OSError, ValueError, AttributeError):
            data = None
    if data is None and image.filename:
        try:
            with open(image.filename, 'rb') as handle:
                data = handle.read()
        except OSError:
            return None
    if data is None:
        return None
    encoded = EncodedImage(bytes(data), name, draft=False)
    info = encoded.jpeg_header
    # draft() or a changed mode make the image another than its file: decode it instead
    expected = {1: 'L', 3: 'RGB', 4: 'CMYK'}.get(info.components) if info else None
    if info is None or (info.width, info.height) != image.size or image.mode != expected:
        return None
    return encoded


def encoded_input(value, field_name):
    """An :class:`EncodedImage` for a path, bytes or unloaded PIL JPEG; None for other inputs.

    Raises
    ------
    OSError
        A path that cannot be read (missing, a directory, no permission),
        naming the path.
    """
    if isinstance(value, (str, os.PathLike)):
        return _read_file(value, field_name)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value) if not isinstance(value, bytes) else value
        return EncodedImage(data, f"encoded image bytes ({len(data)} bytes)")
    if isinstance(value, Image.Image):
        return _unloaded_jpeg(value)
    return None
