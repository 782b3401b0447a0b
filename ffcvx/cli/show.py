"""``ffcvx show FILE -n 16 -o grid.png``: a grid of samples as the model sees them.

The samples go through the pipeline of the shared Loader options
(:mod:`.loader_options`: a preset or ``--pipelines module:function``) and are
drawn by :func:`ffcvx.sample_grid.show`, each with its index and label.
"""
import os

from .common import UsageError, positive_int
from .loader_options import add_loader_options, recipe_from_args

__all__ = ['add_parser', 'run']


def add_parser(commands):
    """Add ``show`` to the sub-command parsers ``commands``."""
    parser = commands.add_parser(
        'show', help="draw a grid of samples as the model sees them",
        description="Draw samples after the image pipeline (normalised tensors mapped back), "
                    "each with its index and label, several views side by side, into an image.")
    parser.add_argument('-n', type=int, default=16, metavar='N', help="samples (default 16)")
    parser.add_argument('-o', '--output', required=True, metavar='IMAGE',
                        help="the grid image to write, e.g. grid.png")
    parser.add_argument('--columns', type=positive_int, default=None, help="cells per row")
    parser.add_argument('--tile', type=positive_int, default=None, metavar='PX',
                        help="side of each view's square, pixels (default: the largest image "
                             "side, 96..256)")
    parser.add_argument('--class-names', default=None, metavar='NAMES|DIR',
                        help="names printed after the labels: comma-separated, or the folder "
                             "'convert imagefolder' read (its sub-folders, sorted)")
    add_loader_options(parser, batch_size=16)
    parser.set_defaults(run=run)


def _check_output(path):
    from PIL import Image

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{path}: no folder {folder}")
    extension = os.path.splitext(path)[1].lower()
    if extension not in Image.registered_extensions():
        raise UsageError(f"{path}: unknown image type {extension or '(no extension)'!r}; "
                         f"use e.g. .png or .jpg")


def _class_names(text):
    if text is None:
        return None
    if os.path.isdir(text):
        return sorted(e.name for e in os.scandir(text) if e.is_dir())
    return [name.strip() for name in text.split(',')]


def run(args):
    """Write the grid; return 0."""
    from ..sample_grid import show

    if args.n < 1:
        raise UsageError(f"-n must be at least 1, got {args.n}")
    _check_output(args.output)
    recipe = recipe_from_args(args)
    # drop_last=False: a file smaller than one batch still shows its samples
    try:
        loader = recipe.loader(drop_last=False)
    except ValueError as exc:  # pipelines the Loader refuses (e.g. a --pipelines function's)
        raise UsageError(f"cannot make a Loader of {args.file}: {exc}") from None
    try:
        label = recipe.label_field if recipe.label_field in loader.graph.output_names else None
        try:
            grid, layout = show(loader, n=args.n, columns=args.columns, tile=args.tile,
                                label_output=label, class_names=_class_names(args.class_names),
                                return_layout=True)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    finally:
        loader.close()
    grid.save(args.output)
    print(f"{args.output}: {grid.width}x{grid.height} px, {len(layout.cells)} samples of "
          f"{args.file} ({', '.join(layout.image_outputs)}), {layout.columns} per row")
    return 0
