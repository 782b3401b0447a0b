"""Join part files into one ``.beton``: :func:`merge` (``ffcvx.merge``, ``ffcvx merge``), FMT-092.

Part ``k`` of ``K`` (``DatasetWriter.from_indexed_dataset(..., part=(k, K))``)
is a complete ``.beton`` holding a contiguous range of the samples. The
format makes an exact join cheap: every region lies inside one page, data
starts page-aligned and pointers are absolute offsets, so moving a part's
pages by a whole number of pages changes no byte inside them. Only the
header, the metadata table (each field shifts its own pointers,
``Field.relocate``) and the allocation table are written anew::

    header, descriptors (the parts' own bytes)
    metadata: part 0's records, part 1's, ... each pointer + shift[k]
    zero padding to D0 (FMT-040)
    pages of part 0 | pages of part 1 | ...        copied, not rewritten
    allocation table: ptr + shift[k], sample_id + first[k]

``shift[k] = D0 + (pages before part k) * PS - D0[k]``, a whole number of
pages (both ``D0`` are page-aligned, FMT-040). Local and shared
filesystems only in this version: pages move with ``os.copy_file_range``
(a read/write loop where that is missing or refused), into a temporary
file that replaces ``out`` atomically, as the writer does.
"""
import os

import numpy as np

from ..errors import BetonFormatError, MergeError, WriterError
from ..storage import is_url
from ..types import ALLOC_TABLE_TYPE, HeaderType
from . import layout, temp
from .pages import pwrite_all

__all__ = ['merge']

#: Bytes per read/write when ``os.copy_file_range`` cannot be used.
COPY_CHUNK = 8 << 20


class _Part:
    """One opened part: its reader, its pages ``[data_start, data_start + pages * PS)``."""

    def __init__(self, path, custom_handlers):
        from ..reader import Reader
        self.path = os.fspath(path)
        if is_url(self.path):
            raise MergeError(f"part {self.path}: merge joins local files only in this version")
        try:
            self.reader = Reader(self.path, custom_handlers=custom_handlers)
        except BetonFormatError as exc:
            raise MergeError(f"part {self.path} is not a valid .beton file: {exc}") from exc
        reader = self.reader
        table_ptr = int(reader.header['alloc_table_ptr'])
        # FMT-040/FMT-073: the table follows whole pages, or the metadata when there are none
        self.pages = max(0, table_ptr - reader.data_region_start) // reader.page_size
        self.data_start = reader.data_region_start
        self.file_size = reader.file_size


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


def _open_parts(paths, custom_handlers):
    parts = [_Part(path, custom_handlers) for path in paths]
    for part in parts[1:]:
        difference = _first_difference(parts[0], part)
        if difference is not None:
            raise MergeError(f"part {part.path} does not match part {parts[0].path}: "
                             f"{difference}; only parts of one write can be merged (FMT-092)")
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
                raise MergeError(f"part {part.path}, field {name!r}: {exc}") from None
            metadata[f'f{index}'][row:stop] = moved
        table = np.array(reader.alloc_table, dtype=ALLOC_TABLE_TYPE, copy=True)
        table['ptr'] += np.uint64(shift)
        table['sample_id'] += np.uint64(row)
        records.append(table)
        shifts.append(shift)
        row = stop
        pages_before += part.pages
    return metadata, np.concatenate(records), shifts, pages_before


class _PartEnded(OSError):
    """A part file ended before its last page (it changed after it was opened)."""


