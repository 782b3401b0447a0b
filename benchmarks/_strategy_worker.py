"""One training process for benchmarks/test_strategy_speed.py.

Usage: python _strategy_worker.py PATH STRATEGY OPTIONS_JSON EPOCHS COLD HOLD_DIR

Runs ``EPOCHS`` epochs of RandomResizedCrop 224 + flip (2 threads, batch 128,
RANDOM order) through the memory strategy ``STRATEGY``. Epoch 0 also compiles
the pipelines. With ``COLD`` = 1 the file's pages are dropped from the OS page
cache (``posix_fadvise DONTNEED``) before the Loader is made and again after
epoch 0, so that epoch 1 reads from the disk (unless the strategy holds its
own copy). Prints one JSON line: Loader construction and epoch times in
seconds, and the process's memory before the Loader and after the last epoch
(bytes). If
``HOLD_DIR`` is not ``-``, the process then writes ``HOLD_DIR/ready-<pid>`` and
keeps its Loader open until ``HOLD_DIR/release`` exists, so that the parent can
measure two processes that hold the dataset at once.
"""
import json
import os
import resource
import sys
import time
from pathlib import Path

import psutil

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import RandomHorizontalFlip


def drop_page_cache(path):
    """Ask the kernel to drop the file's clean pages from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main(path, strategy, options, epochs, cold, hold_dir):
    uss_before = psutil.Process().memory_full_info().uss
    if cold:
        drop_page_cache(path)
    start = time.perf_counter()
    loader = Loader(path, batch_size=128, num_workers=2, order=OrderOption.RANDOM, seed=0,
                    cache=strategy, cache_options=options,
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((224, 224)),
                                         RandomHorizontalFlip()],
                               'label': [IntDecoder()]})
    construct_s = time.perf_counter() - start
    times = []
    for epoch in range(epochs):
        if cold and epoch == 1:
            drop_page_cache(path)
        start = time.perf_counter()
        for _batch in loader:
            pass
        times.append(time.perf_counter() - start)
    info = psutil.Process().memory_full_info()
    print(json.dumps({'construct_s': construct_s, 'epoch_s': times, 'uss_before': uss_before, 'rss': info.rss, 'pss': info.pss, 'uss': info.uss,
                      'peak_rss': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      'pid': os.getpid()}), flush=True)
    if hold_dir != '-':
        hold = Path(hold_dir)
        (hold / f'ready-{os.getpid()}').touch()
        deadline = time.monotonic() + 300
        while not (hold / 'release').exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    loader.close()


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]),
         sys.argv[5] == '1', sys.argv[6])
