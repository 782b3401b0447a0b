"""Decoder backends side by side: RandomResizedCrop 224 + flip through the Loader.

Run: pytest benchmarks/test_backend_speed.py --benchmark-only -s

The same photos .beton (JPEG q90) and the same pipeline for every CPU backend,
1 and 2 threads; PNG on a smaller set written from the same crops. Figures are
images per second (best of the rounds); compare them within one run.
"""
import time

import pytest

from ffcvx.fields import IntField, RGBImageField
from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.registry import Registry
from ffcvx.transforms import RandomHorizontalFlip
from ffcvx.writer import DatasetWriter

from conftest import PhotoCrops, photos_dir

#: Samples in the PNG file (PNG decodes about 5x slower than JPEG).
PNG_SAMPLES = 256


def _backends(fmt):
    registry = Registry('ffcvx.decoders')
    names = []
    for name in registry.names():
        backend = registry.get(name)
        if fmt in backend.formats and backend.kind != 'batch':
            names.append(name)
    return names


@pytest.fixture(scope='module')
def photos_png(tmp_path_factory):
    root = photos_dir()
    path = tmp_path_factory.mktemp('bench_png') / 'photos_png.beton'
    DatasetWriter(str(path), {'image': RGBImageField(write_mode='png'), 'label': IntField()},
                  num_workers=2, progress=False).from_indexed_dataset(PhotoCrops(root, PNG_SAMPLES))
    return path


def _rate(path, backend, threads, rounds=3):
    loader = Loader(str(path), batch_size=128, num_workers=threads, order=OrderOption.RANDOM, seed=0,
                    backend=backend,
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip()],
                               'label': [IntDecoder()]})
    rates = []
    try:
        for round_number in range(rounds + 1):
            start = time.perf_counter()
            count = sum(images.shape[0] for images, _ in loader)
            if round_number:  # round 0 compiles and warms the page cache
                rates.append(count / (time.perf_counter() - start))
    finally:
        loader.close()
    return max(rates)


@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('backend', _backends('jpeg'))
def test_jpeg_backend(benchmark, photos_beton, backend, threads):
    result = {}
    benchmark.pedantic(lambda: result.setdefault('rate', _rate(photos_beton, backend, threads)),
                       rounds=1, iterations=1)
    benchmark.extra_info['img_per_s'] = round(result['rate'])
    print(f"\nJPEG, {backend}, {threads} thread(s): {result['rate']:,.0f} img/s")


@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('backend', _backends('png'))
def test_png_backend(benchmark, photos_png, backend, threads):
    result = {}
    benchmark.pedantic(lambda: result.setdefault('rate', _rate(photos_png, backend, threads)),
                       rounds=1, iterations=1)
    benchmark.extra_info['img_per_s'] = round(result['rate'])
    print(f"\nPNG, {backend}, {threads} thread(s): {result['rate']:,.0f} img/s")
