"""Loader throughput on an ImageNet-like photo set, next to the decode limit.

Run: pytest benchmarks/test_loader_speed.py --benchmark-only
Figures are images per second, in ``extra_info`` and printed; ratios compare
measurements taken in this one run.
"""
import ctypes
import time

import numba
import numpy as np
import pytest
from numba import njit

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder, CenterCropRGBImageDecoder
from ffcvx.backend_api import DECODE_REGION_PROTO
from ffcvx.loader import Loader, OrderOption
from ffcvx.registry import Registry
from ffcvx.transforms import RandomHorizontalFlip

RESULTS = {}


def _epoch_rate(loader):
    start = time.perf_counter()
    count = 0
    for images, _ in loader:
        count += images.shape[0]
    return count / (time.perf_counter() - start)


def _loader(path, threads, decoder, flip=True, backend='turbojpeg'):
    ops = [decoder] + ([RandomHorizontalFlip()] if flip else [])
    loader = Loader(str(path), batch_size=128, num_workers=threads, order=OrderOption.RANDOM,
                    seed=0, drop_last=False, backend=backend,
                    pipelines={'image': ops, 'label': [IntDecoder()]})
    _epoch_rate(loader)  # compile and warm the page cache
    return loader


@pytest.mark.parametrize('threads', [1, 2])
def test_random_resized_crop_224_flip(benchmark, photos_beton, threads):
    loader = _loader(photos_beton, threads, RandomResizedCropRGBImageDecoder((224, 224)))
    rates = []
    benchmark.pedantic(lambda: rates.append(_epoch_rate(loader)), rounds=4, iterations=1)
    RESULTS[f'rrc224_flip_{threads}t'] = max(rates)
    benchmark.extra_info['img_per_s'] = round(max(rates))
    print(f"\nRandomResizedCrop 224 + flip, {threads} thread(s): {max(rates):,.0f} img/s")
    loader.close()


@pytest.mark.parametrize('threads', [1, 2])
def test_center_crop_224(benchmark, photos_beton, threads):
    loader = _loader(photos_beton, threads, CenterCropRGBImageDecoder((224, 224), 224 / 256), flip=False)
    rates = []
    benchmark.pedantic(lambda: rates.append(_epoch_rate(loader)), rounds=3, iterations=1)
    benchmark.extra_info['img_per_s'] = round(max(rates))
    print(f"\nCenterCrop 224, {threads} thread(s): {max(rates):,.0f} img/s")
    loader.close()


def test_full_decode_limit(benchmark, photo_jpegs):
    """The same JPEGs fully decoded by the backend, one thread, no loader: the limit."""
    backend = Registry('ffcvx.decoders').get('turbojpeg')
    decode = DECODE_REGION_PROTO(backend.function_address('decode_region'))
    blob = np.frombuffer(b''.join(photo_jpegs), dtype=np.uint8)
    offsets = np.cumsum([0] + [len(j) for j in photo_jpegs]).astype(np.int64)
    sizes = np.array([[0, 0]], dtype=np.int64)
    out = np.empty(4000 * 4000 * 3, dtype=np.uint8)
    # Image sizes come from a first pass at scale 1/8 (cheap) then a full one.

    @njit(nogil=True)
    def decode_all(blob, offsets, out, hw, heights, widths):
        failures = 0
        for k in range(offsets.shape[0] - 1):
            start = offsets[k]
            n = offsets[k + 1] - start
            rc = decode(blob[start:].ctypes.data, n, 0, 0, heights[k], widths[k], 0, 0,
                        out.ctypes.data, out.shape[0], hw.ctypes.data)
            failures += rc != 0
        return failures

    from PIL import Image
    import io
    dims = [Image.open(io.BytesIO(j)).size for j in photo_jpegs]
    widths = np.array([d[0] for d in dims], dtype=np.int64)
    heights = np.array([d[1] for d in dims], dtype=np.int64)
    assert decode_all(blob, offsets, out, sizes, heights, widths) == 0
    times = []

    def run():
        start = time.perf_counter()
        decode_all(blob, offsets, out, sizes, heights, widths)
        times.append(time.perf_counter() - start)
    benchmark.pedantic(run, rounds=4, iterations=1)
    rate = len(photo_jpegs) / min(times)
    RESULTS['full_decode_1t'] = rate
    benchmark.extra_info['img_per_s'] = round(rate)
    print(f"\nfull decode limit, 1 thread: {rate:,.0f} img/s")
    if 'rrc224_flip_1t' in RESULTS:
        ratio = RESULTS['rrc224_flip_1t'] / rate
        benchmark.extra_info['rrc_over_full_decode'] = round(ratio, 3)
        print(f"RandomResizedCrop 224 + flip / full decode, 1 thread: {ratio:.2f}")


@pytest.fixture(scope='module')
def gray_photos_beton(tmp_path_factory):
    """The benchmark photos as one-component JPEGs (q90) of a GrayscaleImageField."""
    from conftest import BENCH_SAMPLES, PhotoCrops, photos_dir
    from ffcvx.fields import GrayscaleImageField, IntField
    from ffcvx.writer import DatasetWriter

    root = photos_dir()
    path = tmp_path_factory.mktemp('bench_gray') / 'photos_gray.beton'
    DatasetWriter(str(path), {'image': GrayscaleImageField(write_mode='jpg', jpeg_quality=90),
                              'label': IntField()},
                  num_workers=2, progress=False).from_indexed_dataset(PhotoCrops(root, BENCH_SAMPLES))
    return path


@pytest.mark.parametrize('backend', ['turbojpeg', 'imagecodecs', 'pillow'])
def test_gray_random_resized_crop_224_flip(benchmark, gray_photos_beton, backend):
    """Gray JPEGs, RandomResizedCrop 224 + flip, 1 thread: channels=1 against channels=3.

    channels=1 runs the one-channel path (decode_region_gray, ffcvx_resize_gray);
    channels=3 decodes and resizes as RGB, which is what channels=1 cost before
    the one-channel path (it then only kept channel 0). Rounds alternate between
    the two Loaders so that both see the same machine; the ratio is of the best rounds.
    """
    loaders = {c: _loader(gray_photos_beton, 1, RandomResizedCropRGBImageDecoder((224, 224), channels=c),
                          backend=backend)
               for c in (1, 3)}
    rates = {1: [], 3: []}

    def run():
        for c in (3, 1):
            rates[c].append(_epoch_rate(loaders[c]))
    benchmark.pedantic(run, rounds=3, iterations=1)
    for loader in loaders.values():
        loader.close()
    one, three = max(rates[1]), max(rates[3])
    benchmark.extra_info.update(img_per_s_channels1=round(one), img_per_s_channels3=round(three),
                                ratio=round(one / three, 3))
    print(f"\ngray RRC 224 + flip, {backend}, 1 thread: channels=1 {one:,.0f} img/s, "
          f"channels=3 {three:,.0f} img/s, ratio {one / three:.2f}")
