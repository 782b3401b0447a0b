"""Which shard of every epoch this process loads (``Loader(distributed=True)``)."""
import os
import warnings

import torch


def rank_and_world_size():
    """This process's ``(rank, world_size)`` for ``distributed=True``.

    The initialised default ``torch.distributed`` process group decides; without
    one (e.g. a Loader built before ``init_process_group``), the ``RANK`` and
    ``WORLD_SIZE`` environment variables that ``torchrun`` sets; without those,
    ``(0, 1)`` with a warning.

    Raises
    ------
    ValueError
        If only one of ``RANK`` / ``WORLD_SIZE`` is set, either is not an
        integer, or they do not satisfy ``0 <= RANK < WORLD_SIZE``.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    rank_text, world_text = os.environ.get('RANK'), os.environ.get('WORLD_SIZE')
    if rank_text is None and world_text is None:
        warnings.warn("distributed=True, but no torch.distributed process group is initialised "
                      "and RANK / WORLD_SIZE are unset: this process loads the whole dataset "
                      "(rank 0 of 1)")
        return 0, 1
    if rank_text is None or world_text is None:
        # Guessing the missing one could give two processes the same shard.
        raise ValueError(f"distributed=True needs both RANK and WORLD_SIZE in the environment "
                         f"(or an initialised process group); got RANK={rank_text!r}, "
                         f"WORLD_SIZE={world_text!r}")
    try:
        rank, world_size = int(rank_text), int(world_text)
    except ValueError:
        raise ValueError(f"RANK and WORLD_SIZE must be integers, got RANK={rank_text!r}, "
                         f"WORLD_SIZE={world_text!r}") from None
    if not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= RANK < WORLD_SIZE, got RANK={rank}, WORLD_SIZE={world_size}")
    return rank, world_size
