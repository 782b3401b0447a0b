"""Bad image files given by path: a ``WriterError`` naming the sample and the path, nothing on disk.

Each bad file sits at sample 5 of 11 paths (the others good JPEGs), written
with ``from_indexed_dataset`` in the calling process and with 2 workers, and
through the torchvision ImageFolder fast path. Tests run as root, so a file
without read permission is no error here; the unreadable cases are a missing
file, a dangling symlink, a directory, a FIFO and a character device (the
last two would block or never end if opened: they are refused before).
Every write runs under an alarm, so a hang fails the test instead of the run.
"""
import io
import os
import signal
import struct
import zlib
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from ffcvx.errors import WriterError
from ffcvx.fields import GrayscaleImageField, IntField, RGBImageField
from ffcvx.writer import DatasetWriter

BAD_AT = 5
#: Seconds a write may take before the test calls it a hang.
HANG_S = 120


def _good_jpeg():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:24, 0:32]
    array = np.stack([np.clip(rng.uniform(60, 180) + (y - x), 0, 255) for _ in range(3)], -1)
    out = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(out, format='JPEG', quality=90)
    return out.getvalue()


def _png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def _make_bad(folder, case):
    """Create the bad input ``case`` in ``folder``; ``(path, words the message must hold)``."""
    good = _good_jpeg()
    path = folder / {'missing': 'missing.jpg', 'dangling_symlink': 'link.jpg',
                     'directory': 'adir.jpg', 'truncated_jpeg': 'truncated.jpg',
                     'text_as_jpeg': 'notes.jpg', 'svg': 'drawing.svg', 'empty_file': 'empty.jpg',
                     'zero_size_jpeg': 'zero.jpg', 'zero_width_png': 'zero.png',
                     'fifo': 'pipe.jpg', 'char_device': 'unused'}[case]
    if case == 'missing':
        words = ['FileNotFoundError', 'No such file']
    elif case == 'dangling_symlink':
        os.symlink(folder / 'gone.jpg', path)
        words = ['FileNotFoundError', 'No such file']
    elif case == 'directory':
        path.mkdir()
        words = ['IsADirectoryError', 'it is a directory']
    elif case == 'truncated_jpeg':
        path.write_bytes(good[:len(good) // 2])
        words = ['truncated or corrupt']
    elif case == 'text_as_jpeg':
        path.write_text('these are notes, not an image\n')
        words = ['not an image format']
    elif case == 'svg':
        path.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>\n')
        words = ['not an image format']
    elif case == 'empty_file':
        path.write_bytes(b'')
        words = ['not an image format', '0 bytes']
    elif case == 'zero_size_jpeg':
        sof = good.find(b'\xff\xc0')
        data = bytearray(good)
        data[sof + 5:sof + 9] = b'\x00\x00\x00\x00'      # height and width 0 in the SOF
        path.write_bytes(bytes(data))
        words = ['empty image', '0x0 pixels']
    elif case == 'zero_width_png':
        ihdr = struct.pack('>IIBBBBB', 0, 10, 8, 2, 0, 0, 0)   # width 0, height 10, RGB
        path.write_bytes(b'\x89PNG\r\n\x1a\n' + _png_chunk(b'IHDR', ihdr)
                         + _png_chunk(b'IDAT', zlib.compress(b'')) + _png_chunk(b'IEND', b''))
        words = ['ValueError']
    elif case == 'fifo':
        os.mkfifo(path)
        words = ['a FIFO (named pipe), not a regular file']
    elif case == 'char_device':
        path = '/dev/zero'
        words = ['a character device, not a regular file']
    return str(path), words


CASES = ['missing', 'dangling_symlink', 'directory', 'truncated_jpeg', 'text_as_jpeg', 'svg',
         'empty_file', 'zero_size_jpeg', 'zero_width_png', 'fifo', 'char_device']


@contextmanager
def _no_hang():
    def hang(signum, frame):
        raise TimeoutError(f"the write hung for {HANG_S} s")
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class _Paths:
    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return self.paths[i], int(i)


def _good_files(folder, count, prefix='good'):
    good = _good_jpeg()
    paths = []
    for k in range(count):
        path = folder / f'{prefix}{k:02d}.jpg'
        path.write_bytes(good)
        paths.append(str(path))
    return paths


def _check(info, out, bad_path, words, where):
    message = str(info.value)
    assert f'sample {BAD_AT} ({where}' in message, message
    assert "field 'image'" in message, message
    assert repr(bad_path) in message, message
    for word in words:
        assert word in message, message
    assert 'was not written' in message, message
    assert os.listdir(out) == [], os.listdir(out)      # no target, no temporary file


def _write_paths_with_a_bad_one(tmp_path, case, image_field, workers, chunksize):
    """Write 10 good paths and the bad ``case`` at ``BAD_AT``; check the WriterError (_check)."""
    folder = tmp_path / 'in'
    folder.mkdir()
    out = tmp_path / 'out'
    out.mkdir()
    bad, words = _make_bad(folder, case)
    paths = _good_files(folder, 10)
    paths.insert(BAD_AT, bad)
    fields = {'image': image_field, 'label': IntField()}
    with _no_hang(), pytest.raises(WriterError) as info:
        DatasetWriter(str(out / 'x.beton'), fields, num_workers=workers,
                      progress=False).from_indexed_dataset(_Paths(paths), chunksize=chunksize)
    _check(info, out, bad, words, f'dataset[{BAD_AT}]')


@pytest.mark.parametrize('workers', [1, 2])
@pytest.mark.parametrize('case', CASES)
def test_bad_path_is_a_writer_error_naming_sample_and_path(tmp_path, case, workers):
    _write_paths_with_a_bad_one(tmp_path, case, RGBImageField('jpg', max_resolution=256),
                                workers=workers, chunksize=2)


@pytest.mark.parametrize('case', ['truncated_jpeg', 'fifo', 'zero_size_jpeg'])
def test_bad_path_in_the_gray_field(tmp_path, case):
    _write_paths_with_a_bad_one(tmp_path, case, GrayscaleImageField('png'), workers=2, chunksize=3)


@pytest.mark.parametrize('workers', [1, 2])
@pytest.mark.parametrize('case', ['dangling_symlink', 'truncated_jpeg', 'text_as_jpeg',
                                  'zero_size_jpeg', 'fifo'])
def test_bad_file_in_an_image_folder(tmp_path, case, workers):
    torchvision = pytest.importorskip('torchvision')
    root = tmp_path / 'root'
    (root / 'a').mkdir(parents=True)
    (root / 'b').mkdir()
    out = tmp_path / 'out'
    out.mkdir()
    _good_files(root / 'a', 5)
    bad, words = _make_bad(root / 'b', case)     # sorted after class a's 5 files: sample 5
    _good_files(root / 'b', 5, prefix='zz')
    dataset = torchvision.datasets.ImageFolder(str(root))
    assert dataset.samples[BAD_AT][0] == bad
    fields = {'image': RGBImageField('jpg', max_resolution=256, jpeg_quality=90),
              'label': IntField()}
    with _no_hang(), pytest.raises(WriterError) as info:
        DatasetWriter(str(out / 'x.beton'), fields, num_workers=workers,
                      progress=False).from_indexed_dataset(dataset, chunksize=2)
    _check(info, out, bad, words, f'dataset[{BAD_AT}], file {bad!r}')


def test_existing_target_is_kept(tmp_path):
    folder = tmp_path / 'in'
    folder.mkdir()
    out = tmp_path / 'out'
    out.mkdir()
    target = out / 'x.beton'
    target.write_bytes(b'previous contents')
    bad, _ = _make_bad(folder, 'truncated_jpeg')
    paths = _good_files(folder, 10)
    paths.insert(BAD_AT, bad)
    fields = {'image': RGBImageField('raw'), 'label': IntField()}
    with _no_hang(), pytest.raises(WriterError, match='left as it was'):
        DatasetWriter(str(target), fields, num_workers=2,
                      progress=False).from_indexed_dataset(_Paths(paths), chunksize=2)
    assert os.listdir(out) == ['x.beton'] and target.read_bytes() == b'previous contents'
