"""``ffcvx info --stats/--plot/--json`` and :func:`ffcvx.dataset_stats.dataset_stats`.

Every expectation is computed here from the data written or from the
Reader's raw tables (``alloc_table`` records, metadata columns), not with
the functions under test.
"""
import collections
import json
import os
import re
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from ffcvx.cli import main
from ffcvx.dataset_stats import dataset_stats
from ffcvx.datasets import FASHION_MNIST_ROOT, FashionMNIST
from ffcvx.fields import (BytesField, GrayscaleImageField, IntField, NDArrayField,
                          RGBImageField)
from ffcvx.reader import Reader
from ffcvx.testing import shared_dir
from ffcvx.writer import DatasetWriter

MIB = 2 ** 20
# labels 0..3 occur 5, 3, 0 and 7 times
LABELS = [0] * 5 + [1] * 3 + [3] * 7
SIZES = [(16 + 8 * (i % 4), 12 + 4 * (i % 3)) for i in range(len(LABELS))]   # (width, height)
HAVE_FASHION_MNIST = os.path.isfile(os.path.join(FASHION_MNIST_ROOT, 't10k-labels-idx1-ubyte.gz'))


class Synthetic:
    """Noise images of the SIZES, the LABELS, ``i * 10`` bytes and a (3, 4) float32 array."""

    def __len__(self):
        return len(LABELS)

    def __getitem__(self, i):
        width, height = SIZES[i]
        image = np.random.default_rng(i).integers(0, 256, (height, width, 3), dtype=np.uint8)
        return image, LABELS[i], b'x' * (10 * i), np.full((3, 4), i, dtype=np.float32)


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp('stats') / 'synthetic.beton'
    fields = {'image': RGBImageField(write_mode='proportion', compress_probability=0.5),
              'label': IntField(), 'blob': BytesField(),
              'array': NDArrayField(np.dtype('float32'), (3, 4))}
    DatasetWriter(str(path), fields, num_workers=1, progress=False,
                  seed=0).from_indexed_dataset(Synthetic())
    return str(path)


def _stored(reader, sample, ptr):
    """Size of the allocation-table record of ``sample`` at ``ptr`` (FMT-050).

    An empty payload's record may share its pointer with the next region's: the largest.
    """
    table = reader.alloc_table
    match = (table['sample_id'] == sample) & (table['ptr'] == ptr)
    assert match.any()
    return int(table['size'][match].max())


def _info_json(capsys, *args):
    assert main(['info', *args, '--json']) == 0
    return json.loads(capsys.readouterr().out)


def test_histogram_sizes_modes_and_bytes_of_a_written_file(synthetic, capsys):
    reader = Reader(synthetic)
    stats = _info_json(capsys, synthetic)
    assert stats == json.loads(json.dumps(dataset_stats(reader) | {
        'file': synthetic, 'file_size': os.path.getsize(synthetic)}))
    assert stats['samples'] == 15 and stats['page_size'] == reader.page_size

    # only the IntField is a label field; label 2 never occurs
    assert list(stats['labels']) == ['label']
    assert stats['labels']['label'] == {'distinct': 3, 'counts': [[0, 5], [1, 3], [3, 7]],
                                        'others': {'values': 0, 'count': 0}}

    images = stats['images']['image']
    widths, heights = np.array(SIZES).T
    for axis, values in (('width', widths), ('height', heights)):
        assert images[axis] == {'min': values.min(), 'max': values.max(),
                                **{f'p{p}': int(np.sort(values)[round(p / 100 * (len(values) - 1))])
                                   for p in (5, 50, 95)}}
    pairs = collections.Counter(SIZES)
    assert images['distinct_sizes'] == len(pairs) == 12
    assert sorted(images['common_sizes'], key=lambda x: (-x[2], x[0], x[1])) \
        == images['common_sizes']
    assert [(w, h) for w, h, _ in images['common_sizes']] \
        == sorted(pairs, key=lambda s: (-pairs[s], s))[:5]
    assert all(pairs[(w, h)] == count for w, h, count in images['common_sizes'])

    # per mode: count and bytes from the metadata modes and the allocation-table records
    column = reader.metadata['f0']
    assert set(np.unique(column['mode'])) == {0, 1}, "seed 0 should store both jpg and raw"
    for name, code in (('jpg', 0), ('raw', 1)):
        samples = np.flatnonzero(column['mode'] == code)
        total = sum(_stored(reader, int(i), int(column['data_ptr'][i])) for i in samples)
        assert images['modes'][name] == {'count': len(samples), 'bytes': total,
                                         'mean_bytes': total / len(samples)}
        if name == 'raw':
            assert total == sum(3 * SIZES[i][0] * SIZES[i][1] for i in samples)

    # per field: the allocation table's records of the field's pointers
    region = stats['data_region']
    assert region['bytes'] == region['end'] - region['start'] == reader.page_size
    blob = reader.metadata['f2']
    blob_total = sum(_stored(reader, i, int(blob['ptr'][i])) for i in range(15) if blob['size'][i])
    assert blob_total == sum(10 * i for i in range(15))
    expected = {'image': sum(images['modes'][m]['bytes'] for m in ('jpg', 'raw')),
                'blob': blob_total,
                'array': sum(_stored(reader, i, int(reader.metadata['f3'][i])) for i in range(15))}
    assert expected['array'] == 15 * 48
    assert set(stats['fields']) == set(expected)
    for name, total in expected.items():
        field = stats['fields'][name]
        assert field['stored_bytes'] == total
        assert field['share'] == pytest.approx(total / reader.page_size)
    assert stats['fields']['blob']['samples_with_data'] == 14   # sample 0 stores 0 bytes
    used = sum(expected.values())
    assert stats['pages'] == {'written': 1, 'holding_data': 1, 'used_bytes': used,
                              'mean_fill': pytest.approx(used / reader.page_size),
                              'lowest_fill': pytest.approx(used / reader.page_size)}
    assert stats['samples_per_page'] == {'mean': 15.0, 'min': 15, 'max': 15}


