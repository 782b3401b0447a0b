"""An image whose header disagrees with its record is refused before decoding (spec/backends.md BKD-075).

The damaged files are written from the shared photos and then patched in
place: one sample's JPEG frame header (SOF) or PNG IHDR claims 65500 x 65500
pixels while its record says 160 x 128. Without the check, the imagecodecs
backend allocates ~12.9 GB and decodes for minutes (issue 12); with it, every
backend's Loader raises a DecodeError naming the sample and both sizes, in
well under a second.
"""
import io
import time

import numpy as np
import pytest
from PIL import Image

from ffcvx import status
from ffcvx.decoders.headers import header_size, jpeg_header_size, png_header_size
from ffcvx.errors import DecodeError
from ffcvx.fields import GrayscaleImageField, IntField, RGBImageField
from ffcvx.fields.decoders import (CenterCropRGBImageDecoder, IntDecoder,
                                   RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder)
from ffcvx.loader import Loader, OrderOption
from ffcvx.reader import Reader
from ffcvx.registry import Registry
from ffcvx.transforms import ToTensor
from ffcvx.writer import DatasetWriter

HEIGHT, WIDTH = 128, 160
HUGE = 65500
BAD = 3          # the damaged sample
BACKENDS = ('turbojpeg', 'imagecodecs', 'pillow')


def _photos(shared_dir, count=4):
    paths = sorted(shared_dir.glob('data/photos/*/*.jpg'))[:count]
    assert len(paths) == count, f"need {count} photos under {shared_dir / 'data/photos'}"
    images = []
    for path in paths:
        image = Image.open(path).convert('RGB')
        image = image.resize((WIDTH, HEIGHT), Image.BILINEAR)
        images.append(np.asarray(image))
    return images


def _jpeg_sof_offset(data):
    """Offset of the first SOFn marker's 0xFF in ``data`` (plain Python, independent of headers.py)."""
    p = 2
    while True:
        assert data[p] == 0xFF
        marker = data[p + 1]
        if marker in (0xC0, 0xC1, 0xC2):
            return p
        p += 2 + int.from_bytes(data[p + 2:p + 4], 'big')


def _write(path, images, field):
    DatasetWriter(str(path), {'image': field, 'label': IntField()}, num_workers=1,
                  progress=False).from_indexed_dataset([(im, i) for i, im in enumerate(images)])


def _patch(path, sample, at, payload):
    """Overwrite bytes of ``sample``'s stored image, ``at`` bytes into its region."""
    ptr = int(Reader(str(path)).metadata['f0'][sample]['data_ptr'])   # 'image' is field 0
    with open(path, 'r+b') as f:
        f.seek(ptr + at)
        f.write(payload)


def _region(path, sample):
    return bytes(Reader(str(path)).read_sample_region(sample, 'image'))


@pytest.fixture(scope='module')
def photos(shared_dir):
    return _photos(shared_dir)


@pytest.fixture(scope='module')
def huge_jpeg(photos, tmp_path_factory):
    path = tmp_path_factory.mktemp('header') / 'huge_jpeg.beton'
    _write(path, photos, RGBImageField(write_mode='jpg', jpeg_quality=90))
    sof = _jpeg_sof_offset(_region(path, BAD))
    _patch(path, BAD, sof + 5, HUGE.to_bytes(2, 'big') * 2)
    return path


@pytest.fixture(scope='module')
def huge_png(photos, tmp_path_factory):
    path = tmp_path_factory.mktemp('header') / 'huge_png.beton'
    _write(path, photos, RGBImageField(write_mode='png'))
    _patch(path, BAD, 16, HUGE.to_bytes(4, 'big') * 2)
    return path


def _refusal_seconds(path, backend, decoder, registry=None):
    """Seconds from the good first batch to the DecodeError of the damaged second one."""
    loader = Loader(str(path), batch_size=1, num_workers=1, order=OrderOption.SEQUENTIAL,
                    indices=[0, BAD], batches_ahead=1, backend=backend, decoder_registry=registry,
                    pipelines={'image': [decoder, ToTensor()], 'label': [IntDecoder()]})
    with loader:
        iterator = iter(loader)
        (images, _), = [next(iterator)]
        assert images.shape[0] == 1
        start = time.perf_counter()
        with pytest.raises(DecodeError) as info:
            next(iterator)
        return time.perf_counter() - start, str(info.value)


# --- the header reader itself ---------------------------------------------------------

