"""Sources of samples for :class:`ffcvx.writer.DatasetWriter`: work items and how a worker reads them.

A source has ``num_samples``, ``num_items``, ``items()`` (the work items, in
the calling process), ``describe(item)`` (for error messages) and
``samples(item, cursor)`` (in a worker: yields ``(destination index,
sample)`` and keeps ``cursor`` on the sample being read), and
``encode_sample(encoder, dest, sample)`` (in a worker: stores one sample;
a source may retry it another way, as the ImageFolder fast path does).
"""
import numpy as np

from .pages import Cursor

__all__ = ['IndexedSource', 'IterableSource', 'Source', 'SourceFailure', 'WebDatasetSource',
           'count_shards', 'import_webdataset', 'open_shard', 'reporting']


class Source:
    """What every source shares: how a worker stores a sample, and no fast path."""

    #: Name of the fast path the source reads with (for the closing line), or None.
    fast_path = None

    @staticmethod
    def encode_sample(encoder, dest, sample):
        """Store ``sample`` as sample ``dest`` with ``encoder`` (a :class:`~.pages.SampleEncoder`)."""
        encoder.encode(dest, sample)


class IndexedSource(Source):
    """``dataset[indices[pos]]`` goes to destination ``pos``; items are ``(start, stop)``.

    A subclass that reads a sample another way overrides :meth:`_read` only.
    """

    def __init__(self, dataset, indices, chunksize):
        self.dataset = dataset
        self.indices = indices
        self.chunksize = chunksize
        self.num_samples = len(indices)
        self.workers = 1
        self.num_items = len(self._bounds())

    def balance(self, workers):
        """Plan items for ``workers`` processes: see :meth:`items`."""
        self.workers = max(1, int(workers))
        self.num_items = len(self._bounds())

    def _bounds(self):
        # Guided scheduling: items of ``chunksize`` samples while many remain, then
        # smaller ones (a share of what remains, at least chunksize / 8), so that
        # the workers finish together instead of one idling through a last chunk.
        n, step, workers = self.num_samples, self.chunksize, self.workers
        smallest = max(1, step // 8)
        bounds, start = [], 0
        while start < n:
            size = step if workers == 1 else \
                min(step, max(smallest, -(-(n - start) // (2 * workers))))
            bounds.append((start, min(start + size, n)))
            start += size
        return bounds

    def items(self):
        """``(start, stop)`` ranges of positions: ``chunksize`` samples each, smaller
        towards the end when several workers share them (:meth:`balance`)."""
        return iter(self._bounds())

    @staticmethod
    def describe(item):
        return f"samples {item[0]} to {item[1] - 1}"

    def samples(self, item, cursor):
        start, stop = item
        indices, read = self.indices, self._read
        for pos in range(start, stop):
            src = indices[pos]
            cursor.dest, cursor.where, cursor.field = pos, f'dataset[{src}]', None
            yield pos, read(src, cursor)

    def _read(self, src, cursor):
        """Sample ``src`` of the dataset, read with ``cursor`` already on ``dataset[src]``.

        Parameters
        ----------
        src : int
            Index into the dataset (``indices[pos]``).
        cursor : Cursor
            Where errors are reported; a subclass that reads another way may
            name more there (``cursor.where``).

        Returns
        -------
        object
            ``dataset[src]``; a subclass (the ImageFolder fast path) may give
            what stands for it.
        """
        return self.dataset[src]


class WebDatasetSource(Source):
    """Sample ``i`` of shard ``s`` is global position ``offsets[s] + i``; this write
    holds the positions ``[first, stop)`` (a part, FMT-093; all by default), position
    ``p`` at destination ``p - first``. Items are ``(shard, offset, count, lo, hi)``:
    the shard's samples ``lo .. hi - 1`` are written."""

    def __init__(self, shards, pipeline, counts, first=0, stop=None):
        self.shards = shards
        self.pipeline = pipeline
        self.counts = counts
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.first = int(first)
        self.stop = int(self.offsets[-1] if stop is None else stop)
        self.num_samples = self.stop - self.first
        self.num_items = sum(1 for _ in self.items())

    def items(self):
        for shard, offset, count in zip(self.shards, self.offsets, self.counts):
            offset, count = int(offset), int(count)
            lo, hi = max(self.first - offset, 0), min(self.stop - offset, count)
            if lo < hi:
                yield shard, offset, count, lo, hi

    @staticmethod
    def describe(item):
        shard, offset, _, lo, hi = item
        return f"shard {shard!r} (samples {offset + lo} to {offset + hi - 1})"

    def samples(self, item, cursor):
        shard, offset, count, lo, hi = item
        produced = 0
        iterator = iter(open_shard(shard, self.pipeline))
        while True:
            cursor.dest, cursor.where, cursor.field = (offset + produced - self.first,
                                                       f'sample {produced} of shard {shard!r}',
                                                       None)
            if produced == hi and hi < count:
                return          # the rest of the shard belongs to the next part
            try:
                sample = next(iterator)
            except StopIteration:
                break
            if produced >= count:
                raise RuntimeError(f"shard {shard!r} yielded more than the {count} samples counted "
                                   f"before writing; the pipeline must be deterministic")
            if produced >= lo:      # the samples before belong to the previous part
                yield offset + produced - self.first, sample
            produced += 1
        if produced != count:
            raise RuntimeError(f"shard {shard!r} yielded {produced} samples, but {count} were counted "
                               f"before writing; the pipeline must be deterministic")


class IterableSource(Source):
    """Samples pulled from an iterable in the calling process; items are ``(start, [samples])``."""

    def __init__(self, iterable, length, chunksize, first=0):
        self.iterator = iter(iterable)
        self.num_samples = length
        self.first = first          # of a part: the source's position of sample 0 (messages)
        self.num_items = -(-length // chunksize)
        self.chunksize = chunksize
        self.pulled = 0
        self.cursor = Cursor()

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
                    raise ValueError(f"the iterable ended after {self.first + start + len(chunk)} "
                                     f"samples but length={self.first + self.num_samples} was "
                                     f"announced") from None
            self.pulled += take
            yield start, chunk
        self.cursor.dest, self.cursor.where = self.num_samples, 'from the iterable'
        extra = next(self.iterator, _END)
        if extra is not _END:
            raise ValueError(f"the iterable has more than the announced "
                             f"length={self.first + self.num_samples} samples")

    def __getstate__(self):
        # the iterable is read in the calling process only; a spawned worker needs none of it
        state = dict(self.__dict__)
        state['iterator'] = None
        return state

    @staticmethod
    def describe(item):
        return f"samples {item[0]} to {item[0] + len(item[1]) - 1}"

    def samples(self, item, cursor):
        start, chunk = item
        for k, sample in enumerate(chunk):
            cursor.dest, cursor.where, cursor.field = start + k, 'from the iterable', None
            yield start + k, sample


_END = object()


def import_webdataset():
    # the one import check of optional packages (ffcvx.extras), which names the extra
    from ..extras import require
    return require('webdataset', 'webdataset', 'DatasetWriter.from_webdataset')


def count_shards(shards, pipeline, num_workers):
    """Samples per shard (``int64`` array), each shard read through ``pipeline`` in a thread.

    Raises
    ------
    WriterError
        Naming the first shard whose reading failed.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ..errors import WriterError

    def count(shard):
        return sum(1 for _ in open_shard(shard, pipeline))

    counts = []
    with ThreadPoolExecutor(max_workers=max(1, min(num_workers, len(shards)))) as pool:
        futures = [pool.submit(count, shard) for shard in shards]
        for shard, future in zip(shards, futures):
            try:
                counts.append(future.result())
            except Exception as exc:
                raise WriterError(f"counting the samples of shard {shard!r} failed: "
                                  f"{type(exc).__name__}: {exc}") from exc
    return np.asarray(counts, dtype=np.int64)


def open_shard(shard, pipeline):
    webdataset = import_webdataset()
    try:
        # in order, and an empty shard is just empty
        dataset = webdataset.WebDataset(shard, shardshuffle=False, empty_check=False)
    except TypeError:  # releases before these arguments
        dataset = webdataset.WebDataset(shard)
    return pipeline(dataset)


class SourceFailure(Exception):
    """Reading the next work item in the calling process failed (``from_iterable``)."""

    def __init__(self, cursor, exc):
        super().__init__(str(exc))
        self.cursor = cursor
        self.exc = exc


def reporting(items, cursor):
    """Yield from ``items``, wrapping its exceptions in :class:`SourceFailure`."""
    iterator = iter(items)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except Exception as exc:
            raise SourceFailure(cursor, exc) from exc
        yield item

