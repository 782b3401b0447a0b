"""PNG samples written by FFCV's "erow" fork: R/B-swapped on disk, read with png_channel_order='bgr' (FMT-086)."""
import numpy as np
import pytest

from ffcvx.fields import GrayscaleImageField, RGBImageField
from ffcvx.fields.decoders import (CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder,
                                   SimpleRGBImageDecoder)
from ffcvx.loader import Loader
from ffcvx.writer import DatasetWriter


class _Erow:
    """Each sample: the PNG field gets the image with R and B swapped, as erow's
    ``cv2.imencode('.png', rgb)`` stored it (OpenCV takes its input as BGR);
    the raw and JPEG fields get the true image."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image = self.images[index]
        return np.ascontiguousarray(image[..., ::-1]), image, image


@pytest.fixture(scope='module')
def erow_file(tmp_path_factory):
    rng = np.random.default_rng(5)
    # R, G and B differ everywhere, so a missed or extra swap shows.
    images = [np.stack([np.full((12, 16), 10 + i, np.uint8),
                        rng.integers(0, 256, (12, 16), dtype=np.uint8),
                        np.full((12, 16), 200 - i, np.uint8)], axis=2) for i in range(13)]
    path = str(tmp_path_factory.mktemp('erow') / 'erow.beton')
    DatasetWriter(path, {'png': RGBImageField(write_mode='png'), 'raw': RGBImageField(),
                         'jpg': RGBImageField(write_mode='jpg', jpeg_quality=95)},
                  num_workers=1, progress=False).from_indexed_dataset(_Erow(images))
    return path, np.stack(images)


def _load(path, decoders):
    loader = Loader(path, batch_size=5, num_workers=2, drop_last=False,
                    pipelines={name: (d if d is None else [d]) for name, d in decoders.items()})
    out = [[b.copy() for b in batch] for batch in loader]
    return [np.concatenate(parts) for parts in zip(*out)]


def test_swap_only_with_the_option(erow_file):
    path, images = erow_file
    plain, = _load(path, {'png': SimpleRGBImageDecoder(), 'raw': None, 'jpg': None})
    assert np.array_equal(plain, images[..., ::-1])          # a standard decoder gets BGR
    fixed, raw, jpg = _load(path, {'png': SimpleRGBImageDecoder(png_channel_order='bgr'),
                                   'raw': SimpleRGBImageDecoder(png_channel_order='bgr'),
                                   'jpg': SimpleRGBImageDecoder(png_channel_order='bgr')})
    assert np.array_equal(fixed, images)
    assert np.array_equal(raw, images)                       # raw samples are not touched
    # JPEG samples are not swapped either: mean R stays near 10+i, mean B near 200-i
    # (4:2:0 chroma blurs the random G into R and B, so compare means)
    assert np.abs(jpg[..., 0].mean(axis=(1, 2)) - images[:, 0, 0, 0]).max() < 30
    assert np.abs(jpg[..., 2].mean(axis=(1, 2)) - images[:, 0, 0, 2]).max() < 30


@pytest.mark.parametrize('make', [
    lambda order: CenterCropRGBImageDecoder((8, 8), ratio=1.0, png_channel_order=order),
    lambda order: RandomResizedCropRGBImageDecoder((6, 9), png_channel_order=order),
])
def test_crop_decoders(erow_file, make):
    path, images = erow_file
    fixed, = _load(path, {'png': make('bgr'), 'raw': None, 'jpg': None})
    plain, = _load(path, {'png': make('rgb'), 'raw': None, 'jpg': None})
    # channels R and B are constant per image: their exact values tell the order
    assert np.array_equal(fixed[..., 0], np.broadcast_to(images[:, :1, :1, 0], fixed.shape[:3]))
    assert np.array_equal(fixed[..., 2], np.broadcast_to(images[:, :1, :1, 2], fixed.shape[:3]))
    # without the option R and B come out swapped (the crops differ between
    # the two loaders, but R and B are constant per image)
    assert np.array_equal(plain[..., 0], fixed[..., 2])
    assert np.array_equal(plain[..., 2], fixed[..., 0])


def test_gray_is_unaffected(tmp_path):
    """A gray PNG has no channel order: 'bgr' changes nothing."""
    path = str(tmp_path / 'g.beton')
    images = [np.arange(20, dtype=np.uint8).reshape(4, 5) + i for i in range(3)]
    DatasetWriter(path, {'image': GrayscaleImageField(write_mode='png')}, num_workers=1,
                  progress=False).from_indexed_dataset(_Single(images))
    loader = Loader(path, batch_size=3, custom_fields={'image': GrayscaleImageField},
                    pipelines={'image': [SimpleRGBImageDecoder(channels=3, png_channel_order='bgr')]})
    (got,), = list(loader)
    assert np.array_equal(got, np.repeat(np.stack(images)[..., None], 3, axis=3))


def test_bad_order_refused():
    with pytest.raises(ValueError, match='png_channel_order'):
        SimpleRGBImageDecoder(png_channel_order='grb')


class _Single:
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return (self.items[index],)
