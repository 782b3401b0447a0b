"""Join part files into one ``.beton``: :func:`merge` (``ffcvx.merge``, ``ffcvx merge``), FMT-092.

Part ``k`` of ``K`` (``DatasetWriter.from_indexed_dataset(..., part=(k, K))``)
is a complete ``.beton`` holding a contiguous range of the samples. The
format makes an exact join cheap: every region lies inside one page, data
starts page-aligned and pointers are absolute offsets, so moving a part's
pages by a whole number of pages changes no byte inside them. Only the
header, the metadata table (each field shifts its own pointers,
``Field.relocate``) and the allocation table are written anew::

    head      header, descriptors (the parts' own bytes),
              metadata: part 0's records, part 1's, ... each pointer + shift[k],
              zero padding to D0 (FMT-040)                         written by us
    pages     pages of part 0 | pages of part 1 | ...              copied, not rewritten
    table     allocation table: ptr + shift[k], sample_id + first[k]  written by us

``shift[k] = D0 + (pages before part k) * PS - D0[k]``, a whole number of
pages (both ``D0`` are page-aligned, FMT-040). :func:`plan` computes the
head, the page ranges and the table from the parts' tables alone (a URL
part's pages are never read for it); one module per kind of target then
writes them:

- a local or shared-filesystem path (or ``file://``): :mod:`.merge_local`,
  ``os.copy_file_range`` into a temporary file renamed onto ``out``;
- ``s3://``: :mod:`.s3_compose`, one multipart upload whose parts are
  server-side copies of the part objects' byte ranges (FMT-094);
- any other fsspec URL: :mod:`.merge_stream`, a streamed copy through this
  process into a temporary object moved onto ``out`` (FMT-095).
"""
import os

import numpy as np

from ..errors import BetonFormatError, MergeError
from ..storage import is_url, redact, url_scheme
from ..types import ALLOC_TABLE_TYPE, HeaderType
from . import layout

__all__ = ['merge', 'plan', 'Plan']

#: Bytes per read when pages go through this process.
COPY_CHUNK = 8 << 20


class _Part:
    """One opened part: its reader, its pages ``[data_start, data_start + pages * PS)``."""

    def __init__(self, path, custom_handlers, storage_options=None):
        from ..reader import Reader
        # file:// is a local file: copied by the kernel, named by its path
        self.path = path[len('file://'):] if url_scheme(path) == 'file' else path
        self.url = is_url(path)
        # a URL's Reader reads the header, descriptors, metadata and allocation table
        # with range requests: never a page (spec/remote.md)
        try:
            self.reader = Reader(self.path, custom_handlers=custom_handlers,
                                 storage_options=storage_options if self.url else None)
        except BetonFormatError as exc:
            raise MergeError(f"part {redact(path)} is not a valid .beton file: {exc}") from exc
        except FileNotFoundError as exc:
            if not self.url:
                raise
            raise MergeError(f"part {redact(path)} does not exist ({exc})") from exc
        reader = self.reader
        table_ptr = int(reader.header['alloc_table_ptr'])
        # FMT-040/FMT-073: the table follows whole pages, or the metadata when there are none
        self.pages = max(0, table_ptr - reader.data_region_start) // reader.page_size
        self.data_start = reader.data_region_start
        self.file_size = reader.file_size

    def chunks(self, start, count, chunk=COPY_CHUNK):
        """``count`` bytes from ``start``, read in pieces of at most ``chunk`` bytes.

        Raises
        ------
        OSError
            From the read; ``PartEnded`` when the part is shorter than it was
            at open (a remote part's version is pinned: a replaced one raises
            ``RemoteFileChangedError``).
        """
        source = self.reader.source
        while count:
            data = source.read(start, min(count, chunk))
            if not data:
                raise PartEnded(f"part {redact(self.path)} ended {count} bytes early "
                                f"(changed while merging?)")
            yield data
            start, count = start + len(data), count - len(data)


class PartEnded(OSError):
    """A part ended before its last page (it changed after it was opened)."""


