"""The Operation interface: one step of a per-field pipeline (FFCV's API)."""
from abc import ABC, abstractmethod
from typing import Callable, Optional, Tuple

from .allocation_query import AllocationQuery
from .state import State


class Operation(ABC):
    """One step of a pipeline: a decoder or a transform.

    An Operation declares, before any data flows, the state it produces and
    the memory it needs (:meth:`declare_state_and_memory`), so that every
    buffer is allocated once per Loader. It then supplies the code that runs
    on each batch (:meth:`generate_code`); if its output state is in
    ``jit_mode`` that code is compiled with Numba and runs without the GIL.

    Code signatures
    ---------------
    decoder : ``code(batch_indices, destination, metadata, storage_state[, seed][, shared])``
        ``batch_indices`` is ``ndarray[uint64], shape (B,)``; ``metadata`` the
        field's column of the metadata table; ``storage_state`` what the memory
        strategy hands to ``memory_read(ptr, storage_state)``.
    transform : ``code(previous, destination[, batch_indices][, seed][, shared])``
        ``batch_indices`` if ``code.with_indices`` or ``code.with_seed`` is set.

    ``seed`` (``numpy.uint64``) only if ``code.with_seed`` is set: a random
    step calls ``ffcvx.pipeline.seeds.seed_sample(seed, batch_indices[k])``
    before sample ``k``'s draws, so they depend on the Loader's seed, the
    epoch, the step and the sample only (not on threads or batch size).
    An Operation whose ``seed`` attribute is an int gets a seed from (that
    int, epoch, ``seed_kind``) instead; one that lists several seeds in
    ``seed_values`` (e.g. ``(seed, second_seed)``) gets a tuple of
    ``uint64``, one per entry (``ffcvx.pipeline.seeds.seed_streams``).

    ``destination`` is ``buffer[slot][:B]`` for the AllocationQuery (a tuple
    of them if a tuple was declared), or None. ``shared`` is the buffer of
    :meth:`declare_shared_memory`, allocated once and not per batch.
    """

    def __init__(self):
        self.metadata = None
        self.memory_read = None
        self.field = None

    def accept_field(self, field):
        """Called with the Field instance this pipeline reads (decoders)."""
        self.field = field

    def accept_globals(self, metadata, memory_read):
        """Called with the field's metadata column and the strategy's jitted reader (decoders)."""
        self.metadata = metadata
        self.memory_read = memory_read

    @abstractmethod
    def generate_code(self) -> Callable:
        """The function run on each batch (see the class docstring for signatures)."""

    @abstractmethod
    def declare_state_and_memory(self, previous_state: State) -> Tuple[State, Optional[AllocationQuery]]:
        """The output state and the per-batch buffer this step needs."""

    def declare_shared_memory(self, previous_state: State) -> Optional[AllocationQuery]:
        """A scratch buffer allocated once per Loader (not per slot), or None."""
        return None

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        """Plain-Python hook run after the code on each batch; returns the result to pass on.

        Decoders (which also receive ``storage_state``) use it to raise errors
        their compiled code could only record as status codes.
        """
        return result