def test_text_output_adds_the_statistics_after_the_unchanged_layout(synthetic, capsys):
    assert main(['info', synthetic]) == 0
    layout = capsys.readouterr().out
    assert 'statistics' not in layout
    assert main(['info', synthetic, '--stats']) == 0
    text = capsys.readouterr().out
    assert text.startswith(layout + '\nstatistics (from the metadata')
    # histogram rows: value, count, share, a bar as long as count / 7 of 40 characters
    rows = re.findall(r"^  (\d)  (\d)  +([\d.]+)%  (#+)$", text, flags=re.M)
    assert [(int(v), int(c), len(bar)) for v, c, _, bar in rows] == [(0, 5, 29), (1, 3, 17),
                                                                     (3, 7, 40)]
    assert re.search(r"^  width  min 16, p5 16, p50 24, p95 40, max 40 px$", text, flags=re.M)
    assert re.search(r"^    raw +[\d.]+ [KM]?i?B +\d+ images", text, flags=re.M)


def test_histogram_keeps_the_most_frequent_values(synthetic):
    stats = dataset_stats(Reader(synthetic), label_fields=['label'], top=2)
    assert stats['labels']['label'] == {'distinct': 3, 'counts': [[0, 5], [3, 7]],
                                        'others': {'values': 1, 'count': 3}}
    assert len(stats['images']['image']['common_sizes']) == 5
    assert stats['images']['image']['common_sizes'][:2] == \
        dataset_stats(Reader(synthetic), common_sizes=2)['images']['image']['common_sizes']


def test_label_field_option(synthetic, capsys):
    assert main(['info', synthetic, '--stats', '--label-field', 'blob']) == 2
    assert "'blob' is a BytesField, not an IntField" in capsys.readouterr().err
    assert main(['info', synthetic, '--stats', '--label-field', 'nope']) == 2
    assert "no field 'nope'" in capsys.readouterr().err
    assert list(_info_json(capsys, synthetic, '--label-field', 'label')['labels']) == ['label']


def test_page_fill_and_samples_per_page(tmp_path, capsys):
    """Payloads of up to 1.5 MiB on 2 MiB pages: a sample that does not fit starts a page."""
    path = str(tmp_path / 'big.beton')
    sizes = {'a': [1536 * 1024, 1000, 1536 * 1024, 0, 300 * 1024, 5],
             'b': [200 * 1024, 1000, 0, 700 * 1024, 0, 7]}

    class Blobs:
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return bytes(sizes['a'][i]), bytes(sizes['b'][i])

    DatasetWriter(path, {'a': BytesField(), 'b': BytesField()}, page_size=2 * MIB,
                  num_workers=1, progress=False).from_indexed_dataset(Blobs())
    reader = Reader(path)
    ps, table, start = reader.page_size, reader.alloc_table, reader.data_region_start
    stats = _info_json(capsys, path)
    written = (int(reader.header['alloc_table_ptr']) - start) // ps
    used = np.zeros(written, dtype=np.int64)
    samples_in = collections.defaultdict(set)
    for record in table[table['size'] > 0]:
        ptr, size = int(record['ptr']), int(record['size'])
        for page in range(written):
            low, high = start + page * ps, start + (page + 1) * ps
            used[page] += max(0, min(ptr + size, high) - max(ptr, low))
            if low < ptr + size and ptr < high:
                samples_in[page].add(int(record['sample_id']))
    total = sum(sizes['a']) + sum(sizes['b'])
    assert used.sum() == total and written >= 3
    assert stats['pages'] == {'written': written, 'holding_data': int((used > 0).sum()),
                              'used_bytes': total,
                              'mean_fill': pytest.approx(total / (written * ps)),
                              'lowest_fill': pytest.approx(used[used > 0].min() / ps)}
    counts = [len(samples_in[page]) for page in sorted(samples_in)]
    assert sum(counts) == 6 and max(counts) >= 2
    assert stats['samples_per_page'] == {'mean': pytest.approx(np.mean(counts)),
                                         'min': min(counts), 'max': max(counts)}
    assert stats['fields']['a']['samples_with_data'] == 5
    assert stats['fields']['b']['share'] == pytest.approx(sum(sizes['b']) / (written * ps))


