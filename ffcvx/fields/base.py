"""The Field interface: what one column of a ``.beton`` file stores and how.

FFCV 1.0's interface (``metadata_type``, ``from_binary``, ``to_binary``,
``encode``, ``get_decoder_class``) plus two methods through which the reader
asks a field about its own records, so that the reader never needs to know
the field classes (``spec/beton.md`` section 7):

- :meth:`Field.check_metadata` validates the field's column of the metadata
  table against the allocation table when a file is opened (FMT-079 to
  FMT-082 for the built-in fields; nothing by default, since a custom field's
  records are opaque to readers);
- :meth:`Field.data_regions` says where each sample's stored bytes are, as
  ``(ptrs, sizes)`` (``None`` by default: the value lives in the metadata).

and one through which :func:`ffcvx.merge` moves a part's pages (FMT-092):

- :meth:`Field.relocate` returns the field's metadata column with every data
  pointer moved by a number of bytes. The default refuses (a custom field's
  records are opaque, so the merge cannot know where its pointers are);
  fields without pointers return the values unchanged.

Both receive the allocation table as a :class:`RegionTable`, and the first
also the column as a :class:`MetadataColumn`.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from ..errors import MergeError
from ..types import ARG_TYPE

__all__ = ['ARG_TYPE', 'Field', 'MetadataColumn', 'RegionTable', 'copy_unchanged',
           'decoder_aliases', 'decoder_named', 'shift_member', 'zero_arguments']


@dataclass(frozen=True)
class RegionTable:
    """The allocation table as a lookup from a region's first byte to its size (FMT-050).

    Attributes
    ----------
    ptrs : ndarray[uint64], shape (m,)
        Distinct region start offsets, absolute, bytes, ascending.
    sizes : ndarray[uint64], shape (m,)
        Size in bytes of the region at each of ``ptrs``; where several records
        share a pointer, the largest (FMT-050).
    owners : ndarray[uint64], shape (m,) or None
        ``sample_id`` of the non-empty record at each of ``ptrs``, ``2**64 - 1``
        where all records there are empty; a sample's metadata may point only
        at its own regions (FMT-088). None: not known, not checked.
    """

    ptrs: np.ndarray
    sizes: np.ndarray
    owners: np.ndarray = None

    def size_at(self, ptrs):
        """Size of the region that starts at each pointer.

        Parameters
        ----------
        ptrs : array_like of uint64, shape (n,)
            Absolute file offsets, bytes.

        Returns
        -------
        ndarray[int64], shape (n,)
            The region's size in bytes, or -1 where no region starts at the pointer.
        """
        ptrs = np.asarray(ptrs, dtype=np.uint64).reshape(-1)
        out = np.full(ptrs.shape, -1, dtype=np.int64)
        if self.ptrs.size == 0 or ptrs.size == 0:
            return out
        pos = np.minimum(np.searchsorted(self.ptrs, ptrs), self.ptrs.size - 1)
        found = self.ptrs[pos] == ptrs
        out[found] = self.sizes[pos[found]].astype(np.int64)
        return out


@dataclass(frozen=True)
class MetadataColumn:
    """One field's member of every metadata record, as the reader hands it to the field.

    Attributes
    ----------
    name : str
        The field's name, for error messages.
    values : ndarray[metadata_type], shape (N,)
        This field's member of each record (a read-only view).
    raw : ndarray[uint8], shape (N, R)
        The whole records as bytes, C order (``R`` = record size, FMT-031).
    member : int, bytes
        Offset of this field's member inside a record.
    table_offset : int, bytes
        File offset of the metadata table (FMT-030).
    """

    name: str
    values: np.ndarray
    raw: np.ndarray
    member: int
    table_offset: int

    def offset_of(self, sample, within=0):
        """File offset of byte ``within`` of ``sample``'s member, for error messages."""
        return self.table_offset + int(sample) * self.raw.shape[1] + self.member + within


