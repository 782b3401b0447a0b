"""What resuming costs, against the time of one batch (issue 13).

Run: pytest benchmarks/test_resume_speed.py --benchmark-only
``state_dict()`` in µs; ``load_state_dict()`` + the first batch of the resumed
epoch (half-way through it) against a first batch of a fresh epoch: skipping
reads nothing, so the two should be alike.
"""
import time

import pytest

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import RandomHorizontalFlip


def _loader(path):
    loader = Loader(str(path), batch_size=128, num_workers=2, order=OrderOption.RANDOM, seed=0,
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((224, 224)),
                                         RandomHorizontalFlip()], 'label': [IntDecoder()]})
    for _ in loader:   # compile and warm the page cache
        pass
    return loader


def _first_batch(loader, state=None):
    start = time.perf_counter()
    if state is not None:
        loader.load_state_dict(state)
    iterator = iter(loader)
    next(iterator)
    seconds = time.perf_counter() - start
    iterator.close()
    return seconds


def test_state_dict_and_resume_against_one_batch(benchmark, photos_beton):
    loader = _loader(photos_beton)
    iterator = iter(loader)
    for _ in range(len(loader) // 2):
        next(iterator)
    loader.state_dict()     # the first call reads the file's identity (a few MB)
    benchmark.pedantic(loader.state_dict, rounds=200, iterations=10)
    state_us = benchmark.stats.stats.min * 1e6
    state = loader.state_dict()
    iterator.close()
    fresh = min(_first_batch(loader) for _ in range(3))
    resumed = min(_first_batch(loader, state) for _ in range(3))
    benchmark.extra_info.update(state_dict_us=round(state_us, 1), first_batch_ms=round(fresh * 1e3, 1),
                                resume_first_batch_ms=round(resumed * 1e3, 1))
    print(f"\nstate_dict(): {state_us:.1f} µs; first batch of an epoch: {fresh * 1e3:.1f} ms; "
          f"load_state_dict() + first batch half-way: {resumed * 1e3:.1f} ms "
          f"(ratio {resumed / fresh:.2f})")
    assert state_us < 1000
    assert resumed < 2 * fresh + 0.05
    loader.close()
