"""The torchvision ImageFolder fast path of ``from_indexed_dataset`` (files read by path).

A small ImageFolder is made from the shared photos (several classes, JPEG
and PNG, large ones that FFCV's recipe shrinks to 256 and small ones that
stay as they are) plus files whose PIL mode is not RGB: gray and CMYK JPEGs,
palette and RGBA PNGs, and a 16-bit PNG (which the field refuses by path, so
that sample is read with ``dataset[i]``). The fast path must store what the
slow path (``dataset[i]``, torchvision's ``pil_loader``) stores: same
samples, labels and order; raw and PNG pixels identical where nothing
shrinks; JPEG modes and shrunk images within JPEG noise (PSNR > 30 dB: the
fast path decodes a JPEG that must shrink at a reduced DCT scale first; a
wrong image, channel order or size gives < 15 dB).
"""
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torchvision = pytest.importorskip('torchvision')
from torchvision.datasets import DatasetFolder, ImageFolder  # noqa: E402
from torchvision.datasets.folder import default_loader  # noqa: E402

from ffcvx.fields import GrayscaleImageField, IntField, RGBImageField  # noqa: E402
from ffcvx.reader import Reader  # noqa: E402
from ffcvx.writer import DatasetWriter  # noqa: E402

FAST = 'torchvision ImageFolder'
SMALL = (120, 90)           # (W, H): below max_resolution=256, stored at its size


def _recipe(mode='jpg', field=RGBImageField):
    """FFCV's ImageNet recipe (``write_imagenet.py``), in ``mode``."""
    return {'image': field(write_mode=mode, max_resolution=256, jpeg_quality=90),
            'label': IntField()}


@pytest.fixture(scope='module')
def folder(shared_dir, tmp_path_factory):
    """``(root, big)``: an ImageFolder tree of the shared photos; ``big``: files that shrink."""
    photos = sorted(Path(shared_dir, 'data', 'photos').glob('*/*.jpg'))
    if not photos:
        pytest.fail(f"no photos under {shared_dir}/data/photos: the ImageFolder test needs them")
    root = tmp_path_factory.mktemp('folder')
    big = set()
    for k, photo in enumerate(photos):
        image = Image.open(photo).convert('RGB')
        target = root / photo.parent.name
        target.mkdir(exist_ok=True)
        stem = target / photo.stem
        if k % 4 == 0:
            # as it is: larger than 256, so it shrinks
            shutil.copy(photo, f'{stem}.jpg')
            assert max(image.size) > 256, photo
            big.add(f'{stem}.jpg')
            continue
        small = image.resize(SMALL, Image.BILINEAR)
        kind = k % 4
        if kind == 1:
            small.save(f'{stem}.jpg', quality=92)
        elif kind == 2:
            small.save(f'{stem}.png')
        else:
            small.convert('L').save(f'{stem}_gray.jpg', quality=90)
    # one of each PIL mode that pil_loader converts to RGB
    extra = root / 'zmodes'
    extra.mkdir()
    base = Image.open(photos[0]).convert('RGB').resize(SMALL, Image.BILINEAR)
    base.convert('CMYK').save(extra / 'cmyk.jpg', quality=90)
    base.convert('P').save(extra / 'palette.png')
    rgba = base.copy()
    rgba.putalpha(Image.linear_gradient('L').resize(SMALL))
    rgba.save(extra / 'rgba.png')
    base.convert('1').save(extra / 'bilevel.png')
    wide = (np.asarray(base.convert('L')).astype(np.uint16) * 257)
    Image.fromarray(wide).save(extra / 'gray16.png')       # mode I;16 when read
    return root, big


def _write(path, dataset, fields, workers=1, **kwargs):
    writer = DatasetWriter(str(path), fields, num_workers=workers, progress=False, seed=0)
    stats = writer.from_indexed_dataset(dataset, chunksize=5, **kwargs)
    assert stats is writer.last_write
    return stats


