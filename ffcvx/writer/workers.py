"""Running the encoding of :class:`ffcvx.writer.DatasetWriter`: in the calling process or in workers.

Work items are handed out to ``num_workers`` processes over pipes, one
ahead of what each is encoding. Each worker encodes into its own page buffer and its own copy of the
metadata table, and sends back, per item, the allocation records and the
metadata rows it filled; page numbers come from one shared counter, and full
pages are written with ``os.pwrite`` straight to their final offset.

Start method: ``fork`` only while the calling process runs no other thread
(``threading.active_count() == 1``): forking a process with other threads can
copy a lock one of them holds and deadlock the child. Otherwise workers are
started with ``forkserver`` (``spawn`` where it is missing); the source (the
dataset) and the fields must then be picklable, and when they are not the
write falls back to one process with a ``RuntimeWarning``
(:func:`start_method`).
"""
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import traceback
import warnings

import numpy as np

from ..errors import WriterError
from ..types import ALLOC_TABLE_TYPE
from .pages import Cursor, PageAllocator, SampleEncoder
from .sources import SourceFailure

__all__ = ['Job', 'failure_report', 'run_here', 'run_processes', 'start_method']

#: Seconds a stopped worker gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE_S = 2.0


def failure_report(cursor, exc):
    """(text, pickled exception or None) describing ``exc`` raised while writing."""
    during = f" in field {cursor.field!r}" if cursor.dest is not None and cursor.field else ""
    tb = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = (f"writing {cursor.describe()} failed{during}: {type(exc).__name__}: {exc}\n\n"
            f"Original traceback:\n{tb}")
    try:
        pickled = pickle.dumps(exc)
        pickle.loads(pickled)
    except Exception:  # noqa: BLE001  (an unpicklable exception only loses __cause__)
        pickled = None
    return text, pickled


@dataclasses.dataclass(eq=False)      # compared and hashed by identity, as before
class Job:
    """What every worker needs, fixed before the workers start.

    Parameters
    ----------
    fd : int
        The temporary file, open for writing (inherited by forked workers;
        a spawned worker opens ``path`` instead).
    path : str
        The temporary file's path.
    page_size, data_start : int, bytes
        Page size (FMT-013) and offset of page 0 (FMT-040).
    field_names : list of str
    handlers : list of Field
    metadata_type : numpy.dtype
        One metadata record (FMT-031).
    num_samples : int
    counter : multiprocessing.Value('q')
        Next free page number, shared by all workers.
    entropy : int
        Root entropy for the fields' per-sample Generators.
    first : int
        Global position of the file's sample 0 (nonzero for a part file),
        which the per-sample Generators are keyed by.
    """

    fd: int
    path: str
    page_size: int
    data_start: int
    field_names: list
    handlers: list
    metadata_type: np.dtype
    num_samples: int
    counter: object
    entropy: int
    first: int = 0

    def __getstate__(self):
        # a spawned worker cannot inherit the descriptor: it reopens the file by path
        state = dict(self.__dict__)
        state['fd'] = None
        return state

    def next_page(self):
        with self.counter.get_lock():
            page = self.counter.value
            self.counter.value = page + 1
        return page

    def make_encoder(self, cursor, metadata=None):
        """A fresh (allocator, encoder) pair for one process.

        ``metadata``: the table to fill; None (a worker) makes the worker's own copy.
        """
        if self.fd is None:
            self.fd = os.open(self.path, os.O_WRONLY | getattr(os, 'O_CLOEXEC', 0))
        if metadata is None:
            # zeros() maps untouched pages lazily: a worker's copy costs only the rows it fills
            metadata = np.zeros(self.num_samples, dtype=self.metadata_type)
        allocator = PageAllocator(self.fd, self.page_size, self.data_start, self.next_page)
        encoder = SampleEncoder(self.field_names, self.handlers, metadata, allocator, cursor,
                                self.entropy, self.first)
        return allocator, encoder


def _report(encoder, allocator):
    """One work item's report: allocation records, filled rows, outcome counts (all small)."""
    dests, rows = encoder.take_rows()
    return allocator.take_records().tobytes(), dests.tobytes(), rows, encoder.take_counts()


