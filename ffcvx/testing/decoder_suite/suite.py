"""``DecoderBackendTests``: the conformance suite as a pytest class a backend subclasses.

A backend distribution checks itself with a test module of three lines::

    from ffcvx.testing.decoders import DecoderBackendTests

    class TestMine(DecoderBackendTests):
        backend_name = "mine"          # its entry-point name in ffcvx.decoders

One test method runs per check of :data:`~.catalogue.CHECKS`, each citing its
BKD clauses (spec/backends.md). What runs is chosen by what the backend
*declares* (``formats``, ``supports_crop``, ``supports_scale``,
``supports_gray``, ``kind``), never by its name: a check that does not apply is
skipped with the reason, as is every check that needs decoding when
``available()`` says no.
"""
import os

import pytest

from .calling import CheckFailed, CheckSkipped, Context
from .catalogue import CHECKS, DETAIL_PROPERTY, clauses_of
from .checks_decode import (check_crop, check_exact_vectors, check_function_address,
                            check_interface, check_jpeg_golden, check_jpeg_vectors, check_layout,
                            check_scale, check_target_ignored)
from .checks_errors import (check_bad_arguments, check_batch, check_capacity, check_corrupt,
                            check_gray, check_threads)
from .inputs import Vectors

__all__ = ['DETAIL_PROPERTY', 'DecoderBackendTests', 'backend_names', 'suite_run_of']



def _option(config, name):
    # The plugin's options exist only when it is loaded (registered, or -p ffcvx.testing.plugin).
    try:
        return config.getoption(name)
    except ValueError:
        return None


def suite_run_of(config):
    """The in-process run of :func:`~.report.run_suite` driving this session, or None.

    It hands the suite a backend *object* (and its inputs) instead of names
    from the command line.
    """
    from .report import SuiteRun

    return next((p for p in config.pluginmanager.get_plugins() if isinstance(p, SuiteRun)), None)


def backend_names(config):
    """Backends to check when a class names none: ``--ffcvx-backend``, else ``FFCVX_BACKEND``.

    Returns
    -------
    list of str
        The names given (``FFCVX_BACKEND`` is comma separated), else every
        name of the entry-point group ``ffcvx.decoders``.
    """
    from ...registry import Registry

    names = _option(config, 'ffcvx_backend')
    if not names:
        names = [n.strip() for n in os.environ.get('FFCVX_BACKEND', '').split(',') if n.strip()]
    return names or Registry('ffcvx.decoders').names()


def _test_of(check, run):
    """The test method of ``check``: ``run(context)`` with its outcome reported to pytest."""
    what = next(w for name, _, w in CHECKS if name == check)

    def test(self, decoder_context, request):
        self.run_check(check, run, decoder_context, request)

    test.__name__ = 'test_' + check.replace('-', '_')
    test.__qualname__ = f'DecoderBackendTests.{test.__name__}'
    test.__doc__ = f"{clauses_of(check)}: {what}."
    #: read by the report plugin (report.py) to name the row of this test
    test.ffcvx_check = check
    return test


