"""Conformance suite for memory strategies (entry-point group ``ffcvx.caches``).

Every test runs once per strategy name. A strategy conforms when, for every
sample and every field that owns a data region, its compiled ``read`` returns
exactly the region the spec reader (``Reader.read_sample_region`` and the
reader's region table) defines:

* in FFCV's golden files (``shared/golden/ffcv-1.0.2``, when found) and in
  files the suite writes with :class:`ffcvx.writer.DatasetWriter` (pages of 2,
  4 and 8 MiB; variable-size bytes, JSON and arrays; empty samples; a sample
  that fills a page exactly; a 6 MiB sample, larger than the other files'
  pages; the writer cannot put a sample across pages, FMT-041);
* in SEQUENTIAL, RANDOM and QUASI_RANDOM order, across epochs, after an epoch
  left early, driven as the Loader's epoch thread drives it (``state``,
  ``schedule_epoch``, ``start_batch``, ``read`` from compiled code);
* through real Loaders (``num_workers=2``): two Loaders on one file at once,
  in two threads, one of them after an epoch it left early;
* in two processes at once, for strategies with ``shared_across_processes``;

and when ``close()`` gives back what it took (file descriptors, threads, and
the files in its ``scratch_dir_option`` folder), and the strategy is reachable
by its registered name.

Running it
----------
On your own strategy, registered under the entry-point group ``ffcvx.caches``
(say as ``mine``)::

    pytest -p ffcvx.testing.plugin --pyargs ffcvx.testing.strategies --ffcvx-cache mine
    pytest -p ffcvx.testing.plugin --pyargs ffcvx.testing.strategies \\
        --ffcvx-cache mine --ffcvx-cache-options '{"mine": {"capacity": 12582912}}'

Without ``--ffcvx-cache`` every registered strategy is checked;
``--ffcvx-golden-dir`` names the golden files. The options need the plugin
(``-p ffcvx.testing.plugin``, see :mod:`ffcvx.testing.plugin`); without it the
suite runs with the defaults.

From a test module of your own, import the suite's names and say which
strategies to run with module attributes (the command line, when given, wins)::

    from ffcvx.testing.strategies import *  # noqa: F401,F403
    FFCVX_CACHES = ['mine']
    FFCVX_CACHE_OPTIONS = {'mine': {'capacity': 12582912}}

What a strategy gets
--------------------
Batches hold at most 4 samples and the files are at most about 20 MiB, so a
memory-bounded strategy passes with a bound of 12 MiB (three 4 MiB pages, one
8 MiB page). Capabilities, not names, select tests: ``needs_server`` (skipped
without options), ``shared_across_processes`` (the two-process test) and
``scratch_dir_option`` (the suite points that folder at a fresh one and checks
that ``close()`` leaves it empty); see :class:`ffcvx.memory_managers.MemoryManager`.
"""
import contextlib
import gc
import inspect
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from . import find_golden_dir, parse_cache_options, server_skip_reason
from .regions import RegionTable, epoch_batches, make_gather, serve_epoch

__all__ = ['pytest_generate_tests', 'ffcvx_registry', 'ffcvx_strategy_class',
           'ffcvx_cache_options', 'open_strategy', 'gather_for', 'written_betons',
           'ffcvx_location', 'ffcvx_reader',
           'TestSelection', 'TestBytes', 'TestLoader', 'TestProcesses', 'TestClose']

#: Samples per batch everywhere in the suite (it bounds the pages one batch needs).
BATCH_SIZE = 4
#: Mismatch lines shown when a test fails.
SHOWN = 10
#: Seconds a Loader thread or child process may take before the test fails.
TIMEOUT_S = 300
MIB = 1 << 20


# -- settings: command line, then the test module, then the registry --------------------


def _registry():
    from ..memory_managers.select import GROUP
    from ..registry import Registry
    return Registry(GROUP)


def selected_caches(config, module):
    """Strategy names to run: ``--ffcvx-cache``, else ``module.FFCVX_CACHES``, else all registered."""
    names = config.getoption('ffcvx_cache', default=None)
    if not names:
        names = getattr(module, 'FFCVX_CACHES', None)
    if not names:
        names = _registry().names()
    return list(dict.fromkeys(str(n) for n in names))


