"""The Operation interface: one step of a per-field pipeline (FFCV's API).

The calling convention, and every optional hook the pipeline reads, is
written down in ``spec/pipeline.md`` (clauses PIP-001 to PIP-014); the
hooks are declared here with their defaults, so that the pipeline calls
them instead of probing for them.
"""
from abc import ABC, abstractmethod
from typing import Callable, Optional, Tuple

from .allocation_query import AllocationQuery
from .state import State


class Operation(ABC):
    """One step of a pipeline: a decoder (step 0) or a transform (spec/pipeline.md).

    An Operation declares, before any data flows, the state it produces and
    the memory it needs (:meth:`declare_state_and_memory`), so that every
    buffer is allocated once per Loader. It then supplies the code that runs
    on each batch (:meth:`generate_code`); if its output state is in
    ``jit_mode`` that code is compiled with Numba and runs without the GIL.

    Code signatures (PIP-004, PIP-005)
    ----------------------------------
    decoder : ``code(batch_indices, destination, metadata, storage_state[, seed][, shared])``
        ``batch_indices`` is ``ndarray[uint64], shape (B,)``; ``metadata`` the
        field's column of the metadata table; ``storage_state`` what the memory
        strategy hands to ``memory_read(ptr, storage_state)``.
    transform : ``code(previous, destination[, batch_indices][, seed][, shared])``
        ``batch_indices`` if the code declares ``with_indices`` or ``with_seed``.

    What ``generate_code`` returns is read once, at planning time, into a
    :class:`~ffcvx.pipeline.step_code.StepCode` (PIP-003): a plain function
    whose attributes ``with_indices``, ``with_seed``, ``is_parallel`` say
    the same (FFCV's way), or a ``StepCode``.

    ``seed`` (``numpy.uint64``) only with ``with_seed``: a random step calls
    ``ffcvx.pipeline.seeds.seed_sample(seed, batch_indices[k])`` before
    sample ``k``'s draws, so they depend on the Loader's seed, the epoch,
    the step and the sample only (not on threads or batch size, PIP-008).
    An Operation whose :attr:`seed` is an int gets a seed from (that int,
    epoch, :attr:`seed_kind`) instead; one that lists several seeds in
    :attr:`seed_values` gets a tuple of ``uint64``, one per entry
    (``ffcvx.pipeline.seeds.seed_streams``).

    ``destination`` is ``buffer[slot][:B]`` for the AllocationQuery (a tuple
    of them if a tuple was declared), or None. ``shared`` is the buffer of
    :meth:`declare_shared_memory`, allocated once and not per batch.

    Optional hooks (all have defaults; PIP-008 to PIP-012)
    ------------------------------------------------------
    seed, seed_values, seed_kind, seed_sources
        Where a seeded step's seeds come from (PIP-008).
    horizontal_flip_probability
        A flip a crop decoder may fuse (PIP-010).
    absorb, absorbed
        Fusion of following steps into the decoder (PIP-010).
    accept_backends
        The decoder's choice of decoder backends (PIP-009).
    part_states
        A step whose output is several views' images (PIP-012).
    as_transform
        The object that plays this Operation after step 0 (PIP-011).
    """

    #: PIP-008: None (draws follow the Loader's seed) or an int: this step's own seed.
    seed = None
    #: PIP-008: None, or a tuple of seeds (None or int): one stream each, a tuple of uint64.
    seed_values = None
    #: PIP-008: the salt of an int seed; None means the class name. Label ops share their image op's.
    seed_kind = None
    #: PIP-008: ``[(operation, output name, position), ...]`` when this step does the work of
    #: several Operations (a shared decode of views), each seeded as its own step would be.
    seed_sources = None
    #: PIP-010: a float in [0, 1] when this step is a horizontal flip a decoder may fuse, else None.
    horizontal_flip_probability = None
    #: PIP-010: the Operations this decoder fused and now performs (their attributes are its own).
    absorbed = ()

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

    def accept_backends(self, select_backend):
        """Called once, at step 0, with ``select_backend(format) -> backend`` (PIP-009).

        The default needs no decoder backend and does nothing.
        """

    def absorb(self, operation) -> bool:
        """Whether this decoder now performs ``operation``, the next step (PIP-010).

        Offered, at step 0, each following Operation in turn until it
        declines one; absorbed ones are dropped from the pipeline and their
        attributes read through :attr:`absorbed`. The default declines.
        """
        return False

    def part_states(self):
        """PIP-012: the State of each view's output when this step's output is a tuple of views, else None."""
        return None

    def as_transform(self):
        """PIP-011: the Operation that runs when this one is placed after step 0 (default: itself)."""
        return self

    @abstractmethod
    def generate_code(self) -> Callable:
        """The function run on each batch, or a ``StepCode`` (see the class docstring, PIP-003)."""

    @abstractmethod
    def declare_state_and_memory(self, previous_state: State) -> Tuple[State, Optional[AllocationQuery]]:
        """The output state and the per-batch buffer this step needs (PIP-006)."""

    def declare_shared_memory(self, previous_state: State) -> Optional[AllocationQuery]:
        """A scratch buffer allocated once per Loader (not per slot), or None."""
        return None

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        """Plain-Python hook run after the code on each batch; returns the result to pass on.

        Decoders (which also receive ``storage_state``) use it to raise errors
        their compiled code could only record as status codes.
        """
        return result


class Decoder(Operation):
    """An Operation that reads a field's stored samples: what step 0 of a pipeline is (PIP-001).

    Its code takes the decoder arguments ``(batch_indices, destination,
    metadata, storage_state[, seed][, shared])`` (PIP-004). FFCV code keeps
    its own decoders: step 0 may also be any Operation that is an instance
    of the field's ``get_decoder_class()`` (PIP-002).
    """

    def decodes(self, field) -> bool:
        """Whether this decoder reads ``field`` (PIP-002); default: it is the field's decoder class."""
        return isinstance(self, field.get_decoder_class())

    def shares_decode(self, select_backend) -> bool:
        """Whether this decoder may decode together with other views of its field (PIP-012).

        ``select_backend(format) -> backend`` is the Loader's. Default: no.
        """
        return False

    def share_decode(self, views, names):
        """The Operation that decodes every view of ``views`` at once (PIP-012).

        Called on ``views[0]`` when two or more outputs' decoders
        :meth:`shares_decode`; ``names`` are the views' output names. Its
        output is one part per view (:meth:`Operation.part_states`).
        """
        raise NotImplementedError(f"{type(self).__name__} does not share its decode")
