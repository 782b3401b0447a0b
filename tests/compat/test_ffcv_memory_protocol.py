"""FFCV 1.0's memory-manager protocol and ``Loader.code``, used as FFCV's own tests use them.

FFCV's ``tests/test_memory_reader.py`` and ``tests/test_image_read.py`` drive a
manager by hand: ``context = manager.schedule_epoch(batches)``, ``read_fn =
manager.compile_reader()`` after ``Compiler.set_enabled(...)``, then ``with
context:`` and ``read_fn(address, context.state)`` for allocation-table
addresses; ``tests/test_basic_pipeline.py`` checks that ``loader.code`` stays
the same across epochs unless ``recompile=True``. Here every strategy (os,
process, shared, redis, remote, and third-party subclasses of the base) is
driven that way, and what ``read_fn`` returns is compared with the file's
bytes read directly.
"""
import os
import shutil
from contextlib import contextmanager

import numpy as np
import pytest

from _redis_server import RedisServer
from ffcvx.fields import BytesField, FloatField, IntField
from ffcvx.fields.basics import FloatDecoder
from ffcvx.loader import Loader
from ffcvx.memory_managers import MemoryContext, MemoryManager, OSCacheManager
from ffcvx.memory_managers.select import select_strategy
from ffcvx.pipeline.compiler import Compiler
from ffcvx.pipeline.operation import Operation
from ffcvx.reader import Reader
from ffcvx.transforms import ToTensor
from ffcvx.writer import DatasetWriter
from _common import Computed

LOCAL = ['os', 'process', 'shared']
PAGE = 1 << 21
#: 'pages': 9 MB of samples, at least 5 pages of 2 MiB however the writer splits them
CASES = {'simple': (600, 76), 'large': (600, 1024), 'many': (6000, 81), 'pages': (300, 30_000)}


class DummyDataset:
    """FFCV's test dataset: sample i is ``(i, randint(0, 255, size) seeded by i)``."""

    def __init__(self, length, size):
        self.length, self.size = length, size

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        if index >= self.length:
            raise IndexError
        np.random.seed(index)
        return index, np.random.randint(0, 255, size=self.size, dtype='u1')


@pytest.fixture(autouse=True)
def compiler_enabled():
    """Each test sets the Compiler as FFCV's do; the default comes back afterwards."""
    yield
    Compiler.set_enabled(True)


def _write(path, length, size):
    DatasetWriter(str(path), {'index': IntField(), 'value': BytesField()}, page_size=PAGE,
                  num_workers=2, progress=False).from_indexed_dataset(
        DummyDataset(length, size), chunksize=5)
    return str(path)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """FFCV's cases (test_simple, test_large, test_many, smaller), and one of 5 pages or more."""
    folder = tmp_path_factory.mktemp('ffcv-protocol')
    return {(length, size): _write(folder / f'{length}x{size}.beton', length, size)
            for length, size in CASES.values()}


@pytest.fixture(scope='module')
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp('ffcv-protocol-redis')).start()
    yield server.url
    server.stop()


def _manager(strategy, reader, tmp_path):
    (tmp_path / 'shm').mkdir(exist_ok=True)
    options = {'shared': {'shm_dir': str(tmp_path / 'shm')}, 'process': {'max_bytes': 3 * PAGE}}
    return select_strategy(reader, cache=strategy, options=options.get(strategy))


def _batches(reader, batch_size=50, seed=0):
    # seed None: in file order (a process cache of three pages then evicts as it goes).
    order = np.arange(reader.num_samples) if seed is None else \
        np.random.default_rng(seed).permutation(reader.num_samples)
    order = order.astype(np.uint64)
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]


def _validate(reader, manager, do_compile, batches=None):
    """FFCV's ``create_and_validate``: every allocation of every batch, read through the protocol."""
    batches = _batches(reader) if batches is None else batches
    raw = np.fromfile(reader.file_name, dtype=np.uint8)
    table = reader.alloc_table
    by_sample = {int(s): k for k, s in enumerate(table['sample_id'])}
    context = manager.schedule_epoch(batches)
    assert isinstance(context, MemoryContext)

    Compiler.set_enabled(do_compile)
    read_fn = manager.compile_reader()
    assert hasattr(read_fn, 'py_func') == do_compile   # a Numba dispatcher, or plain Python

    read = 0
    with context:
        for number, batch in enumerate(batches):
            context.start_batch(number)
            for sample_id in batch.tolist():
                row = table[by_sample[sample_id]]
                addr = row['ptr']
                read_buffer = read_fn(addr, context.state)
                np.random.seed(sample_id)
                expected_buff = np.random.randint(0, 255, size=int(row['size']), dtype='u1')
                assert read_buffer.dtype == np.uint8 and len(read_buffer) == len(expected_buff)
                assert np.array_equal(read_buffer, expected_buff), (sample_id, addr)
                assert np.array_equal(read_buffer, raw[int(addr):int(addr) + int(row['size'])])
                assert np.array_equal(read_buffer, reader.read_sample_region(sample_id, 'value'))
                read += 1
    assert read == reader.num_samples


