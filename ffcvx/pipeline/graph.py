"""Turning per-field lists of Operations into runnable, compiled pipelines.

Each output of a Loader is one :class:`Pipeline`: a decoder followed by
transforms. States are threaded through the Operations once, buffers are
allocated once, and each Operation whose output is in ``jit_mode`` is compiled
with Numba. Running a batch is then a short Python loop over compiled calls
that release the GIL; no code is generated as text and nothing is ``exec``-ed.
"""
from dataclasses import dataclass, field
from typing import Any, List, Optional

import numba
import numpy as np
import torch

from ..errors import PipelineError
from .allocation_query import AllocationQuery, allocate, allocate_all
from .buffer_check import check_buffers, needed, too_big
from .compiler import Compiler
from .planning import check_output, declare, describe, fingerprint
from .positions import as_transform
from .seeds import EpochSeeds, seed_streams
from .state import INITIAL_STATE
from .step_code import StepCode


def _slot_view(buffers, slot, count):
    if buffers is None:
        return None
    if isinstance(buffers, tuple):
        return tuple(b[slot][:count] for b in buffers)
    return buffers[slot][:count]


def fuse(operations):
    """Let the decoder absorb the steps right after it that it can do for free.

    The decoder's ``absorb(op) -> bool`` (spec/pipeline.md PIP-010) is
    offered each following Operation in turn until it declines one; absorbed
    ones are dropped. The crop decoders absorb ``RandomHorizontalFlip`` by
    mirroring their resize, which saves a pass over every image.
    """
    operations = list(operations)
    if not operations:
        return operations
    kept = 1
    while kept < len(operations) and operations[0].absorb(operations[kept]):
        kept += 1
    return [operations[0]] + operations[kept:]


@dataclass
class Step:
    """One Operation, planned and ready to run (replanned at each epoch start)."""

    operation: Any            # what runs: the Operation, or its transform role (PIP-011)
    where: str                # how errors name it: "pipeline 'image', step 0 (Decoder)"
    is_decoder: bool
    seeds: Optional[list] = None  # for a step with ``with_seed``: its streams (seeds.seed_streams)
    code: Any = None
    with_indices: bool = False
    destination: Any = None   # buffers with leading (num_slots, batch_size), or None
    shared: Any = None        # buffer allocated once, or None
    input_state: Any = None
    state: Any = None         # the State of this step's output
    query: Any = None
    shared_query: Any = None
    attributes: Any = None    # planning.fingerprint of the operation when its code was generated
    taps: List[Any] = field(default_factory=list)  # branches starting from this step's output
    parts: bool = False       # the output is a tuple of views' images (a ViewsDecoder)
    given: Any = None         # the Operation as placed; its attributes are the step's parameters


def _plan_step(step, state, batch_size, num_slots, recompile, position, name):
    """(Re)plan one step for input ``state``; returns its output State.

    Buffers are reallocated only when their declaration changed, code is
    generated again only when the input, the declarations or the
    Operation's simple attributes changed, or ``recompile`` is set.
    """
    op = step.operation
    shared_query, out_state, query = declare(op, step.where, state)
    changed = (step.code is None or recompile or state != step.input_state
               or out_state != step.state or query != step.query
               or shared_query != step.shared_query or fingerprint(step.given) != step.attributes)
    if not changed:
        return out_state
    new_output = step.code is None or query != step.query
    new_shared = step.code is None or shared_query != step.shared_query
    # Checked first: a file's claim (an image of 65500 x 65500) must not end
    # in numpy's bare MemoryError, or in an overcommitted buffer failing later.
    output, shared = (query if new_output else None), (shared_query if new_shared else None)
    check_buffers(op, step.where, output, shared, num_slots, batch_size)
    try:
        if new_output:
            step.destination = allocate_all(query, (num_slots, batch_size))
        if new_shared:
            step.shared = allocate_all(shared_query, ())
    except MemoryError as exc:      # less memory than available_memory() said
        raise too_big(op, step.where, *needed(output, shared, num_slots, batch_size)) from exc
    # What the code declares is read once, here (PIP-003).
    code = StepCode.of(op.generate_code(), step.where)
    step.code = (Compiler.compile(code) if out_state.jit_mode else code).function
    step.with_indices = code.with_indices
    step.seeds = seed_streams(op, name, position) if code.with_seed else None
    step.input_state, step.state, step.query, step.shared_query = state, out_state, query, shared_query
    step.attributes = fingerprint(step.given)
    step.parts = op.part_states() is not None
    return out_state


