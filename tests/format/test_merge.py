"""Part files and their exact merge (issue 22, items 1 and 2; spec/beton.md FMT-092).

Every test writes real files: a single-process write of the whole source is
the reference, and parts written with ``part=(k, K)`` then merged must give
the same samples, field for field, byte for byte of each stored region.
"""
import errno
import filecmp
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ffcvx
from ffcvx.errors import MergeError, WriterError
from ffcvx.fields import (BytesField, Field, FloatField, GrayscaleImageField, IntField, JSONField,
                          NDArrayField, RGBImageField, TorchTensorField)
from ffcvx.fields.base import zero_arguments
from ffcvx.reader import Reader
from ffcvx.types import MIN_PAGE_SIZE
from ffcvx.writer import DatasetWriter
from ffcvx.writer import merge_plan
from ffcvx.writer import merge_local
from ffcvx.writer.checks import part_range

REPO = Path(__file__).resolve().parents[2]
PAGE = MIN_PAGE_SIZE            # 2 MiB, the smallest page (FMT-013)
SEED = 1234
#: 6 samples: K=7 has an empty part; the raw images (~380 KB) fill a page after 5
#: samples, so the whole write has a second, partly filled page, and every part
#: ends in a partly filled one.
N = 6
RAW_SIDE = 356


def _smooth(i, h, w, channels):
    """A smooth colour ramp: small as PNG and JPEG, distinct per sample."""
    y, x = np.mgrid[0:h, 0:w]
    planes = [(x * (3 + c) + y * (i + 1) + 40 * c) % 256 for c in range(channels)]
    return np.stack(planes, axis=-1).astype(np.uint8)


class Source:
    """``dataset[i]``: one value per field of :func:`all_fields`, deterministic per ``i``."""

    def __init__(self, n=N):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        i = int(i)
        rng = np.random.default_rng(i)
        return (
            rng.integers(0, 256, (RAW_SIDE, RAW_SIDE, 3), dtype=np.uint8),   # raw
            _smooth(i, 40 + i, 30, 3),                                       # jpg
            _smooth(i, 20, 25 + i, 3),                                       # png
            _smooth(i, 33, 33, 3),                                           # proportion
            _smooth(i, 24, 18 + i, 1)[..., 0],                               # gray
            i * 7 - 3,                                                       # int
            i / 3.0,                                                         # float
            bytes(range(i * 5 % 17)),                                        # bytes, 0 for i=0
            {'i': i, 'name': f'sample {i}', 'tags': list(range(i % 3))},     # json
            np.arange(6, dtype=np.float32).reshape(2, 3) * i,                # ndarray
            torch.full((2, 2), i, dtype=torch.int16),                        # tensor
        )


def all_fields():
    """Every field type of ffcvx (fresh instances: a writer keeps its fields)."""
    return {
        'raw': RGBImageField(write_mode='raw'),
        'jpg': RGBImageField(write_mode='jpg', jpeg_quality=85),
        'png': RGBImageField(write_mode='png'),
        'prop': RGBImageField(write_mode='proportion', compress_probability=0.5),
        'gray': GrayscaleImageField(write_mode='png'),
        'int': IntField(),
        'float': FloatField(),
        'bytes': BytesField(),
        'json': JSONField(),
        'arr': NDArrayField(np.dtype('<f4'), (2, 3)),
        'tensor': TorchTensorField(torch.int16, (2, 2)),
    }


def write(path, source=None, fields=None, **kwargs):
    """One write of ``source`` into ``path`` (in this process, seeded, 2 MiB pages)."""
    writer_args = {'page_size': kwargs.pop('page_size', PAGE), 'num_workers': 1,
                   'progress': False, 'seed': kwargs.pop('seed', SEED)}
    DatasetWriter(path, fields or all_fields(), **writer_args).from_indexed_dataset(
        source if source is not None else Source(), **kwargs)
    return os.fspath(path)


def write_parts(folder, count, source=None, fields=None, **kwargs):
    folder.mkdir(exist_ok=True)
    return [write(folder / f'part-{k:03d}-of-{count:03d}.beton', source, fields,
                  part=(k, count), **kwargs) for k in range(count)]


