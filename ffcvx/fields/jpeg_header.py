"""A JPEG's frame header read in pure Python, and whether the JPEG may be stored as it is.

:func:`parse_jpeg` reads the markers up to the frame header (SOF) and,
optionally, walks the rest of the marker structure up to the EOI, without
decoding; :func:`jpeg_passes_through` says whether every decoder backend and
FFCV 1.0 read such a JPEG to the right colours (``jpeg_passthrough``).
Importable from :mod:`.encoded` as before.
"""
import re
from collections import namedtuple

__all__ = ['JpegInfo', 'jpeg_passes_through', 'parse_jpeg']

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
