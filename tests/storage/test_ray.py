"""``ds.write_datasink(BetonDatasink(...))`` on a real local Ray cluster (issue 22, Ray).

One ``ray.init(num_cpus=2)`` for the whole file (a session fixture; Ray takes
seconds to start, and pytest-xdist's ``--dist loadfile`` keeps this file in
one process). Each write is compared with a single-process ``DatasetWriter``
write of the same samples in the same order: every sample's stored bytes and
metadata are the same; the files are equal byte for byte where Ray wrote one
part (with several parts, each part's pages start on a page boundary, FMT-092,
so only the page layout differs).
"""
import glob
import io
import os
import re
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ffcvx.errors import WriterError
from ffcvx.fields import IntField, RGBImageField
from ffcvx.reader import Reader
from ffcvx.types import MIN_PAGE_SIZE
from ffcvx.writer import DatasetWriter

REPO = Path(__file__).resolve().parents[2]
#: The smallest page keeps the parts (one partly filled page each at least) small.
PAGE = MIN_PAGE_SIZE


@pytest.fixture(scope='session')
def ray_cluster():
    """``ray`` with a local cluster of 2 CPUs; ``preserve_order`` on for the Datasets made."""
    import ray
    from ray.data import DataContext

    # the raylet's workers inherit this environment: they must import this checkout
    paths = [str(REPO), str(REPO / 'backends' / 'turbojpeg'), os.environ.get('PYTHONPATH', '')]
    os.environ['PYTHONPATH'] = os.pathsep.join(p for p in paths if p)
    # read_parquet starts 3 footer-reading actors by default, each a worker process of its
    # own: seconds apiece on 2 shared cores, for 3 small files
    os.environ.setdefault('RAY_DATA_PARQUET_FOOTER_NUM_ACTORS', '1')
    context = DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    # 'local': a cluster of this session's own, even where another one runs
    ray.init(address='local', num_cpus=2, include_dashboard=False,
             object_store_memory=100 << 20, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope='module')
def photos(shared_dir):
    root = Path(shared_dir, 'data', 'photos')
    files = sorted(root.glob('*/*.jpg'))
    if not files:
        pytest.fail(f"no photos under {root}: the Ray tests need them")
    return root, files


@pytest.fixture(scope='module')
def jpegs(photos):
    """``[(JPEG bytes, label)]``: the photos at most 160 px wide, so each write is quick."""
    out = []
    for i, file in enumerate(photos[1]):
        image = Image.open(file).convert('RGB')
        image.thumbnail((160, 160))
        buffer = io.BytesIO()
        image.save(buffer, format='JPEG', quality=85)
        out.append((buffer.getvalue(), i % 5))
    return out


def _fields(mode='proportion', **options):
    return {'image': RGBImageField(write_mode=mode, max_resolution=48, **options),
            'label': IntField()}


def _reference(path, samples, fields):
    """The single-process write of ``samples`` in this order (one worker, seed 0)."""
    DatasetWriter(str(path), fields, page_size=PAGE, num_workers=1, progress=False,
                  seed=0).from_iterable(samples)
    return path


def _samples(path):
    """Per sample: each field's metadata without its pointer, and its stored bytes."""
    reader = Reader(str(path))
    out = []
    for i in range(reader.num_samples):
        sample = []
        for k, name in enumerate(reader.field_names):
            record = reader.metadata[f'f{k}'][i]
            if record.dtype.names:
                sample.append(tuple(record[m].item() for m in record.dtype.names
                                    if 'ptr' not in m))
                sample.append(bytes(reader.read_sample_region(i, name)))
            else:
                sample.append(record.item())
        out.append(tuple(sample))
    return out


def _no_parts_left(folder):
    assert not glob.glob(os.path.join(folder, '.*.ray-*.parts')), os.listdir(folder)


def _rows(jpegs):
    return [{'id': i, 'image': data, 'label': label} for i, (data, label) in enumerate(jpegs)]


