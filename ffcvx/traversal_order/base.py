"""The interface of a traversal order, and rank sharding for distributed training."""
from abc import ABC, abstractmethod

import numpy as np


class TraversalOrder(ABC):
    """Decides the sample order of each epoch.

    Parameters
    ----------
    loader : ffcvx.loader.Loader
        Gives ``indices`` (ndarray[uint64]), ``seed`` (int), ``distributed``
        (bool), ``rank`` and ``world_size`` (int), ``batch_size`` and ``reader``.
    """

    def __init__(self, loader):
        # Copies what it needs rather than keeping the loader: no reference
        # cycle, so a dropped Loader (and its epoch thread) is freed at once.
        self.indices = np.asarray(loader.indices, dtype=np.uint64)
        self.seed = loader.seed
        self.distributed = loader.distributed
        self.rank = loader.rank
        self.world_size = loader.world_size

    @abstractmethod
    def sample_order(self, epoch: int) -> np.ndarray:
        """Sample indices for ``epoch``, ndarray[uint64]; a pure function of (seed, epoch)."""

    def global_order(self, epoch):
        """``epoch``'s order before :meth:`shard` (for resuming on another world size).

        Subclasses shard with :meth:`shard`, which does nothing while
        ``distributed`` is False, so this is ``sample_order`` with it off.
        """
        distributed, self.distributed = self.distributed, False
        try:
            return np.asarray(self.sample_order(epoch), dtype=np.uint64)
        finally:
            self.distributed = distributed

    def shard(self, order):
        """This rank's part of a global ``order``.

        The order is padded by repeating its head (cyclically, should it be
        shorter than the padding) until its length is a multiple of
        ``world_size``, as torch's ``DistributedSampler`` does; then rank ``r``
        takes positions ``r, r + world_size, ...``. Every rank therefore gets
        the same number of samples, ``ceil(len(order) / world_size)``, so the
        ranks run the same number of batches (DDP's collectives would hang
        otherwise), and together they cover the whole order; the padding, fewer
        than ``world_size`` samples, is seen twice.

        Parameters
        ----------
        order : ndarray[uint64]
            The epoch's global order, the same on every rank.

        Returns
        -------
        ndarray[uint64]
            ``order`` itself when not distributed or ``world_size == 1``.
        """
        if not self.distributed or self.world_size == 1:
            return order
        total = -(-len(order) // self.world_size) * self.world_size
        if total > len(order):
            order = np.concatenate([order, np.resize(order, total - len(order))])
        return order[self.rank::self.world_size]
