"""Strategy 1: a private, memory-bounded page cache filled ahead of need.

Before an epoch the manager knows every batch it will serve, so it knows
which pages each batch needs and when each page is needed again. It plans the
epoch once (:func:`plan_epoch`): a fixed number of page-sized slots, and for
every page load the slot it goes into and the batch after which that slot's
previous page is no longer needed. When a slot must be reused, the page whose
next use is farthest away is evicted (Belady's rule, optimal for a known
sequence), so a file larger than the bound is read at disk speed and a file
that fits is read once per epoch.

A pool of reader threads executes the plan in batch order with ``os.preadv``
straight into the slots (it releases the GIL, so reading overlaps decoding).
Where pages come from is one method, ``_read_pages``, so a subclass can serve
them from elsewhere (the Redis cache does) with the same plan and threads.
The compiled ``read`` only indexes arrays: ``page_to_slot`` says where a
page lives, and the loader's ``start_batch`` blocks until every page of the
batch has landed.
"""
import os
import threading
import weakref
from contextlib import contextmanager

import numpy as np
import psutil
from numba import njit

from .base import MemoryManager
# The epoch's reader threads and the planner live in modules of their own; the
# planner's names stay importable from here.
from .page_plan import EpochPlan, batch_pages, plan_epoch, sample_pages  # noqa: F401
from .page_readers import EpochReaders

#: Reader threads when the caller names no number; reads are I/O-bound, so
#: more threads than cores keep a disk's queue full.
DEFAULT_READERS = 8


@njit(nogil=True, cache=False)
def _read_region(ptr, state):
    arena, region_ptrs, region_sizes, page_to_slot, geometry = state
    position = np.searchsorted(region_ptrs, ptr)
    size = np.int64(region_sizes[position])
    if size == 0:
        # Empty regions may sit outside any data page (FMT-050: D0 - PS).
        return arena[0:0]
    page_size = geometry[0]
    offset = np.int64(ptr)
    page = offset // page_size
    start = page_to_slot[page] * page_size + (offset - page * page_size)
    return arena[start:start + size]


def _release_files(files):
    """Finalizer of a process cache: stop a running epoch's readers, then close the file.

    Parameters
    ----------
    files : dict
        The manager's ``'fd'`` (int), ``'epoch'``
        (:class:`.page_readers.EpochReaders` or None)
        and ``'after'`` (list of callables: what a subclass releases once the
        readers are gone, e.g. the Redis connections); all are taken out, so
        a second call does nothing.

    Notes
    -----
    The fd is closed only once no reader thread can use it (a closed number
    may be reused by the next ``open`` and a late ``preadv`` would read
    another file). When this runs on a thread of the epoch itself (gc may
    run any finalizer on any thread), joining would wait for the current
    thread, or for readers blocked on a lock this thread holds; a helper
    thread then does the stop and the close once this thread moves on.
    """
    epoch = files.pop('epoch', None)
    fd = files.pop('fd', None)
    after = files.pop('after', [])

    def finish():
        try:
            if epoch is not None:
                epoch.stop()
        finally:
            if fd is not None:
                os.close(fd)
            for release in after:
                release()

    if epoch is not None and epoch.involves(threading.current_thread()):
        threading.Thread(target=finish, name='ffcvx-page-reader-stop', daemon=True).start()
    else:
        finish()