def assert_same_samples(reference, merged):
    """``merged`` holds what ``reference`` holds: every record value, every stored region."""
    a, b = Reader(reference), Reader(merged)
    assert (a.num_samples, a.field_names, a.page_size) == (b.num_samples, b.field_names,
                                                            b.page_size)
    assert a.field_descriptors.tobytes() == b.field_descriptors.tobytes()
    for index, (name, handler) in enumerate(a.handlers.items()):
        column_a, column_b = a.metadata[f'f{index}'], b.metadata[f'f{index}']
        if isinstance(handler, (IntField, FloatField)):   # value in the metadata
            assert column_a.tobytes() == column_b.tobytes(), name
            continue
        if column_a.dtype.names and 'mode' in column_a.dtype.names:
            for member in ('mode', 'width', 'height'):
                np.testing.assert_array_equal(column_a[member], column_b[member], err_msg=name)
        if column_a.dtype.names and 'size' in column_a.dtype.names:
            np.testing.assert_array_equal(column_a['size'], column_b['size'], err_msg=name)
        for sample in range(a.num_samples):
            np.testing.assert_array_equal(a.read_sample_region(sample, name),
                                          b.read_sample_region(sample, name),
                                          err_msg=f'sample {sample}, field {name}')
    return a, b


@pytest.fixture(scope='module')
def whole(tmp_path_factory):
    return write(tmp_path_factory.mktemp('whole') / 'whole.beton')


# -- parts -------------------------------------------------------------------------------

@pytest.mark.parametrize('count', [1, 2, 3, 7])
def test_parts_merge_into_what_one_write_gives(tmp_path, whole, count):
    parts = write_parts(tmp_path / 'parts', count)
    sizes = [Reader(p).num_samples for p in parts]
    assert sizes == [len(r) for r in np.array_split(np.arange(N), count)]
    if count == 7:
        assert sizes[-1] == 0                       # an empty part
    out = ffcvx.merge(parts, tmp_path / 'merged.beton')
    assert out == os.fspath(tmp_path / 'merged.beton')
    _, merged = assert_same_samples(whole, out)
    # every part's pages, whole, one after the other; each part ends in a partly filled page
    part_pages = [merge_plan._Part(p, {}).pages for p in parts]
    assert merge_plan._Part(whole, {}).pages == 2            # 5 samples fill a page
    # K = 1: 5 samples and a second, partly filled page; K > 1: one partly filled page or none
    assert part_pages == ([2] if count == 1 else [1 if size else 0 for size in sizes])
    assert int(merged.header['alloc_table_ptr']) == (merged.data_region_start
                                                     + sum(part_pages) * PAGE)
    # proportion mode drew per global sample: both modes occur, and agree with the whole write
    modes = Reader(whole).metadata[f'f{Reader(whole).field_names.index("prop")}']['mode']
    assert set(modes.tolist()) == {0, 1}


def test_two_runs_of_a_conversion_in_parts_are_byte_identical(tmp_path):
    # each run writes its own parts (the writer's tables, pages and padding) and merges them
    first = ffcvx.merge(write_parts(tmp_path / 'run1', 3), tmp_path / 'a.beton')
    second = ffcvx.merge(write_parts(tmp_path / 'run2', 3), tmp_path / 'b.beton')
    assert filecmp.cmp(first, second, shallow=False)


def test_a_part_holds_its_range_of_the_whole_write(tmp_path, whole):
    # part 1 of 3 alone: samples 2 and 3 of the whole write, with their random choices
    path = write(tmp_path / 'p.beton', part=(1, 3))
    part, ref = Reader(path), Reader(whole)
    assert part.num_samples == 2
    for name in ('prop', 'raw', 'bytes', 'tensor'):
        for local, global_ in ((0, 2), (1, 3)):
            np.testing.assert_array_equal(part.read_sample_region(local, name),
                                          ref.read_sample_region(global_, name))


