"""Running the suite class in process and collecting one result per check.

:func:`run_suite` runs :class:`~.suite.DecoderBackendTests` (as the module
:mod:`ffcvx.testing.decoders` collects it) through :func:`pytest.main`, with a
:class:`SuiteRun` plugin that hands it the backend object and turns each
test's report into a :class:`CheckResult`. ``ffcvx conformance`` prints those
with :func:`~.table.format_table`; so the command line and ``pytest --pyargs
ffcvx.testing.decoders`` run the same tests.
"""
import importlib.util
import os
from dataclasses import dataclass

from .catalogue import CHECK_NAMES, DETAIL_PROPERTY, clauses_of

__all__ = ['CheckResult', 'SuiteRun', 'run_suite']

#: pytest's exit codes after which the collected results are complete:
#: 0 every test passed or skipped, 1 some failed, 5 ``only`` selected none.
_COMPLETE = (0, 1, 5)


@dataclass
class CheckResult:
    """The outcome of one check.

    Attributes
    ----------
    name : str
        One of :data:`~.catalogue.CHECK_NAMES`.
    status : str
        ``'pass'``, ``'fail'`` or ``'skip'``.
    detail : str
        For a skip its reason, for a failure what went wrong, for a pass a
        summary (what was checked).
    clauses : str
        The BKD clauses the check enforces.
    """

    name: str
    status: str
    detail: str = ''
    clauses: str = ''


def _longrepr_text(report):
    """The last line pytest keeps of a report's outcome (a skip reason, an error)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):          # a skip: (path, line, 'Skipped: reason')
        text = longrepr[2]
        return text[len('Skipped: '):] if text.startswith('Skipped: ') else text
    lines = str(longrepr or '').strip().splitlines()
    return lines[-1] if lines else ''


class SuiteRun:
    """pytest plugin of one in-process run: the backend to check and the results.

    Parameters
    ----------
    backend : object
        The backend object the suite's ``backend`` fixture returns.
    name : str or None
        Its registered name (the corrupt-data child process loads it by name).
    golden_dir : str or os.PathLike or None
        FFCV 1.0.2 golden files; None skips the golden check.
    vectors : Vectors or None
        None: the suite loads the spec vectors ffcvx carries.
    isolate : bool
        Run the corrupt-data decodes in a child process (needs ``name``).
    only : collection of str or None
        Run only these checks; the others are deselected.

    Attributes
    ----------
    results : dict of str to CheckResult
        Filled as the tests report, keyed by check name.
    """

    def __init__(self, backend, name=None, golden_dir=None, vectors=None, isolate=True,
                 only=None):
        self.backend = backend
        self.name = name
        self.golden_dir = golden_dir
        self.vectors = vectors
        self.isolate = isolate
        self.only = None if only is None else set(only)
        self.results = {}
        self._checks = {}          # node id -> check name

    def pytest_collection_modifyitems(self, config, items):
        keep, drop = [], []
        for item in items:
            check = getattr(getattr(item, 'function', None), 'ffcvx_check', None)
            if check is None or (self.only is not None and check not in self.only):
                drop.append(item)
            else:
                self._checks[item.nodeid] = check
                keep.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep

    def pytest_runtest_logreport(self, report):
        check = self._checks.get(report.nodeid)
        if check is None or (report.when != 'call' and report.passed):
            return
        if report.when == 'teardown' and check in self.results:
            return   # the call's outcome stands; a teardown error after it adds nothing here
        detail = next((v for k, v in report.user_properties if k == DETAIL_PROPERTY), None)
        if detail is None:
            detail = _longrepr_text(report)
        status = 'pass' if report.passed else 'skip' if report.skipped else 'fail'
        self.results[check] = CheckResult(check, status, detail, clauses_of(check))

    def ordered(self):
        """The results in the order of :data:`~.catalogue.CHECK_NAMES`."""
        return [self.results[c] for c in CHECK_NAMES if c in self.results]


def run_suite(backend, name=None, golden_dir=None, vectors=None, isolate=True, only=None):
    """Run every check of :data:`~.catalogue.CHECKS` on one backend, in process.

    Parameters
    ----------
    backend : object
        The backend object (what the entry point loads).
    name : str, optional
        Its registered name: checked against ``backend.name`` (BKD-001) and
        used to load it again in the child process of the corrupt-data
        check. Without it that check runs in this process.
    golden_dir : str or os.PathLike, optional
        FFCV 1.0.2 golden files; None skips the golden check.
    vectors : Vectors, optional
        Default: ``Vectors()``, the spec vectors ffcvx carries.
    isolate : bool, default True
        Run the corrupt-data decodes in a child process (needs ``name``).
    only : iterable of str, optional
        Run only these checks (the others are not reported).

    Returns
    -------
    list of CheckResult
        One per check run, in the order of :data:`~.catalogue.CHECKS`.

    Raises
    ------
    RuntimeError
        If pytest could not run the suite (a usage or internal error); the
        message carries pytest's exit code.
    """
    import pytest

    run = SuiteRun(backend, name, golden_dir, vectors, isolate, only)
    module = importlib.util.find_spec('ffcvx.testing.decoders').origin
    # An empty configuration file: the caller's pytest settings (addopts,
    # python_classes, plugins they require) must not change what runs here.
    args = [module, '-c', os.devnull, '--rootdir', os.path.dirname(module),
            '-p', 'no:cacheprovider', '-p', 'no:terminal']
    code = pytest.main(args, plugins=[run])
    if int(code) not in _COMPLETE:
        raise RuntimeError(f"pytest could not run the decoder conformance suite (exit code "
                           f"{int(code)})")
    return run.ordered()
