"""How an image field turns one writer input into the bytes it stores (FMT-036, FMT-037, FMT-090).

The input is a ``uint8`` array, a PIL image, or an encoded image (a path,
bytes, an unloaded PIL JPEG; :mod:`.encoded`). :func:`encode_image` gives
the sample's mode (``'jpg'``, ``'raw'`` or ``'png'``), the bytes of its
region and its size: the JPEG file itself where ``jpeg_passthrough`` lets it
through, else the pixels, shrunk to ``max_resolution`` and stored raw, as a
JPEG or as a PNG by the field's ``write_mode`` (``smart`` and ``proportion``
choose per sample, :func:`choose_mode`).

The field (:class:`~.rgb_image.ImageField`) owns the 13-byte record and
fills it from what :func:`encode_image` returns; this module knows modes by
name only. It reaches the field through its methods (``_encoded``,
``_choose_mode_for``, ``_choose_mode``, ``_pixels``, ``_standard_channels``),
not through the functions here, so that a subclass overriding one of them
(a custom field written against FFCV's interface) is still obeyed.
"""
from collections import namedtuple

import numpy as np
from PIL import Image

from .encoded import encoded_input, jpeg_passes_through, target_size
from .image_codecs import encode_jpeg, encode_png, shrink_to
from .outcomes import PASSED_THROUGH, RAW, REENCODED, SHRUNK

__all__ = ['MAX_SIDE', 'StoredImage', 'WRITE_JPEG_MODES', 'choose_mode', 'encode_image',
           'encoded_value', 'passes_through']

#: Write modes that may store a JPEG (where ``jpeg_passthrough`` applies).
WRITE_JPEG_MODES = ('jpg', 'smart', 'proportion')

#: Largest width or height the metadata can hold (``<u2``), pixels.
MAX_SIDE = 65535

#: What :func:`encode_image` gives for one sample: ``mode`` (a key of
#: ``IMAGE_MODES``), ``payload`` (``ndarray[uint8]``, 1-D: the sample's
#: region), ``width`` and ``height`` (pixels) and ``outcome`` (one of
#: :data:`ffcvx.fields.outcomes.OUTCOMES`).
StoredImage = namedtuple('StoredImage', ['mode', 'payload', 'width', 'height', 'outcome'])


def choose_mode(field, raw_bytes, rng):
    """The mode of one sample whose raw pixels take ``raw_bytes``, by ``field.write_mode``.

    Parameters
    ----------
    field : ImageField
        Gives ``write_mode``, ``smart_threshold`` and ``proportion``.
    raw_bytes : int
        Size of the sample's pixels stored raw, bytes (what FFCV compares
        with ``smart_threshold``).
    rng : numpy.random.Generator or None
        Draws the ``proportion`` choice, once; None: a Generator of fresh
        entropy.

    Returns
    -------
    str
        ``'jpg'``, ``'raw'`` or ``'png'``: ``smart`` gives ``'jpg'`` above
        the threshold (never when it is None), ``proportion`` ``'jpg'`` with
        probability ``proportion``, the others their own mode.
    """
    if field.write_mode == 'smart':
        compress = field.smart_threshold is not None and raw_bytes > field.smart_threshold
        return 'jpg' if compress else 'raw'
    if field.write_mode == 'proportion':
        # never numpy's global RNG: forked workers would all copy its state
        if rng is None:
            rng = np.random.default_rng()
        return 'jpg' if rng.random() < field.proportion else 'raw'
    return field.write_mode


def encoded_value(field, value):
    """The input as an :class:`~ffcvx.fields.encoded.EncodedImage`, or None for pixels.

    Parameters
    ----------
    field : ImageField
        The field storing ``value``.
    value : object
        The writer input.

    Returns
    -------
    EncodedImage or None
        None for an array, and for a PIL image unless ``value`` may pass
        through: an unloaded PIL JPEG is taken as its file only then, and
        otherwise decoded whole by Pillow, as FFCV does.

    Raises
    ------
    OSError, ValueError, TypeError
        As :func:`ffcvx.fields.encoded.encoded_input` (an unreadable path,
        an input of no known kind).
    """
    if isinstance(value, (np.ndarray, Image.Image)):
        if not (field._passthrough and field.write_mode in WRITE_JPEG_MODES
                and isinstance(value, Image.Image)):
            return None
    return encoded_input(value, type(field).__name__)


