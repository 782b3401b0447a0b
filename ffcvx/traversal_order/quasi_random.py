"""QUASI_RANDOM: random order drawn from a few pages at a time.

FFCV's definition: samples are grouped by the data page that holds them; pages
are visited in a random order and at most ``buffer_size`` pages are "open" at
once; each next sample is drawn from a random open page. Reads then stay close
to sequential, which lets a process cache hold only a few pages.

Unlike FFCV 1.0 (whose order also depended on how often it had been called
before), the order here is a pure function of (seed, epoch).
"""
import numpy as np
from numba import njit

from .base import TraversalOrder

#: Samples per group for samples that own no data region (e.g. files of only
#: IntField/FloatField), which have no page to group them by.
VIRTUAL_PAGE_SAMPLES = 256


@njit(nogil=True, cache=False)
def _interleave(sorted_samples, group_starts, group_order, draws, buffer_size):
    """Emit samples by drawing from at most ``buffer_size`` open groups at a time."""
    total = sorted_samples.shape[0]
    out = np.empty(total, dtype=sorted_samples.dtype)
    active = np.empty(buffer_size, dtype=np.int64)
    cursor = np.empty(buffer_size, dtype=np.int64)
    num_active = 0
    next_group = 0
    for k in range(total):
        while num_active < buffer_size and next_group < group_order.shape[0]:
            group = group_order[next_group]
            next_group += 1
            active[num_active] = group
            cursor[num_active] = group_starts[group]
            num_active += 1
        pick = int(draws[k] * num_active)
        if pick >= num_active:
            pick = num_active - 1
        out[k] = sorted_samples[cursor[pick]]
        cursor[pick] += 1
        if cursor[pick] == group_starts[active[pick] + 1]:
            num_active -= 1
            active[pick] = active[num_active]
            cursor[pick] = cursor[num_active]
    return out


class QuasiRandom(TraversalOrder):
    """Page-local random order (see the module docstring).

    Parameters
    ----------
    loader : ffcvx.loader.Loader
    buffer_size : int or None
        Open pages at a time; default ``2 * batch_size`` as in FFCV.
    """

    def __init__(self, loader, buffer_size=None):
        super().__init__(loader)
        reader = loader.reader
        self.buffer_size = int(buffer_size or 2 * loader.batch_size)
        page_shift = int(reader.page_size).bit_length() - 1
        page_of_sample = np.full(reader.num_samples, -1, dtype=np.int64)
        table = reader.alloc_table
        if len(table):
            page_of_sample[table['sample_id'].astype(np.int64)] = (table['ptr'] >> np.uint64(page_shift)).astype(np.int64)
        groups = page_of_sample[self.indices.astype(np.int64)]
        # Samples without a data region are grouped in fixed-size virtual pages
        # numbered after the real ones.
        orphans = groups < 0
        if orphans.any():
            base = groups.max() + 1 if (~orphans).any() else 0
            groups[orphans] = base + np.arange(orphans.sum()) // VIRTUAL_PAGE_SAMPLES
        _, self._group_of_sample = np.unique(groups, return_inverse=True)
        self._num_groups = int(self._group_of_sample.max()) + 1 if len(groups) else 0

    def sample_order(self, epoch):
        count = len(self.indices)
        if count == 0:
            return self.indices.copy()
        rng = np.random.default_rng([self.seed, epoch])
        # Shuffle within each group: sort by (group, random key).
        keys = rng.random(count)
        by_group = np.lexsort((keys, self._group_of_sample))
        sorted_samples = self.indices[by_group]
        group_starts = np.searchsorted(self._group_of_sample[by_group], np.arange(self._num_groups + 1))
        group_order = rng.permutation(self._num_groups)
        draws = rng.random(count)
        order = _interleave(sorted_samples, group_starts.astype(np.int64), group_order.astype(np.int64),
                            draws, max(1, self.buffer_size))
        return self.shard(order)
