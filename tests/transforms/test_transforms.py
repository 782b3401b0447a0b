"""FFCV 1.0's augmentation transforms, through a real Loader on small .beton files.

The dataset: raw (uncompressed) RGB images, so the decoder gives back the
exact pixels written, with values in 10..250 (no pixel is ever a fill colour
used below, nor saturated); the label of sample ``i`` is ``i``, so every
output row says which sample it came from, whatever the order.
"""
import numpy as np
import pytest
import torch

from ffcvx._ext.resize import resize_gray, resize_rgb
from ffcvx.fields import GrayscaleImageField, RGBImageField
from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import (Convert, Cutout, ImageMixup, LabelMixup, MixupToOneHot, Poison,
                              RandomBrightness, RandomContrast, RandomHorizontalFlip,
                              RandomResizedCrop, RandomSaturation, RandomTranslate, ReplaceLabel,
                              Squeeze, ToDevice, ToTensor, ToTorchImage)
from ffcvx.transforms.color_jitter import blend_with_reference
from ffcvx.transforms.mixup import mixup_lambdas
from ffcvx.transforms.translate import shift_in_place

from _common import write_labelled

N, H, W = 48, 12, 16
FILL = (7, 8, 9)
LUMA = np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope='module')
def originals():
    return np.random.default_rng(2024).integers(10, 251, (N, H, W, 3), dtype=np.uint8)


@pytest.fixture(scope='module')
def beton(tmp_path_factory, originals):
    path = tmp_path_factory.mktemp('transforms') / 'noise.beton'
    return write_labelled(path, originals, RGBImageField(write_mode='raw'))


def _run(path, image_ops, label_ops=None, batch_size=16, order=OrderOption.SEQUENTIAL, seed=3,
         num_workers=2, **kw):
    """Every batch as numpy copies: (images, labels) per batch; the label is the sample index."""
    loader = Loader(path, batch_size=batch_size, num_workers=num_workers, order=order, seed=seed,
                    drop_last=False, pipelines={
                        'image': [SimpleRGBImageDecoder()] + list(image_ops),
                        'label': [IntDecoder()] + list(label_ops or [])}, **kw)
    out = []
    for images, labels in loader:
        images = images.numpy() if isinstance(images, torch.Tensor) else images
        labels = labels.numpy() if isinstance(labels, torch.Tensor) else labels
        out.append((images.copy(), labels.copy()))
    return out


def _loader_error(path, image_ops):
    return Loader(path, batch_size=4, pipelines={'image': [SimpleRGBImageDecoder()] + image_ops,
                                                 'label': None})


# -- RandomTranslate -----------------------------------------------------------------------------

@pytest.mark.parametrize('dy', range(-4, 5))
@pytest.mark.parametrize('dx', range(-5, 6))
def test_shift_in_place_equals_padded_window(dy, dx):
    rng = np.random.default_rng((dy + 10) * 100 + dx + 10)
    image = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    fill = np.array([1, 2, 3], np.uint8)
    padded = np.empty((4 + 8, 5 + 10, 3), np.uint8)
    padded[:] = fill
    padded[4:8, 5:10] = image
    expected = padded[4 + dy:8 + dy, 5 + dx:10 + dx]
    shifted = image.copy()
    shift_in_place(shifted, dy, dx, fill)
    assert np.array_equal(shifted, expected)


def test_random_translate_gives_padded_windows(beton, originals):
    padding = 3
    batches = _run(beton, [RandomTranslate(padding, fill=FILL)], order=OrderOption.RANDOM)
    offsets = set()
    for images, labels in batches:
        for image, label in zip(images, labels[:, 0]):
            padded = np.empty((H + 2 * padding, W + 2 * padding, 3), np.uint8)
            padded[:] = FILL
            padded[padding:padding + H, padding:padding + W] = originals[label]
            found = [(y, x) for y in range(2 * padding + 1) for x in range(2 * padding + 1)
                     if np.array_equal(padded[y:y + H, x:x + W], image)]
            assert len(found) == 1, f"sample {label}: not a window of the padded image"
            offsets.add(found[0])
    assert sum(len(labels) for _, labels in batches) == N
    assert len(offsets) >= 10          # 49 possible offsets, 48 samples


def test_random_translate_padding_zero_is_identity(beton, originals):
    images = np.concatenate([b[0] for b in _run(beton, [RandomTranslate(0)])])
    assert np.array_equal(images, originals)


# -- Cutout --------------------------------------------------------------------------------------

