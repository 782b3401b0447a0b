"""ffcvx: fast data loading for ML training, FFCV 1.0 compatible.

Write a dataset once into a ``.beton`` file with :class:`ffcvx.writer.DatasetWriter`,
then stream it into training with :class:`ffcvx.loader.Loader` (both also
importable from ``ffcvx``, as from FFCV's top level). :func:`ffcvx.merge`
joins part files written on several machines into one ``.beton``;
:func:`ffcvx.show` draws a Loader's samples as the model sees them.
"""
__version__ = '0.1.0'


def __getattr__(name):
    # Lazy so that `import ffcvx` (e.g. for the CLI) does not pay for numba
    # and torch until a Loader is used.
    if name == 'Loader':
        from .loader import Loader
        return Loader
    if name == 'DatasetWriter':
        from .writer import DatasetWriter
        return DatasetWriter
    if name == 'merge':
        from .writer.merge import merge
        return merge
    if name == 'show':
        from .sample_grid import show
        return show
    raise AttributeError(f"module 'ffcvx' has no attribute {name!r}")


__all__ = ['Loader', 'DatasetWriter', 'merge', 'show']
