"""Strategy 1 (``process``): a private, memory-bounded page cache of a local file, filled ahead of need.

A :class:`~.paged_cache.PagedCache` over :class:`~ffcvx.storage.pages.LocalPages`
(one ``preadv`` per page, which releases the GIL), freeing every page after
each epoch. The plan, the reader threads and the compiled ``read`` are
described in :mod:`.paged_cache`.
"""
from ..storage.pages import LocalPages
from .paged_cache import DEFAULT_READERS, PagedCache
# The planner's names stay importable from here.
from .page_plan import EpochPlan, batch_pages, plan_epoch, sample_pages  # noqa: F401

__all__ = ['ProcessCacheManager', 'DEFAULT_READERS']


class ProcessCacheManager(PagedCache):
    """Reads pages ahead of need into a bounded private buffer (strategy 1).

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    max_bytes : int or None
        Upper bound, in bytes, on page bytes held at once. None: the smaller
        of the file's data pages and half the memory available now.
    readers : int
        Reader threads.

    Attributes
    ----------
    num_slots, resident_pages, peak_resident_pages, pages_read
        See :class:`~.paged_cache.PagedCache`.

    Raises
    ------
    ValueError
        If ``max_bytes`` is smaller than one page, or ``readers < 1``.
    OSError
        If the file cannot be opened.
    """

    def __init__(self, reader, max_bytes=None, readers=DEFAULT_READERS):
        super().__init__(reader, LocalPages(reader), max_bytes=max_bytes, readers=readers)