def test_cutout_fills_exactly_one_square(beton, originals):
    size = 5
    batches = _run(beton, [Cutout(size, FILL)], order=OrderOption.RANDOM)
    corners = set()
    for images, labels in batches:
        for image, label in zip(images, labels[:, 0]):
            filled = np.all(image == FILL, axis=-1)
            ys, xs = np.nonzero(filled)
            assert filled.sum() == size * size, f"sample {label}"
            assert ys.max() - ys.min() == size - 1 and xs.max() - xs.min() == size - 1
            corners.add((ys.min(), xs.min()))
            assert np.array_equal(image[~filled], originals[label][~filled])
    assert len(corners) >= 10


def test_cutout_whole_image_and_too_large(beton):
    (images, _), = _run(beton, [Cutout(H, FILL)], batch_size=N)
    # crop_size == H: the square spans all rows, at some column offset.
    assert np.all(np.all(images == FILL, axis=-1).sum(axis=(1, 2)) == H * H)
    with pytest.raises(ValueError, match='crop_size 13 does not fit'):
        _loader_error(beton, [Cutout(H + 1)])


# -- RandomResizedCrop ---------------------------------------------------------------------------

def test_random_resized_crop_whole_image_equals_decoder_and_kernel(beton, originals):
    size = 2 * H  # an upscale
    ratio = (W / H, W / H)
    ops = [RandomResizedCrop(scale=(1, 1), ratio=ratio, size=size)]
    got = np.concatenate([b[0] for b in _run(beton, ops)])
    assert got.shape == (N, size, size, 3) and got.dtype == np.uint8
    loader = Loader(beton, batch_size=16, drop_last=False, pipelines={
        'image': [RandomResizedCropRGBImageDecoder((size, size), scale=(1, 1), ratio=ratio)],
        'label': None})
    decoded = np.concatenate([images.copy() for (images,) in loader])
    assert np.array_equal(got, decoded)
    for k in (0, 17, N - 1):
        reference = np.empty((size, size, 3), np.uint8)
        resize_rgb(originals[k], reference)
        assert np.array_equal(got[k], reference)


def test_random_resized_crop_takes_random_boxes(beton, originals):
    # Area a quarter of 12x16 at ratio 4/3: an 6x8 box, at one of 7x9 positions.
    size, bh, bw = 10, 6, 8
    batches = _run(beton, [RandomResizedCrop((0.25, 0.25), (4 / 3, 4 / 3), size)],
                   order=OrderOption.RANDOM)
    positions = set()
    for images, labels in batches:
        assert images.shape[1:] == (size, size, 3)
        for image, label in zip(images, labels[:, 0]):
            matches = []
            for i in range(H - bh + 1):
                for j in range(W - bw + 1):
                    reference = np.empty((size, size, 3), np.uint8)
                    resize_rgb(originals[label][i:i + bh, j:j + bw], reference)
                    if np.array_equal(reference, image):
                        matches.append((i, j))
            assert matches, f"sample {label}: not a resized 6x8 box"
            positions.add(matches[0])
    assert len(positions) >= 8


def test_random_resized_crop_after_other_transforms(beton):
    (images, _), = _run(beton, [RandomTranslate(2), RandomResizedCrop((0.08, 1), (3 / 4, 4 / 3), 7),
                                ToTensor(), ToTorchImage()], batch_size=N)
    assert images.shape == (N, 3, 7, 7)


# -- Poison and ReplaceLabel ---------------------------------------------------------------------

def test_poison_changes_exactly_the_listed_samples(beton, originals):
    targets = [1, 5, 17, 40]
    mask = np.random.default_rng(7).integers(0, 256, (H, W, 3)).astype(np.float64)
    alpha = 0.3
    batches = _run(beton, [Poison(mask, alpha, targets)], order=OrderOption.RANDOM)
    seen = []
    for images, labels in batches:
        for image, label in zip(images, labels[:, 0]):
            seen.append(label)
            if label in targets:
                x = originals[label].astype(np.float32)
                value = x * np.float32(1 - alpha) + mask.astype(np.float32) * np.float32(alpha)
                expected = np.floor(np.clip(value, 0, 255) + 0.5).astype(np.uint8)
                assert np.abs(image.astype(int) - expected).max() <= 1
                assert np.mean(image == expected) > 0.99
                assert not np.array_equal(image, originals[label])
            else:
                assert np.array_equal(image, originals[label])
    assert sorted(seen) == list(range(N))


