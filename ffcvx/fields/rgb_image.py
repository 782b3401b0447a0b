"""Image fields: ``RGBImageField`` (FMT-036), ``GrayscaleImageField`` and their base ``ImageField``.

A stored image is either raw ``uint8`` pixels (H, W, 3) in C order, a baseline
JPEG, or (ffcvx extension, FMT-037) a standard RGB PNG. Which one is recorded
per sample in the metadata's ``mode`` byte, so one field can mix them.

Reading goes through decoder backends (``spec/backends.md``): JPEG samples
through the backend chosen for ``jpeg`` (turbojpeg, else imagecodecs, else
Pillow), PNG samples through the one chosen for ``png`` (imagecodecs, else
Pillow), BKD-052; raw samples need none.

``GrayscaleImageField`` (ffcvx extension, FMT-083 to FMT-085) stores one
channel with the same record and modes; it is written as a marked custom
field (type id 255), which FFCV 1.0 refuses instead of misreading.

How a writer input becomes a sample's mode and bytes (write modes,
``jpeg_passthrough``) is :mod:`.image_encode`'s; the fields here check their
arguments, fill the record and name their decoder.
"""
from abc import abstractmethod

import numpy as np

from ..types import ARG_TYPE, ARGUMENTS_LENGTH, IMAGE_MODES  # noqa: F401 (IMAGE_MODES: re-exported)
from .base import Field, decoder_aliases, decoder_named, native_core, shift_member, zero_arguments
from .image_encode import choose_mode, encode_image, encoded_value
# the encoder's limits live in .image_encode, which imports nothing from here; importable as before
from .image_encode import MAX_SIDE, WRITE_JPEG_MODES  # noqa: F401
# FFCV's shrink rule and the encoders live in .image_codecs; importable from here as before
from .image_codecs import area_resize, encode_jpeg, encode_png, shrink_to  # noqa: F401
# the input conversions live in .pixels; importable from here as before
from .pixels import WIDE_PIL_MODES, check_pil_depth, to_gray_array, to_rgb_array  # noqa: F401

# IMAGE_MODES, the per-sample storage modes (FMT-036, FMT-037), is imported above
WRITE_MODES = ('raw', 'jpg', 'smart', 'proportion', 'png')

#: Metadata record of an image sample, 13 bytes, packed (FMT-036).
RGBMetadataType = np.dtype([
    ('mode', '<u1'),
    ('width', '<u2'),
    ('height', '<u2'),
    ('data_ptr', '<u8'),
])
# MAX_SIDE, the largest width or height it holds (``<u2``), is imported above


