"""Join part files into one ``.beton``: :func:`merge` (``ffcvx.merge``, ``ffcvx merge``), FMT-092.

Part ``k`` of ``K`` (``DatasetWriter.from_indexed_dataset(..., part=(k, K))``)
is a complete ``.beton`` holding a contiguous range of the samples. The
format makes an exact join cheap: every region lies inside one page, data
starts page-aligned and pointers are absolute offsets, so moving a part's
pages by a whole number of pages changes no byte inside them. Only the
header, the metadata table (each field shifts its own pointers,
``Field.relocate``) and the allocation table are written anew::

    head      header, descriptors (the parts' own bytes),
              metadata: part 0's records, part 1's, ... each pointer + shift[k],
              zero padding to D0 (FMT-040)                         written by us
    pages     pages of part 0 | pages of part 1 | ...              copied, not rewritten
    table     allocation table: ptr + shift[k], sample_id + first[k]  written by us

``shift[k] = D0 + (pages before part k) * PS - D0[k]``, a whole number of
pages (both ``D0`` are page-aligned, FMT-040). :func:`plan` computes the
head, the page ranges and the table from the parts' tables alone (a URL
part's pages are never read for it); one module per kind of target then
writes them:

- a local or shared-filesystem path (or ``file://``): :mod:`.merge_local`,
  ``os.copy_file_range`` into a temporary file renamed onto ``out``;
- ``s3://``: :mod:`.s3_compose`, one multipart upload whose parts are
  server-side copies of the part objects' byte ranges (FMT-094);
- any other fsspec URL: :mod:`.merge_stream`, a streamed copy through this
  process into a temporary object moved onto ``out`` (FMT-095).
"""
import os

from ..storage import is_s3, is_url, local_path
# the plan (parts opened and checked, head, page ranges, table) lives in .merge_plan;
# importable from here as before
from .merge_plan import COPY_CHUNK, PartEnded, Plan, plan  # noqa: F401

__all__ = ['merge', 'plan', 'Plan']


def merge(parts, out, custom_handlers=None, storage_options=None):
    """Join part files, in the order given, into one ``.beton`` at ``out`` (FMT-092).

    Parameters
    ----------
    parts : sequence of str or os.PathLike
        ``.beton`` files, part 0 first (``DatasetWriter.from_indexed_dataset(...,
        part=(k, K))`` for ``k = 0 .. K-1``): local paths or URLs (``s3://``,
        ``gs://``, ``memory://``, any fsspec protocol; their tables are read
        with range requests, as the Reader reads them). Empty parts are fine.
        For an ``s3://`` ``out`` every part must be an object of the same bucket.
    out : str or os.PathLike
        The merged file, replaced atomically once everything is written: a
        local path or ``file://`` URL (pages copied with
        ``os.copy_file_range``), an ``s3://`` URL (composed in the store by
        one multipart upload, pages never passing through this process,
        FMT-094) or another fsspec URL (pages streamed through this process,
        FMT-095).
    custom_handlers : Mapping[str, type[Field]], optional
        Field classes for fields stored with type id 255, as for
        :class:`ffcvx.reader.Reader`; each must implement
        :meth:`Field.relocate <ffcvx.fields.Field.relocate>`.
    storage_options : dict, optional
        Credentials and endpoint of the URLs, the keys a Loader takes
        (fsspec's: for S3 ``key``, ``secret``, ``token``, ``endpoint_url``,
        ``client_kwargs={'region_name': ...}``, ``config_kwargs``,
        ``profile``); for S3 the usual AWS environment and config files
        where absent. The same options serve every part and ``out``.

    Returns
    -------
    str
        ``out``.

    Notes
    -----
    Sample ``i`` of part ``k`` becomes sample ``first[k] + i``, ``first[k]``
    the number of samples in the parts before it. Every byte of every page
    is copied untouched; each part's pages start on a page boundary of
    ``out``. The same parts give the same file, byte for byte, whatever
    ``out`` is.

    Raises
    ------
    MergeError
        If no part is given, a part is not a valid ``.beton`` (the reader's
        error, with the part's path), a URL part does not exist, parts
        differ in page size, field names, field types or field arguments
        (the message names the first difference and the part), a field
        cannot relocate its pointers (a custom field without ``relocate``),
        or, for an ``s3://`` ``out``, a part is not in its bucket or the
        merge needs more than 10,000 upload parts. Nothing is written then.
    WriterError
        If writing fails (a full disk, a part that changes meanwhile, an
        object store that refuses or fails); nothing is left at ``out`` but
        the old file or object, and no temporary file, object or unfinished
        multipart upload (the message says so where one could not be
        removed).
    ffcvx.errors.RemoteUnavailableError, ffcvx.errors.BackendNotFoundError
        If a URL part cannot be read, or its client is not installed.
    """
    out = os.fspath(out)
    parts = [os.fspath(part) for part in parts]      # read twice below: not a generator
    if is_s3(out):
        from .s3_compose import check_parts, compose
        check_parts(parts, out)
        return compose(plan(parts, custom_handlers, storage_options), out, storage_options)
    if is_url(out):
        from .merge_stream import stream
        return stream(plan(parts, custom_handlers, storage_options), out, storage_options)
    from .merge_local import write_local
    write_local(plan(parts, custom_handlers, storage_options), local_path(out))
    return out
