"""DatasetWriter: round trips of every field type, page allocation, parallelism, errors, atomicity."""
import io
import json
import math
import os
import signal
import stat
import time

import numpy as np
import pytest
import torch
from PIL import Image

from ffcvx.errors import WriterError
from ffcvx.fields import (BytesField, FloatField, IntField, JSONField, NDArrayField,
                          RGBImageField, TorchTensorField)
from ffcvx.fields.rgb_image import encode_jpeg, shrink_to
from ffcvx.reader import Reader
from ffcvx.testing import shared_dir
from ffcvx.types import ALLOC_TABLE_TYPE, HeaderType, align_to_page, metadata_offset
from ffcvx.writer import DatasetWriter

MIB = 1 << 20
PAGE = 2 * MIB


#: Natural images for JPEG error bounds; photo_crops falls back to synthetic ones without them.
PHOTOS = shared_dir('data', 'photos', required=False)


class ListDataset:
    """``dataset[i]`` is ``samples[i]``; optional per-index actions to simulate failures."""

    def __init__(self, samples, fail_at=None, kill_at=None, sleep_s=0.0):
        self.samples = samples
        self.fail_at = fail_at
        self.kill_at = kill_at
        self.sleep_s = sleep_s

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        index = int(index)
        if index == self.fail_at:
            raise KeyError(f'no sample {index} here')
        if index == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return self.samples[index]


def write(path, fields, samples, num_workers=1, page_size=PAGE, chunksize=100, **kwargs):
    DatasetWriter(path, fields, page_size=page_size, num_workers=num_workers,
                  progress=False).from_indexed_dataset(ListDataset(samples), chunksize=chunksize,
                                                       **kwargs)
    return Reader(path)


def photo_crops(n, seed=0):
    """Natural-image crops (so JPEG error bounds are meaningful), or smooth synthetic ones."""
    rng = np.random.default_rng(seed)
    sources = []
    if PHOTOS:
        for cls in sorted(os.listdir(PHOTOS)):
            folder = os.path.join(PHOTOS, cls)
            if os.path.isdir(folder):
                for name in sorted(os.listdir(folder))[:2]:
                    sources.append(np.asarray(Image.open(os.path.join(folder, name)).convert('RGB')))
    if not sources:
        yy, xx = np.mgrid[0:300, 0:300]
        sources = [np.stack([yy % 256, xx % 256, (yy + xx) % 256], -1).astype(np.uint8)]
    out = []
    for _ in range(n):
        src = sources[int(rng.integers(len(sources)))]
        h, w = int(rng.integers(20, min(src.shape[0], 280))), int(rng.integers(20, min(src.shape[1], 280)))
        top, left = int(rng.integers(src.shape[0] - h + 1)), int(rng.integers(src.shape[1] - w + 1))
        out.append(np.ascontiguousarray(src[top:top + h, left:left + w]))
    return out


def tmp_files(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith('.tmp'))


# ---------------------------------------------------------------------------
# constructor


@pytest.mark.parametrize('page_size', [1000, 1 << 20, 3 << 20, (1 << 21) + 1, 1 << 32, 1 << 33, 0, -4])
def test_invalid_page_size(tmp_path, page_size):
    with pytest.raises(ValueError, match='page_size'):
        DatasetWriter(tmp_path / 'x.beton', {'a': IntField()}, page_size=page_size)


@pytest.mark.parametrize('page_size', [1 << 21, 1 << 23, 1 << 31])
def test_valid_page_size(tmp_path, page_size):
    assert DatasetWriter(tmp_path / 'x.beton', {'a': IntField()}, page_size=page_size).page_size == page_size


def test_default_num_workers_is_affinity(tmp_path):
    expected = len(os.sched_getaffinity(0))
    assert DatasetWriter(tmp_path / 'x.beton', {'a': IntField()}).num_workers == expected
    assert DatasetWriter(tmp_path / 'x.beton', {'a': IntField()}, num_workers=0).num_workers == expected
    assert DatasetWriter(tmp_path / 'x.beton', {'a': IntField()}, num_workers=3).num_workers == 3


