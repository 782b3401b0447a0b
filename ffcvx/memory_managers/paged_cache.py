"""The page cache behind strategies ``process``, ``remote`` and ``redis``.

Before an epoch the cache knows every batch it will serve, so it knows which
pages each batch needs and when each page is needed again. It plans the
epoch once (:func:`~.page_plan.plan_epoch`): a fixed number of page-sized
slots, and for every page load the slot it goes into and the batch after
which that slot's previous page is no longer needed. When a slot must be
reused, the page whose next use is farthest away is evicted (Belady's rule,
optimal for a known sequence), so a file larger than the bound is read at
the source's speed and a file that fits is read once per epoch.

A pool of reader threads (:mod:`.page_readers`) executes the plan in batch
order, loading pages from a :class:`~ffcvx.storage.pages.PageSource` (a local
file, a URL, a Redis server) straight into the slots; the sources release the
GIL while they wait, so loading overlaps decoding. The compiled ``read`` only
indexes arrays: ``page_to_slot`` says where a page lives, and the loader's
``start_batch`` blocks until every page of the batch has landed.

A strategy is a :class:`PagedCache` with a source and a policy: whether pages
stay from one epoch to the next when the arena holds them all
(``keep_pages``).
"""
import threading
import weakref
from contextlib import contextmanager

import numpy as np
import psutil
from numba import njit

from .base import MemoryManager
from .page_plan import EpochPlan, batch_pages, plan_epoch, sample_pages
from .page_readers import EpochReaders, PageCounters

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


def _release(held):
    """Finalizer of a paged cache: stop a running epoch's readers, then close the source.

    Parameters
    ----------
    held : dict
        The cache's ``'epoch'`` (:class:`.page_readers.EpochReaders` or None)
        and ``'source'`` (the page source); both are taken out, so a second
        call does nothing.

    Notes
    -----
    The source is closed only once no reader thread can use it (a closed
    descriptor number may be reused by the next ``open`` and a late
    ``preadv`` would read another file; a closed connection pool would
    reconnect). When this runs on a thread of the epoch itself (gc may run
    any finalizer on any thread), joining would wait for the current thread,
    or for readers blocked on a lock this thread holds; a helper thread then
    does the stop and the close once this thread moves on.
    """
    epoch = held.pop('epoch', None)
    source = held.pop('source', None)

    def finish():
        try:
            if epoch is not None:
                epoch.stop()
        finally:
            if source is not None:
                source.close()

    if epoch is not None and epoch.involves(threading.current_thread()):
        threading.Thread(target=finish, name='ffcvx-page-reader-stop', daemon=True).start()
    else:
        finish()


