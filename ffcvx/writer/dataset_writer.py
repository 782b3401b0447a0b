"""Writing ``.beton`` files: :class:`DatasetWriter`.

A dataset is written once, in parallel, into the layout of FFCV 1.0 (format
version 2, ``spec/beton.md``; offsets in :mod:`ffcvx.writer.layout`).

The file is written to a temporary file next to the target and moved into place
with ``os.replace`` only when everything succeeded, so a failed or interrupted
write never leaves a partial file and never touches an existing target; the
temporary files that killed writers left behind for the same target are
removed first (``spec/beton.md``, "Writer faults").
"""
import itertools
import multiprocessing
import os
from collections.abc import Mapping

import numpy as np

from ..errors import WriterError
from ..fields import Field
from ..storage import is_url
from ..types import ALLOC_TABLE_TYPE, DEFAULT_PAGE_SIZE, FIELD_NAME_LENGTH, get_metadata_type
from . import layout, temp
from .checks import (check_chunksize, check_count, check_page_size, check_part, encode_field_name,
                     part_range)
from .imagefolder import indexed_source
from .pages import SHUFFLE_KEY, Cursor
from .progress import Progress, progress_disabled
from .sources import (IterableSource, SourceFailure, WebDatasetSource, count_shards,
                      import_webdataset, reporting)
from .workers import Job, failure_report, run_here, run_processes, start_method

__all__ = ['DatasetWriter']