@pytest.mark.parametrize('blocks', [1, 3, 7])
def test_in_memory_dataset_equals_one_write(ray_cluster, tmp_path, jpegs, blocks):
    """proportion mode draws at the index column's global positions: the same choices
    and bytes as one write, whatever the number of blocks (and tasks)."""
    from ffcvx.ray_datasink import BetonDatasink
    ds = ray_cluster.data.from_items(_rows(jpegs), override_num_blocks=blocks)
    sink = BetonDatasink(tmp_path / 'ray.beton', _fields(), index_column='id', seed=0,
                         page_size=PAGE)
    ds.write_datasink(sink)
    expected = _reference(tmp_path / 'one.beton', jpegs, _fields())
    merged = _samples(tmp_path / 'ray.beton')
    assert merged == _samples(expected)
    assert {sample[0][0] for sample in merged} == {0, 1}      # both modes drawn
    assert sum(count for _, count in sink.parts) == len(jpegs)
    if blocks == 1:
        assert len(sink.parts) == 1
        assert (tmp_path / 'ray.beton').read_bytes() == expected.read_bytes()
    else:
        assert len(sink.parts) >= blocks
    _no_parts_left(tmp_path)


def test_rows_in_any_order_are_placed_by_the_index_column(ray_cluster, tmp_path, jpegs):
    """After a random shuffle each task holds scattered positions (many runs, many
    parts); the file is still the one write's, sample for sample."""
    from ffcvx.ray_datasink import BetonDatasink
    few = jpegs[:12]
    ds = ray_cluster.data.from_items(_rows(few), override_num_blocks=3).random_shuffle(seed=5)
    assert [row['id'] for row in ds.take_all()] != list(range(len(few)))
    sink = BetonDatasink(tmp_path / 'ray.beton', _fields(), index_column='id', seed=0,
                         page_size=PAGE)
    ds.write_datasink(sink)
    assert len(sink.parts) > sink.tasks
    expected = _reference(tmp_path / 'one.beton', few, _fields())
    assert _samples(tmp_path / 'ray.beton') == _samples(expected)


def test_dataset_order_without_index_column_and_empty_tasks(ray_cluster, tmp_path, jpegs):
    """No index column: parts follow the task indices (preserve_order); a filter empties
    whole blocks, whose tasks write no part."""
    from ffcvx.ray_datasink import BetonDatasink
    keep = [i for i in range(len(jpegs)) if not 9 <= i < 21]
    ds = ray_cluster.data.from_items(_rows(jpegs), override_num_blocks=7).filter(
        lambda row: not 9 <= row['id'] < 21)
    sink = BetonDatasink(tmp_path / 'ray.beton', _fields('jpg'), page_size=PAGE)
    ds.write_datasink(sink)
    assert sink.tasks == 7 and len(sink.parts) < 7         # a task had no rows
    expected = _reference(tmp_path / 'one.beton', [jpegs[i] for i in keep], _fields('jpg'))
    assert _samples(tmp_path / 'ray.beton') == _samples(expected)


def test_no_rows_at_all_give_an_empty_file(ray_cluster, tmp_path, jpegs):
    from ffcvx.ray_datasink import BetonDatasink
    ds = ray_cluster.data.from_items(_rows(jpegs[:6]), override_num_blocks=2).filter(
        lambda row: False)
    sink = BetonDatasink(tmp_path / 'ray.beton', _fields(), index_column='id', seed=0,
                         page_size=PAGE)
    ds.write_datasink(sink)
    assert sink.parts == [] and Reader(str(tmp_path / 'ray.beton')).num_samples == 0
    _no_parts_left(tmp_path)


def test_read_images_pixels_and_paths(ray_cluster, tmp_path, photos):
    """read_images(include_paths=True): its pixels, or its paths read by the field
    (an ImageFolder's fast path and pass-through), each as one write of the folder."""
    from ffcvx.datasets import ImageFolder
    from ffcvx.ray_datasink import BetonDatasink
    root, files = photos
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())

    def labelled(row):
        row['label'] = classes.index(os.path.basename(os.path.dirname(row['path'])))
        return row

    ds = ray_cluster.data.read_images(str(root), include_paths=True, mode='RGB',
                                      override_num_blocks=4).map(labelled)
    pixels = BetonDatasink(tmp_path / 'pixels.beton', _fields('jpg'), page_size=PAGE)
    ds.write_datasink(pixels)
    assert len(pixels.parts) > 1
    folder = ImageFolder(str(root))
    decoded = [(np.asarray(Image.open(path).convert('RGB')), label)
               for path, label in folder.samples]
    expected = _reference(tmp_path / 'one_pixels.beton', decoded, _fields('jpg'))
    assert _samples(tmp_path / 'pixels.beton') == _samples(expected)

    fields = {'image': RGBImageField(write_mode='jpg', max_resolution=400,
                                     jpeg_passthrough=True), 'label': IntField()}
    by_path = BetonDatasink(tmp_path / 'paths.beton', fields, columns={'image': 'path'},
                            page_size=PAGE)
    ds.write_datasink(by_path)
    one = tmp_path / 'one_paths.beton'
    DatasetWriter(str(one), fields, page_size=PAGE, num_workers=1,
                  progress=False).from_indexed_dataset(folder)
    merged = _samples(tmp_path / 'paths.beton')
    assert merged == _samples(one)
    stored = [sample[1] for sample in merged]
    assert sum(data == Path(p).read_bytes() for data, (p, _) in zip(stored, folder.samples)) > 0