def test_shuffled_parts_take_ranges_of_one_shuffle(tmp_path):
    fields = lambda: {'label': IntField()}       # noqa: E731
    source = [(i,) for i in range(23)]
    whole = write(tmp_path / 'whole.beton', source, fields(), shuffle_indices=True)
    parts = write_parts(tmp_path / 'parts', 4, source, fields(), shuffle_indices=True)
    merged = ffcvx.merge(parts, tmp_path / 'merged.beton')
    labels = Reader(merged).metadata['f0']
    np.testing.assert_array_equal(labels, Reader(whole).metadata['f0'])
    assert sorted(labels.tolist()) == list(range(23))
    assert labels.tolist() != list(range(23))


@pytest.mark.parametrize('n, count', [(10, 3), (2, 7), (0, 2), (7, 7), (5, 1)])
def test_part_ranges_split_as_numpy_array_split(n, count):
    ranges = [part_range(n, (k, count)) for k in range(count)]
    expected = [(int(r[0]), int(r[-1]) + 1) if len(r) else None
                for r in np.array_split(np.arange(n), count)]
    for got, want in zip(ranges, expected):
        assert got[1] - got[0] == (0 if want is None else want[1] - want[0])
        if want is not None:
            assert got == want
    assert ranges[-1][1] == n


@pytest.mark.parametrize('part, error, text', [
    ((2, 2), ValueError, '0 <= k < K'),
    ((0, 0), ValueError, 'K >= 1'),
    ((-1, 3), ValueError, '0 <= k < K'),
    ((1.5, 2), TypeError, 'integer'),
    ('0/2', TypeError, 'pair'),
    ((0, 1, 2), TypeError, 'pair'),
])
def test_a_bad_part_is_refused(tmp_path, part, error, text):
    with pytest.raises(error, match=text):
        write(tmp_path / 'x.beton', [(1,)], {'a': IntField()}, part=part)
    assert not os.listdir(tmp_path)


def test_parts_need_a_seed(tmp_path):
    writer = DatasetWriter(tmp_path / 'x.beton', {'a': IntField()}, num_workers=1, progress=False)
    with pytest.raises(ValueError, match='seed'):
        writer.from_indexed_dataset([(1,), (2,)], part=(0, 2))
    writer.from_indexed_dataset([(1,), (2,)], part=(0, 1))     # one part: the whole write
    assert Reader(tmp_path / 'x.beton').num_samples == 2


@pytest.mark.parametrize('count', [2, 3, 7])
def test_iterable_parts_merge_into_what_one_write_gives(tmp_path, whole, count):
    # the iterable yields every sample; a part keeps its range, random choices by position
    parts = []
    for k in range(count):
        path = os.fspath(tmp_path / f'it{k}.beton')
        DatasetWriter(path, all_fields(), page_size=PAGE, num_workers=1, progress=False,
                      seed=SEED).from_iterable((Source()[i] for i in range(N)), length=N,
                                               part=(k, count), chunksize=2)
        first, stop = part_range(N, (k, count))
        assert Reader(path).num_samples == stop - first
        parts.append(path)
    assert_same_samples(whole, ffcvx.merge(parts, tmp_path / 'merged.beton'))


def test_an_iterable_too_short_for_its_part_is_refused(tmp_path):
    writer = DatasetWriter(tmp_path / 'x.beton', {'a': IntField()}, num_workers=1,
                           progress=False, seed=1)
    with pytest.raises(WriterError, match='ended after'):
        writer.from_iterable([(1,), (2,)], length=6, part=(1, 2))
    # the last part sees the end of the source: more samples than announced is an error too
    with pytest.raises(WriterError, match='more than the announced length=3'):
        writer.from_iterable([(1,), (2,), (3,), (4,)], length=3, part=(1, 2))
    assert not os.path.exists(tmp_path / 'x.beton')
    writer.from_iterable([(1,), (2,), (3,), (4,)], length=3, part=(0, 2))   # not the last: fine
    assert Reader(tmp_path / 'x.beton').num_samples == 2


