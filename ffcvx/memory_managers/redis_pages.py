"""The Redis cache's page source: ``MGET`` from the server, the local file when it fails.

Used by :class:`~.redis_cache.RedisCacheManager` (the keys are described in
:mod:`.redis_keys`). With ``fallback='os'`` a server that fails, or a page
that is missing or of the wrong length, switches the source to the local
file (:class:`~ffcvx.storage.pages.LocalPages`) for the rest of its life,
with one ``RuntimeWarning``; without it, such a failure raises
:class:`~ffcvx.errors.CacheUnavailableError`.
"""
import threading
import warnings

try:
    import redis
except ImportError as exc:   # an optional extra since the package's first releases with it
    raise ImportError(f"the redis memory strategy needs the redis client, which is not installed "
                      f"({exc}); pip install 'ffcvx[redis]' installs it") from exc

from ..errors import CacheUnavailableError
from ..storage.pages import LocalPages, PageSource

#: Environment variable naming the server (read when a manager is made).
ENV_URL = 'FFCV_REDIS_URL'


class RedisPages(PageSource):
    """Pages of a file from a Redis server, with a local fallback.

    Parameters
    ----------
    reader : ffcvx.reader.Reader
        Of a local file (the fill's and the fallback's source).
    client : redis.Redis
        Closed by :meth:`close`, as is the local file.
    url : str
        The server, password redacted (for messages).
    fallback : {None, 'os'}
    pages_per_read : int
        Pages per ``MGET``; any pages may be joined.

    Attributes
    ----------
    local : ffcvx.storage.pages.LocalPages
        The local file.
    keys : ffcvx.memory_managers.redis_keys.KeyNames or None
        The file's keys, set by the manager once the identity is known.
    serving_from_file : bool
        Whether pages now come from the local file (after a failure, with
        ``fallback='os'``).

    Raises
    ------
    OSError
        If the local file cannot be opened.
    """

    def __init__(self, reader, client, url, fallback, pages_per_read):
        super().__init__(reader)
        self.local = LocalPages(reader)
        self.client, self.url, self.fallback = client, url, fallback
        self.pages_per_read = int(pages_per_read)
        self.keys = None
        self.serving_from_file = False
        self._switch_lock = threading.Lock()

    def read(self, pages, views):
        """Fetch pages with one ``MGET``, checking every page's length.

        Raises
        ------
        ffcvx.errors.CacheUnavailableError
            If the server fails, or a page is missing or has the wrong length,
            and ``fallback`` is None.
        OSError
            If the local file cannot be read after a fallback.
        """
        if not self.serving_from_file:
            try:
                values = self.client.mget([self.keys.page(p) for p in pages])
            except redis.RedisError as exc:
                what = f"page {pages[0]}" if len(pages) == 1 else f"pages {', '.join(map(str, pages))}"
                self.unavailable(f"while fetching {what}", exc)
            else:
                for page, view, value in zip(pages, views, values):
                    expected = self.page_length(page)
                    if value is None:
                        self.unavailable(
                            'mid-epoch', f"page {page} is missing (key {self.keys.page(page)!r}; "
                            f"flushed, or evicted by a maxmemory-policy other than noeviction?)")
                        break
                    if len(value) != expected:
                        self.unavailable('mid-epoch', f"page {page} has {len(value)} bytes, "
                                         f"expected {expected}")
                        break
                    view[:expected] = value
                else:
                    return
        self.local.read(pages, views)

    def unavailable(self, what, cause=None):
        """Raise CacheUnavailableError, or switch to the local file if ``fallback='os'``.

        Parameters
        ----------
        what : str
            When the server failed (``'mid-epoch'``), for the message.
        cause : BaseException or str or None
            The failure.

        Raises
        ------
        ffcvx.errors.CacheUnavailableError
            If ``fallback`` is None; the message names the URL and the file.
        """
        reason = f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException) else cause
        message = f"redis cache at {self.url} is unavailable {what}: {reason}"
        fname = self.reader.fname
        if self.fallback is None:
            raise CacheUnavailableError(
                f"{message} (file {fname}; start the server or fix "
                f"cache_options['url'] / {ENV_URL}, or pass cache_options={{'fallback': 'os'}} "
                f"to read the local file instead)") from (cause if isinstance(cause, BaseException)
                                                          else None)
        with self._switch_lock:
            if self.serving_from_file:
                return
            self.serving_from_file = True
        warnings.warn(f"{message}; reading the local file {fname} instead "
                      f"(fallback='os')", RuntimeWarning, stacklevel=3)

    def close(self):
        """Close the local file and the server connections (a later command would reconnect)."""
        try:
            self.local.close()
        finally:
            self.client.close()