def start_method(source, job):
    """``'fork'``, or the method that does not fork with threads alive (see module docstring).

    Returns
    -------
    str or None
        ``'fork'`` when this process runs one thread; else ``'forkserver'``
        (``'spawn'`` if forkserver is unavailable) when ``source`` and ``job``
        can be pickled; None when they cannot, meaning: write in this process.
    """
    if threading.active_count() == 1:
        return 'fork'
    try:
        # the page counter is left out: a lock is pickled only while a process starts
        payload = pickle.dumps((source, job.handlers))
        # Classes pickle by name. Defined in a main module that has no file (a
        # notebook, `python -c`, stdin), a spawned worker cannot import them;
        # b'__main__' anywhere in the payload is taken as such a reference.
        if b'__main__' in payload and not getattr(sys.modules['__main__'], '__file__', None):
            raise pickle.PicklingError("it uses classes or functions defined in a main module "
                                       "with no file (a notebook, `python -c` or stdin), which "
                                       "a spawned worker cannot import")
    except Exception as exc:  # noqa: BLE001  (any pickling failure means: cannot spawn)
        warnings.warn(f"DatasetWriter: this process runs {threading.active_count()} threads, so "
                      f"workers cannot be forked safely, and the dataset or a field cannot be "
                      f"pickled for a spawned worker ({type(exc).__name__}: {exc}); writing "
                      f"in one process instead (define the dataset in a module to use "
                      f"num_workers)", RuntimeWarning, stacklevel=4)
        return None
    methods = multiprocessing.get_all_start_methods()
    return 'forkserver' if 'forkserver' in methods else 'spawn'