def _read(path, custom=None):
    """``(labels int array, [(mode, pixels (H, W, C) uint8)])`` of a written file."""
    reader = Reader(str(path), custom_handlers=custom or {})
    images = []
    channels = reader.handlers['image'].channels
    for i, record in enumerate(reader.metadata['f0']):
        data = reader.read_sample_region(i, 'image')
        w, h = int(record['width']), int(record['height'])
        if record['mode'] == 1:
            pixels = data.reshape(h, w, channels)
        else:
            decoded = Image.open(io.BytesIO(data.tobytes()))
            pixels = np.asarray(decoded.convert('RGB' if channels == 3 else 'L'))
            pixels = pixels.reshape(h, w, channels)
        images.append((int(record['mode']), pixels))
    return reader.metadata['f1'].astype(np.int64), images


def _psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


def _slow(root, **kwargs):
    # the same dataset read with dataset[i]: a loader that is not torchvision's own object
    return ImageFolder(str(root), loader=lambda p: default_loader(p), **kwargs)


@pytest.mark.parametrize('mode,workers', [('jpg', 1), ('jpg', 2), ('raw', 1), ('raw', 2),
                                          ('png', 1)])
def test_fast_path_stores_what_the_slow_path_stores(tmp_path, folder, mode, workers):
    root, big = folder
    fast_ds = ImageFolder(str(root))
    n = len(fast_ds)
    fast = _write(tmp_path / 'fast.beton', fast_ds, _recipe(mode), workers)
    slow = _write(tmp_path / 'slow.beton', _slow(root), _recipe(mode), workers)
    assert fast.fast_path == FAST and slow.fast_path is None
    # the 16-bit PNG is refused by path (8 bits per channel) and read with dataset[i]
    assert fast.read_by_path == n - 1 and slow.read_by_path == 0
    assert fast.num_samples == slow.num_samples == n

    fast_labels, fast_images = _read(tmp_path / 'fast.beton')
    slow_labels, slow_images = _read(tmp_path / 'slow.beton')
    assert fast_labels.tolist() == slow_labels.tolist() == [t for _, t in fast_ds.samples]
    assert len(set(fast_labels.tolist())) >= 5          # several classes
    for (path, _), (fmode, a), (smode, b) in zip(fast_ds.samples, fast_images, slow_images):
        assert fmode == smode and a.shape == b.shape, path
        if mode in ('raw', 'png') and path not in big:
            assert np.array_equal(a, b), path
        else:
            assert _psnr(a, b) > 30, (path, _psnr(a, b))

    # outcomes: the big photos shrink, the others are stored at their size
    stored = 'raw' if mode == 'raw' else 're-encoded'
    expected = {'passed through': 0, 'shrunk': len(big), 're-encoded': 0, 'raw': 0}
    expected[stored] = n - len(big)
    assert fast.outcomes == slow.outcomes == {'image': expected}


def test_gray_field_by_path_equals_by_pil(tmp_path, folder):
    root, big = folder
    fields = _recipe('raw', GrayscaleImageField)
    fast = _write(tmp_path / 'fast.beton', ImageFolder(str(root)), fields)
    slow = _write(tmp_path / 'slow.beton', _slow(root), _recipe('raw', GrayscaleImageField))
    assert fast.fast_path == FAST and slow.fast_path is None
    samples = ImageFolder(str(root)).samples
    for (path, _), (_, a), (_, b) in zip(samples, _read(tmp_path / 'fast.beton')[1],
                                         _read(tmp_path / 'slow.beton')[1]):
        assert a.shape == b.shape, path
        if path not in big:
            assert np.array_equal(a, b), path


class _OwnGetItem(ImageFolder):
    def __getitem__(self, index):
        image, label = super().__getitem__(index)
        return image.transpose(Image.FLIP_LEFT_RIGHT), label


class _PlainSubclass(ImageFolder):
    """A subclass that changes nothing ``__getitem__`` reads: still the fast path."""


class _OwnEncode(RGBImageField):
    def encode(self, destination, field, malloc):
        return super().encode(destination, field, malloc)


def _flip(image):
    return image.transpose(Image.FLIP_LEFT_RIGHT)


@pytest.mark.parametrize('case', ['getitem', 'transform', 'target_transform', 'loader',
                                  'own_encode'])
