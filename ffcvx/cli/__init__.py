"""The ``ffcvx`` command line: inspect and write ``.beton`` files.

::

    ffcvx info FILE|URL [--storage-options JSON] [--stats [--label-field NAME]] [--json]
                     [--plot info.png]
    ffcvx convert imagefolder DIR OUT.beton [--write-mode jpg] [--max-resolution N] ...
                     [--part k/K --parts-dir DIR [--seed N]]   (also hf; then ffcvx merge)
    ffcvx convert webdataset SHARDS... OUT.beton [--image-key EXT] [--label-key cls] ...
    ffcvx convert hf DATASET_OR_PARQUET... OUT.beton [--split train] [--image-column image]
                     [--label-column label] ...
    ffcvx convert fashion-mnist OUT_DIR [--source DIR] [--write-mode raw] ...
    ffcvx conformance --backend NAME [--golden-dir DIR] [-v]
    ffcvx clean PATH...          (stale temporary files of killed writes)
    ffcvx merge PART... OUT      (part files joined into one .beton, FMT-092)
    ffcvx show FILE -n 16 -o grid.png [--columns C] [--tile PX] [--decoder PRESET]
                     [--flip] [--views 2] [--pipelines module:function] ...
                     (samples as the model sees them, with index and label)
    ffcvx doctor FILE|URL [--decoder rrc224] [--step-ms MS] [--json] [--plot PNG] ...

Also runs as ``python -m ffcvx`` (or ``python -m ffcvx.cli``). Exit status: 0
on success, 1 when writing fails, 2 for bad arguments, missing inputs, a
missing optional package (the message names the ``pip install 'ffcvx[...]'``),
an invalid ``.beton`` file, or part files that do not match (``merge``).
``conformance``: 0 when no check failed, 1 when one did, 2 when the backend
is unknown or unavailable here (nothing could be checked).

One module per command (``info``, ``convert``, ``clean``, ``conformance``, ``merge``,
``show``, ``doctor``),
each with ``add_parser(commands)``; ``common`` holds what they share, ``parts`` the
``--part`` options of ``convert``.
"""
import argparse
import sys

from ..errors import BetonFormatError, MergeError, WriterError
from ..extras import MissingExtraError
from . import clean, conformance, convert, doctor, info, merge, show
from .common import UsageError

__all__ = ['build_parser', 'main']


def build_parser():
    """The argparse parser of the ``ffcvx`` command."""
    parser = argparse.ArgumentParser(prog='ffcvx', description="Inspect and write .beton files.")
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for module in (info, convert, clean, conformance, merge, show, doctor):
        module.add_parser(commands)
    return parser


def main(argv=None):
    """Run the ``ffcvx`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, BetonFormatError, MergeError, MissingExtraError) as exc:
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