def cache_options(config, module):
    """Constructor options per strategy name.

    ``module.FFCVX_CACHE_OPTIONS``, where ``--ffcvx-cache-options`` names a
    strategy its entry replaces the module's.
    """
    declared = getattr(module, 'FFCVX_CACHE_OPTIONS', {})
    options = {name: dict(value) for name, value in declared.items()}
    options.update(parse_cache_options(config.getoption('ffcvx_cache_options', default=None)))
    return options


def _golden_files(config):
    folder = find_golden_dir(config.getoption('ffcvx_golden_dir', default=None),
                             start=config.invocation_params.dir)
    return sorted(folder.glob('*.beton')) if folder else []


def pytest_generate_tests(metafunc):
    # A module-level hook: it applies to this module, or to the test module
    # that imports the suite, and to nothing else in the session.
    if 'ffcvx_cache' in metafunc.fixturenames:
        names = selected_caches(metafunc.config, metafunc.module)
        metafunc.parametrize('ffcvx_cache', names, ids=names)
    if 'golden_beton' in metafunc.fixturenames:
        files = _golden_files(metafunc.config)
        if files:
            metafunc.parametrize('golden_beton', files, ids=[f.stem for f in files])
        else:
            metafunc.parametrize('golden_beton', [pytest.param(None, marks=pytest.mark.skip(
                reason="golden files not found: pass --ffcvx-golden-dir (FFCV 1.0.2 .beton "
                       "files, shared/golden/ffcv-1.0.2 in the ffcvx repository)"))])


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope='session')
def ffcvx_registry():
    """The registry of entry-point group ``ffcvx.caches``."""
    return _registry()


@pytest.fixture
def ffcvx_strategy_class(ffcvx_cache, ffcvx_registry):
    """The class registered as ``ffcvx_cache``; fails (not skips) if there is none."""
    if ffcvx_cache not in ffcvx_registry.names():
        pytest.fail(f"no memory strategy {ffcvx_cache!r} in entry-point group ffcvx.caches; "
                    f"registered: {', '.join(ffcvx_registry.names()) or '(none)'}", pytrace=False)
    return ffcvx_registry.get(ffcvx_cache)


@pytest.fixture
def ffcvx_cache_options(request, ffcvx_cache, ffcvx_strategy_class, tmp_path):
    """Constructor options of the strategy under test.

    Skips a strategy that needs a server when no options are given for it.
    A strategy with a ``scratch_dir_option`` gets a fresh folder there unless
    the options name one, so that tests neither see nor leave files of other
    runs.
    """
    options = cache_options(request.config, request.module)
    reason = server_skip_reason(ffcvx_strategy_class, ffcvx_cache, options)
    if reason:
        pytest.skip(reason)
    mine = dict(options.get(ffcvx_cache, {}))
    scratch = getattr(ffcvx_strategy_class, 'scratch_dir_option', None)
    if scratch and scratch not in mine:
        folder = tmp_path / 'ffcvx-scratch'
        folder.mkdir()
        mine[scratch] = str(folder)
    return mine


@pytest.fixture
def open_strategy(ffcvx_cache, ffcvx_cache_options):
    """``open_strategy(reader, **overrides) -> MemoryManager``, made through ``select_strategy``."""
    from ..memory_managers.select import select_strategy

    def make(reader, **overrides):
        return select_strategy(reader, cache=ffcvx_cache,
                               options={**ffcvx_cache_options, **overrides})
    return make


@pytest.fixture
def ffcvx_location():
    """``location(path) -> (fname, storage_options)``: where strategies read a file of the suite.

    The default reads the local file. A test module that serves the suite's
    files from a server overrides this fixture to return each file's URL and
    options, so the same checks run against object storage or HTTP
    (strategies that declare ``reads_urls``; spec/remote.md). Expected bytes
    always come from the local file.
    """
    return lambda path: (str(path), None)