def _index_shards(folder, sizes):
    """WebDataset shards of sample indices, ``sizes[s]`` samples in shard ``s`` (0 allowed)."""
    import webdataset
    shards, index = [], 0
    for s, size in enumerate(sizes):
        shard = os.fspath(folder / f'shard-{s}.tar')
        with webdataset.TarWriter(shard) as sink:
            for _ in range(size):
                sink.write({'__key__': f'{index:06d}', 'idx': str(index).encode()})
                index += 1
        shards.append(shard)
    return shards


def _samples_of_indices(dataset):
    """A WebDataset pipeline: each sample's ``idx`` member as ``Source()[idx]``."""
    source = Source()
    return (source[int(sample['idx'])] for sample in dataset)


@pytest.mark.parametrize('count', [1, 2, 3, 7])
def test_webdataset_parts_merge_into_what_one_write_gives(tmp_path, whole, count):
    # shards of 2, 0, 3 and 1 samples: parts start and end inside shards and on their edges
    shards = _index_shards(tmp_path, [2, 0, 3, 1])
    parts = []
    for k in range(count):
        path = os.fspath(tmp_path / f'wds{k}.beton')
        DatasetWriter(path, all_fields(), page_size=PAGE, num_workers=1, progress=False,
                      seed=SEED).from_webdataset(shards, _samples_of_indices, part=(k, count))
        parts.append(path)
    assert_same_samples(whole, ffcvx.merge(parts, tmp_path / 'merged.beton'))


def test_parts_from_parallel_workers_merge_the_same(tmp_path, whole):
    # two worker processes per part: the random choices still follow the global position
    parts = [os.fspath(tmp_path / f'p{k}.beton') for k in range(2)]
    for k, path in enumerate(parts):
        DatasetWriter(path, all_fields(), page_size=PAGE, num_workers=2, progress=False,
                      seed=SEED).from_indexed_dataset(Source(), part=(k, 2), chunksize=1)
    assert_same_samples(whole, ffcvx.merge(parts, tmp_path / 'merged.beton'))


def test_the_loader_yields_the_same_batches_from_merged_parts(tmp_path, whole):
    # through decoders and a page-based memory strategy (which reads the allocation table)
    from ffcvx.fields.decoders import CenterCropRGBImageDecoder
    from ffcvx.loader import Loader
    merged = ffcvx.merge(write_parts(tmp_path / 'parts', 3), tmp_path / 'merged.beton')
    # images of several sizes in one field: a crop decoder (SimpleRGBImageDecoder needs one size)
    crops = {name: [CenterCropRGBImageDecoder((16, 16), ratio=1.0)]
             for name in ('jpg', 'png', 'gray')}

    def batches(path):
        # jit=False: plain Python operations, the same values without Numba's compile time
        loader = Loader(path, batch_size=1, num_workers=1, os_cache=False, drop_last=False,
                        jit=False, pipelines=crops)
        try:
            return [[np.asarray(value).copy() for value in batch] for batch in loader]
        finally:
            loader.close()
    expected, got = batches(whole), batches(merged)
    assert len(got) == len(expected) == N
    for sample, (want, have) in enumerate(zip(expected, got)):
        assert len(want) == len(have) == len(all_fields())
        for name, a, b in zip(all_fields(), want, have):
            np.testing.assert_array_equal(a, b, err_msg=f'sample {sample}, field {name}')


def test_ffcv_written_files_merge(tmp_path, golden_dir, golden_case):
    # FFCV's own files: unsorted allocation tables, 0-byte records that share a pointer
    # or lie before the first page (FMT-050), files with no pages at all
    source = golden_dir / f'{golden_case}.beton'
    merged = ffcvx.merge([source, source, source], tmp_path / 'merged.beton')
    one, three = Reader(source), Reader(merged)
    n = one.num_samples
    assert three.num_samples == 3 * n
    for index, (name, handler) in enumerate(one.handlers.items()):
        column = one.metadata[f'f{index}']
        if isinstance(handler, (IntField, FloatField)):
            assert three.metadata[f'f{index}'].tobytes() == np.tile(column, 3).tobytes()
            continue
        for sample in range(n):
            stored = one.read_sample_region(sample, name)
            for copy in range(3):
                np.testing.assert_array_equal(three.read_sample_region(copy * n + sample, name),
                                              stored, err_msg=f'{golden_case}: {name} {sample}')