def _worker_main(rank, conn, others, source, job):
    """Body of worker process ``rank``: ask for items, encode them, report back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent handles Ctrl-C
    for other in others:        # forked: the other pipe ends, so EOFs reach their owners
        other.close()
    cursor = Cursor()
    try:
        allocator, encoder = job.make_encoder(cursor)
        conn.send(('ready', 0, _report(encoder, allocator)))
        while True:
            item = conn.recv()
            if item is None:
                break
            done = 0
            for dest, sample in source.samples(item, cursor):
                source.encode_sample(encoder, dest, sample)
                done += 1
            conn.send(('ready', done, _report(encoder, allocator)))
        cursor.dest = None
        allocator.flush()
        conn.send(('done', 0, _report(encoder, allocator)))
    except BaseException as exc:  # noqa: BLE001  (everything goes back to the parent)
        text, pickled = failure_report(cursor, exc)
        try:
            conn.send(('error', text, pickled))
        except OSError:
            pass
    finally:
        conn.close()


def run_here(source, job, items, progress, metadata):
    """Encode every item in the calling process; fill ``metadata``; return the records.

    ``progress``: a :class:`~.progress.Progress`, advanced once per item.
    """
    with progress:
        return _encode_here(source, job, items, progress, metadata)


def _encode_here(source, job, items, progress, metadata):
    cursor = Cursor()
    allocator, encoder = job.make_encoder(cursor, metadata)   # this process: no copy
    chunks = []
    try:
        for item in items:
            done = 0
            for dest, sample in source.samples(item, cursor):
                source.encode_sample(encoder, dest, sample)
                done += 1
            chunks.append(allocator.take_records())
            progress.advance(done, encoder.take_counts())
        cursor.dest = None
        allocator.flush()
    except SourceFailure:
        raise
    except Exception as exc:
        text, _ = failure_report(cursor, exc)
        raise WriterError(text) from exc
    chunks.append(allocator.take_records())
    return np.concatenate(chunks)


def run_processes(source, job, items, progress, workers, method, metadata):
    """Encode every item in ``workers`` processes started with ``method``; fill ``metadata``.

    The progress bar (``progress``, a :class:`~.progress.Progress`, entered
    as a context manager) is made only after the workers started: tqdm may
    start a monitor thread, which must not be alive when a worker is forked.
    """
    ctx = multiprocessing.get_context(method)
    pipes = [ctx.Pipe(duplex=True) for _ in range(workers)]
    processes = []
    chunks = []
    try:
        for rank in range(workers):
            conn = pipes[rank][1]
            # a forked child inherits every pipe end and closes the others; a spawned one gets
            # only its own
            others = ([end for k, pair in enumerate(pipes) for end in pair if end is not conn]
                      if method == 'fork' else [])
            proc = ctx.Process(target=_worker_main, args=(rank, conn, others, source, job),
                               name=f'ffcvx-writer-{rank}')
            proc.start()
            processes.append(proc)
        for _, child_end in pipes:
            child_end.close()
        with progress:
            _serve_all(processes, [parent for parent, _ in pipes], items, chunks, progress,
                       source, metadata, method)
        for proc in processes:       # all reported 'done'; stragglers are stopped below
            proc.join(TERMINATE_GRACE_S)
    finally:
        _stop_processes(processes)
        for parent_end, child_end in pipes:
            parent_end.close()
            child_end.close()
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=ALLOC_TABLE_TYPE)


#: ``assigned[rank]`` of a worker that has sent nothing yet.
_NOT_STARTED = 'not started'
#: Items a worker holds: the one it encodes and the next, waiting in its pipe,
#: so that it never idles while the parent (sharing its cores) wakes up to answer.
ITEMS_AHEAD = 2


def _serve_all(processes, conns, items, chunks, progress, source, metadata, method):
    """Hand out items and collect results until every worker has finished."""
    running = set(range(len(processes)))
    assigned = [_NOT_STARTED] * len(processes)
    while running:
        waitables = {conns[k]: k for k in running}
        waitables.update({processes[k].sentinel: k for k in running})
        for ready in multiprocessing.connection.wait(list(waitables), timeout=1.0):
            rank = waitables[ready]
            if rank not in running:
                continue
            if _serve(rank, conns[rank], processes[rank], items, chunks, progress, source,
                      assigned, metadata, method):
                running.discard(rank)


def _serve(rank, conn, proc, pending, chunks, progress, source, assigned, metadata, method):
    """Handle what worker ``rank`` sent; True once it has finished its work."""
    while True:
        try:
            if not conn.poll():
                break
            kind, value, payload = conn.recv()
        except (EOFError, OSError):
            break
        if kind == 'error':
            cause = None
            if payload is not None:
                try:
                    cause = pickle.loads(payload)
                except Exception:  # noqa: BLE001
                    cause = None
            raise WriterError(f"[writer worker {rank}] {value}") from cause
        records, dests, rows, counts = payload
        chunks.append(np.frombuffer(records, dtype=ALLOC_TABLE_TYPE).copy())
        dests = np.frombuffer(dests, dtype=np.int64)
        if dests.size:
            metadata[dests] = np.frombuffer(rows, dtype=metadata.dtype)
        progress.advance(value, counts)
        if kind == 'done':
            return True
        held = assigned[rank]
        if held is _NOT_STARTED:
            held = assigned[rank] = []
            wanted = ITEMS_AHEAD
        else:
            held.pop(0)           # the report is for the oldest item it held
            wanted = 1
        try:
            for _ in range(wanted):
                if held and held[-1] is None:
                    break         # already told to finish
                held.append(next(pending, None))
                conn.send(held[-1])
        except OSError:
            break
    if proc.is_alive():
        return False
    proc.join()
    held = assigned[rank]
    item = held if held is _NOT_STARTED or not held else held[0]
    if item is _NOT_STARTED and method != 'fork':
        doing = (f" before it started (started with {method!r} because this process runs other "
                 f"threads, so the worker imports the main module again: a script needs its "
                 f"entry under `if __name__ == '__main__':`; or pass num_workers=1; the "
                 f"worker's own error is on stderr)")
    elif item is not None and item is not _NOT_STARTED:
        doing = f" while writing {source.describe(item)}"
    else:
        doing = ""
    raise WriterError(f"writer worker {rank} (pid {proc.pid}) {_exit_description(proc.exitcode)}"
                      f"{doing}; the output was not written")


def _stop_processes(processes):
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(TERMINATE_GRACE_S)
        if proc.is_alive():
            proc.kill()
            proc.join()


def _exit_description(code):
    if code is None:
        return 'is still running'
    if code < 0:
        try:
            return f'was killed by {signal.Signals(-code).name}'
        except ValueError:
            return f'was killed by signal {-code}'
    return f'exited with code {code}'
