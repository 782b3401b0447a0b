"""Page allocation and sample encoding for :class:`ffcvx.writer.DatasetWriter` (runs in the workers).

Every worker owns one zeroed page buffer and fills it with a bump allocator
(no alignment inside a page); all regions of one sample go into the same page
(FMT-041), so a sample that does not fit into the rest of the current page is
dropped from it (its bytes are zeroed) and encoded again at the start of a
fresh page. A full page is written with ``os.pwrite`` straight to its final
offset (FMT-040).
"""
import os
import stat

import numpy as np

from ..fields import ImageField
from ..types import ALLOC_TABLE_TYPE, MAX_PAGE_SIZE, MIN_PAGE_SIZE

#: First ``spawn_key`` word of per-sample Generators (``shuffle_indices`` uses ``SHUFFLE_KEY``),
#: so that the two never draw the same stream from one seed.
SAMPLE_KEY = 1
SHUFFLE_KEY = 0

__all__ = ['SAMPLE_KEY', 'SHUFFLE_KEY', 'Cursor', 'PageAllocator', 'PageFull', 'SampleEncoder', 'pwrite_all', 'suggest_page_size']


class PageFull(Exception):
    """The current sample's next region does not fit in the rest of the page."""


class Cursor:
    """Which sample (and which part of it) a worker is busy with, for error messages."""

    __slots__ = ('dest', 'where', 'field')

    def __init__(self):
        self.dest = None
        self.where = None
        self.field = None

    def describe(self):
        if self.dest is None:
            return 'the output file'
        text = f'sample {self.dest}'
        if self.where:
            text += f' ({self.where})'
        return text


def suggest_page_size(nbytes):
    """Smallest valid page size (a power of two, FMT-013) holding ``nbytes``, or None."""
    size = max(MIN_PAGE_SIZE, 1 << max(0, int(nbytes) - 1).bit_length())
    return size if size < MAX_PAGE_SIZE else None


class PageAllocator:
    """Bump allocator over one page buffer; full pages go to the file with ``pwrite``.

    Parameters
    ----------
    fd : int
        Descriptor of the output file, open for writing.
    page_size : int
        Bytes per page (FMT-013).
    data_start : int
        File offset ``D0`` of page 0 of the data region (FMT-040).
    next_page : callable() -> int
        Hands out the next unused page number, shared by all workers.
    """

    def __init__(self, fd, page_size, data_start, next_page):
        self.fd = fd
        self.page_size = page_size
        self.data_start = data_start
        self.next_page = next_page
        self.page = np.zeros(page_size, dtype=np.uint8)
        self.page_no = -1            # no page open yet
        self.offset = 0              # bytes used in the open page
        self.records = []            # (sample_id, ptr, size), in malloc order
        self.sample_id = 0
        self.sample_first = 0        # index in records of this sample's first region
        self.sample_start = 0        # page offset of this sample's first region
        self.sample_bytes = 0        # bytes this sample holds in the open page

    def begin_sample(self, sample_id):
        """Start the regions of sample ``sample_id`` (destination index)."""
        self.sample_id = sample_id
        self.sample_first = len(self.records)
        self.sample_bytes = 0

    def malloc(self, size):
        """Reserve ``size`` bytes for the current sample (the fields' ``malloc``).

        Regions are packed back to back with no alignment. A sample's first
        region that does not fit in the rest of the open page opens the next
        page; a later one raises :class:`PageFull`, so that all regions of a
        sample stay in one page (FMT-041). Every region is recorded for the
        allocation table (FMT-050).

        Parameters
        ----------
        size : int, bytes
            At most ``page_size``; 0 is allowed (the region then only has a ptr).

        Returns
        -------
        ptr : int
            Absolute file offset of the region.
        view : ndarray[uint8], shape (size,)
            Writable view of the region in the page buffer.

        Raises
        ------
        PageFull
            When the sample already has regions in this page and this one does
            not fit after them (the caller moves the sample to a fresh page).
        ValueError
            For a negative size or one larger than a page.
        """
        size = int(size)
        if size < 0:
            raise ValueError(f"malloc of a negative size ({size} bytes)")
        if size > self.page_size:
            suggestion = suggest_page_size(size)
            hint = (f"pass page_size={suggestion} to DatasetWriter" if suggestion else
                    "a .beton page cannot be that large (FMT-013)")
            raise ValueError(f"a region of {size} bytes is larger than a page of "
                             f"{self.page_size} bytes; {hint}")
        # max(size, 1): a zero-size region at the very end of a full page would point
        # at the next page (or past the last one), so it opens a fresh page too
        if self.page_no < 0 or self.offset + max(size, 1) > self.page_size:
            if len(self.records) > self.sample_first:
                raise PageFull(size)
            self.new_page()
        if len(self.records) == self.sample_first:
            self.sample_start = self.offset
        start = self.offset
        self.offset = start + size
        self.sample_bytes += size
        ptr = self.data_start + self.page_no * self.page_size + start
        self.records.append((self.sample_id, ptr, size))
        return ptr, self.page[start:start + size]

    def drop_sample(self):
        """Forget the current sample's regions and zero their bytes in the page."""
        if len(self.records) > self.sample_first:
            self.page[self.sample_start:self.offset] = 0
            self.offset = self.sample_start
            del self.records[self.sample_first:]
        self.sample_bytes = 0

    def new_page(self):
        """Write the open page (if any) and open the next free one."""
        self.flush()
        self.page_no = int(self.next_page())
        self.offset = 0

    def flush(self):
        """Write the open page, whole and zero-padded, at its final offset (FMT-040)."""
        if self.page_no < 0:
            return
        position = self.data_start + self.page_no * self.page_size
        view = memoryview(self.page)
        while view:
            written = os.pwrite(self.fd, view, position)
            view = view[written:]
            position += written
        self.page[:self.offset] = 0
        self.page_no = -1
        self.offset = 0

    def take_records(self):
        """The allocation records made since the last call, as ``ALLOC_TABLE_TYPE``."""
        records = np.array(self.records, dtype=ALLOC_TABLE_TYPE)
        self.records = []
        self.sample_first = 0
        return records