class ProcessCacheManager(MemoryManager):
    """Reads pages ahead of need into a bounded private buffer (strategy 1).

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    max_bytes : int or None
        Upper bound, in bytes, on page bytes held at once. None: the smaller
        of the file's data pages and half the memory available now.
    readers : int
        Reader threads.

    Attributes
    ----------
    num_slots : int
        Page slots of the buffer: ``min(max_bytes // page_size, data pages)``.
    resident_pages : int
        Pages currently held.
    peak_resident_pages : int
        Most pages ever held at once (high-water mark, for tests and tuning).
    pages_read : int
        Page reads issued since the manager was made.

    Raises
    ------
    ValueError
        If ``max_bytes`` is smaller than one page, or ``readers < 1``.
    """

    #: Pages one reader thread loads per :meth:`_read_pages` call. One for
    #: local files (each ``preadv`` is already one system call); sources with
    #: a round-trip cost per request (a server) fetch several at once.
    pages_per_read = 1

    def __init__(self, reader, max_bytes=None, readers=DEFAULT_READERS):
        super().__init__(reader)
        self.page_size = int(reader.page_size)
        first = reader.data_region_start // self.page_size
        last = -(-int(reader.file_size) // self.page_size)
        data_pages = max(0, int(last - first))
        if max_bytes is None:
            max_bytes = min(data_pages * self.page_size, psutil.virtual_memory().available // 2)
            max_bytes = max(max_bytes, self.page_size)
        self.max_bytes = int(max_bytes)
        if self.max_bytes < self.page_size:
            raise ValueError(f"process cache: max_bytes={self.max_bytes} is smaller than one page "
                             f"({self.page_size} bytes); the minimum is one batch's pages")
        if int(readers) < 1:
            raise ValueError(f"process cache: readers must be at least 1, got {readers}")
        self.readers = int(readers)
        self.num_slots = max(1, min(self.max_bytes // self.page_size, data_pages))
        # np.empty maps the buffer lazily: untouched slots cost no RSS.
        self._arena = np.empty(self.num_slots * self.page_size, dtype=np.uint8)
        self._page_to_slot = np.full(last + 1, -1, dtype=np.int64)
        self._state = (self._arena,
                       *self.region_table(),
                       self._page_to_slot,
                       np.array([self.page_size], dtype=np.int64))
        self._indptr, self._pages = sample_pages(reader)
        self._fd = self._open_file()
        # What the finalizer releases (close(), gc of the manager, or exit);
        # it holds this dict, never the manager.
        self._files = {'fd': self._fd, 'epoch': None, 'after': []}
        self._finalizer = weakref.finalize(self, _release_files, self._files)
        self.resident_pages = 0
        self.peak_resident_pages = 0
        self.pages_read = 0
        self._epoch = None

    @property
    def state(self):
        return self._state

    def compile_reader(self):
        return _read_region

    def minimum_bytes(self, batches):
        """Smallest ``max_bytes`` that can serve ``batches``: the pages of the largest batch.

        Parameters
        ----------
        batches : sequence of ndarray[integer]

        Returns
        -------
        int, bytes
        """
        pages = batch_pages(self._indptr, self._pages, batches)
        return max((len(p) for p in pages), default=0) * self.page_size

    def _epoch_plan(self, batches):
        """The epoch's :class:`EpochPlan`; a page source with another policy overrides it.

        Raises ``ValueError`` if one batch needs more pages than ``max_bytes`` holds.
        """
        pages = batch_pages(self._indptr, self._pages, batches)
        needed = max((len(p) for p in pages), default=0)
        if needed > self.num_slots:
            raise ValueError(
                f"process cache: max_bytes={self.max_bytes} holds {self.num_slots} pages of "
                f"{self.page_size} bytes, but a batch needs {needed} pages; the minimum is "
                f"{needed * self.page_size} bytes (smaller batches, or an order that puts a "
                f"batch's samples in fewer pages, need less)")
        return plan_epoch(pages, self.num_slots)

    def _keeps_pages(self):
        """Whether pages stay mapped after an epoch (False: every slot is freed)."""
        return False

    @contextmanager
    def schedule_epoch(self, batches):
        """Plan the epoch, start the reader threads, stop them and free every page at the end.

        Raises
        ------
        ValueError
            If one batch needs more pages than ``max_bytes`` holds (the
            message gives the minimum, in bytes).
        RuntimeError
            If the manager was closed.
        """
        if not self._finalizer.alive:
            raise RuntimeError(f"process cache of {self.reader.fname} was closed; "
                               f"make a new Loader to read the file again")
        epoch = EpochReaders(self, self._epoch_plan(batches))
        self._epoch = epoch
        self._files['epoch'] = epoch
        try:
            epoch.start()
            yield self
        finally:
            # The readers finish the loads they started before they return.
            epoch.stop()
            self._epoch = None
            # Drops the cycle manager -> files -> epoch -> manager at once.
            if self._files.get('epoch') is epoch:
                self._files['epoch'] = None
            if not self._keeps_pages():
                self._page_to_slot[:] = -1
                self.resident_pages = 0

    def start_batch(self, batch_number):
        """Let the readers reuse the previous batch's slots; wait until this batch's pages are in.

        Raises
        ------
        OSError
            If a reader thread failed to read the file.
        """
        if self._epoch is not None:
            self._epoch.begin(batch_number)

    def _joins(self, previous, page):
        """Whether a reader thread may load ``page`` in the same call as ``previous``."""
        return True

    def _open_file(self):
        """The descriptor ``_read_pages`` reads; a cache with another page source returns None."""
        return os.open(self.reader.fname, os.O_RDONLY)

    def _read_pages(self, pages, views):
        """Load pages into slots: the page source, overridden by caches with another one.

        Called by reader threads without any lock held, for pages that no
        other thread is loading; several calls run at once.

        Parameters
        ----------
        pages : list of int
            Absolute page numbers (file offset ``page * page_size``), at most
            ``pages_per_read`` of them.
        views : list of memoryview
            One writable ``page_size``-byte slot per page. The last page of the
            file may be shorter than a slot; the rest of its slot is not read.

        Raises
        ------
        OSError
            If the file cannot be read.
        """
        page_size = self.page_size
        for page, view in zip(pages, views):
            got = 0
            offset = page * page_size
            while got < page_size:
                n = os.preadv(self._fd, [view[got:]], offset + got)
                if n == 0:
                    break  # the last page may end at the end of the file
                got += n

    def close(self):
        """Stop the reader threads and close the file; safe to call more than once."""
        self._finalizer()
        self._epoch = None
        self._arena = None
        self._state = None
