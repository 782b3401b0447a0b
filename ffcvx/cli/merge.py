"""``ffcvx merge PART... OUT [--storage-options JSON]``: join part files (FMT-092)."""
import json
import os
import time

from .common import UsageError, human

__all__ = ['add_parser', 'run']


def _storage_options(text):
    try:
        options = json.loads(text) if text else None
    except ValueError as exc:
        raise UsageError(f"--storage-options is not JSON: {exc}") from None
    if options is not None and not isinstance(options, dict):
        raise UsageError("--storage-options must be a JSON object, e.g. "
                         "'{\"endpoint_url\": \"http://127.0.0.1:9000\"}'")
    return options


def run(args):
    """Merge ``args.parts`` into ``args.out``; print the closing line.

    Raises
    ------
    UsageError
        If a local part does not exist, the folder of a local OUT does not,
        or ``--storage-options`` is not a JSON object (exit 2).
    ffcvx.errors.MergeError
        If the parts do not match, one is not a valid ``.beton``, a URL part
        does not exist, or an ``s3://`` OUT's parts are not in its bucket (exit 2).
    ffcvx.errors.WriterError
        If writing fails (exit 1); OUT is then left as it was.
    """
    from ..storage import is_url, local_path
    from ..writer.merge import merge
    options = _storage_options(args.storage_options)
    missing = [part for part in args.parts if not is_url(part) and
               not os.path.isfile(local_path(part))]
    if missing:
        raise UsageError("no such part file: " + ", ".join(missing))
    if not is_url(args.out):
        if not os.path.isdir(os.path.dirname(os.path.abspath(local_path(args.out)))):
            raise UsageError(f"the folder of {args.out} does not exist")
    start = time.perf_counter()
    merge(args.parts, args.out, storage_options=options)
    seconds = time.perf_counter() - start
    from ..reader import Reader
    reader = Reader(args.out, storage_options=options if is_url(args.out) else None)
    print(f"wrote {args.out}: {reader.num_samples} samples, {human(reader.file_size)} in "
          f"{seconds:.1f} s ({reader.num_samples / max(seconds, 1e-9):.0f} samples/s)")
    return 0


def add_parser(commands):
    """Add ``merge`` to the sub-command parsers ``commands``."""
    merge = commands.add_parser(
        'merge', help="join part files into one .beton",
        description="Join .beton part files (written with DatasetWriter.from_indexed_dataset(..., "
                    "part=(k, K))) into one .beton, in the order given: part 0 first. The parts' "
                    "pages are copied untouched; only the header and the tables are written "
                    "anew. The parts must have the same fields, field arguments and page size. "
                    "Parts and OUT may be URLs: an s3:// OUT is composed in the store from parts "
                    "in its bucket (no page passes through this machine); other URLs are "
                    "streamed through it.")
    merge.add_argument('parts', nargs='+', metavar='PART',
                       help="a part file or URL, part 0 first")
    merge.add_argument('out', metavar='OUT',
                       help="the merged .beton, path or URL (replaced atomically)")
    merge.add_argument('--storage-options', metavar='JSON', default=None,
                       help="options of the URLs' filesystem (fsspec's keys: key, secret, "
                            "endpoint_url, client_kwargs, ...) as a JSON object")
    merge.set_defaults(run=run)