def test_what_takes_the_slow_path(tmp_path, folder, case):
    root, big = folder
    fields = _recipe('raw')
    dataset = ImageFolder(str(root))
    expect_labels = [t for _, t in dataset.samples]
    if case == 'getitem':
        dataset = _OwnGetItem(str(root))
    elif case == 'transform':
        dataset = ImageFolder(str(root), transform=_flip)
    elif case == 'target_transform':
        dataset = ImageFolder(str(root), target_transform=lambda t: t + 100)
        expect_labels = [t + 100 for t in expect_labels]
    elif case == 'loader':
        dataset = _slow(root)
    elif case == 'own_encode':
        fields = {'image': _OwnEncode(write_mode='raw', max_resolution=256), 'label': IntField()}
    stats = _write(tmp_path / 'x.beton', dataset, fields)
    assert stats.fast_path is None and stats.read_by_path == 0
    custom = {'image': _OwnEncode} if case == 'own_encode' else None
    labels, images = _read(tmp_path / 'x.beton', custom)
    assert labels.tolist() == expect_labels
    if case in ('getitem', 'transform'):
        # the flip happened: dataset[i] was called
        plain = _write(tmp_path / 'plain.beton', ImageFolder(str(root)), _recipe('raw'))
        assert plain.fast_path == FAST
        _, unflipped = _read(tmp_path / 'plain.beton')
        k = next(k for k, (path, _) in enumerate(dataset.samples) if path not in big)
        assert np.array_equal(images[k][1], unflipped[k][1][:, ::-1])


def test_read_by_path_false_calls_dataset_getitem_as_ffcv(tmp_path, folder):
    """read_by_path=False stores FFCV's pixels: those of dataset[i], shrunk from a full decode."""
    root, big = folder
    off = _write(tmp_path / 'off.beton', ImageFolder(str(root)), _recipe('raw'),
                 read_by_path=False)
    slow = _write(tmp_path / 'slow.beton', _slow(root), _recipe('raw'))
    assert off.fast_path is None and off.read_by_path == 0
    off_labels, off_images = _read(tmp_path / 'off.beton')
    slow_labels, slow_images = _read(tmp_path / 'slow.beton')
    assert off_labels.tolist() == slow_labels.tolist()
    assert big and all(np.array_equal(a, b) for (_, a), (_, b) in zip(off_images, slow_images))
    with pytest.raises(TypeError, match='read_by_path'):
        _write(tmp_path / 'bad.beton', ImageFolder(str(root)), _recipe('raw'), read_by_path='no')


def test_fields_that_do_not_fit_take_the_slow_path(tmp_path, folder):
    from ffcvx.errors import WriterError
    from ffcvx.writer.imagefolder import folder_fast_path
    root, _ = folder
    dataset = ImageFolder(str(root))
    image, label = RGBImageField(), IntField()
    assert folder_fast_path(dataset, [image, label]) == FAST
    assert folder_fast_path(dataset, [GrayscaleImageField(), label]) == FAST
    assert not folder_fast_path(dataset, [label, image])
    assert not folder_fast_path(dataset, [image, label, IntField()])
    assert not folder_fast_path(dataset, [_OwnEncode(), label])
    assert not folder_fast_path(list(dataset.samples), [image, label])
    # three fields for a dataset of pairs: today's error, from dataset[i]
    with pytest.raises(WriterError, match=r'sample 0 \(dataset\[0\]\) has 2 values'):
        _write(tmp_path / 'x.beton', dataset, dict(_recipe(), again=IntField()))
    assert os.listdir(tmp_path) == []


def test_accimage_backend_check_reads_the_backend(folder, monkeypatch):
    from ffcvx.writer.imagefolder import folder_fast_path
    root, _ = folder
    handlers = list(_recipe().values())
    dataset = ImageFolder(str(root))
    assert folder_fast_path(dataset, handlers) == FAST
    monkeypatch.setattr(torchvision, 'get_image_backend', lambda: 'accimage')
    assert not folder_fast_path(dataset, handlers)


def test_plain_subclass_and_datasetfolder_take_the_fast_path(tmp_path, folder):
    root, _ = folder
    stats = _write(tmp_path / 'a.beton', _PlainSubclass(str(root)), _recipe())
    assert stats.fast_path == FAST
    loose = DatasetFolder(str(root), loader=default_loader, extensions=('.jpg', '.png'))
    stats = _write(tmp_path / 'b.beton', loose, _recipe())
    assert stats.fast_path == 'torchvision DatasetFolder'
    assert _read(tmp_path / 'b.beton')[0].tolist() == [t for _, t in loose.samples]


