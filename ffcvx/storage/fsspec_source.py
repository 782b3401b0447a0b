"""Remote files through fsspec: any protocol it has an implementation for (REM-001).

``storage_options`` go to the filesystem unchanged (s3fs's ``key``,
``secret``, ``endpoint_url``; gcsfs's ``token``; adlfs's ``account_name``;
HTTP's ``headers`` ...). ffcvx adds its timeout to s3fs and HTTP and turns
their own retries off (ffcvx retries, REM-006).

The version check (REM-004): over HTTP(S) every GET carries ``If-Match``.
fsspec has no such option for the other protocols, so after every read the
file is looked up again (``info``, uncached) and a read of a version other
than the open-time one is refused: a request per read more, for reads of
whole pages (megabytes), and never bytes of two versions.
"""
from .source import RemoteSource, classify, redact, status_of

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

    def __init__(self, url, storage_options=None, timeout=None, retries=None, expect=None):
        super().__init__(url, storage_options, timeout, retries, expect)
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
        self._open()

    def _head(self):
        self._fs.invalidate_cache(self._path)
        info = self._fs.info(self._path)
        if info.get('size') is None:
            raise OSError(f"{redact(self.location)}: the server does not say the file's size")
        etag = info.get('ETag') or info.get('etag') or info.get('md5Hash')
        version = info.get('VersionId') or info.get('generation') or info.get('version_id')
        return {'size': int(info['size']), 'etag': etag, 'version': version}

    def _get(self, start, end):
        etag = self._expected.get('etag') if self._expected else None
        if self._if_match and etag:
            return self._fs.cat_file(self._path, start=start, end=end,
                                     headers={**self._headers, 'If-Match': etag})
        data = self._fs.cat_file(self._path, start=start, end=end)
        if not self._if_match and self._expected is not None:
            self.check_version()
        return data

    def _classify(self, exc):
        if isinstance(exc, FileNotFoundError) and exc.__cause__ is not None:
            # fsspec's HTTP info() reports any failure, a refused connection
            # too, as FileNotFoundError: the cause says what happened.
            return self._classify(exc.__cause__)
        status = status_of(exc)
        if status is None:
            try:
                import aiohttp
                if isinstance(exc, aiohttp.ClientError):
                    return 'transient', None
            except ImportError:  # pragma: no cover - only protocols without aiohttp
                pass
        return classify(exc)

    def close(self):
        # fsspec's async filesystems close their sessions in finalizers of their own.
        self._fs = None
