"""Comparisons the memory-strategy tests share: epochs served against the spec reader.

Every check compares what a strategy serves with the region table of
:class:`ffcvx.testing.regions.RegionTable` and fails the running test with the
first :data:`~.settings.SHOWN` differences.
"""
import os

import numpy as np
import pytest

from ..regions import RegionTable, epoch_batches, serve_epoch
from .settings import BATCH_SIZE, SHOWN

__all__ = ['check_every_order', 'check_loader_epoch', 'fail_on', 'make_loader', 'open_fds']


def fail_on(problems, what):
    """Fail the running test listing the first :data:`SHOWN` of ``problems``, if any."""
    if problems:
        shown = '\n  '.join(problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ''
        pytest.fail(f"{what}: {len(problems)} regions served wrong:\n  {shown}{more}",
                    pytrace=False)


def check_every_order(manager, reader, gather_for):
    """Four epochs on one manager: every order, one of them left half-way."""
    table = RegionTable(reader)
    read = manager.compile_reader()
    gather = gather_for(read)
    compared = 0
    epochs = [('SEQUENTIAL', 0, None), ('RANDOM', 0, None), ('RANDOM', 1, 'half'),
              ('RANDOM', 2, None), ('QUASI_RANDOM', 0, None)]
    for order, epoch, early in epochs:
        batches = epoch_batches(reader, order, BATCH_SIZE, seed=17, epoch=epoch)
        stop = max(1, len(batches) // 2) if early else None
        problems, _ = serve_epoch(manager, read, gather, table, batches, stop_after=stop)
        fail_on(problems, f"{order} epoch {epoch}" + (" (left early)" if early else ""))
        if stop is None:
            compared += table.count
    return compared


def make_loader(location, order, cache, options, seed, arrays=True):
    """A Loader over ``pages_2mib`` yielding (index, array, blob), or (index, blob) without ``arrays``.

    ``location`` is ``(fname, storage_options)`` (:func:`ffcvx_location`).
    """
    from ...fields.decoders import BytesDecoder, IntDecoder, NDArrayDecoder
    from ...loader import Loader, OrderOption
    # Each Loader compiles its parallel decoders afresh (about a second each),
    # so a Loader that only needs to add concurrency may skip the arrays.
    fname, storage_options = location
    return Loader(fname, batch_size=BATCH_SIZE, num_workers=2, order=OrderOption[order],
                  seed=seed, drop_last=False, cache=cache, cache_options=options,
                  storage_options=storage_options,
                  pipelines={'index': [IntDecoder()],
                             'array': [NDArrayDecoder()] if arrays else None,
                             'blob': [BytesDecoder()]})


def check_loader_epoch(loader, table, stop_after=None):
    """Iterate one epoch of a :func:`make_loader`; return problems and the samples seen."""
    problems, seen = [], []
    for number, outputs in enumerate(loader):
        if stop_after is not None and number >= stop_after:
            break
        index, parts = outputs[0], dict(zip(('array', 'blob')[-(len(outputs) - 1):], outputs[1:]))
        samples = np.asarray(index).reshape(-1).tolist()
        seen.extend(samples)
        for name, values in parts.items():
            # Raw bytes of each row, whatever the field's dtype.
            rows = np.ascontiguousarray(np.asarray(values)).view(np.uint8).reshape(len(samples), -1)
            k = table.fields.index(name)
            for row, sample in enumerate(samples):
                expected = table.expected[sample][k]
                if not np.array_equal(rows[row, :len(expected)], expected):
                    problems.append(f"batch {number}, sample {sample}: {name!r} differs from "
                                    f"the reader's")
    return problems, seen


def open_fds():
    """``{fd: target}`` of this process's open descriptors, or None without ``/proc``."""
    try:
        return {name: os.readlink(f'/proc/self/fd/{name}') for name in os.listdir('/proc/self/fd')
                if _readable_link(name)}
    except FileNotFoundError:
        return None  # no /proc: descriptors are not checked


def _readable_link(name):
    try:
        os.readlink(f'/proc/self/fd/{name}')
        return True
    except OSError:
        return False  # the descriptor listdir itself used, already closed


# -- the tests ---------------------------------------------------------------------------
