"""Image decoders through the Loader: golden pixels, crops, transforms, errors."""
import json

import numpy as np
import pytest
import torch

from ffcvx._ext.resize import resize_rgb
from ffcvx.errors import DecodeError
from ffcvx.fields import IntField, RGBImageField
from ffcvx.fields.decoders import (CenterCropRGBImageDecoder, IntDecoder,
                                   RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder)
from ffcvx.decoders.kernels import get_center_crop
from ffcvx.loader import Loader, OrderOption
from ffcvx.reader import Reader
from ffcvx.transforms import (Convert, NormalizeImage, RandomHorizontalFlip, Squeeze, ToDevice,
                              ToTensor, ToTorchImage)
from ffcvx.writer import DatasetWriter
from _common import Computed


def _golden_pixels(golden_dir, case):
    side = json.loads((golden_dir / f'{case}.json').read_text())
    npz = np.load(golden_dir / f'{case}.npz')
    prefix = side['samples']['image']['npz_key_prefix']
    return [npz[prefix + str(i)] for i in range(side['header']['num_samples'])]


@pytest.mark.parametrize('case', ['rgb_jpg', 'rgb_smart', 'rgb_raw'])
def test_center_crop_matches_ffcv_pixels(golden_dir, case):
    """Every sample: region decode + resize == FFCV's full decode, cropped, resized by our kernel.

    The output (256 x 256) is never smaller than a crop, so the JPEG is decoded at
    full DCT scale with the IFAST IDCT, which is what FFCV 1.0 decoded: the
    result must be exact, not within a tolerance.
    """
    expected_full = _golden_pixels(golden_dir, case)
    loader = Loader(str(golden_dir / f'{case}.beton'), batch_size=16, num_workers=2,
                    drop_last=False, backend='turbojpeg',
                    pipelines={'image': [CenterCropRGBImageDecoder((256, 256), ratio=1.0)],
                               'label': [IntDecoder()]})
    got = np.concatenate([images.copy() for images, _ in loader])
    assert got.shape == (len(expected_full), 256, 256, 3)
    for i, full in enumerate(expected_full):
        top, left, h, w = get_center_crop(full.shape[0], full.shape[1], 1.0)
        reference = np.empty((256, 256, 3), np.uint8)
        resize_rgb(np.ascontiguousarray(full[top:top + h, left:left + w]), reference)
        assert np.array_equal(got[i], reference), f"sample {i}"


def test_simple_decoder_multipage_exact(golden_dir):
    reader = Reader(str(golden_dir / 'multipage.beton'))
    loader = Loader(str(golden_dir / 'multipage.beton'), batch_size=8, num_workers=2, drop_last=False,
                    order=OrderOption.RANDOM, seed=1,
                    pipelines={'image': [SimpleRGBImageDecoder(), ToTensor()],
                               'label': [IntDecoder(), ToTensor(), Squeeze()], 'blob': None})
    seen = []
    for images, labels in loader:
        assert images.shape[1:] == (128, 160, 3)
        seen.extend(labels.tolist())
    assert len(seen) == 46
    # Raw pixels: exactly the stored bytes, by sample index.
    seq = Loader(str(golden_dir / 'multipage.beton'), batch_size=46, drop_last=False,
                 pipelines={'image': [SimpleRGBImageDecoder()], 'label': None, 'blob': None})
    (images,) = next(iter(seq))
    for i in range(reader.num_samples):
        assert np.array_equal(images[i].reshape(-1), reader.read_sample_region(i, 'image'))


def test_simple_decoder_refuses_mixed_sizes(golden_dir):
    with pytest.raises(TypeError, match='one size'):
        Loader(str(golden_dir / 'rgb_jpg.beton'), batch_size=4,
               pipelines={'image': [SimpleRGBImageDecoder()]})


