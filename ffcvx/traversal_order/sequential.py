"""SEQUENTIAL: the indices in the order given."""
from .base import TraversalOrder


class Sequential(TraversalOrder):
    """Every epoch visits ``indices`` in their given order."""

    def sample_order(self, epoch):
        return self.shard(self.indices)
