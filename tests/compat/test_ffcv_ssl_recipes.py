"""FFCV-SSL's published usage, with ``ffcv`` replaced by ``ffcvx``, on a CPU-only machine.

Its examples/test_ffcv_augmentations_ssl.py: three views of one field through
``custom_field_mapper``, ``ToDevice(torch.device(...))`` and
``NormalizeImage(mean, std, np.float16)``; here the device is ``cpu``.
"""
import numpy as np
import pytest
import torch as ch

import ffcvx
from ffcvx.decoders.views import ViewsDecoder
from ffcvx.fields.basics import IntDecoder
from ffcvx.loader import Loader, OrderOption

from colour_photos import photo_beton

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255


def create_loader(path, device):
    # FFCV-SSL's create_loader(), its device made a parameter.
    image_pipeline1 = [
        ffcvx.transforms.RandomResizedCrop((224, 224), ratio=(0.4, 1)),
        ffcvx.transforms.RandomGrayscale(seed=0),
        ffcvx.transforms.ToTensor(),
        ffcvx.transforms.ToDevice(device, non_blocking=True),
        ffcvx.transforms.ToTorchImage(),
        ffcvx.transforms.NormalizeImage(IMAGENET_MEAN, IMAGENET_STD, np.float16),
    ]
    image_pipeline2 = [
        ffcvx.transforms.RandomResizedCrop((224, 224), ratio=(0.4, 1)),
        ffcvx.transforms.RandomGrayscale(seed=0),
        ffcvx.transforms.ToTensor(),
        ffcvx.transforms.ToDevice(device, non_blocking=True),
        ffcvx.transforms.ToTorchImage(),
        ffcvx.transforms.NormalizeImage(IMAGENET_MEAN, IMAGENET_STD, np.float16),
    ]
    image_pipeline3 = [
        ffcvx.transforms.RandomResizedCrop((224, 224), ratio=(0.4, 1)),
        ffcvx.transforms.RandomHorizontalFlip(flip_prob=0.5),
        ffcvx.transforms.RandomSolarization(),
        ffcvx.transforms.RandomColorJitter(),
        ffcvx.transforms.ToTensor(),
        ffcvx.transforms.ToDevice(device, non_blocking=True),
        ffcvx.transforms.ToTorchImage(),
        ffcvx.transforms.NormalizeImage(IMAGENET_MEAN, IMAGENET_STD, np.float16),
    ]
    label_pipeline = [IntDecoder(), ffcvx.transforms.ToTensor()]
    return Loader(path, num_workers=2, batch_size=3,
                  pipelines={"image": image_pipeline1, "image2": image_pipeline2,
                             "image3": image_pipeline3, "label": label_pipeline},
                  custom_field_mapper={"image2": "image", "image3": "image"},
                  order=OrderOption.RANDOM)


def _is_gray(images):
    # Per sample: all three channels equal (after the same per-channel normalisation, undone).
    mean = ch.tensor(IMAGENET_MEAN, dtype=ch.float32).view(1, 3, 1, 1)
    std = ch.tensor(IMAGENET_STD, dtype=ch.float32).view(1, 3, 1, 1)
    pixels = (images.float() * std + mean).round()
    return ((pixels[:, 0] - pixels[:, 1]).abs().amax(dim=(1, 2)) <= 1) & \
           ((pixels[:, 1] - pixels[:, 2]).abs().amax(dim=(1, 2)) <= 1)


@pytest.mark.parametrize('device', [ch.device('cpu'), 'cpu'], ids=['torch.device', 'str'])
def test_three_views_recipe_runs_on_cpu(tmp_path, shared_dir, device):
    path, n = photo_beton(tmp_path / 'photos.beton', shared_dir, repeat=3)
    loader = create_loader(path, device)
    assert isinstance(loader.graph.pipelines[0].steps[0].operation, ViewsDecoder)  # one decode
    batches = 0
    gray_views = 0
    for (x1, y, x2, x3) in loader:           # FFCV-SSL's output order: fields, then mapped
        for x in (x1, x2, x3):
            assert x.shape == (3, 3, 224, 224) and x.dtype == ch.float16
            assert x.device.type == 'cpu'
        assert y.shape == (3, 1)
        assert not ch.equal(x1, x2)          # own crops
        # RandomGrayscale(seed=0) in two views: the same draw for a sample in both
        assert ch.equal(_is_gray(x1), _is_gray(x2))
        gray_views += int(_is_gray(x1).sum())
        batches += 1
    assert batches == n // 3
    assert 0 < gray_views < n               # p = 0.2 over the epoch


