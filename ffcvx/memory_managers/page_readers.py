"""The reader threads of one paged-cache epoch (:mod:`.paged_cache`).

They execute an :class:`~.page_plan.EpochPlan` in batch order: each thread
claims the next loads (several together where the page source's
``pages_per_read`` and ``joins`` allow), waits until the slot's previous
page is no longer needed, and calls the source's ``read``. ``begin(batch)``
releases the pages earlier batches no longer need and waits until the
batch's pages are in.
"""
import threading

import numpy as np


class PageCounters:
    """What a paged cache counts, shared with its epochs' reader threads.

    Attributes
    ----------
    resident : int
        Pages held now.
    peak : int
        Most pages held at once.
    read : int
        Page loads since the cache was made.
    bytes_read : int
        Bytes those loads read (a page, or less for the file's last page).
    """

    def __init__(self):
        self.resident = 0
        self.peak = 0
        self.read = 0
        self.bytes_read = 0


class EpochReaders:
    """The reader threads of one epoch and the bookkeeping they share.

    Parameters
    ----------
    cache : ffcvx.memory_managers.paged_cache.PagedCache
        Whose ``page_source``, ``arena``, ``page_to_slot``, ``counters``,
        ``num_slots``, ``page_size``, ``readers`` and ``name`` the epoch uses.
    plan : ffcvx.memory_managers.page_plan.EpochPlan
    """

    def __init__(self, cache, plan):
        self.manager = cache
        self.plan = plan
        self.cond = threading.Condition()
        self.finished_before = 0   # batches < this one are done with their pages
        self.next_job = 0
        self.done = np.zeros(len(plan.jobs), dtype=bool)
        self.done_prefix = 0       # jobs[:done_prefix] all loaded
        self.error = None
        self.stopping = False
        self.slot_page = np.full(cache.num_slots, -1, dtype=np.int64)
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
        table = self.manager.page_to_slot
        if table[page] == slot:
            table[page] = -1
        self.manager.counters.resident -= 1

    def begin(self, batch):
        plan = self.plan
        with self.cond:
            # Batches before `batch` have run: their last-use pages go, and
            # slots waiting on them may be refilled.
            for finished in range(self.finished_before, batch):
                for page in plan.release[finished].tolist():
                    slot = int(self.manager.page_to_slot[page])
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
                raise RuntimeError(f"{self.manager.name} of {self.manager.reader.fname} was closed "
                                   f"during the epoch (batch {batch} was waiting for its pages)")

    def _take_jobs(self):
        """Claim the next jobs to load, waiting until the first one's slot is free.

        Caller holds ``self.cond``. Up to the source's ``pages_per_read`` consecutive
        jobs are claimed, but only the first may wait for its slot: a later one
        joins only if its slot is already free, so grouping never delays a load.

        Returns
        -------
        list of (index, page, slot), or None when the thread should exit.
        """
        jobs, source = self.plan.jobs, self.manager.page_source
        group = []
        while len(group) < source.pages_per_read:
            if self.stopping or self.next_job >= len(jobs):
                break
            batch, page, slot, after = (int(v) for v in jobs[self.next_job])
            if group and (self.finished_before <= after or
                          not source.joins(group[-1][1], page)):
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
        page_size, arena, source = manager.page_size, manager.arena, manager.page_source
        table, counters = manager.page_to_slot, manager.counters
        file_size = manager.reader.file_size
        while True:
            with self.cond:
                group = self._take_jobs()
            if group is None:
                return
            try:
                source.read([page for _, page, _ in group],
                            [memoryview(arena[slot * page_size:(slot + 1) * page_size])
                             for _, _, slot in group])
            except BaseException as exc:  # handed to start_batch, raised in the loader thread
                with self.cond:
                    self.error = exc
                    self.cond.notify_all()
                return
            with self.cond:
                for index, page, slot in group:
                    table[page] = slot
                    self.slot_page[slot] = page
                    counters.resident += 1
                    counters.read += 1
                    counters.bytes_read += max(0, min(page_size, file_size - page * page_size))
                    self.done[index] = True
                counters.peak = max(counters.peak, counters.resident)
                while self.done_prefix < len(jobs) and self.done[self.done_prefix]:
                    self.done_prefix += 1
                self.cond.notify_all()
