"""Remote files through obstore: S3, GCS, Azure and plain HTTP(S) (the fast path, REM-002).

obstore is a thin binding of Rust's ``object_store``: requests run without
the GIL on a runtime of its own, so the memory strategy's reader threads
fetch in parallel, and it needs no event loop and no fork. Every ranged GET
carries ``If-Match`` with the ETag seen at open, or ``If-Unmodified-Since``
with its ``Last-Modified`` where there is no ETag (REM-004), so a replaced
object answers 412 instead of new bytes; the range and validators of every
answer are checked as well (REM-013).

Options are fsspec's (``storage_options``, what users already pass to
pandas or s3fs); :func:`translate` maps the ones obstore has to its own
names. A URL whose options do not all translate is read by the fsspec
client instead (:func:`ffcvx.storage.open_source` decides).
"""
import re
from urllib.parse import urlsplit

from .source import RemoteSource, classify, redact, status_of
from .validators import as_datetime, identity, preconditions

#: object_store's text when the answer's range is not the one asked for.
_WRONG_RANGE = re.compile(r'Requested \d+\.\.\d+, got \d+\.\.\d+')

#: URL schemes obstore serves, and the store class each maps to.
SCHEMES = {'s3': 's3', 's3a': 's3', 'gs': 'gcs', 'gcs': 'gcs', 'az': 'azure', 'abfs': 'azure',
           'abfss': 'azure', 'http': 'http', 'https': 'http'}
#: fsspec (s3fs) option -> obstore S3 config key.
_S3_KEYS = {'key': 'access_key_id', 'secret': 'secret_access_key', 'token': 'session_token',
            'endpoint_url': 'endpoint'}


def translate(scheme, storage_options):
    """obstore's config for fsspec-style ``storage_options``, or None if some option has none.

    Parameters
    ----------
    scheme : str
        One of :data:`SCHEMES`.
    storage_options : dict
        s3fs's ``key``, ``secret``, ``token``, ``endpoint_url``, ``anon`` and
        ``client_kwargs={'region_name', 'endpoint_url'}`` translate for S3;
        for the other schemes only empty options (credentials then come from
        the environment, as obstore reads them).

    Returns
    -------
    dict or None
        Keyword arguments of ``obstore.store.from_url``, without client options.
    """
    options = dict(storage_options)
    if not options:
        return {}
    if SCHEMES[scheme] != 's3':
        return None
    config = {}
    for name, value in options.items():
        if name in _S3_KEYS:
            config[_S3_KEYS[name]] = value
        elif name == 'anon':
            config['skip_signature'] = bool(value)
        elif name == 'client_kwargs' and isinstance(value, dict) and \
                set(value) <= {'region_name', 'endpoint_url'}:
            if 'region_name' in value:
                config['region'] = value['region_name']
            if 'endpoint_url' in value:
                config['endpoint'] = value['endpoint_url']
        else:
            return None
    return config


class ObstoreSource(RemoteSource):
    """A file at ``s3://``, ``gs://``, ``az://`` or ``http(s)://`` read with obstore.

    Parameters are those of :class:`~.source.RemoteSource`; the options must
    translate (:func:`translate`).

    Raises
    ------
    ValueError
        If the options do not translate or the URL names no object.
    """

    client = 'obstore'

    def __init__(self, url, storage_options=None, timeout=None, retries=None, expect=None,
                 immutable=False):
        super().__init__(url, storage_options, timeout, retries, expect, immutable)
        import obstore
        from obstore.store import from_url
        self._obstore = obstore
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        config = translate(scheme, self.storage_options)
        if config is None:
            raise ValueError(f"{redact(url)}: storage_options {sorted(self.storage_options)} have "
                             f"no obstore equivalent; use the fsspec client")
        client_options = {'timeout': f"{self.timeout}s",
                          'connect_timeout': f"{min(self.timeout, 10.0)}s"}
        endpoint = config.get('endpoint') or (url if SCHEMES[scheme] == 'http' else '')
        if endpoint.startswith('http://'):
            client_options['allow_http'] = True
        if SCHEMES[scheme] == 'http':
            # The store is the server; the object is the path under it.
            base, self._path = f"{scheme}://{parts.netloc}/", parts.path.lstrip('/')
        else:
            base, self._path = f"{scheme}://{parts.netloc}", parts.path.lstrip('/')
        if not self._path or parts.query:
            raise ValueError(f"{redact(url)}: the URL must name one object (no query string "
                             f"for the obstore client)")
        # ffcvx retries (REM-006), so obstore's own retries are off: one policy, one count.
        self._store = from_url(base, **config, client_options=client_options,
                               retry_config={'max_retries': 0})
        self._open()

    def _head(self):
        meta = self._obstore.head(self._store, self._path)
        return identity(meta['size'], meta.get('e_tag'), meta.get('version'),
                        meta.get('last_modified'))

    def _get(self, start, end):
        options = {'range': (start, end)}
        expected = self._expected or {}
        if_match, unmodified_since = preconditions(expected)
        if if_match:
            options['if_match'] = if_match
        elif as_datetime(unmodified_since):
            options['if_unmodified_since'] = as_datetime(unmodified_since)
        if expected.get('version'):
            options['version'] = expected['version']
        result = self._obstore.get(self._store, self._path, options=options)
        data = result.bytes()
        meta = result.meta
        # object_store has checked the status and Content-Range start and end;
        # the total it parsed is the object's size, and the validators are the answer's.
        got_start, got_end = result.range
        return data, {'answered_range': (int(got_start), int(got_end), int(meta['size'])),
                      'found': {'etag': meta.get('e_tag'), 'version': meta.get('version'),
                                'last_modified': meta.get('last_modified')}}

    def _classify(self, exc):
        from obstore import exceptions as errors
        if isinstance(exc, errors.PreconditionError):
            return 'changed', 412
        if (isinstance(exc, errors.NotSupportedError) and 'Range' in str(exc)) or \
                'non-partial response when range requested' in str(exc):
            return 'range', 200     # the server answered the whole file (HTTP store; S3 store)
        if _WRONG_RANGE.search(str(exc)):
            return 'range', 206
        if isinstance(exc, (errors.NotFoundError, FileNotFoundError)):
            return 'missing', 404
        if isinstance(exc, (errors.PermissionDeniedError, errors.UnauthenticatedError)):
            return 'denied', status_of(exc)
        if isinstance(exc, errors.GenericError) and status_of(exc) is None:
            return 'transient', None   # refused, reset, timed out: no HTTP status
        return classify(exc)

    def close(self):
        # Dropping the store drops its connection pool (the sockets close with it).
        self._store = None
