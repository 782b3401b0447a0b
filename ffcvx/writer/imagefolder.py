"""The ImageFolder fast path of ``DatasetWriter.from_indexed_dataset`` (torchvision's, ffcvx's).

``ImageFolder(root)[i]`` opens ``samples[i][0]`` with Pillow and converts it to
RGB (torchvision's ``pil_loader``), only for the image field to turn that
image into a JPEG again. When nothing else happens in ``__getitem__`` (no
transform, the default loader, no override), the writer hands the field the
file's path instead: the field reads the file itself, so a JPEG that must
shrink is decoded at a reduced DCT scale and a JPEG may pass through
(``jpeg_passthrough``). Same samples, labels and order as ``dataset[i]``.

The image stored is the one ``dataset[i]`` gives: the field converts
whatever Pillow decodes to RGB (or luma) as ``pil_loader`` does, which gives
the same pixels for gray, palette, RGBA, CMYK and 1-bit files. A file that
Pillow decodes to more than 8 bits per channel (a 16-bit PNG) is refused by
the field (converting it would clip) but not by ``pil_loader`` (which clips):
such a sample is read again with ``dataset[i]``. A JPEG that must shrink is
decoded at a reduced DCT scale before the area shrink, so its pixels differ
from a full decode's by a few levels.

``ffcvx.datasets.ImageFolder`` (``ffcvx convert imagefolder``) needs no fast
path: it yields paths itself. torchvision is imported only when a class of
the dataset's MRO comes from it (so it is already imported).
"""
import logging
import os

from ..fields import GrayscaleImageField, ImageField, RGBImageField
from .sources import IndexedSource

__all__ = ['FALLBACK', 'ImageFolderSource', 'folder_fast_path', 'indexed_source']

_log = logging.getLogger(__name__)

#: ``SampleEncoder.counts`` key of a fast-path sample that was read with ``dataset[i]``.
FALLBACK = (None, 'read with dataset[i]')


def _takes_paths(handler):
    """Whether ``handler`` is an image field that reads a path as it reads a PIL image."""
    if not isinstance(handler, ImageField):
        return False
    kind = type(handler)
    # a subclass that changes how inputs become pixels could treat the file's own PIL
    # mode (L, P, CMYK) differently from the RGB image dataset[i] gives
    return (kind.encode is ImageField.encode and kind.encode_with_rng is ImageField.encode_with_rng
            and kind._encoded is ImageField._encoded
            and kind._pixels in (RGBImageField._pixels, GrayscaleImageField._pixels))


def _from_module(dataset, prefix):
    """The first class of ``dataset``'s MRO defined in a module under ``prefix``, or None."""
    for cls in type(dataset).__mro__:
        module = getattr(cls, '__module__', None) or ''
        if module == prefix or module.startswith(prefix + '.'):
            return cls
    return None


def folder_fast_path(dataset, handlers):
    """The fast path ``dataset`` may be read with, by path; None for ``dataset[i]``.

    Parameters
    ----------
    dataset : object
        What ``from_indexed_dataset`` was given.
    handlers : list of Field
        The writer's fields, in order.

    Returns
    -------
    str or None
        ``'torchvision <class>'`` (the torchvision class in the dataset's
        MRO: ``ImageFolder``, ``DatasetFolder``, ``ImageNet``) or ``'ffcvx
        ImageFolder'`` when the writer has two fields, the first an image
        field that takes paths (:class:`RGBImageField`,
        :class:`GrayscaleImageField`), and ``dataset`` is

        - a torchvision ``DatasetFolder`` (or subclass) whose ``__getitem__``
          is torchvision's, whose ``loader`` is ``default_loader`` (with the
          PIL image backend) or ``pil_loader``, and whose ``transform`` and
          ``target_transform`` are None.

        Its ``__getitem__`` reads ``samples[i]`` with Pillow and converts it to
        RGB, as the field does with a path. None otherwise.
    """
    if len(handlers) != 2 or not _takes_paths(handlers[0]):
        return None
    # torchvision is imported only when one of the dataset's classes comes from it
    base = _from_module(dataset, 'torchvision')
    if base is None:
        return None
    import torchvision
    from torchvision.datasets.folder import DatasetFolder, default_loader, pil_loader
    if not isinstance(dataset, DatasetFolder):
        return None
    if type(dataset).__getitem__ is not DatasetFolder.__getitem__:
        return None
    if getattr(dataset, 'transform', None) is not None:
        return None
    if getattr(dataset, 'target_transform', None) is not None:
        return None
    loader = getattr(dataset, 'loader', None)
    if loader is default_loader:
        # default_loader reads with accimage when that backend is chosen: other pixels
        if torchvision.get_image_backend() == 'accimage':
            return None
    elif loader is not pil_loader:
        return None
    return f'torchvision {base.__name__}'


def indexed_source(dataset, indices, chunksize, handlers, field_names, by_path=True):
    """The source of ``from_indexed_dataset``: by path when it may be and ``by_path``, else
    ``dataset[i]``."""
    fast_path = folder_fast_path(dataset, handlers) if by_path else None
    if fast_path is None:
        return IndexedSource(dataset, indices, chunksize)
    _log.debug("reading the images of %s by path (%s fast path)", type(dataset).__name__,
               fast_path)
    return ImageFolderSource(dataset, indices, chunksize, field_names[0], fast_path)


class ImageFolderSource(IndexedSource):
    """``(dataset.samples[i][0], dataset.samples[i][1])`` goes to destination ``pos``.

    Parameters
    ----------
    dataset : torchvision.datasets.DatasetFolder
        One for which :func:`folder_fast_path` gives a name.
    indices : ndarray[int], shape (num_samples,)
    chunksize : int
    image_name : str
        Name of the image field (field 0).
    fast_path : str
        What :func:`folder_fast_path` said (for the closing line).
    """

    def __init__(self, dataset, indices, chunksize, image_name, fast_path):
        super().__init__(dataset, indices, chunksize)
        self.image_name = image_name
        self.fast_path = fast_path

    def _read(self, src, cursor):
        """``(path, target)`` of sample ``src``; the cursor names the file from here on."""
        path, target = self.dataset.samples[src]      # what DatasetFolder.__getitem__ reads
        cursor.where = f'dataset[{src}], file {os.fsdecode(path)!r}'
        return path, target

    def encode_sample(self, encoder, dest, sample):
        """Store the file at ``sample[0]``; one the field refuses as too deep: ``dataset[i]``."""
        try:
            encoder.encode(dest, sample)
        except TypeError:
            # Pillow decoded more than 8 bits per channel, which the field refuses and
            # pil_loader clips to RGB: store what dataset[i] gives, as the slow path would
            if encoder.cursor.field != self.image_name:
                raise
            src = self.indices[dest]
            encoder.cursor.where, encoder.cursor.field = f'dataset[{src}]', None
            encoder.encode(dest, self.dataset[src])
            encoder.count(*FALLBACK)