def _copy_range(src, dst, count, src_at, dst_at):
    """Copy ``count`` bytes from ``src`` at ``src_at`` to ``dst`` at ``dst_at`` (descriptors).

    ``os.copy_file_range`` first (the kernel moves the bytes, or shares the
    blocks on filesystems that can); where it is missing or refuses (another
    filesystem on an old kernel: EXDEV, ENOSYS, EINVAL, ...) the rest is
    copied with a pread/pwrite loop, which raises again if the error was real.

    Raises
    ------
    OSError
        From the copy (ENOSPC, EIO), or when the source ends early.
    """
    try:
        while count:
            done = os.copy_file_range(src, dst, count, src_at, dst_at)
            if done == 0:
                raise _PartEnded(f"the part ended {count} bytes early (changed while merging?)")
            count, src_at, dst_at = count - done, src_at + done, dst_at + done
        return
    except _PartEnded:
        raise
    except (AttributeError, OSError):
        pass            # go on from where the kernel copy stopped
    while count:
        chunk = os.pread(src, min(count, COPY_CHUNK), src_at)
        if not chunk:
            raise _PartEnded(f"the part ended {count} bytes early (changed while merging?)")
        pwrite_all(dst, chunk, dst_at)
        count, src_at, dst_at = count - len(chunk), src_at + len(chunk), dst_at + len(chunk)


def _write_merged(fd, parts, at):
    metadata, records, shifts, num_pages = _tables(parts, at)
    # the first part's descriptor bytes, not rebuilt from the fields: a TorchTensorField
    # reads back as an NDArrayField but must keep its type id 6 (FMT-022)
    pwrite_all(fd, parts[0].reader.field_descriptors.tobytes(), HeaderType.itemsize)
    for part, shift in zip(parts, shifts):
        if not part.pages:
            continue
        src = os.open(part.path, os.O_RDONLY | getattr(os, 'O_CLOEXEC', 0))
        try:
            if os.fstat(src).st_size != part.file_size:
                raise MergeError(f"part {part.path} changed size while being merged")
            _copy_range(src, fd, part.pages * at.page_size, part.data_start,
                        part.data_start + shift)
        finally:
            os.close(src)
    layout.write_tables(fd, at, metadata, records, num_pages)


def merge(parts, out, custom_handlers=None):
    """Join part files, in the order given, into one ``.beton`` at ``out`` (FMT-092).

    Parameters
    ----------
    parts : sequence of str or os.PathLike
        Local ``.beton`` files, part 0 first (``DatasetWriter.from_indexed_dataset(...,
        part=(k, K))`` for ``k = 0 .. K-1``). Empty parts are fine.
    out : str or os.PathLike
        The merged file; replaced atomically once everything is written.
    custom_handlers : Mapping[str, type[Field]], optional
        Field classes for fields stored with type id 255, as for
        :class:`ffcvx.reader.Reader`; each must implement
        :meth:`Field.relocate <ffcvx.fields.Field.relocate>`.

    Returns
    -------
    str
        ``out``.

    Notes
    -----
    Sample ``i`` of part ``k`` becomes sample ``first[k] + i``, ``first[k]``
    the number of samples in the parts before it. Every byte of every page
    is copied untouched; each part's pages start on a page boundary of
    ``out``. The same parts give the same file, byte for byte.

    Raises
    ------
    MergeError
        If no part is given, a part is not a valid ``.beton`` (the reader's
        error, with the part's path), parts differ in page size, field
        names, field types or field arguments (the message names the first
        difference and the part), or a field cannot relocate its pointers
        (a custom field without ``relocate``). Nothing is written then.
    WriterError
        If writing fails (a full disk, a part that changes meanwhile); no
        file is left at ``out`` but the old one, and no temporary file.
    """
    paths = [os.fspath(part) for part in parts]
    out = os.fspath(out)
    if not paths:
        raise MergeError("merge needs at least one part file")
    if is_url(out):
        raise MergeError(f"merge writes local files only in this version, not {out}")
    opened = _open_parts(paths, dict(custom_handlers or {}))
    reader = opened[0].reader
    num_samples = sum(part.reader.num_samples for part in opened)
    at = layout.Offsets(reader.num_fields, num_samples, reader.metadata_type, reader.page_size)
    staged = temp.Staged(out)       # also removes what killed merges left
    try:
        with staged:
            _write_merged(staged.fd, opened, at)
    except OSError as exc:
        raise WriterError(f"merging into {out} failed: {type(exc).__name__}: {exc}; nothing was "
                          f"written there and an existing file was left as it was") from exc
    return out
