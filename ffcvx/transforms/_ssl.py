"""What FFCV-SSL's random ops and their ``Label*`` twins share (internal to the transforms)."""
import numpy as np
from numba import njit


@njit(nogil=True)
def draw_applied(prob):
    """One sample's draw (after ``seed_sample``): True with probability ``prob``."""
    return np.random.rand() < prob


@njit(nogil=True, inline='always')
def flag_column(args, out):
    """A one-flag label op's draw (``LabelOp``): ``out[0]`` is 1.0 if ``draw_applied(args[0])``, else 0.0."""
    out[0] = 1.0 if draw_applied(args[0]) else 0.0
