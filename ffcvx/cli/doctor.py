"""``ffcvx doctor FILE``: where a Loader's time goes on this machine, and what would help most.

::

    ffcvx doctor FILE|URL [--decoder rrc224] [--flip] [--pipelines MODULE:FUNCTION]
                 [--batch-size 64] [--workers N] [--order random] [--cache NAME]
                 [--step-ms MS] [--batches N] [--max-workers N] [--json] [--plot PNG] [--brief]
"""
import json

from .common import UsageError, positive_int
from .loader_options import add_loader_options, recipe_from_args

__all__ = ['add_parser']


def add_parser(commands):
    parser = commands.add_parser(
        'doctor', help="measure a Loader's stages and name what bounds it",
        description="Time storage, decoding and each augmentation step with the compiled "
                    "pipelines, the loader at 1..N workers, and name the bound with the one "
                    "change that helps most.")
    add_loader_options(parser, to_tensor=True)
    group = parser.add_argument_group('doctor')
    group.add_argument('--no-to-tensor', dest='to_tensor', action='store_false',
                       help="end with the augmentations' uint8 images: no NormalizeImage, "
                            "ToTensor, ToTorchImage on the CPU (they are measured by default)")
    group.add_argument('--step-ms', type=float, default=0.0, metavar='MS',
                       help="simulate a training step of MS milliseconds per batch")
    group.add_argument('--batches', type=positive_int, default=4, metavar='N',
                       help="batches in each timed epoch (default 4)")
    group.add_argument('--max-workers', type=positive_int, default=None, metavar='N',
                       help="measure 1..N workers (default: every core)")
    group.add_argument('--json', action='store_true', help="print the diagnosis as JSON")
    group.add_argument('--plot', metavar='PNG', default=None,
                       help="draw time per stage and img/s by workers into PNG")
    group.add_argument('--brief', action='store_true', help="print only the verdict line")
    parser.set_defaults(run=run)


def run(args):
    import os

    from ..doctor import diagnose
    from ..doctor.report import brief, text
    from ..registry import Registry
    from ..storage import is_url

    if args.step_ms < 0:
        raise UsageError(f"--step-ms must be >= 0, got {args.step_ms:g}")
    if not is_url(args.file) and os.path.isdir(args.file):
        raise UsageError(f"{args.file}: is a folder, not a .beton file")
    if args.plot is not None and not os.path.isdir(os.path.dirname(os.path.abspath(args.plot))):
        raise UsageError(f"--plot: folder of {args.plot} does not exist")
    if args.backend is not None and args.backend not in Registry('ffcvx.decoders').names():
        raise UsageError(f"unknown backend {args.backend!r}; the backends are "
                         f"{', '.join(Registry('ffcvx.decoders').names())}")
    recipe = recipe_from_args(args)
    diagnosis = diagnose(recipe, batches=args.batches, max_workers=args.max_workers,
                         step_ms=args.step_ms)
    if args.plot is not None:
        from ..doctor.plot import plot
        plot(diagnosis, args.plot)
    if args.json:
        print(json.dumps(diagnosis.to_dict(), indent=1))
    elif args.brief:
        print(brief(diagnosis))
    else:
        print(text(diagnosis))
    return 0
