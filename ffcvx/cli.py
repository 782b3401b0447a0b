"""The ``ffcvx`` command line: inspect and write ``.beton`` files.

::

    ffcvx info FILE|URL [--storage-options JSON]
    ffcvx convert imagefolder DIR OUT.beton [--write-mode jpg] [--max-resolution N] ...
    ffcvx convert fashion-mnist OUT_DIR [--source DIR] [--write-mode raw] ...
    ffcvx conformance --backend NAME [--golden-dir DIR] [-v]
    ffcvx clean PATH...          (stale temporary files of killed writes)

Also runs as ``python -m ffcvx``. Exit status: 0 on success, 1 when writing
fails, 2 for bad arguments, missing inputs or an invalid ``.beton`` file.
``conformance``: 0 when no check failed, 1 when one did, 2 when the backend is
unknown or unavailable here (nothing could be checked).
"""
import argparse
import os
import sys
import time

import numpy as np

from .errors import BetonFormatError, WriterError
from .types import CUSTOM_TYPE_ID, DEFAULT_PAGE_SIZE, FieldDescType, HeaderType

__all__ = ['main']


class _UsageError(Exception):
    """A problem with the user's input that needs a message, not a traceback (exit 2)."""


# ---------------------------------------------------------------------------
# ffcvx info

def _human(nbytes):
    value = float(nbytes)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return f"{int(value)} {unit}" if unit == 'B' else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"


def _range(values):
    if values.size == 0:
        return 'none'
    low, high = values.min(), values.max()
    return f"{low}" if low == high else f"{low}..{high}"


def _region_sizes(reader, ptrs):
    """Stored size of the region at each ptr, from the allocation table (FMT-050)."""
    ptrs = np.asarray(ptrs, dtype=np.uint64)
    if ptrs.size == 0 or reader.region_ptrs.size == 0:
        return np.zeros(ptrs.shape, dtype=np.uint64)
    pos = np.clip(np.searchsorted(reader.region_ptrs, ptrs), 0, reader.region_ptrs.size - 1)
    return reader.region_sizes[pos]


def _field_stats(reader, index, handler):
    """One-line summaries of field ``index``'s values, from the metadata alone."""
    from .fields import BytesField, FloatField, ImageField, IntField, NDArrayField
    from .fields.rgb_image import IMAGE_MODES

    column = reader.metadata[f'f{index}']
    n = reader.num_samples
    lines = []
    # RGB and gray fields share the 13-byte record (FMT-036, FMT-083).
    if isinstance(handler, ImageField) and column.dtype.names:
        names = {v: k for k, v in IMAGE_MODES.items()}
        modes, counts = np.unique(column['mode'], return_counts=True)
        lines.append('modes: ' + ', '.join(f"{names.get(int(m), f'unknown {int(m)}')} {int(c)}"
                                           for m, c in zip(modes, counts)))
        lines.append(f"width {_range(column['width'])} px, height {_range(column['height'])} px")
        sizes = _region_sizes(reader, column['data_ptr'])
        if n:
            lines.append(f"stored bytes per image {_range(sizes)} (total {_human(int(sizes.sum()))}, "
                         f"mean {sizes.mean():.0f})")
    elif isinstance(handler, BytesField) and column.dtype.names:
        sizes = column['size']
        if n:
            lines.append(f"bytes per sample {_range(sizes)} (total {_human(int(sizes.sum()))}), "
                         f"{int((sizes == 0).sum())} empty")
    elif isinstance(handler, NDArrayField):
        lines.append(f"dtype {handler.dtype.str}, shape {tuple(handler.shape)}, "
                     f"{handler.element_size} bytes per sample")
    elif isinstance(handler, IntField):
        if n:
            lines.append(f"values {_range(column)}, {np.unique(column).size} distinct")
    elif isinstance(handler, FloatField):
        finite = column[np.isfinite(column)]
        if n:
            lines.append(f"finite values {_range(finite)}; {int(np.isnan(column).sum())} NaN, "
                         f"{int(np.isinf(column).sum())} infinite")
    return lines


