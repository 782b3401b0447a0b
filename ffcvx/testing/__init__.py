"""Conformance suites that ship with ffcvx, for authors of pluggable parts.

:mod:`ffcvx.testing.strategies` checks memory strategies (entry-point group
``ffcvx.caches``) against the spec reader; :mod:`ffcvx.testing.plugin` adds its
command-line options. A strategy author runs it on their own strategy with::

    pytest --pyargs ffcvx.testing.strategies --ffcvx-cache mine

:mod:`ffcvx.testing.decoders` checks decoder backends (entry-point group
``ffcvx.decoders``) the same way; its class :class:`DecoderBackendTests` is
what a backend's own test module subclasses.

This module holds the pieces that do not need a running test session: where
the ``shared/`` folder and the golden files are (:func:`shared_dir`), and
how the command line and a test module's settings become the list of
strategies and their options. Importing it is cheap (no
numba, no torch).
"""
import json
from pathlib import Path

from .shared import SHARED_ENV, SharedDirNotFound, shared_dir

__all__ = ['GOLDEN_SUBDIR', 'SERVER_SKIP_REASON', 'SHARED_ENV', 'SharedDirNotFound',
           'find_golden_dir', 'parse_cache_options', 'server_skip_reason', 'shared_dir']

#: Where FFCV's golden files sit inside a ``shared/`` folder.
GOLDEN_SUBDIR = Path('golden') / 'ffcv-1.0.2'

#: Why a strategy that needs a server is skipped when no options name one.
SERVER_SKIP_REASON = "needs a server: pass --ffcvx-cache-options"


def _has_betons(folder):
    return folder.is_dir() and any(folder.glob('*.beton'))


def find_golden_dir(explicit=None):
    """The folder of FFCV 1.0.2 golden ``.beton`` files, or None.

    Parameters
    ----------
    explicit : str or os.PathLike or None
        A folder named by the user (``--ffcvx-golden-dir``); when given it is
        the only candidate.

    Returns
    -------
    pathlib.Path or None
        Without ``explicit``: ``shared/golden/ffcv-1.0.2`` of
        :func:`shared_dir` (``$FFCVX_SHARED``, else ``../shared`` beside the
        checkout) when it holds ``.beton`` files; None otherwise (the suites
        then skip the golden checks, saying why).

    Raises
    ------
    FileNotFoundError
        If ``explicit`` holds no ``.beton`` file: a folder the user names must
        not be skipped silently.
    """
    if explicit is not None:
        folder = Path(explicit).expanduser().resolve()
        if not _has_betons(folder):
            raise FileNotFoundError(f"--ffcvx-golden-dir {folder}: no .beton files there")
        return folder
    folder = shared_dir(*GOLDEN_SUBDIR.parts, required=False)
    return folder if folder is not None and _has_betons(folder) else None


def parse_cache_options(text):
    """Per-strategy constructor options from ``--ffcvx-cache-options``.

    Parameters
    ----------
    text : str or None
        A JSON object mapping strategy names to objects of keyword arguments,
        e.g. ``'{"process": {"max_bytes": 12582912}}'``.

    Returns
    -------
    dict of str to dict

    Raises
    ------
    ValueError
        If ``text`` is not such an object; the message says what is wrong.
    """
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--ffcvx-cache-options is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError(f"--ffcvx-cache-options must be a JSON object of objects, one per "
                         f"strategy name, e.g. '{{\"process\": {{\"max_bytes\": 12582912}}}}'; "
                         f"got {text!r}")
    return value


def server_skip_reason(strategy_class, name, options):
    """Why the suite must skip strategy ``name``, or None if it can run.

    Parameters
    ----------
    strategy_class : type
        The registered class; its ``needs_server`` capability decides.
    name : str
        The registered name.
    options : Mapping of str to dict
        Options per strategy name, as given to the suite.

    Returns
    -------
    str or None
        :data:`SERVER_SKIP_REASON` for a strategy that needs a server and has
        no options (which would say where the server is); None otherwise.
    """
    if getattr(strategy_class, 'needs_server', False) and name not in options:
        return SERVER_SKIP_REASON
    return None
