"""Read a run of fixed-size records of a ``.beton`` file, or say where the file ends (FMT-060).

The reader reads its header, descriptors, metadata and allocation table
through :func:`read_exact`, so that a short file is reported the same way
for each of them.
"""
import numpy as np

from .errors import BetonFormatError

__all__ = ['read_exact']


def read_exact(source, file_size, offset, dtype, count, clause, what):
    """Read ``count`` items of ``dtype`` at ``offset`` into a fresh read-only array.

    Parameters
    ----------
    source : ffcvx.storage.Source
        The file.
    file_size : int, bytes
        Its size when opened.
    offset : int, bytes
        Where the items start.
    dtype : numpy.dtype
        One item's type; ``count * dtype.itemsize`` bytes are read.
    count : int
    clause : str
        The spec clause a short file breaks, e.g. ``'FMT-060'``.
    what : str
        What the items are, for the message (``'the 24-byte header'``).

    Returns
    -------
    ndarray of ``dtype``, shape (count,)
        Read-only.

    Raises
    ------
    ffcvx.errors.BetonFormatError
        ``clause``, at the file size, if the file ends before the last item
        (or at the end of what was read, if the file shrank meanwhile).
    """
    nbytes = dtype.itemsize * count
    if offset + nbytes > file_size:
        raise BetonFormatError(
            f"file too short: {what} needs bytes {offset}..{offset + nbytes} but the file "
            f"has {file_size}", offset=file_size, clause=clause)
    out = np.empty(count, dtype=dtype)
    raw = out.view(np.uint8).reshape(-1)
    got = source.read_into(offset, raw) if nbytes else 0
    if got != nbytes:
        raise BetonFormatError(
            f"file too short: read {got} of {nbytes} bytes of {what} (file changed while "
            f"being opened?)", offset=offset + got, clause=clause)
    out.flags.writeable = False
    return out
