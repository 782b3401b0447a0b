"""Driving a memory strategy the way the Loader does, and checking what it serves.

The Loader's epoch thread (:mod:`ffcvx.loader.epoch_iterator`) uses a strategy
like this (FFCV's protocol, :mod:`ffcvx.memory_managers.context`):
``compile_reader()`` once when the pipelines are built; per epoch ``context =
schedule_epoch(batches)``, then ``with context:``, ``context.state`` once and,
for each batch in order, ``context.start_batch(number)`` followed by compiled
decoder code that calls
``read(ptr, state)`` for the batch's samples and copies the bytes out before
the next batch starts. :func:`serve_epoch` does exactly that, with a compiled
gather function in place of the decoders, and compares every region with the
spec reader (:meth:`ffcvx.reader.Reader.read_sample_region`).

Nothing here needs pytest, so a child process can use it too (see
:func:`main`, used by the suite's cross-process test).
"""
import hashlib
import json
import sys
import types

import numpy as np
from numba import njit

__all__ = ['RegionTable', 'epoch_batches', 'make_gather', 'serve_epoch', 'main']

ORDERS = ('SEQUENTIAL', 'RANDOM', 'QUASI_RANDOM')


def _region_pointer(record):
    """Absolute offset of the region a field's metadata record points to."""
    names = record.dtype.names
    if names and 'data_ptr' in names:   # images (FMT-036)
        return int(record['data_ptr'])
    if names and 'ptr' in names:        # bytes and JSON (FMT-033, FMT-035)
        return int(record['ptr'])
    return int(record)                  # arrays: the record is the offset (FMT-034)


class RegionTable:
    """Every data region of a file, with the bytes the spec reader returns for it.

    Parameters
    ----------
    reader : ffcvx.reader.Reader

    Attributes
    ----------
    fields : list of str
        Fields that own a data region, i.e. those ``Reader.read_sample_region``
        reads (images, bytes, JSON, arrays); scalar fields keep their value in
        the metadata and are left out.
    ptrs : ndarray[uint64], shape (num_samples, len(fields))
        Region offset of each sample's field, as the decoders pass it to ``read``.
    sizes : ndarray[int64], same shape
        Size of the region that starts there, from the reader's region table:
        the length ``read`` must return (0 where ``referenced`` is False).
    referenced : ndarray[bool], same shape
        False for an empty payload whose pointer names no region (FMT-033
        leaves that pointer free, and no decoder reads it); such entries are
        not read from the strategy.
    expected : list of list of ndarray[uint8]
        ``expected[sample][k]``: ``read_sample_region(sample, fields[k])``, the
        prefix of the region that the field's decoder uses (the whole region,
        except for a zero-size record that shares its offset with the next
        region, FMT-050).
    """

    def __init__(self, reader):
        self.fname = reader.fname
        self.num_samples = int(reader.num_samples)
        self.fields = []
        if self.num_samples:
            for name in reader.field_names:
                try:
                    reader.read_sample_region(0, name)
                except TypeError:
                    continue  # no data region (Int, Float, unknown custom layouts)
                self.fields.append(name)
        shape = (self.num_samples, len(self.fields))
        self.ptrs = np.zeros(shape, dtype=np.uint64)
        self.sizes = np.zeros(shape, dtype=np.int64)
        self.referenced = np.ones(shape, dtype=np.bool_)
        self.expected = [[None] * len(self.fields) for _ in range(self.num_samples)]
        region_ptrs = np.asarray(reader.region_ptrs, dtype=np.uint64)
        region_sizes = np.asarray(reader.region_sizes, dtype=np.int64)
        for k, name in enumerate(self.fields):
            column = reader.metadata[f'f{reader.field_names.index(name)}']
            for sample in range(self.num_samples):
                ptr = _region_pointer(column[sample])
                position = int(np.searchsorted(region_ptrs, np.uint64(ptr)))
                expected = reader.read_sample_region(sample, name)
                self.expected[sample][k] = expected
                if position >= len(region_ptrs) or int(region_ptrs[position]) != ptr:
                    if expected.size == 0:
                        self.referenced[sample, k] = False
                        continue
                    raise AssertionError(f"{self.fname}: sample {sample}, field {name!r} points at "
                                         f"{ptr}, which starts no region of the reader's table")
                self.ptrs[sample, k] = ptr
                self.sizes[sample, k] = region_sizes[position]

    @property
    def count(self):
        """Number of (sample, field) regions."""
        return self.ptrs.size

    def digest(self, lengths=None, data=None):
        """A hash of every region in (sample, field) order: its length and its bytes.

        Parameters
        ----------
        lengths, data : optional
            Lengths and bytes as a strategy served them (from
            :func:`gather_all`); None hashes what the reader says.

        Returns
        -------
        str
            Hex SHA-256.
        """
        h = hashlib.sha256()
        for sample in range(self.num_samples):
            for k in range(len(self.fields)):
                length = self.sizes[sample, k] if lengths is None else lengths[sample][k]
                expected = self.expected[sample][k]
                body = expected if data is None else data[sample][k][:len(expected)]
                h.update(int(length).to_bytes(8, 'little'))
                h.update(np.ascontiguousarray(body).tobytes())
        return h.hexdigest()