def test_indices_and_shuffle_follow_the_samples(tmp_path, folder):
    root, _ = folder
    dataset = ImageFolder(str(root))
    indices = np.arange(len(dataset))[::-3]
    fast = _write(tmp_path / 'fast.beton', dataset, _recipe('raw'), indices=indices)
    _write(tmp_path / 'slow.beton', _slow(root), _recipe('raw'), indices=indices)
    assert fast.fast_path == FAST and fast.num_samples == len(indices)
    fast_labels, fast_images = _read(tmp_path / 'fast.beton')
    slow_labels, slow_images = _read(tmp_path / 'slow.beton')
    assert fast_labels.tolist() == slow_labels.tolist() == [dataset.samples[i][1] for i in indices]
    for (_, a), (_, b) in zip(fast_images, slow_images):
        assert a.shape == b.shape
    _write(tmp_path / 'fs.beton', dataset, _recipe('raw'), shuffle_indices=True)
    _write(tmp_path / 'ss.beton', _slow(root), _recipe('raw'), shuffle_indices=True)
    assert (_read(tmp_path / 'fs.beton')[0].tolist() == _read(tmp_path / 'ss.beton')[0].tolist())


def test_closing_line_names_the_fast_path(tmp_path, folder, capsys, monkeypatch):
    monkeypatch.delenv('TQDM_DISABLE', raising=False)
    root, big = folder
    dataset = ImageFolder(str(root))
    n = len(dataset)
    writer = DatasetWriter(str(tmp_path / 'x.beton'), _recipe(), num_workers=1, seed=0)
    writer.from_indexed_dataset(dataset, chunksize=5)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('wrote ')]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f'wrote {n} samples to x.beton in ')
    assert 'img/s' in line
    assert (f'image: 0 passed through, {len(big)} shrunk, {n - len(big)} re-encoded, 0 raw'
            in line), line
    assert (f'read {n - 1} images by path (torchvision ImageFolder fast path; 1 with dataset[i])'
            in line), line
    assert 'img/s]' in err       # the bar's rate


def test_no_torchvision_import_for_other_datasets(tmp_path):
    # the check looks at the classes' modules first: nothing of torchvision is touched
    import subprocess
    import sys
    code = ("import sys, numpy as np\n"
            "from ffcvx.writer import DatasetWriter\n"
            "from ffcvx.fields import RGBImageField, IntField\n"
            "ds = [(np.zeros((4, 4, 3), np.uint8), 1)] * 3\n"
            f"DatasetWriter({str(tmp_path / 'x.beton')!r}, {{'image': RGBImageField(), "
            "'label': IntField()}, num_workers=1, progress=False).from_indexed_dataset(ds)\n"
            "assert 'torchvision' not in sys.modules, 'torchvision was imported'\n")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    subprocess.run([sys.executable, '-c', code], check=True, env=env, timeout=120)


def test_ffcvx_image_folder_yields_paths_and_refuses_16_bit(tmp_path, folder):
    """ffcvx's own ImageFolder yields paths (no PIL decode in dataset[i]); a 16-bit PNG,
    which converting to 8 bits would clip, is a WriterError naming the sample and file
    (torchvision's pil_loader clips it, so the torchvision fast path reads it with dataset[i])."""
    from ffcvx.datasets import ImageFolder as FfcvxFolder
    from ffcvx.errors import WriterError

    root, _ = folder
    dataset = FfcvxFolder(str(root))
    index = next(i for i, (p, _) in enumerate(dataset.samples) if p.endswith('gray16.png'))
    assert dataset[index] == dataset.samples[index]
    with pytest.raises(WriterError) as caught:
        _write(tmp_path / 'out.beton', dataset, _recipe('raw'), workers=2)
    assert f'sample {index}' in str(caught.value) and 'gray16.png' in str(caught.value)
    assert "mode 'I;16'" in str(caught.value)
    assert os.listdir(tmp_path) == []