def _first_difference(reference, part):
    """What differs between two parts' layouts (FMT-092), or None."""
    a, b = reference.reader, part.reader
    if a.page_size != b.page_size:
        return f"page size {b.page_size} instead of {a.page_size}"
    if a.field_names != b.field_names:
        return f"fields {b.field_names} instead of {a.field_names}"
    for index, name in enumerate(a.field_names):
        mine, theirs = a.field_descriptors[index], b.field_descriptors[index]
        if int(mine['type_id']) != int(theirs['type_id']):
            return (f"field {name!r} has type id {int(theirs['type_id'])} instead of "
                    f"{int(mine['type_id'])}")
        if type(a.handlers[name]) is not type(b.handlers[name]):
            return (f"field {name!r} is a {type(b.handlers[name]).__name__} instead of a "
                    f"{type(a.handlers[name]).__name__}")
        if mine['arguments'].tobytes() != theirs['arguments'].tobytes():
            return (f"field {name!r} ({type(a.handlers[name]).__name__}) has other arguments "
                    f"(its descriptor's 1024 bytes differ, FMT-021)")
    return None


def _open_parts(paths, custom_handlers, storage_options):
    parts = [_Part(path, custom_handlers, storage_options) for path in paths]
    for part in parts[1:]:
        difference = _first_difference(parts[0], part)
        if difference is not None:
            raise MergeError(f"part {redact(part.path)} does not match part "
                             f"{redact(parts[0].path)}: {difference}; only parts of one write "
                             f"can be merged (FMT-092)")
    return parts


def _tables(parts, at):
    """The merged metadata table, allocation records and each part's page shift."""
    first = parts[0].reader
    metadata = np.zeros(at.num_samples, dtype=first.metadata_type)
    records, shifts = [], []
    row = pages_before = 0
    for part in parts:
        reader = part.reader
        shift = at.data_start + pages_before * at.page_size - part.data_start
        stop = row + reader.num_samples
        for index, (name, handler) in enumerate(reader.handlers.items()):
            try:
                moved = handler.relocate(reader.metadata[f'f{index}'], shift)
            except MergeError as exc:
                raise MergeError(f"part {redact(part.path)}, field {name!r}: {exc}") from None
            metadata[f'f{index}'][row:stop] = moved
        table = np.array(reader.alloc_table, dtype=ALLOC_TABLE_TYPE, copy=True)
        table['ptr'] += np.uint64(shift)
        table['sample_id'] += np.uint64(row)
        records.append(table)
        shifts.append(shift)
        row = stop
        pages_before += part.pages
    return metadata, np.concatenate(records), shifts, pages_before


class Plan:
    """The merged file as three kinds of bytes: ``head``, page ``ranges``, ``table``.

    Attributes
    ----------
    parts : list
        The opened parts, in order (each with ``path``, ``url``, ``reader``,
        ``pages``, ``data_start`` and ``chunks(start, count)``).
    head : bytes
        Bytes ``[0, len(head))`` of the merged file: header (FMT-010),
        descriptors, metadata and the zero padding to the first page (to the
        table when there is no page).
    ranges : list of tuple (part, start, length)
        Each part's pages that follow, in order: ``length`` bytes (a whole
        number of pages) from offset ``start`` of the part; parts without
        pages are left out.
    table : bytes
        The allocation table, the last bytes of the file.
    size : int, bytes
        Size of the merged file.
    """

    def __init__(self, parts, head, ranges, table):
        self.parts, self.head, self.ranges, self.table = parts, head, ranges, table
        self.size = len(head) + sum(length for _, _, length in ranges) + len(table)


def plan(parts, custom_handlers=None, storage_options=None):
    """Open the parts, check they match, and lay out their merge (FMT-092); nothing is written.

    Parameters are those of :func:`merge`.

    Returns
    -------
    Plan

    Raises
    ------
    MergeError
        As :func:`merge` says.
    """
    paths = [os.fspath(part) for part in parts]
    if not paths:
        raise MergeError("merge needs at least one part file")
    opened = _open_parts(paths, dict(custom_handlers or {}), storage_options)
    reader = opened[0].reader
    num_samples = sum(part.reader.num_samples for part in opened)
    at = layout.Offsets(reader.num_fields, num_samples, reader.metadata_type, reader.page_size)
    metadata, records, _, num_pages = _tables(opened, at)
    table_ptr = layout.table_ptr(at, num_pages)
    head = bytearray(table_ptr if not num_pages else at.data_start)   # zeros: the padding
    head[:HeaderType.itemsize] = layout.header_bytes(at, table_ptr)
    # the first part's descriptor bytes, not rebuilt from the fields: a TorchTensorField
    # reads back as an NDArrayField but must keep its type id 6 (FMT-022)
    descriptors = reader.field_descriptors.tobytes()
    head[HeaderType.itemsize:HeaderType.itemsize + len(descriptors)] = descriptors
    head[at.meta_start:at.meta_start + at.meta_bytes] = metadata.tobytes()
    ranges = [(part, part.data_start, part.pages * at.page_size) for part in opened if part.pages]
    return Plan(opened, bytes(head), ranges, layout.sorted_records(records).tobytes())