class ImageField(Field):
    """Base of the image fields: the 13-byte record (FMT-036), write modes, encoding.

    Subclasses fix the number of channels (``channels``), turn a writer input
    into pixels (``_pixels``), and write their own descriptor ``arguments``
    (``from_binary``, ``to_binary``). Decoders read ``channels`` to size
    their output.

    Parameters
    ----------
    write_mode : {'raw', 'jpg', 'smart', 'proportion', 'png'}
        ``raw`` stores pixels; ``jpg`` a JPEG of ``jpeg_quality``; ``smart``
        a JPEG iff the raw pixels would take more than ``smart_threshold``
        bytes, else raw; ``proportion`` a JPEG with probability
        ``compress_probability``, else raw; ``png`` a lossless PNG (ffcvx
        extension, FMT-037).
    max_resolution : int or None, pixels
        Longest side after writing; larger images are shrunk (never enlarged).
    smart_threshold : int or None, bytes
        ``write_mode='smart'`` only; None stores every image raw (as FFCV).
    jpeg_quality : int, 1..100
        Quality of the JPEGs written (modes ``jpg``, ``smart``, ``proportion``).
    compress_probability : float, 0..1
        ``write_mode='proportion'`` only.
    jpeg_passthrough : bool, keyword only
        ffcvx extension, default False (FFCV's behaviour: every JPEG sample is
        re-encoded at ``jpeg_quality``). When True, an encoded JPEG input (a
        path, bytes, or an unloaded PIL JPEG) that needs no shrink and that
        every decoder backend and FFCV 1.0 read (baseline or extended
        sequential Huffman, 8 bits, gray or YCbCr, whole;
        :func:`ffcvx.fields.encoded.jpeg_passes_through`) is stored byte for
        byte wherever the write mode stores a JPEG (``jpg``; ``smart`` and
        ``proportion`` when they choose JPEG), its record's size read from
        its frame header. Anything else is decoded and written as pixels are.

    Attributes
    ----------
    write_mode, max_resolution, smart_threshold, jpeg_quality, jpeg_passthrough
        As given (``jpeg_quality`` as an int).
    proportion : float
        ``compress_probability``, under FFCV 1.0's attribute name;
        ``compress_probability`` is the same value.

    Raises
    ------
    ValueError
        For an unknown ``write_mode``, a ``jpeg_quality`` outside 1..100, a
        ``max_resolution`` below 1 or a ``compress_probability`` outside 0..1.
    """

    #: Channels of a stored sample (3 for RGB, 1 for gray).
    channels = None

    def __init__(self, write_mode='raw', max_resolution=None, smart_threshold=None,
                 jpeg_quality=90, compress_probability=0.5, *, jpeg_passthrough=False):
        if write_mode not in WRITE_MODES:
            raise ValueError(f"write_mode must be one of {WRITE_MODES}, got {write_mode!r}")
        if not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
        if max_resolution is not None and int(max_resolution) < 1:
            raise ValueError(f"max_resolution must be positive, got {max_resolution}")
        if not 0 <= compress_probability <= 1:
            raise ValueError(f"compress_probability must be in 0..1, got {compress_probability}")
        self.write_mode = write_mode
        self.max_resolution = max_resolution
        self.smart_threshold = smart_threshold
        self.jpeg_quality = int(jpeg_quality)
        self.proportion = compress_probability
        self.jpeg_passthrough = bool(jpeg_passthrough)

    @property
    def compress_probability(self):
        """float: probability of a JPEG in ``write_mode='proportion'`` (FFCV: ``proportion``)."""
        return self.proportion

    @compress_probability.setter
    def compress_probability(self, value):
        self.proportion = value

    @property
    def _passthrough(self):
        # a subclass written against FFCV's __init__ may not have set it
        return getattr(self, 'jpeg_passthrough', False)

    @property
    def metadata_type(self):
        return RGBMetadataType

    @abstractmethod
    def _pixels(self, value):
        """The writer input as ``ndarray[uint8]``, (H, W, 3) or (H, W) by ``channels``."""

    @property
    def encode_uses_rng(self):
        """bool: the writer calls :meth:`encode_with_rng` (only ``proportion`` draws).

        False for a subclass that overrides :meth:`encode` (a custom field written
        against FFCV's interface): its own ``encode`` must run.
        """
        return self.write_mode == 'proportion' and type(self).encode is ImageField.encode

    def _choose_mode(self, image, rng):
        # image.size is the raw size in bytes (uint8 pixels), which FFCV compares
        return self._choose_mode_for(image.size, rng)

    def _choose_mode_for(self, raw_bytes, rng):
        """The mode of one sample whose raw pixels take ``raw_bytes``; ``proportion`` draws once.

        See :func:`ffcvx.fields.image_encode.choose_mode`.
        """
        return choose_mode(self, raw_bytes, rng)

    def encode(self, destination, field, malloc):
        """Store one image (FFCV's signature); ``proportion`` draws from fresh entropy.

        The writer calls :meth:`encode_with_rng` instead, with a Generator
        seeded per sample from ``DatasetWriter(seed=...)``. Returns what was
        done, as :meth:`encode_with_rng` does.
        """
        return self.encode_with_rng(destination, field, malloc, None)

    def encode_with_rng(self, destination, field, malloc, rng):
        """Store one image in the mode ``write_mode`` chooses and fill its record (FMT-036).

        Parameters
        ----------
        destination, field, malloc
            See :meth:`Field.encode`.
        rng : numpy.random.Generator or None
            Draws the ``proportion`` choice; None: a Generator of fresh entropy.

        Returns
        -------
        str
            What was done, one of :data:`ffcvx.fields.outcomes.OUTCOMES`:
            ``'passed through'``, ``'shrunk'``, ``'re-encoded'`` or ``'raw'``.

        Raises
        ------
        TypeError
            For an input the field cannot take as pixels: not a PIL image,
            uint8 array, path or bytes, a wrong shape, or a PIL mode of more
            than 8 bits per channel (``WIDE_PIL_MODES``).
        ValueError
            For an empty image (width or height 0), or when a side exceeds the
            format's limit (``MAX_SIDE``) after shrinking; for encoded input
            that is not an image Pillow reads, or truncated or corrupt,
            naming the path where it is one.
        OSError
            For a path that cannot be read (missing, a directory, no
            permission), naming the path.
        """
        # the bytes and size come from .image_encode; the record is this class's (FMT-036)
        stored = encode_image(self, field, rng)
        self._store(destination, malloc, stored.mode, stored.payload, stored.width, stored.height)
        return stored.outcome

    def _standard_channels(self):
        """``channels`` when ``_pixels`` is RGBImageField's or GrayscaleImageField's, else None.

        Encoded JPEGs may then be decoded by the compiled codec, which makes
        the same conversion (:meth:`EncodedImage.decode`); a subclass with
        its own ``_pixels`` gets Pillow images, as before.
        """
        method = type(self)._pixels
        if (method is RGBImageField._pixels and self.channels == 3) or \
                (method is GrayscaleImageField._pixels and self.channels == 1):
            return self.channels
        return None

    def _encoded(self, value):
        """The input as an :class:`~ffcvx.fields.encoded.EncodedImage`, or None for pixels.

        See :func:`ffcvx.fields.image_encode.encoded_value`.
        """
        return encoded_value(self, value)

    @staticmethod
    def _store(destination, malloc, mode, payload, width, height):
        ptr, buffer = malloc(payload.size)
        buffer[:] = payload
        destination['mode'] = IMAGE_MODES[mode]
        destination['width'] = width
        destination['height'] = height
        destination['data_ptr'] = ptr

    def check_metadata(self, column, regions):
        """FMT-079 to FMT-082, FMT-088: modes, sizes, and the region of every ``data_ptr``.

        Raw regions hold ``width*height*channels`` bytes (FMT-036, FMT-083).
        Only for the 13-byte record: a subclass with another metadata type
        has a layout this check does not know.
        """
        if self.metadata_type == RGBMetadataType and self.channels in (1, 3):
            native_core().check_rgb_records(column.raw, column.member, regions.ptrs, regions.sizes,
                                            column.table_offset, column.name, regions.owners,
                                            self.channels)

    def data_regions(self, values, regions):
        """``(data_ptr, size of the region there)`` per record: a JPEG/PNG file or raw pixels."""
        if self.metadata_type != RGBMetadataType:
            return None
        ptrs = values['data_ptr'].astype(np.uint64)
        return ptrs, regions.size_at(ptrs)

    def relocate(self, values, shift):
        """``data_ptr`` moved by ``shift`` bytes; mode and size unchanged (FMT-036, FMT-092).

        Also for GrayscaleImageField (same record, FMT-083). A subclass with
        another metadata type is refused as custom fields are.
        """
        if self.metadata_type != RGBMetadataType:
            return super().relocate(values, shift)
        return shift_member(values, 'data_ptr', shift)

    def get_decoder_class(self):
        return decoder_named('SimpleRGBImageDecoder')


