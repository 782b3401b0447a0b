"""Key names of the Redis cache, the file identity they derive from, and their expiry.

Keys of a file with identity ``I`` (:func:`file_identity`, the content key of
:class:`ffcvx.storage.identity.FileIdentity`) under the prefix
``P`` (the manager's option ``prefix``, default ``ffcvx``):

* ``P:I:page:<n>``: the bytes of page ``n`` (file offset ``n * page_size``),
  for every page that holds sample data. A page is ``page_size`` bytes long,
  except the file's last page, which ends with the file.
* ``P:I:lock``: a random token, set with ``SET NX PX`` by the one process that
  fills; the filler renews the expiry after every chunk it writes. A filler
  that dies stops renewing, the key expires, and a waiting process takes over.
* ``P:I:complete``: ``{"pages": n, "page_size": s, "file_size": f}`` (JSON).
  Written last, in the same server-side script that checks that the lock is
  still the writer's and deletes it, so it never exists next to a half-filled
  set of pages. Readers use the pages only when it exists and matches the file.
* ``P:I:fills``: incremented once per fill started (how often the file was
  copied; for monitoring and tests).
* ``P:local:<L>``: the identity ``I`` of the file as one node sees it (``L``
  hashes host name, realpath, device, inode, size and mtime), so that each
  node hashes a version of the file once.

Expiry (option ``key_ttl``, seconds, default one day, at least
:data:`MIN_KEY_TTL`): every key above but the lock expires ``key_ttl`` after
it was last renewed, so the cache of a file nobody reads any more leaves the
server by itself, even when every user was killed. Users renew at
construction, at the start of each epoch and every ``key_ttl / 4`` during one;
a filler renews the pages it wrote every ``key_ttl / 4`` and every page once
more just before it writes the marker. Pages live ``key_ttl / 4`` longer than
the marker, so whenever the marker exists its pages do too; a renewal that
finds the marker or any page gone reports it (:meth:`KeyNames.renew`) and the
file is filled again.
"""
from ..storage.identity import FileIdentity, node_key

#: Seconds keys live without renewal unless the caller says otherwise: one day.
DEFAULT_KEY_TTL = 86400.0
#: Shortest ``key_ttl`` accepted, seconds: a filled cache must survive the round trips from
#: writing its marker to the renewal that follows, or every renewal would find it gone and
#: fill it again, forever.
MIN_KEY_TTL = 0.1


# Server-side scripts on the lock and marker keys, so that "is the lock still mine?" and the action that
# depends on it cannot be separated by another client's command.
RENEW_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
FINISH_FILL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    if ARGV[3] == '' then
        redis.call('SET', KEYS[2], ARGV[2])
    else
        redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
    end
    redis.call('DEL', KEYS[1])
    return 1
end
return 0
"""
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def file_identity(reader, mode='full'):
    """A content-derived name of the file, the same on every node and at every path.

    :meth:`ffcvx.storage.identity.FileIdentity.content_key` of ``reader``'s
    file. ``'full'`` (the default) hashes every byte, so the Redis cache
    computes it once per node and file version and keeps it on the server
    (key ``P:local:<L>``); ``'sampled'`` (opt-in, cheap) hashes the layout
    and a few chunks, so two files that differ only between the sampled
    chunks (e.g. one pixel of one image) share keys, which is why it is not
    the default.

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    mode : {'full', 'sampled'}

    Returns
    -------
    str
        32 hex digits; errors as ``content_key``'s (a wrong mode, an unreadable file).
    """
    return FileIdentity(reader).content_key(mode)


def local_memo_key(prefix, fname):
    """The key holding the identity of ``fname`` as this node sees it, ``P:local:<L>``.

    ``L`` hashes host name, realpath, device, inode, size and mtime (ns), so a
    rewritten or moved file gets a new memo and is hashed again.
    """
    return f"{prefix}:local:{node_key(fname)}"


def check_key_ttl(key_ttl):
    """``key_ttl`` as float seconds, or None (keys never expire).

    Parameters
    ----------
    key_ttl : float or None
        Seconds; at least :data:`MIN_KEY_TTL`.

    Raises
    ------
    ValueError
        If it is not None and not a number of seconds of at least
        :data:`MIN_KEY_TTL`.
    """
    if key_ttl is None:
        return None
    try:
        value = float(key_ttl)
    except (TypeError, ValueError):
        value = float('nan')
    if not value >= MIN_KEY_TTL:
        raise ValueError(f"redis cache: key_ttl must be positive seconds or None (never expire), "
                         f"at least {MIN_KEY_TTL} s so that a filled cache lives until its first "
                         f"renewal; got {key_ttl!r}")
    return value


class KeyNames:
    """The keys of one file under one prefix, and their expiry.

    Parameters
    ----------
    prefix : str
    identity : str
        From :func:`file_identity`.
    memo_key : str or None
        The node's identity memo (:func:`local_memo_key`), renewed with the
        others; None for the ``sampled`` identity, which keeps none.
    key_ttl : float or None
        Seconds the marker, counter and memo live after a renewal; pages live
        a quarter longer. None: no expiry.
    """

    def __init__(self, prefix, identity, memo_key, key_ttl):
        base = f"{prefix}:{identity}:"
        self.page_prefix = base + 'page:'
        self.lock, self.complete, self.fills = base + 'lock', base + 'complete', base + 'fills'
        self.memo = memo_key
        self.key_ttl = key_ttl

    def page(self, number):
        """The key of page ``number``."""
        return f"{self.page_prefix}{number}"

    @property
    def marker_ms(self):
        """Milliseconds the marker, counter and memo live after a renewal (None: forever)."""
        return None if self.key_ttl is None else max(1, int(self.key_ttl * 1000))

    @property
    def page_ms(self):
        """Milliseconds a page lives after a renewal: longer than the marker (None: forever)."""
        return None if self.key_ttl is None else self.marker_ms + max(1, self.marker_ms // 4)

    def _expire(self, client, pages, marker):
        """PEXPIRE the pages, counter, memo and (if ``marker``) the marker in one transaction.

        Returns whether every page (and the marker) still existed; the counter
        and memo are only bookkeeping, and a missing one is not reported.
        """
        pipe = client.pipeline(transaction=True)
        for page in pages:
            pipe.pexpire(self.page(page), self.page_ms)
        if marker:
            pipe.pexpire(self.complete, self.marker_ms)
        checked = len(pages) + bool(marker)
        pipe.pexpire(self.fills, self.marker_ms)
        if self.memo is not None:
            pipe.pexpire(self.memo, self.marker_ms)
        return all(pipe.execute()[:checked])

    def renew_pages(self, client, pages):
        """Push back the expiry of ``pages`` (and the counter and memo), not the marker's.

        Used by the filler while it writes and just before it writes the marker,
        so that pages always outlive it.

        Returns
        -------
        bool
            Whether every page still existed. Always True without a TTL.

        Raises
        ------
        redis.RedisError
            If the server fails.
        """
        return True if self.key_ttl is None else self._expire(client, pages, marker=False)

    def renew(self, client, pages):
        """Push back the expiry of every key of the file, in one transaction.

        Parameters
        ----------
        client : redis.Redis
        pages : list of int
            The file's data pages.

        Returns
        -------
        bool
            Whether the complete marker and every page still existed (False:
            the cache expired, in part or whole, or was flushed, and must be
            filled again). Without a TTL: whether they all exist.

        Raises
        ------
        redis.RedisError
            If the server fails.
        """
        if self.key_ttl is None:
            keys = [self.page(page) for page in pages] + [self.complete]
            return client.exists(*keys) == len(keys)
        return self._expire(client, pages, marker=True)
