"""Disk hygiene for the whole suite (``tests/`` and ``backends/``).

The suite writes about 2 GB of ``.beton`` files, copies and caches into pytest's
temporary folders; kept to the end, that filled the disk of a CI machine with
little free space. Each test's ``tmp_path`` goes when the test passes
(``tmp_path_retention_policy`` in setup.cfg), and the folders a module's
fixtures made with ``tmp_path_factory.mktemp`` go when the module ends with no
failure, so the peak is one module's files per worker. Failed modules keep
theirs for inspection.
"""
import shutil

import pytest

_FAILED_MODULES = pytest.StashKey[set]()


def pytest_configure(config):
    config.stash[_FAILED_MODULES] = set()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        item.config.stash[_FAILED_MODULES].add(item.module.__name__)
    return report


@pytest.fixture(scope='module', autouse=True)
def _remove_module_temp_folders(request, tmp_path_factory):
    # Autouse and module-scoped: set up before, and torn down after, every
    # other fixture of the module, so nothing still uses the folders removed.
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    yield
    if request.module.__name__ in request.config.stash[_FAILED_MODULES]:
        return
    for folder in set(base.iterdir()) - before:
        shutil.rmtree(folder, ignore_errors=True)
