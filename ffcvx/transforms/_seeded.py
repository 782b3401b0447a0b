"""Helpers for FFCV-SSL's seeded ops and their label ops (not part of the public API)."""
from dataclasses import replace

import numpy as np

from ..pipeline.allocation_query import AllocationQuery
from ._checks import seed_arg


def optional_seed(op_name, seed):
    """``None`` or ``int(seed)`` for a non-negative integer seed, else ValueError naming the op."""
    return seed_arg(op_name, seed)


def append_columns(op_name, state, count):
    """State and buffer of a label op that appends ``count`` float32 columns to ``(k,)`` rows.

    Parameters
    ----------
    state : State
        The previous step's output: numbers of shape ``(k,)`` per sample.
    count : int

    Returns
    -------
    (State, AllocationQuery)
        ``float32`` of shape ``(k + count,)``.

    Raises
    ------
    ValueError
        If the input is not one row of numbers per sample (e.g. images).
    """
    shape = state.shape
    if shape is None or len(shape) != 1 or np.dtype(state.dtype).kind not in 'iufb':
        raise ValueError(f"{op_name} appends columns to labels of shape (k,) per sample (put it "
                         f"after IntDecoder() or another label op), got shape {shape}, "
                         f"dtype {state.dtype}")
    new_shape = (int(shape[0]) + count,)
    return (replace(state, shape=new_shape, dtype=np.dtype(np.float32)),
            AllocationQuery(new_shape, np.dtype(np.float32)))
