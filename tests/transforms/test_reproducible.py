"""Random augmentations follow the Loader's seed, per sample (``ffcvx.pipeline.seeds``).

FFCV issue #392: crops differed between runs with the seed set, because each
thread's generator was drawn from in whatever order the threads took the
samples. Here every draw depends on (seed, epoch, step, sample index) only.
"""
import numpy as np
import pytest

from ffcvx.fields import RGBImageField
from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline import PipelineSpec
from ffcvx.transforms import (Cutout, RandomBrightness, RandomHorizontalFlip, RandomResizedCrop,
                              RandomSaturation, RandomTranslate)

from _common import write_labelled

N, H, W = 40, 24, 32


@pytest.fixture(scope='module')
def originals():
    return np.random.default_rng(8).integers(1, 256, (N, H, W, 3), dtype=np.uint8)


@pytest.fixture(scope='module')
def beton(tmp_path_factory, originals):
    path = tmp_path_factory.mktemp('seeds') / 'raw.beton'
    return write_labelled(path, originals, RGBImageField(write_mode='raw'))


def _augmented():
    decoder = RandomResizedCropRGBImageDecoder((16, 16))
    return {'image': [decoder, RandomHorizontalFlip(), RandomTranslate(2), Cutout(3),
                      RandomBrightness(0.4)],
            'label': [IntDecoder()],
            'view': PipelineSpec(source=decoder, transforms=[RandomResizedCrop((0.3, 1), (0.75, 1.33), 12),
                                                             RandomSaturation(0.5, p=1.0)])}


def _by_sample(path, seed, epochs=1, **kw):
    """Per epoch: {output name: array indexed by sample}."""
    loader = Loader(path, order=OrderOption.RANDOM, seed=seed, drop_last=False, pipelines=_augmented(), **kw)
    names = loader.graph.output_names
    result = []
    for _ in range(epochs):
        out = {name: [None] * N for name in names if name != 'label'}
        for batch in loader:
            batch = dict(zip(names, batch))
            for k, sample in enumerate(batch['label'][:, 0]):
                for name in out:
                    out[name][sample] = batch[name][k].copy()
        result.append({name: np.stack(arrays) for name, arrays in out.items()})
    return result


def test_same_seed_same_batches_whatever_threads_and_batch_size(beton):
    a = _by_sample(beton, seed=11, batch_size=16, num_workers=2)[0]
    b = _by_sample(beton, seed=11, batch_size=7, num_workers=1)[0]
    for name in a:
        assert np.array_equal(a[name], b[name]), name


def test_epochs_and_seeds_draw_differently(beton):
    first, second = _by_sample(beton, seed=11, epochs=2, batch_size=16, num_workers=2)
    other = _by_sample(beton, seed=12, batch_size=16, num_workers=2)[0]
    for name in first:
        same_epoch = sum(np.array_equal(x, y) for x, y in zip(first[name], second[name]))
        same_seed = sum(np.array_equal(x, y) for x, y in zip(first[name], other[name]))
        assert same_epoch < N // 4 and same_seed < N // 4, (name, same_epoch, same_seed)


def test_two_random_steps_of_one_kind_draw_independently(beton, originals):
    # Were their draws alike, two flips with p=0.5 would always cancel out.
    loader = Loader(beton, batch_size=N, seed=5, pipelines={
        'image': [SimpleRGBImageDecoder(), RandomHorizontalFlip(), RandomHorizontalFlip()],
        'label': [IntDecoder()]})
    (images, labels), = list(loader)
    mirrored = sum(np.array_equal(image, originals[label][:, ::-1])
                   for image, label in zip(images, labels[:, 0]))
    assert N // 5 < mirrored < 4 * N // 5
