"""What flows between Operations: the declared type of a batch."""
from dataclasses import dataclass, replace
from typing import Any, Optional, Tuple

import numpy as np
import torch


@dataclass(frozen=True)
class State:
    """The declared output of an Operation, per sample.

    Parameters
    ----------
    jit_mode : bool
        True while the data are numpy arrays that Numba-compiled code handles;
        an Operation whose output state has ``jit_mode`` is compiled with Numba.
    device : torch.device
        Where the data live.
    shape : tuple of int or None
        Shape of one sample (the batch dimension is not included).
    dtype : numpy.dtype or torch.dtype
        Element type.
    """

    jit_mode: bool
    device: torch.device
    shape: Optional[Tuple[int, ...]]
    dtype: Any

    def __post_init__(self):
        if self.jit_mode and self.device.type != 'cpu':
            raise AssertionError("jit mode works only on the CPU")
        if self.jit_mode and isinstance(self.dtype, torch.dtype):
            raise AssertionError("jit mode needs a numpy dtype, not a torch dtype")

    def replace(self, **changes):
        """A copy with some attributes changed (``dataclasses.replace``)."""
        return replace(self, **changes)


def concrete_device(device):
    """``device`` with its index filled in: ``cuda`` becomes ``cuda:<current device>``.

    CUDA's current device is per thread, and the Loader runs its pipelines in
    its own thread, where it is device 0 unless set again. So a device named
    without an index is resolved once, in the thread that builds the Loader
    (where the user called ``torch.cuda.set_device(rank)``), and used with
    that index from then on.

    Parameters
    ----------
    device : torch.device or str

    Returns
    -------
    torch.device
    """
    device = torch.device(device)
    if device.type == 'cuda' and device.index is None and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return device


#: The state a decoder starts from: raw bytes on the CPU.
INITIAL_STATE = State(jit_mode=True, device=torch.device('cpu'), shape=None, dtype=np.dtype('u1'))
