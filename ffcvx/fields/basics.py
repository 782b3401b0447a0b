"""Scalar fields: ``IntField`` (int64) and ``FloatField`` (float64)."""
import numpy as np

from .base import Field, decoder_aliases, zero_arguments


class FloatField(Field):
    """A float64 per sample, stored in the metadata table itself (FMT-032)."""

    @property
    def metadata_type(self):
        return np.dtype('<f8')

    @staticmethod
    def from_binary(binary):
        return FloatField()

    def to_binary(self):
        return zero_arguments()

    def encode(self, destination, field, malloc):
        destination[0] = field

    def get_decoder_class(self):
        from .decoders import FloatDecoder
        return FloatDecoder


class IntField(Field):
    """An int64 per sample, stored in the metadata table itself (FMT-032)."""

    @property
    def metadata_type(self):
        return np.dtype('<i8')

    @staticmethod
    def from_binary(binary):
        return IntField()

    def to_binary(self):
        return zero_arguments()

    def encode(self, destination, field, malloc):
        # np.int64 conversion rejects out-of-range Python ints instead of wrapping.
        destination[0] = np.int64(field)

    def get_decoder_class(self):
        from .decoders import IntDecoder
        return IntDecoder


# FFCV 1.0's import path for this field's decoder(s), resolved on first use.
__getattr__ = decoder_aliases(__name__, 'FloatDecoder', 'IntDecoder')