class Field(ABC):
    """One column of a dataset.

    A field fixes the dtype of its per-sample record in the metadata table
    (``metadata_type``), how the writer turns a user value into that record
    plus optional data regions (``encode``), which decoder Operation reads it
    back (``get_decoder_class``), for readers, how its records point at
    data regions (``check_metadata``, ``data_regions``), and, for
    :func:`ffcvx.merge`, how to move those pointers when the pages move
    (``relocate``, FMT-092; a custom field that does not override it
    cannot be merged).

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
        """Rebuild the field from its descriptor's 1024-byte ``arguments`` (FMT-021).

        ``binary`` is ``ndarray[uint8], shape (1024,)`` when a reader calls it,
        an ``ARG_TYPE`` void when code passes ``to_binary()``'s result back.
        """

    @abstractmethod
    def to_binary(self) -> ARG_TYPE:
        """The 1024-byte ``arguments`` blob stored in the field descriptor (FMT-021)."""

    #: When true, the writer calls ``encode_with_rng(destination, field, malloc, rng)``
    #: instead of ``encode``, with a Generator seeded per sample from
    #: ``DatasetWriter(seed=...)``; fields that draw random numbers set it (never
    #: numpy's global RNG, whose state forked workers all copy).
    encode_uses_rng = False

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

    # -- record layout, for readers ---------------------------------------------------

    def check_metadata(self, column, regions):
        """Check this field's records when a file is opened (``spec/beton.md`` section 7).

        The default checks nothing: a custom field's records are opaque to the
        reader. Built-in fields check their pointers and sizes.

        Parameters
        ----------
        column : MetadataColumn
            This field's records.
        regions : RegionTable
            The file's allocation table.

        Raises
        ------
        BetonFormatError
            For a record that breaks the field's clauses (FMT-079 to FMT-082
            for the built-in fields), ``offset`` inside that record.
        """

    def data_regions(self, values, regions):
        """Where the stored bytes of some samples are.

        Parameters
        ----------
        values : ndarray[metadata_type], shape (n,)
            Records of this field, e.g. a slice of one metadata column.
        regions : RegionTable
            The file's allocation table.

        Returns
        -------
        (ptrs, sizes) or None
            ``ndarray[uint64]`` absolute offsets and ``ndarray[int64]`` lengths
            in bytes, both shape (n,); a size of -1 means that the record names
            no region (possible only for fields not checked at open). None when
            the field keeps its value in the metadata (the default).
        """
        return None

    # -- record layout, for merging part files ----------------------------------------

    def relocate(self, values, shift):
        """This field's records with every data pointer moved by ``shift`` bytes (FMT-092).

        :func:`ffcvx.merge` moves each part's pages to a new offset; pages
        are copied untouched, so only the pointers in the metadata change.
        A field with pointers adds ``shift`` to each of them (also to the
        pointer of a 0-byte payload, which has an allocation record too);
        a field that keeps its value in the metadata (Int, Float) returns
        the values as they are.

        Parameters
        ----------
        values : ndarray[metadata_type], shape (n,)
            Records of this field (one metadata column), read-only.
        shift : int, bytes
            Added to every absolute file offset in the records; ``>= 0``.

        Returns
        -------
        ndarray[metadata_type], shape (n,)
            A new array; ``values`` is not modified.

        Raises
        ------
        MergeError
            By default: a custom field cannot say where its pointers are, so
            a merge refuses it. A custom field makes itself mergeable by
            overriding this method.
        """
        raise MergeError(
            f"{type(self).__name__} does not say where the data pointers in its metadata "
            f"records are (it does not override Field.relocate), so part files holding it "
            f"cannot be merged (FMT-092); define relocate(values, shift) on the class")


def copy_unchanged(values):
    """``Field.relocate`` of a field whose records hold no pointer: a copy of ``values``."""
    return np.array(values, copy=True)


def shift_member(values, member, shift):
    """A copy of ``values`` with the ``<u8`` pointer ``member`` increased by ``shift`` bytes.

    ``member`` None: ``values`` itself is the ``<u8`` pointer column (arrays, FMT-034).
    """
    out = np.array(values, copy=True)
    column = out if member is None else out[member]
    column += np.uint64(shift)
    return out


def zero_arguments():
    """An all-zero ``arguments`` blob, as Int/Float/RGB/Bytes/JSON fields store (FMT-021)."""
    return np.zeros(1, dtype=ARG_TYPE)[0]


def native_core():
    """:mod:`ffcvx._ext.beton`, imported on first use so that writing needs no build of it."""
    from .._ext import beton
    return beton


def decoder_named(name):
    """The decoder class ``name`` of :mod:`ffcvx.decoders`, imported on first use.

    The one place where the format layer reaches the decode layer: fields
    name their default decoder through it (``get_decoder_class``) and the
    FFCV-path aliases (:func:`decoder_aliases`) resolve through it, so that
    the decoders, which import the pipeline and torch, load only when a
    decoder is asked for, and nothing in :mod:`ffcvx.decoders` imports a
    field module back.

    Parameters
    ----------
    name : str
        A name :mod:`ffcvx.decoders` exports, e.g. ``'IntDecoder'``.

    Returns
    -------
    type
        The decoder Operation class.
    """
    from .. import decoders
    return getattr(decoders, name)


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
            return decoder_named(name)
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
    return __getattr__