def _field_kind(type_id, arguments, handler):
    """How ``ffcvx info`` names a field: its class, and for type id 255 whether ffcvx knows it."""
    from .fields import TYPE_ID_HANDLER, extension_field_class

    if type_id not in TYPE_ID_HANDLER:
        kind = 'unknown'
    else:
        kind = 'custom' if type_id == CUSTOM_TYPE_ID else TYPE_ID_HANDLER[type_id].__name__
    if type_id == CUSTOM_TYPE_ID and type(handler) is extension_field_class(arguments):
        # a marked ffcvx extension (FMT-087): name the class, not just "custom"
        return f"{type(handler).__name__} (type id {type_id}, ffcvx extension)"
    return (f"{kind} (type id {type_id})"
            + (f", read as {type(handler).__name__}" if type(handler).__name__ != kind else ""))


def _cmd_info(args):
    import json

    from .reader import Reader
    from .storage import is_url

    path = args.file
    try:
        options = json.loads(args.storage_options) if args.storage_options else None
    except ValueError as exc:
        raise _UsageError(f"--storage-options is not JSON: {exc}") from None
    if options is not None and not isinstance(options, dict):
        raise _UsageError("--storage-options must be a JSON object, e.g. '{\"anon\": true}'")
    if not is_url(path) and not os.path.exists(path):
        raise _UsageError(f"{path}: no such file")
    reader = Reader(path, storage_options=options)
    header = reader.header
    # As stored, type ids included (the reader's handlers may be other classes).
    descriptors = reader.field_descriptors
    n, ps = reader.num_samples, reader.page_size
    table_ptr = int(header['alloc_table_ptr'])
    meta_start = HeaderType.itemsize + FieldDescType.itemsize * reader.num_fields
    meta_end = meta_start + n * reader.metadata_type.itemsize
    pages = 0 if table_ptr <= meta_end else (table_ptr - reader.data_region_start) // ps
    table = reader.alloc_table
    used = np.unique(table['ptr'][table['size'] > 0] // np.uint64(ps))
    out = [
        f"file:              {path} ({_human(reader.file_size)}, {reader.file_size} bytes)",
        f"format version:    {int(header['version'])}",
        f"samples:           {n}",
        f"page size:         {ps} bytes ({_human(ps)})",
        f"pages:             {pages} written, {used.size} holding data",
        f"metadata:          bytes {meta_start}..{meta_end} ({reader.metadata_type.itemsize} per sample)",
        "data region:       " + (f"bytes {reader.data_region_start}..{table_ptr}" if pages else "none"),
        f"allocation table:  at {table_ptr}, {table.size} records",
        f"fields:            {reader.num_fields}",
    ]
    for index, name in enumerate(reader.field_names):
        handler = reader.handlers[name]
        kind = _field_kind(int(descriptors['type_id'][index]), descriptors['arguments'][index],
                           handler)
        out.append(f"  [{index}] {name}: {kind}")
        out.extend(f"        {line}" for line in _field_stats(reader, index, handler))
    print('\n'.join(out))
    return 0


# ---------------------------------------------------------------------------
# ffcvx convert

def _image_field(args):
    from .fields import GrayscaleImageField, RGBImageField
    if getattr(args, 'grayscale', False):
        # one channel, as Fashion-MNIST really is (FMT-083); ffcvx readers
        # recognise it by its marker (FMT-087), FFCV 1.0 refuses it
        return GrayscaleImageField(
            write_mode=args.write_mode, max_resolution=args.max_resolution,
            smart_threshold=args.smart_threshold, jpeg_quality=args.jpeg_quality,
            compress_probability=args.compress_probability)
    return RGBImageField(write_mode=args.write_mode, max_resolution=args.max_resolution,
                         smart_threshold=args.smart_threshold, jpeg_quality=args.jpeg_quality,
                         compress_probability=args.compress_probability)


def _write(path, dataset, args):
    from .fields import IntField
    from .writer import DatasetWriter

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise _UsageError(f"output directory {directory} does not exist")
    writer = DatasetWriter(path, {'image': _image_field(args), 'label': IntField()},
                           page_size=args.page_size, num_workers=args.num_workers,
                           progress=not args.quiet)
    start = time.perf_counter()
    writer.from_indexed_dataset(dataset, chunksize=args.chunksize)
    seconds = time.perf_counter() - start
    size = os.path.getsize(path)
    print(f"wrote {path}: {len(dataset)} samples, {_human(size)} in {seconds:.1f} s "
          f"({len(dataset) / max(seconds, 1e-9):.0f} samples/s)")


def _cmd_imagefolder(args):
    from .datasets import ImageFolder
    try:
        dataset = ImageFolder(args.source)
    except (FileNotFoundError, ValueError) as exc:
        raise _UsageError(str(exc)) from None
    _write(args.output, dataset, args)
    return 0


def _cmd_fashion_mnist(args):
    from .datasets import FashionMNIST
    os.makedirs(args.output_dir, exist_ok=True)
    for train, name in ((True, 'train'), (False, 'test')):
        try:
            dataset = FashionMNIST(args.source, train=train)
        except (FileNotFoundError, ValueError) as exc:
            raise _UsageError(str(exc)) from None
        _write(os.path.join(args.output_dir, f'{name}.beton'), dataset, args)
    return 0


def _add_writer_options(parser, write_mode):
    from .fields.rgb_image import WRITE_MODES

    group = parser.add_argument_group('image encoding (RGBImageField)')
    group.add_argument('--write-mode', choices=WRITE_MODES, default=write_mode,
                       help=f"how images are stored (default: {write_mode})")
    group.add_argument('--max-resolution', type=_positive_int, default=None, metavar='N',
                       help="shrink images whose longest side exceeds N pixels")
    group.add_argument('--jpeg-quality', type=_quality, default=90, metavar='Q',
                       help="JPEG quality 1..100 (default: 90)")
    group.add_argument('--smart-threshold', type=_positive_int, default=None, metavar='BYTES',
                       help="smart mode: JPEG when H*W*3 exceeds this, else raw")
    group.add_argument('--compress-probability', type=_probability, default=0.5, metavar='P',
                       help="proportion mode: probability of storing a JPEG (default: 0.5)")
    group = parser.add_argument_group('writer')
    group.add_argument('--page-size', type=_page_size, default=DEFAULT_PAGE_SIZE, metavar='BYTES',
                       help=f"page size, a power of two >= 2 MiB (default: {DEFAULT_PAGE_SIZE})")
    group.add_argument('--num-workers', type=int, default=-1, metavar='N',
                       help="writer processes (default: one per available CPU)")
    group.add_argument('--chunksize', type=_positive_int, default=100, metavar='N',
                       help="samples per work item (default: 100)")
    group.add_argument('--quiet', action='store_true', help="no progress bar")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _page_size(text):
    from .writer import check_page_size
    try:
        return check_page_size(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _quality(text):
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"must be in 1..100, got {value}")
    return value


def _probability(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in 0..1, got {value}")
    return value


# ---------------------------------------------------------------------------
# ffcvx conformance

def _cmd_conformance(args):
    """Run the decoder conformance suite on ``args.backend``; 0 pass, 1 fail, 2 unavailable (BKD-061)."""
    from .errors import BackendNotFoundError
    from .registry import Registry
    from .testing import find_golden_dir
    from .testing.decoders import format_table, run_suite

    registry = Registry('ffcvx.decoders')
    try:
        backend = registry.get(args.backend)
    except BackendNotFoundError as exc:
        raise _UsageError(str(exc)) from None
    try:
        golden = find_golden_dir(args.golden_dir)
    except FileNotFoundError as exc:
        raise _UsageError(str(exc).replace('--ffcvx-golden-dir', '--golden-dir')) from None
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


def _cmd_clean(args):
    """Remove the temporary files that killed writers left for each target (or folder).

    A PATH that does not exist is fine while some writer's temporary file of
    it does (a first write was killed). One with neither, a typo or a wrong
    folder, is reported on stderr and makes the exit status 2, after the
    other paths were cleaned (as ``rm`` does), so that a script does not
    take "nothing found" for "cleaned".
    """
    from .writer import temp
    removed = kept = 0
    missing = []
    for target in args.paths:
        if not os.path.lexists(target) and not temp.temps_of(target):
            missing.append(target)
            continue
        stale = set(temp.stale_temps(target))
        for path, parsed in temp.temps_of(target):
            if path not in stale:
                kept += 1
                print(f"kept {path} (its writer, pid {parsed.pid}, is running, ran on another "
                      f"host, or belongs to another user)")
                continue
            try:
                size = os.path.getsize(path)
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                kept += 1
                print(f"kept {path}: cannot remove it ({exc})")
                continue
            removed += 1
            print(f"removed {path} ({_human(size)})")
    print(f"{removed} stale temporary file(s) removed, {kept} of running writers kept")
    if missing:
        raise _UsageError("; ".join(
            f"{target}: no such file or folder, and no temporary file of a write to it"
            for target in missing))
    return 0


def build_parser():
    """The argparse parser of the ``ffcvx`` command."""
    from .datasets import FASHION_MNIST_ROOT

    parser = argparse.ArgumentParser(prog='ffcvx', description="Inspect and write .beton files.")
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

    info = commands.add_parser('info', help="describe a .beton file",
                               description="Validate a .beton file and print its layout and "
                                           "per-field statistics.")
    info.add_argument('file', help="path or URL (s3://, gs://, az://, http(s)://, any fsspec "
                                   "protocol) of the .beton file")
    info.add_argument('--storage-options', metavar='JSON', default=None,
                      help="options of the URL's filesystem, fsspec's keys, as a JSON object, "
                           "e.g. '{\"endpoint_url\": \"http://127.0.0.1:9000\"}'")
    info.set_defaults(run=_cmd_info)

    convert = commands.add_parser('convert', help="write a .beton file from a dataset",
                                  description="Write a dataset into .beton files.")
    sources = convert.add_subparsers(dest='source_kind', required=True, metavar='SOURCE')

    folder = sources.add_parser('imagefolder', help="one sub-directory of images per class",
                                description="Fields: image (RGBImageField), label (IntField, "
                                            "classes in sorted directory order).")
    folder.add_argument('source', metavar='DIR', help="directory with one sub-directory per class")
    folder.add_argument('output', metavar='OUT.beton', help="file to write")
    _add_writer_options(folder, 'jpg')
    folder.set_defaults(run=_cmd_imagefolder)

    fmnist = sources.add_parser('fashion-mnist', help="Fashion-MNIST from its IDX files",
                                description="Writes OUT_DIR/train.beton (60,000 samples) and "
                                            "OUT_DIR/test.beton (10,000); fields image "
                                            "(RGBImageField, gray repeated to RGB) and label "
                                            "(IntField).")
    fmnist.add_argument('output_dir', metavar='OUT_DIR', help="directory for train.beton and test.beton")
    fmnist.add_argument('--source', default=FASHION_MNIST_ROOT, metavar='DIR',
                        help=f"directory with the *-ubyte.gz files (default: {FASHION_MNIST_ROOT})")
    _add_writer_options(fmnist, 'raw')
    fmnist.add_argument('--grayscale', action='store_true',
                        help="store one-channel images (GrayscaleImageField, an ffcvx extension "
                             "FFCV cannot read) instead of RGB")
    fmnist.set_defaults(run=_cmd_fashion_mnist)

    clean = commands.add_parser(
        'clean', help="remove temporary files that killed writes left behind",
        description="Remove the hidden temporary files (.NAME.ffcvx-*.tmp) that writers of "
                    "each target left when they were killed (SIGKILL, power loss). A file of a "
                    "writer that is still running (same pid and process start time), or one "
                    "made on another host, is kept. The targets themselves are never touched.")
    clean.add_argument('paths', nargs='+', metavar='PATH',
                       help="a .beton path (need not exist while a temporary file of a write to "
                            "it does) or a folder (every target in it); a PATH with neither "
                            "is an error (exit status 2)")
    clean.set_defaults(run=_cmd_clean)

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
    conf.set_defaults(run=_cmd_conformance)
    return parser


def main(argv=None):
    """Run the ``ffcvx`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (_UsageError, BetonFormatError) as exc:
        print(f"ffcvx: error: {exc}", file=sys.stderr)
        return 2
    except WriterError as exc:
        print(f"ffcvx: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ffcvx: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ffcvx: interrupted", file=sys.stderr)
        return 130
