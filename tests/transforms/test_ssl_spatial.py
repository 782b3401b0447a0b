"""FFCV-SSL's GaussianBlur / LabelGaussianBlur, RandomErasing and Rotate against torchvision.

Each kernel is called with explicit parameters and compared with
``torchvision.transforms.v2.functional`` on real photos (shrunk to 128x96);
each sampler is compared with the documented distribution (or with
torchvision's own sampler); a Loader runs all three after a crop decoder.
"""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from numba import njit
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from ffcvx.fields import RGBImageField
from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline import PipelineSpec
from ffcvx.pipeline.seeds import seed_sample
from ffcvx.pipeline.state import State
from ffcvx.transforms import GaussianBlur, LabelGaussianBlur, RandomErasing, Rotate, ToTensor
from ffcvx.transforms.erasing import erase_box, fill_box
from ffcvx.transforms.gaussian_blur import blur_image, draw_sigma
from ffcvx.transforms.rotate import draw_angle, rotate_image

from _common import write_labelled

DRAWS = 20000


@pytest.fixture(scope='module')
def photos(shared_dir):
    """Eight real photos as ndarray[uint8] (96, 128, 3)."""
    paths = sorted((Path(shared_dir) / 'data' / 'photos').glob('*/*.jpg'))[::4][:8]
    assert len(paths) == 8
    return [np.asarray(Image.open(p).convert('RGB').resize((128, 96), Image.BILINEAR)).copy()
            for p in paths]


def _chw(image):
    return torch.from_numpy(image.copy()).permute(2, 0, 1)


def _hwc(tensor):
    return tensor.permute(1, 2, 0).numpy()


def _blurred(image, size_x, size_y, sigma):
    out = image.copy()
    blur_image(out, size_x, size_y, sigma, np.empty(out.size + out.shape[1] * 3 + size_x + size_y, np.float64))
    return out


def _state(shape):
    return State(jit_mode=True, device=torch.device('cpu'), shape=shape, dtype=np.dtype(np.uint8))


# ---- GaussianBlur ---------------------------------------------------------------------------

@pytest.mark.parametrize('size', [3, 5, 23, (5, 3)])
def test_blur_within_one_level_of_torchvision(photos, size):
    size_x, size_y = size if isinstance(size, tuple) else (size, size)
    worst, differing = 0, 0
    for image in photos:
        for sigma in (0.1, 0.6, 1.3, 2.0, 4.5):
            ours = _blurred(image, size_x, size_y, sigma)
            ref = _hwc(F.gaussian_blur(_chw(image), [size_x, size_y], [sigma, sigma]))
            diff = np.abs(ours.astype(int) - ref)
            worst = max(worst, int(diff.max()))
            differing += int(np.count_nonzero(diff))
    assert worst <= 1
    assert differing <= 1e-3 * len(photos) * 5 * photos[0].size   # only ties at .5
    assert not np.array_equal(_blurred(photos[0], size_x, size_y, 2.0), photos[0])


@njit
def _sigmas(seed, n, p, lo, hi):
    out = np.empty(n)
    for k in range(n):
        seed_sample(seed, k)
        out[k] = draw_sigma(p, lo, hi)
    return out


def test_blur_sigma_is_uniform_and_applied_with_blur_prob():
    sigmas = _sigmas(np.uint64(5), DRAWS, 0.3, 0.1, 2.0)
    applied = sigmas[sigmas > 0]
    assert abs(applied.size / DRAWS - 0.3) < 0.015
    assert applied.min() >= np.float32(0.1) and applied.max() <= np.float32(2.0)
    # U(0.1, 2.0): every decile holds a tenth (FFCV-SSL's 10 fixed values would not pass)
    counts = np.histogram(applied, bins=10, range=(0.1, 2.0))[0]
    assert np.all(np.abs(counts / applied.size - 0.1) < 0.02)
    assert len(np.unique(applied)) > applied.size * 0.99
    assert np.all(np.float32(applied) == applied)                 # float32-exact, as the label


@pytest.mark.parametrize('kwargs', [dict(blur_prob=1.5), dict(blur_prob=0.5, kernel_size=4),
                                    dict(blur_prob=0.5, kernel_size=(3, 3, 3)),
                                    dict(blur_prob=0.5, sigma=(2.0, 1.0)),
                                    dict(blur_prob=0.5, sigma=0.0)])
@pytest.mark.parametrize('cls', [GaussianBlur, LabelGaussianBlur])
def test_blur_rejects_bad_arguments(cls, kwargs):
    with pytest.raises(ValueError, match=cls.__name__):
        cls(**kwargs)


def test_blur_rejects_images_smaller_than_its_reflection():
    with pytest.raises(ValueError, match='GaussianBlur: kernel_size'):
        GaussianBlur(0.5, kernel_size=23).declare_shared_memory(_state((10, 40, 3)))
    GaussianBlur(0.5, kernel_size=23).declare_shared_memory(_state((12, 12, 3)))


