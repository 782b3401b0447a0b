"""Planning one pipeline step: what an Operation declares, checked, and what changed.

A step is planned from the State its input has: the Operation declares its
shared scratch memory and its output State and per-batch buffer (FFCV's
``declare_state_and_memory``), and supplies its code. The Loader plans every
step again at the start of each epoch, so attributes changed between epochs
(FFCV's ImageNet recipe sets ``decoder.output_size`` for progressive
resizing) take effect: a step whose declarations, input or simple attributes
changed gets new buffers and new code; an unchanged step keeps both.
"""
import numpy as np
import torch

from ..errors import PipelineError
from .allocation_query import AllocationQuery
from .state import State

# Attributes of an Operation that are set by the Loader, not by the user.
_WIRING = frozenset({'metadata', 'memory_read', 'field'})
# Small arrays (e.g. NormalizeImage's mean and std) count as simple attributes.
_SMALL_ARRAY = 1024


def describe(op):
    """How messages name an Operation: its class and, for a user class, its module."""
    cls = type(op)
    module = cls.__module__
    return cls.__name__ if module.startswith('ffcvx.') else f"{module}.{cls.__qualname__}"


def _simple(value):
    # A hashable snapshot of a plain value, or None for anything else.
    if value is None or isinstance(value, (bool, int, float, str, bytes, np.generic,
                                           np.dtype, torch.dtype, torch.device)):
        return ('v', value)
    if isinstance(value, (tuple, list)):
        parts = tuple(_simple(v) for v in value)
        return None if any(p is None for p in parts) else ('t', parts)
    if isinstance(value, np.ndarray) and value.size <= _SMALL_ARRAY:
        return ('a', value.dtype.str, value.shape, value.tobytes())
    return None


def fingerprint(op):
    """The Operation's simple attributes (numbers, strings, tuples, small arrays), and those it absorbed.

    Two equal fingerprints mean that code generated from the Operation
    would read the same parameters.
    """
    items = []
    for name, value in sorted(vars(op).items()):
        if name in _WIRING:
            continue
        snap = _simple(value)
        if snap is not None:
            items.append((name, snap))
    absorbed = tuple(fingerprint(o) for o in op.absorbed)
    return tuple(items), absorbed


def _check_query(where, query):
    queries = query if isinstance(query, (tuple, list)) else (query,)
    for q in queries:
        if q is None and len(queries) == 1:
            continue
        if not isinstance(q, AllocationQuery):
            raise PipelineError(f"{where} declared {q!r} as its buffer; expected an AllocationQuery, "
                                f"a tuple of them, or None (spec/pipeline.md PIP-006)")
        if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in q.shape):
            raise PipelineError(f"{where} declared a buffer of shape {q.shape!r}; "
                                f"dimensions must be non-negative integers (PIP-006)")
    return tuple(query) if isinstance(query, list) else query


def declare(op, where, previous_state):
    """Run the Operation's declarations for ``previous_state`` and check them.

    Returns
    -------
    (shared_query, state, query)

    Raises
    ------
    PipelineError
        When the declarations are not a ``(State, AllocationQuery | tuple | None)``
        pair (spec/pipeline.md PIP-006); the message names the Operation and
        what it returned.
    """
    shared_query = _check_query(where + " (shared memory)", op.declare_shared_memory(previous_state))
    declared = op.declare_state_and_memory(previous_state)
    if not isinstance(declared, tuple) or len(declared) != 2:
        raise PipelineError(f"{where}.declare_state_and_memory returned {declared!r}; "
                            f"expected (State, AllocationQuery or None) (spec/pipeline.md PIP-006)")
    state, query = declared
    if not isinstance(state, State):
        raise PipelineError(f"{where}.declare_state_and_memory returned {state!r} as its state; "
                            f"expected a ffcvx.pipeline.State (spec/pipeline.md PIP-006)")
    return shared_query, state, _check_query(where, query)


def check_output(where, state, query, result, count):
    """Raise PipelineError if a compiled step's batch is not what its State declared.

    Only steps in ``jit_mode`` are checked (their outputs feed compiled code,
    where a mismatch would surface as a Numba typing error inside the next
    step); torch steps may change shapes (e.g. a wrapped ``torch.nn.Module``).
    """
    if not state.jit_mode:
        return
    if not isinstance(result, np.ndarray):
        raise PipelineError(f"{where} is in jit_mode but returned {type(result).__name__}, "
                            f"not a numpy array (spec/pipeline.md PIP-006)")
    expected = None if state.shape is None else (count,) + tuple(int(d) for d in state.shape)
    if (expected is not None and result.shape != expected) or result.dtype != np.dtype(state.dtype):
        raise PipelineError(
            f"{where} declared State(shape={state.shape}, dtype={np.dtype(state.dtype)}) and buffer "
            f"{query!r}, but returned a batch of shape {result.shape}, dtype {result.dtype} "
            f"(expected {expected}); declare the state its code produces (spec/pipeline.md PIP-006)")
