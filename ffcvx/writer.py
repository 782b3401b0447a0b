"""Writing ``.beton`` files: :class:`DatasetWriter`.

A dataset is written once, in parallel, into the layout of FFCV 1.0 (format
version 2, ``spec/beton.md``)::

    offset 0                      header, 24 bytes (FMT-010)
    offset 24                     one 1041-byte descriptor per field (FMT-020, FMT-022)
    offset 24 + 1041 * F          metadata table, one record per sample (FMT-030, FMT-031)
    ...                           zero padding up to the next page boundary (FMT-040)
    D0 = align_to_page(...)       data pages, each exactly ``page_size`` bytes (FMT-040)
    D0 + P * page_size            allocation table, 24 bytes per region, to EOF (FMT-050)

How the work is shared out
--------------------------
Samples are handed out in chunks to ``num_workers`` processes (``fork``
context). Every worker owns one zeroed page buffer and fills it with a bump
allocator (no alignment inside a page); all regions of one sample go into the
same page (FMT-041), so a sample that does not fit into the rest of the current
page is dropped from it (its bytes are zeroed) and encoded again at the start
of a fresh page. Page numbers come from a counter shared by all workers, and a
full page is written with ``os.pwrite`` straight to its final offset. The
metadata table lives in anonymous shared memory that the workers fill in
place; each worker reports its allocation records back per chunk. With one
worker the same code runs in the calling process.

The file is written to a temporary file next to the target and moved into place
with ``os.replace`` only when everything succeeded, so a failed or interrupted
write never leaves a partial file and never touches an existing target.
"""
import mmap
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import tempfile
import traceback
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from .errors import WriterError
from .fields import Field, type_id_of
from .types import (ALLOC_TABLE_TYPE, CURRENT_VERSION, DEFAULT_PAGE_SIZE, FIELD_NAME_LENGTH,
                    MAX_PAGE_SIZE, MIN_PAGE_SIZE, FieldDescType, HeaderType, align_to_page,
                    get_metadata_type, metadata_offset)

__all__ = ['DatasetWriter', 'check_page_size']

#: Seconds a stopped worker gets to exit after SIGTERM before it is killed.
_TERMINATE_GRACE_S = 2.0


# ---------------------------------------------------------------------------
# page allocation (runs in the workers)

class _PageFull(Exception):
    """The current sample's next region does not fit in the rest of the page."""


class _Cursor:
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


def _suggest_page_size(nbytes):
    """Smallest valid page size (a power of two, FMT-013) holding ``nbytes``, or None."""
    size = max(MIN_PAGE_SIZE, 1 << max(0, int(nbytes) - 1).bit_length())
    return size if size < MAX_PAGE_SIZE else None


