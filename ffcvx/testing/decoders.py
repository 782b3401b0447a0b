"""Conformance suite for decoder backends (entry-point group ``ffcvx.decoders``).

The checks follow ``spec/backends.md`` (section "Conformance") and are chosen
by what a backend *declares* (``formats``, ``supports_crop``,
``supports_scale``, ``supports_gray``, ``kind``), never by its name. Every check of
:data:`CHECKS` ends as ``pass``, ``fail`` or ``skip``; a skip always carries
its reason (a capability not declared, the backend unavailable, no golden
files).

Running it
----------
From the command line (the must-have entry)::

    ffcvx conformance --backend NAME [--golden-dir DIR] [-v]

As a pytest module, one test per (backend, check)::

    pytest --pyargs ffcvx.testing.decoders --ffcvx-backend NAME

``--ffcvx-backend`` (repeatable; default: every registered backend) and
``--ffcvx-golden-dir`` come from the plugin :mod:`ffcvx.testing.plugin`,
registered as a ``pytest11`` entry point; without it, the environment
variables ``FFCVX_BACKEND`` (comma separated) and ``FFCVX_GOLDEN_DIR`` do the
same. In a backend's own tests, subclass :class:`DecoderBackendTests`::

    from ffcvx.testing.decoders import DecoderBackendTests

    class TestMine(DecoderBackendTests):
        backend_name = "mine"

From Python, on a backend object (the results the command line prints)::

    from ffcvx.testing.decoders import run_suite
    results = run_suite(backend_object)

Inputs
------
The spec vectors, package data of this package (``ffcvx/testing/vectors``),
so an installed ffcvx has them too; FFCV 1.0.2's golden JPEG files when found
(``shared/golden/ffcv-1.0.2``); one-component JPEGs and PNGs the gray check
makes itself (:func:`gray_inputs`). See :mod:`ffcvx.testing.decoder_suite`
for the modules behind this one.
"""
from .decoder_suite.calling import CheckFailed, CheckSkipped
from .decoder_suite.catalogue import CHECK_NAMES, CHECKS
from .decoder_suite.checks_decode import SCALED_MEAN
from .decoder_suite.checks_errors import (THREADS, TIMEOUT_S, corrupt_child, corrupt_report,
                                          gray_corrupt_report)
from .decoder_suite.inputs import (GRAY_SHAPES, Vectors, corrupt_inputs, golden_jpegs, gray_inputs,
                                   vectors_dir)
from .decoder_suite.report import CheckResult, run_suite
from .decoder_suite.suite import DecoderBackendTests
from .decoder_suite.table import format_table

__all__ = ['CHECKS', 'CHECK_NAMES', 'CheckFailed', 'CheckResult', 'CheckSkipped',
           'DecoderBackendTests', 'GRAY_SHAPES', 'SCALED_MEAN', 'THREADS', 'TIMEOUT_S', 'Vectors',
           'corrupt_inputs', 'corrupt_report', 'format_table', 'golden_jpegs',
           'gray_corrupt_report', 'gray_inputs', 'run_suite', 'vectors_dir']

# The names these had when the suite was one module (scripts and child
# processes written against it still import them).
_golden_jpegs = golden_jpegs
_corrupt_child = corrupt_child


class TestDecoderBackend(DecoderBackendTests):
    """The suite on the backends named by ``--ffcvx-backend`` (default: every registered one).

    What ``pytest --pyargs ffcvx.testing.decoders`` and :func:`run_suite` collect.
    """
