"""The interface every memory strategy implements."""
from abc import ABC, abstractmethod
from collections import defaultdict
from functools import cached_property

import numpy as np

# MemoryContext is importable from here too, as from FFCV's ffcv.memory_managers.base.
from .context import EpochContext, MemoryContext, adopt  # noqa: F401


class MemoryManager(ABC):
    """Serves stored bytes to compiled decoders.

    A strategy exposes ``state`` (a tuple of arrays, passed to decoders as
    ``storage_state``) and a Numba-compiled ``read(ptr, state) -> uint8[::1]``
    that returns the region of the file that starts at absolute offset ``ptr``
    (spec FMT-050). Regions are those of the Reader's ``region_ptrs`` /
    ``region_sizes``.

    Parameters
    ----------
    reader : ffcvx.reader.Reader

    Attributes
    ----------
    shared_across_processes : bool
        Class attribute. True if processes that open the same file with this
        strategy are served from one copy (the OS page cache, a shared-memory
        segment, a server), so what one process loads is what the others
        read. The conformance suite (:mod:`ffcvx.testing.strategies`) then
        checks that two processes see the same bytes at once.
    needs_server : bool
        Class attribute. True if the strategy cannot work without a running
        server whose address comes through its options; the conformance
        suite skips such a strategy unless options are given for it.
    scratch_dir_option : str or None
        Class attribute. Name of the constructor keyword that says in which
        folder the strategy creates files (``'shm_dir'`` for shared memory),
        or None if it creates none. ``close()`` must leave that folder as it
        found it once no other user remains; the conformance suite points it
        at a fresh folder to check that.
    reads_urls : bool
        Class attribute. True if the strategy reads files the Reader opened by
        URL (through ``reader.source``, spec/remote.md); others get local
        paths only (REM-005).
    ptrs, sizes : ndarray[uint64]
        FFCV's names of the sorted region starts and their sizes (the
        arrays of :meth:`region_table`), computed once, when first read.
    ptr_to_size : dict of int to int
        FFCV's map from each region's start (bytes, absolute offset) to its
        size in bytes: ``dict(zip(ptrs, sizes))``.
    sample_to_pages, page_to_samples : dict of int to set of int
        FFCV's maps between sample numbers and the page numbers of their
        regions (``ptr >> log2(page_size)``), computed when first read.

    Notes
    -----
    FFCV 1.0's protocol (:mod:`ffcvx.memory_managers.context`) comes with
    the base: ``schedule_epoch(batches)`` returns a
    :class:`~ffcvx.memory_managers.context.MemoryContext` (``with context:``,
    ``context.state``, ``context.start_batch(b)``) and ``compile_reader()``
    a plain Python function while ``Compiler.is_enabled`` is False. A
    subclass writes its ``schedule_epoch`` as any context manager (or an
    FFCV-style ``MemoryContext``); the base wraps it when the class is made.
    """

    shared_across_processes = False
    needs_server = False
    scratch_dir_option = None
    reads_urls = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        adopt(cls)

    def __init__(self, reader):
        self.reader = reader

    def region_table(self):
        """The Reader's regions as the compiled readers need them.

        Returns
        -------
        (region_ptrs, region_sizes) : tuple of ndarray[uint64], shape (R,)
            Sorted region start offsets and sizes, bytes (FMT-050), contiguous.
        """
        return (np.ascontiguousarray(self.reader.region_ptrs, dtype=np.uint64),
                np.ascontiguousarray(self.reader.region_sizes, dtype=np.uint64))

    @cached_property
    def _regions(self):
        """:meth:`region_table`, computed once for ``ptrs``, ``sizes`` and ``ptr_to_size``."""
        return self.region_table()

    @cached_property
    def ptrs(self):
        return self._regions[0]

    @cached_property
    def sizes(self):
        return self._regions[1]

    @cached_property
    def ptr_to_size(self):
        return dict(zip(self.ptrs.tolist(), self.sizes.tolist()))

    @cached_property
    def sample_to_pages(self):
        return self._page_maps()[0]

    @cached_property
    def page_to_samples(self):
        return self._page_maps()[1]

    def _page_maps(self):
        table = self.reader.alloc_table
        pages = table['ptr'] >> np.uint64(int(self.reader.page_size).bit_length() - 1)
        sample_to_pages, page_to_samples = defaultdict(set), defaultdict(set)
        for sample, page in zip(table['sample_id'].tolist(), pages.tolist()):
            sample_to_pages[sample].add(page)
            page_to_samples[page].add(sample)
        return sample_to_pages, page_to_samples

    @property
    def state_type(self):
        """Numba type of :attr:`state` (FFCV's name)."""
        import numba
        return numba.typeof(self.state)

    @property
    @abstractmethod
    def state(self):
        """Tuple of arrays handed to ``read`` as its second argument."""

    @abstractmethod
    def compile_reader(self):
        """The jitted ``read(ptr, state) -> ndarray[uint8]`` function.

        Callers get the Python function of a Numba-compiled reader while
        ``Compiler.is_enabled`` is False (FFCV's ``Compiler.compile``).
        """

    def schedule_epoch(self, batches):
        """Prepare for an epoch that reads ``batches`` (list of index arrays), in order.

        Subclasses may return any context manager (entered around the
        epoch); callers receive it as a
        :class:`~ffcvx.memory_managers.context.MemoryContext`.

        Returns
        -------
        ffcvx.memory_managers.context.MemoryContext
        """
        return EpochContext(self)

    def start_batch(self, batch_number):
        """Called before batch ``batch_number`` of the scheduled epoch is decoded."""

    def io_counters(self):
        """Pages and bytes this strategy has read from storage so far, or None.

        Returns
        -------
        dict or None
            ``{'pages_read': int, 'bytes_read': int}`` (cumulative since the
            strategy was made), or None where the operating system does the
            reading (memory maps: ``os``, ``shared``) and ffcvx cannot see it.
        """
        return None

    def batch_pages(self, batch_number):
        """``(pages the batch needs, pages loaded for it)`` in the scheduled epoch, or None if unknown."""
        return None

    def close(self):
        """Release files and memory held by the strategy."""
