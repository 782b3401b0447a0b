"""What a Loader holds from the operating system, counted, for the lifetime and soak tests.

A snapshot counts this process's ffcvx threads (names starting ``ffcvx-``),
open file descriptors (``/proc/self/fd``), the entries of a private shared-
memory folder and, when given a Redis client, the server's client
connections. Tests compare snapshots with a baseline taken before.
"""
import os
import tempfile
import threading
import time

import numpy as np
import psutil

from ffcvx.fields import IntField, NDArrayField
from ffcvx.writer import DatasetWriter

#: Strategies every lifetime and soak test runs under.
STRATEGIES = ['os', 'process', 'shared', 'redis']
#: Image side of the Fashion-MNIST-like file, pixels.
SIDE = 28


class FashionLike:
    """``n`` gray 28x28 uint8 images and labels 0-9, a function of the index.

    Sample ``i``'s image is filled with ``i % 251`` and its label is ``i % 10``,
    so a test can tell from a batch which samples it holds.
    """

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.full((SIDE, SIDE), i % 251, dtype=np.uint8), int(i % 10)


#: The smallest page size the writer allows, bytes: keeps the files (and the
#: page-sized buffers of the process and Redis caches) small.
PAGE_SIZE = 1 << 21


def write_fashion_like(path, n=256):
    """Write ``n`` samples of :class:`FashionLike` to ``path`` (about 800 bytes each, 2 MiB pages)."""
    DatasetWriter(str(path), {'image': NDArrayField(np.dtype('uint8'), (SIDE, SIDE)),
                              'label': IntField()}, page_size=PAGE_SIZE,
                  num_workers=1, progress=False).from_indexed_dataset(FashionLike(n))
    return path


def private_shm_dir():
    """A fresh folder on ``/dev/shm`` (tmpfs, like the real segments), for one test or module."""
    return tempfile.mkdtemp(prefix='ffcvxtest-shm-', dir='/dev/shm')


def cache_options(strategy, shm_dir, redis_url):
    """The Loader's ``cache_options`` for ``strategy`` in these tests."""
    if strategy == 'shared':
        return {'shm_dir': shm_dir}
    if strategy == 'redis':
        return {'url': redis_url, 'timeout': 5.0}
    return {}


def ffcvx_threads():
    """Names of this process's live ffcvx threads, sorted."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith('ffcvx-'))


def open_fds():
    """Number of open file descriptors of this process."""
    return len(os.listdir('/proc/self/fd'))


def redis_clients(client):
    """Client connections the server has now, less the one asking."""
    return len(client.client_list()) - 1


def snapshot(shm_dir, redis_client=None):
    """What this process holds now: threads, fds, shm entries, Redis connections.

    Returns
    -------
    dict
        ``threads`` (list of str), ``fds`` (int), ``shm`` (sorted list of
        entry names in ``shm_dir``), ``redis`` (int, or None without a client).
    """
    # The server is asked first: the client's own connection, opened on its
    # first command, is then counted in every snapshot's fds alike.
    redis = None if redis_client is None else redis_clients(redis_client)
    return {'threads': ffcvx_threads(), 'fds': open_fds(), 'shm': sorted(os.listdir(shm_dir)),
            'redis': redis}


def settle(baseline, shm_dir, redis_client=None, timeout=10.0):
    """Wait until a snapshot equals ``baseline`` (threads finish asynchronously).

    Returns the last snapshot: equal to ``baseline`` unless ``timeout``
    seconds passed first, so the caller's assertion shows what was left.
    """
    deadline = time.monotonic() + timeout
    while True:
        now = snapshot(shm_dir, redis_client)
        if now == baseline or time.monotonic() > deadline:
            return now
        time.sleep(0.02)


def rss_mb():
    """Resident set size of this process, MB (10**6 bytes)."""
    return psutil.Process().memory_info().rss / 1e6