def merge(parts, out, custom_handlers=None, storage_options=None):
    """Join part files, in the order given, into one ``.beton`` at ``out`` (FMT-092).

    Parameters
    ----------
    parts : sequence of str or os.PathLike
        ``.beton`` files, part 0 first (``DatasetWriter.from_indexed_dataset(...,
        part=(k, K))`` for ``k = 0 .. K-1``): local paths or URLs (``s3://``,
        ``gs://``, ``memory://``, any fsspec protocol; their tables are read
        with range requests, as the Reader reads them). Empty parts are fine.
        For an ``s3://`` ``out`` every part must be an object of the same bucket.
    out : str or os.PathLike
        The merged file, replaced atomically once everything is written: a
        local path or ``file://`` URL (pages copied with
        ``os.copy_file_range``), an ``s3://`` URL (composed in the store by
        one multipart upload, pages never passing through this process,
        FMT-094) or another fsspec URL (pages streamed through this process,
        FMT-095).
    custom_handlers : Mapping[str, type[Field]], optional
        Field classes for fields stored with type id 255, as for
        :class:`ffcvx.reader.Reader`; each must implement
        :meth:`Field.relocate <ffcvx.fields.Field.relocate>`.
    storage_options : dict, optional
        Credentials and endpoint of the URLs, the keys a Loader takes
        (fsspec's: for S3 ``key``, ``secret``, ``token``, ``endpoint_url``,
        ``client_kwargs={'region_name': ...}``, ``config_kwargs``,
        ``profile``); for S3 the usual AWS environment and config files
        where absent. The same options serve every part and ``out``.

    Returns
    -------
    str
        ``out``.

    Notes
    -----
    Sample ``i`` of part ``k`` becomes sample ``first[k] + i``, ``first[k]``
    the number of samples in the parts before it. Every byte of every page
    is copied untouched; each part's pages start on a page boundary of
    ``out``. The same parts give the same file, byte for byte, whatever
    ``out`` is.

    Raises
    ------
    MergeError
        If no part is given, a part is not a valid ``.beton`` (the reader's
        error, with the part's path), a URL part does not exist, parts
        differ in page size, field names, field types or field arguments
        (the message names the first difference and the part), a field
        cannot relocate its pointers (a custom field without ``relocate``),
        or, for an ``s3://`` ``out``, a part is not in its bucket or the
        merge needs more than 10,000 upload parts. Nothing is written then.
    WriterError
        If writing fails (a full disk, a part that changes meanwhile, an
        object store that refuses or fails); nothing is left at ``out`` but
        the old file or object, and no temporary file, object or unfinished
        multipart upload (the message says so where one could not be
        removed).
    ffcvx.errors.RemoteUnavailableError, ffcvx.errors.BackendNotFoundError
        If a URL part cannot be read, or its client is not installed.
    """
    out = os.fspath(out)
    parts = [os.fspath(part) for part in parts]      # read twice below: not a generator
    scheme = url_scheme(out)
    if scheme in ('s3', 's3a'):
        from .s3_compose import check_parts, compose
        check_parts(parts, out)
        return compose(plan(parts, custom_handlers, storage_options), out, storage_options)
    if scheme not in (None, 'file'):
        from .merge_stream import stream
        return stream(plan(parts, custom_handlers, storage_options), out, storage_options)
    from .merge_local import write_local
    write_local(plan(parts, custom_handlers, storage_options),
                out[len('file://'):] if scheme == 'file' else out)
    return out
