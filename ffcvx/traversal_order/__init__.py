"""Traversal orders: which samples each epoch visits, in which order."""
from .base import TraversalOrder
from .sequential import Sequential
from .random import Random
from .quasi_random import QuasiRandom

__all__ = ['TraversalOrder', 'Sequential', 'Random', 'QuasiRandom']