class _PageAllocator:
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
        page; a later one raises :class:`_PageFull`, so that all regions of a
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
        _PageFull
            When the sample already has regions in this page and this one does
            not fit after them (the caller moves the sample to a fresh page).
        ValueError
            For a negative size or one larger than a page.
        """
        size = int(size)
        if size < 0:
            raise ValueError(f"malloc of a negative size ({size} bytes)")
        if size > self.page_size:
            suggestion = _suggest_page_size(size)
            hint = (f"pass page_size={suggestion} to DatasetWriter" if suggestion else
                    "a .beton page cannot be that large (FMT-013)")
            raise ValueError(f"a region of {size} bytes is larger than a page of "
                             f"{self.page_size} bytes; {hint}")
        # max(size, 1): a zero-size region at the very end of a full page would point
        # at the next page (or past the last one), so it opens a fresh page too
        if self.page_no < 0 or self.offset + max(size, 1) > self.page_size:
            if len(self.records) > self.sample_first:
                raise _PageFull(size)
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


class _SampleEncoder:
    """Encodes samples into the metadata table and the page buffer of one worker."""

    def __init__(self, field_names, handlers, metadata, allocator, cursor):
        self.field_names = field_names
        self.handlers = handlers
        # one column view per field: slicing it gives FFCV's ``destination``
        self.columns = [metadata[f'f{i}'] for i in range(len(handlers))]
        self.allocator = allocator
        self.cursor = cursor
        self.num_fields = len(handlers)

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
        """Store ``sample`` (one value per field) as sample number ``dest``."""
        self.check_sample(sample)
        alloc = self.allocator
        cursor = self.cursor
        for attempt in range(2):
            alloc.begin_sample(dest)
            try:
                for i in range(self.num_fields):
                    cursor.field = self.field_names[i]
                    self.handlers[i].encode(self.columns[i][dest:dest + 1], sample[i], alloc.malloc)
            except _PageFull as full:
                needed = alloc.sample_bytes + full.args[0]
                alloc.drop_sample()
                if attempt == 1:
                    raise self._too_big(needed) from None
                alloc.new_page()
            else:
                cursor.field = None
                return

    def _too_big(self, needed):
        suggestion = _suggest_page_size(needed)
        hint = (f"pass page_size={suggestion} (or more) to DatasetWriter" if suggestion else
                "a .beton page cannot be that large (FMT-013)")
        return ValueError(
            f"{self.cursor.describe()} does not fit in one page of {self.allocator.page_size} bytes: "
            f"its regions up to and including field {self.cursor.field!r} need {needed} bytes, and "
            f"all regions of a sample must lie in one page (FMT-041); {hint}")


def _failure_report(cursor, exc):
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


# ---------------------------------------------------------------------------
# sources of samples: a list of work items, and how a worker turns one into samples

class _IndexedSource:
    """``dataset[indices[pos]]`` goes to destination ``pos``; items are ``(start, stop)``."""

    def __init__(self, dataset, indices, chunksize):
        self.dataset = dataset
        self.indices = indices
        self.chunksize = chunksize
        self.num_samples = len(indices)
        self.num_items = -(-self.num_samples // chunksize)

    def items(self):
        n, step = self.num_samples, self.chunksize
        return ((start, min(start + step, n)) for start in range(0, n, step))

    @staticmethod
    def describe(item):
        return f"samples {item[0]} to {item[1] - 1}"

    def samples(self, item, cursor):
        start, stop = item
        dataset, indices = self.dataset, self.indices
        for pos in range(start, stop):
            src = indices[pos]
            cursor.dest, cursor.where, cursor.field = pos, f'dataset[{src}]', None
            yield pos, dataset[src]


class _WebDatasetSource:
    """Sample ``i`` of shard ``s`` goes to ``offsets[s] + i``; items are ``(shard, offset, count)``."""

    def __init__(self, shards, pipeline, counts):
        self.shards = shards
        self.pipeline = pipeline
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.num_samples = int(self.offsets[-1])
        self.num_items = len(shards)

    def items(self):
        return ((shard, int(off), int(count))
                for shard, off, count in zip(self.shards, self.offsets, self.counts))

    @staticmethod
    def describe(item):
        return f"shard {item[0]!r} (samples {item[1]} to {item[1] + item[2] - 1})"

    def samples(self, item, cursor):
        shard, offset, count = item
        produced = 0
        iterator = iter(_open_shard(shard, self.pipeline))
        while True:
            cursor.dest, cursor.where, cursor.field = offset + produced, f'sample {produced} of shard {shard!r}', None
            try:
                sample = next(iterator)
            except StopIteration:
                break
            if produced >= count:
                raise RuntimeError(f"shard {shard!r} yielded more than the {count} samples counted "
                                   f"before writing; the pipeline must be deterministic")
            yield offset + produced, sample
            produced += 1
        if produced != count:
            raise RuntimeError(f"shard {shard!r} yielded {produced} samples, but {count} were counted "
                               f"before writing; the pipeline must be deterministic")


class _IterableSource:
    """Samples pulled from an iterable in the calling process; items are ``(start, [samples])``."""

    def __init__(self, iterable, length, chunksize):
        self.iterator = iter(iterable)
        self.num_samples = length
        self.num_items = -(-length // chunksize)
        self.chunksize = chunksize
        self.pulled = 0
        self.cursor = _Cursor()

    def items(self):
        while self.pulled < self.num_samples:
            start = self.pulled
            take = min(self.chunksize, self.num_samples - start)
            chunk = []
            for _ in range(take):
                self.cursor.dest, self.cursor.where = start + len(chunk), 'from the iterable'
                try:
                    chunk.append(next(self.iterator))
                except StopIteration:
                    raise ValueError(f"the iterable ended after {start + len(chunk)} samples but "
                                     f"length={self.num_samples} was announced") from None
            self.pulled += take
            yield start, chunk
        self.cursor.dest, self.cursor.where = self.num_samples, 'from the iterable'
        extra = next(self.iterator, _END)
        if extra is not _END:
            raise ValueError(f"the iterable has more than the announced length={self.num_samples} "
                             f"samples")

    @staticmethod
    def describe(item):
        return f"samples {item[0]} to {item[0] + len(item[1]) - 1}"

    def samples(self, item, cursor):
        start, chunk = item
        for k, sample in enumerate(chunk):
            cursor.dest, cursor.where, cursor.field = start + k, 'from the iterable', None
            yield start + k, sample


_END = object()


def _import_webdataset():
    try:
        import webdataset
    except ImportError as exc:
        raise ImportError("DatasetWriter.from_webdataset needs the webdataset package: "
                          "pip install webdataset") from exc
    return webdataset


def _open_shard(shard, pipeline):
    webdataset = _import_webdataset()
    try:
        # in order, and an empty shard is just empty
        dataset = webdataset.WebDataset(shard, shardshuffle=False, empty_check=False)
    except TypeError:  # releases before these arguments
        dataset = webdataset.WebDataset(shard)
    return pipeline(dataset)


# ---------------------------------------------------------------------------
# worker processes

def _worker_main(rank, pipes, source, job):
    """Body of worker process ``rank``: ask for items, encode them, report back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the parent handles Ctrl-C
    conn = None
    for k, (parent_end, child_end) in enumerate(pipes):
        parent_end.close()
        if k == rank:
            conn = child_end
        else:
            child_end.close()
    cursor = _Cursor()
    try:
        allocator, encoder = job.make_encoder(cursor)
        done = 0
        while True:
            conn.send(('ready', done, allocator.take_records().tobytes()))
            item = conn.recv()
            if item is None:
                break
            done = 0
            for dest, sample in source.samples(item, cursor):
                encoder.encode(dest, sample)
                done += 1
        cursor.dest = None
        allocator.flush()
        conn.send(('done', 0, allocator.take_records().tobytes()))
    except BaseException as exc:  # noqa: BLE001  (everything goes back to the parent)
        text, pickled = _failure_report(cursor, exc)
        try:
            conn.send(('error', text, pickled))
        except OSError:
            pass
    finally:
        conn.close()