def test_bad_fields(tmp_path):
    with pytest.raises(TypeError):
        DatasetWriter(tmp_path / 'x.beton', [('a', IntField())])
    with pytest.raises(TypeError, match="'a'"):
        DatasetWriter(tmp_path / 'x.beton', {'a': int})
    with pytest.raises(ValueError):
        DatasetWriter(tmp_path / 'x.beton', {})
    with pytest.raises(ValueError, match='ASCII'):
        DatasetWriter(tmp_path / 'x.beton', {'bild\u00e9': IntField()})


def test_long_field_name_is_truncated_with_warning(tmp_path):
    path = tmp_path / 'x.beton'
    with pytest.warns(UserWarning, match='longer than 16'):
        writer = DatasetWriter(path, {'a_very_long_field_name': IntField()}, progress=False)
    writer.from_indexed_dataset(ListDataset([(1,), (2,)]))
    assert Reader(path).field_names == ['a_very_long_fiel']
    with pytest.raises(ValueError, match='collides'), pytest.warns(UserWarning):
        DatasetWriter(path, {'a_very_long_field_1': IntField(), 'a_very_long_field_2': IntField()})


# ---------------------------------------------------------------------------
# round trips


def test_int_float_round_trip_bit_exact(tmp_path):
    ints = [0, 1, -1, 2**63 - 1, -2**63, 2**53 + 1, -123456789012345]
    float_bits = ['0000000000000000', '8000000000000000', '7ff0000000000000', 'fff0000000000000',
                  '7ff8000000000000', 'fff8000000000000', '7ff8000000000123', '7ff0000000000001',
                  '0000000000000001', '000fffffffffffff', '7fefffffffffffff', '3ff0000000000000']
    floats = np.array([int(b, 16) for b in float_bits], dtype='<u8').view('<f8')
    n = len(float_bits)
    samples = [(ints[i % len(ints)], floats[i]) for i in range(n)]
    reader = write(tmp_path / 's.beton', {'i': IntField(), 'f': FloatField()}, samples)
    assert reader.num_samples == n
    assert reader.metadata['f0'].tolist() == [ints[i % len(ints)] for i in range(n)]
    got_bits = ['%016x' % b for b in reader.metadata['f1'].view('<u8')]
    assert got_bits == float_bits
    # scalar-only files have no pages and an empty allocation table (FMT-050)
    assert reader.alloc_table.size == 0
    assert int(reader.header['alloc_table_ptr']) == metadata_offset(2) + n * 16
    assert os.path.getsize(tmp_path / 's.beton') == metadata_offset(2) + n * 16


def test_int_out_of_range_is_an_error(tmp_path):
    with pytest.raises(WriterError, match='sample 1'):
        write(tmp_path / 'x.beton', {'i': IntField()}, [(1,), (2**64,)])


@pytest.mark.parametrize('dtype,shape', [
    ('float32', (3, 4)), ('uint8', (16,)), ('int64', (2, 2, 2)), ('float16', (5,)),
    ('complex64', (2, 3)), ('bool', (7,)), ('>i4', (4,)), ('float64', (1, 1, 1, 1, 3)),
])
def test_ndarray_round_trip(tmp_path, dtype, shape):
    rng = np.random.default_rng(1)
    dt = np.dtype(dtype)
    values = [(rng.standard_normal(shape) * 100).astype(dt) for _ in range(25)]
    reader = write(tmp_path / 'a.beton', {'arr': NDArrayField(dt, shape), 'k': IntField()},
                   [(v, i) for i, v in enumerate(values)])
    handler = reader.handlers['arr']
    assert handler.dtype == dt and tuple(handler.shape) == shape
    for i, v in enumerate(values):
        got = reader.read_sample_region(i, 'arr').view(dt).reshape(shape)
        assert got.tobytes() == v.tobytes()


def test_ndarray_wrong_shape_names_sample(tmp_path):
    samples = [(np.zeros(3, np.float32),)] * 4 + [(np.zeros(4, np.float32),)]
    with pytest.raises(WriterError, match=r"sample 4 .*field 'arr'.*shape"):
        write(tmp_path / 'a.beton', {'arr': NDArrayField(np.float32, (3,))}, samples)