@pytest.fixture
def ffcvx_reader(ffcvx_location):
    """``reader(path) -> Reader`` opened where :func:`ffcvx_location` says."""
    from ..reader import Reader

    def make(path):
        fname, storage_options = ffcvx_location(path)
        return Reader(fname, storage_options=storage_options)
    return make


@pytest.fixture(scope='session')
def gather_for():
    """``gather_for(read) -> gather``: :func:`ffcvx.testing.regions.make_gather`, compiled once per ``read``."""
    compiled = {}

    def get(read):
        if read not in compiled:
            compiled[read] = make_gather(read)
        return compiled[read]
    return get


class _Pages2:
    """36 samples in 2 MiB pages: an index, a 76,800-byte float32 array, a blob of 0-700 KB.

    Blobs are empty for samples 0, 10, 11 and 35 (the first one's zero-size
    region shares its offset with sample 1's array, FMT-050); sample 5 fills a
    page exactly, sample 6 has a 1-byte blob.
    """

    page_size = 2 * MIB
    special = {0: 0, 5: 2 * MIB - 80 * 240 * 4, 6: 1, 10: 0, 11: 0, 35: 0}

    def __len__(self):
        return 36

    def __getitem__(self, i):
        rng = np.random.default_rng(1000 + int(i))
        size = self.special.get(int(i), int(rng.integers(1, 700_000)))
        return (int(i), rng.standard_normal((80, 240)).astype(np.float32),
                rng.integers(0, 256, size, dtype=np.uint8))

    @staticmethod
    def fields():
        from ..fields import BytesField, IntField, NDArrayField
        return {'index': IntField(), 'array': NDArrayField(np.float32, (80, 240)),
                'blob': BytesField()}


class _Pages4:
    """36 samples in 4 MiB pages: an int16 grid, 3 float64, a JSON note, every other tail empty."""

    page_size = 4 * MIB

    def __len__(self):
        return 36

    def __getitem__(self, i):
        i = int(i)
        rng = np.random.default_rng(2000 + i)
        note = {'sample': i, 'tags': ['x' * int(n) for n in rng.integers(0, 40, i % 5)]}
        tail = rng.integers(0, 256, 0 if i % 2 == 0 else int(rng.integers(1, 5000)), dtype=np.uint8)
        return (rng.integers(-2**15, 2**15, (250, 600), dtype=np.int16), rng.standard_normal(3),
                note, tail)

    @staticmethod
    def fields():
        from ..fields import BytesField, JSONField, NDArrayField
        return {'grid': NDArrayField(np.int16, (250, 600)), 'vec': NDArrayField(np.float64, (3,)),
                'note': JSONField(), 'tail': BytesField()}