class _Job:
    """What every worker needs, fixed before the workers are forked."""

    def __init__(self, fd, page_size, data_start, field_names, handlers, metadata, counter):
        self.fd = fd
        self.page_size = page_size
        self.data_start = data_start
        self.field_names = field_names
        self.handlers = handlers
        self.metadata = metadata
        self.counter = counter

    def next_page(self):
        with self.counter.get_lock():
            page = self.counter.value
            self.counter.value = page + 1
        return page

    def make_encoder(self, cursor):
        allocator = _PageAllocator(self.fd, self.page_size, self.data_start, self.next_page)
        encoder = _SampleEncoder(self.field_names, self.handlers, self.metadata, allocator, cursor)
        return allocator, encoder


def _stop_processes(processes):
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(_TERMINATE_GRACE_S)
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


# ---------------------------------------------------------------------------
# the writer

class DatasetWriter:
    """Writes a dataset into a ``.beton`` file (format version 2, FFCV 1.0 compatible).

    Parameters
    ----------
    fname : str or os.PathLike
        Output path. The file is replaced atomically when writing succeeds.
    fields : Mapping[str, Field]
        Ordered mapping from field name to field; its order fixes the
        descriptors (FMT-020), the metadata record members ``f0, f1, ...``
        (FMT-031) and the order of the values in each sample tuple. Names are
        ASCII, at most 16 bytes (longer ones are truncated with a warning, as
        FFCV does silently).
    page_size : int, bytes
        Size of every data page: a power of two, at least 2 MiB and below
        2**32 (FMT-013). All regions of one sample must fit in one page.
    num_workers : int
        Number of writer processes; values below 1 mean one per CPU in this
        process's affinity set. With 1, samples are encoded in the calling
        process.
    progress : bool
        Show a tqdm progress bar over samples (also off when ``TQDM_DISABLE``
        is set in the environment).

    Raises
    ------
    TypeError
        If ``fields`` is not a mapping of names to :class:`~ffcvx.fields.Field`.
    ValueError
        For an invalid page size, no fields, more than 65535 fields, or a bad
        field name.
    """

    def __init__(self, fname, fields, page_size=DEFAULT_PAGE_SIZE, num_workers=-1, progress=True):
        self.fname = os.fspath(fname)
        if not isinstance(fields, Mapping):
            raise TypeError(f"fields must be a mapping of name -> Field, got {type(fields).__name__}")
        if not fields:
            raise ValueError("a dataset needs at least one field")
        if len(fields) > np.iinfo(np.uint16).max:
            raise ValueError(f"at most 65535 fields fit in the header (FMT-010), got {len(fields)}")
        page_size = check_page_size(page_size)
        names, encoded = [], []
        for name, field in fields.items():
            if not isinstance(field, Field):
                raise TypeError(f"field {name!r} is a {type(field).__name__}, not an ffcvx Field")
            raw = _encode_field_name(name)
            if raw in encoded:
                raise ValueError(f"field name {name!r} collides with another field once stored as "
                                 f"{raw!r} ({FIELD_NAME_LENGTH} bytes at most, FMT-020)")
            names.append(name)
            encoded.append(raw)
        if num_workers is None or int(num_workers) < 1:
            num_workers = len(os.sched_getaffinity(0))
        self.fields = dict(fields)
        self.field_names = names
        self.handlers = [fields[name] for name in names]
        self._stored_names = encoded
        self.page_size = page_size
        self.num_workers = int(num_workers)
        self.progress = bool(progress)
        self.metadata_type = get_metadata_type(self.handlers)

    # -- public entry points ------------------------------------------------

    def from_indexed_dataset(self, dataset, indices=None, chunksize=100, shuffle_indices=False):
        """Write ``dataset[indices[k]]`` as sample ``k`` for every position ``k``.

        Parameters
        ----------
        dataset : object with ``__getitem__`` (and ``__len__`` if ``indices`` is None)
            ``dataset[i]`` returns a tuple with one value per field, in field order.
        indices : sequence of int, optional
            Which items to write, in order; default ``np.arange(len(dataset))``
            (so ``dataset`` receives ``numpy.int64`` indices, as with FFCV).
        chunksize : int
            Samples per work item handed to a worker.
        shuffle_indices : bool
            Shuffle ``indices`` (with numpy's global RNG) first, so sample ``k``
            of the file is a random item.

        Raises
        ------
        WriterError
            If reading or encoding any sample fails, or a worker dies; the
            message names the sample and holds the original traceback.
        """
        chunksize = _check_chunksize(chunksize)
        if indices is None:
            indices = np.arange(len(dataset))
        else:
            indices = np.asarray(indices)
            if indices.ndim != 1 or not (indices.size == 0 or np.issubdtype(indices.dtype, np.integer)):
                raise ValueError(f"indices must be a 1-D sequence of integers, got an array of "
                                 f"dtype {indices.dtype} and shape {indices.shape}")
        if shuffle_indices:
            indices = np.random.permutation(indices)
        self._write(_IndexedSource(dataset, indices, chunksize))

    def from_webdataset(self, shards, pipeline):
        """Write the samples of WebDataset ``shards``, shard by shard.

        Every shard is read twice: once (in threads) to count its samples,
        then by a worker that writes sample ``i`` of shard ``s`` to position
        ``sum(counts[:s]) + i``.

        Parameters
        ----------
        shards : sequence of str
            Shard URLs or paths, in output order.
        pipeline : callable(webdataset.WebDataset) -> iterable of tuple
            Turns one shard's dataset into samples, each a tuple with one value
            per field. Must yield the same samples every time.

        Raises
        ------
        ImportError
            If the ``webdataset`` package is not installed.
        WriterError
            If counting or writing fails.
        """
        _import_webdataset()
        shards = list(shards)

        def count(shard):
            return sum(1 for _ in _open_shard(shard, pipeline))

        workers = max(1, min(self.num_workers, len(shards)))
        counts = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(count, shard) for shard in shards]
            for shard, future in zip(shards, futures):
                try:
                    counts.append(future.result())
                except Exception as exc:
                    raise WriterError(f"counting the samples of shard {shard!r} failed: "
                                      f"{type(exc).__name__}: {exc}") from exc
        self._write(_WebDatasetSource(shards, pipeline, np.asarray(counts, dtype=np.int64)))

    def from_iterable(self, iterable, length=None, chunksize=100):
        """Write the samples of ``iterable`` in order.

        The iterable is consumed in the calling process; encoding is spread
        over the workers.

        Parameters
        ----------
        iterable : iterable of tuple
            Each item has one value per field, in field order.
        length : int, optional
            Number of samples; default ``len(iterable)``. The metadata table
            precedes the data, so the count must be known before writing.
        chunksize : int
            Samples per work item.

        Raises
        ------
        TypeError
            If ``length`` is None and ``iterable`` has no ``len()``.
        WriterError
            If the iterable yields a different number of samples than
            ``length``, or reading or encoding a sample fails.
        """
        chunksize = _check_chunksize(chunksize)
        if length is None:
            try:
                length = len(iterable)
            except TypeError:
                raise TypeError("from_iterable needs length= for an iterable without len(): the "
                                "metadata table precedes the data, so the number of samples must "
                                "be known up front") from None
        length = int(length)
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self._write(_IterableSource(iterable, length, chunksize))

    # -- writing --------------------------------------------------------------

    def _write(self, source):
        num_samples = int(source.num_samples)
        target_dir = os.path.dirname(os.path.abspath(self.fname))
        fd, tmp_path = tempfile.mkstemp(dir=target_dir, suffix='.tmp',
                                        prefix='.' + os.path.basename(self.fname) + '.')
        success = False
        try:
            _set_default_mode(fd)
            self._write_into(fd, source, num_samples)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            os.replace(tmp_path, self.fname)
            success = True
            _fsync_directory(target_dir)
        finally:
            if fd >= 0:
                os.close(fd)
            if not success:
                try:
                    os.unlink(tmp_path)
                except FileNotFoundError:
                    pass

    def _write_into(self, fd, source, num_samples):
        num_fields = len(self.handlers)
        meta_start = metadata_offset(num_fields)                      # FMT-030
        meta_bytes = num_samples * self.metadata_type.itemsize
        data_start = align_to_page(meta_start + meta_bytes, self.page_size)  # FMT-040

        _pwrite_all(fd, self._descriptors().tobytes(), HeaderType.itemsize)

        shared = mmap.mmap(-1, max(1, meta_bytes))   # zeroed, MAP_SHARED: inherited by fork
        try:
            metadata = np.frombuffer(shared, dtype=self.metadata_type, count=num_samples)
            counter = multiprocessing.get_context('fork').Value('q', 0)
            job = _Job(fd, self.page_size, data_start, self.field_names, self.handlers,
                       metadata, counter)
            records = self._run(source, job, num_samples)
            num_pages = int(counter.value)
            _pwrite_all(fd, metadata.tobytes(), meta_start)
        finally:
            metadata = job = None
            try:
                shared.close()
            except BufferError:   # a view survives in a traceback; the GC unmaps it later
                pass

        if len(records):
            # one record per region in (sample, malloc) order, whatever the worker count (FMT-050)
            records = records[np.argsort(records['sample_id'], kind='stable')]
        table_ptr = data_start + num_pages * self.page_size if num_pages else meta_start + meta_bytes
        _pwrite_all(fd, records.tobytes(), table_ptr)
        os.ftruncate(fd, table_ptr + records.nbytes)

        header = np.zeros(1, dtype=HeaderType)
        header['version'] = CURRENT_VERSION
        header['num_fields'] = num_fields
        header['page_size'] = self.page_size
        header['num_samples'] = num_samples
        header['alloc_table_ptr'] = table_ptr
        _pwrite_all(fd, header.tobytes(), 0)                          # FMT-010, written last

    def _descriptors(self):
        """The field descriptor table (FMT-020, FMT-021, FMT-022)."""
        desc = np.zeros(len(self.handlers), dtype=FieldDescType)
        for i, (field, raw) in enumerate(zip(self.handlers, self._stored_names)):
            desc['type_id'][i] = type_id_of(field)
            desc['name'][i][:len(raw)] = np.frombuffer(raw, dtype=np.uint8)
            arguments = np.frombuffer(field.to_binary().tobytes(), dtype=np.uint8)
            if arguments.size != desc['arguments'].shape[1]:
                raise ValueError(f"field {self.field_names[i]!r}: to_binary() returned "
                                 f"{arguments.size} bytes, expected {desc['arguments'].shape[1]}")
            desc['arguments'][i] = arguments
        return desc

    def _progress_bar(self, num_samples):
        disabled = (not self.progress or
                    os.environ.get('TQDM_DISABLE', '').lower() not in ('', '0', 'false'))
        return tqdm(total=num_samples, unit='samples', disable=disabled,
                    desc=f'Writing {os.path.basename(self.fname)}')

    def _run(self, source, job, num_samples):
        """Encode every sample; return all allocation records (``ALLOC_TABLE_TYPE``)."""
        workers = max(1, min(self.num_workers, source.num_items))
        items = _reporting(source.items(), getattr(source, 'cursor', None) or _Cursor())
        try:
            if num_samples == 0:
                for _ in items:   # lets from_iterable check that the iterable is empty
                    pass
                return np.zeros(0, dtype=ALLOC_TABLE_TYPE)
            with self._progress_bar(num_samples) as bar:
                if workers == 1:
                    return self._run_here(source, job, items, bar)
                return self._run_processes(source, job, items, bar, workers)
        except _SourceFailure as failure:
            text, _ = _failure_report(failure.cursor, failure.exc)
            raise WriterError(text) from failure.exc

    def _run_here(self, source, job, items, bar):
        cursor = _Cursor()
        allocator, encoder = job.make_encoder(cursor)
        chunks = []
        try:
            for item in items:
                done = 0
                for dest, sample in source.samples(item, cursor):
                    encoder.encode(dest, sample)
                    done += 1
                chunks.append(allocator.take_records())
                bar.update(done)
            cursor.dest = None
            allocator.flush()
        except _SourceFailure:
            raise
        except Exception as exc:
            text, _ = _failure_report(cursor, exc)
            raise WriterError(text) from exc
        chunks.append(allocator.take_records())
        return np.concatenate(chunks)

    def _run_processes(self, source, job, items, bar, workers):
        ctx = multiprocessing.get_context('fork')
        pipes = [ctx.Pipe(duplex=True) for _ in range(workers)]
        processes = []
        chunks = []
        try:
            for rank in range(workers):
                proc = ctx.Process(target=_worker_main, args=(rank, pipes, source, job),
                                   name=f'ffcvx-writer-{rank}')
                proc.start()
                processes.append(proc)
            for _, child_end in pipes:
                child_end.close()
            conns = [parent_end for parent_end, _ in pipes]
            running = set(range(workers))
            assigned = [None] * workers
            while running:
                waitables = {conns[k]: k for k in running}
                waitables.update({processes[k].sentinel: k for k in running})
                for ready in multiprocessing.connection.wait(list(waitables), timeout=1.0):
                    rank = waitables[ready]
                    if rank not in running:
                        continue
                    if self._serve(rank, conns[rank], processes[rank], items, chunks, bar,
                                   source, assigned):
                        running.discard(rank)
            for proc in processes:       # all reported 'done'; stragglers are stopped below
                proc.join(_TERMINATE_GRACE_S)
        finally:
            _stop_processes(processes)
            for parent_end, child_end in pipes:
                parent_end.close()
                child_end.close()
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=ALLOC_TABLE_TYPE)

    def _serve(self, rank, conn, proc, pending, chunks, bar, source, assigned):
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
            chunks.append(np.frombuffer(payload, dtype=ALLOC_TABLE_TYPE).copy())
            bar.update(value)
            if kind == 'done':
                return True
            item = assigned[rank] = next(pending, None)
            try:
                conn.send(item)
            except OSError:
                break
        if proc.is_alive():
            return False
        proc.join()
        doing = (f" while writing {source.describe(assigned[rank])}" if assigned[rank] is not None
                 else "")
        raise WriterError(f"writer worker {rank} (pid {proc.pid}) {_exit_description(proc.exitcode)}"
                          f"{doing}; the output was not written")