class SampleEncoder:
    """Encodes samples into a metadata table and the page buffer of one worker.

    Parameters
    ----------
    field_names : list of str
    handlers : list of Field
        One per field, in field order.
    metadata : ndarray[metadata_type], shape (num_samples,)
        This worker's copy of the metadata table; the rows it fills are sent
        to the parent with :meth:`take_rows` (so no memory is shared, which
        lets workers be forked or spawned alike).
    allocator : PageAllocator
    cursor : Cursor
    entropy : int
        Root entropy of the write (``DatasetWriter(seed=...)``); a field that
        draws random numbers gets a Generator seeded from ``(entropy, sample,
        field)``, so its choices are reproducible from a seed and independent
        of which worker encodes the sample.
    first : int
        Global position of this file's sample 0: nonzero when the file is
        part ``k`` of ``K`` (``from_indexed_dataset(part=...)``); the
        Generators are seeded from the global position ``first + dest``, so
        a part draws what a single-process write of the whole dataset draws.

    Attributes
    ----------
    counts : dict[(str or None, str), int]
        Samples per ``(field name, outcome label)`` since the last
        :meth:`take_counts`: the labels the fields' ``encode`` returned
        (:mod:`ffcvx.fields.outcomes`), and those a source adds with
        :meth:`count` (field name None).
    """

    def __init__(self, field_names, handlers, metadata, allocator, cursor, entropy, first=0):
        self.field_names = field_names
        self.handlers = handlers
        self.metadata = metadata
        # one column view per field: slicing it gives FFCV's ``destination``
        self.columns = [metadata[f'f{i}'] for i in range(len(handlers))]
        self.allocator = allocator
        self.cursor = cursor
        self.num_fields = len(handlers)
        self.entropy = entropy
        self.first = int(first)
        self.random_fields = [bool(getattr(h, 'encode_uses_rng', False)) for h in handlers]
        self.filled = []
        self.counts = {}
        # image fields open path inputs; a FIFO or device there would block or never end
        self.path_fields = [i for i, h in enumerate(handlers) if isinstance(h, ImageField)]

    def sample_rng(self, dest, index):
        """The Generator of field ``index`` for sample ``dest`` (reproducible, per sample).

        Keyed by the global position ``first + dest``, never by the part, so
        part files and a whole write draw the same choices (FMT-093).
        """
        position = self.first + int(dest)
        sequence = np.random.SeedSequence(self.entropy, spawn_key=(SAMPLE_KEY, position, index))
        return np.random.Generator(np.random.PCG64(sequence))

    def take_rows(self):
        """``(destinations int64, their metadata rows as bytes)`` filled since the last call."""
        dests = np.asarray(self.filled, dtype=np.int64)
        self.filled = []
        return dests, self.metadata[dests].tobytes()

    def count(self, group, label):
        """Add one sample to ``counts[(group, label)]``."""
        key = (group, label)
        self.counts[key] = self.counts.get(key, 0) + 1

    def take_counts(self):
        """The :attr:`counts` since the last call (a small dict, sent with each item's report)."""
        counts, self.counts = self.counts, {}
        return counts

    def check_sample(self, sample):
        if not isinstance(sample, (tuple, list)):
            raise TypeError(f"{self.cursor.describe()} is a {type(sample).__name__}; the dataset "
                            f"must return a tuple of {self.num_fields} values, one per field "
                            f"{tuple(self.field_names)}")
        if len(sample) != self.num_fields:
            raise ValueError(f"{self.cursor.describe()} has {len(sample)} values but the writer has "
                             f"{self.num_fields} fields {tuple(self.field_names)}; each sample must "
                             f"be a tuple with one value per field, in that order")

    def encode(self, dest, sample):
        """Store ``sample`` (one value per field) as sample number ``dest``.

        A sample that does not fit in the rest of the open page is encoded
        again at the start of a fresh one; the outcome labels the fields
        return are counted for the attempt that is stored only. A field that
        raises leaves nothing of the sample behind (its regions are dropped),
        so a source may retry it with other values.
        """
        self.check_sample(sample)
        for i in self.path_fields:
            if isinstance(sample[i], (str, os.PathLike)):
                self.cursor.field = self.field_names[i]
                _check_not_special(sample[i], type(self.handlers[i]).__name__)
        alloc = self.allocator
        cursor = self.cursor
        for attempt in range(2):
            alloc.begin_sample(dest)
            outcomes = []
            try:
                for i in range(self.num_fields):
                    cursor.field = self.field_names[i]
                    if self.random_fields[i]:
                        outcome = self.handlers[i].encode_with_rng(
                            self.columns[i][dest:dest + 1], sample[i], alloc.malloc,
                            self.sample_rng(dest, i))
                    else:
                        outcome = self.handlers[i].encode(self.columns[i][dest:dest + 1],
                                                          sample[i], alloc.malloc)
                    # fields written against FFCV's interface return None (or anything)
                    if isinstance(outcome, str):
                        outcomes.append((self.field_names[i], outcome))
            except PageFull as full:
                needed = alloc.sample_bytes + full.args[0]
                alloc.drop_sample()
                if attempt == 1:
                    raise self._too_big(needed) from None
                alloc.new_page()
            except BaseException:
                alloc.drop_sample()
                raise
            else:
                cursor.field = None
                self.filled.append(dest)
                for key in outcomes:
                    self.counts[key] = self.counts.get(key, 0) + 1
                return

    def _too_big(self, needed):
        suggestion = suggest_page_size(needed)
        hint = (f"pass page_size={suggestion} (or more) to DatasetWriter" if suggestion else
                "a .beton page cannot be that large (FMT-013)")
        return ValueError(
            f"{self.cursor.describe()} does not fit in one page of {self.allocator.page_size} bytes: "
            f"its regions up to and including field {self.cursor.field!r} need {needed} bytes, and "
            f"all regions of a sample must lie in one page (FMT-041); {hint}")


def _check_not_special(path, field_name):
    """Refuse a path to a FIFO, socket or device, which reading would block on or never finish.

    Raises
    ------
    OSError
        Naming the path and what it is. A path that cannot be stat'ed is left
        to the field, whose own read names the problem (missing, dangling
        symlink, no permission).
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return
    kinds = ((stat.S_ISFIFO, 'a FIFO (named pipe)'), (stat.S_ISSOCK, 'a socket'),
             (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'))
    for test, kind in kinds:
        if test(mode):
            raise OSError(f"{field_name} cannot read image file {os.fsdecode(path)!r}: it is "
                          f"{kind}, not a regular file")


def pwrite_all(fd, data, offset):
    """Write all of ``data`` at file ``offset`` of ``fd`` (``os.pwrite`` may write less).

    Raises
    ------
    OSError
        From ``os.pwrite``: ENOSPC (disk full), EFBIG (file size limit), EIO.
    """
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