@pytest.mark.skipif(not HAVE_FASHION_MNIST, reason='Debian dataset-fashion-mnist not installed')
def test_fashion_mnist_test_split_has_1000_of_each_class(tmp_path, capsys):
    source = FashionMNIST(train=False)
    path = str(tmp_path / 'test.beton')
    DatasetWriter(path, {'image': GrayscaleImageField('raw'), 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(source)
    stats = _info_json(capsys, path)
    assert stats['labels']['label']['counts'] == [[k, 1000] for k in range(10)]
    image = stats['images']['image']
    assert image['width'] == image['height'] == {'min': 28, 'p5': 28, 'p50': 28, 'p95': 28,
                                                 'max': 28}
    assert image['common_sizes'] == [[28, 28, 10000]]
    assert image['modes'] == {'raw': {'count': 10000, 'bytes': 7840000, 'mean_bytes': 784.0}}
    assert stats['fields']['image']['kind'] == 'GrayscaleImageField'


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    """The shared photos, as ``ffcvx convert imagefolder --write-mode jpg`` stores them."""
    folder = shared_dir() / 'data' / 'photos'
    path = str(tmp_path_factory.mktemp('photos') / 'photos.beton')
    assert main(['convert', 'imagefolder', str(folder), path, '--write-mode', 'jpg',
                 '--quiet', '--num-workers', '1']) == 0
    return folder, path


def test_photo_sizes_and_classes_match_the_jpegs(photos, capsys):
    folder, path = photos
    capsys.readouterr()
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    files = {c: sorted(p for p in (folder / c).iterdir() if p.suffix.lower() in ('.jpg', '.jpeg'))
             for c in classes}
    sizes = []
    for c in classes:
        for p in files[c]:
            with Image.open(p) as im:
                sizes.append(im.size)
    stats = _info_json(capsys, path)
    assert stats['labels']['label']['counts'] == [[k, len(files[c])] for k, c in enumerate(classes)]
    image = stats['images']['image']
    widths, heights = np.array(sizes).T
    for axis, values in (('width', widths), ('height', heights)):
        assert image[axis]['min'] == values.min() and image[axis]['max'] == values.max()
        assert image[axis]['p50'] == np.sort(values)[(len(values) - 1) // 2 + 0]
    counts = collections.Counter(sizes)
    assert image['distinct_sizes'] == len(counts)
    assert all(counts[(w, h)] == n for w, h, n in image['common_sizes'])
    assert image['common_sizes'][0][2] == max(counts.values())
    assert list(image['modes']) == ['jpg'] and image['modes']['jpg']['count'] == len(sizes)


def test_plot_writes_a_png_of_the_printed_size(photos, tmp_path, capsys):
    _, path = photos
    png = tmp_path / 'info.png'
    assert main(['info', path, '--plot', str(png)]) == 0
    out = capsys.readouterr().out
    assert 'statistics (from the metadata' in out    # --plot implies --stats
    width, height = map(int, re.search(rf"^wrote {re.escape(str(png))} \((\d+) x (\d+) px\)$",
                                       out, flags=re.M).groups())
    with Image.open(png) as im:
        assert im.format == 'PNG' and im.size == (width, height)
        pixels = np.asarray(im.convert('RGB'))
    assert width > 2 * height > 600       # three panels side by side
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 100             # bars, markers, a colour bar and text, not blank
    # the bars are drawn: the label bars' blue and the stored bytes' orange cover real areas
    blue = np.all(np.abs(pixels.astype(int) - (31, 119, 180)) < 3, axis=2).sum()
    orange = np.all(np.abs(pixels.astype(int) - (255, 127, 14)) < 3, axis=2).sum()
    assert blue > 0.02 * pixels[..., 0].size and orange > 0.005 * pixels[..., 0].size


def test_plot_without_matplotlib_names_the_extra(synthetic, tmp_path, capsys, monkeypatch):
    for name in [m for m in sys.modules if m == 'matplotlib' or m.startswith('matplotlib.')]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, 'matplotlib', None)     # import matplotlib fails
    png = tmp_path / 'info.png'
    assert main(['info', synthetic, '--plot', str(png)]) == 2
    captured = capsys.readouterr()
    assert captured.out == '' and not png.exists()
    assert captured.err.strip() == ("ffcvx: error: ffcvx info --plot needs the 'matplotlib' "
                                    "package: pip install 'ffcvx[plot]'")


def test_stats_of_a_url_equal_those_of_the_local_file(synthetic, nginx_server, capsys):
    shutil.copy(synthetic, nginx_server.root / 'synthetic.beton')
    url = nginx_server.url_for('synthetic.beton')
    local, remote = _info_json(capsys, synthetic), _info_json(capsys, url)
    assert remote.pop('file') == url and local.pop('file') == synthetic
    assert remote == local