@pytest.mark.parametrize('torch_dtype', [torch.float32, torch.float64, torch.int16, torch.uint8])
def test_torch_tensor_round_trip(tmp_path, torch_dtype):
    g = torch.Generator().manual_seed(3)
    values = [(torch.randn(2, 5, generator=g) * 50).to(torch_dtype) for _ in range(12)]
    path = tmp_path / 't.beton'
    reader = write(path, {'t': TorchTensorField(torch_dtype, (2, 5))}, [(v,) for v in values])
    with open(path, 'rb') as f:
        f.seek(HeaderType.itemsize)
        assert f.read(1) == b'\x06'   # type id 6 (FMT-022)
    np_dtype = reader.handlers['t'].dtype
    for i, v in enumerate(values):
        assert reader.read_sample_region(i, 't').view(np_dtype).reshape(2, 5).tobytes() == v.numpy().tobytes()


def test_bytes_and_json_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    payloads = [b'', b'\x00', bytes(range(256)), rng.integers(0, 256, 100_000, dtype=np.uint8),
                bytearray(b'abc'), b'']
    docs = [{}, [1, 2.5, None], {'n\u00e4me': 'x\u0000y', '': [2**70, -0.0, 1e-310]}, 'text', 42,
            {'nested': {'deep': [True, False]}}]
    reader = write(tmp_path / 'b.beton', {'payload': BytesField(), 'doc': JSONField()},
                   list(zip(payloads, docs)))
    for i, (payload, doc) in enumerate(zip(payloads, docs)):
        expected = bytes(np.asarray(payload, dtype=np.uint8)) if not isinstance(payload, (bytes, bytearray)) \
            else bytes(payload)
        assert reader.metadata['f0']['size'][i] == len(expected)
        assert reader.read_sample_region(i, 'payload').tobytes() == expected
        stored = reader.read_sample_region(i, 'doc').tobytes()
        assert stored == json.dumps(doc).encode('utf-8') + b'\0'
        assert json.loads(stored[:-1]) == doc


def test_raw_images_exact(tmp_path):
    rng = np.random.default_rng(4)
    shapes = [(1, 1), (1, 7), (7, 1), (17, 23), (300, 200), (28, 28)]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]
    gray = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    images.append(gray)
    pil = Image.fromarray(rng.integers(0, 256, (5, 6, 3), dtype=np.uint8))
    images.append(pil)
    reader = write(tmp_path / 'r.beton', {'img': RGBImageField(write_mode='raw')},
                   [(im,) for im in images])
    md = reader.metadata['f0']
    assert (md['mode'] == 1).all()
    for i, im in enumerate(images):
        expected = np.asarray(im)
        if expected.ndim == 2:
            expected = np.repeat(expected[:, :, None], 3, axis=2)
        h, w = expected.shape[:2]
        assert (md['height'][i], md['width'][i]) == (h, w)
        assert np.array_equal(reader.read_sample_region(i, 'img').reshape(h, w, 3), expected)


def test_jpg_images(tmp_path):
    """JPEG stored bytes are Pillow's encoding of the (shrunk) input; decoded within tolerance.

    Tolerance: for natural photo crops at quality 90 (4:2:0), the mean absolute
    difference from the input is at most 4 grey levels per sample.
    """
    images = photo_crops(12)
    images.append(np.zeros((500, 300, 3), dtype=np.uint8))    # 500 tall -> 256 x 153
    field = RGBImageField(write_mode='jpg', jpeg_quality=90, max_resolution=256)
    reader = write(tmp_path / 'j.beton', {'img': field}, [(im,) for im in images])
    md = reader.metadata['f0']
    assert (md['mode'] == 0).all()
    assert (md['height'][-1], md['width'][-1]) == (256, 153)
    for i, im in enumerate(images):
        expected = shrink_to(im, 256)
        stored = reader.read_sample_region(i, 'img').tobytes()
        assert stored[:2] == b'\xff\xd8'
        assert stored == encode_jpeg(expected, 90)
        decoded = np.asarray(Image.open(io.BytesIO(stored)).convert('RGB'))
        assert decoded.shape == (md['height'][i], md['width'][i], 3)
        assert np.abs(decoded.astype(int) - expected.astype(int)).mean() <= 4.0


