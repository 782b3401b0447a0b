"""What one epoch of a Loader did: counts, waits and storage reads (``Loader.stats()``).

Always on: the producer thread and the training loop each add a few
``perf_counter`` readings per batch (well under 1% of a batch's time,
benchmarks/test_stats_overhead.py), and storage figures come from counters
the memory strategy keeps anyway.

Waits are measured on both sides of the queue of finished batches:

* ``data_stall_s``: the training loop waited in ``next()`` for a batch. A
  large share of the wall time means the loader is the bottleneck;
* ``producer_blocked_s``: the producer had a batch ready but every slot was
  taken (``batches_ahead`` batches waiting). Large means the training step
  is the bottleneck (the loader could go faster).
"""
import time

__all__ = ['EpochStats', 'loader_stats']


class EpochStats:
    """Counters of one epoch, filled by the producer thread and the consuming loop.

    Parameters
    ----------
    epoch : int
        The epoch number.
    batch_sizes : sequence of int
        Samples of each batch the epoch will produce, in order.
    memory : MemoryManager
        The Loader's strategy; its ``io_counters()`` (pages and bytes read
        from storage so far, or None where the operating system does the
        reading) is read at the start and whenever the stats are asked for.
    samples_skipped : int
        Samples of this epoch (all ranks together) that a resume skipped.
    """

    def __init__(self, epoch, batch_sizes, memory, samples_skipped=0):
        self.epoch = int(epoch)
        self.samples_skipped = int(samples_skipped)
        self._sizes = list(batch_sizes)
        # A strategy written against FFCV's MemoryManager has neither method.
        self._io_counters = getattr(memory, 'io_counters', lambda: None)
        self._batch_pages = getattr(memory, 'batch_pages', lambda number: None)
        self._io_start = self._io_counters()
        self._io_end = None
        self.started = time.perf_counter()
        self.ended = None
        self.completed = False
        self.batches = 0
        self.samples = 0
        self.data_stall_s = 0.0
        self.producer_blocked_s = 0.0
        self.pipeline_s = 0.0
        self.storage_wait_s = 0.0
        self.page_requests = 0
        self.cache_hits = 0
        self.decode_errors = 0

    # -- called by the producer thread ----------------------------------------

    def batch_prepared(self, number, storage_wait_s, pipeline_s):
        """Batch ``number`` (of this epoch's list) is ready: the seconds spent waiting for its
        pages and running its pipelines."""
        self.storage_wait_s += storage_wait_s
        self.pipeline_s += pipeline_s
        pages = self._batch_pages(number)
        if pages is not None:
            requests, loads = pages
            self.page_requests += requests
            self.cache_hits += requests - loads

    def producer_blocked(self, seconds):
        self.producer_blocked_s += seconds

    def pipeline_failed(self):
        """A pipeline raised (a corrupt sample, a failing transform): the epoch ends with it."""
        self.decode_errors += 1

    # -- called by the consuming loop -----------------------------------------

    def handed_out(self, number, waited_s):
        """Batch ``number`` reached the training loop after ``waited_s`` seconds in ``next()``."""
        self.batches += 1
        self.samples += self._sizes[number]
        self.data_stall_s += waited_s

    def consumer_waited(self, waited_s):
        self.data_stall_s += waited_s

    def finish(self, completed):
        """The epoch ended: every batch handed out (``completed``), or stopped early."""
        if self.ended is None:
            self.ended = time.perf_counter()
            self.completed = bool(completed)
            self._io_end = self._io_counters()

    # -- reading ----------------------------------------------------------------

    def as_dict(self):
        """The figures as plain values (ints, floats, bools, None: JSON-serialisable).

        Returns
        -------
        dict
            ``epoch``; ``running`` (not ended yet); ``completed`` (every batch
            handed out); ``batches``, ``samples``: handed to the training loop
            so far, of ``batches_planned``, ``samples_planned``;
            ``resume_skipped_samples``: samples of the epoch (all ranks) that
            a resume skipped; ``wall_s``:
            seconds since ``iter()`` (to the end once ended); ``samples_per_s``;
            ``data_stall_s`` and ``data_stall_fraction`` (of ``wall_s``): the
            training loop waited for a batch; ``producer_blocked_s`` and
            ``producer_blocked_fraction``: a batch was ready but no slot was
            free; ``pipeline_s``: the producer ran the compiled pipelines;
            ``storage_wait_s``: it waited for a batch's pages; ``pages_read``,
            ``bytes_read``: loaded from storage (the file, a URL, Redis) during
            the epoch, reads ahead of the loop included, and ``page_requests``,
            ``cache_hits``: pages the produced batches needed, and of those the
            ones already held: all None for strategies whose reads the
            operating system makes (``os``, ``shared``); ``decode_errors``: 1 if
            a pipeline raised (the epoch ends there and the error reaches the
            loop), else 0.
        """
        end = self.ended if self.ended is not None else time.perf_counter()
        wall = end - self.started
        io_now = self._io_end if self.ended is not None else self._io_counters()
        io = ({key: io_now[key] - self._io_start[key] for key in io_now}
              if io_now is not None and self._io_start is not None else {})
        batches_planned = len(self._sizes)
        return {
            'epoch': self.epoch,
            'running': self.ended is None,
            'completed': self.completed,
            'batches': self.batches,
            'batches_planned': batches_planned,
            'samples': self.samples,
            'samples_planned': int(sum(self._sizes)),
            'resume_skipped_samples': self.samples_skipped,
            'wall_s': wall,
            'samples_per_s': self.samples / wall if wall > 0 else 0.0,
            'data_stall_s': self.data_stall_s,
            'data_stall_fraction': self.data_stall_s / wall if wall > 0 else 0.0,
            'producer_blocked_s': self.producer_blocked_s,
            'producer_blocked_fraction': self.producer_blocked_s / wall if wall > 0 else 0.0,
            'pipeline_s': self.pipeline_s,
            'storage_wait_s': self.storage_wait_s,
            'pages_read': io.get('pages_read'),
            'bytes_read': io.get('bytes_read'),
            'page_requests': self.page_requests if io else None,
            'cache_hits': self.cache_hits if io else None,
            'decode_errors': self.decode_errors,
        }


def loader_stats(history):
    """``Loader.stats()`` from the Loader's last two :class:`EpochStats` (oldest first).

    Returns
    -------
    dict
        ``{'current': dict or None, 'last': dict or None}``: ``current`` is the
        epoch running now (None between epochs), ``last`` the latest one that
        ended (completed, stopped early, or failed).
    """
    current = last = None
    for stats in reversed(history):
        if stats.ended is None and current is None and last is None:
            current = stats
        elif stats.ended is not None and last is None:
            last = stats
    return {'current': current.as_dict() if current else None,
            'last': last.as_dict() if last else None}
