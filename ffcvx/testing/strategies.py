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

    pytest --pyargs ffcvx.testing.strategies --ffcvx-cache mine
    pytest --pyargs ffcvx.testing.strategies \\
        --ffcvx-cache mine --ffcvx-cache-options '{"mine": {"capacity": 12582912}}'

Without ``--ffcvx-cache`` every registered strategy is checked;
``--ffcvx-golden-dir`` names the golden files. The options come from the
plugin :mod:`ffcvx.testing.plugin`, a ``pytest11`` entry point of ffcvx (from a
source tree that is not installed, add ``-p ffcvx.testing.plugin``); without it
the suite runs with the defaults.

The suite's parts live in :mod:`ffcvx.testing.strategy_suite` (the fixtures
and the choice of strategies, the files it writes, the shared comparisons);
this module holds the test classes and imports the rest, so that pytest finds
the fixtures here.

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

import pytest

from .regions import RegionTable, epoch_batches, serve_epoch
from .strategy_suite.checks import (check_every_order, check_loader_epoch, fail_on, make_loader,
                                    open_fds)
from .strategy_suite.files import WRITTEN, written_betons
# The fixtures and the parametrisation hook must be names of the module pytest
# collects (and of any test module that star-imports it).
from .strategy_suite.settings import (BATCH_SIZE, TIMEOUT_S, ffcvx_cache_options, ffcvx_location,
                                      ffcvx_reader, ffcvx_registry, ffcvx_strategy_class,
                                      gather_for, open_strategy, pytest_generate_tests)
# Names the one-module suite had, importable from here as before.
from .strategy_suite.settings import MIB, SHOWN, cache_options, selected_caches  # noqa: F401

__all__ = ['pytest_generate_tests', 'ffcvx_registry', 'ffcvx_strategy_class',
           'ffcvx_cache_options', 'open_strategy', 'gather_for', 'written_betons',
           'ffcvx_location', 'ffcvx_reader',
           'TestSelection', 'TestBytes', 'TestLoader', 'TestProcesses', 'TestClose']


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
            compared = check_every_order(manager, reader, gather_for)
        assert compared == 4 * RegionTable(reader).count

    @pytest.mark.parametrize('written', sorted(WRITTEN))
    def test_written_file(self, written, written_betons, open_strategy, gather_for, ffcvx_reader):
        from ..reader import Reader
        reader = Reader(str(written_betons[written]))
        with contextlib.closing(open_strategy(ffcvx_reader(written_betons[written]))) as manager:
            compared = check_every_order(manager, reader, gather_for)
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
        loaders = [make_loader(location, 'QUASI_RANDOM', ffcvx_cache, ffcvx_cache_options, seed=3),
                   make_loader(location, 'RANDOM', ffcvx_cache, ffcvx_cache_options, seed=9,
                               arrays=False)]
        results = [None, None]
        start = threading.Barrier(2)

        def run(k):
            try:
                start.wait(timeout=TIMEOUT_S)
                results[k] = check_loader_epoch(loaders[k], table)
            except BaseException as exc:  # reported by the main thread
                results[k] = exc

        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(2)]
        try:
            problems, _ = check_loader_epoch(loaders[0], table, stop_after=2)
            fail_on(problems, "QUASI_RANDOM Loader, epoch left early")
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
            fail_on(problems, f"{('QUASI_RANDOM', 'RANDOM')[k]} Loader, running beside the other")
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
            fail_on(serve_epoch(manager, read, gather, table, batches)[0], "this process")
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
            fail_on(serve_epoch(manager, read, gather, table, batches)[0],
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
        fds_before = open_fds()
        threads_before = set(threading.enumerate())
        manager = open_strategy(served)
        read = manager.compile_reader()
        gather = gather_for(read)
        batches = epoch_batches(reader, 'RANDOM', BATCH_SIZE, seed=4, epoch=0)
        fail_on(serve_epoch(manager, read, gather, table, batches)[0], "before close")
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
            leaked = {fd: target for fd, target in open_fds().items()
                      if fds_before.get(fd) != target}
            assert not leaked, f"file descriptors still open after close(): {leaked}"
