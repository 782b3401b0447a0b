"""The reader fuzzer's corpus, mutations and oracle (tests/faults/test_fuzz_reader.py, ``make fuzz``).

A *mutant* is a base ``.beton`` file with 1 to 4 mutations applied: a bit
flip, a member of the header, a descriptor, a metadata record or an
allocation record overwritten with 0, all ones or a huge value, or a
truncation. Offsets of members come from the dtypes of ``ffcvx.types`` and of
the fields, so mutations hit the values the reader interprets.

The oracle (:class:`Oracle`) opens a mutant with :class:`ffcvx.reader.Reader`:
either it raises ``BetonFormatError``, or every data region of every sample
must come out of the ``os``, ``process`` and ``shared`` strategies exactly as
:meth:`Reader.read_sample_region` reads it from the file, and (optionally)
decoding every field through a Loader may raise ``DecodeError`` only.
Anything else is a finding, returned as text (never raised), so that a plain
sweep can count findings and a Hypothesis test can assert there are none.
"""
import os
import signal
import traceback
from contextlib import contextmanager

import numpy as np

from ffcvx.errors import BetonFormatError, DecodeError
from ffcvx.fields import (BytesField, FloatField, GrayscaleImageField, IntField, JSONField,
                          NDArrayField, RGBImageField)
from ffcvx.types import ALLOC_TABLE_TYPE, FieldDescType, HeaderType, metadata_offset

#: Values written over a member by an ``overwrite`` mutation (masked to its width).
SPECIAL_VALUES = (0, 1, 2 ** 64 - 1, 2 ** 63, 2 ** 32, 2 ** 31 - 1, 2 ** 16 - 1, 4096, 2 ** 21)

#: Mutation kinds, in the order strategies draw from.
KINDS = ('flip', 'overwrite', 'truncate')


class _Images:
    """20 samples: a 16x12 RGB JPEG, a 14x10 gray PNG, a 9x6 raw gray image, an int."""

    def __len__(self):
        return 20

    def __getitem__(self, i):
        i = int(i)
        rng = np.random.default_rng(100 + i)
        # One size per field: the default SimpleRGBImageDecoder needs it.
        rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        gray = rng.integers(0, 256, (10, 14), dtype=np.uint8)
        return rgb, gray, gray[:6, :9].copy(), int(rng.integers(-1000, 1000))

    @staticmethod
    def fields():
        return {'image': RGBImageField(write_mode='jpg'), 'gray': GrayscaleImageField(write_mode='png'),
                'mask': GrayscaleImageField(write_mode='raw'),
                'label': IntField()}


class _Mixed:
    """20 samples: JSON, bytes (some empty), a float32 array, a big-endian int16 array, a float."""

    def __len__(self):
        return 20

    def __getitem__(self, i):
        i = int(i)
        rng = np.random.default_rng(200 + i)
        blob = rng.integers(0, 256, 0 if i % 5 == 0 else int(rng.integers(1, 300)), dtype=np.uint8)
        return ({'i': i, 'tag': 'x' * (i % 4)}, blob, rng.standard_normal((3, 4)).astype('<f4'),
                rng.integers(-3000, 3000, 5).astype('>i2'), float(i) / 3)

    @staticmethod
    def fields():
        return {'meta': JSONField(), 'blob': BytesField(), 'arr': NDArrayField('<f4', (3, 4)),
                'be': NDArrayField('>i2', (5,)), 'value': FloatField()}


#: Page size of the written files (the smallest a writer may use, FMT-013).
PAGE_SIZE = 1 << 21
WRITTEN = {'images': _Images, 'mixed': _Mixed}
#: The golden file of the corpus: several pages, unsorted allocation table.
GOLDEN = ('multipage',)


def write_corpus(folder, golden_dir):
    """Build the corpus: ``{name: bytes}`` of the written files and the golden ones.

    Parameters
    ----------
    folder : pathlib.Path
        Where the written files go.
    golden_dir : pathlib.Path
        ``shared/golden/ffcv-1.0.2``.
    """
    from ffcvx.writer import DatasetWriter
    corpus = {}
    for name, dataset_class in WRITTEN.items():
        dataset = dataset_class()
        path = folder / f'{name}.beton'
        DatasetWriter(str(path), dataset.fields(), num_workers=1, page_size=PAGE_SIZE,
                      progress=False).from_indexed_dataset(dataset)
        corpus[name] = path.read_bytes()
    for name in GOLDEN:
        corpus[name] = (golden_dir / f'{name}.beton').read_bytes()
    return corpus


