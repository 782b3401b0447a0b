"""How an Operation asks for its output buffer, allocated once per Loader."""
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np
import torch


@dataclass(frozen=True)
class AllocationQuery:
    """A buffer an Operation writes its output into.

    The Loader allocates ``[num_slots, batch_size, *shape]`` once; the
    Operation receives ``buffer[slot][:len(batch)]`` every batch.

    Parameters
    ----------
    shape : tuple of int
        Shape of one sample's output.
    dtype : numpy.dtype or torch.dtype
        numpy dtypes give CPU arrays (pinned when CUDA is present); torch dtypes
        give tensors on ``device``.
    device : torch.device or None
        Only for torch dtypes; default CPU.
    """

    shape: Tuple[int, ...]
    dtype: Any
    device: Optional[torch.device] = None


def allocate(query, leading):
    """Allocate a buffer for ``query`` with extra leading dimensions.

    Parameters
    ----------
    query : AllocationQuery
    leading : tuple of int
        E.g. ``(num_slots, batch_size)``, or ``()`` for a shared buffer.

    Returns
    -------
    ndarray or torch.Tensor, shape ``leading + query.shape``
    """
    shape = tuple(leading) + tuple(query.shape)
    if isinstance(query.dtype, torch.dtype):
        device = query.device if query.device is not None else torch.device('cpu')
        return torch.empty(shape, dtype=query.dtype, device=device)
    dtype = np.dtype(query.dtype)
    if torch.cuda.is_available():
        # Pinned host memory makes the later host-to-device copy asynchronous.
        torch_dtype = torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        return torch.empty(shape, dtype=torch_dtype, pin_memory=True).numpy()
    return np.zeros(shape, dtype=dtype)


def allocate_all(query, leading):
    """:func:`allocate` for a declaration: None, one AllocationQuery or a tuple of them.

    Returns None, one buffer, or a tuple of buffers, in the declaration's order.
    """
    if query is None:
        return None
    if isinstance(query, AllocationQuery):
        return allocate(query, leading)
    return tuple(allocate(q, leading) for q in query)
