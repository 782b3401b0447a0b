"""The cost of ``Loader.stats()``'s counting, as a share of a batch's time (target: below 1%).

Run: pytest benchmarks/test_stats_overhead.py --benchmark-only

An A/B of two Loaders cannot see a difference this small through the noise
of a 2-core machine, so the cost is measured directly: the exact bookkeeping
one batch triggers (the producer's and the consumer's ``perf_counter``
readings and :class:`~ffcvx.loader.stats.EpochStats` updates, a paged
strategy's page counts included) is timed over many repetitions and divided
by the time of one batch of RandomResizedCrop 224 + flip, batch 128, on the
photos, measured in the same run with the stats on (2 threads, the page cache
warm: the fastest batches, so the largest share).
"""
import time

import numpy as np
import pytest

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.loader.stats import EpochStats
from ffcvx.transforms import RandomHorizontalFlip

REPEATS = 20_000


def _bookkeeping_seconds(loader, batches):
    """Seconds of one batch's counting, the median of 5 timings of REPEATS batches."""
    stats = EpochStats(0, [128] * REPEATS, loader.memory_manager)
    clock = time.perf_counter
    timings = []
    for _ in range(5):
        start = clock()
        for number in range(REPEATS):
            # producer: start_batch, run_batch, the queue put (put_nowait succeeds)
            begin = clock()
            loaded = clock()
            stats.batch_prepared(number % batches, loaded - begin, clock() - loaded)
            # consumer: the wait in next() and the hand-over
            waiting = clock()
            stats.handed_out(number, clock() - waiting)
        timings.append((clock() - start) / REPEATS)
    return float(np.median(timings))


@pytest.mark.parametrize('cache', ['os', 'process'])
def test_stats_overhead_below_one_percent_of_a_batch(benchmark, photos_beton, cache):
    loader = Loader(str(photos_beton), batch_size=128, num_workers=2, order=OrderOption.RANDOM,
                    seed=0, cache=cache, backend='turbojpeg', pipelines={
                        'image': [RandomResizedCropRGBImageDecoder((224, 224)),
                                  RandomHorizontalFlip()],
                        'label': [IntDecoder()]})
    list(loader)  # compile, warm the page cache
    batch_times = []

    def epoch():
        list(loader)
        last = loader.stats()['last']
        batch_times.append(last['wall_s'] / last['batches'])
    benchmark.pedantic(epoch, rounds=3, iterations=1)
    batch_s = min(batch_times)
    cost_s = _bookkeeping_seconds(loader, len(loader))
    share = cost_s / batch_s
    benchmark.extra_info.update(batch_ms=round(batch_s * 1e3, 3), stats_us=round(cost_s * 1e6, 3),
                                overhead_percent=round(100 * share, 4))
    print(f"\nstats bookkeeping ({cache}): {cost_s * 1e6:.2f} us a batch, "
          f"{100 * share:.4f}% of a {batch_s * 1e3:.1f} ms batch")
    loader.close()
    assert share < 0.01