def member_spans(data):
    """Every interpreted member of a file's tables, as ``(offset, width)`` in bytes.

    Parameters
    ----------
    data : bytes
        An unmutated corpus file.

    Returns
    -------
    list of (int, int)
        Header members (FMT-010), descriptor ``type_id``, ``name`` start and
        the array arguments' ``shape[0]``/``type_length`` (FMT-020, FMT-023),
        each metadata member's numbers (FMT-031) and each allocation record's
        three numbers (FMT-050).
    """
    from ffcvx.reader import Reader
    import tempfile
    with tempfile.NamedTemporaryFile(suffix='.beton') as f:
        f.write(data)
        f.flush()
        reader = Reader(f.name)
    spans = [(off, HeaderType.fields[n][0].itemsize) for n, (_, off) in
             ((n, HeaderType.fields[n]) for n in HeaderType.names)]
    for i in range(reader.num_fields):
        at = HeaderType.itemsize + i * FieldDescType.itemsize
        spans += [(at, 1), (at + 1, 1), (at + 17, 8), (at + 17 + 256, 8)]
    m0 = metadata_offset(reader.num_fields)
    record = reader.metadata_type
    for sample in range(reader.num_samples):
        base = m0 + sample * record.itemsize
        for name in record.names:
            member, member_at = record.fields[name]
            if member.names:
                spans += [(base + member_at + off, t.itemsize) for t, off in
                          (member.fields[m][:2] for m in member.names)]
            else:
                spans.append((base + member_at, member.itemsize))
    table = int(reader.header['alloc_table_ptr'])
    for k in range((len(data) - table) // ALLOC_TABLE_TYPE.itemsize):
        base = table + k * ALLOC_TABLE_TYPE.itemsize
        spans += [(base + off, 8) for off in (0, 8, 16)]
    return spans


def apply(data, mutations):
    """Apply ``mutations`` to ``data``; returns the mutant's bytes.

    Parameters
    ----------
    data : bytes
    mutations : sequence of tuple
        ``('flip', offset, bit)``, ``('overwrite', offset, width, value)``
        (little-endian, ``value`` masked to ``width`` bytes) or
        ``('truncate', size)``; applied in order, offsets past the end ignored.
    """
    out = bytearray(data)
    for mutation in mutations:
        kind = mutation[0]
        if kind == 'flip':
            _, offset, bit = mutation
            if offset < len(out):
                out[offset] ^= 1 << bit
        elif kind == 'overwrite':
            _, offset, width, value = mutation
            raw = (value & ((1 << (8 * width)) - 1)).to_bytes(width, 'little')
            end = min(len(out), offset + width)
            if offset < end:
                out[offset:end] = raw[:end - offset]
        else:
            del out[mutation[1]:]
    return bytes(out)


class Hang(Exception):
    """An example ran past its time limit."""


@contextmanager
def time_limit(seconds):
    """Raise :class:`Hang` in the main thread after ``seconds`` (SIGALRM)."""
    def on_alarm(signum, frame):
        raise Hang(f"ran past {seconds} s")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Oracle:
    """Judges mutants: rejected, or read identically by every strategy (and decodable).

    Parameters
    ----------
    folder : pathlib.Path
        Scratch folder for mutant files and shared-memory segments.
    strategies : sequence of str
        Memory strategies compared with the reader (``os``, ``process``, ``shared``).

    Attributes
    ----------
    counts : dict of str to int
        ``mutants``, ``opened``, ``rejected``, ``hangs``, ``exceptions``
        (anything but BetonFormatError from the reader, or but DecodeError
        from decoding), ``differences`` (a strategy served other bytes).
    findings : list of str
        One line per hang, exception or difference.
    """

    def __init__(self, folder, strategies=('os', 'process', 'shared')):
        self.folder = folder
        self.strategies = tuple(strategies)
        self.shm = folder / 'shm'
        self.shm.mkdir(exist_ok=True)
        self._gathers = {}
        self._serial = 0
        self.counts = dict.fromkeys(('mutants', 'opened', 'rejected', 'hangs', 'exceptions',
                                     'differences', 'decoded'), 0)
        self.findings = []

    def judge(self, data, label, decode=False, limit=20.0):
        """Open the mutant ``data`` and check it; returns None or the finding (str).

        ``decode`` also runs every field through a Loader (os, jit), where
        only ``DecodeError`` may come out.
        """
        from ffcvx.reader import Reader
        self._serial += 1
        path = self.folder / f'mutant-{self._serial % 2}.beton'
        with open(path, 'wb') as f:
            f.write(data)
        self.counts['mutants'] += 1
        finding = None
        try:
            with time_limit(limit):
                try:
                    reader = Reader(path)
                except BetonFormatError:
                    self.counts['rejected'] += 1
                    return None
                self.counts['opened'] += 1
                finding = self._compare(reader)
                if finding is None and decode:
                    finding = self._decode(path)
        except Hang as exc:
            self.counts['hangs'] += 1
            finding = f"hang: {exc}"
        except Exception:
            self.counts['exceptions'] += 1
            finding = "exception: " + traceback.format_exc(limit=-3)
        if finding is not None:
            if finding.startswith('difference'):
                self.counts['differences'] += 1
            self.findings.append(f"{label}: {finding}")
        return finding

    def _compare(self, reader):
        """Serve every region through each strategy; a difference with the reader is a finding."""
        from ffcvx.memory_managers.select import select_strategy
        from ffcvx.testing.regions import epoch_batches, make_gather
        wanted = _regions_to_read(reader)
        if not wanted:
            return None
        # Small sequential batches keep few pages resident; random ones mix pages.
        epochs = [epoch_batches(reader, order, size, seed=3, epoch=0)
                  for order, size in (('SEQUENTIAL', 4), ('RANDOM', 7))]
        for name, batches in ((n, b) for n in self.strategies for b in epochs):
            options = {'shm_dir': str(self.shm)} if name == 'shared' else {}
            manager = select_strategy(reader, cache=name, options=options)
            try:
                read = manager.compile_reader()
                if read not in self._gathers:
                    self._gathers[read] = make_gather(read)
                problem = _serve(manager, read, self._gathers[read], wanted, batches)
            finally:
                manager.close()
            if problem:
                return f"difference ({name}): {problem}"
        return None

    def _decode(self, path):
        """Every field through its default pipeline (Loader, os, jit): DecodeError only."""
        from ffcvx.fields.decoders import CenterCropRGBImageDecoder
        from ffcvx.fields.rgb_image import ImageField
        from ffcvx.loader import Loader
        from ffcvx.reader import Reader
        self.counts['decoded'] += 1
        reader = Reader(path)
        pipelines = {}
        for index, (name, handler) in enumerate(reader.handlers.items()):
            column = reader.metadata[f'f{index}']
            if isinstance(handler, ImageField) and (np.ptp(column['width']) or np.ptp(column['height'])):
                # The default SimpleRGBImageDecoder refuses fields of several sizes at construction.
                pipelines[name] = [CenterCropRGBImageDecoder((8, 8), 1.0)]
        try:
            loader = Loader(str(path), batch_size=8, num_workers=1, cache='os', jit=True,
                            drop_last=False, pipelines=pipelines)
            try:
                for _ in loader:
                    pass
            finally:
                loader.close()
        except DecodeError:
            return None
        return None


def _regions_to_read(reader):
    """``{sample: [(field, ptr, expected bytes)]}``: what a decoder reads, per the reader.

    Records that read nothing (a Bytes/JSON ``size`` of 0) are left out, as
    the decoders leave them.
    """
    wanted = {}
    for index, (name, handler) in enumerate(reader.handlers.items()):
        column = reader.metadata[f'f{index}']
        found = handler.data_regions(column, reader._regions)
        if found is None:
            continue
        for sample in range(reader.num_samples):
            if int(found[1][sample]) == 0:
                continue
            wanted.setdefault(sample, []).append(
                (name, int(found[0][sample]), reader.read_sample_region(sample, name)))
    return wanted


def _serve(manager, read, gather, wanted, batches):
    """One epoch through ``manager`` as the Loader drives it; the first wrong region, or None."""
    state = manager.state
    with manager.schedule_epoch(batches):
        for number, batch in enumerate(batches):
            manager.start_batch(number)
            items = [item for sample in batch.tolist() for item in wanted.get(int(sample), ())]
            if not items:
                continue
            ptrs = np.array([ptr for _, ptr, _ in items], dtype=np.uint64)
            bounds = np.zeros(len(items) + 1, dtype=np.int64)
            np.cumsum([len(e) for _, _, e in items], out=bounds[1:])
            out = np.zeros(int(bounds[-1]), dtype=np.uint8)
            lengths = np.full(len(items), -1, dtype=np.int64)
            gather(ptrs, state, out, bounds, lengths)
            for k, (name, ptr, expected) in enumerate(items):
                got = out[bounds[k]:bounds[k + 1]]
                if lengths[k] < len(expected) or not np.array_equal(got, expected):
                    return (f"field {name!r} at {ptr}: served {lengths[k]} bytes, "
                            f"{int(np.count_nonzero(got != expected))} of {len(expected)} differ")
    return None


class Base:
    """One corpus file and where its interpreted members are.

    Attributes
    ----------
    name : str
    data : bytes
    spans : list of (int, int)
        From :func:`member_spans`.
    tables_end : int
        End of the metadata table (header, descriptors and metadata lie before it).
    table_ptr : int
        ``alloc_table_ptr``: the allocation table runs from here to the end.
    """

    def __init__(self, name, data):
        from ffcvx.reader import Reader
        import tempfile
        self.name, self.data = name, data
        self.spans = member_spans(data)
        with tempfile.NamedTemporaryFile(suffix='.beton') as f:
            f.write(data)
            f.flush()
            reader = Reader(f.name)
        self.tables_end = metadata_offset(reader.num_fields) + \
            reader.num_samples * reader.metadata_type.itemsize
        self.table_ptr = int(reader.header['alloc_table_ptr'])

    def flip_offset(self, u):
        """The table byte at fraction ``u`` in [0, 1) of the table bytes (data pages left out)."""
        head, tail = self.tables_end, len(self.data) - self.table_ptr
        k = int(u * (head + tail))
        return k if k < head else self.table_ptr + (k - head)


def random_mutations(rng, base):
    """1 to 4 random mutations of ``base`` (a :class:`Base`), as :func:`apply` takes them."""
    mutations = []
    for _ in range(int(rng.integers(1, 5))):
        kind = rng.random()
        if kind < 0.4:
            mutations.append(('flip', base.flip_offset(rng.random()), int(rng.integers(0, 8))))
        elif kind < 0.9:
            offset, width = base.spans[int(rng.integers(0, len(base.spans)))]
            if rng.random() < 0.7:
                value = SPECIAL_VALUES[int(rng.integers(0, len(SPECIAL_VALUES)))]
            else:
                value = int(rng.integers(0, 2 ** 63)) >> int(rng.integers(0, 63))
            mutations.append(('overwrite', offset, width, value))
        else:
            choices = (int(rng.integers(0, len(base.data))), base.table_ptr + 24 * int(rng.integers(0, 4)),
                       base.tables_end - int(rng.integers(0, 64)))
            mutations.append(('truncate', max(0, choices[int(rng.integers(0, 3))])))
    return mutations


def sweep(oracle, bases, count, seed, decode_every=0, out=print):
    """Judge ``count`` random mutants (no shrinking) and print the figures.

    Parameters
    ----------
    oracle : Oracle
    bases : list of Base
    count : int
    seed : int
    decode_every : int
        Also decode through a Loader every this many opened mutants (0: never).
    out : callable
        Where the figures line goes.

    Returns
    -------
    dict
        ``oracle.counts`` after the sweep.
    """
    rng = np.random.default_rng(seed)
    for n in range(count):
        base = bases[n % len(bases)]
        mutations = random_mutations(rng, base)
        opened = oracle.counts['opened']
        decode = bool(decode_every) and opened % decode_every == 0
        oracle.judge(apply(base.data, mutations), f"{base.name} {mutations}", decode=decode)
    out(figures(oracle))
    return oracle.counts


def figures(oracle):
    """The sweep's figures as one line of text."""
    c = oracle.counts
    return (f"mutants {c['mutants']}, opened {c['opened']}, rejected {c['rejected']}, "
            f"crashes 0 (the process is alive), hangs {c['hangs']}, non-BetonFormatError "
            f"exceptions {c['exceptions']}, strategy differences {c['differences']}, "
            f"decoded through a Loader {c['decoded']}")