# ---- RandomErasing --------------------------------------------------------------------------

@pytest.mark.parametrize('box, value', [((0, 0, 5, 7), (128, 128, 128)), ((10, 20, 40, 60), (0, 255, 7)),
                                        ((50, 100, 46, 28), (127.7, 3.2, 254.99))])
def test_erase_kernel_equals_torchvision(photos, box, value):
    op = RandomErasing(mean=value)
    op.declare_state_and_memory(_state((96, 128, 3)))
    for image in photos[:3]:
        ours = image.copy()
        fill_box(ours, *box, op._value)
        ref = _hwc(F.erase(_chw(image), *box, torch.tensor(value)[:, None, None]))
        assert np.array_equal(ours, ref)


@njit
def _boxes(seed, n, p, height, width, scale_lo, scale_hi, log_lo, log_hi):
    out = np.empty((n, 4), np.float64)
    for k in range(n):
        seed_sample(seed, k)
        i, j, h, w = erase_box(p, height, width, scale_lo, scale_hi, log_lo, log_hi)
        out[k, 0], out[k, 1], out[k, 2], out[k, 3] = i, j, h, w
    return out


def _torchvision_boxes(n, height, width, scale, ratio):
    torch.manual_seed(0)
    erasing = v2.RandomErasing(p=1.0, scale=scale, ratio=ratio, value=0)
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    boxes = []
    for _ in range(n):
        params = erasing.make_params([image])
        boxes.append((params['i'], params['j'], params['h'], params['w']) if params['v'] is not None
                     else (0, 0, -1, -1))
    return np.array(boxes)


@pytest.mark.parametrize('scale, ratio', [((0.08, 0.4), (0.3, 3)), ((0.3, 0.9), (0.5, 2.0))])
def test_erasing_boxes_follow_torchvision_rule(scale, ratio):
    height, width = 96, 128
    ours = _boxes(np.uint64(3), DRAWS, 1.0, height, width, *scale, math.log(ratio[0]), math.log(ratio[1]))
    theirs = _torchvision_boxes(4000, height, width, scale, ratio)
    stats = []
    for boxes in (ours, theirs):
        kept = boxes[boxes[:, 2] >= 0]
        i, j, h, w = kept.T
        assert np.all((i >= 0) & (j >= 0) & (i + h <= height) & (j + w <= width))
        assert np.all((h < height) & (w < width))
        area = h * w / (height * width)
        # rounding h and w moves the area by at most about one row and one column
        slack = (h + w + 1) / (height * width)
        assert np.all(area >= scale[0] - slack) and np.all(area <= scale[1] + slack)
        free_rows = (i + 0.5) / (height - h + 1)                  # uniform placement in the free range
        stats.append((kept.shape[0] / boxes.shape[0], area.mean(), np.log(h / w).mean(),
                      free_rows.mean()))
    (kept_a, area_a, log_a, rows_a), (kept_b, area_b, log_b, rows_b) = stats
    assert abs(kept_a - kept_b) < 0.02
    assert abs(area_a - area_b) < 0.02 * (scale[1] - scale[0]) + 0.005
    assert abs(log_a - log_b) < 0.06
    assert abs(rows_a - 0.5) < 0.02 and abs(rows_b - 0.5) < 0.03


def test_erasing_probability_and_no_box_when_every_attempt_fails():
    boxes = _boxes(np.uint64(4), DRAWS, 0.25, 96, 128, 0.08, 0.4, math.log(0.3), math.log(3))
    assert abs(np.mean(boxes[:, 2] >= 0) - 0.25) < 0.015
    # an area of the whole image never fits (h < H and w < W is required): no box, image unchanged
    assert np.all(_boxes(np.uint64(4), 100, 1.0, 96, 128, 1.0, 1.0, 0.0, 0.0)[:, 2] == -1)


@pytest.mark.parametrize('kwargs', [dict(erase_prob=-0.1), dict(scale=(0.5, 0.2)), dict(scale=(0.1, 1.2)),
                                    dict(ratio=(0.0, 2.0)), dict(ratio=1.0), dict(mean=(300, 0, 0)),
                                    dict(mean='gray')])
def test_erasing_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='RandomErasing'):
        RandomErasing(**kwargs)
    with pytest.raises(ValueError, match='RandomErasing: mean has 2 values'):
        RandomErasing(mean=(1, 2)).declare_state_and_memory(_state((8, 8, 3)))


# ---- Rotate ---------------------------------------------------------------------------------

