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
# The epoch planner lives in its own module; its names stay importable from here.
from .page_plan import EpochPlan, batch_pages, plan_epoch, sample_pages  # noqa: F401

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
        The manager's ``'fd'`` (int), ``'epoch'`` (:class:`_Epoch` or None)
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
        pages = batch_pages(self._indptr, self._pages, batches)
        needed = max((len(p) for p in pages), default=0)
        if needed > self.num_slots:
            raise ValueError(
                f"process cache: max_bytes={self.max_bytes} holds {self.num_slots} pages of "
                f"{self.page_size} bytes, but a batch needs {needed} pages; the minimum is "
                f"{needed * self.page_size} bytes (smaller batches, or an order that puts a "
                f"batch's samples in fewer pages, need less)")
        epoch = _Epoch(self, plan_epoch(pages, self.num_slots))
        self._epoch = epoch
        self._files['epoch'] = epoch
        try:
            epoch.start()
            yield self
        finally:
            epoch.stop()
            self._epoch = None
            # Drops the cycle manager -> files -> epoch -> manager at once.
            if self._files.get('epoch') is epoch:
                self._files['epoch'] = None
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


class _Epoch:
    """The reader threads of one epoch and the bookkeeping they share."""

    def __init__(self, manager, plan):
        self.manager = manager
        self.plan = plan
        self.cond = threading.Condition()
        self.finished_before = 0   # batches < this one are done with their pages
        self.next_job = 0
        self.done = np.zeros(len(plan.jobs), dtype=bool)
        self.done_prefix = 0       # jobs[:done_prefix] all loaded
        self.error = None
        self.stopping = False
        self.slot_page = np.full(manager.num_slots, -1, dtype=np.int64)
        self.threads = []
        #: The thread that runs the epoch (the Loader's producer), which waits in begin().
        self.owner = threading.current_thread()

    def involves(self, thread):
        """Whether ``thread`` is this epoch's owner or one of its reader threads."""
        return thread is self.owner or thread in self.threads

    def start(self):
        count = min(self.manager.readers, max(1, len(self.plan.jobs)))
        for i in range(count):
            thread = threading.Thread(target=self._work, name=f'ffcvx-page-reader-{i}', daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self):
        """Make the readers and a waiting ``begin`` return, then wait for the readers."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        current = threading.current_thread()
        for thread in self.threads:
            if thread is not current:  # a thread cannot wait for itself
                thread.join()
        self.threads = []

    def _empty_slot(self, slot):
        # Caller holds self.cond. A page evicted here may already have been
        # loaded again into another slot by a faster reader thread; only a
        # mapping that still points at this slot is removed.
        page = int(self.slot_page[slot])
        if page < 0:
            return
        self.slot_page[slot] = -1
        table = self.manager._page_to_slot
        if table[page] == slot:
            table[page] = -1
        self.manager.resident_pages -= 1

    def begin(self, batch):
        plan = self.plan
        with self.cond:
            # Batches before `batch` have run: their last-use pages go, and
            # slots waiting on them may be refilled.
            for finished in range(self.finished_before, batch):
                for page in plan.release[finished].tolist():
                    slot = int(self.manager._page_to_slot[page])
                    if slot >= 0:
                        self._empty_slot(slot)
            self.finished_before = max(self.finished_before, batch)
            self.cond.notify_all()
            needed = int(plan.job_end[batch]) if batch < len(plan.job_end) else len(plan.jobs)
            while self.done_prefix < needed and self.error is None and not self.stopping:
                self.cond.wait()
            if self.error is not None:
                raise self.error
            if self.stopping and self.done_prefix < needed:
                # close() ran while this batch waited: its pages never come.
                raise RuntimeError(f"process cache of {self.manager.reader.fname} was closed "
                                   f"during the epoch (batch {batch} was waiting for its pages)")

    def _take_jobs(self):
        """Claim the next jobs to load, waiting until the first one's slot is free.

        Caller holds ``self.cond``. Up to ``manager.pages_per_read`` consecutive
        jobs are claimed, but only the first may wait for its slot: a later one
        joins only if its slot is already free, so grouping never delays a load.

        Returns
        -------
        list of (index, page, slot), or None when the thread should exit.
        """
        jobs = self.plan.jobs
        group = []
        while len(group) < self.manager.pages_per_read:
            if self.stopping or self.next_job >= len(jobs):
                break
            batch, page, slot, after = (int(v) for v in jobs[self.next_job])
            if group and (self.finished_before <= after or
                          not self.manager._joins(group[-1][1], page)):
                break
            index = self.next_job
            self.next_job += 1
            # The slot's previous page is still being read until batch `after` is done.
            while self.finished_before <= after and not self.stopping:
                self.cond.wait()
            if self.stopping:
                return None
            self._empty_slot(slot)
            group.append((index, page, slot))
        return group or None

    def _work(self):
        manager, jobs = self.manager, self.plan.jobs
        page_size = manager.page_size
        while True:
            with self.cond:
                group = self._take_jobs()
            if group is None:
                return
            try:
                manager._read_pages(
                    [page for _, page, _ in group],
                    [memoryview(manager._arena[slot * page_size:(slot + 1) * page_size])
                     for _, _, slot in group])
            except BaseException as exc:  # handed to start_batch, raised in the loader thread
                with self.cond:
                    self.error = exc
                    self.cond.notify_all()
                return
            with self.cond:
                for index, page, slot in group:
                    manager._page_to_slot[page] = slot
                    self.slot_page[slot] = page
                    manager.resident_pages += 1
                    manager.pages_read += 1
                    self.done[index] = True
                manager.peak_resident_pages = max(manager.peak_resident_pages, manager.resident_pages)
                while self.done_prefix < len(jobs) and self.done[self.done_prefix]:
                    self.done_prefix += 1
                self.cond.notify_all()
