"""The plan of a merge (FMT-092): the parts opened and checked, the head, page ranges and table.

:func:`plan` reads only the parts' headers, descriptors, metadata and
allocation tables (a URL part's pages are never read for it); the module
of each kind of target (:mod:`.merge_local`, :mod:`.s3_compose`,
:mod:`.merge_stream`) writes what it plans. :mod:`.merge` has the layout
and :func:`~.merge.merge`; these names are importable from it as before.
"""
import os

import numpy as np

from ..errors import BetonFormatError, MergeError
from ..storage import is_url, local_path, redact
from ..types import ALLOC_TABLE_TYPE, HeaderType
from . import layout

__all__ = ['COPY_CHUNK', 'PartEnded', 'Plan', 'plan']

#: Bytes per read when pages go through this process.
COPY_CHUNK = 8 << 20


class _Part:
    """One opened part: its reader, its pages ``[data_start, data_start + pages * PS)``."""

    def __init__(self, path, custom_handlers, storage_options=None):
        from ..reader import Reader
        # file:// is a local file: copied by the kernel, named by its path
        self.path = local_path(path)
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
