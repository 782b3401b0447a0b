"""The Loader options that ``ffcvx show`` and ``ffcvx doctor`` share: file, pipeline, order, cache.

The pipeline is a preset (``--decoder``, ``--flip``, ``--views``;
:mod:`ffcvx.presets`) or a user's function (``--pipelines module:function``).
"""
import json
import os

from .common import UsageError, positive_int

__all__ = ['LoaderRecipe', 'add_loader_options', 'recipe_from_args']

ORDERS = ('sequential', 'random', 'quasi_random')


def add_loader_options(parser, batch_size=64, to_tensor=False):
    """Add the file argument and the Loader options to ``parser``."""
    from ..presets import DECODERS

    parser.add_argument('file', help="the .beton file (path or URL)")
    group = parser.add_argument_group('pipeline')
    group.add_argument('--decoder', default='rrc224', metavar='PRESET',
                       help=f"image decoder preset: {', '.join(DECODERS)} (default rrc224)")
    group.add_argument('--flip', action='store_true', help="add RandomHorizontalFlip")
    group.add_argument('--views', type=positive_int, default=1,
                       help="views decoded from the image field (2 for two-view SSL)")
    group.add_argument('--pipelines', metavar='MODULE:FUNCTION', default=None,
                       help="a function returning the Loader's pipelines dict, instead of a preset")
    group.add_argument('--image-field', default=None, help="default: the first image field")
    group.add_argument('--label-field', default=None, help="default: the first integer field")
    group = parser.add_argument_group('loader')
    group.add_argument('--batch-size', type=positive_int, default=batch_size)
    group.add_argument('--workers', type=int, default=-1,
                       help="decoding threads; below 1 means one per CPU (default)")
    group.add_argument('--order', default='random', help=f"{', '.join(ORDERS)} (default random)")
    group.add_argument('--cache', default=None,
                       help="memory strategy: os, process, shared, redis or a registered name")
    group.add_argument('--backend', default=None, help="decoder backend, e.g. turbojpeg")
    group.add_argument('--seed', type=int, default=0)
    group.add_argument('--storage-options', metavar='JSON', default=None,
                       help="options of a URL's filesystem (fsspec's keys), a JSON object")
    parser.set_defaults(to_tensor=to_tensor)


class LoaderRecipe:
    """Everything needed to make Loaders for the command's file, possibly several times.

    Attributes
    ----------
    path : str
    reader : ffcvx.reader.Reader
    image_field, label_field : str, str or None
    preset : ffcvx.presets.PipelinePreset or None
        None when ``--pipelines`` gave the pipelines.
    options : dict
        Keyword arguments of :class:`~ffcvx.loader.Loader` other than
        ``pipelines`` and ``custom_field_mapper``.
    """

    def __init__(self, path, reader, image_field, label_field, preset, user_pipelines, options):
        self.path = path
        self.reader = reader
        self.image_field = image_field
        self.label_field = label_field
        self.preset = preset
        self._user_pipelines = user_pipelines
        self.options = options

    def pipelines(self, preset=None):
        """Fresh ``(pipelines, custom_field_mapper)``: ``preset`` overrides the command's."""
        from ..presets import preset_pipelines

        if self._user_pipelines is not None and preset is None:
            return self._user_pipelines(), None
        return preset_pipelines(self.reader, preset or self.preset, self.image_field,
                                self.label_field)

    def loader(self, preset=None, **overrides):
        """A new Loader with the command's options, ``overrides`` applied (e.g. ``num_workers``)."""
        from ..loader import Loader

        pipelines, mapper = self.pipelines(preset)
        options = dict(self.options, **overrides)
        return Loader(self.path, pipelines=pipelines, custom_field_mapper=mapper, **options)


def recipe_from_args(args):
    """The :class:`LoaderRecipe` of the parsed ``args``.

    Raises
    ------
    UsageError
        For a missing file, an unknown preset or order, a bad ``--pipelines``
        function (import fails, raises, returns no dict), a field the file
        does not have, bad ``--storage-options``, or a file that is not a valid
        ``.beton`` (the reader's BetonFormatError, with the file's name).
    """
    from ..errors import BetonFormatError
    from ..loader import OrderOption
    from ..presets import PipelinePreset, PresetError, choose_fields, import_pipelines
    from ..reader import Reader
    from ..storage import is_url

    if not is_url(args.file) and not os.path.exists(args.file):
        raise UsageError(f"{args.file}: no such file")
    try:
        storage_options = json.loads(args.storage_options) if args.storage_options else None
    except ValueError as exc:
        raise UsageError(f"--storage-options is not JSON: {exc}") from None
    order = str(args.order).lower()
    if order not in ORDERS:
        raise UsageError(f"unknown order {args.order!r}; the orders are {', '.join(ORDERS)}")
    try:
        reader = Reader(args.file, storage_options=storage_options)
    except BetonFormatError as exc:  # its message says what is wrong, not in which file
        raise UsageError(f"{args.file}: not a valid .beton file: {exc}") from None
    try:
        preset = PipelinePreset(args.decoder, args.flip, args.views, args.to_tensor)
        image_field, label_field = choose_fields(reader, args.image_field, args.label_field)
        user = None
        if args.pipelines is not None:
            import_pipelines(args.pipelines)  # fails now, with a clear message, if it cannot work
            user = lambda: import_pipelines(args.pipelines)  # noqa: E731 (fresh Operations each time)
    except PresetError as exc:
        raise UsageError(str(exc)) from None
    options = dict(batch_size=args.batch_size, num_workers=args.workers,
                   order=OrderOption[order.upper()], seed=args.seed, cache=args.cache,
                   backend=args.backend, storage_options=storage_options)
    return LoaderRecipe(args.file, reader, image_field, label_field, preset, user, options)
