"""Strategy ``remote``: pages of a file in object storage or on a web server, fetched ahead of need.

The process cache's machinery (:mod:`.process_cache`) unchanged: before an
epoch the plan says which pages each batch needs and when; a bounded arena
of page slots is filled by reader threads in that order, several requests in
flight. Only the page source differs: range requests through the Reader's
:class:`~ffcvx.storage.Source` (obstore or fsspec) instead of ``preadv``,
adjacent pages coalesced into one request (REM-008), and an optional disk
cache on the node (``cache_dir``) consulted first and filled on the way
(REM-009). Each rank of a distributed run plans only its own batches, so it
fetches only its shard's pages.

When the arena holds every page of the file (the default, for a file that
fits in half the free memory), pages stay in it from one epoch to the next:
each page is fetched once per Loader, not once per epoch, so later epochs
cost no requests and no egress (REM-008). A smaller arena follows the
process cache's plan, epoch by epoch.

A local path works too (its pages are read with ``pread``), which is how the
conformance suite checks the strategy without a server.
"""
import hashlib
import json

import numpy as np

from ..storage import redact
from .page_plan import EpochPlan, batch_pages
from .process_cache import ProcessCacheManager

#: Reader threads by default: requests wait on the network, not on a core.
DEFAULT_READERS = 8
#: Bytes one request asks for at most when pages are coalesced: large enough that
#: the round trip is a small part of it, small enough that several run at once.
REQUEST_BYTES = 8 << 20
#: Most pages in one request, whatever their size.
MAX_PAGES_PER_REQUEST = 64


def cache_key(source):
    """Hex digest naming a remote file's version in the disk cache.

    URL (without credentials), size, ETag, version and Last-Modified: a
    replacement that changes any of them never reads the old pages (REM-009).
    """
    identity = source.identity()
    text = json.dumps({'url': redact(source.location), 'size': int(identity['size']),
                       'etag': identity.get('etag'), 'version': identity.get('version'),
                       'last_modified': identity.get('last_modified')}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class RemoteCacheManager(ProcessCacheManager):
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
        The page source (its ``requests`` and ``bytes_received`` count).
    disk_cache : ffcvx.storage.disk_pages.DiskPageCache or None

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
        self.pages_per_read = int(pages_per_read)
        given = [name for name, value in (('timeout', timeout), ('retries', retries),
                                          ('client', client), ('immutable', immutable or None))
                 if value is not None]
        if given and not reader.source.remote:
            raise ValueError(f"remote cache: {', '.join(given)} apply to URLs; "
                             f"{reader.file_name} is a local file")
        self.source = reader.source.reopen(timeout=timeout, retries=retries, client=client)
        if immutable:
            self.source.immutable = True
        self.disk_cache = None
        try:
            super().__init__(reader, max_bytes=max_bytes, readers=readers)
            if cache_dir is None and max_cache_bytes is not None:
                raise ValueError("remote cache: max_cache_bytes bounds the disk cache; give "
                                 "cache_dir too")
            # Pages of a file whose versions cannot be told apart are not kept on
            # disk: a same-size replacement would read them for good (REM-015;
            # the source warned when it was opened).
            if cache_dir is not None and not getattr(self.source, 'unversioned', False):
                from ..storage.disk_pages import DiskPageCache
                self.disk_cache = DiskPageCache(
                    cache_dir, cache_key(self.source), page_size, max_bytes=max_cache_bytes,
                    description={'url': redact(self.source.location), **self.source.identity()})
        except BaseException:
            self.source.close()
            raise
        self._files['after'].append(self.source.close)

    def _open_file(self):
        return None   # pages come from self.source

    @property
    def keeps_pages(self):
        """Whether the arena holds every page, which then stays from one epoch to the next."""
        first = int(self.reader.data_region_start) // self.page_size
        return self.num_slots >= len(self._page_to_slot) - 1 - first

    def _keeps_pages(self):
        return self.keeps_pages

    def _epoch_plan(self, batches):
        """The process cache's plan, or with every page kept: load each missing page once."""
        if not self.keeps_pages:
            return super()._epoch_plan(batches)
        if self.source.remote:
            # Pages kept from earlier epochs are of the version seen at open: one
            # HEAD per epoch says whether the server still has it (REM-004).
            self.source.check_version()
        # Page p lives in slot p - first for good; only pages not yet held are
        # fetched, in the order the batches need them, and none is released. Pages
        # an epoch left early never started are fetched by the next that needs them.
        first = int(self.reader.data_region_start) // self.page_size
        jobs, job_end, queued = [], [], set()
        for b, pages in enumerate(batch_pages(self._indptr, self._pages, batches)):
            for page in pages.tolist():
                if self._page_to_slot[page] < 0 and page not in queued:
                    queued.add(page)
                    jobs.append((b, page, page - first, -1))
            job_end.append(len(jobs))
        return EpochPlan(np.asarray(jobs, dtype=np.int64).reshape(-1, 4),
                         np.asarray(job_end, dtype=np.int64),
                         [np.zeros(0, dtype=np.int64)] * len(job_end))

    def _joins(self, previous, page):
        return page == previous + 1   # one range request covers adjacent pages only

    def _read_pages(self, pages, views):
        """Fill slots from the disk cache, then the rest with one request per run of adjacent pages."""
        page_size = self.page_size
        file_size = int(self.reader.file_size)
        missing = []
        for page, view in zip(pages, views):
            # Only the file's last page is short; a cached page of another length is
            # damaged (REM-009), so the length the cache returns is checked here too.
            expected = min(page_size, file_size - page * page_size)
            if (self.disk_cache is None
                    or self.disk_cache.read_into(page, view, expected) != expected):
                missing.append((page, view))
        missing.sort(key=lambda item: item[0])
        run = []
        for item in missing + [None]:
            if run and (item is None or item[0] != run[-1][0] + 1):
                start = run[0][0] * page_size
                end = min((run[-1][0] + 1) * page_size, file_size)
                data = memoryview(self.source.read(start, end - start))
                if len(data) != end - start:
                    raise OSError(f"{redact(self.source.location)}: the file ended at "
                                  f"{start + len(data)}, before page {run[-1][0]} "
                                  f"(expected {file_size} bytes); was it truncated?")
                for k, (page, view) in enumerate(run):
                    chunk = data[k * page_size:(k + 1) * page_size]
                    view[:len(chunk)] = chunk
                    if self.disk_cache is not None:
                        self.disk_cache.write(page, chunk)
                run = []
            if item is not None:
                run.append(item)

    def close(self):
        """Stop the reader threads, close the connections; safe to call more than once."""
        super().close()
        if self.disk_cache is not None:
            self.disk_cache.close()