def test_max_resolution_truncates_like_ffcv():
    # ratio * side is truncated, never rounded; images are never enlarged
    assert shrink_to(np.zeros((300, 500, 3), np.uint8), 256).shape[:2] == (153, 256)
    assert shrink_to(np.zeros((180, 257, 3), np.uint8), 256).shape[:2] == (179, 256)
    assert shrink_to(np.zeros((600, 20, 3), np.uint8), 256).shape[:2] == (256, 8)
    assert shrink_to(np.zeros((100, 50, 3), np.uint8), 256).shape[:2] == (100, 50)


def test_smart_threshold_edge(tmp_path):
    rng = np.random.default_rng(6)
    shapes = [(64, 64), (64, 65), (65, 64), (63, 64), (10, 10)]
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]
    field = RGBImageField(write_mode='smart', smart_threshold=64 * 64 * 3)
    reader = write(tmp_path / 's.beton', {'img': field}, [(im,) for im in images])
    assert reader.metadata['f0']['mode'].tolist() == [1, 0, 0, 1, 1]
    assert np.array_equal(reader.read_sample_region(0, 'img').reshape(64, 64, 3), images[0])


@pytest.mark.parametrize('probability,expected', [(0.0, {1}), (1.0, {0}), (0.5, {0, 1})])
def test_proportion_mode(tmp_path, probability, expected):
    np.random.seed(11)
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(40)]
    field = RGBImageField(write_mode='proportion', compress_probability=probability)
    reader = write(tmp_path / 'p.beton', {'img': field}, [(im,) for im in images])
    assert set(reader.metadata['f0']['mode'].tolist()) == expected


def test_png_images_exact(tmp_path):
    images = photo_crops(5, seed=3)
    reader = write(tmp_path / 'png.beton', {'img': RGBImageField(write_mode='png')},
                   [(im,) for im in images])
    assert (reader.metadata['f0']['mode'] == 2).all()
    for i, im in enumerate(images):
        stored = reader.read_sample_region(i, 'img').tobytes()
        assert stored[:8] == b'\x89PNG\r\n\x1a\n'
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored)).convert('RGB')), im)


# ---------------------------------------------------------------------------
# page allocation and layout


def mixed_samples(n, seed=0, max_blob=400_000):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = rng.integers(0, 256, (int(rng.integers(1, 120)), int(rng.integers(1, 120)), 3),
                           dtype=np.uint8)
        blob = rng.integers(0, 256, int(rng.integers(0, max_blob)), dtype=np.uint8)
        arr = rng.standard_normal((3, 4)).astype(np.float32)
        out.append((img, i * 7 - 3, blob, arr, {'i': i}))
    return out


MIXED_FIELDS = {'img': RGBImageField(write_mode='raw'), 'label': IntField(), 'blob': BytesField(),
                'arr': NDArrayField(np.float32, (3, 4)), 'meta': JSONField()}


def values_of(reader):
    """Every sample's decoded values, independent of where they were placed."""
    out = []
    for i in range(reader.num_samples):
        out.append((reader.read_sample_region(i, 'img').tobytes(),
                    int(reader.metadata['f1'][i]),
                    reader.read_sample_region(i, 'blob').tobytes(),
                    reader.read_sample_region(i, 'arr').tobytes(),
                    reader.read_sample_region(i, 'meta').tobytes()))
    return out


