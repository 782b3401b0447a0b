"""Strategy 3: pages served by a Redis server that many processes and nodes share.

The file is copied into Redis once, page by page; afterwards every reader, on
any node, fetches the pages it needs from the server instead of its disk. The
local part is a :class:`~.paged_cache.PagedCache` (a bounded set of page
slots filled ahead of need, in the epoch's order, by reader threads) over
:class:`~.redis_pages.RedisPages`: ``MGET`` instead of ``preadv``, and the
local file if the server fails and ``fallback='os'``.

The copy on the server (checked, renewed, filled by one process at a time)
is :class:`~.redis_fill.ServerCopy`. The client is an optional extra:
``pip install 'ffcvx[redis]'``.

Key names, the file identity and the keys' expiry (option ``key_ttl``, one
day by default, renewed at construction, each epoch and every ``key_ttl / 4``)
are described in :mod:`.redis_keys`. A connection pool is held per manager and
closed by ``close()``, by garbage collection of the manager, or at exit.

The server must not evict keys (``maxmemory-policy noeviction``, Redis's
default): a page that disappears mid-epoch is reported, not refetched (one
found missing at a renewal makes the file be filled again).
"""
import os
import time
import urllib.parse

# First: it names the extra to install when the client is missing.
from .redis_pages import ENV_URL, RedisPages, redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .paged_cache import DEFAULT_READERS, PagedCache
from .redis_fill import ServerCopy
from .redis_keys import DEFAULT_KEY_TTL, KeyNames, check_key_ttl, local_memo_key
from .redis_keys import file_identity  # noqa: F401  (importable from here, as before)

__all__ = ['RedisCacheManager', 'file_identity', 'redact_url', 'DEFAULT_KEY_TTL']

#: Server used when neither ``url`` nor ``FFCV_REDIS_URL`` names one.
DEFAULT_URL = 'redis://127.0.0.1:6379/0'
#: Seconds a connect or a reply may take before the server counts as unavailable.
DEFAULT_TIMEOUT = 5.0
#: Seconds the fill lock lives without renewal: how long others wait for a dead filler.
DEFAULT_LOCK_TTL = 30.0
#: Bytes one reader thread asks for per ``MGET``: few round trips (4 pages of the
#: default 8 MiB), and a reply no larger than this.
_FETCH_BYTES = 32 << 20
#: Most pages per ``MGET``, whatever their size.
_MAX_PAGES_PER_FETCH = 16