class DatasetWriter:
    """Writes a dataset into a ``.beton`` file (format version 2, FFCV 1.0 compatible).

    Parameters
    ----------
    fname : str or os.PathLike
        Output path, replaced atomically when writing succeeds; or a URL
        (``s3://``, any fsspec protocol): the file is written locally and
        uploaded whole, a part next to it (:mod:`ffcvx.writer.remote_target`).
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
        Show a tqdm progress bar over samples (``img/s`` with an image field,
        and an ETA) and, once the file is in place, one closing line on
        stderr with the time, the rate and what the image fields did
        (:meth:`WriteStats.summary <ffcvx.writer.progress.WriteStats.summary>`);
        both are off when False or when ``TQDM_DISABLE`` is set in the
        environment.
    seed : int, sequence of int or None
        Root of every random choice the write makes: ``shuffle_indices`` and
        ``write_mode='proportion'`` (each sample gets its own Generator,
        seeded from ``(seed, sample index, field)``, so the file is the same
        whatever the number of workers). None draws the root, once per write
        and in the calling process, from numpy's global RNG, so that
        ``np.random.seed(...)`` before a write makes it reproducible, as in
        FFCV; workers never draw from the global RNG (forked workers would
        all copy its state). Part files (``part=(k, K)`` of the ``from_*``
        methods, K > 1) need a seed, so that all parts draw from one root
        (FMT-093).
    storage_options : dict or None
        Credentials and endpoint of a URL ``fname``, as a Loader takes them.

    Attributes
    ----------
    last_write : ffcvx.writer.progress.WriteStats or None
        What the last successful write did: samples, seconds, and per image
        field how many samples were passed through, shrunk, re-encoded or
        stored raw (also returned by the ``from_*`` methods); None before.

    Workers are forked only while the calling process runs no other thread;
    otherwise they are started with ``forkserver`` (or ``spawn``), which needs
    the dataset and the fields to be picklable and importable by the worker.
    If they are not (also when they are defined in a notebook or ``python -c``,
    whose main module a worker cannot import), the write runs in the calling
    process (as with ``num_workers=1``) after a ``RuntimeWarning``. Spawned
    workers import the main module again, so a script that writes while
    other threads run needs the usual
    ``if __name__ == '__main__':`` guard (else a ``WriterError`` says so).

    Raises
    ------
    TypeError
        If ``fields`` is not a mapping of names to :class:`~ffcvx.fields.Field`,
        or ``num_workers`` is not an integer.
    ValueError
        For an invalid page size, no fields, more than 65535 fields, or a bad
        field name.
    WriterError
        From the ``from_*`` methods: a sample that fails or cannot be stored
        exactly, a worker that dies, a full disk, or a folder where the
        temporary file cannot be created; an existing target is kept.
    """

    def __init__(self, fname, fields, page_size=DEFAULT_PAGE_SIZE, num_workers=-1, progress=True,
                 seed=None, storage_options=None):
        self.fname = os.fspath(fname)
        if storage_options and not is_url(self.fname):
            raise ValueError(f"storage_options are for URLs; {self.fname!r} is a local path")
        self.storage_options = dict(storage_options or {})
        # SeedSequence checks the seed now (a negative or float seed is a ValueError/TypeError)
        self.seed = seed if seed is None else np.random.SeedSequence(seed).entropy
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
            raw = encode_field_name(name)
            if raw in encoded:
                raise ValueError(f"field name {name!r} collides with another field once stored as "
                                 f"{raw!r} ({FIELD_NAME_LENGTH} bytes at most, FMT-020)")
            names.append(name)
            encoded.append(raw)
        if num_workers is None or check_count('num_workers', num_workers, minimum=None) < 1:
            num_workers = len(os.sched_getaffinity(0))
        self.fields = dict(fields)
        self.field_names = names
        self.handlers = [fields[name] for name in names]
        self._stored_names = encoded
        self.page_size = page_size
        self.num_workers = int(num_workers)
        self.progress = bool(progress)
        self.metadata_type = get_metadata_type(self.handlers)
        self.last_write = None

    # -- public entry points ------------------------------------------------

    def from_indexed_dataset(self, dataset, indices=None, chunksize=100, shuffle_indices=False,
                             read_by_path=True, part=None):
        """Write ``dataset[indices[k]]`` as sample ``k`` for every position ``k``.

        Parameters
        ----------
        dataset : object with ``__getitem__`` (and ``__len__`` if ``indices`` is None)
            ``dataset[i]`` returns a tuple with one value per field, in field order.
        indices : sequence of int, optional
            Which items to write, in order; default ``np.arange(len(dataset))``
            (so ``dataset`` receives ``numpy.int64`` indices, as with FFCV).
        chunksize : int
            Samples per work item handed to a worker (the last items are
            smaller, so that the workers finish together).
        shuffle_indices : bool
            Shuffle ``indices`` first, so sample ``k`` of the file is a random
            item; the order is drawn from ``seed`` (reproducible when it is given).
        read_by_path : bool
            Let the image field read a torchvision folder's files itself (see
            Notes); False always calls ``dataset[i]``, as FFCV 1.0 does, so
            an image that must shrink gets FFCV's pixels exactly (ffcvx's
            extension, not FFCV's).
        part : tuple of int (k, K), optional
            Write only part ``k`` of ``K`` (ffcvx extension): the positions
            ``0 .. len(indices) - 1`` (after ``shuffle_indices``, which shuffles
            the whole list, the same way in every part) are split into ``K``
            contiguous ranges as ``numpy.array_split`` splits them, and this
            file holds range ``k`` only, as a complete ``.beton`` (empty
            when ``K`` exceeds the number of samples). Random choices are
            drawn per *global* position, so the parts joined with
            :func:`ffcvx.merge` (FMT-092) hold what one write of everything
            holds (FMT-093). ``K > 1`` needs ``seed``.

        Returns
        -------
        ffcvx.writer.progress.WriteStats
            What the write did (also :attr:`last_write`).

        Notes
        -----
        A torchvision ``ImageFolder`` / ``DatasetFolder`` with the default
        loader and no transforms, written into an image field and a label
        field, is read by path: the image field gets ``samples[i][0]``
        instead of the decoded PIL image, and the label ``samples[i][1]``
        (the same samples, labels and order; :mod:`ffcvx.writer.imagefolder`).
        The closing line and ``WriteStats.fast_path`` say so.

        Raises
        ------
        TypeError, ValueError
            For a ``part`` that is not ``(k, K)`` with ``0 <= k < K``; a
            ValueError for ``K > 1`` without ``seed`` (each part would draw
            its own root, so parts would disagree on the random choices).
        WriterError
            If reading or encoding any sample fails, or a worker dies; the
            message names the sample and holds the original traceback.
        """
        chunksize = check_chunksize(chunksize)
        part = check_part(part, self.seed is not None)
        if not isinstance(read_by_path, (bool, np.bool_)):
            raise TypeError(f"read_by_path must be True or False, got {read_by_path!r}")
        if indices is None:
            indices = np.arange(len(dataset))
        else:
            indices = np.asarray(indices)
            if indices.ndim != 1 or not (indices.size == 0 or np.issubdtype(indices.dtype, np.integer)):
                raise ValueError(f"indices must be a 1-D sequence of integers, got an array of "
                                 f"dtype {indices.dtype} and shape {indices.shape}")
        entropy = self._root_entropy()
        if shuffle_indices:
            rng = np.random.Generator(np.random.PCG64(
                np.random.SeedSequence(entropy, spawn_key=(SHUFFLE_KEY,))))
            indices = rng.permutation(indices)
        first = 0
        if part is not None:
            first, stop = part_range(len(indices), part)
            indices = indices[first:stop]
        return self._write(indexed_source(dataset, indices, chunksize, self.handlers,
                                          self.field_names, bool(read_by_path)), entropy, first,
                           part)

    def from_webdataset(self, shards, pipeline, part=None):
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
        part : tuple of int (k, K), optional
            Write only part ``k`` of ``K`` of the positions, as
            :meth:`from_indexed_dataset` does (FMT-093). Every shard is still
            counted; only the shards holding the part's range are read to
            write it.

        Returns
        -------
        ffcvx.writer.progress.WriteStats
            What the write did (also :attr:`last_write`).

        Raises
        ------
        ImportError
            If the ``webdataset`` package is not installed.
        TypeError, ValueError
            For a bad ``part``, as :meth:`from_indexed_dataset`.
        WriterError
            If counting or writing fails.
        """
        part = check_part(part, self.seed is not None)
        import_webdataset()
        shards = list(shards)
        counts = count_shards(shards, pipeline, self.num_workers)
        first, stop = (0, None) if part is None else part_range(int(counts.sum()), part)
        return self._write(WebDatasetSource(shards, pipeline, counts, first, stop), None, first,
                           part)

    def from_iterable(self, iterable, length=None, chunksize=100, part=None):
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
        part : tuple of int (k, K), optional
            Write only part ``k`` of ``K`` of the ``length`` positions, as
            :meth:`from_indexed_dataset` does (FMT-093). ``iterable`` yields
            all the samples: those before the part are pulled and dropped,
            those after it are not pulled.

        Returns
        -------
        ffcvx.writer.progress.WriteStats
            As :meth:`from_indexed_dataset` returns.

        Raises
        ------
        TypeError
            If ``length`` is None and ``iterable`` has no ``len()``.
        TypeError, ValueError
            For a bad ``part``, as :meth:`from_indexed_dataset`.
        WriterError
            If the iterable yields a different number of samples than
            ``length``, or reading or encoding a sample fails.
        """
        part = check_part(part, self.seed is not None)
        chunksize = check_chunksize(chunksize)
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
        if part is None:
            return self._write(IterableSource(iterable, length, chunksize))
        first, stop = part_range(length, part)
        # the part's samples only; the iterable must still hold them all up to ``stop``
        iterator = iter(iterable)
        part_samples = itertools.islice(iterator, first, stop)
        if stop == length:      # the last part: the source's end check sees any extra sample
            part_samples = itertools.chain(part_samples, iterator)
        return self._write(IterableSource(part_samples, stop - first, chunksize, first), None,
                           first, part)

    def _root_entropy(self):
        """The root of one write's random choices: ``seed``'s, or one draw of the global RNG."""
        if self.seed is None:
            # in the calling process only: np.random.seed() before a write reproduces it (FFCV)
            return int(np.random.randint(0, 2 ** 63 - 1, dtype=np.int64))
        return np.random.SeedSequence(self.seed).entropy

    # -- writing --------------------------------------------------------------

    def _write(self, source, entropy=None, first=0, part=None):
        # one root per write: a seed gives the same choices every time, no seed fresh ones
        if entropy is None:
            entropy = self._root_entropy()
        if is_url(self.fname):
            from .remote_target import write_to_url
            return write_to_url(self.fname, part, self.storage_options,
                                lambda path: self._write_file(path, source, entropy, first))
        return self._write_file(self.fname, source, entropy, first)

    def _write_file(self, fname, source, entropy, first):
        num_samples = int(source.num_samples)
        progress = Progress(self.fname, num_samples, self.field_names, self.handlers,
                            progress_disabled(self.progress), source.fast_path)
        staged = temp.Staged(fname)    # also removes what killed writers left
        try:
            with staged:
                self._write_into(staged.fd, staged.path, source, num_samples, entropy, progress,
                                 first)
        except WriterError as exc:
            raise WriterError(f"{exc}\n[{fname} was not written; an existing file there was "
                              f"left as it was]") from exc.__cause__
        except OSError as exc:
            raise WriterError(
                f"writing {fname} failed: {type(exc).__name__}: {exc} (a full disk or a file "
                f"size limit gives ENOSPC/EFBIG); nothing was written there and an existing "
                f"file was left as it was") from exc
        self.last_write = progress.finish()
        return self.last_write

    def _write_into(self, fd, tmp_path, source, num_samples, entropy, progress, first=0):
        at = layout.Offsets(len(self.handlers), num_samples, self.metadata_type, self.page_size)
        layout.write_descriptors(fd, self.handlers, self._stored_names, self.field_names)

        metadata = np.zeros(num_samples, dtype=self.metadata_type)
        # made by the spawn context: such a lock may go to forked and spawned workers alike
        counter = multiprocessing.get_context('spawn').Value('q', 0)
        job = Job(fd, tmp_path, self.page_size, at.data_start, self.field_names, self.handlers,
                  self.metadata_type, num_samples, counter, entropy, first)
        records = self._run(source, job, num_samples, metadata, progress)
        layout.write_tables(fd, at, metadata, records, int(counter.value))

    def _run(self, source, job, num_samples, metadata, progress):
        """Encode every sample into ``metadata`` and pages; return the allocation records."""
        workers = max(1, min(self.num_workers, source.num_items))
        if hasattr(source, 'balance'):
            source.balance(workers)
        items = reporting(source.items(), getattr(source, 'cursor', None) or Cursor())
        try:
            if num_samples == 0:
                for _ in items:   # lets from_iterable check that the iterable is empty
                    pass
                return np.zeros(0, dtype=ALLOC_TABLE_TYPE)
            method = start_method(source, job) if workers > 1 else None
            if method is None:
                return run_here(source, job, items, progress, metadata)
            return run_processes(source, job, items, progress, workers, method, metadata)
        except SourceFailure as failure:
            text, _ = failure_report(failure.cursor, failure.exc)
            raise WriterError(text) from failure.exc