def check_layout(path, reader):
    """Whole pages, table at EOF, every region in one page, a sample's regions in one page."""
    size = os.path.getsize(path)
    ps = reader.page_size
    meta_end = metadata_offset(reader.num_fields) + reader.num_samples * reader.metadata_type.itemsize
    d0 = align_to_page(meta_end, ps)
    table_ptr = int(reader.header['alloc_table_ptr'])
    assert (table_ptr - d0) % ps == 0 and table_ptr > d0                    # FMT-040
    assert size == table_ptr + reader.alloc_table.size * ALLOC_TABLE_TYPE.itemsize   # FMT-050
    with open(path, 'rb') as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    assert not data[meta_end:d0].any()                                      # zero padding
    covered = np.zeros(size, dtype=bool)
    pages = {}
    for sid, ptr, n in reader.alloc_table.tolist():
        assert d0 <= ptr and ptr + n <= table_ptr
        first, last = (ptr - d0) // ps, (ptr + max(n, 1) - 1 - d0) // ps
        assert first == last, f"region of sample {sid} crosses a page"     # FMT-041
        assert pages.setdefault(sid, first) == first, f"sample {sid} spans pages"  # FMT-041
        covered[ptr:ptr + n] = True
    # bytes of a page that no region covers are zero (dropped retries are cleared)
    assert not data[d0:table_ptr][~covered[d0:table_ptr]].any()
    assert sorted(pages) == list(range(reader.num_samples))
    return (table_ptr - d0) // ps


def test_multipage_layout_and_retries(tmp_path):
    samples = mixed_samples(60)
    path = tmp_path / 'm.beton'
    reader = write(path, MIXED_FIELDS, samples, num_workers=1)
    num_pages = check_layout(path, reader)
    assert num_pages >= 5
    assert values_of(reader)[5][2] == samples[5][2].tobytes()


def test_one_and_several_workers_give_the_same_values(tmp_path):
    samples = mixed_samples(60, seed=1)
    one = write(tmp_path / 'one.beton', MIXED_FIELDS, samples, num_workers=1, chunksize=7)
    three = write(tmp_path / 'three.beton', MIXED_FIELDS, samples, num_workers=3, chunksize=7)
    check_layout(tmp_path / 'three.beton', three)
    assert values_of(one) == values_of(three)
    expected = [(s[0].tobytes(), s[1], s[2].tobytes(), s[3].tobytes(),
                 json.dumps(s[4]).encode() + b'\0') for s in samples]
    assert values_of(three) == expected
    # allocation records: (sample, field) order regardless of the worker count (FMT-050)
    assert one.alloc_table['sample_id'].tolist() == three.alloc_table['sample_id'].tolist()
    assert one.alloc_table['size'].tolist() == three.alloc_table['size'].tolist()


def test_indices_and_shuffle(tmp_path):
    samples = [(i,) for i in range(50)]
    reader = write(tmp_path / 'i.beton', {'v': IntField()}, samples, indices=[5, 3, 9, 3])
    assert reader.metadata['f0'].tolist() == [5, 3, 9, 3]
    np.random.seed(0)
    reader = write(tmp_path / 's.beton', {'v': IntField()}, samples, shuffle_indices=True,
                   num_workers=2, chunksize=6)
    order = reader.metadata['f0'].tolist()
    assert sorted(order) == list(range(50)) and order != list(range(50))


def test_zero_samples(tmp_path):
    reader = write(tmp_path / 'z.beton', {'v': IntField(), 'b': BytesField()}, [])
    assert reader.num_samples == 0 and reader.alloc_table.size == 0


def test_sample_region_larger_than_page(tmp_path):
    samples = [(np.zeros(10, np.uint8),)] * 3 + [(np.zeros(3 * MIB, np.uint8),)]
    with pytest.raises(WriterError) as info:
        write(tmp_path / 'big.beton', {'blob': BytesField()}, samples)
    message = str(info.value)
    assert 'sample 3' in message and "'blob'" in message
    assert str(3 * MIB) in message and 'page_size=4194304' in message
    assert not (tmp_path / 'big.beton').exists() and not tmp_files(tmp_path)


def test_sample_total_larger_than_page(tmp_path):
    half = np.zeros(MIB + 10, np.uint8)
    samples = [(np.zeros(5, np.uint8), np.zeros(5, np.uint8))] * 2 + [(half, half)]
    with pytest.raises(WriterError) as info:
        write(tmp_path / 'big.beton', {'a': BytesField(), 'b': BytesField()}, samples,
              num_workers=2, chunksize=1)
    message = str(info.value)
    assert 'sample 2' in message and "'b'" in message and 'page_size=4194304' in message