def redact_url(url):
    """``url`` with its password replaced by ``***``, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ''
    host = parts.hostname or ''
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class RedisCacheManager(PagedCache):
    """Serves pages from a Redis server, filled once per file (strategy 3).

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    url : str or None
        ``redis://[[user]:password@]host[:port][/db]`` (or ``rediss://``,
        ``unix://``). None: the environment variable ``FFCV_REDIS_URL`` when
        the manager is made, else ``redis://127.0.0.1:6379/0``.
    timeout : float
        Seconds a connection attempt or a reply may take (socket connect and
        read timeouts). A server that does not answer in time is unavailable.
    fallback : {None, 'os'}
        None: an unavailable server raises
        :class:`~ffcvx.errors.CacheUnavailableError`. ``'os'``: warn
        (``RuntimeWarning``) and read the local file instead, at construction
        or from the moment the server fails mid-epoch, for the rest of this
        manager's life.
    max_bytes : int or None
        Bound on page bytes held locally at once (see
        :class:`~.paged_cache.PagedCache`).
    readers : int
        Threads fetching pages ahead of need.
    pages_per_read : int or None
        Pages per ``MGET``; None: as many as fit in 32 MiB (1 to 16).
    prefix : str
        First part of every key, to keep ffcvx's keys apart from others'.
    lock_ttl : float
        Seconds the fill lock survives without renewal: the longest another
        process waits for a filler that died.
    identity : {'full', 'sampled'}
        How the file's key is derived; see :func:`file_identity`. ``'full'``
        hashes the whole file the first time a node opens this version of it
        (same realpath, device, inode, size and mtime) and stores the result
        on the server under ``prefix:local:<hash of those and the host
        name>``, so later processes on that node, and later runs, only look
        it up.
    retries : int
        Retries of a failed command, at once, on a fresh connection (a
        server may close idle connections); 0 for none.
    key_ttl : float or None
        Seconds the file's keys live on the server after their last renewal
        (default one day); renewed at construction, at the start of each
        epoch and every ``key_ttl / 4`` during one, so a cache nobody uses
        leaves the server by itself, killed users included. A cache whose
        marker or any page expired is filled again by the next user. At
        least :data:`~.redis_keys.MIN_KEY_TTL` (0.1 s). None: keys never expire.

    Attributes
    ----------
    url : str
        The server, password redacted.
    identity : str
        The file's identity (32 hex digits); keys start with ``prefix:identity:``.
    filled : bool
        Whether this manager copied the file into Redis (False: it was there).
    serving_from_file : bool
        Whether pages now come from the local file (``fallback='os'`` after
        the server failed).

    Raises
    ------
    ValueError
        For invalid options or a URL redis-py cannot parse.
    ffcvx.errors.CacheUnavailableError
        If the server cannot be reached or fails while the file is checked or
        filled, and ``fallback`` is None. The message names the URL.
    """

    # Every process, on any node, reads the one copy on the server ...
    shared_across_processes = True
    # ... which must run, at the address ``url`` names.
    needs_server = True

    def __init__(self, reader, url=None, timeout=DEFAULT_TIMEOUT, fallback=None, max_bytes=None,
                 readers=DEFAULT_READERS, pages_per_read=None, prefix='ffcvx',
                 lock_ttl=DEFAULT_LOCK_TTL, identity='full', retries=1, key_ttl=DEFAULT_KEY_TTL):
        if fallback not in (None, 'os'):
            raise ValueError(f"redis cache: fallback must be None or 'os', got {fallback!r}")
        if not float(timeout) > 0:
            raise ValueError(f"redis cache: timeout must be positive seconds, got {timeout!r}")
        if not float(lock_ttl) > 0:
            raise ValueError(f"redis cache: lock_ttl must be positive seconds, got {lock_ttl!r}")
        if int(retries) < 0:
            raise ValueError(f"redis cache: retries must be 0 or more, got {retries!r}")
        key_ttl = check_key_ttl(key_ttl)
        page_size = int(reader.page_size)
        if pages_per_read is None:
            pages_per_read = max(1, min(_MAX_PAGES_PER_FETCH, _FETCH_BYTES // page_size))
        if int(pages_per_read) < 1:
            raise ValueError(f"redis cache: pages_per_read must be at least 1, got {pages_per_read}")
        if identity not in ('sampled', 'full'):
            raise ValueError(f"redis cache: identity must be 'sampled' or 'full', got {identity!r}")
        raw_url = url if url is not None else (os.environ.get(ENV_URL, '').strip() or DEFAULT_URL)
        self.url = redact_url(raw_url)
        try:
            client = redis.Redis.from_url(
                raw_url, socket_timeout=float(timeout), socket_connect_timeout=float(timeout),
                retry=Retry(NoBackoff(), int(retries)), health_check_interval=0)
        except ValueError as exc:
            raise ValueError(f"redis cache: cannot use URL {self.url!r}: {exc}") from None
        try:
            pages = RedisPages(reader, client, self.url, fallback, pages_per_read)
        except BaseException:
            client.close()
            raise
        # The paged cache closes the source (file and connections) once its
        # reader threads stopped: a command issued after close() would reconnect.
        super().__init__(reader, pages, max_bytes=max_bytes, readers=readers)
        try:
            self.timeout, self.fallback, self.lock_ttl = float(timeout), fallback, float(lock_ttl)
            self.key_ttl = key_ttl
            self.identity = None
            # Every page a batch can ask for: the pages of the samples' regions.
            self._data_pages = self.data_pages()
            self.filled = False
            self._client = client
            self._renewed_at = None
            try:
                self._set_identity(identity, prefix)
                self._copy = ServerCopy(client, self._keys, pages, self._data_pages, self.lock_ttl)
                self._renew_keys()
            except redis.RedisError as exc:
                self._unavailable('while checking or filling the cache', exc)
        except BaseException:
            self.close()
            raise

    pages_per_read = property(lambda self: self.page_source.pages_per_read)
    serving_from_file = property(lambda self: self.page_source.serving_from_file)

    # -- filling ------------------------------------------------------------------------

    def _set_identity(self, mode, prefix):
        """Find the file's identity and the key names derived from it.

        A ``'full'`` identity is looked up on the server first, by this node's
        view of the file (host, realpath, device, inode, size, mtime in ns):
        hashing a large file takes a while, so each node does it once per
        version of the file. Talks to the server, so RedisError may escape.
        """
        memo_key = known = None
        if mode == 'full':
            memo_key = local_memo_key(prefix, self.reader.fname)
            known = self._client.get(memo_key)
        if known is not None:
            self.identity = known.decode('ascii')
        else:
            self.identity = self.page_source.identity().content_key(mode)
            if memo_key is not None:
                ttl_ms = None if self.key_ttl is None else max(1, int(self.key_ttl * 1000))
                self._client.set(memo_key, self.identity, px=ttl_ms)
        self._keys = self.page_source.keys = KeyNames(prefix, self.identity, memo_key, self.key_ttl)

    def _renew_keys(self):
        """Renew the keys' expiry, refilling a cache expired even in part (RedisError escapes)."""
        if self._copy.ensure_filled():
            self.filled = True
        self._renewed_at = time.monotonic()

    def _renew_due(self):
        """Renew if ``key_ttl / 4`` passed since the last renewal (called per batch)."""
        if (self.key_ttl is None or self.serving_from_file or self._renewed_at is None
                or self._client is None):
            return
        if time.monotonic() - self._renewed_at >= self.key_ttl / 4:
            try:
                self._renew_keys()
            except redis.RedisError as exc:
                self._unavailable('while renewing the expiry of its keys', exc)

    def schedule_epoch(self, batches):
        """Renew the keys' expiry (refilling an expired cache), then plan the epoch.

        Raises
        ------
        ffcvx.errors.CacheUnavailableError
            If the server fails and ``fallback`` is None.
        """
        if not self.serving_from_file and self._client is not None:
            try:
                self._renew_keys()
            except redis.RedisError as exc:
                self._unavailable('while renewing the expiry of its keys', exc)
        return super().schedule_epoch(batches)

    def start_batch(self, batch_number):
        self._renew_due()
        super().start_batch(batch_number)

    def _unavailable(self, what, cause=None):
        """Raise CacheUnavailableError, or switch to the local file (:meth:`.RedisPages.unavailable`)."""
        self.page_source.unavailable(what, cause)

    def close(self):
        """Stop the reader threads, close the file and the server connections; idempotent."""
        super().close()
        self._client = None
