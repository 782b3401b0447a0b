"""A merge into other fsspec URLs (``gs://``, ``memory://``, ...): :func:`stream` (FMT-095).

Stores other than S3 have no ranged server-side copy that fsspec exposes,
so the bytes of the merged file go through this process: the head, each
part's pages read in pieces of :data:`~.merge.COPY_CHUNK` bytes (a URL part
at the version it was opened at), and the table, written in order into a
file opened for writing at a temporary name next to ``out``,
``<folder>/.<name>.ffcvx-merge-<random>.tmp``, then moved onto ``out``
(``fs.mv``). Where the filesystem renames, ``out`` appears whole and at
once; where ``mv`` is a copy and a delete (object stores), a reader may see
no file during the move but never a partial one, because objects appear
whole when written. On failure the temporary file is removed.
"""
import posixpath
import secrets

from ..errors import WriterError
from ..storage import redact

__all__ = ['stream', 'open_target', 'temporary_name']


def open_target(out, storage_options=None):
    """``(filesystem, path)`` of ``out`` with the user's options (fsspec's own instance).

    Raises
    ------
    ffcvx.errors.BackendNotFoundError
        If fsspec or the protocol's implementation is not installed.
    """
    try:
        import fsspec
        return fsspec.core.url_to_fs(out, skip_instance_cache=True, **dict(storage_options or {}))
    except ImportError as exc:
        from ..errors import BackendNotFoundError
        raise BackendNotFoundError(f"{redact(out)}: no fsspec implementation for this URL is "
                                   f"installed ({exc})") from None


def temporary_name(path):
    """A new temporary path next to ``path`` (same folder, so a rename stays in it)."""
    folder, name = posixpath.split(path)
    return posixpath.join(folder, f".{name}.ffcvx-merge-{secrets.token_hex(4)}.tmp")


def replace(fs, write, path, out):
    """Run ``write(tmp)`` for a temporary path next to ``path``, then move it onto ``path``.

    Raises
    ------
    WriterError
        If ``write`` or the move fails (naming ``out``); the temporary file
        is removed, and a note added if even that fails.
    """
    tmp = temporary_name(path)
    try:
        write(tmp)
        fs.mv(tmp, path)
    except BaseException as exc:        # Ctrl-C too: no temporary file left behind
        note = ""
        try:
            if fs.exists(tmp):
                fs.rm(tmp)
        except Exception as cleanup:     # the write's error is the one to report
            note = f"; the temporary file {tmp} could not be removed ({cleanup})"
        if not isinstance(exc, Exception):
            raise
        raise WriterError(f"writing {redact(out)} failed: {type(exc).__name__}: {exc}; nothing "
                          f"was written there and an existing file was left as it was"
                          f"{note}") from exc


def stream(plan, out, storage_options=None):
    """Write ``plan`` (a :class:`~.merge.Plan`) into the fsspec URL ``out`` (FMT-095).

    Parameters
    ----------
    plan : ffcvx.writer.merge.Plan
    out : str
        Any fsspec URL but ``s3://`` (composed in the store instead) and
        ``file://`` (a local merge).
    storage_options : dict or None
        Options of ``out``'s filesystem (and of the URL parts, already opened).

    Returns
    -------
    str
        ``out``, as :func:`~ffcvx.writer.s3_compose.compose` returns it for ``s3://``.

    Raises
    ------
    WriterError
        If writing, reading a part or the move fails: nothing is left at
        ``out`` but what was there, and no temporary file.
    """
    fs, path = open_target(out, storage_options)

    def write(tmp):
        with fs.open(tmp, 'wb') as sink:
            sink.write(plan.head)
            for part, start, length in plan.ranges:
                for data in part.chunks(start, length):
                    sink.write(data)
            sink.write(plan.table)
        size = fs.size(tmp)
        if size != plan.size:
            raise OSError(f"the temporary file holds {size} bytes, not {plan.size}")

    replace(fs, write, path, out)
    return out
