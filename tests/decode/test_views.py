"""Several views of one image field share one decode per sample (``ffcvx.decoders.views``).

FFCV-SSL decodes each JPEG once per view (``custom_field_mapper``); ffcvx
draws every view's crop as that view's own decoder would, decodes the union
of the boxes once, and resizes each view out of it.
"""
import glob
import io
import threading

import numpy as np
import pytest
from PIL import Image

from ffcvx.backend_api import PythonDecoderBackend
from ffcvx.decoders.views import ViewsDecoder
from ffcvx.fields import IntField, RGBImageField
from ffcvx.fields.decoders import (CenterCropRGBImageDecoder, IntDecoder,
                                   RandomResizedCropRGBImageDecoder)
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline import PipelineSpec
from ffcvx.pipeline.graph import ViewBranch
from ffcvx.reader import Reader
from ffcvx.registry import Registry
from ffcvx.transforms import RandomGrayscale, RandomHorizontalFlip
from ffcvx.writer import DatasetWriter

N = 12


class CountingPillow(PythonDecoderBackend):
    """Pillow JPEG decode that crops (no scaling) and counts its calls."""

    name = 'counting'
    formats = frozenset({'jpeg'})
    supports_crop = True

    def __init__(self):
        super().__init__()
        self.calls = 0
        self._lock = threading.Lock()

    def decode(self, data, crop, target):
        with self._lock:
            self.calls += 1
        image = np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))
        y, x, h, w = crop
        return image[y:y + h, x:x + w]


