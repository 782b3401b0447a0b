"""The Redis cache's copy of a file on the server: checked, renewed, filled by one process at a time.

The keys and their expiry are described in :mod:`.redis_keys`. A process
that finds the copy incomplete (no marker, a marker of another file, or a
page gone) takes the fill lock and copies every data page, in pipelined
chunks, renewing the lock after each; the marker is written last, in the
script that checks the lock is still its own. Others wait for the lock.
"""
import json
import time
import uuid

from .redis_keys import FINISH_FILL, RELEASE_LOCK, RENEW_LOCK
from .redis_pages import redis

#: Bytes written per pipelined round trip while filling (the lock is renewed after each).
_FILL_CHUNK_BYTES = 32 << 20


def read_local_page(pages, page):
    """Bytes of page ``page`` of the local file (the fill's source); fewer only if it shrank.

    Parameters
    ----------
    pages : ffcvx.memory_managers.redis_pages.RedisPages
    page : int
    """
    return pages.local.source.read(page * pages.page_size, pages.page_length(page))


class _FillLost(Exception):
    """Our fill lock expired and another process took it over, or pages vanished mid-fill."""


class ServerCopy:
    """One file's pages on a Redis server.

    Parameters
    ----------
    client : redis.Redis
    keys : ffcvx.memory_managers.redis_keys.KeyNames
        The file's keys and their expiry.
    pages : ffcvx.memory_managers.redis_pages.RedisPages
        The file's page geometry and local pages (what a fill copies).
    data_pages : list of int
        Every page a batch can ask for, sorted.
    lock_ttl : float, seconds
        Life of the fill lock without renewal.
    """

    def __init__(self, client, keys, pages, data_pages, lock_ttl):
        self.client, self.keys, self.pages = client, keys, pages
        self.data_pages, self.lock_ttl = data_pages, float(lock_ttl)
        self.marker = {'pages': len(data_pages), 'page_size': pages.page_size,
                       'file_size': pages.file_size}
        self._renew = client.register_script(RENEW_LOCK)
        self._finish = client.register_script(FINISH_FILL)
        self._release = client.register_script(RELEASE_LOCK)

    def complete(self):
        """Whether the complete marker exists and describes this file."""
        raw = self.client.get(self.keys.complete)
        if raw is None:
            return False
        try:
            return json.loads(raw) == self.marker
        except ValueError:
            return False  # garbage under our key: refill rather than trust it

    def usable(self):
        """Whether the marker describes this file and it and every page exist (renewing them)."""
        return self.complete() and self.keys.renew(self.client, self.data_pages)

    def ensure_filled(self):
        """Return once the pages are in Redis with fresh expiry, filling them if no one else is.

        Returns
        -------
        bool
            Whether this call filled them.

        Raises
        ------
        redis.RedisError
            If the server fails.
        OSError
            If the local file cannot be read, or changed while being copied.
        """
        pause, lock = 0.02, self.keys.lock
        while True:
            if self.usable():
                return False
            token = uuid.uuid4().hex
            if self.client.set(lock, token, nx=True, px=int(self.lock_ttl * 1000)):
                try:
                    # Someone may have finished between our check and the lock.
                    if not self.usable():
                        self.fill(token)
                        return True
                    self._release(keys=[lock], args=[token])
                    return False
                except _FillLost:
                    # Another process took over (wait for it), or pages vanished: fill again.
                    self._release(keys=[lock], args=[token])
                    continue
                except BaseException:
                    # Let the next process fill now instead of after lock_ttl.
                    try:
                        self._release(keys=[lock], args=[token])
                    except redis.RedisError:
                        pass
                    raise
            # Another process fills; its lock expires if it dies.
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def fill(self, token):
        """Copy every data page into Redis, then write the complete marker.

        Pages written are renewed every ``key_ttl / 4`` while the fill runs, and
        all of them once more just before the marker is written, so a fill
        slower than the keys' TTL cannot leave a marker whose pages expired.

        Raises
        ------
        _FillLost
            If the lock expired (this process was slower than ``lock_ttl``
            between two chunks) and another process holds it now, or a page
            written vanished before the marker could be set.
        """
        client, names, source = self.client, self.keys, self.pages
        client.incr(names.fills)
        names.renew_pages(client, [])  # gives the counter its expiry
        # A marker of an older, different fill must not outlive the pages it described.
        client.delete(names.complete)
        ttl_ms = int(self.lock_ttl * 1000)
        per_chunk = max(1, _FILL_CHUNK_BYTES // source.page_size)
        pages, renewed = self.data_pages, time.monotonic()
        for start in range(0, len(pages), per_chunk):
            if names.key_ttl is not None and time.monotonic() - renewed >= names.key_ttl / 4:
                names.renew_pages(client, pages[:start])  # the ones written so far
                renewed = time.monotonic()
            pipe = client.pipeline(transaction=False)
            for page in pages[start:start + per_chunk]:
                data = read_local_page(source, page)
                expected = source.page_length(page)
                if len(data) != expected:
                    raise OSError(f"{source.reader.fname}: page {page} is {len(data)} bytes, "
                                  f"expected {expected} (file changed while being cached?)")
                pipe.set(names.page(page), data, px=names.page_ms)
            pipe.execute()
            if not self._renew(keys=[names.lock], args=[token, ttl_ms]):
                raise _FillLost()
        if not names.renew_pages(client, pages):
            raise _FillLost()
        if not self._finish(keys=[names.lock, names.complete],
                            args=[token, json.dumps(self.marker, sort_keys=True),
                                  '' if names.marker_ms is None else names.marker_ms]):
            raise _FillLost()