EMPTY = __import__('inspect').Parameter.empty
#: FFCV-SSL's constructor arguments (name, default) for its transforms, in order;
#: EMPTY for none. RandomTranslate's fill keeps FFCV 1.0's default (D-ssl-translate-fill).
FFCV_SSL_SIGNATURES = {
    'RandomColorJitter': [('jitter_prob', 0.5), ('brightness', 0.8), ('contrast', 0.4),
                          ('saturation', 0.4), ('hue', 0.2), ('seed', None)],
    'RandomGrayscale': [('gray_prob', 0.2), ('seed', None)],
    'RandomSolarization': [('solarization_prob', 0.5), ('threshold', 128), ('seed', None)],
    'GaussianBlur': [('blur_prob', EMPTY), ('kernel_size', 5), ('sigma', (0.1, 2.0)), ('seed', None)],
    'RandomErasing': [('erase_prob', 0.5), ('scale', (0.08, 0.4)), ('ratio', (0.3, 3)),
                      ('mean', (128, 128, 128)), ('seed', None)],
    'Rotate': [('rotate_prob', 0.5), ('angle', 0.2), ('seed', None)],
    'RandomHorizontalFlip': [('flip_prob', 0.5), ('seed', None)],
    'RandomTranslate': [('padding', EMPTY), ('fill', (0, 0, 0)), ('seed', None)],
    'LabelTranslate': [('padding', EMPTY), ('fill', (0, 0, 0)), ('seed', None)],
    'LabelRandomResizedCrop': [('output_size', EMPTY), ('seed', EMPTY), ('scale', (0.08, 1.0)),
                               ('ratio', (3 / 4, 4 / 3)), ('second_seed', None)],
    'CornerCrop': [('output_size', EMPTY), ('ratio', EMPTY), ('corner', 'top_left')],
}


@pytest.mark.parametrize('name', sorted(FFCV_SSL_SIGNATURES))
def test_constructor_arguments_as_ffcv_ssl(name):
    import inspect
    parameters = list(inspect.signature(getattr(ffcvx.transforms, name)).parameters.values())
    expected = FFCV_SSL_SIGNATURES[name]
    assert [(p.name, p.default) for p in parameters[:len(expected)]] == expected
    # anything after FFCV-SSL's arguments is an ffcvx keyword with a default
    assert all(p.default is not EMPTY for p in parameters[len(expected):])


def test_label_ops_take_their_image_ops_arguments():
    import inspect
    for image, label in (('RandomColorJitter', 'LabelColorJitter'), ('RandomGrayscale', 'LabelGrayscale'),
                         ('RandomSolarization', 'LabelSolarization'), ('GaussianBlur', 'LabelGaussianBlur'),
                         ('RandomHorizontalFlip', 'LabelRandomHorizontalFlip')):
        ours = inspect.signature(getattr(ffcvx.transforms, image)).parameters
        theirs = inspect.signature(getattr(ffcvx.transforms, label)).parameters
        assert [(p.name, p.default) for p in ours.values()] == \
            [(p.name, p.default) for p in list(theirs.values())[:len(ours)]], label


@pytest.mark.parametrize('make', [
    lambda seed: ffcvx.transforms.GaussianBlur(0.5, seed=seed),
    lambda seed: ffcvx.transforms.LabelGaussianBlur(0.5, seed=seed),
    lambda seed: ffcvx.transforms.RandomErasing(seed=seed),
    lambda seed: ffcvx.transforms.Rotate(seed=seed),
    lambda seed: ffcvx.transforms.RandomGrayscale(seed=seed),
    lambda seed: ffcvx.transforms.RandomHorizontalFlip(seed=seed),
    lambda seed: ffcvx.transforms.RandomResizedCrop(output_size=(8, 8), seed=seed),
    lambda seed: ffcvx.transforms.RandomResizedCrop(output_size=(8, 8), second_seed=seed),
])
def test_every_seed_argument_is_checked_alike(make):
    assert make(None) is not None and make(7) is not None
    for bad in ('x', 1.5, True, -1, [1]):
        with pytest.raises(ValueError, match=r'seed must be None or an integer >= 0'):
            make(bad)