def _write(path, shared_dir, mode, images=None):
    if images is None:
        photos = sorted(glob.glob(str(shared_dir / 'data' / 'photos' / '*' / '*.jpg')))[:N]
        assert len(photos) == N, "need 12 photos in ../shared/data/photos"
        images = []
        for k, photo in enumerate(photos):
            image = Image.open(photo).convert('RGB')
            image.thumbnail((72 + 6 * k, 72 + 6 * k))      # sizes differ
            images.append(np.asarray(image))
    DatasetWriter(str(path), {'image': RGBImageField(write_mode=mode), 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(
                      [(image, k) for k, image in enumerate(images)])
    return str(path)


@pytest.fixture(scope='module')
def betons(tmp_path_factory, shared_dir):
    root = tmp_path_factory.mktemp('views')
    jpg = _write(root / 'jpg.beton', shared_dir, 'jpg')
    # The same pixels as the JPEGs decode to, stored raw: crops without JPEG noise.
    reader = Reader(jpg)
    decoded = [np.asarray(Image.open(io.BytesIO(bytes(reader.read_sample_region(k, 'image'))))
                          .convert('RGB')) for k in range(N)]
    raw = _write(root / 'raw.beton', shared_dir, 'raw', decoded)
    return {'jpg': jpg, 'raw': raw}


def _pipelines(views=('image', 'image2')):
    all_views = {'image': [RandomResizedCropRGBImageDecoder((32, 32)), RandomHorizontalFlip()],
                 # an unseeded step after the view's decoder: its draws must not be the crop's
                 'image2': [RandomResizedCropRGBImageDecoder((24, 40), scale=(0.3, 1.0)),
                            RandomGrayscale(0.5)],
                 'image3': [CenterCropRGBImageDecoder((16, 16), 0.5)]}
    pipes = {name: all_views[name] for name in views}
    pipes.setdefault('image', None)
    pipes['label'] = [IntDecoder()]
    return pipes


def _run(path, views=('image', 'image2'), **kw):
    """{output name: ndarray, samples in order} for one epoch."""
    mapper = {name: 'image' for name in views if name != 'image'}
    kw.setdefault('num_workers', 1)
    loader = Loader(path, batch_size=5, order=OrderOption.SEQUENTIAL, seed=3, drop_last=False,
                    pipelines=_pipelines(views), custom_field_mapper=mapper or None, **kw)
    names = loader.graph.output_names
    batches = list(loader)
    return loader, {name: np.concatenate([b[k] for b in batches]).astype(int)
                    for k, name in enumerate(names)}


def test_views_of_one_field_share_one_decode_step(betons):
    loader, out = _run(betons['jpg'], ('image', 'image2', 'image3'))
    first, label, second, third = loader.graph.pipelines
    assert isinstance(first.steps[0].operation, ViewsDecoder)
    assert isinstance(second, ViewBranch) and isinstance(third, ViewBranch)
    assert out['image'].shape == (N, 32, 32, 3) and out['image2'].shape == (N, 24, 40, 3)
    assert out['image3'].shape == (N, 16, 16, 3)
    # FFCV's Loader.pipelines still lists each view's own decoder first
    assert isinstance(loader.pipelines['image2'].operations[0], RandomResizedCropRGBImageDecoder)
    assert isinstance(loader.pipelines['image'].operations[1], RandomHorizontalFlip)


def test_each_jpeg_is_decoded_once_per_sample(betons):
    backend = CountingPillow()
    registry = Registry('ffcvx.decoders', extra={'counting': backend})
    _run(betons['jpg'], ('image', 'image2', 'image3'), decoder_registry=registry, backend='counting')
    assert backend.calls == N                      # three views, one decode each sample
    backend.calls = 0
    _run(betons['jpg'], ('image2',), decoder_registry=registry, backend='counting')
    assert backend.calls == N


def test_raw_views_equal_each_views_own_decode_exactly(betons):
    _, shared = _run(betons['raw'], ('image', 'image2', 'image3'), num_workers=2)
    for view in ('image', 'image2', 'image3'):
        _, alone = _run(betons['raw'], (view,))
        assert np.array_equal(shared[view], alone[view]), view


def test_jpeg_views_are_as_close_to_the_pixels_as_their_own_decodes(betons):
    """The shared region is decoded at the finest DCT scale any view needs: never coarser."""
    _, reference = _run(betons['raw'], ('image', 'image2'))
    _, shared = _run(betons['jpg'], ('image', 'image2'))
    for view in ('image', 'image2'):
        _, alone = _run(betons['jpg'], (view,))
        shared_error = np.abs(shared[view] - reference[view]).mean()
        alone_error = np.abs(alone[view] - reference[view]).mean()
        assert shared_error <= alone_error * 1.05 + 0.05, (view, shared_error, alone_error)
        assert shared_error < 8


def test_a_view_resized_between_epochs_takes_effect(betons):
    pipes = _pipelines(('image', 'image2'))
    second = pipes['image2'][0]
    loader = Loader(betons['jpg'], batch_size=4, order=OrderOption.RANDOM, seed=1,
                    pipelines=pipes, custom_field_mapper={'image2': 'image'})
    assert all(b[2].shape[1:] == (24, 40, 3) for b in loader)
    second.output_size = (20, 20)
    assert all(b[2].shape[1:] == (20, 20, 3) and b[0].shape[1:] == (32, 32, 3) for b in loader)


def test_threads_and_batch_size_do_not_change_the_views(betons):
    _, one = _run(betons['jpg'], ('image', 'image2'))
    loader = Loader(betons['jpg'], batch_size=7, num_workers=2, order=OrderOption.RANDOM, seed=3,
                    drop_last=False, pipelines=_pipelines(('image', 'image2')),
                    custom_field_mapper={'image2': 'image'})
    got = {'image': np.zeros_like(one['image']), 'image2': np.zeros_like(one['image2'])}
    for image, label, image2 in loader:
        got['image'][label[:, 0]] = image
        got['image2'][label[:, 0]] = image2
    assert np.array_equal(got['image'], one['image']) and np.array_equal(got['image2'], one['image2'])


def test_a_decoder_that_a_branch_starts_from_keeps_its_own_decode(betons):
    decoder = RandomResizedCropRGBImageDecoder((32, 32))
    loader = Loader(betons['jpg'], batch_size=4, pipelines={
        'image': [decoder], 'label': [IntDecoder()],
        'image2': PipelineSpec('image', RandomResizedCropRGBImageDecoder((16, 16))),
        'copy': PipelineSpec(decoder, transforms=[RandomHorizontalFlip()])})
    assert not any(isinstance(s.operation, ViewsDecoder) for p in loader.graph.pipelines
                   for s in p.steps)
    assert [b[3].shape[1:] for b in loader][0] == (32, 32, 3)


def test_a_view_with_a_step_that_a_branch_starts_from_keeps_its_own_pipeline(betons):
    flip = RandomHorizontalFlip()
    loader = Loader(betons['jpg'], batch_size=4, pipelines={
        'image': [RandomResizedCropRGBImageDecoder((32, 32)), flip], 'label': [IntDecoder()],
        'image2': PipelineSpec('image', RandomResizedCropRGBImageDecoder((16, 16))),
        'copy': PipelineSpec(flip, transforms=[])})
    assert not any(isinstance(s.operation, ViewsDecoder) for p in loader.graph.pipelines
                   for s in p.steps)
    image, _, _, copy = next(iter(loader))
    assert np.array_equal(image, copy)