class _Pages8:
    """5 samples in one 8 MiB page: blobs of 6 MiB, 0, 1 byte, 1.5 MiB and 0, and a label."""

    page_size = 8 * MIB
    sizes = (6 * MIB, 0, 1, 3 * MIB // 2, 0)

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        rng = np.random.default_rng(3000 + int(i))
        return rng.integers(0, 256, self.sizes[int(i)], dtype=np.uint8), int(i) * 7

    @staticmethod
    def fields():
        from ..fields import BytesField, IntField
        return {'blob': BytesField(), 'label': IntField()}


WRITTEN = {'pages_2mib': _Pages2, 'pages_4mib': _Pages4, 'pages_8mib': _Pages8}


@pytest.fixture(scope='session')
def written_betons(tmp_path_factory):
    """``{name: Path}`` of the files the suite writes (see :data:`WRITTEN`)."""
    from ..writer import DatasetWriter
    folder = tmp_path_factory.mktemp('ffcvx-conformance')
    paths = {}
    for name, dataset_class in WRITTEN.items():
        dataset = dataset_class()
        path = folder / f'{name}.beton'
        DatasetWriter(str(path), dataset.fields(), page_size=dataset.page_size, num_workers=1,
                      progress=False).from_indexed_dataset(dataset)
        paths[name] = path
    return paths


# -- helpers -----------------------------------------------------------------------------


def _fail_on(problems, what):
    if problems:
        shown = '\n  '.join(problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ''
        pytest.fail(f"{what}: {len(problems)} regions served wrong:\n  {shown}{more}",
                    pytrace=False)


def _check_every_order(manager, reader, gather_for):
    """Four epochs on one manager: every order, one of them left half-way."""
    table = RegionTable(reader)
    read = manager.compile_reader()
    gather = gather_for(read)
    compared = 0
    epochs = [('SEQUENTIAL', 0, None), ('RANDOM', 0, None), ('RANDOM', 1, 'half'),
              ('RANDOM', 2, None), ('QUASI_RANDOM', 0, None)]
    for order, epoch, early in epochs:
        batches = epoch_batches(reader, order, BATCH_SIZE, seed=17, epoch=epoch)
        stop = max(1, len(batches) // 2) if early else None
        problems, _ = serve_epoch(manager, read, gather, table, batches, stop_after=stop)
        _fail_on(problems, f"{order} epoch {epoch}" + (" (left early)" if early else ""))
        if stop is None:
            compared += table.count
    return compared


def _loader(location, order, cache, options, seed, arrays=True):
    """A Loader over ``pages_2mib`` yielding (index, array, blob), or (index, blob) without ``arrays``.

    ``location`` is ``(fname, storage_options)`` (:func:`ffcvx_location`).
    """
    from ..fields.decoders import BytesDecoder, IntDecoder, NDArrayDecoder
    from ..loader import Loader, OrderOption
    # Each Loader compiles its parallel decoders afresh (about a second each),
    # so a Loader that only needs to add concurrency may skip the arrays.
    fname, storage_options = location
    return Loader(fname, batch_size=BATCH_SIZE, num_workers=2, order=OrderOption[order],
                  seed=seed, drop_last=False, cache=cache, cache_options=options,
                  storage_options=storage_options,
                  pipelines={'index': [IntDecoder()],
                             'array': [NDArrayDecoder()] if arrays else None,
                             'blob': [BytesDecoder()]})


def _check_loader_epoch(loader, table, stop_after=None):
    """Iterate one epoch of a :func:`_loader`; return problems and the samples seen."""
    problems, seen = [], []
    for number, outputs in enumerate(loader):
        if stop_after is not None and number >= stop_after:
            break
        index, parts = outputs[0], dict(zip(('array', 'blob')[-(len(outputs) - 1):], outputs[1:]))
        samples = np.asarray(index).reshape(-1).tolist()
        seen.extend(samples)
        for name, values in parts.items():
            # Raw bytes of each row, whatever the field's dtype.
            rows = np.ascontiguousarray(np.asarray(values)).view(np.uint8).reshape(len(samples), -1)
            k = table.fields.index(name)
            for row, sample in enumerate(samples):
                expected = table.expected[sample][k]
                if not np.array_equal(rows[row, :len(expected)], expected):
                    problems.append(f"batch {number}, sample {sample}: {name!r} differs from "
                                    f"the reader's")
    return problems, seen


def _open_fds():
    try:
        return {name: os.readlink(f'/proc/self/fd/{name}') for name in os.listdir('/proc/self/fd')
                if _readable_link(name)}
    except FileNotFoundError:
        return None  # no /proc: descriptors are not checked


def _readable_link(name):
    try:
        os.readlink(f'/proc/self/fd/{name}')
        return True
    except OSError:
        return False  # the descriptor listdir itself used, already closed


# -- the tests ---------------------------------------------------------------------------


class TestSelection:
    """The strategy is reachable by its registered name and declares its capabilities."""

    def test_reachable_by_registered_name(self, ffcvx_cache, ffcvx_strategy_class,
                                          ffcvx_cache_options, written_betons, ffcvx_location,
                                          ffcvx_reader):
        from ..loader import Loader
        from ..memory_managers import MemoryManager
        from ..memory_managers.select import ENV_VAR, select_strategy, strategy_name

        assert issubclass(ffcvx_strategy_class, MemoryManager), \
            f"{ffcvx_strategy_class!r} does not subclass ffcvx.memory_managers.MemoryManager"
        assert strategy_name(cache=ffcvx_cache)[0] == ffcvx_cache, \
            f"cache={ffcvx_cache!r} resolves to another name; registered names must be lower-case"
        reader = ffcvx_reader(written_betons['pages_8mib'])
        by_argument = select_strategy(reader, cache=ffcvx_cache, options=ffcvx_cache_options)
        by_argument.close()
        by_environment = select_strategy(reader, options=ffcvx_cache_options,
                                         environ={ENV_VAR: ffcvx_cache})
        by_environment.close()
        fname, storage_options = ffcvx_location(written_betons['pages_8mib'])
        with Loader(fname, batch_size=BATCH_SIZE, cache=ffcvx_cache, num_workers=1,
                    cache_options=ffcvx_cache_options, storage_options=storage_options) as loader:
            by_loader = type(loader.memory_manager)
        for how, made in (('cache=', type(by_argument)), (ENV_VAR, type(by_environment)),
                          ('Loader(cache=)', by_loader)):
            assert made is ffcvx_strategy_class, \
                (f"{how}{ffcvx_cache!r} made a {made.__name__}, not the registered "
                 f"{ffcvx_strategy_class.__name__}")

    def test_capabilities_declared(self, ffcvx_strategy_class, ffcvx_cache_options):
        for attribute in ('shared_across_processes', 'needs_server'):
            value = getattr(ffcvx_strategy_class, attribute)
            assert isinstance(value, bool), f"{attribute} must be a bool, got {value!r}"
        scratch = ffcvx_strategy_class.scratch_dir_option
        if scratch is not None:
            parameters = inspect.signature(ffcvx_strategy_class).parameters
            assert scratch in parameters or any(
                p.kind is p.VAR_KEYWORD for p in parameters.values()), \
                f"scratch_dir_option={scratch!r} is not a keyword of the constructor"


class TestBytes:
    """Bytes identical to the spec reader, every sample, every region-owning field, every order."""

    def test_golden_file(self, golden_beton, open_strategy, gather_for, ffcvx_reader):
        from ..reader import Reader
        reader = Reader(str(golden_beton))
        with contextlib.closing(open_strategy(ffcvx_reader(golden_beton))) as manager:
            compared = _check_every_order(manager, reader, gather_for)
        assert compared == 4 * RegionTable(reader).count

    @pytest.mark.parametrize('written', sorted(WRITTEN))
    def test_written_file(self, written, written_betons, open_strategy, gather_for, ffcvx_reader):
        from ..reader import Reader
        reader = Reader(str(written_betons[written]))
        with contextlib.closing(open_strategy(ffcvx_reader(written_betons[written]))) as manager:
            compared = _check_every_order(manager, reader, gather_for)
        assert compared > 0 and compared == 4 * RegionTable(reader).count


class TestLoader:
    """Real Loaders: compiled parallel decoders on two threads, the epoch thread, two at once."""

    def test_two_loaders_at_once(self, ffcvx_cache, ffcvx_cache_options, written_betons,
                                 ffcvx_location):
        """Two Loaders with ``num_workers=2`` on one file, iterated in two threads at once.

        The first Loader's previous epoch was left after two batches, as a
        training loop that breaks out does. (Each Loader compiles its
        decoders afresh, about a second each, so one test does all three.)
        """
        from ..reader import Reader
        path = written_betons['pages_2mib']
        table = RegionTable(Reader(str(path)))
        location = ffcvx_location(path)
        loaders = [_loader(location, 'QUASI_RANDOM', ffcvx_cache, ffcvx_cache_options, seed=3),
                   _loader(location, 'RANDOM', ffcvx_cache, ffcvx_cache_options, seed=9,
                           arrays=False)]
        results = [None, None]
        start = threading.Barrier(2)

        def run(k):
            try:
                start.wait(timeout=TIMEOUT_S)
                results[k] = _check_loader_epoch(loaders[k], table)
            except BaseException as exc:  # reported by the main thread
                results[k] = exc

        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(2)]
        try:
            problems, _ = _check_loader_epoch(loaders[0], table, stop_after=2)
            _fail_on(problems, "QUASI_RANDOM Loader, epoch left early")
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(TIMEOUT_S)
                assert not thread.is_alive(), "a Loader thread did not finish"
        finally:
            for loader in loaders:
                loader.close()
        for k, result in enumerate(results):
            if isinstance(result, BaseException):
                raise result
            problems, seen = result
            _fail_on(problems, f"{('QUASI_RANDOM', 'RANDOM')[k]} Loader, running beside the other")
            assert sorted(seen) == list(range(table.num_samples)), \
                f"Loader {k} did not yield every sample exactly once in its epoch"


class TestProcesses:
    """Strategies that declare ``shared_across_processes``: two processes, one copy, same bytes."""

    def test_two_processes_see_same_bytes(self, ffcvx_cache, ffcvx_strategy_class,
                                          ffcvx_cache_options, open_strategy, written_betons,
                                          gather_for):
        from ..reader import Reader
        if not ffcvx_strategy_class.shared_across_processes:
            pytest.skip("the strategy does not declare shared_across_processes")
        path = written_betons['pages_2mib']
        reader = Reader(str(path))
        table = RegionTable(reader)
        manager = open_strategy(reader)
        try:
            read = manager.compile_reader()
            gather = gather_for(read)
            batches = epoch_batches(reader, 'SEQUENTIAL', BATCH_SIZE, seed=0, epoch=0)
            _fail_on(serve_epoch(manager, read, gather, table, batches)[0], "this process")
            # A second process opens the same file while this one holds it,
            # reads everything, and closes again.
            child = subprocess.run(
                [sys.executable, '-c', 'from ffcvx.testing.regions import main; main()', str(path),
                 ffcvx_cache, json.dumps(ffcvx_cache_options)],
                capture_output=True, text=True, timeout=TIMEOUT_S)
            assert child.returncode == 0, f"the second process failed:\n{child.stderr[-4000:]}"
            report = json.loads(child.stdout.strip().splitlines()[-1])
            assert report['regions'] == table.count
            assert not report['problems'], f"the second process read: {report['problems']}"
            assert report['digest'] == table.digest(), "the second process read other bytes"
            # Its close() must not take the bytes away from this process.
            batches = epoch_batches(reader, 'RANDOM', BATCH_SIZE, seed=0, epoch=1)
            _fail_on(serve_epoch(manager, read, gather, table, batches)[0],
                     "this process, after the other one closed")
        finally:
            manager.close()
        scratch = ffcvx_strategy_class.scratch_dir_option
        if scratch:
            left = sorted(os.listdir(ffcvx_cache_options[scratch]))
            assert not left, f"left in {scratch} after both processes closed: {left}"


class TestClose:
    """``close()`` gives back descriptors, threads and scratch files, and may be called twice."""

    def test_close_releases(self, ffcvx_strategy_class, ffcvx_cache_options, open_strategy,
                            written_betons, gather_for, ffcvx_reader):
        from ..reader import Reader
        reader = Reader(str(written_betons['pages_4mib']))
        table = RegionTable(reader)
        served = ffcvx_reader(written_betons['pages_4mib'])
        gc.collect()
        fds_before = _open_fds()
        threads_before = set(threading.enumerate())
        manager = open_strategy(served)
        read = manager.compile_reader()
        gather = gather_for(read)
        batches = epoch_batches(reader, 'RANDOM', BATCH_SIZE, seed=4, epoch=0)
        _fail_on(serve_epoch(manager, read, gather, table, batches)[0], "before close")
        manager.close()
        manager.close()  # a second close (an exit path after an explicit one) is harmless
        del manager, read
        served.source.close()
        gc.collect()

        scratch = ffcvx_strategy_class.scratch_dir_option
        if scratch:
            left = sorted(os.listdir(ffcvx_cache_options[scratch]))
            assert not left, f"close() left files in the {scratch} folder: {left}"
        lingering = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        assert not lingering, f"threads still running after close(): {lingering}"
        if fds_before is not None:
            leaked = {fd: target for fd, target in _open_fds().items()
                      if fds_before.get(fd) != target}
            assert not leaked, f"file descriptors still open after close(): {leaked}"
