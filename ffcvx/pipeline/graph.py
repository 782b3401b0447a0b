"""Turning per-field lists of Operations into runnable, compiled pipelines.

Each output of a Loader is one :class:`Pipeline`: a decoder followed by
transforms. States are threaded through the Operations once, buffers are
allocated once, and each Operation whose output is in ``jit_mode`` is compiled
with Numba. Running a batch is then a short Python loop over compiled calls
that release the GIL; no code is generated as text and nothing is ``exec``-ed.
"""
from dataclasses import dataclass
from typing import Any, List, Optional

from .allocation_query import AllocationQuery, allocate
from .compiler import Compiler
from .state import INITIAL_STATE


def _allocate_destination(query, num_slots, batch_size):
    if query is None:
        return None
    if isinstance(query, AllocationQuery):
        return allocate(query, (num_slots, batch_size))
    return tuple(allocate(q, (num_slots, batch_size)) for q in query)


def _slot_view(buffers, slot, count):
    if buffers is None:
        return None
    if isinstance(buffers, tuple):
        return tuple(b[slot][:count] for b in buffers)
    return buffers[slot][:count]


def _allocate_shared(query):
    if query is None:
        return None
    if isinstance(query, AllocationQuery):
        return allocate(query, ())
    return tuple(allocate(q, ()) for q in query)


def fuse(operations):
    """Let the decoder absorb the steps right after it that it can do for free.

    A decoder with ``absorb(op) -> bool`` is offered each following
    Operation in turn until it declines one; absorbed ones are dropped. The
    crop decoders absorb ``RandomHorizontalFlip`` by mirroring their resize,
    which saves a pass over every image.
    """
    operations = list(operations)
    if not operations or not hasattr(operations[0], 'absorb'):
        return operations
    kept = 1
    while kept < len(operations) and operations[0].absorb(operations[kept]):
        kept += 1
    return [operations[0]] + operations[kept:]


@dataclass
class Step:
    """One Operation, ready to run."""

    operation: Any
    code: Any
    destination: Any          # buffers with leading (num_slots, batch_size), or None
    shared: Any               # buffer allocated once, or None
    with_indices: bool
    is_decoder: bool


class Pipeline:
    """One output of a Loader: a decoder and its transforms, compiled.

    Parameters
    ----------
    name : str
        Output name (the field name, or the PipelineSpec's key).
    field_index : int
        Index of the field read, i.e. the metadata member ``f{field_index}``.
    field : Field
    operations : list of Operation
        Decoder first.
    metadata : ndarray
        The field's metadata column, shape (num_samples,).
    memory_read : numba function
        The memory strategy's ``read(ptr, storage_state) -> uint8[::1]``.
    batch_size, num_slots : int
    select_backend : callable(format: str) -> backend, optional
        Handed to decoders that need a decoder backend (``accept_backends``).
    """

    def __init__(self, name, field_index, field, operations, metadata, memory_read,
                 batch_size, num_slots, select_backend=None):
        self.name = name
        self.field_index = field_index
        self.metadata = metadata
        self.steps: List[Step] = []
        state = INITIAL_STATE
        operations = fuse(operations)
        for position, op in enumerate(operations):
            is_decoder = position == 0
            if is_decoder:
                op.accept_field(field)
                op.accept_globals(metadata, memory_read)
                if hasattr(op, 'accept_backends'):
                    op.accept_backends(select_backend)
            shared_query = op.declare_shared_memory(state)
            new_state, query = op.declare_state_and_memory(state)
            raw_code = op.generate_code()
            code = Compiler.compile(raw_code) if new_state.jit_mode else raw_code
            self.steps.append(Step(
                operation=op, code=code,
                destination=_allocate_destination(query, num_slots, batch_size),
                shared=_allocate_shared(shared_query),
                with_indices=bool(getattr(raw_code, 'with_indices', False)),
                is_decoder=is_decoder))
            state = new_state
        self.output_state = state

    def run(self, slot, batch_indices, storage_state):
        """Run every step on one batch; returns the last step's output."""
        count = len(batch_indices)
        result = None
        for step in self.steps:
            dst = _slot_view(step.destination, slot, count)
            args = []
            if step.is_decoder:
                args = [batch_indices, dst, self.metadata, storage_state]
            else:
                args = [result, dst]
                if step.with_indices:
                    args.append(batch_indices)
            if step.shared is not None:
                args.append(step.shared)
            result = step.code(*args)
            if step.is_decoder:
                result = step.operation.finish_batch(result, dst, batch_indices, storage_state)
            else:
                result = step.operation.finish_batch(result, dst, batch_indices)
        return result


class Graph:
    """All of a Loader's pipelines; produces one batch's outputs.

    Parameters
    ----------
    pipelines : list of Pipeline
        In output order (fields in file order, then extra outputs).
    """

    def __init__(self, pipelines: List[Pipeline]):
        self.pipelines = pipelines

    def run_batch(self, slot, batch_indices, storage_state):
        """Outputs of every pipeline for ``batch_indices``, written into buffer slot ``slot``."""
        return tuple(p.run(slot, batch_indices, storage_state) for p in self.pipelines)

    @property
    def output_names(self) -> List[Optional[str]]:
        return [p.name for p in self.pipelines]