# ---------------------------------------------------------------------------
# errors and atomicity


@pytest.mark.parametrize('workers', [1, 2])
def test_dataset_error_is_reraised_quickly(tmp_path, workers):
    samples = [(i,) for i in range(400)]
    target = tmp_path / 'e.beton'
    start = time.monotonic()
    with pytest.raises(WriterError) as info:
        DatasetWriter(target, {'v': IntField()}, num_workers=workers, progress=False) \
            .from_indexed_dataset(ListDataset(samples, fail_at=137, sleep_s=0.001), chunksize=10)
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert 'sample 137' in message and 'KeyError' in message
    assert 'Traceback' in message and '__getitem__' in message
    assert isinstance(info.value.__cause__, KeyError)
    assert not target.exists() and not tmp_files(tmp_path)


def test_killed_worker_is_an_error_not_a_hang(tmp_path):
    samples = [(i,) for i in range(400)]
    target = tmp_path / 'k.beton'
    start = time.monotonic()
    with pytest.raises(WriterError, match='SIGKILL'):
        DatasetWriter(target, {'v': IntField()}, num_workers=2, progress=False) \
            .from_indexed_dataset(ListDataset(samples, kill_at=210, sleep_s=0.001), chunksize=10)
    assert time.monotonic() - start < 15
    assert not target.exists() and not tmp_files(tmp_path)


def test_failed_write_keeps_existing_target(tmp_path):
    target = tmp_path / 'keep.beton'
    target.write_bytes(b'precious')
    samples = [(np.zeros(10, np.uint8),)] * 30
    for workers in (1, 2):
        with pytest.raises(WriterError):
            DatasetWriter(target, {'b': BytesField()}, num_workers=workers, progress=False) \
                .from_indexed_dataset(ListDataset(samples, fail_at=25), chunksize=5)
        assert target.read_bytes() == b'precious'
        assert tmp_files(tmp_path) == []


def test_keyboard_interrupt_cleans_up(tmp_path):
    class Interrupting(ListDataset):
        def __getitem__(self, index):
            if int(index) == 3:
                raise KeyboardInterrupt
            return super().__getitem__(index)

    target = tmp_path / 'ki.beton'
    target.write_bytes(b'old')
    with pytest.raises(KeyboardInterrupt):
        DatasetWriter(target, {'v': IntField()}, num_workers=1, progress=False) \
            .from_indexed_dataset(Interrupting([(i,) for i in range(10)]))
    assert target.read_bytes() == b'old' and tmp_files(tmp_path) == []


