"""A merge composed inside S3 (or an S3-compatible store): :func:`compose` (FMT-094).

One multipart upload builds the merged object. Its parts are, in order::

    head + the first bytes of part 0's pages      UploadPart (bytes sent by us)
    the rest of part 0's pages                    UploadPartCopy, CopySourceRange
    ...                                           (the store copies; nothing passes here)
    allocation table                              UploadPart, the last part

S3 wants every upload part but the last to hold 5 MiB to 5 GiB, and at most
10,000 parts. So bytes we write (the head, the table) and page ranges
shorter than 5 MiB are *joined* with the neighbouring range: those bytes
are downloaded from the part object (at its open-time ETag) and uploaded in
one UploadPart; :func:`layout` never joins more than ``2 * MIN_PART`` bytes
of any part's pages, and copies the rest. Copies ask for the ETag seen when
the part was opened (``CopySourceIfMatch``), so a part replaced meanwhile
fails the merge instead of mixing two versions.

The object appears only with CompleteMultipartUpload, all at once; on any
failure (an exception, Ctrl-C included) the upload is aborted, so neither
an object nor an unfinished upload (which the store would bill) is left,
and an old object at ``out`` is untouched. A process killed outright
(SIGKILL, SIGTERM) leaves an unfinished upload, never an object: a bucket
lifecycle rule (``AbortIncompleteMultipartUpload``) removes those.
"""
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from ..errors import MergeError, WriterError
from ..storage import is_s3, redact

__all__ = ['check_parts', 'compose', 'layout', 's3_client', 'split_url',
           'MIN_PART', 'MAX_PART', 'MAX_PARTS']

#: S3's smallest upload part but the last, bytes (5 MiB).
MIN_PART = 5 << 20
#: S3's largest upload part (and largest UploadPartCopy range), bytes (5 GiB).
MAX_PART = 5 << 30
#: S3's most parts of one multipart upload.
MAX_PARTS = 10_000
#: UploadPart / UploadPartCopy requests in flight at once.
CONCURRENCY = 8

#: s3fs options that only tune s3fs's own caches: meaningless for boto3, so ignored.
_READER_ONLY = {'skip_instance_cache', 'use_listings_cache', 'listings_expiry_time',
                'max_paths', 'default_block_size', 'default_fill_cache', 'default_cache_type',
                'cache_regions', 'version_aware', 'asynchronous', 'loop', 'fixed_upload_size'}


def split_url(url):
    """``(bucket, key)`` of ``s3://bucket/key``.

    Raises
    ------
    MergeError
        If the URL names no bucket or no key.
    """
    rest = url.split('://', 1)[1]
    bucket, _, key = rest.partition('/')
    if not bucket or not key or key.endswith('/'):
        raise MergeError(f"{redact(url)} is not an s3://bucket/key URL of an object")
    return bucket, key


def s3_client(storage_options=None):
    """A boto3 S3 client configured from fsspec-style (s3fs) ``storage_options``.

    Parameters
    ----------
    storage_options : dict or None
        ``key``, ``secret``, ``token`` (credentials), ``endpoint_url``,
        ``client_kwargs`` (keyword arguments of ``boto3.client``, such as
        ``region_name``), ``config_kwargs`` (of ``botocore.config.Config``:
        ``retries``, timeouts), ``profile`` and ``anon``, as a Loader takes
        them; s3fs's cache options are ignored. What is absent comes from
        the usual AWS environment variables and config files.

    Raises
    ------
    ValueError
        For an option this client cannot honour (named).
    ffcvx.errors.BackendNotFoundError
        If boto3 is not installed (``pip install 'ffcvx[s3]'``).
    """
    try:
        import boto3
        import botocore
        from botocore.config import Config
    except ImportError:
        from ..errors import BackendNotFoundError
        raise BackendNotFoundError("composing an s3:// merge needs boto3: "
                                   "pip install 'ffcvx[s3]'") from None
    options = dict(storage_options or {})
    unknown = sorted(set(options) - _READER_ONLY - {
        'key', 'secret', 'token', 'endpoint_url', 'client_kwargs', 'config_kwargs', 'profile',
        'anon'})
    if unknown:
        raise ValueError(f"storage_options {unknown} cannot be applied to an S3 merge (it takes "
                         f"key, secret, token, endpoint_url, client_kwargs, config_kwargs, "
                         f"profile, anon)")
    kwargs = dict(options.get('client_kwargs') or {})
    if options.get('endpoint_url'):
        kwargs['endpoint_url'] = options['endpoint_url']
    for ours, boto_name in (('key', 'aws_access_key_id'), ('secret', 'aws_secret_access_key'),
                            ('token', 'aws_session_token')):
        if options.get(ours) is not None:
            kwargs[boto_name] = options[ours]
    config = dict(options.get('config_kwargs') or {})
    if options.get('anon'):
        config['signature_version'] = botocore.UNSIGNED
    config.setdefault('max_pool_connections', CONCURRENCY + 2)
    session = boto3.session.Session(profile_name=options.get('profile'))
    return session.client('s3', config=Config(**config), **kwargs)


