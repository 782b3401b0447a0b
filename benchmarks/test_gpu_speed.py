"""Batch (GPU) decoder backends against the CPU path, end to end on the device.

Run: pytest benchmarks/test_gpu_speed.py --benchmark-only -s

Every case loads the photos .beton (JPEG q90, 2,048 samples) through
RandomResizedCrop 224 + flip, ToTensor, ToDevice('cuda'), ToTorchImage, batch
256, so each figure is images per second delivered as NCHW uint8 tensors on
the GPU: the batch backends decode on the GPU, the CPU backends decode on
every core the machine has and copy the batch over. Cases skip, with the
backend's own reason, where no CUDA device is present (CI, most machines).
"""
import os
import time

import pytest
import torch

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.registry import Registry
from ffcvx.transforms import RandomHorizontalFlip, ToDevice, ToTensor, ToTorchImage

BATCH = 256

# Checked before the session's photo file is written, which takes a while.
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='no CUDA device: torch.cuda.is_available() is False')


def _jpeg_backends(kind_is_batch):
    registry = Registry('ffcvx.decoders')
    return [name for name in registry.names()
            if 'jpeg' in registry.get(name).formats and (registry.get(name).kind == 'batch') == kind_is_batch]


def _rate(path, backend, threads, rounds=3):
    loader = Loader(str(path), batch_size=BATCH, num_workers=threads, order=OrderOption.RANDOM, seed=0,
                    backend=backend,
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip(),
                                         ToTensor(), ToDevice('cuda'), ToTorchImage()],
                               'label': [IntDecoder(), ToTensor(), ToDevice('cuda')]})
    rates = []
    try:
        for round_number in range(rounds + 1):
            start = time.perf_counter()
            count = 0
            for images, _ in loader:
                assert images.device.type == 'cuda' and tuple(images.shape[1:]) == (3, 224, 224)
                count += images.shape[0]
            torch.cuda.synchronize()
            if round_number:  # round 0 compiles, warms the page cache and CUDA
                rates.append(count / (time.perf_counter() - start))
    finally:
        loader.close()
    return max(rates)


def _need_available(backend_name):
    ok, why = Registry('ffcvx.decoders').get(backend_name).available()
    if not ok:
        pytest.skip(f'{backend_name} unavailable: {why}')


@pytest.mark.parametrize('backend', _jpeg_backends(kind_is_batch=True))
def test_batch_backend_to_gpu(benchmark, photos_beton, backend):
    _need_available(backend)
    result = {}
    benchmark.pedantic(lambda: result.setdefault('rate', _rate(photos_beton, backend, 1)),
                       rounds=1, iterations=1)
    benchmark.extra_info['img_per_s'] = round(result['rate'])
    print(f"\nGPU {backend}, RRC 224 + flip to cuda: {result['rate']:,.0f} img/s")


@pytest.mark.parametrize('backend', _jpeg_backends(kind_is_batch=False))
def test_cpu_backend_to_gpu(benchmark, photos_beton, backend):
    _need_available(backend)
    threads = os.cpu_count()
    result = {}
    benchmark.pedantic(lambda: result.setdefault('rate', _rate(photos_beton, backend, threads)),
                       rounds=1, iterations=1)
    benchmark.extra_info['img_per_s'] = round(result['rate'])
    print(f"\nCPU {backend} on {threads} threads, RRC 224 + flip to cuda: {result['rate']:,.0f} img/s")
