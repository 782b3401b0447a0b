"""What the ``ffcvx`` sub-commands share: the usage error, argument types, writer options."""
import argparse
import os
import time

from ..types import DEFAULT_PAGE_SIZE
from .usage import UsageError

__all__ = ['UsageError', 'add_writer_options', 'human', 'image_field', 'make_writer',
           'positive_int', 'write_indexed', 'write_parts', 'write_summary']


def human(nbytes):
    """``nbytes`` in B, KiB, MiB, ... with one decimal."""
    value = float(nbytes)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return f"{int(value)} {unit}" if unit == 'B' else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} B"


# ---------------------------------------------------------------------------
# argument types: argparse turns their ArgumentTypeError into a usage message (exit 2)

def positive_int(text):
    """An integer >= 1 (also the type of ``--max-resolution`` and ``--chunksize``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _page_size(text):
    from ..writer import check_page_size
    try:
        return check_page_size(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _quality(text):
    value = positive_int(text)
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
# writing

def add_writer_options(parser, write_mode, chunksize=True):
    """The image-encoding and writer options of an ``ffcvx convert`` source.

    ``chunksize=False`` leaves out ``--chunksize`` (a source whose work items
    are fixed, e.g. one per WebDataset shard).
    """
    from ..fields.rgb_image import WRITE_MODES

    group = parser.add_argument_group('image encoding (RGBImageField)')
    group.add_argument('--write-mode', choices=WRITE_MODES, default=write_mode,
                       help=f"how images are stored (default: {write_mode})")
    group.add_argument('--max-resolution', type=positive_int, default=None, metavar='N',
                       help="shrink images whose longest side exceeds N pixels")
    group.add_argument('--jpeg-quality', type=_quality, default=90, metavar='Q',
                       help="JPEG quality 1..100 (default: 90)")
    group.add_argument('--jpeg-passthrough', action='store_true',
                       help="store an input JPEG that needs no shrink byte for byte instead of "
                            "re-encoding it at --jpeg-quality, where the write mode stores a "
                            "JPEG and every decoder reads it (baseline, 8-bit, gray or YCbCr)")
    group.add_argument('--smart-threshold', type=positive_int, default=None, metavar='BYTES',
                       help="smart mode: JPEG when H*W*3 exceeds this, else raw")
    group.add_argument('--compress-probability', type=_probability, default=0.5, metavar='P',
                       help="proportion mode: probability of storing a JPEG (default: 0.5)")
    group = parser.add_argument_group('writer')
    group.add_argument('--page-size', type=_page_size, default=DEFAULT_PAGE_SIZE, metavar='BYTES',
                       help=f"page size, a power of two >= 2 MiB (default: {DEFAULT_PAGE_SIZE})")
    group.add_argument('--num-workers', type=int, default=-1, metavar='N',
                       help="writer processes (default: one per available CPU)")
    if chunksize:
        group.add_argument('--chunksize', type=positive_int, default=100, metavar='N',
                           help="samples per work item (default: 100)")
    group.add_argument('--quiet', action='store_true', help="no progress bar")


def image_field(args):
    """The image field the options in ``args`` describe."""
    from ..fields import GrayscaleImageField, RGBImageField
    options = dict(write_mode=args.write_mode, max_resolution=args.max_resolution,
                   smart_threshold=args.smart_threshold, jpeg_quality=args.jpeg_quality,
                   compress_probability=args.compress_probability,
                   jpeg_passthrough=args.jpeg_passthrough)
    if getattr(args, 'grayscale', False):
        # one channel, as Fashion-MNIST really is (FMT-083); ffcvx readers
        # recognise it by its marker (FMT-087), FFCV 1.0 refuses it
        return GrayscaleImageField(**options)
    return RGBImageField(**options)


def make_writer(path, args):
    """A DatasetWriter of fields ``image`` and ``label`` into ``path``, as ``args`` say.

    Raises
    ------
    UsageError
        If the folder of ``path`` does not exist (checked before any input is
        read, so that a long count or write does not end on it).
    """
    from ..fields import IntField
    from ..writer import DatasetWriter

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise UsageError(f"output directory {directory} does not exist")
    return DatasetWriter(path, {'image': image_field(args), 'label': IntField()},
                         page_size=args.page_size, num_workers=args.num_workers,
                         progress=not args.quiet, seed=getattr(args, 'seed', None))


def write_summary(path, num_samples, seconds):
    """Print the line every converter ends with: samples, file size, time and rate."""
    size = os.path.getsize(path)
    print(f"wrote {path}: {num_samples} samples, {human(size)} in {seconds:.1f} s "
          f"({num_samples / max(seconds, 1e-9):.0f} samples/s)")


def write_indexed(path, dataset, args):
    """Write ``dataset[i] = (image, label)`` for every ``i`` into ``path``: see :func:`write_parts`."""
    write_parts(path, args, lambda writer, part: writer.from_indexed_dataset(
        dataset, chunksize=args.chunksize, part=part))


def write_parts(path, args, write):
    """Write ``path``, or only this process's part of it (``--part``); print the summary.

    Parameters
    ----------
    path : str
        The target file (with ``--part`` it names the merged file).
    args : argparse.Namespace
        The command's options, ``--part``, ``--parts-dir`` and ``--merge`` included.
    write : callable(DatasetWriter, part) -> WriteStats
        Writes the source with ``part=part`` (None or ``(k, K)``).

    Raises
    ------
    UsageError
        If the folder of ``path`` does not exist, or the part options do not fit.
    ffcvx.errors.WriterError
        If a sample cannot be read or stored; the file is then left as it was.
    """
    from .parts import merge_if_asked, written_part
    part_file, done = written_part(args, path)
    if done:
        print(f"part {args.part[0]} of {args.part[1]} is already written: {part_file} (skipped)")
    else:
        target = path if part_file is None else part_file
        writer = make_writer(target, args)
        start = time.perf_counter()
        try:
            stats = write(writer, getattr(args, 'part', None))
        except Exception as failure:
            try:        # with --merge the other processes learn of it instead of waiting
                merge_if_asked(args, path, written=False)
            except Exception:
                pass    # the write's own error is the one to report
            raise failure
        write_summary(target, stats.num_samples, time.perf_counter() - start)
    merge_if_asked(args, path)
