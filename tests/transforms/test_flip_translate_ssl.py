"""FFCV-SSL's seeded RandomHorizontalFlip / RandomTranslate and their label ops.

- A flip equals torchvision's ``horizontal_flip`` exactly; a translation
  equals ``F.affine`` with an integer translation, nearest, and the fill
  exactly (tolerance 0 on uint8 for both), on a real photo.
- A seeded flip flips about ``flip_prob`` of the samples (FFCV-SSL's
  seeded flip always flipped); offsets are uniform on ``0 .. 2 * padding``.
- ``LabelRandomHorizontalFlip`` / ``LabelTranslate`` with the image op's
  seed report exactly what it did (re-applied to the same crop, the image
  comes out bit-identical), also right after a crop decoder, which does
  not absorb a seeded flip; same seed: same outputs for 1 or 2 threads and
  batch sizes 3 or 7, compiled or not; a new epoch draws anew.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as F

from ffcvx.fields import RGBImageField
from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline import PipelineSpec
from ffcvx.pipeline.state import State
from ffcvx.transforms import (LabelRandomHorizontalFlip, LabelTranslate, RandomHorizontalFlip,
                              RandomTranslate, ToTensor)
from ffcvx.transforms.flip import mirror_in_place
from ffcvx.transforms.translate import shift_in_place

from _common import write_labelled

N_PHOTOS = 16
CROP = 32
PAD = 4


def _photo_paths(shared_dir):
    return sorted((Path(shared_dir) / 'data' / 'photos').rglob('*.jpg'))


def _photo(path, size):
    """A real photo as ``ndarray[uint8] (H, W, 3)``, resized to ``size = (W, H)``."""
    with Image.open(path) as image:
        return np.asarray(image.convert('RGB').resize(size, Image.BILINEAR)).copy()


def _chw(image):
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()


def _hwc(tensor):
    return tensor.permute(1, 2, 0).numpy()


@pytest.fixture(scope='module')
def photo(shared_dir):
    return _photo(_photo_paths(shared_dir)[0], (128, 96))


@pytest.fixture(scope='module')
def beton(tmp_path_factory, shared_dir):
    images = [_photo(p, (80, 64)) for p in _photo_paths(shared_dir)[:N_PHOTOS]]
    assert len(images) == N_PHOTOS
    path = tmp_path_factory.mktemp('fliptrans') / 'photos.beton'
    return write_labelled(path, images, RGBImageField(write_mode='jpg'))


# --- kernels against torchvision, explicit parameters --------------------------------------------

def test_flip_kernel_equals_torchvision_exactly(photo):
    mirrored = photo.copy()
    mirror_in_place(mirrored)
    expected = _hwc(F.horizontal_flip(_chw(photo)))
    assert np.abs(mirrored.astype(int) - expected).max() == 0
    assert not np.array_equal(mirrored, photo)


@pytest.mark.parametrize('dy, dx', [(0, 0), (3, -5), (-7, 2), (11, 11), (-4, -9), (0, 6), (96, 0)])
def test_translate_kernel_equals_torchvision_affine_exactly(photo, dy, dx):
    fill = [17, 128, 240]
    shifted = photo.copy()
    shift_in_place(shifted, dy, dx, np.array(fill, dtype=np.uint8))
    # Output pixel (r, c) = input (r + dy, c + dx): torchvision's translation is (-dx, -dy).
    expected = _hwc(F.affine(_chw(photo), angle=0.0, translate=[-dx, -dy], scale=1.0, shear=[0.0, 0.0],
                             interpolation=InterpolationMode.NEAREST, fill=fill))
    assert np.abs(shifted.astype(int) - expected).max() == 0


# --- the draws -----------------------------------------------------------------------------------

def _run(op, data, indices, seed, out=None):
    """Run ``op``'s code as plain Python (its draws and kernels are jitted)."""
    code = op.generate_code()
    return code(data, out, indices, np.uint64(seed))


