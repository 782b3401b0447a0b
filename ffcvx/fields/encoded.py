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
import re
from collections import namedtuple

from PIL import Image

__all__ = ['DRAFT_MARGIN', 'EncodedImage', 'JpegInfo', 'encoded_input', 'jpeg_passes_through', 'parse_jpeg',
           'target_size']

#: What a JPEG's frame header (and the markers before it) says.
#: ``sof_kind``: the SOF marker's low nibble (0 baseline, 1 extended sequential,
#: 2 progressive, 3 lossless, 5..7 hierarchical, 9..15 arithmetic);
#: ``adobe_transform``: the APP14 "Adobe" segment's transform byte, or None;
#: ``component_ids`` and ``sampling`` ((h, v) per component) as in the SOF;
#: ``jfif``: whether an APP0 "JFIF" segment came first; ``complete``: whether
#: the marker structure after the SOF is whole up to an EOI (scan data
#: walked, restart markers and stuffed bytes skipped), None when not walked
#: (``parse_jpeg(data, walk=False)``).
JpegInfo = namedtuple('JpegInfo', ['width', 'height', 'components', 'precision', 'sof_kind',
                                   'adobe_transform', 'component_ids', 'sampling', 'jfif',
                                   'complete'])

#: A JPEG that must shrink is decoded at the smallest libjpeg DCT scale (1/8,
#: 1/4, 1/2) whose image is still at least this many times the target size on
#: both axes, then area-shrunk. Measured on 200 JPEGs of 300..2000 px shrunk
#: to 256 and stored at quality 90 (benchmarks/bench_write_codec.py), the
#: stored JPEG against full decode + INTER_AREA + the same encoding: 2x loses
#: 0.62 dB PSNR, 3x 0.22 dB (within the 0.3 dB the writer allows), 1.5x 1.6 dB.
DRAFT_MARGIN = 3

#: Luma sampling factors (h, v) of the chroma subsamplings every backend names
#: (4:4:4, 4:2:2, 4:2:0, 4:4:0, 4:1:1), chroma being 1x1.
_STANDARD_LUMA = {(1, 1), (2, 1), (2, 2), (1, 2), (4, 1)}

#: Markers allowed between the SOF and the EOI of a stored JPEG: DHT, DQT,
#: DRI, SOS, APPn, COM (DAC, DNL, another SOF or DHP/EXP would be refused).
_AFTER_SOF = {0xC4, 0xDB, 0xDD, 0xDA, 0xFE} | set(range(0xE0, 0xF0))


#: In entropy-coded data, a 0xFF that starts a real marker: not a stuffed 0xFF 0x00,
#: not a restart marker 0xFF 0xD0..0xD7, not a fill byte before another 0xFF;
#: also a 0xFF as the last byte (the caller sees the data end there). One
#: C-level search instead of a Python loop over every 0xFF of the scan.
_SCAN_MARKER = re.compile(rb'\xff(?![\x00\xd0-\xd7\xff])')


def _be16(data, p):
    return (data[p] << 8) | data[p + 1]


def _next_marker(data, p):
    """``(marker, position of its 0xFF)`` at ``p``, skipping fill bytes; else ValueError."""
    n = len(data)
    if p >= n or data[p] != 0xFF:
        raise ValueError(f"JPEG: expected a marker at byte {p}")
    while p + 1 < n and data[p + 1] == 0xFF:    # fill bytes 0xFF before a marker
        p += 1
    if p + 1 >= n:
        raise ValueError("JPEG: truncated before a marker")
    return data[p + 1], p


def _segment(data, p):
    """The length-prefixed segment whose marker is at ``p``: ``(payload start, end)``."""
    if p + 4 > len(data):
        raise ValueError(f"JPEG: truncated segment at byte {p}")
    length = _be16(data, p + 2)
    if length < 2 or p + 2 + length > len(data):
        raise ValueError(f"JPEG: segment at byte {p} has length {length}, past the end of the data")
    return p + 4, p + 2 + length


