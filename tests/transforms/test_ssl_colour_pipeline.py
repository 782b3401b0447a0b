"""FFCV-SSL's colour augmentations end to end: RRC decode, jitter, grayscale, solarize, to torch.

Same seeds: the same per-sample images whatever ``num_workers`` or
``batch_size``; a new epoch draws anew.
"""
import numpy as np
import pytest
import torch

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import (RandomColorJitter, RandomGrayscale, RandomSolarization, ToTensor,
                              ToTorchImage)

from colour_photos import photo_beton


@pytest.fixture(scope='module')
def beton(tmp_path_factory, shared_dir):
    return photo_beton(tmp_path_factory.mktemp('sslcolour') / 'photos.beton', shared_dir)


def _run(path, epochs, **kw):
    pipeline = [RandomResizedCropRGBImageDecoder((32, 32)),
                RandomColorJitter(0.8, 0.4, 0.4, 0.2, 0.1, seed=11),
                RandomGrayscale(0.2, seed=12), RandomSolarization(0.2, seed=13),
                ToTensor(), ToTorchImage()]
    loader = Loader(path, order=OrderOption.RANDOM, seed=5, drop_last=False,
                    pipelines={'image': pipeline, 'label': [IntDecoder()]}, **kw)
    result = []
    for _ in range(epochs):
        images = {}
        for image, label in loader:
            assert isinstance(image, torch.Tensor) and image.dtype == torch.uint8
            assert image.shape[1:] == (3, 32, 32) and image.shape[0] == len(label)
            for k in range(len(label)):
                images[int(label[k, 0])] = image[k].numpy().copy()
        result.append(images)
    return result


def test_same_seed_same_views_any_threads_and_batch_size_new_epoch_new_views(beton):
    path, n = beton
    a = _run(path, 2, batch_size=3, num_workers=1)
    b = _run(path, 1, batch_size=7, num_workers=2)[0]
    assert len(a[0]) == n and sorted(b) == list(range(n))
    assert all(np.array_equal(a[0][i], b[i]) for i in range(n))
    changed = sum(not np.array_equal(a[0][i], a[1][i]) for i in range(n))
    assert changed == n