@pytest.mark.parametrize('do_compile', [False, True], ids=['python', 'compiled'])
@pytest.mark.parametrize('case', list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize('strategy', LOCAL)
def test_read_fn_of_every_local_strategy_gives_the_samples_bytes(files, strategy, case, do_compile,
                                                                  tmp_path):
    reader = Reader(files[case])
    manager = _manager(strategy, reader, tmp_path)
    try:
        # the process cache in file order, a batch per writer chunk (at most 2 pages, so
        # 3 slots suffice); the others in a random order
        _validate(reader, manager, do_compile,
                  _batches(reader, batch_size=5, seed=None) if strategy == 'process'
                  else _batches(reader))
        if strategy == 'process' and case == CASES['pages']:
            # every page through 3 slots, each read once (as many pages as the writer's
            # workers filled: forked workers or none, depending on the calling process)
            pages = len(np.unique(reader.alloc_table['ptr'] // reader.page_size))
            assert manager.num_slots == 3 < pages and manager.pages_read == pages
    finally:
        manager.close()


@pytest.mark.parametrize('do_compile', [False, True], ids=['python', 'compiled'])
def test_ffcv_test_memory_reader_as_written(files, do_compile):
    # FFCV's tests/test_memory_reader.py line for line: an OSCacheManager, a
    # schedule of np.array([0, 1]), random allocation-table addresses.
    reader = Reader(files[(600, 76)])
    manager = OSCacheManager(reader)
    context = manager.schedule_epoch(np.array([0, 1]))

    indices = np.random.choice(600, 500)
    addresses = reader.alloc_table['ptr'][indices]
    sample_ids = reader.alloc_table['sample_id'][indices]

    Compiler.set_enabled(do_compile)
    read_fn = manager.compile_reader()

    with context:
        for addr, sample_id in zip(addresses, sample_ids):
            read_buffer = read_fn(addr, context.state)
            np.random.seed(sample_id)
            expected_buff = np.random.randint(0, 255, size=76, dtype='u1')
            assert len(read_buffer) == len(expected_buff)
            assert np.all(read_buffer == expected_buff)
    manager.close()


@pytest.mark.parametrize('do_compile', [False, True], ids=['python', 'compiled'])
def test_redis_strategy_answers_the_protocol(files, redis_url, do_compile, tmp_path):
    reader = Reader(files[CASES['pages']])
    manager = select_strategy(reader, cache='redis',
                              options={'url': redis_url, 'timeout': 2.0})
    try:
        _validate(reader, manager, do_compile)
    finally:
        manager.close()


@pytest.mark.parametrize('do_compile', [False, True], ids=['python', 'compiled'])
def test_remote_strategy_answers_the_protocol(files, nginx_server, do_compile):
    shutil.copy(files[CASES['pages']], nginx_server.root / 'protocol.beton')
    reader = Reader(nginx_server.url_for('protocol.beton'))
    manager = select_strategy(reader)
    try:
        # The file's bytes are those of the local copy; the Reader reads the URL.
        local = Reader(files[CASES['pages']])
        assert np.array_equal(reader.alloc_table, local.alloc_table)
        _validate_remote(reader, local, manager, do_compile)
    finally:
        manager.close()


def _validate_remote(reader, local, manager, do_compile):
    batches = _batches(reader)
    context = manager.schedule_epoch(batches)
    Compiler.set_enabled(do_compile)
    read_fn = manager.compile_reader()
    table = reader.alloc_table
    by_sample = {int(s): k for k, s in enumerate(table['sample_id'])}
    with context:
        for number, batch in enumerate(batches):
            context.start_batch(number)
            for sample_id in batch.tolist():
                addr = table[by_sample[sample_id]]['ptr']
                assert np.array_equal(read_fn(addr, context.state),
                                      local.read_sample_region(sample_id, 'value'))


def test_compiled_code_calls_the_reader_with_the_context_state(files):
    # FFCV's benchmarks: a compiled function of read_fn over many addresses.
    reader = Reader(files[(6000, 81)])
    manager = OSCacheManager(reader)
    context = manager.schedule_epoch(np.arange(reader.num_samples))
    read_fn = manager.compile_reader()
    addresses = reader.alloc_table['ptr']

    def bench(addresses, state):
        result = 0
        for i in range(addresses.shape[0]):
            result += read_fn(addresses[i], state).astype(np.int64).sum()
        return result

    with context:
        got = Compiler.compile(bench)(addresses, context.state)
    expected = sum(int(DummyDataset(6000, 81)[i][1].astype(np.int64).sum()) for i in range(6000))
    assert got == expected
    manager.close()


@pytest.mark.parametrize('do_compile', [False, True], ids=['python', 'compiled'])
def test_ffcv_test_image_read_pattern(files, do_compile):
    # FFCV's tests/test_image_read.py: a decoder given compile_reader() through
    # accept_globals, its code run with context.state (here the Bytes decoder:
    # ffcvx's image decoders take a scratch buffer as a fifth argument).
    reader = Reader(files[CASES['large']])
    manager = OSCacheManager(reader)
    context = manager.schedule_epoch(np.array([0, 1]))
    Compiler.set_enabled(do_compile)
    with context:
        decoder = BytesField().get_decoder_class()()
        decoder.accept_globals(reader.metadata['f1'], manager.compile_reader())
        decoder.declare_state_and_memory(None)
        decode = Compiler.compile(decoder.generate_code())
    buff = np.zeros((1, 1024), dtype='uint8')
    for i in range(reader.num_samples):
        result = decode(np.array([i]), buff, reader.metadata['f1'], context.state)[0]
        assert np.array_equal(result, DummyDataset(600, 1024)[i][1])
    manager.close()


# -- third-party strategies get the protocol from the base --------------------------------


class _Generator(MemoryManager):
    """An ffcvx-style strategy: a copy of the file in RAM, its epoch a generator context."""

    def __init__(self, reader):
        super().__init__(reader)
        self.events = []
        self._state = (np.fromfile(reader.file_name, dtype=np.uint8), self.ptrs, self.sizes)

    @property
    def state(self):
        return self._state

    def compile_reader(self):
        return OSCacheManager.compile_reader(self)

    @contextmanager
    def schedule_epoch(self, batches):
        self.events.append(('enter', len(batches)))
        yield self
        self.events.append('exit')

    def start_batch(self, batch_number):
        self.events.append(('batch', batch_number))


class _FFCVStyleContext(MemoryContext):
    def __init__(self, manager):
        self.manager, self.memory = manager, None

    @property
    def state(self):
        return (self.memory, self.manager.ptrs, self.manager.sizes)

    def __enter__(self):
        self.memory = np.memmap(self.manager.reader.file_name, 'uint8', mode='r')
        return super().__enter__()

    def __exit__(self, *exc):
        return super().__exit__(*exc)


class _FFCVStyle(MemoryManager):
    """A strategy written as in FFCV: its own MemoryContext, the state only on the context."""

    def __init__(self, reader):
        super().__init__(reader)
        self.context = _FFCVStyleContext(self)

    @property
    def state(self):
        raise AssertionError("an FFCV-style strategy's state is its context's")

    def schedule_epoch(self, batches):
        return self.context

    def compile_reader(self):
        def read(address, mem_state):
            size = mem_state[2][np.searchsorted(mem_state[1], address)]
            return mem_state[0][address:address + size]
        return Compiler.compile(read)


@pytest.mark.parametrize('do_compile', [False, True], ids=['python', 'compiled'])
@pytest.mark.parametrize('strategy', [_Generator, _FFCVStyle], ids=['generator', 'ffcv-style'])
def test_third_party_strategies_get_the_protocol(files, strategy, do_compile):
    reader = Reader(files[(600, 76)])
    manager = strategy(reader)
    batches = _batches(reader)
    _validate(reader, manager, do_compile, batches)
    if strategy is _Generator:
        assert manager.events == [('enter', len(batches))] + [
            ('batch', b) for b in range(len(batches))] + ['exit']
    else:
        assert manager.schedule_epoch(batches) is manager.context   # kept as it is


@pytest.mark.parametrize('strategy', [_Generator, _FFCVStyle], ids=['generator', 'ffcv-style'])
def test_loader_runs_on_third_party_strategies(files, strategy, monkeypatch):
    import ffcvx.loader.loader as loader_module
    made = []

    def select(reader, **_):
        made.append(strategy(reader))
        return made[-1]
    monkeypatch.setattr(loader_module, 'select_strategy', select)
    with Loader(files[(600, 76)], 50, num_workers=1, seed=3) as loader:
        # Copied: a batch's buffers are reused batches_ahead + 1 batches later.
        batches = [(np.asarray(index).reshape(-1).copy(), np.asarray(value).copy())
                   for index, value in loader]
    indices = np.concatenate([index for index, _ in batches])
    values = np.concatenate([value for _, value in batches])
    assert sorted(indices.tolist()) == list(range(600)) and values.shape == (600, 76)
    for index, value in zip(indices.tolist(), values):
        assert np.array_equal(value, DummyDataset(600, 76)[index][1]), index
    if strategy is _Generator:
        assert made[0].events[0] == ('enter', 12) and made[0].events[-1] == 'exit'


def test_memory_context_is_ffcvs_abstract_base():
    with pytest.raises(TypeError):
        MemoryContext()
    import ffcvx.memory_managers.base as base
    assert base.MemoryContext is MemoryContext


def test_state_type_and_ffcv_tables(files):
    reader = Reader(files[(600, 76)])
    manager = OSCacheManager(reader)
    import numba
    assert manager.state_type == numba.typeof(manager.state)
    assert np.all(np.diff(manager.ptrs.astype(np.int64)) > 0)
    assert np.array_equal(manager.sizes, np.full(600, 76, dtype=np.uint64))
    pages = reader.alloc_table['ptr'] >> np.uint64(21)
    assert manager.sample_to_pages[5] == {int(pages[reader.alloc_table['sample_id'] == 5][0])}
    assert 5 in manager.page_to_samples[int(pages[reader.alloc_table['sample_id'] == 5][0])]
    manager.close()


@pytest.mark.parametrize('strategy', LOCAL)
def test_ptr_to_size_and_the_region_table_computed_once(files, strategy, tmp_path, monkeypatch):
    """FFCV's ``ptr_to_size``: each region's start to its size; ``ptrs``, ``sizes`` and it share one table."""
    reader = Reader(files[(600, 76)])
    manager = _manager(strategy, reader, tmp_path)
    try:
        calls, table = [], manager.region_table
        monkeypatch.setattr(manager, 'region_table', lambda: calls.append(1) or table())
        mapping = manager.ptr_to_size
        assert manager.ptrs is manager.ptrs and manager.sizes is manager.sizes
        assert len(calls) == 1
        assert mapping == dict(zip(manager.ptrs.tolist(), manager.sizes.tolist()))
        assert len(mapping) == len(reader.alloc_table) == 600
        for row in reader.alloc_table:
            # FFCV looks it up with the table's numpy integers
            assert mapping[row['ptr']] == row['size'] == mapping[int(row['ptr'])]
        assert mapping is manager.ptr_to_size
    finally:
        manager.close()


# -- Loader.code (FFCV's tests/test_basic_pipeline.py) -------------------------------------


class Doubler(Operation):
    def generate_code(self):
        def code(x, dst):
            dst[:] = x * 2
            return dst
        return code

    def declare_state_and_memory(self, previous_state):
        from ffcvx.pipeline.allocation_query import AllocationQuery
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


class Scaler(Doubler):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def generate_code(self):
        factor = self.factor

        def code(x, dst):
            dst[:] = x * factor
            return dst
        return code


def _floats(i):
    """Of 60 samples: (i, i / 7)."""
    return i, i / 7


@pytest.fixture(scope='module')
def floats(tmp_path_factory):
    name = str(tmp_path_factory.mktemp('ffcv-code') / 'floats.beton')
    DatasetWriter(name, {'index': IntField(), 'value': FloatField()},
                  progress=False).from_indexed_dataset(Computed(60, _floats))
    return name


def _loader(name, **kwargs):
    Compiler.set_enabled(True)
    return Loader(name, 8, num_workers=min(5, os.cpu_count()), seed=17,
                  pipelines={'value': [FloatDecoder(), Doubler(), ToTensor()]}, **kwargs)


def test_multiple_epoch_doesnt_recompile(floats):
    loader = _loader(floats)
    it = iter(loader)
    code = loader.code
    it = iter(loader)
    new_code = loader.code
    assert code == new_code and code is new_code
    list(it)
    loader.close()


def test_multiple_epoch_does_recompile(floats):
    loader = _loader(floats, recompile=True)
    it = iter(loader)
    code = loader.code
    it = iter(loader)
    new_code = loader.code
    assert code != new_code
    list(it)
    loader.close()


def test_loader_code_changes_when_an_operation_is_compiled_again(floats):
    # ffcvx (D-code): an Operation whose attributes change between epochs is compiled again.
    scaler = Scaler(2)
    loader = Loader(floats, 8, num_workers=1, seed=17,
                    pipelines={'value': [FloatDecoder(), scaler, ToTensor()]})
    first = loader.code
    list(iter(loader))
    assert loader.code is first
    scaler.factor = 3
    values = np.concatenate([np.asarray(v).copy() for _, v in loader])
    assert loader.code is not first
    assert np.allclose(values.reshape(-1), np.arange(len(values)) / 7 * 3)
    assert loader.code.outputs == ('index', 'value')
    assert len(loader.code.functions) == 2
    loader.close()