@pytest.mark.parametrize('flip_prob', [0.0, 0.3, 0.5, 1.0])
def test_seeded_flip_flips_about_flip_prob(flip_prob):
    n = 4000
    images = np.zeros((n, 1, 2, 1), dtype=np.uint8)
    images[:, 0, 1, 0] = 1
    _run(RandomHorizontalFlip(flip_prob, seed=4), images, np.arange(n, dtype=np.uint64), 12345)
    flipped = images[:, 0, 0, 0] == 1
    bound = 5 * np.sqrt(flip_prob * (1 - flip_prob) / n)   # 5 sigma of the binomial fraction
    assert abs(flipped.mean() - flip_prob) <= bound
    labels = _run(LabelRandomHorizontalFlip(flip_prob, seed=4), np.zeros((n, 1), dtype=np.int64),
                  np.arange(n, dtype=np.uint64), 12345, np.zeros((n, 2), dtype=np.float32))
    assert np.array_equal(labels[:, 1], flipped.astype(np.float32))


def test_translate_offsets_are_uniform_and_independent():
    n, pad = 7000, 3
    labels = _run(LabelTranslate(pad, seed=6), np.zeros((n, 1), dtype=np.int64),
                  np.arange(n, dtype=np.uint64), 99, np.zeros((n, 3), dtype=np.float32))
    side = 2 * pad + 1
    for column in (labels[:, 1], labels[:, 2]):
        counts = np.bincount(column.astype(int), minlength=side)
        assert len(counts) == side
        p = 1 / side
        assert np.all(np.abs(counts / n - p) <= 5 * np.sqrt(p * (1 - p) / n))
    assert abs(np.corrcoef(labels[:, 1], labels[:, 2])[0, 1]) < 5 / np.sqrt(n)


# --- arguments -----------------------------------------------------------------------------------

@pytest.mark.parametrize('make, match', [
    (lambda: RandomHorizontalFlip(1.5), 'RandomHorizontalFlip: flip_prob'),
    (lambda: RandomHorizontalFlip(0.5, seed=-1), 'RandomHorizontalFlip: seed'),
    (lambda: LabelRandomHorizontalFlip(0.5, seed=2.5), 'LabelRandomHorizontalFlip: seed'),
    (lambda: RandomTranslate(4, seed='a'), 'RandomTranslate: seed'),
    (lambda: LabelTranslate(-1), 'LabelTranslate: padding'),
    (lambda: LabelTranslate(2, fill='x'), 'LabelTranslate: fill'),
])
def test_bad_arguments_are_refused_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_label_ops_need_label_rows():
    images = State(True, torch.device('cpu'), (8, 8, 3), np.dtype(np.uint8))
    for op in (LabelRandomHorizontalFlip(seed=1), LabelTranslate(2, seed=1)):
        with pytest.raises(ValueError, match='appends columns to labels'):
            op.declare_state_and_memory(images)
    labels = State(True, torch.device('cpu'), (1,), np.dtype(np.int64))
    state, query = LabelTranslate(2).declare_state_and_memory(labels)
    assert state.shape == (3,) and state.dtype == np.float32 and query.shape == (3,)


def test_crop_decoder_absorbs_only_unseeded_flips():
    assert not RandomResizedCropRGBImageDecoder((8, 8)).absorb(RandomHorizontalFlip(0.5, seed=4))
    decoder = RandomResizedCropRGBImageDecoder((8, 8))
    flip = RandomHorizontalFlip(0.5)
    assert decoder.absorb(flip) and decoder.absorbed == [flip]
    assert decoder.flip_prob == 0.5
    flip.seed = 4            # after fusion: the decoder cannot draw this flip's way
    with pytest.raises(ValueError, match='was fused into RandomResizedCropRGBImageDecoder .* '
                                         'give it its seed before building the Loader'):
        decoder.flip_prob


# --- Loader end to end ---------------------------------------------------------------------------