class RGBImageField(ImageField):
    """Images of any size with three 8-bit channels (FMT-036, FMT-037).

    Takes a PIL image of any mode (converted to RGB), a uint8 array of
    shape (H, W, 3), (H, W, 1) or (H, W), or an encoded image: a file path
    (``str`` / ``os.PathLike``), its bytes (``bytes``, ``bytearray``,
    ``memoryview``) or an unloaded PIL JPEG (``Image.open(...)`` not yet
    loaded). Encoded images are stored as the same image given as pixels
    would be, except a JPEG that ``jpeg_passthrough=True`` lets through byte
    for byte (spec/beton.md FMT-090); a path's (or bytes') JPEG that must
    shrink 6x or more is decoded at a reduced DCT scale that keeps 3x the
    target size first (``ffcvx.fields.encoded.DRAFT_MARGIN``), by
    ffcvx-turbojpeg's compiled codec when it is installed. An unreadable
    path, a truncated or corrupt file, an unknown format or 0 pixels raise
    naming the path. Parameters and attributes: see :class:`ImageField`.
    Its descriptor ``arguments`` are all zero, so a field always reads back
    as ``RGBImageField()`` (FMT-021).
    """

    channels = 3

    @staticmethod
    def from_binary(binary):
        return RGBImageField()

    def to_binary(self):
        return zero_arguments()

    def _pixels(self, value):
        return to_rgb_array(value)