def _parquet_folder(folder, jpegs, files=3):
    import pyarrow as pa
    import pyarrow.parquet as pq
    folder.mkdir()
    for k, chunk in enumerate(np.array_split(np.arange(len(jpegs)), files)):
        table = pa.table({'image': pa.array([jpegs[i][0] for i in chunk], pa.binary()),
                          'label': pa.array([jpegs[i][1] for i in chunk], pa.int64())})
        pq.write_table(table, folder / f'part-{k}.parquet')
    return folder


def _webdataset_folder(folder, jpegs, shards=3):
    folder.mkdir()
    for k, chunk in enumerate(np.array_split(np.arange(len(jpegs)), shards)):
        with tarfile.open(folder / f'shard-{k}.tar', 'w') as tar:
            for i in chunk:
                for suffix, data in (('jpg', jpegs[i][0]), ('cls', str(jpegs[i][1]).encode())):
                    info = tarfile.TarInfo(f'{i:05d}.{suffix}')
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return folder


@pytest.mark.parametrize('source', ['parquet', 'webdataset'])
def test_encoded_bytes_pass_through(ray_cluster, tmp_path, jpegs, source):
    """JPEG bytes in a column (Parquet binary, a WebDataset member left undecoded) are
    stored byte for byte with jpeg_passthrough, as one write stores them."""
    from ffcvx.ray_datasink import BetonDatasink
    fields = {'image': RGBImageField(write_mode='jpg', max_resolution=200,
                                     jpeg_passthrough=True), 'label': IntField()}
    if source == 'parquet':
        ds = ray_cluster.data.read_parquet(str(_parquet_folder(tmp_path / 'pq', jpegs)))
        columns = None
    else:
        def labels_only(sample):          # the .jpg member stays the file's bytes
            return {**sample, 'cls': int(sample['cls'])}
        ds = ray_cluster.data.read_webdataset(str(_webdataset_folder(tmp_path / 'wds', jpegs)),
                                              decoder=labels_only)
        columns = {'image': 'jpg', 'label': 'cls'}
    sink = BetonDatasink(tmp_path / 'ray.beton', fields, columns=columns, page_size=PAGE)
    ds.write_datasink(sink)         # Ray may read the small files in one task
    assert sum(count for _, count in sink.parts) == len(jpegs)
    merged = _samples(tmp_path / 'ray.beton')
    assert merged == _samples(_reference(tmp_path / 'one.beton', jpegs, fields))
    assert [sample[1] for sample in merged] == [data for data, _ in jpegs]


def _failing_write(ray_cluster, tmp_path, rows, match, blocks=2, **options):
    from ffcvx.ray_datasink import BetonDatasink
    target = tmp_path / 'ray.beton'
    target.write_bytes(b'the old file')
    ds = ray_cluster.data.from_items(rows, override_num_blocks=blocks)
    with pytest.raises(WriterError, match=match):
        ds.write_datasink(BetonDatasink(target, page_size=PAGE, **options))
    assert target.read_bytes() == b'the old file'
    _no_parts_left(tmp_path)


def test_missing_column_and_wrong_type(ray_cluster, tmp_path, jpegs):
    rows = _rows(jpegs[:6])
    _failing_write(ray_cluster, tmp_path, rows, r"no column 'lab' \(field label\)",
                   fields=_fields('jpg'), columns={'label': 'lab'})
    named = [{**row, 'label': f'class {row["label"]}'} for row in rows]
    _failing_write(ray_cluster, tmp_path, named, 'IntField needs an integer column',
                   fields=_fields('jpg'))


