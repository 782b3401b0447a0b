"""Remote files through fsspec: any protocol it has an implementation for (REM-001).

``storage_options`` go to the filesystem unchanged (s3fs's ``key``,
``secret``, ``endpoint_url``; gcsfs's ``token``; adlfs's ``account_name``;
HTTP's ``headers`` ...). ffcvx adds its timeout to s3fs and HTTP and turns
their own retries off (ffcvx retries, REM-006).

The version check (REM-004): over HTTP(S) every GET carries ``If-Match``
(or ``If-Unmodified-Since`` where the server sends no ETag), and is made
here on the filesystem's own aiohttp session so that the answer's status,
``Content-Range`` and validators can be checked (REM-013); fsspec's
``cat_file`` does not show them. S3 (s3fs) likewise: ``GetObject`` with
``IfMatch`` / ``IfUnmodifiedSince`` through s3fs's client, its
``ContentRange`` checked. fsspec has no such option for the other
protocols, so after every read the file is looked up again (``info``,
uncached) and a read of a version other than the open-time one is refused:
a request per read more, for reads of whole pages (megabytes), and never
bytes of two versions; only the body's length can be checked there.
"""
from .source import RemoteSource, classify, redact, status_of
from .validators import as_datetime, identity, parse_content_range, preconditions

#: fsspec protocols whose reads carry If-Match.
_HTTP = ('http', 'https')


class FsspecSource(RemoteSource):
    """A file at any fsspec URL.

    Parameters are those of :class:`~.source.RemoteSource`.

    Raises
    ------
    ffcvx.errors.BackendNotFoundError
        If fsspec has no implementation of the protocol installed (raised by
        :func:`ffcvx.storage.open_source`, which names the ``pip install``).
    """

    client = 'fsspec'

    def __init__(self, url, storage_options=None, timeout=None, retries=None, expect=None,
                 immutable=False):
        super().__init__(url, storage_options, timeout, retries, expect, immutable)
        import fsspec
        protocol = url.split('://', 1)[0].lower()
        options = dict(self.storage_options)
        self._headers = {}
        if protocol in _HTTP:
            import aiohttp
            client_kwargs = dict(options.get('client_kwargs') or {})
            client_kwargs.setdefault('timeout', aiohttp.ClientTimeout(
                total=self.timeout, connect=min(self.timeout, 10.0)))
            options['client_kwargs'] = client_kwargs
            self._headers = dict(options.get('headers') or {})
        elif protocol in ('s3', 's3a'):
            config = dict(options.get('config_kwargs') or {})
            config.setdefault('connect_timeout', min(self.timeout, 10.0))
            config.setdefault('read_timeout', self.timeout)
            config.setdefault('retries', {'max_attempts': 1})
            options['config_kwargs'] = config
        # A filesystem of our own: fsspec's instance cache would share one
        # (and its listings cache) with the user's code and other Loaders.
        options['skip_instance_cache'] = True
        self._fs, self._path = fsspec.core.url_to_fs(url, **options)
        if protocol in ('s3', 's3a') and hasattr(self._fs, 'retries'):
            self._fs.retries = 1   # s3fs's own retry count (a class attribute, not an option)
        self._if_match = protocol in _HTTP
        self._s3 = protocol in ('s3', 's3a')
        self._open()

    def _head(self):
        self._fs.invalidate_cache(self._path)
        info = self._fs.info(self._path)
        if info.get('size') is None:
            raise OSError(f"{redact(self.location)}: the server does not say the file's size")
        etag = info.get('ETag') or info.get('etag') or info.get('md5Hash')
        version = info.get('VersionId') or info.get('generation') or info.get('version_id')
        modified = (info.get('Last-Modified') or info.get('LastModified') or info.get('updated')
                    or info.get('last_modified') or info.get('mtime'))
        return identity(info['size'], etag, version, modified)

    def _get(self, start, end):
        if self._if_match or self._s3:
            from fsspec.asyn import sync
            return sync(self._fs.loop, self._http_get if self._if_match else self._s3_get,
                        start, end)
        data = self._fs.cat_file(self._path, start=start, end=end)
        if self._expected is not None:
            self.check_version()
        return data, {}

    async def _http_get(self, start, end):
        """One ranged GET on fsspec's session: the body, and what the answer says of itself."""
        expected = self._expected or {}
        # identity: a compressed answer would be another length than the range asked for.
        headers = {**self._headers, 'Range': f"bytes={start}-{end - 1}",
                   'Accept-Encoding': 'identity'}
        if_match, unmodified_since = preconditions(expected)
        if if_match:
            headers['If-Match'] = if_match
        elif unmodified_since:
            headers['If-Unmodified-Since'] = unmodified_since
        options = {**self._fs.kwargs, 'headers': headers}
        session = await self._fs.set_session()
        async with session.get(self._fs.encode_url(self._path), **options) as response:
            status = response.status
            if status >= 400:
                response.raise_for_status()   # aiohttp's error carries the status
            content_range = response.headers.get('Content-Range')
            answer = {'status': status,
                      'answered_range': (parse_content_range(content_range)
                                         if content_range or status != 206 else False),
                      'found': {'etag': response.headers.get('ETag'),
                                'last_modified': response.headers.get('Last-Modified')}}
            if content_range and answer['answered_range'] is None:
                answer['answered_range'] = False    # present but unreadable
            if status == 200 and not (start == 0 and end == int(expected.get('size', -1))):
                return b'', answer   # the whole file: refused unread (check_answer)
            data = await _read_at_most(response.content.read, end - start + 1)
        return data, answer

    async def _s3_get(self, start, end):
        """One ranged GetObject through s3fs's client, conditional on the open-time version."""
        bucket, key, version = self._fs.split_path(self._path)
        expected = self._expected or {}
        request = {'Bucket': bucket, 'Key': key, 'Range': f"bytes={start}-{end - 1}"}
        if expected.get('version') or version:
            request['VersionId'] = expected.get('version') or version
        if_match, unmodified_since = preconditions(expected)
        if if_match:
            request['IfMatch'] = if_match
        elif as_datetime(unmodified_since):
            request['IfUnmodifiedSince'] = as_datetime(unmodified_since)
        response = await self._fs._call_s3('get_object', **request)
        try:
            data = await _read_at_most(response['Body'].read, end - start + 1)
        finally:
            response['Body'].close()
        content_range = response.get('ContentRange')
        answered = parse_content_range(content_range) if content_range else None
        return data, {
            'status': response.get('ResponseMetadata', {}).get('HTTPStatusCode'),
            'answered_range': False if content_range and answered is None else answered,
            'found': {'etag': response.get('ETag'), 'version': response.get('VersionId'),
                      'last_modified': response.get('LastModified')}}

    def _classify(self, exc):
        if isinstance(exc, FileNotFoundError) and exc.__cause__ is not None:
            # fsspec's HTTP info() reports any failure, a refused connection
            # too, as FileNotFoundError: the cause says what happened.
            return self._classify(exc.__cause__)
        if _cut_short(exc):
            return 'transient', None
        status = status_of(exc)
        if status is None and exc.__cause__ is not None and status_of(exc.__cause__):
            return self._classify(exc.__cause__)   # s3fs's OSError over botocore's answer
        if status is None and _no_answer(exc):
            return 'transient', None
        return classify(exc)

    def close(self):
        # fsspec's async filesystems close their sessions in finalizers of their own.
        self._fs = None


