"""Strategy 0: read through a read-only memory map, cached by the OS page cache."""
import numpy as np
from numba import njit

from .base import MemoryManager


@njit(nogil=True, cache=False)
def _read_region(ptr, state):
    memory, region_ptrs, region_sizes = state
    position = np.searchsorted(region_ptrs, ptr)
    return memory[ptr:ptr + region_sizes[position]]


class WholeFileManager(MemoryManager):
    """Base of the strategies that hold the whole file as one array.

    Their :attr:`state` is ``(memory, region_ptrs, region_sizes)``, set as
    ``self._state`` by the subclass, and one jitted reader slices a region
    out of ``memory`` (``ndarray[uint8], shape (file_size,)``).
    """

    @property
    def state(self):
        return self._state

    def compile_reader(self):
        return _read_region


class OSCacheManager(WholeFileManager):
    """Memory-maps the whole file read-only.

    Pages are loaded on demand by the kernel and shared by every process that
    maps the same file, so many training processes on one node keep one copy
    in RAM. The first epoch reads from disk; later ones from the page cache if
    the file fits in RAM.
    """

    # The kernel keeps one page-cache copy per node for every process that
    # maps the file.
    shared_across_processes = True

    def __init__(self, reader):
        super().__init__(reader)
        if reader.file_size > 0:
            self._memory = np.memmap(reader.fname, dtype=np.uint8, mode='r')
        else:
            self._memory = np.zeros(0, dtype=np.uint8)
        self._state = (self._memory,
                       *self.region_table())

    def close(self):
        memory = getattr(self, '_memory', None)
        if isinstance(memory, np.memmap) and memory._mmap is not None:
            memory._mmap.close()
        self._memory = None
        self._state = None
