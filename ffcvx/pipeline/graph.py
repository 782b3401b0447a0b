"""Turning per-field lists of Operations into runnable, compiled pipelines.

Each output of a Loader is one :class:`Pipeline`: a decoder followed by
transforms. States are threaded through the Operations once, buffers are
allocated once, and each Operation whose output is in ``jit_mode`` is compiled
with Numba. Running a batch is then a short Python loop over compiled calls
that release the GIL; no code is generated as text and nothing is ``exec``-ed.
"""
from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np
import torch

from .allocation_query import AllocationQuery, allocate
from .compiler import Compiler
from .seeds import step_salt, step_seed
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
    state: Any                # the State of this step's output
    taps: List[Any]           # branches' input buffers (num_slots, batch_size, ...) to copy the output into
    seed_salt: Optional[int]  # for a step with ``with_seed``: its stable salt (seeds.step_salt)


def _build_steps(name, operations, state, batch_size, num_slots, decoder_first):
    steps = []
    for position, op in enumerate(operations):
        is_decoder = decoder_first and position == 0
        shared_query = op.declare_shared_memory(state)
        state, query = op.declare_state_and_memory(state)
        raw_code = op.generate_code()
        code = Compiler.compile(raw_code) if state.jit_mode else raw_code
        steps.append(Step(operation=op, code=code,
                          destination=_allocate_destination(query, num_slots, batch_size),
                          shared=_allocate_shared(shared_query),
                          with_indices=bool(getattr(raw_code, 'with_indices', False)),
                          is_decoder=is_decoder, state=state, taps=[],
                          seed_salt=(step_salt(name, position)
                                     if getattr(raw_code, 'with_seed', False) else None)))
    return steps


def _copy_into(buffer, result):
    if isinstance(buffer, torch.Tensor):
        buffer.copy_(result)
    else:
        np.copyto(buffer, result)


def _run_steps(steps, result, slot, batch_indices, storage_state, epoch_seed, metadata=None):
    # Arguments: a decoder gets (batch_indices, dst, metadata, storage_state),
    # a transform (result, dst), plus batch_indices with ``with_indices``;
    # then the step's seed with ``with_seed`` (a transform gets the indices
    # too, to seed each sample), then its shared buffer if it declared one.
    count = len(batch_indices)
    for step in steps:
        dst = _slot_view(step.destination, slot, count)
        if step.is_decoder:
            args = [batch_indices, dst, metadata, storage_state]
        else:
            args = [result, dst]
            if step.with_indices or step.seed_salt is not None:
                args.append(batch_indices)
        if step.seed_salt is not None:
            args.append(step_seed(epoch_seed, step.seed_salt))
        if step.shared is not None:
            args.append(step.shared)
        result = step.code(*args)
        if step.is_decoder:
            result = step.operation.finish_batch(result, dst, batch_indices, storage_state)
        else:
            result = step.operation.finish_batch(result, dst, batch_indices)
        for tap in step.taps:
            _copy_into(tap[slot][:count], result)
    return result


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
    keep_decoder_output : bool
        The decoder's own output is a branch's source: do not let it absorb
        the steps after it (that would change its output, see :func:`fuse`).
    """

    def __init__(self, name, field_index, field, operations, metadata, memory_read,
                 batch_size, num_slots, select_backend=None, keep_decoder_output=False):
        self.name = name
        self.field_index = field_index
        self.metadata = metadata
        self.batch_size, self.num_slots = batch_size, num_slots
        kept = list(operations) if keep_decoder_output else fuse(operations)
        # An absorbed step's output is the decoder's output.
        position = {id(op): k for k, op in enumerate(kept)}
        self._step_of = {id(op): position.get(id(op), 0) for op in operations}
        decoder = kept[0]
        decoder.accept_field(field)
        decoder.accept_globals(metadata, memory_read)
        if hasattr(decoder, 'accept_backends'):
            decoder.accept_backends(select_backend)
        self.steps: List[Step] = _build_steps(name, kept, INITIAL_STATE, batch_size, num_slots, True)
        self.output_state = self.steps[-1].state

    def step_of(self, op):
        """The step whose output is ``op``'s output, or None when ``op`` is not in this pipeline."""
        index = self._step_of.get(id(op))
        return None if index is None else self.steps[index]

    def run(self, slot, batch_indices, storage_state, epoch_seed=0):
        """Run every step on one batch; returns the last step's output."""
        return _run_steps(self.steps, None, slot, batch_indices, storage_state, epoch_seed, self.metadata)


class Branch:
    """An output that starts from another pipeline's step (FFCV 1.0's ``PipelineSpec(source=op)``).

    Several outputs can so share one decode, e.g. two augmented views of one
    decoded image. The source step's output is copied into this branch's own
    buffer right after that step runs, for every batch, so in-place steps of
    either side (flips, Cutout) never change the other's pixels.

    Parameters
    ----------
    name : str
        Output name.
    source : Step
        The step of an earlier pipeline or branch whose output this one starts from.
    operations : list of Operation
        Transforms run on that output, in order.
    batch_size, num_slots : int

    Raises
    ------
    ValueError
        When the source step's State has no per-sample shape to copy.
    """

    def __init__(self, name, source, operations, batch_size, num_slots):
        self.name = name
        state = source.state
        if state.shape is None:
            raise ValueError(f"pipeline {name!r}: its source {type(source.operation).__name__} "
                             f"declares no output shape, so it cannot be branched from")
        tap = allocate(AllocationQuery(tuple(state.shape), state.dtype, state.device),
                       (num_slots, batch_size))
        source.taps.append(tap)
        self._tap = tap
        self._step_of = {id(op): k for k, op in enumerate(operations)}
        self.steps: List[Step] = _build_steps(name, operations, state, batch_size, num_slots, False)
        self.output_state = self.steps[-1].state if self.steps else state

    def step_of(self, op):
        """The step whose output is ``op``'s output, or None when ``op`` is not in this branch."""
        index = self._step_of.get(id(op))
        return None if index is None else self.steps[index]

    def run(self, slot, batch_indices, storage_state, epoch_seed=0):
        """This branch's transforms on its copy of the source's output for this batch."""
        start = self._tap[slot][:len(batch_indices)]
        return _run_steps(self.steps, start, slot, batch_indices, storage_state, epoch_seed)


class Graph:
    """All of a Loader's pipelines; produces one batch's outputs.

    Parameters
    ----------
    pipelines : list of Pipeline or Branch
        In output order (fields in file order, then extra outputs); a branch
        comes after the pipeline it starts from.
    """

    def __init__(self, pipelines: List[Any]):
        self.pipelines = pipelines

    def run_batch(self, slot, batch_indices, storage_state, epoch_seed=0):
        """Outputs of every pipeline for ``batch_indices``, written into buffer slot ``slot``.

        ``epoch_seed`` (:func:`ffcvx.pipeline.seeds.epoch_seed`) seeds the
        steps that declare ``with_seed``.
        """
        return tuple(p.run(slot, batch_indices, storage_state, epoch_seed) for p in self.pipelines)

    @property
    def output_names(self) -> List[Optional[str]]:
        return [p.name for p in self.pipelines]
