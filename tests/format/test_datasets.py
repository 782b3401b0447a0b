"""ffcvx.datasets: ImageFolder and FashionMNIST."""
import gzip
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from ffcvx.datasets import FASHION_MNIST_ROOT, FashionMNIST, ImageFolder, read_idx
from ffcvx.testing import shared_dir
HAVE_FASHION_MNIST = os.path.isfile(os.path.join(FASHION_MNIST_ROOT, 'train-images-idx3-ubyte.gz'))


def make_folder(root):
    """b/ (2 images, one nested), a/ (gray PNG + RGBA PNG), c/ with no images, plus noise."""
    rng = np.random.default_rng(0)
    (root / 'b' / 'nested').mkdir(parents=True)
    (root / 'a').mkdir()
    (root / 'c').mkdir()
    (root / '.hidden').mkdir()
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(root / 'b' / 'x.JPG')
    Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)).save(root / 'b' / 'nested' / 'y.png')
    Image.fromarray(rng.integers(0, 256, (7, 8), dtype=np.uint8)).save(root / 'a' / 'gray.png')
    Image.fromarray(rng.integers(0, 256, (4, 4, 4), dtype=np.uint8), 'RGBA').save(root / 'a' / 'rgba.png')
    Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(root / '.hidden' / 'z.png')
    (root / 'a' / 'notes.txt').write_text('not an image')
    (root / 'c' / 'README').write_text('nothing here')
    (root / 'top.png').write_bytes(b'')   # a file at the top level is not a class


def test_image_folder(tmp_path):
    """Samples are (path, label): the image fields read the files, never decoded here."""
    make_folder(tmp_path)
    ds = ImageFolder(tmp_path)
    assert ds.classes == ['a', 'b', 'c']
    assert ds.class_to_idx == {'a': 0, 'b': 1, 'c': 2}
    assert len(ds) == 4
    assert [os.path.relpath(p, tmp_path) for p, _ in ds.samples] == \
        ['a/gray.png', 'a/rgba.png', 'b/nested/y.png', 'b/x.JPG']
    assert [label for _, label in ds.samples] == [0, 0, 1, 1]
    assert [ds[i] for i in range(len(ds))] == ds.samples
    assert all(isinstance(path, str) for path, _ in ds.samples)


def test_image_folder_writes_rgb_of_any_mode(tmp_path):
    """Gray, RGBA and RGB files stored as RGB pixels by the field reading the paths."""
    from ffcvx.fields import IntField, RGBImageField
    from ffcvx.reader import Reader
    from ffcvx.writer import DatasetWriter
    make_folder(tmp_path / 'src')
    ds = ImageFolder(tmp_path / 'src')
    out = tmp_path / 'raw.beton'
    DatasetWriter(str(out), {'image': RGBImageField('raw'), 'label': IntField()}, num_workers=1,
                  progress=False).from_indexed_dataset(ds)
    reader = Reader(out)
    md = reader.metadata['f0']
    assert list(zip(md['width'].tolist(), md['height'].tolist())) == [(8, 7), (4, 4), (6, 5), (12, 10)]
    for i, (path, _) in enumerate(ds.samples):
        with Image.open(path) as image:
            expected = np.asarray(image.convert('RGB'))
        stored = reader.read_sample_region(i, 'image').reshape(expected.shape)
        assert np.array_equal(stored, expected)
    gray = reader.read_sample_region(0, 'image').reshape(7, 8, 3)
    assert np.array_equal(gray[..., 0], gray[..., 2])


def test_image_folder_pickles(tmp_path):
    make_folder(tmp_path)
    ds = ImageFolder(tmp_path)
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.samples == ds.samples
    assert copy[3] == ds[3]


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='does not exist'):
        ImageFolder(tmp_path / 'missing')
    (tmp_path / 'cls').mkdir()
    (tmp_path / 'cls' / 'a.txt').write_text('x')
    with pytest.raises(ValueError, match='no images found'):
        ImageFolder(tmp_path)


def test_image_folder_photos():
    photos = str(shared_dir('data', 'photos'))    # SharedDirNotFound names what is missing
    ds = ImageFolder(photos)
    assert len(ds) == 31
    assert ds.classes == ['animal', 'object', 'person', 'scene', 'science', 'texture']
    path, label = ds[len(ds) - 1]
    assert path.startswith(photos) and label == 5


def write_idx(path, array, magic):
    header = np.array([magic, *array.shape], dtype='>u4').tobytes()
    with gzip.open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_fake_mnist(root, n_train=6, n_test=3, train_magic=0x803):
    rng = np.random.default_rng(1)
    data = {}
    for prefix, n, magic in (('train', n_train, train_magic), ('t10k', n_test, 0x803)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(root / f'{prefix}-images-idx3-ubyte.gz', images, magic)
        write_idx(root / f'{prefix}-labels-idx1-ubyte.gz', labels, 0x801)
        data[prefix] = (images, labels)
    return data


def test_fashion_mnist_synthetic(tmp_path):
    data = make_fake_mnist(tmp_path)
    for train, prefix in ((True, 'train'), (False, 't10k')):
        ds = FashionMNIST(tmp_path, train=train)
        images, labels = data[prefix]
        assert len(ds) == len(labels)
        for i in range(len(ds)):
            image, label = ds[i]
            assert image.dtype == np.uint8 and image.shape == (28, 28)
            assert np.array_equal(image, images[i]) and label == int(labels[i])
            assert isinstance(label, int)


def test_fashion_mnist_pickles_without_arrays(tmp_path):
    make_fake_mnist(tmp_path)
    ds = FashionMNIST(tmp_path)
    blob = pickle.dumps(ds)
    assert len(blob) < 1000
    copy = pickle.loads(blob)
    assert len(copy) == len(ds) and np.array_equal(copy[2][0], ds[2][0]) and copy[2][1] == ds[2][1]


def test_fashion_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        FashionMNIST(tmp_path)
    make_fake_mnist(tmp_path, train_magic=0x801 + 0x100)
    with pytest.raises(ValueError, match='magic'):
        FashionMNIST(tmp_path, train=True)
    write_idx(tmp_path / 't10k-labels-idx1-ubyte.gz', np.zeros(5, np.uint8), 0x801)
    with pytest.raises(ValueError, match='3 images but .* 5 labels'):
        FashionMNIST(tmp_path, train=False)


def test_read_idx_length_check(tmp_path):
    path = tmp_path / 'bad.gz'
    with gzip.open(path, 'wb') as f:
        f.write(np.array([0x803, 2, 28, 28], dtype='>u4').tobytes() + bytes(100))
    with pytest.raises(ValueError, match='data bytes'):
        read_idx(str(path), 0x803, 3)


@pytest.mark.skipif(not HAVE_FASHION_MNIST, reason='Debian dataset-fashion-mnist not installed')
def test_fashion_mnist_real():
    train = FashionMNIST()
    test = FashionMNIST(train=False)
    assert len(train) == 60000 and len(test) == 10000
    image, label = train[0]
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert label == 9                        # the first training sample is an ankle boot
    assert test[0][1] == 9
    assert np.bincount(train.labels, minlength=10).tolist() == [6000] * 10
    assert np.bincount(test.labels, minlength=10).tolist() == [1000] * 10
