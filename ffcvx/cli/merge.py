"""``ffcvx merge PART... OUT``: join part files into one ``.beton`` (FMT-092)."""
import os
import time

from .common import UsageError, write_summary

__all__ = ['add_parser', 'run']


def run(args):
    """Merge ``args.parts`` into ``args.out``; print the closing line.

    Raises
    ------
    UsageError
        If a part does not exist or the folder of OUT does not (exit 2).
    ffcvx.errors.MergeError
        If the parts do not match or one is not a valid ``.beton`` (exit 2).
    ffcvx.errors.WriterError
        If writing fails (exit 1); OUT is then left as it was.
    """
    from ..writer.merge import merge
    missing = [part for part in args.parts if not os.path.isfile(part)]
    if missing:
        raise UsageError("no such part file: " + ", ".join(missing))
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(folder):
        raise UsageError(f"the folder of {args.out} does not exist")
    start = time.perf_counter()
    merge(args.parts, args.out)
    from ..reader import Reader
    write_summary(args.out, Reader(args.out).num_samples, time.perf_counter() - start)
    return 0


def add_parser(commands):
    """Add ``merge`` to the sub-command parsers ``commands``."""
    merge = commands.add_parser(
        'merge', help="join part files into one .beton",
        description="Join .beton part files (written with DatasetWriter.from_indexed_dataset(..., "
                    "part=(k, K))) into one .beton, in the order given: part 0 first. The parts' "
                    "pages are copied untouched; only the header and the tables are written "
                    "anew. The parts must have the same fields, field arguments and page size.")
    merge.add_argument('parts', nargs='+', metavar='PART', help="a part file, part 0 first")
    merge.add_argument('out', metavar='OUT', help="the merged .beton (replaced atomically)")
    merge.set_defaults(run=run)