def test_imagefolder_parts_are_read_by_path_and_merge_into_the_whole(tmp_path):
    # the recipe of FFCV's write_imagenet.py, written as 4 shuffled parts
    torchvision = pytest.importorskip('torchvision')
    from PIL import Image
    root = tmp_path / 'folder'
    for i in range(10):
        folder = root / f'class{i % 3}'
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_smooth(i, 60 + 7 * i, 90, 3)).save(folder / f'{i}.jpg', quality=90)
    dataset = torchvision.datasets.ImageFolder(str(root))

    def fields():
        return {'image': RGBImageField(write_mode='proportion', max_resolution=64,
                                       jpeg_passthrough=True), 'label': IntField()}

    def write_one(path, **kwargs):
        writer = DatasetWriter(path, fields(), page_size=PAGE, num_workers=1, progress=False,
                               seed=5)
        stats = writer.from_indexed_dataset(dataset, shuffle_indices=True, **kwargs)
        assert stats.fast_path == 'torchvision ImageFolder'
        return os.fspath(path)
    whole = write_one(tmp_path / 'whole.beton')
    parts = [write_one(tmp_path / f'p{k}.beton', part=(k, 4)) for k in range(4)]
    _, merged = assert_same_samples(whole, ffcvx.merge(parts, tmp_path / 'merged.beton'))
    assert sorted(merged.metadata['f1'].tolist()) == sorted(label for _, label in dataset.samples)


# -- what the merge refuses ---------------------------------------------------------------

def _small(path, fields, page_size=PAGE, n=3):
    source = [tuple(np.full(f.shape, i, dtype=f.dtype) if isinstance(f, NDArrayField) else i
                    for f in fields.values()) for i in range(n)]
    return write(path, source, fields, page_size=page_size)


@pytest.mark.parametrize('other, difference', [
    ({'a': IntField(), 'b': NDArrayField(np.dtype('<f4'), (4,))}, 'other arguments'),
    ({'a': IntField(), 'c': NDArrayField(np.dtype('<f4'), (2,))}, 'fields'),
    ({'a': FloatField(), 'b': NDArrayField(np.dtype('<f4'), (2,))}, 'type id'),
    ('page', 'page size'),
])
def test_parts_that_differ_are_refused_naming_the_difference(tmp_path, other, difference):
    reference = {'a': IntField(), 'b': NDArrayField(np.dtype('<f4'), (2,))}
    first = _small(tmp_path / 'first.beton', reference)
    if other == 'page':
        second = _small(tmp_path / 'second.beton',
                        {'a': IntField(), 'b': NDArrayField(np.dtype('<f4'), (2,))},
                        page_size=2 * PAGE)
    else:
        second = _small(tmp_path / 'second.beton', other)
    out = tmp_path / 'out.beton'
    with pytest.raises(MergeError, match=difference) as caught:
        ffcvx.merge([first, first, second], out)
    assert second in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == ['first.beton', 'second.beton']


class CountField(Field):
    """A custom field (type id 255) that keeps an int64 in the metadata, without ``relocate``."""

    metadata_type = np.dtype('<i8')

    @staticmethod
    def from_binary(binary):
        return CountField()

    def to_binary(self):
        return zero_arguments()

    def encode(self, destination, field, malloc):
        destination[0] = field

    def get_decoder_class(self):
        raise NotImplementedError


class RelocatableCountField(CountField):
    """The same field, saying that it holds no pointer."""

    @staticmethod
    def from_binary(binary):
        return RelocatableCountField()

    def relocate(self, values, shift):
        return np.array(values, copy=True)


def test_a_custom_field_without_relocate_is_refused(tmp_path):
    parts = [write(tmp_path / f'p{k}.beton', [(i,) for i in range(5)], {'count': CountField()},
                   part=(k, 2)) for k in range(2)]
    out = tmp_path / 'out.beton'
    with pytest.raises(MergeError, match=r"relocate.*FMT-092") as caught:
        ffcvx.merge(parts, out, custom_handlers={'count': CountField})
    assert "'count'" in str(caught.value) and parts[0] in str(caught.value)
    assert sorted(os.listdir(tmp_path)) == ['p0.beton', 'p1.beton']
    # a custom class that implements relocate merges
    ffcvx.merge(parts, out, custom_handlers={'count': RelocatableCountField})
    merged = Reader(out, custom_handlers={'count': RelocatableCountField})
    assert merged.metadata['f0'].tolist() == list(range(5))