def make_gather(read):
    """Compile a function that calls ``read`` from nopython code, as decoders do.

    Parameters
    ----------
    read : numba dispatcher
        A strategy's ``compile_reader()``.

    Returns
    -------
    gather : callable
        ``gather(ptrs, state, out, bounds, lengths)``: for each ``i``, calls
        ``read(ptrs[i], state)``, stores the returned length in
        ``lengths[i]`` and copies up to ``bounds[i + 1] - bounds[i]`` bytes of
        it to ``out[bounds[i]:]``.
    """
    @njit(nogil=True)
    def gather(ptrs, state, out, bounds, lengths):
        for i in range(ptrs.shape[0]):
            data = read(ptrs[i], state)
            n = data.shape[0]
            lengths[i] = n
            start = bounds[i]
            room = bounds[i + 1] - start
            m = n if n < room else room
            out[start:start + m] = data[:m]
    return gather


def epoch_batches(reader, order, batch_size, seed, epoch):
    """The batches a Loader with these settings would run, all samples kept.

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    order : str
        ``'SEQUENTIAL'``, ``'RANDOM'`` or ``'QUASI_RANDOM'``.
    batch_size : int
    seed, epoch : int

    Returns
    -------
    list of ndarray[uint64]
        Consecutive slices of the order; the last may be shorter.
    """
    # The classes behind the Loader's OrderOption, imported without the
    # loader (and torch), which a child process does not need.
    from ..traversal_order import QuasiRandom, Random, Sequential
    classes = {'SEQUENTIAL': Sequential, 'RANDOM': Random, 'QUASI_RANDOM': QuasiRandom}
    # The attributes TraversalOrder documents that it reads from its loader.
    loader_like = types.SimpleNamespace(
        reader=reader, indices=np.arange(reader.num_samples, dtype=np.uint64), seed=int(seed),
        distributed=False, rank=0, world_size=1, batch_size=int(batch_size))
    samples = classes[order](loader_like).sample_order(epoch)
    return [np.ascontiguousarray(samples[i:i + batch_size], dtype=np.uint64)
            for i in range(0, len(samples), batch_size)]


def _describe(table, sample, k, length, got):
    expected = table.expected[sample][k]
    where = f"{table.fname}: sample {sample}, field {table.fields[k]!r} (offset {table.ptrs[sample, k]})"
    if length != table.sizes[sample, k]:
        return f"{where}: read returned {length} bytes, the region holds {table.sizes[sample, k]}"
    differ = np.flatnonzero(got[:len(expected)] != expected)
    return (f"{where}: {len(differ)} of {len(expected)} bytes differ from the reader's, "
            f"first at byte {differ[0]}")


