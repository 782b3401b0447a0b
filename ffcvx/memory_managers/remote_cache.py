"""Strategy ``remote``: pages of a file in object storage or on a web server, fetched ahead of need.

A :class:`~.paged_cache.PagedCache` (before an epoch the plan says which
pages each batch needs and when; a bounded arena of page slots is filled by
reader threads in that order, several requests in flight) over
:class:`~ffcvx.storage.pages.RemotePages`: range requests through the
Reader's :class:`~ffcvx.storage.Source` (obstore or fsspec), adjacent pages
coalesced into one request (REM-008), and an optional disk cache on the node
(``cache_dir``) consulted first and filled on the way (REM-009). Each rank of a distributed run plans only its own batches, so it
fetches only its shard's pages.

When the arena holds every page of the file (the default, for a file that
fits in half the free memory), pages stay in it from one epoch to the next:
each page is fetched once per Loader, not once per epoch, so later epochs
cost no requests and no egress (REM-008). A smaller arena follows the
process cache's plan, epoch by epoch.

A local path works too (its pages are read with ``pread``), which is how the
conformance suite checks the strategy without a server.
"""
from ..storage import redact, reopen_source
from ..storage.identity import FileIdentity
from ..storage.pages import RemotePages
from .paged_cache import PagedCache

#: Reader threads by default: requests wait on the network, not on a core.
DEFAULT_READERS = 8
#: Bytes one request asks for at most when pages are coalesced: large enough that
#: the round trip is a small part of it, small enough that several run at once.
REQUEST_BYTES = 8 << 20
#: Most pages in one request, whatever their size.
MAX_PAGES_PER_REQUEST = 64


def cache_key(source):
    """Hex digest naming a remote file's version in the disk cache (:meth:`.FileIdentity.version_key`)."""
    return FileIdentity(None, source).version_key()


class RemoteCacheManager(PagedCache):
    """Reads a remote file's pages ahead of need into a bounded arena (strategy ``remote``).

    Chosen by itself for a URL (``Loader('s3://...')``); spec/remote.md.

    Parameters
    ----------
    reader : ffcvx.reader.Reader
        Opened on a URL (or a local path).
    max_bytes : int or None, bytes
        Bound on page bytes held in memory at once. None: the smaller of the
        file's pages and half the memory available now. When every page
        fits, each is fetched once and kept for later epochs; otherwise each
        epoch fetches what it needs, each page at most once in RANDOM order
        when it fits, and QUASI_RANDOM keeps a few pages at a time (REM-008).
    readers : int
        Threads fetching pages, each with one request in flight.
    pages_per_read : int or None
        Most adjacent pages fetched by one request; None: as many as fit in
        8 MiB (1 to 64).
    cache_dir : str or os.PathLike or None
        Folder of a disk cache shared by the runs and processes of the node,
        keyed by the file's URL, size, ETag and version (REM-009). None: no
        disk cache.
    max_cache_bytes : int or None, bytes
        Bound on the disk cache folder (all files in it); least recently used
        pages go first. None: unbounded.
    timeout : float or None, seconds
        Per request (default 30).
    retries : int or None
        Retries of a transient failure (408, 429, 5xx, refused, reset, timed
        out), with exponential backoff from 0.1 s (default 4).
    client : {None, 'obstore', 'fsspec'}
        Client of the page requests; None: the Reader's.
    immutable : bool
        The user's word that the file is never replaced. Needed for a disk
        cache of a file whose server sends no validator (no ETag, version or
        Last-Modified): without it such a file's pages are not kept on disk,
        since a replacement of the same size could not be told apart (REM-015).

    Attributes
    ----------
    source : ffcvx.storage.Source
        The requests' source (its ``requests`` and ``bytes_received`` count).
    disk_cache : ffcvx.storage.disk_pages.DiskPageCache or None
    keeps_pages : bool
        Whether the arena holds every page, which then stays from one epoch to the next.

    Raises
    ------
    ValueError
        For invalid options, or ``timeout``, ``retries`` or ``client`` with a
        local file.
    ffcvx.errors.RemoteFileChangedError
        If the file was replaced since the Reader opened it.
    """

    #: Whether the strategy reads files given by URL (``select_strategy`` checks it).
    reads_urls = True

    def __init__(self, reader, max_bytes=None, readers=DEFAULT_READERS, pages_per_read=None,
                 cache_dir=None, max_cache_bytes=None, timeout=None, retries=None, client=None,
                 immutable=False):
        page_size = int(reader.page_size)
        if pages_per_read is None:
            pages_per_read = max(1, min(MAX_PAGES_PER_REQUEST, REQUEST_BYTES // page_size))
        if int(pages_per_read) < 1:
            raise ValueError(f"remote cache: pages_per_read must be at least 1, got "
                             f"{pages_per_read}")
        given = [name for name, value in (('timeout', timeout), ('retries', retries),
                                          ('client', client), ('immutable', immutable or None))
                 if value is not None]
        if given and not reader.source.remote:
            raise ValueError(f"remote cache: {', '.join(given)} apply to URLs; "
                             f"{reader.file_name} is a local file")
        source = reopen_source(reader.source, timeout=timeout, retries=retries, client=client)
        if immutable:
            source.immutable = True
        pages = RemotePages(reader, source, pages_per_read)
        try:
            if cache_dir is None and max_cache_bytes is not None:
                raise ValueError("remote cache: max_cache_bytes bounds the disk cache; give "
                                 "cache_dir too")
            # Pages of a file whose versions cannot be told apart are not kept on
            # disk: a same-size replacement would read them for good (REM-015;
            # the source warned when it was opened).
            if cache_dir is not None and not getattr(source, 'unversioned', False):
                from ..storage.disk_pages import DiskPageCache
                identity = pages.identity()
                pages.disk_cache = DiskPageCache(
                    cache_dir, identity.version_key(), page_size, max_bytes=max_cache_bytes,
                    description={'url': redact(source.location), **identity.version()})
        except BaseException:
            pages.close()
            raise
        super().__init__(reader, pages, max_bytes=max_bytes, readers=readers, keep_pages=True,
                         name='process cache')

    source = property(lambda self: self.page_source.source)
    disk_cache = property(lambda self: self.page_source.disk_cache)
    pages_per_read = property(lambda self: self.page_source.pages_per_read)

    def plan(self, batches):
        """The paged cache's plan; with every page kept, one HEAD first says the file is unchanged."""
        if self.keeps_pages and self.source.remote:
            # Pages kept from earlier epochs are of the version seen at open: one
            # HEAD per epoch says whether the server still has it (REM-004).
            self.source.check_version()
        return super().plan(batches)