@pytest.mark.parametrize('degrees', [-11.46, -3.0, 0.7, 5.0, 11.46, 30.0, 45.0, 90.0, -170.0])
def test_rotate_equals_torchvision_nearest(photos, degrees):
    worst = 1.0
    for image in photos:
        ours = image.copy()
        rotate_image(ours, math.radians(degrees), np.empty(ours.size, np.uint8))
        ref = _hwc(F.rotate(_chw(image), degrees, InterpolationMode.NEAREST))
        worst = min(worst, float(np.mean(np.all(ours == ref, axis=-1))))
    assert worst >= 0.995
    assert not np.array_equal(ours, image)


@njit
def _angles(seed, n, p, angle):
    out = np.full(n, np.nan)
    for k in range(n):
        seed_sample(seed, k)
        rotated, theta = draw_angle(p, angle)
        if rotated:
            out[k] = theta
    return out


def test_rotate_angle_is_uniform_in_radians_and_applied_with_rotate_prob():
    angles = _angles(np.uint64(6), DRAWS, 0.5, 0.2)
    applied = angles[~np.isnan(angles)]
    assert abs(applied.size / DRAWS - 0.5) < 0.015
    assert applied.min() >= -0.2 and applied.max() <= 0.2 and applied.max() > 0.199
    counts = np.histogram(applied, bins=8, range=(-0.2, 0.2))[0]
    assert np.all(np.abs(counts / applied.size - 0.125) < 0.02)


@pytest.mark.parametrize('kwargs', [dict(rotate_prob=2), dict(angle=-0.1), dict(angle=float('inf')),
                                    dict(angle='0.2')])
def test_rotate_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match='Rotate'):
        Rotate(**kwargs)


# ---- in a Loader ----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def beton(tmp_path_factory, photos):
    small = [np.asarray(Image.fromarray(p).resize((64, 80), Image.BILINEAR)) for p in photos]
    small = small + [np.ascontiguousarray(p[::-1]) for p in small]                  # 16 samples
    return write_labelled(tmp_path_factory.mktemp('ssl_spatial') / 'photos.beton', small,
                          RGBImageField(write_mode='jpg'))


def _by_sample(path, pipelines, epochs=1, **kw):
    """Per epoch: {output name: ndarray indexed by sample}; ``label`` must be an output."""
    loader = Loader(path, order=OrderOption.RANDOM, seed=0, drop_last=False, pipelines=pipelines, **kw)
    names = loader.graph.output_names
    result = []
    for _ in range(epochs):
        out = {}
        for batch in loader:
            batch = dict(zip(names, batch))
            for k, sample in enumerate(np.asarray(batch['label'])[:, 0].astype(int)):
                for name in names:
                    out.setdefault(name, {})[sample] = np.asarray(batch[name][k]).copy()
        result.append({name: np.stack([d[s] for s in sorted(d)]) for name, d in out.items()})
    return result


def _augmented():
    decoder = RandomResizedCropRGBImageDecoder((32, 32))
    return {'image': [decoder, GaussianBlur(0.5, seed=1), RandomErasing(0.5, seed=2), Rotate(0.5, seed=3),
                      ToTensor()],
            'plain': PipelineSpec(source=decoder, transforms=[ToTensor()]),
            'label': [IntDecoder()]}


def test_loader_reproducible_across_threads_and_batch_sizes_new_epoch_new_draws(beton):
    first, second = _by_sample(beton, _augmented(), epochs=2, batch_size=3, num_workers=1)
    again = _by_sample(beton, _augmented(), batch_size=7, num_workers=2)[0]
    assert np.array_equal(first['image'], again['image'])
    same = sum(np.array_equal(a, b) for a, b in zip(first['image'], second['image']))
    assert same < 4
    changed = sum(not np.array_equal(a, b) for a, b in zip(first['image'], first['plain']))
    assert changed >= 10                   # 1 - 0.5**3 of the images get at least one op


def test_label_blur_reports_the_sigma_the_image_op_used(beton):
    pipelines = {'image': [SimpleRGBImageDecoder()],
                 'blurred': PipelineSpec('image', SimpleRGBImageDecoder(),
                                         [GaussianBlur(0.5, kernel_size=5, seed=7)]),
                 'label': [IntDecoder(), LabelGaussianBlur(0.5, kernel_size=5, seed=7)]}
    for epoch in _by_sample(beton, pipelines, epochs=2, batch_size=5, num_workers=2):
        labels = epoch['label']
        assert labels.dtype == np.float32 and labels.shape == (16, 2)
        assert np.array_equal(labels[:, 0], np.arange(16))
        sigmas = labels[:, 1]
        assert 0 < np.count_nonzero(sigmas) < 16
        for plain, blurred, sigma in zip(epoch['image'], epoch['blurred'], sigmas):
            if sigma == 0:
                assert np.array_equal(blurred, plain)
            else:
                assert 0.1 <= sigma <= 2.0
                assert np.array_equal(_blurred(plain, 5, 5, float(sigma)), blurred)
