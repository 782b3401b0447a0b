"""Small indexable datasets to feed :class:`ffcvx.writer.DatasetWriter`.

Both classes have ``__len__`` and ``__getitem__`` and return one tuple per
sample, in the order ``(image, label)``, ready for
``DatasetWriter.from_indexed_dataset``. Both are picklable and cheap to copy
into writer processes. :class:`ImageFolder` returns image *paths*: the image
fields read the file themselves, so a JPEG can be stored byte for byte
(``jpeg_passthrough``) or shrunk from a reduced-scale decode.
"""
import gzip
import os

import numpy as np

__all__ = ['ImageFolder', 'FashionMNIST', 'IMAGE_EXTENSIONS', 'FASHION_MNIST_ROOT']

#: File name endings (lower case) that :class:`ImageFolder` treats as images.
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.pgm', '.pbm', '.bmp', '.gif',
                    '.tif', '.tiff', '.webp')

#: Where Debian's ``dataset-fashion-mnist`` package installs the files.
FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist'


class ImageFolder:
    """Images in one sub-directory per class: ``root/<class>/**/<image>``.

    Class names are the sub-directory names, sorted; the label of an image is
    the position of its class in that order. Files are found recursively and
    kept if their name ends in one of :data:`IMAGE_EXTENSIONS` (any case);
    hidden files and directories are skipped.

    Parameters
    ----------
    root : str or os.PathLike
        Directory holding the class sub-directories.

    Attributes
    ----------
    classes : list of str
        Class names, sorted.
    class_to_idx : dict of str to int
        Label of each class.
    samples : list of (str, int)
        Image path and label, sorted by class, then by path.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a directory.
    ValueError
        If ``root`` has no class sub-directory holding an image.
    """

    def __init__(self, root):
        self.root = os.fspath(root)
        if not os.path.isdir(self.root):
            raise FileNotFoundError(f"image folder {self.root!r} does not exist or is not a directory")
        classes = sorted(entry.name for entry in os.scandir(self.root)
                         if entry.is_dir() and not entry.name.startswith('.'))
        samples = []
        for label, name in enumerate(classes):
            for path in sorted(_image_files(os.path.join(self.root, name))):
                samples.append((path, label))
        if not samples:
            raise ValueError(
                f"no images found in {self.root!r}: expected one sub-directory per class holding "
                f"files ending in {', '.join(IMAGE_EXTENSIONS)}")
        self.classes = classes
        self.class_to_idx = {name: label for label, name in enumerate(classes)}
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        """``(str path, int label)`` of image ``index``.

        The path, not decoded pixels: :class:`~ffcvx.fields.RGBImageField`
        and :class:`~ffcvx.fields.GrayscaleImageField` take encoded inputs
        and decode only when they must (spec/beton.md FMT-090). Open it with
        ``PIL.Image.open`` where pixels are needed.
        """
        return self.samples[index]

    def __repr__(self):
        return f"ImageFolder({self.root!r}: {len(self)} images, {len(self.classes)} classes)"


def _image_files(directory):
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith('.')]
        for name in filenames:
            if not name.startswith('.') and name.lower().endswith(IMAGE_EXTENSIONS):
                yield os.path.join(dirpath, name)


#: IDX magic numbers: 0x00000803 (unsigned bytes, 3 dims) and 0x00000801 (1 dim).
_IDX_IMAGES_MAGIC = 0x0803
_IDX_LABELS_MAGIC = 0x0801


def read_idx(path, magic, ndim):
    """Read a gzipped IDX file of unsigned bytes (the MNIST file format).

    The file starts with a big-endian ``uint32`` magic number (``0x08`` for
    unsigned bytes in byte 2, the number of dimensions in byte 3), then one
    big-endian ``uint32`` per dimension, then the data in C order.

    Parameters
    ----------
    path : str
        A ``.gz`` file.
    magic : int
        Expected magic number, e.g. ``0x803`` for images.
    ndim : int
        Number of dimensions the magic number announces.

    Returns
    -------
    ndarray[uint8], shape given by the header

    Raises
    ------
    ValueError
        If the magic number or the data length is wrong.
    """
    with gzip.open(path, 'rb') as f:
        data = f.read()
    header_bytes = 4 * (1 + ndim)
    if len(data) < header_bytes:
        raise ValueError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    header = np.frombuffer(data, dtype='>u4', count=1 + ndim)
    if int(header[0]) != magic:
        raise ValueError(f"{path}: IDX magic number {int(header[0]):#010x}, expected {magic:#010x}")
    shape = tuple(int(d) for d in header[1:])
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header_bytes != expected:
        raise ValueError(f"{path}: {len(data) - header_bytes} data bytes, the header {shape} "
                         f"announces {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_bytes).reshape(shape)


class FashionMNIST:
    """Fashion-MNIST from its four gzipped IDX files.

    Parameters
    ----------
    root : str or os.PathLike
        Directory with ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
        ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``.
        Default: where Debian's ``dataset-fashion-mnist`` installs them.
    train : bool
        The 60,000 training samples, else the 10,000 test samples.

    Attributes
    ----------
    images : ndarray[uint8], shape (N, 28, 28)
    labels : ndarray[uint8], shape (N,), values 0..9
    classes : tuple of str
        Class names by label.

    Raises
    ------
    FileNotFoundError
        If a file is missing (the message says how to install the data set).
    ValueError
        If a file is not a valid IDX file or images and labels disagree in count.
    """

    classes = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
               'Sneaker', 'Bag', 'Ankle boot')

    def __init__(self, root=FASHION_MNIST_ROOT, train=True):
        self.root = os.fspath(root)
        self.train = bool(train)
        self._images = self._labels = None
        self._load()

    def _paths(self):
        prefix = 'train' if self.train else 't10k'
        return (os.path.join(self.root, f'{prefix}-images-idx3-ubyte.gz'),
                os.path.join(self.root, f'{prefix}-labels-idx1-ubyte.gz'))

    def _load(self):
        image_path, label_path = self._paths()
        for path in (image_path, label_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"Fashion-MNIST not found at {self.root}: {os.path.basename(path)} is missing; "
                    f"install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
                    f"or pass the directory holding the four *-ubyte.gz files")
        images = read_idx(image_path, _IDX_IMAGES_MAGIC, 3)
        labels = read_idx(label_path, _IDX_LABELS_MAGIC, 1)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{image_path} holds {images.shape[0]} images but {label_path} "
                             f"{labels.shape[0]} labels")
        if labels.size and int(labels.max()) >= len(self.classes):
            raise ValueError(f"{label_path}: label {int(labels.max())} is out of range 0..9")
        self._images, self._labels = images, labels

    @property
    def images(self):
        if self._images is None:
            self._load()
        return self._images

    @property
    def labels(self):
        if self._labels is None:
            self._load()
        return self._labels

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, index):
        """``(ndarray[uint8] of shape (28, 28), int label)`` of sample ``index``."""
        return self.images[index], int(self.labels[index])

    def __getstate__(self):
        # the arrays are re-read from disk after unpickling rather than pickled
        return {'root': self.root, 'train': self.train}

    def __setstate__(self, state):
        self.root = state['root']
        self.train = state['train']
        self._images = self._labels = None

    def __repr__(self):
        split = 'train' if self.train else 'test'
        return f"FashionMNIST({self.root!r}, {split}: {len(self)} samples)"