def _colour_coded(i):
    """An image whose colour encodes its label, in one of several sizes."""
    h, w = 40 + (i * 7) % 90, 50 + (i * 13) % 120
    colour = np.array([(i * 37) % 256, (i * 91) % 256, i % 256], np.uint8)
    return np.broadcast_to(colour, (h, w, 3)).copy(), int(i)


@pytest.fixture(scope='module')
def coded(tmp_path_factory):
    path = tmp_path_factory.mktemp('images') / 'coded.beton'
    DatasetWriter(str(path), {'image': RGBImageField(write_mode='proportion', compress_probability=0.5,
                                                     jpeg_quality=95),
                              'label': IntField()},
                  num_workers=2, progress=False).from_indexed_dataset(Computed(120, _colour_coded))
    return path


def test_random_resized_crop_keeps_samples_and_labels_aligned(coded):
    loader = Loader(str(coded), batch_size=16, num_workers=2, order=OrderOption.RANDOM, seed=5,
                    drop_last=False,
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((32, 24)), RandomHorizontalFlip(),
                                         ToTensor()],
                               'label': [IntDecoder(), ToTensor(), Squeeze()]})
    seen = []
    for images, labels in loader:
        assert images.shape[1:] == (32, 24, 3) and images.dtype == torch.uint8
        for image, label in zip(images.numpy().astype(int), labels.tolist()):
            colour = np.array([(label * 37) % 256, (label * 91) % 256, label % 256])
            # JPEG (q95) of a flat colour stays within a few levels of it.
            assert np.abs(image - colour).max() <= 6, f"label {label}"
            seen.append(label)
    assert sorted(seen) == list(range(120))


def test_random_crops_differ_between_epochs(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)

    class One:
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return image, 0

    path = tmp_path / 'one.beton'
    DatasetWriter(str(path), {'image': RGBImageField(), 'label': IntField()}, num_workers=1,
                  progress=False).from_indexed_dataset(One())
    loader = Loader(str(path), batch_size=8, pipelines={
        'image': [RandomResizedCropRGBImageDecoder((16, 16))], 'label': None})
    first = next(iter(loader))[0].copy()
    second = next(iter(loader))[0].copy()
    assert not np.array_equal(first, second)
    assert len({first[i].tobytes() for i in range(8)}) > 1


def test_flip_normalize_and_torch_image(coded):
    mean, std = np.array([10.0, 20.0, 30.0]), np.array([2.0, 4.0, 8.0])
    plain = Loader(str(coded), batch_size=8, indices=range(8), pipelines={
        'image': [CenterCropRGBImageDecoder((20, 20), 1.0)], 'label': None})
    (base,) = next(iter(plain))
    base = base.copy()
    flipped = Loader(str(coded), batch_size=8, indices=range(8), pipelines={
        'image': [CenterCropRGBImageDecoder((20, 20), 1.0), RandomHorizontalFlip(1.0),
                  NormalizeImage(mean, std, np.float32), ToTensor(), ToTorchImage(channels_last=False),
                  ToDevice('cpu')], 'label': None})
    (out,) = next(iter(flipped))
    assert out.shape == (8, 3, 20, 20) and out.dtype == torch.float32 and out.is_contiguous()
    expected = (base[:, :, ::-1].astype(np.float64) - mean) / std
    assert np.allclose(out.permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)
    half = Loader(str(coded), batch_size=8, indices=range(8), pipelines={
        'image': [CenterCropRGBImageDecoder((20, 20), 1.0), NormalizeImage(mean, std, np.float16),
                  ToTensor(), ToTorchImage()], 'label': None})
    (out16,) = next(iter(half))
    assert out16.dtype == torch.float16
    assert np.allclose(out16.permute(0, 2, 3, 1).float().numpy(),
                       (base.astype(np.float64) - mean) / std, atol=0.1)


