"""Where a paged cache's pages come from (:class:`~ffcvx.memory_managers.paged_cache.PagedCache`).

A :class:`PageSource` loads whole pages of one file (page ``n`` starts at
offset ``n * page_size``; the file's last page ends with the file) into
page-sized slots. The paged cache's reader threads call :meth:`PageSource.read`
with at most :attr:`PageSource.pages_per_read` pages at once, several calls
running at the same time, and never two for one page.

:class:`LocalPages` reads a local file (one ``preadv`` per page, through a
:class:`~.source.LocalSource` holding its descriptor); :class:`RemotePages`
a file in object storage or on a web server, one range request per run of
adjacent pages, through the disk page cache when there is one (REM-008,
REM-009). The Redis cache's source is in
:mod:`ffcvx.memory_managers.redis_pages`.
"""
from abc import ABC, abstractmethod

from .identity import FileIdentity
from .source import LocalSource, redact


class PageSource(ABC):
    """Pages of the file a Reader opened.

    Parameters
    ----------
    reader : ffcvx.reader.Reader

    Attributes
    ----------
    page_size : int, bytes
    file_size : int, bytes
    pages_per_read : int
        Most pages one :meth:`read` call loads (class default 1).
    adjacent_only : bool
        Whether the pages of one call must be consecutive page numbers (one
        range request covers them); False: any pages may be joined.
    """

    pages_per_read = 1
    adjacent_only = False

    def __init__(self, reader):
        self.reader = reader
        self.page_size = int(reader.page_size)
        self.file_size = int(reader.file_size)

    def joins(self, previous, page):
        """Whether ``page`` may be loaded in the same :meth:`read` as page ``previous``."""
        return page == previous + 1 if self.adjacent_only else True

    def page_length(self, page):
        """Bytes of page ``page``: a full page, or what is left of the file."""
        return min(self.page_size, self.file_size - page * self.page_size)

    @abstractmethod
    def read(self, pages, views):
        """Load ``pages`` into ``views``.

        Parameters
        ----------
        pages : list of int
            Absolute page numbers, at most :attr:`pages_per_read`.
        views : list of memoryview
            One writable ``page_size``-byte slot per page. The last page of
            the file may be shorter than a slot; the rest of its slot is not
            written.

        Raises
        ------
        OSError
            If the file cannot be read (a source may raise its own errors:
            see the subclasses).
        """

    def identity(self):
        """The file's :class:`~.identity.FileIdentity` (the names derived from it)."""
        return FileIdentity(self.reader)

    def close(self):
        """Release descriptors and connections; called once no read runs. Idempotent."""


class LocalPages(PageSource):
    """Pages of a local file, read with ``preadv`` from a descriptor held until :meth:`close`.

    Raises
    ------
    OSError
        If the file cannot be opened.
    """

    def __init__(self, reader):
        super().__init__(reader)
        self.source = LocalSource(reader.fname, keep_open=True)

    def read(self, pages, views):
        page_size, read_into = self.page_size, self.source.read_into
        for page, view in zip(pages, views):
            read_into(page * page_size, view)   # the last page may end at the end of the file

    def close(self):
        self.source.close()


class RemotePages(PageSource):
    """Pages of a remote file: from the disk cache, else one request per run of adjacent pages.

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    source : ffcvx.storage.Source
        The requests' source (its own connections: ``ffcvx.storage.reopen_source(reader.source)``);
        closed by :meth:`close`.
    pages_per_read : int
        Most adjacent pages per request.
    disk_cache : ffcvx.storage.disk_pages.DiskPageCache or None
        Consulted first and filled on the way (REM-009); closed by :meth:`close`.
    """

    adjacent_only = True

    def __init__(self, reader, source, pages_per_read, disk_cache=None):
        super().__init__(reader)
        self.source = source
        self.pages_per_read = int(pages_per_read)
        self.disk_cache = disk_cache

    def identity(self):
        """The file's identity, its version as this source's requests pin it."""
        return FileIdentity(self.reader, self.source)

    def read(self, pages, views):
        """Fill slots from the disk cache, then the rest with one request per run of adjacent pages.

        Raises
        ------
        OSError
            If the file ended before a page (truncated), or the request failed
            (:class:`~ffcvx.errors.RemoteUnavailableError` and the others of
            :class:`~.source.RemoteSource`).
        """
        page_size, file_size, disk_cache = self.page_size, self.file_size, self.disk_cache
        missing = []
        for page, view in zip(pages, views):
            # Only the file's last page is short; a cached page of another length is
            # damaged (REM-009), so the length the cache returns is checked here too.
            expected = self.page_length(page)
            if disk_cache is None or disk_cache.read_into(page, view, expected) != expected:
                missing.append((page, view))
        missing.sort(key=lambda item: item[0])
        run = []
        for item in missing + [None]:
            if run and (item is None or item[0] != run[-1][0] + 1):
                self._fetch(run)
                run = []
            if item is not None:
                run.append(item)

    def _fetch(self, run):
        """One request for a run of adjacent ``(page, view)``, written to the disk cache too."""
        page_size = self.page_size
        start = run[0][0] * page_size
        end = min((run[-1][0] + 1) * page_size, self.file_size)
        data = memoryview(self.source.read(start, end - start))
        if len(data) != end - start:
            raise OSError(f"{redact(self.source.location)}: the file ended at "
                          f"{start + len(data)}, before page {run[-1][0]} "
                          f"(expected {self.file_size} bytes); was it truncated?")
        for k, (page, view) in enumerate(run):
            chunk = data[k * page_size:(k + 1) * page_size]
            view[:len(chunk)] = chunk
            if self.disk_cache is not None:
                self.disk_cache.write(page, chunk)

    def close(self):
        self.source.close()
        if self.disk_cache is not None:
            self.disk_cache.close()
