"""One epoch of batches, produced by a background thread.

The producer thread runs the compiled pipelines batch after batch into
rotating buffer slots and hands the outputs over through a bounded queue.
Three promises hold:

* an exception in a pipeline is raised in the training loop (never a hang);
* leaving the loop early, or dropping the iterator, stops the thread;
* a batch's buffers are not overwritten until ``batches_ahead + 1`` further
  batches have been handed out.
"""
import os
import queue
import threading
import time
import warnings
import weakref

import numba
import numpy as np

from ..pipeline.seeds import EpochSeeds
from .stats import EpochStats

_BATCH, _END, _ERROR = 'batch', 'end', 'error'
#: Seconds between checks of the stop flag while the queue is full or empty.
_POLL_SECONDS = 0.1


def thread_count(num_workers):
    """Threads an epoch runs its pipelines on: ``num_workers``, or one per CPU of this
    process's affinity set when below 1, at most ``NUMBA_NUM_THREADS`` (with a warning)."""
    available = len(os.sched_getaffinity(0))
    wanted = available if int(num_workers) < 1 else int(num_workers)
    limit = numba.config.NUMBA_NUM_THREADS
    if wanted > limit:
        warnings.warn(f"num_workers={wanted} exceeds NUMBA_NUM_THREADS={limit}; using {limit} "
                      f"(set NUMBA_NUM_THREADS before starting Python to allow more)")
        wanted = limit
    return wanted


class _Producer:
    """The thread's side. Holds no reference to the EpochIterator, so that an
    abandoned iterator is garbage-collected and its finaliser stops the thread."""

    def __init__(self, graph, memory, batches, num_slots, num_threads, batches_ahead, seeds,
                 stats):
        self.graph = graph
        self.stats = stats
        self.seeds = seeds
        self.memory = memory
        self.batches = batches
        self.num_slots = num_slots
        self.num_threads = num_threads
        self.queue = queue.Queue(maxsize=batches_ahead)
        self.stop = threading.Event()

    def _put(self, item):
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            pass
        # Every slot is taken: the training loop is slower than the pipelines.
        blocked_since = time.perf_counter()
        try:
            while not self.stop.is_set():
                try:
                    self.queue.put(item, timeout=_POLL_SECONDS)
                    return True
                except queue.Full:
                    continue
            return False
        finally:
            self.stats.producer_blocked(time.perf_counter() - blocked_since)

    def run(self):
        try:
            # Thread-local in Numba: sets how many threads *this* thread's
            # parallel loops use, without touching other Loaders.
            numba.set_num_threads(self.num_threads)
            # FFCV's protocol (memory_managers.context): the state is the context's.
            context = self.memory.schedule_epoch(self.batches)
            with context:
                storage_state = context.state
                for number, indices in enumerate(self.batches):
                    if self.stop.is_set():
                        return
                    begin = time.perf_counter()
                    context.start_batch(number)
                    loaded = time.perf_counter()
                    outputs = self.graph.run_batch(number % self.num_slots, indices, storage_state,
                                                   self.seeds)
                    self.stats.batch_prepared(number, loaded - begin, time.perf_counter() - loaded)
                    if not self._put((_BATCH, (number, outputs))):
                        return
            self._put((_END, None))
        except BaseException as exc:  # handed to the training loop, re-raised there
            self.stats.pipeline_failed()
            self._put((_ERROR, exc))


def _shutdown(producer, thread, stats):
    stats.finish(completed=False)  # no-op when the last batch was already handed out
    producer.stop.set()
    # Unblock a producer waiting on a full queue, then wait for it.
    while True:
        try:
            producer.queue.get_nowait()
        except queue.Empty:
            break
    if thread is not threading.current_thread():
        thread.join()


class EpochIterator:
    """Iterator over one epoch's batches.

    Parameters
    ----------
    graph : ffcvx.pipeline.graph.Graph
    memory : ffcvx.memory_managers.MemoryManager
    batches : list of ndarray[uint64]
        Sample indices of each batch, in order.
    num_slots : int
        Rotating buffer slots (``batches_ahead + 2``).
    num_threads : int
        Threads of the compiled pipelines.
    batches_ahead : int
        Finished batches the producer may keep ready.
    seeds : ffcvx.pipeline.seeds.EpochSeeds, optional
        The Loader's seed and this epoch's number, which seed the random steps.
    owner : object, optional
        Kept alive while this iterator is (the Loader, as in FFCV).
    handed_out : list of one int, optional
        Batches returned so far, shared with the Loader's ``state_dict()``.
    stats : ffcvx.loader.stats.EpochStats, optional
        Where the epoch's counts and waits go (``Loader.stats()``).
    """

    def __init__(self, graph, memory, batches, num_slots, num_threads, batches_ahead, seeds=None,
                 owner=None, handed_out=None, stats=None):
        self._owner = owner
        self._handed_out = handed_out if handed_out is not None else [0]
        self.stats = stats if stats is not None else EpochStats(0, map(len, batches), memory)
        self._producer = _Producer(graph, memory, batches, num_slots, num_threads, batches_ahead,
                                   seeds if seeds is not None else EpochSeeds(), self.stats)
        self._thread = threading.Thread(target=self._producer.run, name='ffcvx-epoch', daemon=True)
        self._remaining = len(batches)
        #: This epoch's samples in order (FFCV's ``EpochIterator.order``), ndarray[uint64].
        self.order = np.concatenate(batches) if batches else np.empty(0, np.uint64)
        self._finished = False
        self._thread.start()
        self._finalizer = weakref.finalize(self, _shutdown, self._producer, self._thread,
                                           self.stats)

    def __iter__(self):
        return self

    def __len__(self):
        return self._remaining

    def __next__(self):
        if self._finished:
            raise StopIteration
        waiting_since = time.perf_counter()
        while True:
            try:
                kind, payload = self._producer.queue.get(timeout=_POLL_SECONDS)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._producer.queue.empty():
                    self.close()
                    raise RuntimeError("the ffcvx loader thread stopped without a result")
        waited = time.perf_counter() - waiting_since
        if kind == _BATCH:
            number, outputs = payload
            self._remaining -= 1
            self._handed_out[0] += 1
            self.stats.handed_out(number, waited)
            if self._remaining == 0:
                self.stats.finish(completed=True)
            return outputs
        self.stats.consumer_waited(waited)
        self.stats.finish(completed=kind == _END)
        self.close()
        if kind == _ERROR:
            raise payload
        raise StopIteration

    def close(self):
        """Stop the producer thread and wait for it; safe to call more than once."""
        self._finished = True
        self._finalizer()

    @property
    def alive(self):
        """Whether the producer thread is still running."""
        return self._thread.is_alive()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