#: First bytes of a GrayscaleImageField's descriptor ``arguments`` (FMT-084).
GRAY_MAGIC = b'ffcvx.GrayImage\x00'


class GrayscaleImageField(ImageField):
    """Images of any size with one 8-bit channel (ffcvx extension, FMT-083 to FMT-085).

    Same metadata record and modes as :class:`RGBImageField` (FMT-036), but
    each sample holds one channel: mode 1 ``height*width`` raw bytes, mode 0 a
    grayscale (one-component) JPEG, mode 2 a grayscale PNG (colour type 0).
    The field is written with type id 255 (FMT-022) and a marker in its
    descriptor arguments (FMT-084), by which ffcvx readers recognise it
    without being given the class (FMT-087); FFCV 1.0 refuses such a file
    unless given a class (FMT-083). It is not an RGBImageField, so code that
    asks ``isinstance(field, RGBImageField)`` keeps meaning three channels.

    The RGB decoders read it: ``SimpleRGBImageDecoder()`` gives
    ``(B, H, W, 1)`` uint8, ``SimpleRGBImageDecoder(channels=3)`` repeats the
    channel to ``(B, H, W, 3)``; the crop decoders likewise.

    Parameters are those of :class:`ImageField`; ``smart`` compares the
    ``H*W`` bytes of the gray pixels with ``smart_threshold``. Inputs are those
    of :class:`RGBImageField` (PIL images, arrays of shape (H, W) or
    (H, W, 1), paths, bytes, unloaded PIL JPEGs); ``jpeg_passthrough`` lets
    through only one-component (gray) JPEGs, the others are decoded and
    converted to luma as a PIL image would be.
    """

    channels = 1

    @staticmethod
    def from_binary(binary):
        """Rebuild the field, checking the FMT-084 marker.

        Raises
        ------
        ValueError
            If ``arguments`` does not start with the GrayscaleImageField marker
            (the class was given for a field written by another class).
        """
        raw = np.asarray(binary).tobytes()
        if raw[:len(GRAY_MAGIC)] != GRAY_MAGIC:
            raise ValueError("field was not written by GrayscaleImageField: its descriptor "
                             "arguments lack the ffcvx.GrayImage marker (FMT-084)")
        if raw[len(GRAY_MAGIC)] != 1:
            raise ValueError(f"the byte after the ffcvx.GrayImage marker is "
                             f"{raw[len(GRAY_MAGIC)]}, not 1 channel (FMT-084)")
        return GrayscaleImageField()

    def to_binary(self):
        raw = np.zeros(ARGUMENTS_LENGTH, dtype=np.uint8)
        raw[:len(GRAY_MAGIC)] = np.frombuffer(GRAY_MAGIC, dtype=np.uint8)
        raw[len(GRAY_MAGIC)] = 1
        return raw.view(ARG_TYPE)[0]

    def _pixels(self, value):
        # A (H, W) array: Pillow writes it as a one-component JPEG (FMT-085) or
        # a colour type 0 (grayscale) PNG.
        return to_gray_array(value)

    # check_metadata is ImageField's: ffcvx readers check the records of this
    # extension at open like RGB ones, one byte per raw pixel (FMT-083).


# FFCV users import the image decoders from this module; they resolve on first
# use, so that writing datasets never imports Numba.
__getattr__ = decoder_aliases(__name__, 'SimpleRGBImageDecoder', 'ResizedCropRGBImageDecoder',
                              'RandomResizedCropRGBImageDecoder', 'CenterCropRGBImageDecoder')