class PagedCache(MemoryManager):
    """A bounded arena of page slots, filled ahead of need from a page source.

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    source : ffcvx.storage.pages.PageSource
        Where pages come from; closed with the cache (on failure here too).
    max_bytes : int or None
        Upper bound, in bytes, on page bytes held at once. None: the smaller
        of the file's data pages and half the memory available now.
    readers : int
        Reader threads.
    keep_pages : bool
        Policy: when the arena holds every page of the file, keep them from
        one epoch to the next (each page is loaded once per cache) instead of
        freeing them after each epoch.
    name : str
        The strategy's name in messages (``'process cache'``).

    Attributes
    ----------
    page_source : ffcvx.storage.pages.PageSource
        The ``source`` argument.
    num_slots : int
        Page slots of the buffer: ``min(max_bytes // page_size, data pages)``.
    arena : ndarray[uint8], shape (num_slots * page_size,)
        The slots (None once closed).
    page_to_slot : ndarray[int64]
        Slot of each page number, -1 where the page is not held.
    resident_pages : int
        Pages currently held.
    peak_resident_pages : int
        Most pages ever held at once (high-water mark, for tests and tuning).
    pages_read : int
        Page loads issued since the cache was made.

    Raises
    ------
    ValueError
        If ``max_bytes`` is smaller than one page, or ``readers < 1``.
    """

    def __init__(self, reader, source, max_bytes=None, readers=DEFAULT_READERS,
                 keep_pages=False, name='process cache'):
        super().__init__(reader)
        # What the finalizer releases (close(), gc of the cache, or exit); it
        # holds this dict, never the cache.
        self._held = {'epoch': None, 'source': source}
        self._finalizer = weakref.finalize(self, _release, self._held)
        try:
            self._setup(reader, source, max_bytes, readers, keep_pages, name)
        except BaseException:
            self._finalizer()
            raise

    def _setup(self, reader, source, max_bytes, readers, keep_pages, name):
        self.page_source = source
        self.name = name
        self.page_size = int(reader.page_size)
        self._first_page = int(reader.data_region_start) // self.page_size
        last = -(-int(reader.file_size) // self.page_size)
        data_pages = max(0, int(last - self._first_page))
        if max_bytes is None:
            max_bytes = min(data_pages * self.page_size, psutil.virtual_memory().available // 2)
            max_bytes = max(max_bytes, self.page_size)
        self.max_bytes = int(max_bytes)
        if self.max_bytes < self.page_size:
            raise ValueError(f"{name}: max_bytes={self.max_bytes} is smaller than one page "
                             f"({self.page_size} bytes); the minimum is one batch's pages")
        if int(readers) < 1:
            raise ValueError(f"{name}: readers must be at least 1, got {readers}")
        self.readers = int(readers)
        self.num_slots = max(1, min(self.max_bytes // self.page_size, data_pages))
        self.keep_pages = bool(keep_pages)
        # np.empty maps the buffer lazily: untouched slots cost no RSS.
        self.arena = np.empty(self.num_slots * self.page_size, dtype=np.uint8)
        self.page_to_slot = np.full(last + 1, -1, dtype=np.int64)
        self._state = (self.arena, *self.region_table(), self.page_to_slot,
                       np.array([self.page_size], dtype=np.int64))
        self._indptr, self._pages = sample_pages(reader)
        self.counters = PageCounters()
        self._epoch = None

    resident_pages = property(lambda self: self.counters.resident)
    peak_resident_pages = property(lambda self: self.counters.peak)
    pages_read = property(lambda self: self.counters.read)

    @property
    def state(self):
        return self._state

    def compile_reader(self):
        return _read_region

    @property
    def keeps_pages(self):
        """Whether pages stay from one epoch to the next: ``keep_pages`` and the arena holds every page."""
        return self.keep_pages and self.num_slots >= len(self.page_to_slot) - 1 - self._first_page

    def data_pages(self):
        """Every page a batch can ask for (the pages of the samples' regions), sorted list of int."""
        return np.unique(self._pages).tolist()

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

    def plan(self, batches):
        """The epoch's :class:`~.page_plan.EpochPlan` under the cache's policy.

        Belady's plan over ``num_slots`` slots; with every page kept
        (:attr:`keeps_pages`), page ``p`` lives in slot ``p - first`` for
        good and only pages not yet held are loaded, in the order the batches
        need them, none released (pages an epoch left early never started are
        loaded by the next that needs them).

        Raises
        ------
        ValueError
            If one batch needs more pages than ``max_bytes`` holds.
        """
        pages = batch_pages(self._indptr, self._pages, batches)
        plan = self._plan_pages(pages)
        plan.requests = np.array([len(p) for p in pages], dtype=np.int64)
        return plan

    def _plan_pages(self, pages):
        if self.keeps_pages:
            jobs, job_end, queued = [], [], set()
            for b, needed in enumerate(pages):
                for page in needed.tolist():
                    if self.page_to_slot[page] < 0 and page not in queued:
                        queued.add(page)
                        jobs.append((b, page, page - self._first_page, -1))
                job_end.append(len(jobs))
            return EpochPlan(np.asarray(jobs, dtype=np.int64).reshape(-1, 4),
                             np.asarray(job_end, dtype=np.int64),
                             [np.zeros(0, dtype=np.int64)] * len(job_end))
        needed = max((len(p) for p in pages), default=0)
        if needed > self.num_slots:
            raise ValueError(
                f"{self.name}: max_bytes={self.max_bytes} holds {self.num_slots} pages of "
                f"{self.page_size} bytes, but a batch needs {needed} pages; the minimum is "
                f"{needed * self.page_size} bytes (smaller batches, or an order that puts a "
                f"batch's samples in fewer pages, need less)")
        return plan_epoch(pages, self.num_slots)

    @contextmanager
    def schedule_epoch(self, batches):
        """Plan the epoch, start the reader threads, stop them (and free the pages) at the end.

        Raises
        ------
        ValueError
            If one batch needs more pages than ``max_bytes`` holds (the
            message gives the minimum, in bytes).
        RuntimeError
            If the cache was closed.
        """
        if not self._finalizer.alive:
            raise RuntimeError(f"{self.name} of {self.reader.fname} was closed; "
                               f"make a new Loader to read the file again")
        epoch = EpochReaders(self, self.plan(batches))
        self._epoch = epoch
        self._held['epoch'] = epoch
        try:
            epoch.start()
            yield self
        finally:
            # The readers finish the loads they started before they return.
            epoch.stop()
            self._epoch = None
            # Drops the cycle cache -> held -> epoch -> cache at once.
            if self._held.get('epoch') is epoch:
                self._held['epoch'] = None
            if not self.keeps_pages:
                self.page_to_slot[:] = -1
                self.counters.resident = 0

    def start_batch(self, batch_number):
        """Let the readers reuse the previous batch's slots; wait until this batch's pages are in.

        Raises
        ------
        OSError
            If a reader thread failed to read the file (or the source's own error).
        """
        if self._epoch is not None:
            self._epoch.begin(batch_number)

    def io_counters(self):
        """``{'pages_read', 'bytes_read'}`` since the cache was made (the reader threads' loads)."""
        return {'pages_read': self.counters.read, 'bytes_read': self.counters.bytes_read}

    def batch_pages(self, batch_number):
        epoch = self._epoch
        return epoch.plan.batch_pages(batch_number) if epoch is not None else None

    def close(self):
        """Stop the reader threads and close the source; safe to call more than once."""
        self._finalizer()
        self._epoch = None
        self.arena = None
        self._state = None
