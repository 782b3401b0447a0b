"""The built-in traversal orders by name (FFCV's ``OrderOption``) and an epoch's batches."""
import enum
from typing import Literal, Mapping, Union

import numpy as np

from ..traversal_order import QuasiRandom, Random, Sequential, TraversalOrder

__all__ = ['ORDER_MAP', 'ORDER_TYPE', 'OrderOption', 'epoch_batches']


class OrderOption(enum.Enum):
    """Built-in traversal orders."""

    SEQUENTIAL = Sequential
    RANDOM = Random
    QUASI_RANDOM = QuasiRandom


#: FFCV's type of the ``order`` argument.
ORDER_TYPE = Union[TraversalOrder, Literal[OrderOption.SEQUENTIAL, OrderOption.RANDOM]]

#: FFCV's map from an OrderOption to its TraversalOrder class.
ORDER_MAP: Mapping[OrderOption, type] = {option: option.value for option in OrderOption}


def epoch_batches(order, batch_size, drop_last):
    """``order`` (the epoch's sample order) cut into batches.

    Returns
    -------
    list of ndarray[uint64]
        Contiguous arrays of ``batch_size`` sample numbers, the last one
        shorter unless ``drop_last`` (then left out).
    """
    count = len(order) // batch_size if drop_last else -(-len(order) // batch_size)
    return [np.ascontiguousarray(order[b * batch_size:(b + 1) * batch_size], dtype=np.uint64)
            for b in range(count)]