async def _read_at_most(read, limit):
    """Up to ``limit`` bytes of a body, by ``await read(n)`` calls (each may return fewer).

    Callers ask for one byte more than the range: a long body shows without
    reading a whole file.
    """
    chunks, got = [], 0
    while got < limit:
        chunk = await read(limit - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b''.join(chunks)


def _no_answer(exc):
    """Whether ``exc`` is a connection that failed: aiohttp's, or botocore's (s3fs).

    botocore's connection errors, and a body cut short (``IncompleteReadError``,
    aiobotocore's ``ResponseStreamingError``), are not ``OSError`` and carry no
    status, yet are the network's doing and worth a retry (REM-006).
    """
    kinds = []
    try:
        import aiohttp
        kinds.append(aiohttp.ClientError)
    except ImportError:  # pragma: no cover - only protocols without aiohttp
        pass
    try:
        from botocore import exceptions as boto
        kinds += [boto.HTTPClientError, boto.ConnectionError, boto.IncompleteReadError]
        kinds += [getattr(boto, 'ResponseStreamingError', boto.HTTPClientError)]
    except ImportError:  # pragma: no cover - only protocols without botocore
        pass
    return isinstance(exc, tuple(kinds))


def _cut_short(exc):
    """Whether ``exc`` is a body that ended early: the connection's fault, not the server's answer.

    aiohttp reports it as a payload error whose ``code`` is 400 (its own
    parser's status, not the server's), so it must be told apart before
    statuses are read.
    """
    try:
        import aiohttp
        from aiohttp import http_exceptions
    except ImportError:  # pragma: no cover - only protocols without aiohttp
        return False
    return isinstance(exc, (aiohttp.ClientPayloadError, http_exceptions.ContentLengthError,
                            http_exceptions.TransferEncodingError))
