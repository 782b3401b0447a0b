"""RANDOM: a fresh permutation every epoch."""
import numpy as np

from .base import TraversalOrder


class Random(TraversalOrder):
    """A uniform permutation of ``indices`` per epoch.

    The permutation is ``numpy.random.default_rng(seed + epoch).permutation``,
    FFCV's definition, so the same seed gives FFCV's order.
    """

    def sample_order(self, epoch):
        order = np.random.default_rng(self.seed + epoch).permutation(self.indices)
        return self.shard(order)