def test_success_replaces_target_and_writes_next_to_it(tmp_path):
    target = tmp_path / 'out.beton'
    target.write_bytes(b'old')
    seen = []

    class Watching(ListDataset):
        def __getitem__(self, index):
            seen.append(tmp_files(tmp_path))
            return super().__getitem__(index)

    DatasetWriter(target, {'v': IntField()}, num_workers=1, progress=False) \
        .from_indexed_dataset(Watching([(i,) for i in range(3)]))
    assert all(len(names) == 1 and names[0].startswith('.out.beton.') for names in seen)
    assert Reader(target).metadata['f0'].tolist() == [0, 1, 2]
    assert tmp_files(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask


@pytest.mark.parametrize('workers', [1, 2])
def test_wrong_tuple_length_names_the_sample(tmp_path, workers):
    samples = [(i, b'x') for i in range(20)]
    samples[13] = (13, b'x', 'extra')
    with pytest.raises(WriterError, match=r"sample 13 .*3 values.*2 fields"):
        write(tmp_path / 'w.beton', {'v': IntField(), 'b': BytesField()}, samples,
              num_workers=workers, chunksize=4)
    samples[13] = 13
    with pytest.raises(WriterError, match=r"sample 13 .*tuple"):
        write(tmp_path / 'w.beton', {'v': IntField(), 'b': BytesField()}, samples)


def test_progress_bar(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv('TQDM_DISABLE', raising=False)
    samples = ListDataset([(i,) for i in range(5)])
    DatasetWriter(tmp_path / 'q.beton', {'v': IntField()}, num_workers=1, progress=False) \
        .from_indexed_dataset(samples)
    assert 'Writing' not in capfd.readouterr().err
    DatasetWriter(tmp_path / 'p.beton', {'v': IntField()}, num_workers=1, progress=True) \
        .from_indexed_dataset(samples)
    assert 'Writing p.beton' in capfd.readouterr().err
    monkeypatch.setenv('TQDM_DISABLE', '1')
    DatasetWriter(tmp_path / 'p.beton', {'v': IntField()}, num_workers=1, progress=True) \
        .from_indexed_dataset(samples)
    assert 'Writing' not in capfd.readouterr().err


# ---------------------------------------------------------------------------
# other sources


@pytest.mark.parametrize('workers', [1, 2])
def test_from_iterable(tmp_path, workers):
    path = tmp_path / 'it.beton'
    writer = DatasetWriter(path, {'v': IntField(), 'b': BytesField()}, num_workers=workers,
                           progress=False)
    writer.from_iterable(((i, bytes([i % 256]) * i) for i in range(45)), length=45, chunksize=4)
    reader = Reader(path)
    assert reader.metadata['f0'].tolist() == list(range(45))
    assert reader.read_sample_region(44, 'b').tobytes() == bytes([44]) * 44
    writer.from_iterable([(i, b'') for i in range(3)])
    assert Reader(path).num_samples == 3
    with pytest.raises(TypeError, match='length='):
        writer.from_iterable(iter([(1, b'')]))
    with pytest.raises(WriterError, match='ended after 3 samples'):
        writer.from_iterable(iter([(1, b'')] * 3), length=5, chunksize=2)
    with pytest.raises(WriterError, match='more than the announced'):
        writer.from_iterable(iter([(1, b'')] * 6), length=5, chunksize=2)
    with pytest.raises(WriterError, match='more than the announced length=0'):
        writer.from_iterable(iter([(1, b'')]), length=0)
    assert Reader(path).num_samples == 3      # the failed writes left the last good file


def test_from_webdataset(tmp_path):
    wds = pytest.importorskip('webdataset')
    shards = []
    value = 0
    for s, count in enumerate([5, 0, 7, 3]):
        shard = str(tmp_path / f'shard-{s}.tar')
        with wds.TarWriter(shard) as sink:
            for k in range(count):
                sink.write({'__key__': f'{s:02d}{k:04d}', 'cls': str(value).encode(),
                            'bin': bytes([value]) * value})
                value += 1
        shards.append(shard)

    def pipeline(dataset):
        return dataset.map(lambda s: (int(s['cls']), np.frombuffer(s['bin'], np.uint8)))

    path = tmp_path / 'w.beton'
    DatasetWriter(path, {'v': IntField(), 'b': BytesField()}, num_workers=2,
                  progress=False).from_webdataset(shards, pipeline)
    reader = Reader(path)
    assert reader.metadata['f0'].tolist() == list(range(15))
    assert reader.read_sample_region(14, 'b').tobytes() == bytes([14]) * 14


def test_from_webdataset_without_package(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'webdataset', None)     # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'ffcvx\[webdataset\]'"):
        DatasetWriter(tmp_path / 'x.beton', {'v': IntField()}).from_webdataset([], lambda d: d)
    assert not (tmp_path / 'x.beton').exists()


def test_suggested_page_sizes_are_valid():
    from ffcvx.writer import _suggest_page_size, check_page_size
    for need in (1, MIB, 2 * MIB, 2 * MIB + 1, 100 * MIB):
        size = _suggest_page_size(need)
        assert check_page_size(size) == size and size >= need and size // 2 < max(need, 2 * MIB)
    assert _suggest_page_size(1 << 32) is None
    assert math.log2(_suggest_page_size(5 * MIB)) == 23
