"""The process cache's plan of an epoch: which pages each batch needs, and where they go.

Before an epoch the paged cache (:mod:`.paged_cache`) knows every batch
it will serve, so it knows which pages each batch needs and when each page
is needed again. :func:`plan_epoch` assigns a fixed number of page-sized
slots: for every page load, the slot it goes into and the batch after which
that slot's previous page is no longer needed. When a slot must be reused,
the page whose next use is farthest away is evicted (Belady's rule, optimal
for a known sequence).
"""
import heapq

import numpy as np


def sample_pages(reader):
    """Which data pages each sample's regions lie in.

    Parameters
    ----------
    reader : ffcvx.reader.Reader

    Returns
    -------
    indptr : ndarray[int64], shape (num_samples + 1,)
        Sample ``s``'s pages are ``pages[indptr[s]:indptr[s + 1]]``.
    pages : ndarray[int64], shape (k,)
        Absolute page numbers (``ptr // page_size``).

    Notes
    -----
    A zero-size record that shares its pointer with another sample's region
    is served that region by ``read`` (the largest size wins on a tie), so its
    page counts as one of the sample's pages too; only pointers whose region
    is empty need no page.
    """
    table = reader.alloc_table
    ptrs = np.asarray(reader.region_ptrs, dtype=np.uint64)
    sizes = np.asarray(reader.region_sizes, dtype=np.uint64)
    record_ptrs = table['ptr'].astype(np.uint64)
    served = sizes[np.searchsorted(ptrs, record_ptrs)] if len(ptrs) else np.zeros(0, np.uint64)
    keep = served > 0
    samples = table['sample_id'][keep].astype(np.int64)
    pages = (record_ptrs[keep] // np.uint64(reader.page_size)).astype(np.int64)
    pairs = np.unique(np.stack([samples, pages], axis=1), axis=0) if len(samples) else \
        np.zeros((0, 2), dtype=np.int64)
    counts = np.bincount(pairs[:, 0], minlength=reader.num_samples)
    indptr = np.zeros(reader.num_samples + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return indptr, np.ascontiguousarray(pairs[:, 1])


def batch_pages(indptr, pages, batches):
    """Distinct pages of each batch, ascending.

    Parameters
    ----------
    indptr, pages : ndarray[int64]
        From :func:`sample_pages`.
    batches : sequence of ndarray[integer]
        Sample indices of each batch.

    Returns
    -------
    list of ndarray[int64]
    """
    result = []
    for batch in batches:
        batch = np.asarray(batch, dtype=np.int64)
        starts, ends = indptr[batch], indptr[batch + 1]
        lengths = ends - starts
        # Gather every sample's page slice in one vectorised step.
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        result.append(np.unique(pages[offsets]))
    return result


class EpochPlan:
    """Where and when every page of an epoch is loaded (see :func:`plan_epoch`).

    Attributes
    ----------
    jobs : ndarray[int64], shape (n, 4)
        One row per page load, in the order the loads must be issued:
        ``(batch, page, slot, after)``: ``page`` goes into ``slot`` before
        ``batch`` starts, once batch ``after`` has finished with the slot's
        previous page (``-1``: the slot is fresh).
    job_end : ndarray[int64], shape (num_batches,)
        Batch ``b``'s loads are ``jobs[:job_end[b]]`` (jobs of earlier
        batches included).
    release : list of ndarray[int64]
        Pages that batch ``b`` uses for the last time this epoch; they are
        unmapped when batch ``b + 1`` starts.
    requests : ndarray[int64], shape (num_batches,) or None
        Distinct pages each batch needs (loaded for it or already held).
    """

    def __init__(self, jobs, job_end, release, requests=None):
        self.jobs = jobs
        self.job_end = job_end
        self.release = release
        self.requests = requests

    def batch_pages(self, batch):
        """``(pages batch ``batch`` needs, pages loaded for it)``, or None without ``requests``."""
        if self.requests is None or batch >= len(self.job_end):
            return None
        loads = int(self.job_end[batch]) - (int(self.job_end[batch - 1]) if batch else 0)
        return int(self.requests[batch]), loads


def plan_epoch(pages_per_batch, num_slots):
    """Plan page loads for one epoch with ``num_slots`` page slots.

    Parameters
    ----------
    pages_per_batch : list of ndarray[int64]
        Distinct pages each batch needs, in batch order.
    num_slots : int
        Slots available; at least ``max(len(p) for p in pages_per_batch)``.

    Returns
    -------
    EpochPlan
    """
    uses = {}
    for b, pages in enumerate(pages_per_batch):
        for p in pages.tolist():
            uses.setdefault(p, []).append(b)
    cursor = dict.fromkeys(uses, 0)
    never = len(pages_per_batch)
    # Free slots with the batch after which they may be overwritten.
    free = [(-1, s) for s in range(num_slots - 1, -1, -1)]
    resident = {}          # page -> slot
    last_batch = {}        # page -> last batch that used it so far
    heap = []              # (-next use, page): eviction candidates, lazily invalidated
    jobs, job_end, release = [], [], []
    for b, pages in enumerate(pages_per_batch):
        current = pages.tolist()
        for p in current:
            if p in resident:
                continue
            if free:
                after, slot = free.pop()
            else:
                while True:
                    negative_next, victim = heapq.heappop(heap)
                    next_use = uses[victim][cursor[victim]] if cursor[victim] < len(uses[victim]) else never
                    if victim in resident and -negative_next == next_use and next_use > b:
                        break
                slot = resident.pop(victim)
                after = last_batch[victim]
            resident[p] = slot
            jobs.append((b, p, slot, after))
        job_end.append(len(jobs))
        done = []
        for p in current:
            cursor[p] += 1
            last_batch[p] = b
            if cursor[p] < len(uses[p]):
                heapq.heappush(heap, (-uses[p][cursor[p]], p))
            else:
                # Last use this epoch: the slot is free once batch b is done.
                free.append((b, resident.pop(p)))
                done.append(p)
        release.append(np.asarray(done, dtype=np.int64))
    job_array = np.asarray(jobs, dtype=np.int64).reshape(-1, 4)
    return EpochPlan(job_array, np.asarray(job_end, dtype=np.int64), release)
