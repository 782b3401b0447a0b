"""The interface every memory strategy implements."""
from abc import ABC, abstractmethod
from contextlib import contextmanager

import numpy as np


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
    """

    shared_across_processes = False
    needs_server = False
    scratch_dir_option = None
    reads_urls = False

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

    @property
    @abstractmethod
    def state(self):
        """Tuple of arrays handed to ``read`` as its second argument."""

    @abstractmethod
    def compile_reader(self):
        """The jitted ``read(ptr, state) -> ndarray[uint8]`` function."""

    @contextmanager
    def schedule_epoch(self, batches):
        """Prepare for an epoch that reads ``batches`` (list of index arrays), in order."""
        yield self

    def start_batch(self, batch_number):
        """Called before batch ``batch_number`` of the scheduled epoch is decoded."""

    def close(self):
        """Release files and memory held by the strategy."""