def parse_jpeg(data, walk=True):
    """Read a JPEG's frame header without decoding it.

    Walks the markers from SOI, skipping each segment by its length (fill
    bytes 0xFF before a marker allowed), up to the first SOF marker; notes an
    APP0 JFIF and an APP14 Adobe segment on the way. Then, with ``walk``,
    walks on to the EOI (segments by length, scan data to the next marker
    that is not a stuffed 0x00 or a restart marker) to say whether the file
    is whole.

    Parameters
    ----------
    data : bytes-like
        The file's bytes.
    walk : bool, optional
        Default True. False skips the walk past the SOF, which reads the
        whole file (``complete`` is then None): enough for the size and
        components a decode needs.

    Returns
    -------
    JpegInfo

    Raises
    ------
    ValueError
        If ``data`` does not start with SOI, a segment before the SOF is
        truncated or malformed, or there is no SOF before SOS / EOI / the end.
    """
    if not isinstance(data, (bytes, bytearray)):
        data = bytes(data)
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != 0xD8:
        raise ValueError("not a JPEG: no SOI marker at the start")
    p = 2
    adobe, jfif, first_app = None, False, True
    while True:
        marker, p = _next_marker(data, p)
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:      # TEM, RSTn: no length
            p += 2
            continue
        if marker in (0xD8, 0xD9, 0xDA):
            raise ValueError(f"JPEG: marker 0x{marker:02X} before any frame header (SOF)")
        start, end = _segment(data, p)
        if marker == 0xE0 and first_app and bytes(data[start:start + 5]) == b'JFIF\x00':
            jfif = True
        if 0xE0 <= marker <= 0xEF:
            first_app = False
        if marker == 0xEE and end - start >= 12 and bytes(data[start:start + 5]) == b'Adobe':
            adobe = data[start + 11]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if end - start < 6:
                raise ValueError("JPEG: frame header (SOF) too short")
            precision, height, width = data[start], _be16(data, start + 1), _be16(data, start + 3)
            components = data[start + 5]
            if end - start < 6 + 3 * components:
                raise ValueError("JPEG: frame header (SOF) shorter than its components")
            ids = tuple(data[start + 6 + 3 * k] for k in range(components))
            sampling = tuple((data[start + 7 + 3 * k] >> 4, data[start + 7 + 3 * k] & 15)
                             for k in range(components))
            complete = _complete_after(data, end, marker) if walk else None
            return JpegInfo(width, height, components, precision, marker & 0x0F, adobe, ids,
                            sampling, jfif, complete)
        p = end


def _complete_after(data, p, sof):
    """Whether the markers from ``p`` (just after the SOF) reach an EOI whole."""
    if sof not in (0xC0, 0xC1, 0xC2):
        return False                    # only sequential and progressive Huffman are walked
    n = len(data)
    try:
        scans = 0
        while True:
            marker, p = _next_marker(data, p)
            if marker == 0xD9:
                return scans > 0
            if marker not in _AFTER_SOF:
                return False
            start, end = _segment(data, p)
            p = end
            if marker != 0xDA:
                continue
            scans += 1
            # entropy-coded data: up to a real marker (at its last fill byte)
            match = _SCAN_MARKER.search(data, p)
            if match is None or match.start() + 1 >= n:
                return False            # truncated in the scan data
            p = match.start()
    except ValueError:
        return False


def jpeg_passes_through(info, channels):
    """Whether a JPEG may be stored as it is in a field of ``channels`` channels.

    Only what every decoder backend and FFCV 1.0 read to the right colours:
    baseline or extended-sequential Huffman (SOF0, SOF1), 8 bits, whole up to
    its EOI, a known size; one component (gray, also for a 3-channel field:
    decoders expand it, BKD-020) or, for a 3-channel field, three YCbCr
    components in a standard subsampling (not RGB by Adobe transform 0 or by
    component ids 'R', 'G', 'B'). Progressive, arithmetic, lossless,
    hierarchical, 12-bit, CMYK and YCCK JPEGs are re-encoded.
    """
    if info.sof_kind not in (0, 1) or info.precision != 8 or not info.complete:
        return False
    if info.width == 0 or info.height == 0:
        return False
    if info.components == 1:
        return True
    if channels != 3 or info.components != 3:
        return False
    if info.adobe_transform == 0:
        return False
    if info.component_ids == (82, 71, 66) and not info.jfif and info.adobe_transform is None:
        return False                    # libjpeg takes 'R', 'G', 'B' ids as RGB
    luma, cb, cr = info.sampling
    return cb == (1, 1) and cr == (1, 1) and luma in _STANDARD_LUMA


def target_size(width, height, max_resolution):
    """FFCV 1.0's shrunk size ``(w, h)`` for ``max_resolution``, or None when no shrink is needed.

    ``ratio = max_resolution / max(W, H)``; if below 1, ``(ratio * [W, H]).astype(int)``
    (a side truncated to 0 becomes 1; see :func:`ffcvx.fields.rgb_image.shrink_to`).
    """
    if max_resolution is None:
        return None
    # FFCV computes this in numpy float64 (int64 sides); Python floats do the same IEEE
    # division, product and truncation without numpy's cost (this runs several times a
    # sample). A numpy scalar limit is made a Python number first: numpy would divide a
    # float32 by int64 sides in float64, as Python's float does.
    if not isinstance(max_resolution, (int, float)):
        max_resolution = float(max_resolution)
    ratio = max_resolution / max(int(width), int(height))
    if ratio >= 1:
        return None
    return max(1, int(ratio * int(width))), max(1, int(ratio * int(height)))


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
            from .image_codecs import decode_compiled
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
        from .image_codecs import area_resize
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
