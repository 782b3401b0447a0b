"""Loader throughput on real photos: RandomResizedCrop 224 + flip, 1 and all threads.

Usage: python examples/photos_throughput.py PHOTOS.beton

The file from ``ffcvx convert imagefolder`` holds only a few dozen photos, so
each epoch visits every photo many times (``indices``) to reach a steady state.
"""
import sys
import time

import numpy as np

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import RandomHorizontalFlip


def rate(loader):
    start = time.perf_counter()
    count = sum(images.shape[0] for images, _ in loader)
    return count / (time.perf_counter() - start)


def main(path):
    for threads in (1, -1):
        probe = Loader(path, batch_size=1, pipelines={'image': None})
        indices = np.tile(np.arange(probe.reader.num_samples), max(1, 2048 // probe.reader.num_samples))
        loader = Loader(path, batch_size=128, num_workers=threads, order=OrderOption.RANDOM, seed=0,
                        indices=indices, pipelines={
                            'image': [RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip()],
                            'label': [IntDecoder()]})
        rate(loader)  # compiles, warms the page cache
        best = max(rate(loader) for _ in range(2))
        print(f"photos, RandomResizedCrop 224 + flip, {loader.num_workers} thread(s): {best:,.0f} img/s")
        loader.close()


if __name__ == '__main__':
    main(sys.argv[1])