@pytest.mark.parametrize('alpha_shape', [(H, W, 1), (H, W)])  # (H, W) is FFCV's form
def test_poison_clamp_and_per_pixel_alpha(beton, originals, alpha_shape):
    alpha = np.zeros(alpha_shape)
    alpha[:, :W // 2] = 1.0                   # left half replaced by the mask, right half kept
    mask = np.full((H, W, 3), 255.0)
    images = np.concatenate([b[0] for b in _run(beton, [Poison(mask, alpha, [3], clamp=(0, 100))])])
    assert np.all(images[3][:, :W // 2] == 100)
    assert np.array_equal(images[3][:, W // 2:], np.minimum(originals[3][:, W // 2:], 100))
    assert np.array_equal(np.delete(images, 3, axis=0), np.delete(originals, 3, axis=0))


def test_replace_label_changes_exactly_the_listed_samples(beton, originals):
    targets = {2, 3, 40}
    batches = _run(beton, [], [ReplaceLabel(sorted(targets), 99)], order=OrderOption.RANDOM)
    for images, labels in batches:
        assert labels.dtype == np.int64
        for image, label in zip(images, labels[:, 0]):
            # Which sample this is, from its pixels.
            sample = int(np.flatnonzero((originals == image).all(axis=(1, 2, 3)))[0])
            assert label == (99 if sample in targets else sample)


# -- Mixup ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('same_lambda', [False, True])
def test_image_and_label_mixup_agree(beton, originals, same_lambda):
    alpha = 0.7
    batches = _run(beton, [ImageMixup(alpha, same_lambda)], [LabelMixup(alpha, same_lambda)],
                   order=OrderOption.RANDOM, batch_size=12)
    all_lambdas = []
    for images, mixed in batches:
        assert mixed.dtype == np.float32 and mixed.shape == (len(images), 3)
        first = mixed[:, 0].astype(np.int64)
        assert np.array_equal(mixed[:, 1].astype(np.int64), np.roll(first, 1))
        lam = mixed[:, 2].astype(np.float64)
        assert np.allclose(lam, mixup_lambdas(first, alpha, same_lambda), atol=1e-7)
        expected = (lam[:, None, None, None] * originals[first]
                    + (1 - lam[:, None, None, None]) * originals[np.roll(first, 1)])
        assert np.abs(images - expected).max() <= 0.5 + 1e-4
        assert len(set(lam.tolist())) == (1 if same_lambda else len(lam))
        all_lambdas.extend(lam.tolist())
    assert sorted(set(int(r) for images, mixed in batches for r in mixed[:, 0])) == list(range(N))
    assert 0 < min(all_lambdas) and max(all_lambdas) < 1


def test_mixup_lambdas_are_beta_distributed():
    def ks_distance(sample, cdf):
        sample = np.sort(sample)
        n = len(sample)
        values = cdf(sample)
        return max(np.max(np.arange(1, n + 1) / n - values), np.max(values - np.arange(n) / n))

    batches = [np.arange(k * 50, k * 50 + 50) for k in range(200)]
    uniform = np.concatenate([mixup_lambdas(b, 1.0, False) for b in batches])
    assert ks_distance(uniform, lambda x: x) < 0.02              # Beta(1, 1) is U(0, 1)
    arcsine = np.concatenate([mixup_lambdas(b, 0.5, False) for b in batches])
    assert ks_distance(arcsine, lambda x: 2 / np.pi * np.arcsin(np.sqrt(x))) < 0.02
    for alpha in (0.1, 4.0):
        lam = np.concatenate([mixup_lambdas(b, alpha, False) for b in batches])
        assert abs(lam.mean() - 0.5) < 0.01
        assert abs(lam.var() - 1 / (4 * (2 * alpha + 1))) < 0.01
    # A pure function of the batch: same batch, same weights; another batch, others.
    assert np.array_equal(mixup_lambdas([4, 9, 2], 0.4, True), mixup_lambdas([4, 9, 2], 0.4, True))
    assert not np.array_equal(mixup_lambdas([4, 9, 2], 0.4, True), mixup_lambdas([2, 9, 4], 0.4, True))


def test_mixup_does_not_reseed_other_augmentations(beton):
    # FFCV re-seeded the thread's generator from the batch; here a flip after
    # ImageMixup follows the Loader's seed (per sample, ffcvx.pipeline.seeds),
    # so two seeds flip different subsets of the same batch.
    flips = []
    for seed in (3, 4):
        (images, _), = _run(beton, [ImageMixup(1.0, True)], batch_size=N, num_workers=1, seed=seed)
        (flipped, _), = _run(beton, [ImageMixup(1.0, True), RandomHorizontalFlip()], batch_size=N,
                             num_workers=1, seed=seed)
        flips.append(tuple(not np.array_equal(a, b) for a, b in zip(images, flipped)))
    assert 0 < sum(flips[0]) < N and flips[0] != flips[1]


def test_mixup_to_one_hot_through_loader(beton):
    batches = _run(beton, [], [LabelMixup(0.5, False), ToTensor(), ToDevice('cpu'), MixupToOneHot(N)],
                   order=OrderOption.RANDOM)
    plain = _run(beton, [], [LabelMixup(0.5, False)], order=OrderOption.RANDOM)
    for (_, targets), (_, mixed) in zip(batches, plain):
        assert targets.shape == (len(mixed), N) and targets.dtype == np.float32
        assert np.allclose(targets.sum(axis=1), 1)
        rows = np.arange(len(mixed))
        assert np.allclose(targets[rows, mixed[:, 0].astype(int)], mixed[:, 2])
        assert np.allclose(targets[rows, mixed[:, 1].astype(int)], 1 - mixed[:, 2])
        assert np.count_nonzero(targets) <= 2 * len(mixed)


def test_mixup_to_one_hot_same_class_sums_to_one():
    op = MixupToOneHot(5)
    from ffcvx.pipeline.state import State
    state, query = op.declare_state_and_memory(State(False, torch.device('cpu'), (3,), torch.float32))
    assert state.shape == (5,) and query.shape == (5,)
    mixed = torch.tensor([[3, 3, 0.3], [1, 4, 0.25]])
    out = op.generate_code()(mixed, torch.full((2, 5), 9.0))
    assert torch.allclose(out, torch.tensor([[0, 0, 0, 1.0, 0], [0, 0.25, 0, 0, 0.75]]))
    assert torch.equal(mixed, torch.tensor([[3, 3, 0.3], [1, 4, 0.25]]))   # input untouched


# -- Colour jitter -------------------------------------------------------------------------------

JITTERS = [RandomBrightness, RandomContrast, RandomSaturation]


def _reference(kind, x):
    """The blend's reference image (float), for one (H, W, 3) image."""
    gray = (x.astype(np.float64) * LUMA).sum(axis=-1, keepdims=True)
    if kind is RandomBrightness:
        return np.zeros_like(gray)
    if kind is RandomContrast:
        return np.full_like(gray, gray.mean())
    return gray


@pytest.mark.parametrize('kind', JITTERS)
def test_color_jitter_identities(beton, originals, kind):
    for op in (kind(0.8, p=0.0), kind(0.0, p=1.0)):
        images = np.concatenate([b[0] for b in _run(beton, [op])])
        assert np.array_equal(images, originals)


@pytest.mark.parametrize('kind', JITTERS)
def test_color_jitter_blends_with_the_right_reference(beton, originals, kind):
    magnitude = 0.6
    images = np.concatenate([b[0] for b in _run(beton, [kind(magnitude, p=1.0)])])
    factors = []
    for image, x in zip(images.astype(np.float64), originals):
        r = _reference(kind, x)
        a, b = (x - r).ravel(), (image - r).ravel()
        keep = (image.ravel() > 0) & (image.ravel() < 255)
        f = float(a[keep] @ b[keep] / (a[keep] @ a[keep]))   # least-squares factor
        assert 1 - magnitude - 0.02 <= f <= 1 + magnitude + 0.02
        expected = np.clip(f * x + (1 - f) * r, 0, 255)
        assert np.abs(image - expected).max() <= 1.0
        factors.append(f)
    assert min(factors) < 0.9 and max(factors) > 1.1        # both directions occur


@pytest.mark.parametrize('kind', JITTERS)
def test_color_jitter_probability(beton, originals, kind):
    images = np.concatenate([b[0] for b in _run(beton, [kind(0.5, p=0.5)])])
    changed = [not np.array_equal(a, b) for a, b in zip(images, originals)]
    assert 8 <= sum(changed) <= N - 8


def test_blend_factor_zero_gives_the_reference():
    x = np.random.default_rng(1).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    gray = (x * LUMA).sum(axis=-1)
    for kind, expected in ((0, np.zeros_like(gray)), (1, np.full_like(gray, gray.mean())), (2, gray)):
        image = x.copy()
        blend_with_reference(image, 0.0, kind)
        assert np.array_equal(image, np.repeat(np.floor(expected + 0.5)[..., None], 3, -1))


# -- FFCV's CIFAR-10 example pipeline -----------------------------------------------------------

class _Normalize(torch.nn.Module):
    """torchvision.transforms.Normalize's arithmetic (torchvision is not a dependency)."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def forward(self, x):
        return (x - self.mean.to(x).view(-1, 1, 1)) / self.std.to(x).view(-1, 1, 1)


def test_ffcv_cifar_pipeline_runs_unchanged(beton):
    try:
        from torchvision.transforms import Normalize
    except ImportError:
        Normalize = _Normalize
    cifar_mean = [125.307, 122.961, 113.8575]
    cifar_std = [51.5865, 50.847, 51.255]
    device = torch.device('cpu')
    image_pipeline = [SimpleRGBImageDecoder(), RandomHorizontalFlip(),
                      RandomTranslate(padding=2, fill=tuple(map(int, cifar_mean))),
                      Cutout(4, tuple(map(int, cifar_mean))),
                      ToTensor(), ToDevice(device, non_blocking=True), ToTorchImage(),
                      Convert(torch.float16), Normalize(cifar_mean, cifar_std)]
    label_pipeline = [IntDecoder(), ToTensor(), ToDevice(device), Squeeze()]
    loader = Loader(beton, batch_size=16, num_workers=2, order=OrderOption.RANDOM, drop_last=False,
                    pipelines={'image': image_pipeline, 'label': label_pipeline})
    labels = []
    for images, batch_labels in loader:
        assert images.shape == (len(batch_labels), 3, H, W) and images.dtype == torch.float16
        assert batch_labels.shape == (len(images),) and batch_labels.dtype == torch.int64
        assert torch.isfinite(images).all() and images.float().std() > 0.5
        labels.extend(batch_labels.tolist())
    assert sorted(labels) == list(range(N))


# -- Pipeline placement and arguments ----------------------------------------------------------

NUMPY_OPS = [lambda: RandomTranslate(1), lambda: Cutout(2), lambda: RandomResizedCrop((0.5, 1), (1, 1), 4),
             lambda: Poison(np.zeros(3), 0.5, [0]), lambda: ImageMixup(1.0, False),
             lambda: RandomBrightness(0.2), lambda: RandomContrast(0.2), lambda: RandomSaturation(0.2)]


@pytest.mark.parametrize('make', NUMPY_OPS)
def test_numpy_transforms_refuse_to_follow_to_tensor(beton, make):
    op = make()
    with pytest.raises(ValueError, match=rf'{type(op).__name__}.*before ToTensor\(\)'):
        _loader_error(beton, [ToTensor(), op])


def test_label_transforms_refuse_wrong_places(beton):
    with pytest.raises(ValueError, match=r'ReplaceLabel.*before ToTensor\(\)'):
        Loader(beton, batch_size=4, pipelines={'image': None, 'label': [IntDecoder(), ToTensor(),
                                                                         ReplaceLabel([1], 2)]})
    with pytest.raises(ValueError, match=r'LabelMixup.*before ToTensor\(\)'):
        Loader(beton, batch_size=4, pipelines={'image': None, 'label': [IntDecoder(), ToTensor(),
                                                                         LabelMixup(1.0, True)]})
    with pytest.raises(ValueError, match=r'MixupToOneHot works on tensors: put ToTensor\(\)'):
        Loader(beton, batch_size=4, pipelines={'image': None, 'label': [IntDecoder(), LabelMixup(1.0, True),
                                                                         MixupToOneHot(3)]})
    with pytest.raises(ValueError, match=r'MixupToOneHot needs LabelMixup'):
        Loader(beton, batch_size=4, pipelines={'image': None, 'label': [IntDecoder(), ToTensor(),
                                                                         MixupToOneHot(3)]})


def test_argument_checks(beton):
    with pytest.raises(ValueError, match='fill has 2 values but the images have 3 channels'):
        _loader_error(beton, [RandomTranslate(1, fill=(1, 2))])
    with pytest.raises(ValueError, match='not a colour of uint8'):
        _loader_error(beton, [Cutout(2, fill=(0, 0, 300))])
    with pytest.raises(ValueError, match='must broadcast to the sample shape'):
        _loader_error(beton, [Poison(np.zeros((3, 3, 3)), 0.5, [1])])
    from ffcvx.pipeline.state import State
    cpu = torch.device('cpu')
    with pytest.raises(ValueError, match='RandomResizedCrop needs 3- or 1-channel images'):
        RandomResizedCrop((0.5, 1), (1, 1), 4).declare_state_and_memory(
            State(True, cpu, (H, W, 2), np.dtype(np.uint8)))
    with pytest.raises(ValueError, match='RandomContrast needs uint8 images, got float32'):
        RandomContrast(0.5).declare_state_and_memory(State(True, cpu, (H, W, 3), np.dtype(np.float32)))
    with pytest.raises(ValueError, match=r'Cutout needs images of shape \(H, W, C\)'):
        Cutout(2).declare_state_and_memory(State(True, cpu, (1,), np.dtype(np.int64)))
    bad = [lambda: RandomTranslate(-1), lambda: RandomTranslate(1.5), lambda: RandomTranslate(1, fill='red'),
           lambda: Cutout(0), lambda: RandomResizedCrop((0.5, 0.1), (1, 1), 4),
           lambda: RandomResizedCrop((0.5, 1), (0, 1), 4), lambda: RandomResizedCrop((0.5, 1), (1, 1), 0),
           lambda: Poison(np.zeros(3), 1.5, [1]), lambda: Poison(np.zeros(3), 0.5, [-1]),
           lambda: Poison(np.zeros(3), 0.5, [1], clamp=(5, 1)), lambda: ReplaceLabel([1], 2.5),
           lambda: ImageMixup(0, True), lambda: LabelMixup(-1.0, True),
           lambda: ImageMixup(float('inf'), True),
           lambda: MixupToOneHot(0), lambda: RandomBrightness(-0.1), lambda: RandomContrast(0.1, p=2),
           lambda: RandomSaturation(float('nan'))]
    for make in bad:
        with pytest.raises(ValueError):
            make()
    with pytest.raises(ValueError, match='new_label 300 does not fit uint8'):
        ReplaceLabel([1], 300).declare_state_and_memory(
            State(True, torch.device('cpu'), (1,), np.dtype(np.uint8)))


def test_ffcv_module_paths_and_parallel_loops():
    import importlib
    paths = {'translate': 'RandomTranslate', 'cutout': 'Cutout', 'random_resized_crop': 'RandomResizedCrop',
             'poisoning': 'Poison', 'replace_label': 'ReplaceLabel', 'mixup': 'ImageMixup',
             'color_jitter': 'RandomSaturation'}
    for module, name in paths.items():
        assert hasattr(importlib.import_module(f'ffcvx.transforms.{module}'), name)
    import ffcvx.transforms as transforms
    for name in ('RandomTranslate', 'Cutout', 'RandomResizedCrop', 'Poison', 'ReplaceLabel', 'ImageMixup',
                 'LabelMixup', 'MixupToOneHot', 'RandomBrightness', 'RandomContrast', 'RandomSaturation'):
        assert name in transforms.__all__


# -- one-channel (gray) images -------------------------------------------------------------------

@pytest.fixture(scope='module')
def gray_beton(tmp_path_factory, originals):
    path = tmp_path_factory.mktemp('transforms_gray') / 'gray.beton'
    return write_labelled(path, originals[..., 0], GrayscaleImageField(write_mode='raw'))


def test_default_fills_serve_gray_images(gray_beton, originals):
    gray = originals[..., 0]
    (images, labels), = _run(gray_beton, [Cutout(3), RandomTranslate(1)], batch_size=N)
    assert images.shape == (N, H, W, 1)
    for image, label in zip(images[..., 0], labels[:, 0]):
        zeros = image == 0                    # the square, and a translated border
        assert zeros.sum() >= 9 and not np.array_equal(image, gray[label])
    with pytest.raises(ValueError, match='fill has 3 values but the images have 1 channels'):
        _loader_error(gray_beton, [Cutout(2, fill=(1, 2, 3))])


def test_random_resized_crop_of_gray_images(gray_beton, originals):
    size = 2 * H
    ops = [RandomResizedCrop(scale=(1, 1), ratio=(W / H, W / H), size=size)]
    got = np.concatenate([b[0] for b in _run(gray_beton, ops)])
    assert got.shape == (N, size, size, 1)
    for k in (0, 17, N - 1):
        reference = np.empty((size, size), np.uint8)
        resize_gray(np.ascontiguousarray(originals[k, :, :, 0]), reference)
        assert np.array_equal(got[k, :, :, 0], reference)