def serve_epoch(manager, read, gather, table, batches, stop_after=None, keep=False):
    """Run one epoch through ``manager`` as the Loader does and compare every region.

    Parameters
    ----------
    manager : ffcvx.memory_managers.MemoryManager
    read : numba dispatcher
        ``manager.compile_reader()``, fetched once like the Loader does.
    gather : callable
        ``make_gather(read)``.
    table : RegionTable
    batches : list of ndarray[uint64]
    stop_after : int or None
        Leave the epoch after this many batches (a training loop that breaks
        out early); None runs all of them.
    keep : bool
        Also return what was served, for :meth:`RegionTable.digest`.

    Returns
    -------
    problems : list of str
        One line per region served wrong (empty when all are right). Bytes are
        compared while their batch is current, as decoders read them; a
        strategy may reuse the memory once the next batch starts.
    served : dict or None
        With ``keep``: ``{'lengths': ..., 'data': ...}`` indexed
        ``[sample][k]``; None otherwise.
    """
    fields = len(table.fields)
    problems = []
    lengths_kept = [[None] * fields for _ in range(table.num_samples)] if keep else None
    data_kept = [[None] * fields for _ in range(table.num_samples)] if keep else None
    context = manager.schedule_epoch(batches)
    with context:
        state = context.state
        for number, batch in enumerate(batches):
            if stop_after is not None and number >= stop_after:
                break
            context.start_batch(number)
            if not fields:
                continue
            samples = batch.astype(np.int64)
            read_it = table.referenced[samples].reshape(-1)
            sizes = table.sizes[samples].reshape(-1)
            bounds = np.zeros(len(sizes) + 1, dtype=np.int64)
            np.cumsum(sizes, out=bounds[1:])
            out = np.zeros(int(bounds[-1]), dtype=np.uint8)
            # Unreferenced entries are not read, like the decoder skips them:
            # their slot is empty (size 0), so the read ones stay contiguous.
            picked = np.flatnonzero(read_it)
            ptrs = np.ascontiguousarray(table.ptrs[samples].reshape(-1)[picked])
            picked_lengths = np.full(len(picked), -1, dtype=np.int64)
            gather(ptrs, state, out, np.append(bounds[picked], bounds[-1]), picked_lengths)
            lengths = np.zeros(len(sizes), dtype=np.int64)
            lengths[picked] = picked_lengths
            for j, sample in enumerate(samples.tolist()):
                for k in range(fields):
                    i = j * fields + k
                    got = out[bounds[i]:bounds[i + 1]]
                    expected = table.expected[sample][k]
                    if lengths[i] != sizes[i] or not np.array_equal(got[:len(expected)], expected):
                        problems.append(_describe(table, sample, k, int(lengths[i]), got))
                    if keep:
                        lengths_kept[sample][k] = int(lengths[i])
                        data_kept[sample][k] = got.copy()
    del state
    return problems, ({'lengths': lengths_kept, 'data': data_kept} if keep else None)


def main(argv=None):
    """Child process of the cross-process test: serve a file, print what was read.

    Usage: ``python -c "from ffcvx.testing.regions import main; main()" PATH NAME OPTIONS_JSON``.
    Opens PATH with strategy NAME and OPTIONS_JSON (its keyword arguments),
    runs one RANDOM epoch and prints one JSON line: ``digest`` (see
    :meth:`RegionTable.digest`) of what the strategy served, ``problems``
    (mismatches with the reader), ``regions`` (count). Exits 0 unless the
    strategy raised.
    """
    from ..memory_managers.select import select_strategy
    from ..reader import Reader

    path, name, options = (argv or sys.argv[1:])[:3]
    reader = Reader(path)
    table = RegionTable(reader)
    manager = select_strategy(reader, cache=name, options=json.loads(options))
    try:
        read = manager.compile_reader()
        problems, served = serve_epoch(manager, read, make_gather(read), table,
                                       epoch_batches(reader, 'RANDOM', 4, seed=5, epoch=0), keep=True)
        digest = table.digest(served['lengths'], served['data'])
        del served
    finally:
        manager.close()
    print(json.dumps({'digest': digest, 'problems': problems[:5], 'regions': table.count}),
          flush=True)
