"""``DatasetWriter`` into a URL: write locally, then upload whole (:func:`write_to_url`).

A ``.beton`` is written with ``pwrite`` at offsets all over the file
(workers fill pages in parallel, the tables last), which no object store
takes. So a write to a URL goes to a local file first, in a folder of its
own under ``FFCVX_TMPDIR`` (else ``TMPDIR``, else the system's default),
which must hold the whole file; then it is uploaded and the local copy
removed, whether the upload worked or not:

- ``DatasetWriter('s3://b/train.beton', ...)``: the file becomes
  ``s3://b/train.beton`` by one (multipart) upload, which the store shows
  only once complete (and aborts on failure: no object, no unfinished
  upload, an old object untouched);
- with ``part=(k, K)``: the part becomes
  ``s3://b/train.beton.parts/train.part-0000k-of-0000K.beton``
  (:func:`part_url`, the names ``ffcvx convert --part k/K --parts-dir
  <target>.parts`` gives), and nothing is composed: a part cannot know that
  the others are finished and are of this write, so the user merges once
  all are there, ``ffcvx.merge([part_url(target, (k, K)) for k in
  range(K)], target, storage_options=...)``, which composes in the store;
- another fsspec URL: ``fs.put_file`` to a temporary name next to the
  target, moved onto it (as :mod:`.merge_stream` does).
"""
import os
import shutil
import tempfile

from ..errors import WriterError
from ..storage import is_s3, redact
from .checks import part_path

__all__ = ['part_url', 'upload', 'write_to_url', 'TMPDIR_ENV']

#: Environment variable naming the folder of the local copy of a write to a URL.
TMPDIR_ENV = 'FFCVX_TMPDIR'


def part_url(target, part):
    """Where part ``(k, K)`` of a write to ``target`` is uploaded (str).

    ``<target>.parts/<stem>.part-<k>-of-<K>.beton``, numbers zero-padded to
    5 digits (more for K >= 100000) so that listings sort in part order.
    """
    return part_path(target, f"{target}.parts", part)


def upload(path, url, storage_options=None):
    """Upload the local file ``path`` to ``url``; the object appears only once complete.

    Raises
    ------
    WriterError
        If the upload fails (naming ``url``); nothing is left there but an
        old object.
    """
    if is_s3(url):
        from .s3_compose import MIN_PART, s3_client, split_url
        client = s3_client(storage_options)      # names the extra when boto3 is missing
        from boto3.s3.transfer import TransferConfig
        bucket, key = split_url(url)
        try:
            # s3transfer aborts its multipart upload when a part fails
            client.upload_file(
                path, bucket, key, Config=TransferConfig(multipart_threshold=8 * MIN_PART,
                                                         multipart_chunksize=8 * MIN_PART))
        except Exception as exc:
            raise WriterError(f"uploading {redact(url)} failed: {type(exc).__name__}: {exc}; "
                              f"nothing was written there and an existing object was left as it "
                              f"was") from exc
        return url
    from .merge_stream import open_target, replace
    fs, target = open_target(url, storage_options)
    replace(fs, lambda tmp: fs.put_file(path, tmp), target, url)
    return url


def write_to_url(target, part, storage_options, write_file):
    """Write with ``write_file(local_path)`` into a local folder of its own, upload, clean up.

    Parameters
    ----------
    target : str
        The URL the writer was given.
    part : tuple (k, K) or None
        Upload to :func:`part_url` instead of ``target``.
    storage_options : dict or None
        See :func:`ffcvx.writer.s3_compose.s3_client` (S3) or the fsspec
        filesystem's options.
    write_file : callable
        ``write_file(path) -> WriteStats``: the local write.

    Returns
    -------
    What ``write_file`` returned.

    Raises
    ------
    WriterError
        From the write or the upload; the local copy is removed either way.
    """
    destination = target if part is None else part_url(target, part)
    folder = os.environ.get(TMPDIR_ENV) or None
    try:
        scratch = tempfile.mkdtemp(prefix='ffcvx-upload-', dir=folder)
    except OSError as exc:
        raise WriterError(f"cannot create the local folder for the copy of {redact(target)} "
                          f"({exc}); set {TMPDIR_ENV} to a folder that can hold it") from exc
    try:
        stats = write_file(os.path.join(scratch, os.path.basename(destination)))
        upload(os.path.join(scratch, os.path.basename(destination)), destination,
               storage_options)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return stats