def _make_steps(name, operations, decoder_first):
    # Step 0 of a pipeline is its decoder; every other step runs the
    # Operation's transform role (PIP-011).
    steps = []
    for k, op in enumerate(operations):
        where = f"pipeline {name!r}, step {k} ({describe(op)})"
        decoder = decoder_first and k == 0
        steps.append(Step(operation=op if decoder else as_transform(where, op), where=where,
                          is_decoder=decoder, given=op))
    return steps


def _plan_steps(name, steps, state, batch_size, num_slots, recompile, first_position=0):
    # ``position`` salts unseeded draws (seeds.step_salt): a step's place in its pipeline.
    for position, step in enumerate(steps, first_position):
        state = _plan_step(step, state, batch_size, num_slots, recompile, position, name)
    return state


def _copy_into(buffer, result):
    if isinstance(buffer, torch.Tensor):
        buffer.copy_(result)
    else:
        np.copyto(buffer, result)


def _call(step, args):
    # A Numba error (typing, lowering) names the Operation whose code it is in.
    try:
        return step.code(*args)
    except numba.core.errors.NumbaError as exc:
        raise PipelineError(f"{step.where}: its code failed to compile for the buffers it declared "
                            f"(State {step.state}, buffer {step.query!r}): {exc}") from exc


def _run_steps(steps, result, slot, batch_indices, storage_state, seeds, metadata=None):
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
            if step.with_indices or step.seeds is not None:
                args.append(batch_indices)
        if step.seeds is not None:
            args.append(seeds.for_step(step.seeds))
        if step.shared is not None:
            args.append(step.shared)
        result = _call(step, args)
        if step.is_decoder:
            result = step.operation.finish_batch(result, dst, batch_indices, storage_state)
        else:
            result = step.operation.finish_batch(result, dst, batch_indices)
        if step.parts:
            # A shared decode of views: the first view goes on here, the
            # others' ViewBranches read their parts where they were written.
            result = result[0]
        check_output(step.where, step.state, step.query, result, count)
        for branch in step.taps:
            if branch.copies:
                _copy_into(branch.tap[slot][:count], result)
    return result


class _Steps:
    """What a Pipeline and a Branch share: ``steps`` planned from a start State.

    A subclass sets ``name``, ``steps``, ``batch_size``, ``num_slots`` and
    ``_step_of`` (``id(op)`` -> index into ``steps``).
    """

    def _plan_from(self, state, recompile):
        self.output_state = _plan_steps(self.name, self.steps, state, self.batch_size,
                                        self.num_slots, recompile)

    def step_of(self, op):
        """The step whose output is ``op``'s output, or None when ``op`` is not in this output."""
        index = self._step_of.get(id(op))
        return None if index is None else self.steps[index]


class Pipeline(_Steps):
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

    Raises
    ------
    PipelineError
        When an Operation's declarations are malformed (see ``planning.declare``).
    """

    def __init__(self, name, field_index, field, operations, metadata, memory_read,
                 batch_size, num_slots, select_backend=None, keep_decoder_output=False):
        self.name = name
        self.field_index = field_index
        self.metadata = metadata
        #: The Operations as given (FFCV's ``Pipeline.operations``), before fusion.
        self.operations = list(operations)
        self.batch_size, self.num_slots = batch_size, num_slots
        kept = list(operations) if keep_decoder_output else fuse(operations)
        # An absorbed step's output is the decoder's output.
        position = {id(op): k for k, op in enumerate(kept)}
        self._step_of = {id(op): position.get(id(op), 0) for op in operations}
        decoder = kept[0]
        decoder.accept_field(field)
        decoder.accept_globals(metadata, memory_read)
        decoder.accept_backends(select_backend)
        self.steps: List[Step] = _make_steps(name, kept, True)
        self.output_state = None
        self.plan()

    def plan(self, recompile=False):
        """Declare every step again from the start state, updating buffers and code that changed."""
        self._plan_from(INITIAL_STATE, recompile)

    def run(self, slot, batch_indices, storage_state, seeds=EpochSeeds()):
        """Run every step on one batch; returns the last step's output."""
        return _run_steps(self.steps, None, slot, batch_indices, storage_state, seeds, self.metadata)


