"""``ffcvx convert SOURCE ...``: write a dataset into ``.beton`` files.

Every source writes the fields ``image`` (:class:`~ffcvx.fields.RGBImageField`,
or gray for ``fashion-mnist --grayscale``) and ``label``
(:class:`~ffcvx.fields.IntField`). Sources of image files (``imagefolder``,
``webdataset``, ``hf``) hand the image field the encoded file (a path or
its bytes), never decoded pixels, so ``--jpeg-passthrough`` can store a JPEG
byte for byte and a shrink can decode at a reduced DCT scale.
"""
import os

from ..errors import WriterError
from .common import UsageError, add_writer_options, write_indexed, write_parts
from .parts import add_part_options

__all__ = ['add_parser']


def _imagefolder(args):
    """One sub-directory of image files per class; the fields read the files."""
    from ..datasets import ImageFolder
    try:
        dataset = ImageFolder(args.source)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    write_indexed(args.output, dataset, args)
    return 0


def _fashion_mnist(args):
    """train.beton and test.beton from the four IDX files (pixels: nothing to pass through)."""
    from ..datasets import FashionMNIST
    os.makedirs(args.output_dir, exist_ok=True)
    for train, name in ((True, 'train'), (False, 'test')):
        try:
            dataset = FashionMNIST(args.source, train=train)
        except (FileNotFoundError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        write_indexed(os.path.join(args.output_dir, f'{name}.beton'), dataset, args)
    return 0


def _webdataset(args):
    """Tar shards in the given order; image members as bytes, labels from text integers."""
    from ..webdataset_images import SampleError, WebDatasetImages, expand_shards
    try:
        shards = expand_shards(args.shards, user='ffcvx convert webdataset')
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    pipeline = WebDatasetImages(args.image_key, args.label_key)

    def write(writer, part):
        try:
            return writer.from_webdataset(shards, pipeline, part=part)
        except WriterError as exc:
            # The writer counts every shard's samples through the same pipeline before it
            # creates any file, so a bad sample stops the write there and leaves nothing.
            if isinstance(exc.__cause__, SampleError):
                raise UsageError(str(exc.__cause__)) from None
            raise

    write_parts(args.output, args, write)
    return 0


def _hf(args):
    """A save_to_disk folder (one split) or Parquet files; image column bytes, integer labels."""
    from ..hf_images import open_images
    try:
        dataset = open_images(args.source, image_column=args.image_column,
                              label_column=args.label_column, split=args.split,
                              user='ffcvx convert hf')
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    write_indexed(args.output, dataset, args)
    return 0


def add_parser(commands):
    """Add ``convert`` and its sources to the sub-command parsers ``commands``."""
    from ..datasets import FASHION_MNIST_ROOT

    convert = commands.add_parser('convert', help="write a .beton file from a dataset",
                                  description="Write a dataset into .beton files.")
    sources = convert.add_subparsers(dest='source_kind', required=True, metavar='SOURCE')

    folder = sources.add_parser('imagefolder', help="one sub-directory of images per class",
                                description="Fields: image (RGBImageField), label (IntField, "
                                            "classes in sorted directory order).")
    folder.add_argument('source', metavar='DIR', help="directory with one sub-directory per class")
    folder.add_argument('output', metavar='OUT.beton', help="file to write")
    add_writer_options(folder, 'jpg')
    add_part_options(folder)
    folder.set_defaults(run=_imagefolder)

    wds = sources.add_parser(
        'webdataset', help="WebDataset tar shards",
        description="Fields: image (RGBImageField) from each sample's image member, label "
                    "(IntField) from its label member (an integer as text). Samples in shard "
                    "order, each shard in tar order. Needs the webdataset package "
                    "(pip install 'ffcvx[webdataset]').")
    wds.add_argument('shards', nargs='+', metavar='SHARDS',
                     help="tar files, or brace patterns as webdataset expands them "
                          "(data-{000..009}.tar); quote them from the shell")
    wds.add_argument('output', metavar='OUT.beton', help="file to write")
    wds.add_argument('--image-key', default=None, metavar='EXT',
                     help="suffix of the image member, alternatives separated by ';' "
                          "(default: the first of jpg, jpeg, png, webp the sample has)")
    wds.add_argument('--label-key', default='cls', metavar='EXT',
                     help="suffix of the label member (default: cls)")
    add_writer_options(wds, 'jpg', chunksize=False)
    add_part_options(wds)
    wds.set_defaults(run=_webdataset)

    hf = sources.add_parser(
        'hf', help="a Hugging Face dataset (save_to_disk) or Parquet files",
        description="Fields: image (RGBImageField) from the image column's encoded bytes (a "
                    "datasets Image feature, image file bytes or paths; never decoded here "
                    "unless the write needs pixels), label (IntField) from an integer or "
                    "ClassLabel column. Needs datasets and pyarrow (pip install 'ffcvx[hf]').")
    hf.add_argument('source', nargs='+', metavar='DATASET_OR_PARQUET',
                    help="a folder written by Dataset.save_to_disk or DatasetDict.save_to_disk; "
                         "or Parquet files, globs of them ('data/train-*.parquet') or folders "
                         "holding them, in row order")
    hf.add_argument('output', metavar='OUT.beton', help="file to write")
    hf.add_argument('--split', default=None, metavar='NAME',
                    help="split of a DatasetDict (default: train)")
    hf.add_argument('--image-column', default='image', metavar='NAME',
                    help="column of the images (default: image)")
    hf.add_argument('--label-column', default='label', metavar='NAME',
                    help="column of the integer labels (default: label)")
    add_writer_options(hf, 'jpg')
    add_part_options(hf)
    hf.set_defaults(run=_hf)

    fmnist = sources.add_parser('fashion-mnist', help="Fashion-MNIST from its IDX files",
                                description="Writes OUT_DIR/train.beton (60,000 samples) and "
                                            "OUT_DIR/test.beton (10,000); fields image "
                                            "(RGBImageField, gray repeated to RGB) and label "
                                            "(IntField).")
    fmnist.add_argument('output_dir', metavar='OUT_DIR', help="directory for train.beton and test.beton")
    fmnist.add_argument('--source', default=FASHION_MNIST_ROOT, metavar='DIR',
                        help=f"directory with the *-ubyte.gz files (default: {FASHION_MNIST_ROOT})")
    add_writer_options(fmnist, 'raw')
    fmnist.add_argument('--grayscale', action='store_true',
                        help="store one-channel images (GrayscaleImageField, an ffcvx extension "
                             "FFCV cannot read) instead of RGB")
    add_part_options(fmnist)
    fmnist.set_defaults(run=_fashion_mnist)
