"""The interface every memory strategy implements."""
from abc import ABC, abstractmethod
from contextlib import contextmanager


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
    """

    def __init__(self, reader):
        self.reader = reader

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
