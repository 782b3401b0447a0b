"""Optional dependencies (``pip install 'ffcvx[EXTRA]'``): one import check for all of them.

The converters of ``ffcvx convert`` and ``DatasetWriter.from_webdataset`` use
packages that a plain ``pip install ffcvx`` does not bring; :func:`require`
imports one and, when it is missing, says which extra installs it.
"""
import importlib

__all__ = ['MissingExtraError', 'require']


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


def require(module, extra, user):
    """Import ``module`` for ``user``, or raise naming ``pip install 'ffcvx[extra]'``.

    Parameters
    ----------
    module : str
        Top-level package to import, e.g. ``'datasets'``.
    extra : str
        The ``[options.extras_require]`` key of setup.cfg that installs it.
    user : str
        Who needs it, for the message, e.g. ``'ffcvx convert hf'``.

    Returns
    -------
    module

    Raises
    ------
    MissingExtraError
        If importing ``module`` fails. When the package itself was found but
        one of its own imports failed (a broken install), the message says
        that too, since installing the extra again may not be the fix.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"{user} needs the {module!r} package: pip install 'ffcvx[{extra}]'"
        if exc.name not in (None, module):
            message += f" (importing it failed: {exc})"
        raise MissingExtraError(message) from exc
