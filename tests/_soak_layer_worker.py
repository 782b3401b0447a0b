"""Long epochs under one Numba threading layer, in a fresh interpreter (not a test module).

Usage: python _soak_layer_worker.py BETON LAYER EPOCHS BATCH

Protocol on stdin/stdout: after one epoch that compiles the pipelines it
prints ``compiled`` and waits for a line on stdin (the test starts its
competing processes meanwhile, so that compilation does not run slowed by
them), then runs the measured epochs and prints the JSON figures.

Numba picks its threading layer once per process, at the first parallel
call, from ``NUMBA_THREADING_LAYER``; tests/strategies/test_soak_layers.py therefore
runs this script once per layer, with that variable set. It runs EPOCHS full
measured epochs of one Loader (process cache, QUASI_RANDOM, two workers, as in the
issue) and prints one JSON line: the layer Numba loaded, and after every
epoch the process's RSS (MB), its thread count (``/proc/self/task``, so
native threads such as TBB's workers count too) and the batches seen. A
layer that cannot be loaded (TBB without ``libtbb.so.12``) prints
``{"available": false, "reason": ...}`` and exits 0: the test skips it.
"""
import json
import os
import sys
import time

import numpy as np


def _rss_mb():
    # /proc/self/statm: resident pages in field 2; no psutil import needed.
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e6


def _threads():
    return len(os.listdir('/proc/self/task'))


def _load_layer(wanted):
    """Run one tiny parallel function so that Numba loads its layer now.

    Returns
    -------
    str or None
        The layer loaded, or None (and the reason) when ``wanted`` cannot be.
    """
    import numba

    @numba.njit(parallel=True)
    def touch(values):
        for i in numba.prange(values.shape[0]):
            values[i] += 1
        return values

    try:
        touch(np.zeros(8))
    except ValueError as exc:  # "No threading layer could be loaded" (libtbb.so.12 missing)
        return None, str(exc).splitlines()[0]
    return numba.threading_layer(), None


def main(beton, wanted, epochs, batch):
    layer, reason = _load_layer(wanted)
    if layer is None:
        print(json.dumps({'layer': wanted, 'available': False, 'reason': reason}))
        return
    import ffcvx
    from ffcvx.loader import Loader, OrderOption
    loader = Loader(beton, batch_size=batch, num_workers=2, cache='process',
                    order=OrderOption.QUASI_RANDOM, seed=1, drop_last=False)
    for _ in loader:  # compiles every step once per process
        pass
    print('compiled', flush=True)
    sys.stdin.readline()
    figures = {'layer': layer, 'available': True, 'ffcvx': ffcvx.__file__, 'rss_mb': [],
               'threads': [], 'batches': [], 'epoch_seconds': []}
    for _ in range(epochs):
        start = time.monotonic()
        seen = sum(1 for _ in loader)
        figures['epoch_seconds'].append(round(time.monotonic() - start, 3))
        figures['batches'].append(seen)
        figures['rss_mb'].append(round(_rss_mb(), 3))
        figures['threads'].append(_threads())
    loader.close()
    print(json.dumps(figures))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