def check_parts(paths, out):
    """Refuse parts that one multipart upload into ``out`` cannot copy from.

    Raises
    ------
    MergeError
        If a part is not an ``s3://`` object of ``out``'s bucket (a local
        path, another scheme or another bucket): nothing is read or written.
    """
    bucket, _ = split_url(out)
    for path in paths:
        if not is_s3(path) or split_url(path)[0] != bucket:
            raise MergeError(
                f"part {redact(path)} is not an object of the bucket of {redact(out)}: a merge "
                f"into s3:// is composed in the store from objects of the same bucket (one "
                f"storage_options, no page through this machine); copy the parts into "
                f"s3://{bucket}/ first, or merge into a local file and upload it")


def layout(plan):
    """The upload parts of ``plan``: ``('copy', part, start, length)`` or ``('put', pieces)``.

    A ``put`` part's pieces are ``bytes`` (ours) or ``(part, start, length)``
    ranges to download. Every part but the last holds ``MIN_PART`` to
    ``MAX_PART`` bytes; each page range lends at most ``2 * MIN_PART`` bytes
    to ``put`` parts.

    Raises
    ------
    MergeError
        If the merge needs more than ``MAX_PARTS`` parts.
    """
    uploads, pending, size = [], [], 0
    segments = [plan.head, *plan.ranges, plan.table]
    for segment in segments:
        if isinstance(segment, bytes):
            if segment:
                pending.append(segment)
                size += len(segment)
            if size >= MIN_PART:     # a head padded to a large page is a part by itself
                uploads.append(('put', pending))
                pending, size = [], 0
            continue
        part, start, length = segment
        if size:
            need = MIN_PART - size
            if length - need < MIN_PART:
                # what would be left to copy is too short to stand alone: join it all
                pending.append((part, start, length))
                size += length
                if size >= MIN_PART:
                    uploads.append(('put', pending))
                    pending, size = [], 0
                continue
            pending.append((part, start, need))
            uploads.append(('put', pending))
            pending, size = [], 0
            start, length = start + need, length - need
        if length < MIN_PART:
            pending, size = [(part, start, length)], length
            continue
        count = -(-length // MAX_PART)          # pieces of at most 5 GiB, each over 2.5 GiB
        for index in range(count):
            first = start + length * index // count
            uploads.append(('copy', part, first, start + length * (index + 1) // count - first))
    if pending:
        uploads.append(('put', pending))
    for upload in uploads[:-1]:
        if not MIN_PART <= _size(upload) <= MAX_PART:
            raise MergeError(f"this merge needs an upload part of {_size(upload)} bytes (tables "
                             f"over 5 GiB?); S3 takes 5 MiB to 5 GiB")
    if len(uploads) > MAX_PARTS:
        raise MergeError(f"this merge needs {len(uploads)} upload parts; S3 takes at most "
                         f"{MAX_PARTS} in one object: merge fewer, larger parts (or merge groups "
                         f"of them first)")
    return uploads


def _size(upload):
    if upload[0] == 'copy':
        return upload[3]
    return sum(len(piece) if isinstance(piece, bytes) else piece[2] for piece in upload[1])


def _source_arguments(part):
    """``CopySource`` and ``CopySourceIfMatch`` pinning the version the part was opened at."""
    bucket, key = split_url(part.path)
    identity = part.reader.source.identity()
    source = {'Bucket': bucket, 'Key': key}
    if identity.get('version'):
        source['VersionId'] = identity['version']
    arguments = {'CopySource': source}
    if identity.get('etag'):
        arguments['CopySourceIfMatch'] = identity['etag']
    return arguments


class _PartFailed(Exception):
    """An upload part's request failed (the message says which part, and how)."""


def _describe(upload):
    if upload[0] == 'copy':
        _, part, start, length = upload
        return (f"UploadPartCopy of bytes {start}..{start + length - 1} of "
                f"{redact(part.path)}")
    return f"UploadPart of {_size(upload)} bytes"


class _Upload:
    """One multipart upload in progress: its parts go up from threads, then complete or abort."""

    def __init__(self, client, out):
        self.client, self.out = client, out
        self.bucket, self.key = split_url(out)
        self.upload_id = None
        self.completed = {}
        self._lock = threading.Lock()

    def start(self):
        answer = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key,
                                                     ContentType='application/octet-stream')
        self.upload_id = answer['UploadId']

    def send(self, number, upload):
        common = {'Bucket': self.bucket, 'Key': self.key, 'UploadId': self.upload_id,
                  'PartNumber': number}
        if upload[0] == 'copy':
            _, part, start, length = upload
            answer = self.client.upload_part_copy(
                CopySourceRange=f"bytes={start}-{start + length - 1}", **_source_arguments(part),
                **common)
            result = answer['CopyPartResult']
        else:
            body = b''.join(piece if isinstance(piece, bytes)
                            else b''.join(piece[0].chunks(piece[1], piece[2]))
                            for piece in upload[1])
            result = self.client.upload_part(Body=body, **common)
        record = {'PartNumber': number, 'ETag': result['ETag']}
        # a store that computed a checksum of the part wants it back in the completion
        record.update({name: result[name] for name in result if name.startswith('Checksum')
                       and name != 'ChecksumType'})
        with self._lock:
            self.completed[number] = record

    def complete(self):
        parts = [self.completed[number] for number in sorted(self.completed)]
        self.client.complete_multipart_upload(Bucket=self.bucket, Key=self.key,
                                              UploadId=self.upload_id,
                                              MultipartUpload={'Parts': parts})

    def abort(self):
        """Abort; None when done, else the reason it could not be."""
        if self.upload_id is None:
            return None
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key,
                                               UploadId=self.upload_id)
        except Exception as exc:     # reported in the merge's error, which is the one to raise
            return f"{type(exc).__name__}: {exc}"
        return None


def compose(plan, out, storage_options=None, client=None):
    """Compose the merged object ``out`` in the store from ``plan`` (FMT-094).

    Parameters
    ----------
    plan : ffcvx.writer.merge.Plan
        Parts that :func:`check_parts` accepted for ``out``.
    out : str
        ``s3://bucket/key``.
    storage_options : dict or None
        See :func:`s3_client`.
    client : botocore client, optional
        Used instead of one made from ``storage_options``.

    Returns
    -------
    str
        ``out``.

    Raises
    ------
    MergeError
        If the merge needs more than 10,000 upload parts (nothing started).
    WriterError
        If any request fails (after botocore's retries), or the process is
        interrupted: the multipart upload is aborted, no object is written at
        ``out`` and an existing one is unchanged; the message names ``out``,
        and the upload id if the abort failed too.
    """
    uploads = layout(plan)
    client = client or s3_client(storage_options)
    upload = _Upload(client, out)
    try:
        upload.start()
        with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix='ffcvx-compose') as pool:
            futures = [pool.submit(upload.send, number, part)
                       for number, part in enumerate(uploads, 1)]
            try:
                for number, future in enumerate(futures, 1):
                    try:
                        future.result()
                    except Exception as exc:
                        raise _PartFailed(f"upload part {number} of {len(uploads)} "
                                          f"({_describe(uploads[number - 1])}): "
                                          f"{type(exc).__name__}: {exc}") from exc
            finally:
                # no part may land after the abort: stop the queue, wait for those sent
                for future in futures:
                    future.cancel()
                wait(futures)
        upload.complete()
    except BaseException as exc:
        failed = upload.abort()
        left = (f"the multipart upload {upload.upload_id} could not be aborted ({failed}): abort "
                f"it (aws s3api abort-multipart-upload) or let a lifecycle rule remove it"
                if failed else "the multipart upload was aborted")
        what = str(exc) if isinstance(exc, _PartFailed) else f"{type(exc).__name__}: {exc}"
        message = (f"composing {redact(out)} failed: {what}; no object was written there (an "
                   f"existing one is unchanged) and {left}")
        if isinstance(exc, Exception):
            raise WriterError(message) from exc
        raise
    return out
