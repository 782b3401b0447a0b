"""Variable-length byte strings: ``BytesField`` (FMT-033)."""
import numpy as np

from .base import Field, decoder_aliases, decoder_named, native_core, shift_member, zero_arguments

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

    def check_metadata(self, column, regions):
        """FMT-079/FMT-080/FMT-088: each payload with ``size > 0`` starts a region of the
        sample's own of at least ``size`` bytes.

        Only for the ``{ptr, size}`` record: a subclass with another metadata
        type has a layout this check does not know.
        """
        if self.metadata_type == BytesMetadataType:
            native_core().check_bytes_pointers(column.raw, column.member, regions.ptrs,
                                               regions.sizes, column.table_offset, column.name,
                                               regions.owners)

    def data_regions(self, values, regions):
        """``(ptr, size)`` straight from each record: the length is the metadata's (FMT-033)."""
        if self.metadata_type != BytesMetadataType:
            return None
        return (values['ptr'].astype(np.uint64), values['size'].astype(np.int64))

    def relocate(self, values, shift):
        """``ptr`` moved by ``shift`` bytes, also for 0-byte payloads (FMT-033, FMT-092).

        JSONField inherits it (same record, FMT-035). A subclass with another
        metadata type is refused as custom fields are.
        """
        if self.metadata_type != BytesMetadataType:
            return super().relocate(values, shift)
        return shift_member(values, 'ptr', shift)

    def get_decoder_class(self):
        return decoder_named('BytesDecoder')


# FFCV 1.0's import path for this field's decoder(s), resolved on first use.
__getattr__ = decoder_aliases(__name__, 'BytesDecoder')