class Branch(_Steps):
    """An output that starts from another pipeline's step (FFCV 1.0's ``PipelineSpec(source=op)``).

    Several outputs can so share one decode, e.g. two augmented views of one
    decoded image. The source step's output is copied into this branch's own
    buffer (``tap``) right after that step runs, for every batch, so in-place
    steps of either side (flips, Cutout) never change the other's pixels.

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

    #: The source's output is copied into ``tap`` for every batch.
    copies = True

    def __init__(self, name, source, operations, batch_size, num_slots):
        self.name = name
        self.source = source
        self.operations = list(operations)
        self.batch_size, self.num_slots = batch_size, num_slots
        self.tap = None
        self._tap_state = None
        source.taps.append(self)
        self._step_of = {id(op): k for k, op in enumerate(operations)}
        self.steps: List[Step] = _make_steps(name, operations, False)
        self.output_state = None
        self.plan()

    def plan(self, recompile=False):
        """Follow the source step's (re)planned State: reallocate the copy if it changed, replan the steps."""
        state = self.source.state
        if state.shape is None:
            raise ValueError(f"pipeline {self.name!r}: its source {describe(self.source.operation)} "
                             f"declares no output shape, so it cannot be branched from")
        if state != self._tap_state:
            self.tap = allocate(AllocationQuery(tuple(state.shape), state.dtype, state.device),
                                (self.num_slots, self.batch_size))
            self._tap_state = state
        self._plan_from(state, recompile)

    def run(self, slot, batch_indices, storage_state, seeds=EpochSeeds()):
        """This branch's transforms on its copy of the source's output for this batch."""
        start = self.tap[slot][:len(batch_indices)]
        return _run_steps(self.steps, start, slot, batch_indices, storage_state, seeds)


class ViewBranch(Branch):
    """A view of a shared decode: starts from part ``part`` of a ViewsDecoder step's output.

    The part is the view's own buffer, written by the shared decode, so
    nothing is copied; ``operations`` lists the view's decoder first, as the
    user gave it (FFCV's ``Loader.pipelines``), then the transforms run here.

    Parameters
    ----------
    name : str
        Output name.
    source : Step
        The step of the ViewsDecoder.
    part : int, >= 1
        Which view.
    operations : list of Operation
        The view's Operations as given, its decoder first.
    steps : list of Operation
        The transforms run here (after fusion into the decoder).
    batch_size, num_slots : int
    """

    copies = False

    def __init__(self, name, source, part, operations, steps, batch_size, num_slots):
        self.part = part
        super().__init__(name, source, steps, batch_size, num_slots)
        self.operations = list(operations)

    def plan(self, recompile=False):
        """Take the view's (re)planned buffer and State from the shared decode, replan the steps."""
        state = self.source.operation.part_states()[self.part]
        self.tap = self.source.destination[self.part]
        self._tap_state = state
        # The view's decoder, inside the shared step, holds position 0 of this output.
        self.output_state = _plan_steps(self.name, self.steps, state, self.batch_size,
                                        self.num_slots, recompile, first_position=1)


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

    def plan(self, recompile=False):
        """Plan every pipeline again (at an epoch start), in order, so branches follow their sources."""
        for pipeline in self.pipelines:
            pipeline.plan(recompile)

    def run_batch(self, slot, batch_indices, storage_state, seeds=EpochSeeds()):
        """Outputs of every pipeline for ``batch_indices``, written into buffer slot ``slot``.

        ``seeds`` (:class:`ffcvx.pipeline.seeds.EpochSeeds`) seeds the steps
        that declare ``with_seed``.
        """
        return tuple(p.run(slot, batch_indices, storage_state, seeds) for p in self.pipelines)

    @property
    def output_names(self) -> List[Optional[str]]:
        return [p.name for p in self.pipelines]
