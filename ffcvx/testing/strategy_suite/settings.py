"""What the memory-strategy suite runs on: strategy names, their options, and the fixtures.

The names come from ``--ffcvx-cache``, else the test module's ``FFCVX_CACHES``,
else every registered strategy; options from the module's
``FFCVX_CACHE_OPTIONS``, overridden per name by ``--ffcvx-cache-options``. The
fixtures and :func:`pytest_generate_tests` are imported into
:mod:`ffcvx.testing.strategies`, the module pytest collects.
"""
import pytest

from .. import find_golden_dir, parse_cache_options, server_skip_reason
from ..regions import make_gather

__all__ = ['BATCH_SIZE', 'MIB', 'SHOWN', 'TIMEOUT_S', 'cache_options', 'ffcvx_cache_options',
           'ffcvx_location', 'ffcvx_reader', 'ffcvx_registry', 'ffcvx_strategy_class', 'gather_for',
           'golden_files', 'open_strategy', 'pytest_generate_tests', 'selected_caches',
           'strategy_registry']

#: Samples per batch everywhere in the suite (it bounds the pages one batch needs).
BATCH_SIZE = 4
#: Mismatch lines shown when a test fails.
SHOWN = 10
#: Seconds a Loader thread or child process may take before the test fails.
TIMEOUT_S = 300
MIB = 1 << 20


# -- settings: command line, then the test module, then the registry --------------------


def strategy_registry():
    """The registry of the entry-point group ``ffcvx.caches``."""
    from ...memory_managers.select import GROUP
    from ...registry import Registry
    return Registry(GROUP)


def selected_caches(config, module):
    """Strategy names to run: ``--ffcvx-cache``, else ``module.FFCVX_CACHES``, else all registered."""
    names = config.getoption('ffcvx_cache', default=None)
    if not names:
        names = getattr(module, 'FFCVX_CACHES', None)
    if not names:
        names = strategy_registry().names()
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


def golden_files(config):
    """The golden ``.beton`` files to check: ``--ffcvx-golden-dir``, else the shared folder's."""
    folder = find_golden_dir(config.getoption('ffcvx_golden_dir', default=None))
    return sorted(folder.glob('*.beton')) if folder else []


def pytest_generate_tests(metafunc):
    # A module-level hook: it applies to this module, or to the test module
    # that imports the suite, and to nothing else in the session.
    if 'ffcvx_cache' in metafunc.fixturenames:
        names = selected_caches(metafunc.config, metafunc.module)
        metafunc.parametrize('ffcvx_cache', names, ids=names)
    if 'golden_beton' in metafunc.fixturenames:
        files = golden_files(metafunc.config)
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
    return strategy_registry()


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
    from ...memory_managers.select import select_strategy

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
    from ...reader import Reader

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