class _SourceFailure(Exception):
    """Reading the next work item in the calling process failed (``from_iterable``)."""

    def __init__(self, cursor, exc):
        super().__init__(str(exc))
        self.cursor = cursor
        self.exc = exc


def _reporting(items, cursor):
    """Yield from ``items``, wrapping its exceptions in :class:`_SourceFailure`."""
    iterator = iter(items)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise _SourceFailure(cursor, exc) from exc
        yield item


# ---------------------------------------------------------------------------
# small helpers

def check_page_size(page_size):
    """Validate a page size (FMT-013): a power of two in [2 MiB, 2**32)."""
    try:
        value = int(page_size)
    except (TypeError, ValueError):
        raise ValueError(f"page_size must be an integer, got {page_size!r}") from None
    if value != page_size or value <= 0 or value & (value - 1):
        raise ValueError(f"page_size must be a power of two, got {page_size!r}")
    if value < MIN_PAGE_SIZE:
        raise ValueError(f"page_size must be at least {MIN_PAGE_SIZE} bytes (2 MiB), got {value}")
    if value >= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be below 2**32 bytes, got {value}")
    return value


def _check_chunksize(chunksize):
    value = int(chunksize)
    if value < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize!r}")
    return value


def _encode_field_name(name):
    """Bytes stored in a descriptor's ``name`` (FMT-020): ASCII, at most 16 bytes."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"field names must be non-empty strings, got {name!r}")
    try:
        raw = name.encode('ascii')
    except UnicodeEncodeError:
        raise ValueError(f"field name {name!r} is not ASCII (FMT-020)") from None
    if b'\0' in raw:
        raise ValueError(f"field name {name!r} contains a NUL byte")
    if len(raw) > FIELD_NAME_LENGTH:
        warnings.warn(f"field name {name!r} is longer than {FIELD_NAME_LENGTH} bytes; it is stored "
                      f"as {raw[:FIELD_NAME_LENGTH].decode()!r}", UserWarning, stacklevel=4)
        raw = raw[:FIELD_NAME_LENGTH]
    return raw


def _pwrite_all(fd, data, offset):
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _set_default_mode(fd):
    """Give the temporary file the permissions a newly created file would get."""
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)


def _fsync_directory(path):
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)