def _pipelines(augment=True):
    decoder = RandomResizedCropRGBImageDecoder((CROP, CROP))
    image = [decoder, RandomHorizontalFlip(0.5, seed=4), RandomTranslate(PAD, seed=6)] if augment \
        else [decoder]
    return {'image': image + [ToTensor()],
            'label': [IntDecoder(), ToTensor()],
            'flip': PipelineSpec('label', IntDecoder(), [LabelRandomHorizontalFlip(0.5, seed=4), ToTensor()]),
            'shift': PipelineSpec('label', IntDecoder(), [LabelTranslate(PAD, seed=6), ToTensor()])}


def _by_sample(path, epochs=1, augment=True, **kw):
    """Per epoch: {output: ndarray indexed by sample} (the label column dropped from label ops)."""
    loader = Loader(path, order=OrderOption.RANDOM, seed=3, drop_last=False, pipelines=_pipelines(augment),
                    **kw)
    names = loader.graph.output_names
    result = []
    for _ in range(epochs):
        out = {name: [None] * N_PHOTOS for name in names}
        for batch in loader:
            batch = {name: value.numpy() for name, value in zip(names, batch)}
            for k, sample in enumerate(batch['label'][:, 0]):
                for name in out:
                    out[name][sample] = batch[name][k].copy()
        result.append({name: np.stack(values) for name, values in out.items()})
    return result


def test_labels_reproduce_the_image_ops_exactly(beton):
    (got,) = _by_sample(beton, batch_size=5)
    (plain,) = _by_sample(beton, augment=False, batch_size=5)    # the same crops, not flipped or shifted
    flips, shifts = got['flip'][:, 1:], got['shift'][:, 1:]
    assert got['flip'].dtype == np.float32 and flips.shape == (N_PHOTOS, 1)
    assert got['shift'].dtype == np.float32 and shifts.shape == (N_PHOTOS, 2)
    assert np.array_equal(got['flip'][:, 0], np.arange(N_PHOTOS))          # the label comes first
    assert 0 < flips.sum() < N_PHOTOS and set(np.unique(flips)) <= {0.0, 1.0}
    assert shifts.min() >= 0 and shifts.max() <= 2 * PAD and len(np.unique(shifts)) > 1
    for k in range(N_PHOTOS):
        crop = plain['image'][k]
        if flips[k, 0]:
            crop = crop[:, ::-1]
        y, x = shifts[k].astype(int)
        padded = np.pad(crop, ((PAD, PAD), (PAD, PAD), (0, 0)))   # fill (0, 0, 0): FFCV 1.0's default
        assert np.array_equal(got['image'][k], padded[y:y + CROP, x:x + CROP]), k


def test_same_seed_same_outputs_whatever_threads_and_batch_size_new_epoch_new_draws(beton):
    a = _by_sample(beton, epochs=2, batch_size=3, num_workers=1)
    b = _by_sample(beton, epochs=2, batch_size=7, num_workers=2)
    for epoch in range(2):
        for name in a[epoch]:
            assert np.array_equal(a[epoch][name], b[epoch][name]), (epoch, name)
    assert not np.array_equal(a[0]['flip'], a[1]['flip'])
    assert not np.array_equal(a[0]['shift'], a[1]['shift'])
    assert not np.array_equal(a[0]['image'], a[1]['image'])


def test_label_ops_draw_alike_compiled_or_not(beton):
    def labels(jit):
        pipelines = _pipelines()
        pipelines['image'] = None
        loader = Loader(beton, batch_size=6, order=OrderOption.RANDOM, seed=3, drop_last=False, jit=jit,
                        pipelines=pipelines)
        names = loader.graph.output_names
        return [np.concatenate([b[names.index(n)].numpy() for b in loader]) for n in ('flip', 'shift')]
    for compiled, plain in zip(labels(True), labels(False)):
        assert np.array_equal(compiled, plain)