def test_a_task_of_scattered_positions_is_refused(ray_cluster, tmp_path, jpegs):
    # 2 tasks of 20 rows: even positions, then odd ones; 20 runs each, 20 one-row parts
    rows = _rows((jpegs * 40)[:40])
    scattered = rows[0::2] + rows[1::2]
    _failing_write(ray_cluster, tmp_path, scattered, r"ds\.sort\('id'\)", fields=_fields(),
                   index_column='id', seed=0)


def test_a_sample_that_fails_fails_the_write(ray_cluster, tmp_path, jpegs):
    rows = _rows(jpegs[:8])
    rows[6]['image'] = b'\xff\xd8 not a JPEG'
    _failing_write(ray_cluster, tmp_path, rows, r'write task \d+ \(rows at positions 4 to 7',
                   fields=_fields(), index_column='id', seed=0)


@pytest.mark.parametrize('ids, match', [([0, 1, 2, 4], 'positions 3 to 3 are missing'),
                                        ([0, 1, 1, 2], 'position 1 occurs more than once')])
def test_index_column_must_hold_each_position_once(ray_cluster, tmp_path, jpegs, ids, match):
    rows = [{**row, 'id': i} for row, i in zip(_rows(jpegs), ids)]
    _failing_write(ray_cluster, tmp_path, rows, match, blocks=len(ids), fields=_fields(),
                   index_column='id', seed=0)


def test_dataset_order_needs_preserve_order(ray_cluster, tmp_path, jpegs):
    from ray.data import DataContext
    options = DataContext.get_current().execution_options
    options.preserve_order = False
    try:
        rows = _rows(jpegs[:4])
        _failing_write(ray_cluster, tmp_path, rows, 'preserve_order', fields=_fields('jpg'))
    finally:
        options.preserve_order = True


def test_arguments_are_checked_before_any_task(tmp_path):
    from ffcvx.ray_datasink import BetonDatasink
    with pytest.raises(ValueError, match='index_column='):
        BetonDatasink(tmp_path / 'x.beton', _fields(), seed=0)
    with pytest.raises(ValueError, match='seed='):
        BetonDatasink(tmp_path / 'x.beton', _fields(), index_column='id')
    with pytest.raises(ValueError, match='not fields'):
        BetonDatasink(tmp_path / 'x.beton', _fields('jpg'), columns={'img': 'image'})


def test_without_ray_the_import_names_the_extra(monkeypatch):
    from ffcvx.extras import MissingExtraError
    for name in ('ray', 'ray.data'):                    # as if not installed
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, 'ffcvx.ray_datasink', raising=False)
    with pytest.raises(MissingExtraError, match=r"pip install 'ffcvx\[ray\]'"):
        import ffcvx.ray_datasink  # noqa: F401


def test_the_readme_recipe(ray_cluster, tmp_path, photos, monkeypatch):
    """README "### Ray" (a ``py`` block: tests/project/test_readme.py has no Ray cluster), run here
    on a copy of the photos as ``train_dir``; both files hold what one write holds."""
    from ffcvx.datasets import ImageFolder
    block = re.search(r'### Ray\n.*?```py\n(.*?)```', (REPO / 'README.md').read_text(),
                      flags=re.S).group(1)
    train_dir = tmp_path / 'train'
    for file in photos[1]:
        (train_dir / file.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(file, train_dir / file.parent.name / file.name)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, 'README.md', 'exec'), {'train_dir': str(train_dir),
                                               'RGBImageField': RGBImageField,
                                               'IntField': IntField})
    folder = ImageFolder(str(train_dir))
    for name, mode, options in (('train_ray', 'jpg', {'jpeg_passthrough': True}),
                                ('train_ray_mixed', 'proportion', {})):
        fields = {'image': RGBImageField(write_mode=mode, max_resolution=256, **options),
                  'label': IntField()}
        DatasetWriter(f'{name}_one.beton', fields, num_workers=1, progress=False,
                      seed=0).from_indexed_dataset(folder)
        assert _samples(f'{name}.beton') == _samples(f'{name}_one.beton')
    _no_parts_left(tmp_path)
