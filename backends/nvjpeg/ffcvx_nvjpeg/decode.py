"""The per-image steps of the nvjpeg backend: checks, the torchvision decode, errors, resize.

Where a sample's bytes go wrong (:class:`SampleDecodeError`,
:class:`CropOutsideImageError`), the JPEG frame header read before nvJPEG
sees the bytes, the default decode step (:func:`torchvision_decode`) and the
GPU resize. Importable from :mod:`ffcvx_nvjpeg`.
"""
from ffcvx.backend_api import BadRegionError
from ffcvx.errors import DecodeError

#: The versions this backend is tested with: torchvision 0.29.1 is built against
#: torch 2.14.1 exactly, and torch's CPU-only wheel has no CUDA, so both change.
INSTALL_LINE = "pip install torch==2.14.1 torchvision==0.29.1"
#: ``available()``'s reason when CUDA works but torchvision is not installed.
TORCHVISION_HINT = f"torchvision is not installed: {INSTALL_LINE}"

JPEG_SOI = b"\xff\xd8\xff"
# SOFn markers (frame headers) are C0..CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, without a length field: TEM, RST0..7, SOI.
_STANDALONE_MARKERS = frozenset({0x01, 0xD8}) | frozenset(range(0xD0, 0xD8))


class SampleDecodeError(DecodeError):
    """One sample of a batch could not be decoded.

    Parameters
    ----------
    message : str
        What went wrong, with the decoder's own message.
    position : int
        The sample's position in the batch (index into ``sources``), so that a
        caller can name the dataset sample it came from.
    """

    def __init__(self, message, position):
        super().__init__(message)
        self.position = position


class CropOutsideImageError(SampleDecodeError, BadRegionError):
    """A sample's crop is not inside its image, or has a non-positive size.

    Both a :class:`ffcvx.errors.DecodeError` (what ``decode_batch`` promises
    for any per-sample failure) and a ``ValueError`` (what ``decode_region_py``
    raises for bad regions, BKD-030, like the other backends).
    """


def torchvision_decode(data, device):
    """The default decode step: ``torchvision.io.decode_jpeg`` on a list.

    Parameters
    ----------
    data : list of torch.Tensor
        Each a 1-D ``torch.uint8`` CPU tensor holding one complete JPEG file.
    device : torch.device
        Where to decode: ``cuda`` (nvJPEG) or ``cpu`` (torchvision's libjpeg).

    Returns
    -------
    list of torch.Tensor
        One ``torch.uint8`` tensor of shape ``(3, h, w)`` (RGB, channels first)
        per input, on ``device``.

    Raises
    ------
    RuntimeError
        torchvision's own error when any stream cannot be decoded; it returns
        no partial results.
    ImportError
        When torchvision is not installed.
    """
    from torchvision.io import ImageReadMode, decode_jpeg
    return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)


def jpeg_frame(raw):
    """``(height, width, components)`` from a JPEG's frame header, or None if not found.

    Walks the marker segments up to the first SOFn. Used only to refuse
    4-component (CMYK/YCCK) files (BKD-020) before they reach the decoder;
    anything it cannot parse is left to the decoder, whose message is better.
    """
    n = len(raw)
    i = 2
    while i + 4 <= n:
        if raw[i] != 0xFF:
            return None
        marker = raw[i + 1]
        if marker == 0xFF:          # fill byte before a marker
            i += 1
            continue
        if marker in _STANDALONE_MARKERS:
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # scan or end of image before any frame header
            return None
        if marker in _SOF_MARKERS:
            if i + 10 > n:
                return None
            height = (raw[i + 5] << 8) | raw[i + 6]
            width = (raw[i + 7] << 8) | raw[i + 8]
            return height, width, raw[i + 9]
        i += 2 + ((raw[i + 2] << 8) | raw[i + 3])
    return None


def resize(region, size, torch):
    """Antialiased bilinear resize of a ``(3, h, w)`` uint8 tensor to ``(3, *size)`` uint8.

    float32 on every device: CUDA's antialiased kernels take no uint8, and
    one arithmetic everywhere makes CPU results a reference for GPU ones.
    """
    resized = torch.nn.functional.interpolate(
        region.unsqueeze(0).to(torch.float32), size=size, mode="bilinear",
        align_corners=False, antialias=True)[0]
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def same_size_or_raise(sizes, what, fix):
    """Raise ValueError listing the distinct ``(h, w)`` in ``sizes`` and their positions."""
    positions = {}
    for k, size in enumerate(sizes):
        positions.setdefault(tuple(size), []).append(k)
    if len(positions) <= 1:
        return
    parts = []
    for (h, w), where in positions.items():
        shown = ", ".join(str(k) for k in where[:8]) + (", ..." if len(where) > 8 else "")
        parts.append(f"{h}x{w} (position{'s' if len(where) > 1 else ''} {shown})")
    raise ValueError(f"nvjpeg: the {what} of the batch differ in size: {'; '.join(parts)}; {fix}")