class DecoderBackendTests:
    """Conformance tests of one decoder backend (spec/backends.md, section "Conformance").

    Subclass it in a module pytest collects (the subclass's name starting with
    ``Test``) and set :attr:`backend_name`; or leave it None and pass
    ``--ffcvx-backend NAME`` (repeatable; env ``FFCVX_BACKEND``, comma
    separated), default every registered backend. The tests are parametrised
    by backend name (fixture ``ffcvx_backend_name``, class scope).

    Attributes
    ----------
    backend_name : str or None
        Entry-point name in the group ``ffcvx.decoders`` of the backend under test.
    isolate : bool
        Run the corrupt-data decodes in a child process (a crash fails the
        check instead of ending the session).

    Notes
    -----
    Fixtures a subclass may override: ``backend`` (the backend object, by
    default loaded through its entry point), ``golden_dir`` (FFCV 1.0.2
    golden files; by default ``--ffcvx-golden-dir``, env ``FFCVX_GOLDEN_DIR``,
    else ``shared/golden/ffcv-1.0.2``, else that check skips) and
    ``vectors`` (:class:`~.inputs.Vectors`, the spec vectors ffcvx carries).
    """

    backend_name = None
    isolate = True

    def pytest_generate_tests(self, metafunc):
        if 'ffcvx_backend_name' not in metafunc.fixturenames:
            return
        run = suite_run_of(metafunc.config)
        if run is not None:
            names = [run.name]
        elif self.backend_name is not None:
            names = [self.backend_name]
        else:
            names = backend_names(metafunc.config)
        metafunc.parametrize('ffcvx_backend_name', names, scope='class',
                             ids=[name or 'backend' for name in names])

    @pytest.fixture(scope='class')
    @classmethod
    def backend(cls, ffcvx_backend_name, request):
        """The backend under test, loaded through its entry point (BKD-050)."""
        run = suite_run_of(request.config)
        if run is not None:
            return run.backend
        from ...registry import Registry

        return Registry('ffcvx.decoders').get(ffcvx_backend_name)

    @pytest.fixture(scope='class')
    @classmethod
    def golden_dir(cls, request):
        """FFCV 1.0.2 golden files, or None (the golden check then skips, saying so)."""
        run = suite_run_of(request.config)
        if run is not None:
            return run.golden_dir
        from .. import find_golden_dir

        return find_golden_dir(_option(request.config, 'ffcvx_golden_dir')
                               or os.environ.get('FFCVX_GOLDEN_DIR') or None)

    @pytest.fixture(scope='class')
    @classmethod
    def vectors(cls, request):
        """The spec vectors (package data of ``ffcvx.testing``)."""
        run = suite_run_of(request.config)
        if run is not None and run.vectors is not None:
            return run.vectors
        return Vectors()

    @pytest.fixture(scope='class')
    @classmethod
    def decoder_context(cls, backend, ffcvx_backend_name, golden_dir, vectors, request):
        """What every check reads (:class:`~.calling.Context`); calls ``available()`` once."""
        run = suite_run_of(request.config)
        isolate = run.isolate if run is not None else cls.isolate
        return Context(backend, ffcvx_backend_name, golden_dir, vectors, isolate)

    def run_check(self, check, run, context, request):
        """Run one check; its summary, skip reason or failure goes to pytest and the report.

        A skip is ``pytest.skip(reason)``; a failure, including an unexpected
        exception from the backend, is ``pytest.fail`` with the check, its
        clauses and what went wrong.
        """
        try:
            detail = run(context) or ''
        except CheckSkipped as exc:
            request.node.user_properties.append((DETAIL_PROPERTY, str(exc)))
            pytest.skip(str(exc))
        except Exception as exc:  # noqa: BLE001 -- a backend's own exception fails the check too
            detail = str(exc) if isinstance(exc, CheckFailed) else f"{type(exc).__name__}: {exc}"
            request.node.user_properties.append((DETAIL_PROPERTY, detail))
            pytest.fail(f"{context.name or 'backend'} {check} ({clauses_of(check)}): {detail}",
                        pytrace=False)
        request.node.user_properties.append((DETAIL_PROPERTY, detail))

    test_interface = _test_of('interface', check_interface)
    test_function_address = _test_of('function-address', check_function_address)
    test_jpeg_vectors = _test_of('jpeg-vectors', check_jpeg_vectors)
    test_jpeg_golden = _test_of('jpeg-golden', check_jpeg_golden)
    test_png_vectors = _test_of('png-vectors', lambda ctx: check_exact_vectors(ctx, 'png'))
    test_raw_vectors = _test_of('raw-vectors', lambda ctx: check_exact_vectors(ctx, 'raw'))
    test_layout = _test_of('layout', check_layout)
    test_crop = _test_of('crop', check_crop)
    test_scale = _test_of('scale', check_scale)
    test_target_ignored = _test_of('target-ignored', check_target_ignored)
    test_threads = _test_of('threads', check_threads)
    test_capacity = _test_of('capacity', check_capacity)
    test_bad_arguments = _test_of('bad-arguments', check_bad_arguments)
    test_corrupt = _test_of('corrupt', check_corrupt)
    test_gray = _test_of('gray', check_gray)
    test_batch = _test_of('batch', check_batch)
