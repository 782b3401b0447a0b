"""What FFCV-SSL's random ops and their ``Label*`` twins share (internal to the transforms)."""

import numpy as np
from numba import njit

from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import require_numpy, seed_arg


def check_seed(op_name, seed):
    """``seed`` if it is None or an integer >= 0 (not a bool), else ValueError."""
    return seed_arg(op_name, seed)


class LabelColumns(Operation):
    """Base of the label ops: copy each sample's labels, then append ``columns`` float32 values.

    Input: ``ndarray, shape (B,)``, ``(B, 1)`` (``IntDecoder``) or ``(B, k)``
    (another label op), jit mode. Output: ``ndarray[float32], shape
    (B, k + columns)``, the labels first, as FFCV-SSL lays them out.
    Subclasses set ``columns`` (an int, or a property) and write
    ``_label_code(width)``, returning the compiled step
    ``(labels, dst, indices, seed) -> dst`` (``width = k``); they set
    ``seed_kind`` to their image op's, so that with the same ``seed`` both
    draw the same numbers.
    """

    columns = 0

    def declare_state_and_memory(self, previous_state):
        name = type(self).__name__
        require_numpy(name, previous_state)
        shape = tuple(previous_state.shape or ())
        if len(shape) > 1:
            raise ValueError(f"{name} needs labels of shape () or (k,) per sample, got {shape}; "
                             f"put it after IntDecoder() or another label op")
        self._width = int(shape[0]) if shape else 1
        out = (self._width + self.columns,)
        return (previous_state.replace(shape=out, dtype=np.dtype(np.float32)),
                AllocationQuery(out, np.dtype(np.float32)))

    def generate_code(self):
        code = self._label_code(self._width)
        code.is_parallel = True
        code.with_seed = True
        return code


@njit(nogil=True)
def draw_applied(prob):
    """One sample's draw (after ``seed_sample``): True with probability ``prob``."""
    return np.random.rand() < prob


def flag_label_code(width, prob):
    """The step of a one-flag label op: labels, then 1.0 if ``draw_applied(prob)`` else 0.0."""
    my_range = Compiler.get_iterator()

    def flag_label(labels, dst, indices, seed):
        n = labels.shape[0]
        flat = labels.reshape(n, width)
        for k in my_range(n):
            seed_sample(seed, indices[k])
            for i in range(width):
                dst[k, i] = flat[k, i]
            dst[k, width] = 1.0 if draw_applied(prob) else 0.0
        return dst
    return flag_label