def test_header_size_of_real_jpegs_and_pngs_equals_pillows(shared_dir):
    checked = 0
    for path in sorted(shared_dir.glob('data/photos/*/*.jpg'))[:12]:
        data = path.read_bytes()
        width, height = Image.open(path).size
        assert jpeg_header_size(np.frombuffer(data, np.uint8)) == (height, width), path
        image = Image.open(path).convert('RGB').resize((width // 8 + 1, height // 8 + 3))
        for fmt, reader in (('PNG', png_header_size), ('JPEG', jpeg_header_size)):
            buffer = io.BytesIO()
            image.save(buffer, fmt, **({'progressive': True} if fmt == 'JPEG' else {}))
            encoded = np.frombuffer(buffer.getvalue(), np.uint8)
            assert reader(encoded) == (image.height, image.width), (path, fmt)
        checked += 1
    assert checked == 12


@pytest.mark.parametrize('cut', [0, 1, 2, 3, 10, 'before-sof'])
def test_truncated_or_garbled_headers_have_no_size(photos, cut):
    buffer = io.BytesIO()
    Image.fromarray(photos[0]).save(buffer, 'JPEG')
    data = buffer.getvalue()
    if cut == 'before-sof':
        data = data[:_jpeg_sof_offset(data) + 4]
    else:
        data = data[:cut]
    assert jpeg_header_size(np.frombuffer(data, np.uint8)) == (-1, -1)
    assert png_header_size(np.frombuffer(b'\x89PNG\r\n\x1a\n' + bytes(8), np.uint8)) == (-1, -1)
    assert header_size(np.frombuffer(data, np.uint8))[1:] == (-1, -1)
    # Neither signature: not this check's to refuse (the backend says corrupt, BKD-021).
    assert header_size(np.zeros(64, np.uint8)) == (False, -1, -1)


def test_fill_bytes_before_a_marker_are_skipped(photos):
    buffer = io.BytesIO()
    Image.fromarray(photos[1]).save(buffer, 'JPEG')
    data = buffer.getvalue()
    padded = data[:2] + b'\xff\xff\xff' + data[2:]
    assert jpeg_header_size(np.frombuffer(padded, np.uint8)) == (HEIGHT, WIDTH)
    # Stray bytes between segments are skipped, as libjpeg skips them.
    sof = _jpeg_sof_offset(data)
    stray = data[:sof] + b'\x00\x17' + data[sof:]
    assert jpeg_header_size(np.frombuffer(stray, np.uint8)) == (HEIGHT, WIDTH)
    assert header_size(np.frombuffer(stray, np.uint8)) == (True, HEIGHT, WIDTH)


def test_the_status_code_is_in_the_one_table():
    row = status.TABLE[status.DECODER_HEADER_MISMATCH]
    assert (row.code, row.source, row.clause) == (-105, status.DECODER, 'BKD-075')
    assert status.describe(-105).startswith('decoder: ')


# --- every backend refuses it through the Loader -------------------------------------

@pytest.mark.parametrize('make_decoder', [
    SimpleRGBImageDecoder,
    lambda: RandomResizedCropRGBImageDecoder((64, 64)),
    lambda: CenterCropRGBImageDecoder((64, 64), 224 / 256),
], ids=['simple', 'random-resized-crop', 'center-crop'])
@pytest.mark.parametrize('backend', BACKENDS)
def test_huge_jpeg_header_refused_in_under_a_second(huge_jpeg, backend, make_decoder):
    seconds, message = _refusal_seconds(huge_jpeg, backend, make_decoder())
    print(f"{backend}: 65500x65500 JPEG header refused {seconds * 1e3:.2f} ms after the batch before")
    assert seconds < 1.0, f"{backend}: {seconds:.2f} s"
    assert f'sample {BAD} ' in message
    assert f'header claims {HUGE}x{HUGE} pixels' in message
    assert f'{WIDTH}x{HEIGHT} pixels' in message and 'BKD-075' in message


@pytest.mark.parametrize('backend', ('imagecodecs', 'pillow'))
def test_huge_png_header_refused_in_under_a_second(huge_png, backend):
    seconds, message = _refusal_seconds(huge_png, backend, SimpleRGBImageDecoder())
    assert seconds < 1.0, f"{backend}: {seconds:.2f} s"
    assert f'sample {BAD} ' in message and f'header claims {HUGE}x{HUGE}' in message


def test_batch_backend_refuses_before_decode_batch(huge_jpeg):
    from ffcvx_nvjpeg import NvJPEGBackend
    calls = []

    def pillow_decode(data, device=None):
        calls.append(len(data))
        raise AssertionError("decode_batch must not be reached for a damaged header")

    registry = Registry('ffcvx.decoders', extra={
        'nvjpeg': NvJPEGBackend(decode_fn=pillow_decode, device='cpu')})
    loader = Loader(str(huge_jpeg), batch_size=2, num_workers=1, indices=[0, BAD],
                    backend='nvjpeg', decoder_registry=registry,
                    pipelines={'image': [CenterCropRGBImageDecoder((64, 64), 1.0)],
                               'label': [IntDecoder()]})
    with loader, pytest.raises(DecodeError, match=f'sample {BAD} .*header claims {HUGE}x{HUGE}'):
        next(iter(loader))
    assert calls == []


def test_gray_field_header_is_checked_too(photos, tmp_path):
    path = tmp_path / 'gray.beton'
    gray = [np.asarray(Image.fromarray(im).convert('L')) for im in photos]
    _write(path, gray, GrayscaleImageField(write_mode='jpg'))
    sof = _jpeg_sof_offset(_region(path, BAD))
    # One pixel more of height than the record: small, yet still refused.
    _patch(path, BAD, sof + 5, (HEIGHT + 1).to_bytes(2, 'big'))
    loader = Loader(str(path), batch_size=4, num_workers=1,
                    pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    with loader, pytest.raises(DecodeError, match=f'sample {BAD} .*claims {WIDTH}x{HEIGHT + 1}'):
        next(iter(loader))


def test_undamaged_samples_still_decode_exactly(photos, huge_jpeg):
    loader = Loader(str(huge_jpeg), batch_size=3, num_workers=1, indices=[0, 1, 2],
                    pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    with loader:
        (images, labels), = list(loader)
    assert images.shape == (3, HEIGHT, WIDTH, 3)
    # JPEG at quality 90 of a smooth photo: near the source, not exact.
    diff = np.abs(images.astype(int) - np.stack(photos[:3]).astype(int))
    assert diff.mean() < 3.0
