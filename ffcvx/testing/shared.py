"""Where the project's ``shared/`` folder is: reference data, photos, golden files.

The folder is not part of the package: it sits beside a checkout
(``<checkout>/../shared``) or wherever :data:`SHARED_ENV` names. Every test,
benchmark and script that needs it asks :func:`shared_dir`, so the lookup
exists once. Importing this module is cheap (no numpy, no pytest).
"""
import os
from pathlib import Path

__all__ = ['SHARED_ENV', 'SharedDirNotFound', 'shared_dir']

#: Environment variable naming the ``shared/`` folder; it wins over ``../shared``.
SHARED_ENV = 'FFCVX_SHARED'

#: The source checkout holding the ``ffcvx`` package (``<checkout>/ffcvx/testing/shared.py``).
_CHECKOUT = Path(__file__).resolve().parents[2]


class SharedDirNotFound(FileNotFoundError):
    """The ``shared/`` folder (or a part of it a caller needs) is not there."""


def shared_dir(*parts, required=True):
    """The ``shared/`` folder, or a path inside it.

    Parameters
    ----------
    *parts : str
        Path components inside ``shared/``, e.g. ``'data', 'photos'``.
    required : bool, default True
        Raise when the path is missing; False returns None instead (for the
        callers that have a fallback, e.g. generated images).

    Returns
    -------
    pathlib.Path or None
        ``$FFCVX_SHARED/<parts>`` when the variable is set and not empty, else
        ``<checkout>/../shared/<parts>``; None when it does not exist and
        ``required`` is False.

    Raises
    ------
    SharedDirNotFound
        If the path does not exist and ``required`` is True; the message names
        the path and :data:`SHARED_ENV`.
    """
    named = os.environ.get(SHARED_ENV, '').strip()
    base = Path(named).expanduser() if named else _CHECKOUT.parent / 'shared'
    path = base.joinpath(*parts).resolve()
    if path.exists():
        return path
    if not required:
        return None
    source = f"{SHARED_ENV}={named}" if named else f"{base} (beside the checkout; {SHARED_ENV} unset)"
    raise SharedDirNotFound(f"{path} not found: the shared folder is {source}; set {SHARED_ENV} "
                            f"to the folder holding data/, golden/ and reference/")
