"""The memory-strategy conformance suite (``ffcvx.testing.strategies``) on ffcvx's own strategies.

The suite's test classes, fixtures and parametrisation hook are imported into
this module, which is how a test module runs it without the plugin (pytest only
honours ``pytest_plugins`` in the rootdir conftest, and a plugin loaded there
would reach every test). The last tests prove the command line a third party
is told to use, and the pieces that decide what runs.
"""
import re
import subprocess
import sys

import pytest

from ffcvx.testing import (SERVER_SKIP_REASON, find_golden_dir, parse_cache_options,
                           server_skip_reason)
from ffcvx.testing.strategies import *  # noqa: F401,F403 - the suite: tests, fixtures, hook
from ffcvx.testing.strategies import TestBytes, TestClose, TestLoader, TestProcesses, TestSelection

#: Strategies the suite checks here (the command line's --ffcvx-cache wins).
FFCVX_CACHES = ['os', 'process', 'shared', 'remote']
#: A process-cache bound below the suite's largest file (about 20 MiB), so pages are evicted.
#: ('remote' reads the local files here; tests/storage/test_remote_conformance.py serves them.)
FFCVX_CACHE_OPTIONS = {'process': {'max_bytes': 12 << 20}, 'remote': {'max_bytes': 12 << 20}}

SUITE_CLASSES = (TestSelection, TestBytes, TestLoader, TestProcesses, TestClose)


def test_suite_is_collected_here(request):
    # The star import above is what puts the suite into this module; if it
    # stopped exporting a class, its tests would silently vanish from `make test`.
    for cls in SUITE_CLASSES:
        assert request.module.__dict__.get(cls.__name__) is cls


def test_documented_command_line(tmp_path):
    """The command in the suite's documentation passes, run from outside the repository.

    No ``-p``: the plugin is a ``pytest11`` entry point of the installed ffcvx.
    """
    command = [sys.executable, '-m', 'pytest',
               '--pyargs', 'ffcvx.testing.strategies', '--ffcvx-cache', 'os', '-q']
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    assert 'failed' not in summary and 'error' not in summary, summary
    assert int(re.search(r'(\d+) passed', summary).group(1)) >= 9, summary
    if find_golden_dir() is not None:
        # The suite finds the golden files from the package, wherever it runs;
        # 'os' declares shared_across_processes, so nothing is skipped.
        assert 'skipped' not in summary, summary


def test_options_must_be_an_object_per_strategy():
    assert parse_cache_options('{"process": {"max_bytes": 1}}') == {'process': {'max_bytes': 1}}
    assert parse_cache_options(None) == {}
    for bad in ('{"process": 1}', '[1]', '{nope'):
        with pytest.raises(ValueError, match='--ffcvx-cache-options'):
            parse_cache_options(bad)


def test_bad_options_are_a_usage_error(tmp_path):
    # -p on top of the registered pytest11 entry point: the plugin loads once (same name).
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-p', 'ffcvx.testing.plugin', '--pyargs',
         'ffcvx.testing.strategies', '--ffcvx-cache-options', '{"os": 3}', '-q'],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 4, result.stdout + result.stderr  # pytest's usage-error status
    assert 'JSON object of objects' in result.stderr


def test_server_strategies_skip_without_options():
    class NeedsServer:
        needs_server = True

    class Local:
        needs_server = False

    assert server_skip_reason(NeedsServer, 'redis', {}) == SERVER_SKIP_REASON
    assert server_skip_reason(NeedsServer, 'redis', {'process': {}}) == SERVER_SKIP_REASON
    assert server_skip_reason(NeedsServer, 'redis', {'redis': {'url': 'redis://x'}}) is None
    assert server_skip_reason(Local, 'os', {}) is None


def test_suite_on_redis_against_a_real_server(tmp_path):
    """Strategy 3 needs a server, so it runs here through the documented command with its URL."""
    import json

    from _redis_server import RedisServer

    server = RedisServer(tmp_path).start()
    try:
        options = json.dumps({'redis': {'url': server.url, 'max_bytes': 12 << 20}})
        result = subprocess.run(
            [sys.executable, '-m', 'pytest', '-p', 'ffcvx.testing.plugin', '--pyargs',
             'ffcvx.testing.strategies', '--ffcvx-cache', 'redis', '--ffcvx-cache-options', options,
             '-q'], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    finally:
        server.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    assert 'failed' not in summary and 'skipped' not in summary, summary
    assert int(re.search(r'(\d+) passed', summary).group(1)) >= 9, summary