def test_normalize_after_to_tensor_runs_in_torch(coded):
    mean, std = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    loader = Loader(str(coded), batch_size=4, indices=range(4), pipelines={
        'image': [CenterCropRGBImageDecoder((8, 8), 1.0), ToTensor(), ToTorchImage(),
                  NormalizeImage(mean, std, np.float32), Convert(torch.float64)], 'label': None})
    plain = Loader(str(coded), batch_size=4, indices=range(4), pipelines={
        'image': [CenterCropRGBImageDecoder((8, 8), 1.0)], 'label': None})
    (out,) = next(iter(loader))
    (base,) = next(iter(plain))
    assert out.dtype == torch.float64 and out.shape == (4, 3, 8, 8)
    expected = (base.astype(np.float64) - mean) / std
    assert np.allclose(out.permute(0, 2, 3, 1).numpy(), expected, atol=1e-5)


def test_corrupt_jpeg_raises_decode_error_in_loop(tmp_path):
    rng = np.random.default_rng(1)

    class Noise:
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), i

    path = tmp_path / 'noise.beton'
    DatasetWriter(str(path), {'image': RGBImageField(write_mode='jpg'), 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(Noise())
    reader = Reader(str(path))
    ptr = int(reader.metadata['f0'][13]['data_ptr'])
    with open(path, 'r+b') as f:       # destroy sample 13's JPEG start-of-image marker
        f.seek(ptr)
        f.write(b'\x00\x00')
    for decoder in (SimpleRGBImageDecoder(), RandomResizedCropRGBImageDecoder((16, 16))):
        loader = Loader(str(path), batch_size=4, num_workers=2, pipelines={'image': [decoder]})
        with pytest.raises(DecodeError, match=r'sample 13 .*JPEG'):
            for _ in loader:
                pass


def test_photos_imagefolder_end_to_end(tmp_path, shared_dir):
    from ffcvx.datasets import ImageFolder

    photos = shared_dir / 'data' / 'photos'
    dataset = ImageFolder(str(photos))
    path = tmp_path / 'photos.beton'
    DatasetWriter(str(path), {'image': RGBImageField(write_mode='jpg', max_resolution=256),
                              'label': IntField()},
                  num_workers=2, progress=False).from_indexed_dataset(dataset)
    loader = Loader(str(path), batch_size=8, num_workers=2, order=OrderOption.RANDOM, seed=0,
                    drop_last=False, backend='turbojpeg',
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((64, 64)), RandomHorizontalFlip(),
                                         ToTensor(), ToTorchImage()],
                               'label': [IntDecoder(), ToTensor(), Squeeze()]})
    labels = []
    for images, batch_labels in loader:
        assert images.shape[1:] == (3, 64, 64)
        assert images.float().std() > 1          # real pixels, not an empty buffer
        labels.extend(batch_labels.tolist())
    assert sorted(labels) == sorted(dataset[i][1] for i in range(len(dataset)))


@pytest.mark.parametrize('probability', [0.0, 1.0])
def test_flip_after_simple_decoder_runs_in_place(golden_dir, probability):
    """Not fusable (no resize): the flip op mirrors each image of the batch itself."""
    path = str(golden_dir / 'multipage.beton')
    plain = Loader(path, batch_size=8, pipelines={'image': [SimpleRGBImageDecoder()], 'label': None,
                                                  'blob': None})
    (base,) = next(iter(plain))
    base = base.copy()
    flipping = Loader(path, batch_size=8, pipelines={
        'image': [SimpleRGBImageDecoder(), RandomHorizontalFlip(probability)], 'label': None, 'blob': None})
    assert len(flipping.graph.pipelines[0].steps) == 2
    (out,) = next(iter(flipping))
    assert np.array_equal(out, base[:, :, ::-1] if probability else base)


def test_flip_fused_into_crop_decoder(coded):
    loader = Loader(str(coded), batch_size=8, indices=range(8), pipelines={
        'image': [CenterCropRGBImageDecoder((20, 20), 1.0), RandomHorizontalFlip(0.5)], 'label': None})
    steps = loader.graph.pipelines[0].steps
    assert len(steps) == 1 and steps[0].operation.flip_prob == 0.5
