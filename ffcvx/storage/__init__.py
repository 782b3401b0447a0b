"""Where a ``.beton`` file's bytes come from: a local path, or a URL (spec/remote.md).

:func:`open_source` turns what a user passes as a file (a path, ``file://``,
``s3://``, ``gs://``, ``az://``, ``http(s)://`` or any fsspec protocol) into
a :class:`~.source.Source`. Remote clients are optional extras (``pip install
ffcvx[s3]``, ``[gcs]``, ``[azure]``, ``[http]``); a URL without its client
names the extra to install.
"""
import os
import re

from ..errors import BackendNotFoundError
from .source import (DEFAULT_RETRIES, DEFAULT_TIMEOUT, LocalSource, RemoteSource, Source,
                     redact)

__all__ = ['open_source', 'reopen_source', 'network_options', 'is_url', 'is_s3', 'local_path', 'url_scheme', 'Source', 'LocalSource', 'RemoteSource',
           'redact', 'CLIENT_ENV', 'DEFAULT_TIMEOUT', 'DEFAULT_RETRIES']

#: Environment variable choosing the remote client: ``auto`` (default), ``obstore``, ``fsspec``.
CLIENT_ENV = 'FFCVX_REMOTE_CLIENT'
_SCHEME = re.compile(r'^([a-zA-Z][a-zA-Z0-9+.-]*)://')
#: The extra that installs each scheme's client (REM-010).
EXTRAS = {'s3': 's3', 's3a': 's3', 'gs': 'gcs', 'gcs': 'gcs', 'az': 'azure', 'abfs': 'azure',
          'abfss': 'azure', 'adl': 'azure', 'http': 'http', 'https': 'http'}


def url_scheme(location):
    """The lower-case scheme of a URL (``'s3'``), or None for a plain path."""
    if isinstance(location, Source):
        return url_scheme(location.location)
    if not isinstance(location, str):
        return None
    match = _SCHEME.match(location)
    return match.group(1).lower() if match else None


def is_url(location):
    """Whether ``location`` is read over the network (a URL other than ``file://``)."""
    if isinstance(location, Source):
        return location.remote
    return url_scheme(location) not in (None, 'file')


def is_s3(location):
    """Whether ``location`` is an S3 URL (``s3://`` or ``s3a://``), which some writers treat apart."""
    return url_scheme(location) in ('s3', 's3a')


def local_path(location):
    """The path of a local ``location``: a ``file://`` URL without its scheme, a path as it is.

    Parameters
    ----------
    location : str
        A path, or a URL of any scheme (returned unchanged but for ``file://``).
    """
    return location[len('file://'):] if url_scheme(location) == 'file' else location


#: ``cache_options`` keys that are a URL's network policy, not only its strategy's.
NETWORK_OPTIONS = ('client', 'timeout', 'retries', 'immutable')


def network_options(location, cache_options):
    """The keyword arguments of :func:`open_source` that a Loader's ``cache_options`` give.

    The Reader reads a URL's tables before the memory strategy exists, so a
    stalled server must time out as ``timeout``/``retries`` say from the
    first request on, not after the defaults (REM-006). Empty for a local
    path (the strategy refuses these options there).
    """
    if not is_url(location):
        return {}
    options = dict(cache_options or {})
    return {name: options[name] for name in NETWORK_OPTIONS if name in options}


def _install_hint(scheme):
    extra = EXTRAS.get(scheme)
    if extra:
        return f"pip install 'ffcvx[{extra}]'"
    return f"pip install fsspec, and the fsspec implementation of {scheme}://"


def open_source(location, storage_options=None, client=None, timeout=None, retries=None,
                expect=None, immutable=False):
    """A :class:`~.source.Source` for a path or URL.

    Parameters
    ----------
    location : str, os.PathLike or Source
        A Source is returned as it is.
    storage_options : dict or None
        Options of the URL's filesystem, fsspec's keys (REM-003); for a
        local path they must be empty.
    client : {None, 'auto', 'obstore', 'fsspec'}
        None: the environment variable ``FFCVX_REMOTE_CLIENT``, else
        ``'auto'``: obstore for s3, gs, az and http(s) when it is installed
        and the options translate (:func:`.obstore_source.translate`),
        fsspec otherwise.
    timeout : float or None, seconds
    retries : int or None
    expect : dict or None
        Identity the remote file must still have (see ``RemoteSource``).
    immutable : bool
        The user's word that a remote file is never replaced (REM-015).

    Returns
    -------
    Source

    Raises
    ------
    ffcvx.errors.BackendNotFoundError
        If the client a URL needs is not installed; the message says which
        ``pip install`` fixes it.
    ValueError
        For options given with a local path, or an unknown ``client``.
    ffcvx.errors.RemoteUnavailableError, FileNotFoundError
        If the remote file cannot be looked up.
    """
    if isinstance(location, Source):
        return location
    if not is_url(location):
        if storage_options:
            raise ValueError(f"storage_options are for URLs; {location!r} is a local path")
        path = os.fspath(location)
        return LocalSource(local_path(path))
    url = location
    scheme = url_scheme(url)
    client = (client or os.environ.get(CLIENT_ENV, '') or 'auto').strip().lower()
    if client not in ('auto', 'obstore', 'fsspec'):
        raise ValueError(f"remote client must be 'auto', 'obstore' or 'fsspec' (argument client "
                         f"or {CLIENT_ENV}), got {client!r}")
    options = dict(storage_options or {})
    if client in ('auto', 'obstore'):
        from .obstore_source import SCHEMES, translate
        usable = scheme in SCHEMES and translate(scheme, options) is not None \
            and '?' not in url
        try:
            import obstore  # noqa: F401
        except ImportError:
            usable = False
            if client == 'obstore':
                raise BackendNotFoundError(
                    f"{redact(url)}: the obstore client is not installed; "
                    f"{_install_hint(scheme)} installs it (or pip install obstore)") from None
        if usable:
            from .obstore_source import ObstoreSource
            return ObstoreSource(url, options, timeout, retries, expect, immutable)
        if client == 'obstore':
            raise ValueError(f"{redact(url)}: obstore cannot read this URL with these "
                             f"storage_options ({sorted(options)}); use client='fsspec'")
    try:
        import fsspec
        fsspec.get_filesystem_class(scheme)
    except (ImportError, ValueError) as exc:
        raise BackendNotFoundError(
            f"{redact(url)}: no client for {scheme}:// is installed ({exc}); "
            f"{_install_hint(scheme)} installs it") from None
    from .fsspec_source import FsspecSource
    return FsspecSource(url, options, timeout, retries, expect, immutable)


def reopen_source(source, timeout=None, retries=None, client=None):
    """A source of the same file and version as ``source``, with its own connections.

    A local source is returned as it is. A remote one is opened again with
    :func:`open_source`, pinned to the version ``source`` read (its
    ``identity()``, REM-004), so the new connections cannot see another
    version; None keeps ``source``'s timeout, retries and client.

    Parameters
    ----------
    source : Source
    timeout : float or None, seconds
    retries : int or None
    client : {None, 'auto', 'obstore', 'fsspec'}

    Returns
    -------
    Source

    Raises
    ------
    Same as :func:`open_source`.
    """
    if not source.remote:
        return source
    return open_source(source.location, source.storage_options, client=client or source.client,
                       timeout=source.timeout if timeout is None else timeout,
                       retries=source.retries if retries is None else retries,
                       expect=source.identity(), immutable=source.immutable)
