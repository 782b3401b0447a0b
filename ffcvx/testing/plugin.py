"""pytest plugin: command-line options of the conformance suites (memory strategies, decoders).

Registered as the ``pytest11`` entry point ``ffcvx.testing.plugin`` (setup.cfg),
so pytest loads it wherever ffcvx is installed::

    pytest --pyargs ffcvx.testing.strategies --ffcvx-cache mine \\
        --ffcvx-cache-options '{"mine": {"capacity": 1048576}}'
    pytest --pyargs ffcvx.testing.decoders --ffcvx-backend mine

``-p ffcvx.testing.plugin`` still works (and is needed where ffcvx is used from
a source tree without being installed): the entry point has the module's own
name, so pytest finds it registered already and loads it once.

Options
-------
``--ffcvx-cache NAME``
    A strategy to check, by its name in the entry-point group ``ffcvx.caches``;
    repeat it for several. Default: every registered strategy.
``--ffcvx-cache-options JSON``
    Constructor options per strategy name, a JSON object of objects, e.g.
    ``{"redis": {"url": "redis://127.0.0.1:6380/0"}, "process": {"max_bytes": 12582912}}``.
    A strategy that declares ``needs_server = True`` runs only when options
    for it are given.
``--ffcvx-backend NAME``
    A decoder backend to check (:mod:`ffcvx.testing.decoders`), by its name in
    the entry-point group ``ffcvx.decoders``; repeatable. Default: every
    registered backend.
``--ffcvx-golden-dir DIR``
    Folder of FFCV 1.0.2 golden ``.beton`` files; default:
    ``shared/golden/ffcv-1.0.2`` of :func:`ffcvx.testing.shared_dir`
    (``$FFCVX_SHARED``, else ``../shared`` beside the source tree), else those
    tests skip.

The plugin only adds these options and checks the JSON at start-up; the
fixtures and the parametrisation live in the suites themselves
(:mod:`ffcvx.testing.strategies`, :mod:`ffcvx.testing.decoders`), so loading
the plugin changes nothing in test runs that do not collect a suite, and the
suites also run without the plugin (with the defaults above, as the project's
own ``tests/strategies/test_strategy_conformance.py`` does).
"""
import pytest

from . import find_golden_dir, parse_cache_options


def pytest_addoption(parser):
    group = parser.getgroup('ffcvx', 'ffcvx conformance suites (ffcvx.testing)')
    group.addoption('--ffcvx-cache', action='append', dest='ffcvx_cache', default=None,
                    metavar='NAME',
                    help="memory strategy to check, by its name in the entry-point group "
                         "ffcvx.caches; repeatable (default: every registered strategy)")
    group.addoption('--ffcvx-cache-options', dest='ffcvx_cache_options', default=None,
                    metavar='JSON',
                    help="constructor options per strategy, a JSON object of objects, e.g. "
                         "'{\"process\": {\"max_bytes\": 12582912}}'; a strategy that needs a "
                         "server is skipped without them")
    group.addoption('--ffcvx-backend', action='append', dest='ffcvx_backend', default=None,
                    metavar='NAME',
                    help="decoder backend to check (ffcvx.testing.decoders), by its name in the "
                         "entry-point group ffcvx.decoders; repeatable (default: every registered "
                         "backend)")
    group.addoption('--ffcvx-golden-dir', dest='ffcvx_golden_dir', default=None, metavar='DIR',
                    help="folder of FFCV 1.0.2 golden .beton files (default: "
                         "shared/golden/ffcv-1.0.2 next to the ffcvx source tree)")


def pytest_configure(config):
    # Bad values fail at start-up with a usage error, not as a test error
    # repeated for every test of the suite.
    try:
        parse_cache_options(config.getoption('ffcvx_cache_options'))
        golden = config.getoption('ffcvx_golden_dir')
        if golden is not None:
            find_golden_dir(golden)
    except (ValueError, FileNotFoundError) as exc:
        raise pytest.UsageError(str(exc)) from None
