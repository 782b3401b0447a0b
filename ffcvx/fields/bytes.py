"""Variable-length byte strings: ``BytesField`` (FMT-033)."""
import numpy as np

from .base import Field, decoder_aliases, zero_arguments

#: Metadata record of a bytes-like field: region offset and length, packed (FMT-033).
BytesMetadataType = np.dtype([
    ('ptr', '<u8'),
    ('size', '<u8'),
])


class BytesField(Field):
    """A variable-length ``uint8`` payload per sample.

    Values are 1-D ``ndarray[uint8]`` (``bytes`` and ``bytearray`` are accepted
    too). The payload's length is kept in the metadata, so readers never depend
    on the allocation table for it (FMT-033).
    """

    @property
    def metadata_type(self):
        return BytesMetadataType

    @staticmethod
    def from_binary(binary):
        return BytesField()

    def to_binary(self):
        return zero_arguments()

    def encode(self, destination, field, malloc):
        if isinstance(field, (bytes, bytearray, memoryview)):
            field = np.frombuffer(field, dtype=np.uint8)
        field = np.asarray(field)
        if field.dtype != np.uint8 or field.ndim != 1:
            raise TypeError(f"BytesField expects a 1-D uint8 array or bytes, "
                            f"got {field.dtype} array of shape {field.shape}")
        ptr, buffer = malloc(field.size)
        buffer[:] = field
        destination['ptr'] = ptr
        destination['size'] = field.size

    def get_decoder_class(self):
        from .decoders import BytesDecoder
        return BytesDecoder


# FFCV 1.0's import path for this field's decoder(s), resolved on first use.
__getattr__ = decoder_aliases(__name__, 'BytesDecoder')
