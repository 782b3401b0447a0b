"""``ffcvx conformance --backend NAME``: the decoder conformance suite on one backend (BKD-061).

It runs the same tests as ``pytest --pyargs ffcvx.testing.decoders --ffcvx-backend NAME``
(the class :class:`~ffcvx.testing.decoders.DecoderBackendTests`), in process through
``pytest.main`` with a plugin that collects one result per check
(:func:`~ffcvx.testing.decoders.run_suite`), and prints them as a table.
"""
from .common import UsageError

__all__ = ['add_parser', 'run']


def run(args):
    """Run the decoder conformance suite on ``args.backend``; 0 pass, 1 fail, 2 unavailable (BKD-061)."""
    from ..errors import BackendNotFoundError
    from ..extras import MissingExtraError, require
    from ..registry import Registry
    from ..testing import find_golden_dir

    try:
        # The suite is a pytest class; this command runs it through pytest.main.
        require('pytest', 'test', 'ffcvx conformance')
    except MissingExtraError as exc:
        raise UsageError(str(exc)) from None
    from ..testing.decoders import format_table, run_suite

    registry = Registry('ffcvx.decoders')
    try:
        backend = registry.get(args.backend)
    except BackendNotFoundError as exc:
        raise UsageError(str(exc)) from None
    try:
        golden = find_golden_dir(args.golden_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc).replace('--ffcvx-golden-dir', '--golden-dir')) from None
    results = run_suite(backend, name=args.backend, golden_dir=golden)
    try:
        ok, why = backend.available()
    except Exception as exc:  # noqa: BLE001 -- the suite reports it as a failed interface check
        ok, why = False, f"available() raised {type(exc).__name__}: {exc}"
    if not ok:
        # The first line is exactly 'unavailable: <reason>' so that scripts can match it.
        print(f"unavailable: {why}")
    print(f"decoder backend {args.backend!r}: {backend!r}")
    print(format_table(results, verbose=args.verbose))
    if any(r.status == 'fail' for r in results):
        return 1
    return 0 if ok else 2


def add_parser(commands):
    """Add ``conformance`` to the sub-command parsers ``commands``."""
    conf = commands.add_parser(
        'conformance', help="check a decoder backend against spec/backends.md",
        description="Run the decoder conformance suite (ffcvx.testing.decoders) on one backend "
                    "of the entry-point group ffcvx.decoders and print one row per check: pass, "
                    "fail or skip (with the reason). Exit status: 0 when no check failed, 1 "
                    "when one did, 2 when the backend is unknown (the registered ones are "
                    "listed) or unavailable here (the first line printed is then "
                    "'unavailable: <reason>', followed by the table of skips).")
    conf.add_argument('--backend', required=True, metavar='NAME',
                      help="registered name of the decoder backend, e.g. turbojpeg")
    conf.add_argument('--golden-dir', default=None, metavar='DIR',
                      help="folder of FFCV 1.0.2 golden .beton files (default: "
                           "shared/golden/ffcv-1.0.2 next to the ffcvx source tree, if found)")
    conf.add_argument('-v', '--verbose', action='store_true',
                      help="also show what each passed check covered")
    conf.set_defaults(run=run)