def test_an_invalid_part_is_refused_naming_it(tmp_path):
    good = _small(tmp_path / 'good.beton', {'a': IntField()})
    bad = tmp_path / 'bad.beton'
    bad.write_bytes(Path(good).read_bytes()[:30])
    with pytest.raises(MergeError, match='bad.beton'):
        ffcvx.merge([good, bad], tmp_path / 'out.beton')
    with pytest.raises(MergeError, match='at least one part'):
        ffcvx.merge([], tmp_path / 'out.beton')
    assert not (tmp_path / 'out.beton').exists()


# -- copying ------------------------------------------------------------------------------

def test_the_read_write_loop_gives_the_same_file(tmp_path, monkeypatch):
    parts = write_parts(tmp_path / 'parts', 2)
    kernel = ffcvx.merge(parts, tmp_path / 'kernel.beton')

    def refuse(*args):
        raise OSError(errno.EXDEV, 'Invalid cross-device link')
    monkeypatch.setattr(os, 'copy_file_range', refuse)
    looped = ffcvx.merge(parts, tmp_path / 'looped.beton')
    monkeypatch.delattr(os, 'copy_file_range')
    missing = ffcvx.merge(parts, tmp_path / 'missing.beton')
    assert filecmp.cmp(kernel, looped, shallow=False)
    assert filecmp.cmp(kernel, missing, shallow=False)


def test_a_failed_merge_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    parts = write_parts(tmp_path / 'parts', 2)
    out = tmp_path / 'out.beton'
    out.write_bytes(b'old')

    def full(*args):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(merge_local, '_copy_range', full)
    with pytest.raises(WriterError, match='No space left'):
        ffcvx.merge(parts, out)
    assert out.read_bytes() == b'old'
    assert sorted(os.listdir(tmp_path)) == ['out.beton', 'parts']


# -- the command line ---------------------------------------------------------------------

def _ffcvx(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.fspath(REPO)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    return subprocess.run([sys.executable, '-m', 'ffcvx', *map(os.fspath, args)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_ffcvx_merge_command(tmp_path, whole):
    parts = write_parts(tmp_path / 'parts', 3)
    proc = _ffcvx('merge', *parts, tmp_path / 'cli.beton')
    assert proc.returncode == 0, proc.stderr
    assert 'cli.beton' in proc.stdout and f'{N} samples' in proc.stdout
    assert filecmp.cmp(tmp_path / 'cli.beton', ffcvx.merge(parts, tmp_path / 'api.beton'),
                       shallow=False)
    assert_same_samples(whole, tmp_path / 'cli.beton')
    info = _ffcvx('info', tmp_path / 'cli.beton')
    assert info.returncode == 0, info.stderr


def test_ffcvx_info_opens_an_empty_part(tmp_path):
    empty = write(tmp_path / 'empty.beton', part=(6, 7))        # N = 6 samples, 7 parts
    proc = _ffcvx('info', empty)
    assert proc.returncode == 0, proc.stderr
    assert Reader(empty).num_samples == 0


def test_ffcvx_merge_refuses_mismatched_parts(tmp_path):
    first = _small(tmp_path / 'first.beton', {'a': IntField()})
    second = _small(tmp_path / 'second.beton', {'b': IntField()})
    proc = _ffcvx('merge', first, second, tmp_path / 'out.beton')
    assert proc.returncode == 2
    assert 'second.beton' in proc.stderr and 'fields' in proc.stderr
    proc = _ffcvx('merge', tmp_path / 'nope.beton', tmp_path / 'out.beton')
    assert proc.returncode == 2 and 'nope.beton' in proc.stderr
    assert not (tmp_path / 'out.beton').exists()
