"""The Field interface: what one column of a ``.beton`` file stores and how."""
from abc import ABC, abstractmethod

import numpy as np

from ..types import ARG_TYPE


class Field(ABC):
    """One column of a dataset.

    A field fixes three things: the dtype of its per-sample record in the
    metadata table (``metadata_type``), how the writer turns a user value into
    that record plus optional data regions (``encode``), and which decoder
    Operation reads it back (``get_decoder_class``).

    A field's type id (FMT-022) is not an attribute of the class: it is the
    key of the class in :data:`ffcvx.fields.TYPE_ID_HANDLER` (exact class
    match), else 255.
    """

    @property
    @abstractmethod
    def metadata_type(self) -> np.dtype:
        """numpy.dtype of this field's member in the metadata record (FMT-031)."""

    @staticmethod
    @abstractmethod
    def from_binary(binary: ARG_TYPE) -> 'Field':
        """Rebuild the field from its descriptor's 1024-byte ``arguments`` (FMT-021)."""

    @abstractmethod
    def to_binary(self) -> ARG_TYPE:
        """The 1024-byte ``arguments`` blob stored in the field descriptor (FMT-021)."""

    @abstractmethod
    def encode(self, destination, field, malloc):
        """Store one value.

        Parameters
        ----------
        destination : ndarray[metadata_type], shape (1,)
            This sample's metadata record for this field, to fill in.
        field : object
            The value given by the user's dataset.
        malloc : callable(size: int) -> (int, ndarray[uint8])
            Reserves ``size`` bytes in the current page; returns the absolute
            file offset of the region and a writable view of it (FMT-041).
        """

    @abstractmethod
    def get_decoder_class(self):
        """The default decoder Operation class for this field."""


def zero_arguments():
    """An all-zero ``arguments`` blob, as Int/Float/RGB/Bytes/JSON fields store (FMT-021)."""
    return np.zeros(1, dtype=ARG_TYPE)[0]


def decoder_aliases(module_name, *names):
    """A module ``__getattr__`` (PEP 562) that serves decoders under FFCV's paths.

    FFCV 1.0 defined its decoders next to their fields (``from
    ffcv.fields.basics import IntDecoder``). ffcvx keeps them in the decoder
    modules, which import the pipeline and torch; the field modules are part
    of the format layer (reader, writer) and must not. So the names resolve
    on first use instead of at import.

    Parameters
    ----------
    module_name : str
        The field module's ``__name__``, for the AttributeError.
    *names : str
        Decoder names of ``ffcvx.fields.decoders`` to serve.
    """
    def __getattr__(name):
        if name in names:
            from . import decoders
            return getattr(decoders, name)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
    return __getattr__
