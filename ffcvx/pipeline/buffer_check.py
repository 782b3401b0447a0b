"""Refusing a step's buffers before allocating them when the machine cannot hold them.

A step's buffers are allocated once per Loader: ``[num_slots, batch_size,
*shape]`` for its output and its shared scratch (``graph._plan_step``). Their
sizes follow from the file: an image decoder sizes them from the field's
largest record, so one record claiming 65500 x 65500 pixels (the format
allows up to 65535 a side) asks for 12 GiB per image, per slot or per
thread. numpy's bare ``MemoryError`` then named no step and no sample, and
with overcommit a smaller excess could succeed and fail later, anywhere. So
the bytes a step is about to allocate are compared with the memory available
first, and a refusal is a :class:`~ffcvx.errors.PipelineError` naming the
step, the bytes, and (through the Operation's optional ``memory_claim()``)
the sample whose size asked for them.
"""
import os

import numpy as np
import torch

from ..errors import PipelineError
from .allocation_query import AllocationQuery

__all__ = ['available_memory', 'buffer_bytes', 'check_buffers', 'needed', 'too_big']


def _queries(query):
    if query is None:
        return ()
    return (query,) if isinstance(query, AllocationQuery) else tuple(query)


def _on_host(query):
    # Host memory only: a CUDA buffer's limit is the GPU's, and torch's own
    # OutOfMemoryError already says how much it asked for there.
    return not isinstance(query.dtype, torch.dtype) or query.device is None \
        or torch.device(query.device).type == 'cpu'


def buffer_bytes(query, leading):
    """Host bytes of the buffers of ``query`` with leading dimensions ``leading``.

    Parameters
    ----------
    query : AllocationQuery, tuple of AllocationQuery, or None
    leading : tuple of int
        ``(num_slots, batch_size)`` for an output buffer, ``()`` for shared memory.

    Returns
    -------
    int
        Bytes, as a Python int (no overflow for any declared shape); 0 for
        None and for buffers on a GPU.
    """
    total = 0
    for q in _queries(query):
        if not _on_host(q):
            continue
        if isinstance(q.dtype, torch.dtype):
            itemsize = torch.empty((), dtype=q.dtype).element_size()
        else:
            itemsize = np.dtype(q.dtype).itemsize
        count = 1
        for n in tuple(leading) + tuple(q.shape):
            count *= int(n)
        total += count * itemsize
    return total


def _meminfo_available():
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024        # the file says kB: KiB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available(root='/sys/fs/cgroup'):
    # A container's limit (cgroup v2) is often far below the host's memory. Its
    # memory.current counts the page cache, which the kernel gives back when a
    # process needs memory: a container that has read a large .beton sits near its
    # limit with most of it reclaimable. So the file cache is not counted as used
    # (as the kubelet does with inactive_file; all of 'file' is the looser bound).
    try:
        with open(os.path.join(root, 'memory.max')) as f:
            limit = f.read().strip()
        with open(os.path.join(root, 'memory.current')) as f:
            used = int(f.read().strip())
        if limit == 'max':
            return None
        reclaimable = 0
        with open(os.path.join(root, 'memory.stat')) as f:
            for line in f:
                name, _, value = line.partition(' ')
                if name == 'file':
                    reclaimable = int(value)
    except (OSError, ValueError):
        return None
    return max(0, int(limit) - max(0, used - reclaimable))


def available_memory():
    """Bytes of memory this process can still get, or None when unknown.

    The smaller of Linux's ``MemAvailable`` and what the cgroup (v2) limit
    leaves; elsewhere, the physical memory (``os.sysconf``); None when none
    of these can be read (then nothing is refused before allocating).
    """
    known = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if known:
        return min(known)
    try:
        return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (AttributeError, ValueError, OSError):
        return None


def _gib(nbytes):
    return f"{nbytes / 2 ** 30:.1f} GiB"


def too_big(op, where, need, detail, available=None):
    """The PipelineError of a step whose buffers of ``need`` bytes cannot be had.

    ``detail`` says how ``need`` is made up; ``available`` is the memory
    compared with, or None when the allocation itself failed.
    """
    claim = getattr(op, 'memory_claim', None)
    claim = claim() if callable(claim) else None
    have = (f"more than the {available} bytes ({_gib(available)}) of memory available"
            if available is not None else "and allocating them failed (MemoryError)")
    return PipelineError(f"{where}: its buffers need {need} bytes ({_gib(need)}: {detail}), "
                         f"{have}" + (f"; {claim}" if claim else "")
                         + "; nothing was allocated for them")


def needed(query, shared_query, num_slots, batch_size):
    """``(bytes, how they are made up)`` of a step's output and shared host buffers.

    Parameters
    ----------
    query, shared_query : AllocationQuery, tuple of them, or None
        The output buffer (per sample) and the shared scratch about to be allocated.
    num_slots, batch_size : int

    Returns
    -------
    (int, str)
    """
    output = buffer_bytes(query, (num_slots, batch_size))
    shared = buffer_bytes(shared_query, ())
    parts = []
    if output:
        shapes = ', '.join(str(tuple(q.shape)) for q in _queries(query))
        parts.append(f"output {num_slots} slots x {batch_size} samples x {shapes} = {output}")
    if shared:
        shapes = ', '.join(str(tuple(q.shape)) for q in _queries(shared_query))
        parts.append(f"shared scratch {shapes} = {shared}")
    return output + shared, ' + '.join(parts) or 'no host buffers'


def check_buffers(op, where, query, shared_query, num_slots, batch_size):
    """Raise before allocating when a step's new buffers exceed the memory available.

    Parameters
    ----------
    op : Operation
        May define ``memory_claim() -> str or None``: which data sized its
        buffers (e.g. an image decoder names its field's largest sample).
    where : str
        How errors name the step ("pipeline 'image', step 0 (...)").
    query, shared_query : AllocationQuery, tuple of them, or None
        The buffers about to be allocated (None for one that is kept).
    num_slots, batch_size : int

    Raises
    ------
    PipelineError
        If their host bytes exceed :func:`available_memory`; the message
        names the step, the bytes and how they are made up, and the
        Operation's claim.
    """
    need, detail = needed(query, shared_query, num_slots, batch_size)
    if need == 0:              # nothing new on the host: no need to read /proc
        return
    available = available_memory()
    if available is not None and need > available:
        raise too_big(op, where, need, detail, available)