def passes_through(field, encoded):
    """Whether ``encoded`` may be stored byte for byte, if the mode chosen is ``'jpg'`` (FMT-090).

    Parameters
    ----------
    field : ImageField
        Gives ``jpeg_passthrough``, ``write_mode``, ``max_resolution`` and
        ``channels``.
    encoded : EncodedImage

    Returns
    -------
    bool
        True for a JPEG, where the field passes JPEGs through in a mode that
        may store one, that needs no shrink, fits the record (``MAX_SIDE``)
        and every decoder backend and FFCV 1.0 read
        (:func:`ffcvx.fields.encoded.jpeg_passes_through`).
    """
    if not (field._passthrough and field.write_mode in WRITE_JPEG_MODES):
        return False
    header = encoded.jpeg_header
    # the walk of the whole file (jpeg_info) only once the size allows a pass-through
    return (header is not None
            and target_size(header.width, header.height, field.max_resolution) is None
            and header.width <= MAX_SIDE and header.height <= MAX_SIDE
            and jpeg_passes_through(encoded.jpeg_info, field.channels))


def encode_image(field, value, rng):
    """What ``field`` stores for the writer input ``value``: mode, bytes, size and outcome.

    Parameters
    ----------
    field : ImageField
        The field storing ``value`` (its ``write_mode``, ``max_resolution``,
        ``jpeg_quality``, ``jpeg_passthrough`` and ``channels``).
    value : object
        A PIL image, a uint8 array, a path, bytes or an unloaded PIL JPEG.
    rng : numpy.random.Generator or None
        Draws the ``proportion`` choice; None: a Generator of fresh entropy.

    Returns
    -------
    StoredImage
        ``(mode, payload, width, height, outcome)``; ``outcome`` is
        ``'passed through'``, ``'shrunk'``, ``'re-encoded'`` or ``'raw'``.

    Raises
    ------
    TypeError
        For an input the field cannot take as pixels (see
        :meth:`ImageField.encode_with_rng`).
    ValueError
        For an empty image, a side over ``MAX_SIDE`` after shrinking, or
        encoded input Pillow cannot read.
    OSError
        For a path that cannot be read, naming the path.
    """
    mode = None
    encoded = field._encoded(value)
    if encoded is not None and passes_through(field, encoded):
        info = encoded.jpeg_info
        # decided on the size the pixels would have: the same draw as for an array
        mode = field._choose_mode_for(info.width * info.height * field.channels, rng)
        if mode == 'jpg':
            return StoredImage(mode, np.frombuffer(encoded.data, dtype=np.uint8),
                               info.width, info.height, PASSED_THROUGH)
        # else the mode drawn stands for the decoded pixels: one draw per sample
    shrunk = False
    if encoded is not None:
        pixels, shrunk = encoded.decode(field._pixels, type(field).__name__, field.max_resolution,
                                        field._standard_channels())
    else:
        pixels = field._pixels(value)
    if 0 in pixels.shape[:2]:
        # the record would say 0 pixels, which no reader opens (FMT-036)
        raise ValueError(f"{type(field).__name__} cannot store an empty image "
                         f"({pixels.shape[1]}x{pixels.shape[0]} pixels): width and height "
                         f"must be at least 1")
    image = shrink_to(pixels, field.max_resolution)
    height, width = image.shape[:2]
    if height > MAX_SIDE or width > MAX_SIDE:
        raise ValueError(f"image of {width}x{height} pixels is larger than the format's "
                         f"{MAX_SIDE} pixel limit; pass max_resolution to shrink it")
    if mode is None:
        mode = field._choose_mode(image, rng)
    if mode == 'jpg':
        payload = np.frombuffer(encode_jpeg(image, field.jpeg_quality), dtype=np.uint8)
    elif mode == 'png':
        payload = np.frombuffer(encode_png(image), dtype=np.uint8)
    else:
        payload = image.reshape(-1)
    if shrunk or image.shape != pixels.shape:
        outcome = SHRUNK
    else:
        outcome = RAW if mode == 'raw' else REENCODED
    return StoredImage(mode, payload, width, height, outcome)
