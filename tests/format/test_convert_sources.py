"""``ffcvx convert webdataset`` and ``ffcvx convert hf``: encoded images in, stored as given.

Each test writes its own small dataset (JPEGs made with Pillow from the
shared photos), converts it with the command line and reads the ``.beton``
back: sample count, order, labels, and with ``--jpeg-passthrough`` (no
``--max-resolution``) the stored JPEGs byte for byte equal to the inputs.
"""
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from ffcvx.cli import main
from ffcvx.reader import Reader

REPO = Path(__file__).resolve().parents[2]


def sha(data):
    return hashlib.sha256(bytes(data)).hexdigest()


@pytest.fixture(scope='module')
def jpegs(shared_dir):
    """Ten small baseline JPEGs (bytes) of the shared photos, 40 to 72 pixels wide."""
    paths = sorted((shared_dir / 'data' / 'photos').glob('*/*.jpg'))
    assert len(paths) >= 10, f"expected the shared photos under {shared_dir}/data/photos"
    out = []
    for k, path in enumerate(paths[:10]):
        with Image.open(path) as image:
            small = image.convert('RGB').resize((40 + 8 * (k % 5), 32 + 4 * (k % 3)))
        buffer = io.BytesIO()
        small.save(buffer, 'JPEG', quality=85)
        out.append(buffer.getvalue())
    return out


def stored(path):
    """``(labels, [sha256 of each stored image region], modes)`` of a converted file."""
    reader = Reader(str(path))
    regions = [sha(reader.read_sample_region(i, 'image')) for i in range(reader.num_samples)]
    return reader.metadata['f1'].tolist(), regions, reader.metadata['f0']['mode'].tolist()


def fails(args, capsys, *needles):
    """Run ``ffcvx ARGS``: exit status 2, one error line holding every needle."""
    capsys.readouterr()                 # what came before (datasets' progress bars)
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('ffcvx: error: '), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------
# webdataset

def write_shards(folder, jpegs, labels, per_shard=5, extra=None):
    """Shards ``data-000.tar``, ... of (jpg, cls) samples; returns their tar members' sha256."""
    import webdataset
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(jpegs), per_shard):
        with webdataset.TarWriter(str(folder / f'data-{start // per_shard:03d}.tar')) as sink:
            for i in range(start, min(start + per_shard, len(jpegs))):
                sample = {'__key__': f'sample{i:04d}', 'jpg': jpegs[i], 'cls': str(labels[i])}
                sample.update((extra or {}).get(i, {}))
                sink.write(sample)
    members = []
    for tar in sorted(folder.glob('data-*.tar')):
        with tarfile.open(tar) as handle:
            members += [sha(handle.extractfile(m).read()) for m in handle.getmembers()
                        if m.name.endswith('.jpg')]
    return members


def test_webdataset_passthrough_keeps_bytes_and_order(tmp_path, jpegs, capsys):
    labels = [7, 3, 0, 11, 2, 2, 9, 1, 5, 4]
    members = write_shards(tmp_path / 'shards', jpegs, labels)
    assert len(members) == 10
    out = tmp_path / 'out.beton'
    pattern = str(tmp_path / 'shards' / 'data-{000..001}.tar')
    assert main(['convert', 'webdataset', pattern, str(out), '--jpeg-passthrough',
                 '--num-workers', '2', '--quiet']) == 0
    assert f"wrote {out}: 10 samples" in capsys.readouterr().out
    got_labels, regions, modes = stored(out)
    assert got_labels == labels and modes == [0] * 10
    assert regions == members                    # byte for byte, in shard then tar order

    # shards listed one by one, in the reverse order: the file follows the arguments
    shards = [str(tmp_path / 'shards' / 'data-001.tar'), str(tmp_path / 'shards' / 'data-000.tar')]
    assert main(['convert', 'webdataset', *shards, str(out), '--quiet', '--jpeg-passthrough']) == 0
    assert stored(out)[0] == labels[5:] + labels[:5]


def test_webdataset_in_a_subprocess_reencodes_and_shrinks(tmp_path, jpegs):
    """``python -m ffcvx.cli``; without passthrough the JPEGs are re-encoded, here also shrunk."""
    labels = list(range(10))
    members = write_shards(tmp_path / 'shards', jpegs, labels, per_shard=4)
    out = tmp_path / 'out.beton'
    env = dict(os.environ, PYTHONPATH=str(REPO), TQDM_DISABLE='1')
    proc = subprocess.run([sys.executable, '-m', 'ffcvx.cli', 'convert', 'webdataset',
                           str(tmp_path / 'shards' / 'data-{000..002}.tar'), str(out),
                           '--max-resolution', '24', '--num-workers', '2'],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}: 10 samples" in proc.stdout
    reader = Reader(str(out))
    assert reader.metadata['f1'].tolist() == labels
    record = reader.metadata['f0']
    assert (record['width'] == 24).all()         # every small photo is wider than tall
    assert not set(stored(out)[1]) & set(members)
    decoded = Image.open(io.BytesIO(reader.read_sample_region(0, 'image').tobytes()))
    assert decoded.format == 'JPEG' and decoded.size == (24, int(record['height'][0]))


def test_webdataset_image_key_and_label_key(tmp_path, jpegs, capsys):
    """A PNG member and another label member name; --image-key picks among members."""
    png = io.BytesIO()
    Image.open(io.BytesIO(jpegs[0])).save(png, 'PNG')
    import webdataset
    (tmp_path / 'shards').mkdir()
    with webdataset.TarWriter(str(tmp_path / 'shards' / 'mixed.tar')) as sink:
        sink.write({'__key__': 'a', 'png': png.getvalue(), 'label.txt': ' 12\n'})
        sink.write({'__key__': 'b', 'jpg': jpegs[1], 'png': png.getvalue(), 'label.txt': '3'})
    out = tmp_path / 'out.beton'
    shard = str(tmp_path / 'shards' / 'mixed.tar')
    assert main(['convert', 'webdataset', shard, str(out), '--label-key', 'label.txt',
                 '--jpeg-passthrough', '--quiet', '--num-workers', '1']) == 0
    labels, regions, _ = stored(out)
    assert labels == [12, 3] and regions[1] == sha(jpegs[1])   # jpg comes first by default
    assert main(['convert', 'webdataset', shard, str(out), '--label-key', 'label.txt',
                 '--image-key', 'png', '--write-mode', 'png', '--quiet']) == 0
    reader = Reader(str(out))
    assert reader.metadata['f0']['mode'].tolist() == [2, 2]
    capsys.readouterr()
    fails(['convert', 'webdataset', shard, str(tmp_path / 'x.beton'), '--image-key', 'jpg'],
          capsys, "sample 'a'", 'mixed.tar', 'no image member (.jpg)', 'its members: .label.txt, .png')
    assert not (tmp_path / 'x.beton').exists()


def test_webdataset_bad_inputs_leave_nothing(tmp_path, jpegs, capsys):
    write_shards(tmp_path / 'shards', jpegs[:4], [0, 1, 2, 3], per_shard=2,
                 extra={3: {'cls': 'cat'}})
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    out = str(out_dir / 'o.beton')
    shards = str(tmp_path / 'shards' / 'data-{000..001}.tar')
    fails(['convert', 'webdataset', str(tmp_path / 'shards' / 'data-{000..003}.tar'), out],
          capsys, 'no such shard', 'data-002.tar', 'data-003.tar')
    fails(['convert', 'webdataset', shards, out], capsys,
          "sample 'sample0003'", "label .cls is b'cat', not an integer")
    fails(['convert', 'webdataset', shards, out, '--label-key', 'txt'], capsys,
          'no label member .txt', 'its members: .cls, .jpg')
    fails(['convert', 'webdataset', shards, str(tmp_path / 'no-such-dir' / 'o.beton')], capsys,
          'output directory', 'does not exist')
    assert os.listdir(out_dir) == []


# ---------------------------------------------------------------------------
# Hugging Face datasets and Parquet

def hf_dataset(jpegs, labels, names=None):
    """A datasets.Dataset of ``image`` (Image feature holding the JPEG bytes) and ``label``."""
    from datasets import ClassLabel, Dataset, Image as ImageFeature
    dataset = Dataset.from_dict({'image': [{'bytes': b, 'path': None} for b in jpegs],
                                 'label': labels}).cast_column('image', ImageFeature())
    if names:
        dataset = dataset.cast_column('label', ClassLabel(names=names))
    return dataset


def test_hf_saved_dataset_passthrough(tmp_path, jpegs, capsys):
    labels = [2, 0, 1, 1, 2, 0, 0, 1, 2, 2]
    hf_dataset(jpegs, labels, names=['cat', 'dog', 'fox']).save_to_disk(str(tmp_path / 'ds'))
    out = tmp_path / 'out.beton'
    assert main(['convert', 'hf', str(tmp_path / 'ds'), str(out), '--jpeg-passthrough',
                 '--num-workers', '2', '--chunksize', '3', '--quiet']) == 0
    assert f"wrote {out}: 10 samples" in capsys.readouterr().out
    got_labels, regions, modes = stored(out)
    assert got_labels == labels and modes == [0] * 10
    assert regions == [sha(b) for b in jpegs]


def test_hf_dataset_dict_splits(tmp_path, jpegs, capsys):
    from datasets import DatasetDict
    DatasetDict({'train': hf_dataset(jpegs[:6], [0, 1, 2, 3, 4, 5]),
                 'test': hf_dataset(jpegs[6:], [9, 8, 7, 6])}).save_to_disk(str(tmp_path / 'dd'))
    out = tmp_path / 'out.beton'
    assert main(['convert', 'hf', str(tmp_path / 'dd'), str(out), '--quiet',
                 '--jpeg-passthrough']) == 0                      # train by default
    assert stored(out)[0] == [0, 1, 2, 3, 4, 5]
    assert main(['convert', 'hf', str(tmp_path / 'dd'), str(out), '--split', 'test', '--quiet',
                 '--jpeg-passthrough']) == 0
    labels, regions, _ = stored(out)
    assert labels == [9, 8, 7, 6] and regions == [sha(b) for b in jpegs[6:]]
    capsys.readouterr()
    fails(['convert', 'hf', str(tmp_path / 'dd'), str(tmp_path / 'x.beton'), '--split', 'val'],
          capsys, "no split 'val'", 'its splits: train, test')
    assert not (tmp_path / 'x.beton').exists()


def test_hf_parquet_files_glob_and_pyarrow_columns(tmp_path, jpegs, capsys):
    """Dataset.to_parquet files matched by a glob, in name order; a plain pyarrow file too."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    (tmp_path / 'pq').mkdir()
    hf_dataset(jpegs[5:], [5, 6, 7, 8, 9]).to_parquet(str(tmp_path / 'pq' / 'train-1.parquet'))
    hf_dataset(jpegs[:5], [0, 1, 2, 3, 4]).to_parquet(str(tmp_path / 'pq' / 'train-0.parquet'))
    out = tmp_path / 'out.beton'
    assert main(['convert', 'hf', str(tmp_path / 'pq' / 'train-*.parquet'), str(out),
                 '--jpeg-passthrough', '--quiet', '--num-workers', '2', '--chunksize', '2']) == 0
    labels, regions, _ = stored(out)
    assert labels == list(range(10)) and regions == [sha(b) for b in jpegs]

    # binary images and int16 labels under other names, row groups of 3 rows
    table = pa.table({'img': pa.array(jpegs, pa.binary()),
                      'y': pa.array([4, 3, 2, 1, 0, 4, 3, 2, 1, 0], pa.int16())})
    pq.write_table(table, str(tmp_path / 'plain.parquet'), row_group_size=3)
    assert main(['convert', 'hf', str(tmp_path / 'plain.parquet'), str(out), '--image-column',
                 'img', '--label-column', 'y', '--jpeg-passthrough', '--quiet',
                 '--num-workers', '2', '--chunksize', '2']) == 0
    labels, regions, _ = stored(out)
    assert labels == [4, 3, 2, 1, 0, 4, 3, 2, 1, 0] and regions == [sha(b) for b in jpegs]


def test_hf_image_path_without_bytes(tmp_path, jpegs):
    """An Image value that holds only a path: the field reads the file (still byte for byte)."""
    from datasets import Dataset, Image as ImageFeature
    paths = []
    for i, data in enumerate(jpegs[:3]):
        paths.append(str(tmp_path / f'{i}.jpg'))
        Path(paths[-1]).write_bytes(data)
    Dataset.from_dict({'image': paths, 'label': [1, 2, 3]}).cast_column(
        'image', ImageFeature()).save_to_disk(str(tmp_path / 'ds'))
    out = tmp_path / 'out.beton'
    assert main(['convert', 'hf', str(tmp_path / 'ds'), str(out), '--jpeg-passthrough',
                 '--quiet']) == 0
    assert stored(out)[:2] == ([1, 2, 3], [sha(b) for b in jpegs[:3]])


def test_hf_rows_pickle_small_and_write_through_forkserver(tmp_path, jpegs):
    """Workers spawned while another thread runs get file names, not the table."""
    import pickle
    import threading

    from ffcvx.fields import IntField, RGBImageField
    from ffcvx.hf_images import open_images
    from ffcvx.writer import DatasetWriter
    hf_dataset(jpegs * 20, list(range(200))).save_to_disk(str(tmp_path / 'ds'))
    rows = open_images([str(tmp_path / 'ds')])
    assert rows[199] == (jpegs[9], 199)          # opened here: the pickle still leaves it out
    assert len(pickle.dumps(rows)) < 2000 < sum(len(b) for b in jpegs)
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()                               # the writer now starts workers with forkserver
    try:
        out = tmp_path / 'out.beton'
        DatasetWriter(str(out), {'image': RGBImageField('jpg', jpeg_passthrough=True),
                                 'label': IntField()}, num_workers=2, progress=False
                      ).from_indexed_dataset(rows, chunksize=30)
    finally:
        stop.set()
        thread.join()
    labels, regions, _ = stored(out)
    assert labels == list(range(200)) and regions == [sha(b) for b in jpegs * 20]


def test_hf_bad_inputs_leave_nothing(tmp_path, jpegs, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq
    hf_dataset(jpegs[:3], [0, 1, 2]).save_to_disk(str(tmp_path / 'ds'))
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    out = str(out_dir / 'o.beton')
    fails(['convert', 'hf', str(tmp_path / 'missing'), out], capsys,
          'missing: no such file or folder')
    fails(['convert', 'hf', str(tmp_path / 'nothing-*.parquet'), out], capsys, 'no file matches')
    fails(['convert', 'hf', str(out_dir), out], capsys,
          'neither a dataset saved with save_to_disk', '.parquet files')
    fails(['convert', 'hf', str(tmp_path / 'ds'), out, '--image-column', 'picture'], capsys,
          "has no column 'picture'", 'its columns: image, label')
    fails(['convert', 'hf', str(tmp_path / 'ds'), out, '--label-column', 'image'], capsys,
          "label column 'image'", 'not integers')
    fails(['convert', 'hf', str(tmp_path / 'ds'), out, '--split', 'train'], capsys,
          'holds one Dataset, not a DatasetDict', "leave out --split 'train'")
    (tmp_path / 'fake.parquet').write_bytes(b'not parquet at all')
    fails(['convert', 'hf', str(tmp_path / 'fake.parquet'), out], capsys, 'is not a Parquet file')
    pq.write_table(pa.table({'image': pa.array(jpegs[:3], pa.binary()),
                             'label': pa.array(['0', '1', '2'])}), str(tmp_path / 'text.parquet'))
    fails(['convert', 'hf', str(tmp_path / 'text.parquet'), out], capsys,
          "label column 'label'", 'holds string values, not integers')
    pq.write_table(pa.table({'image': pa.array(jpegs[:3], pa.binary()),
                             'label': pa.array([0, None, 2], pa.int64())}),
                   str(tmp_path / 'null.parquet'))
    fails(['convert', 'hf', str(tmp_path / 'null.parquet'), out], capsys,
          'missing (null) values, the first at sample 1')
    pq.write_table(pa.table({'image': pa.array([1, 2, 3]), 'label': pa.array([0, 1, 2])}),
                   str(tmp_path / 'ints.parquet'))
    fails(['convert', 'hf', str(tmp_path / 'ints.parquet'), out], capsys,
          "column 'image'", 'holds int64, not encoded images')
    fails(['convert', 'hf', str(tmp_path / 'text.parquet'), out, '--split', 'test'], capsys,
          "--split 'test' selects a split of a DatasetDict; Parquet files have none")
    assert os.listdir(out_dir) == []
    # a null image is found by the worker that reads it: a write error naming the sample
    pq.write_table(pa.table({'image': pa.array([jpegs[0], None], pa.binary()),
                             'label': pa.array([0, 1])}), str(tmp_path / 'hole.parquet'))
    capsys.readouterr()
    assert main(['convert', 'hf', str(tmp_path / 'hole.parquet'), out, '--quiet']) == 1
    assert "sample 1 has no image: column 'image' is null there" in capsys.readouterr().err
    assert os.listdir(out_dir) == []


# ---------------------------------------------------------------------------
# the image folder, and the optional packages

def test_imagefolder_passthrough_stores_the_photos_as_they_are(tmp_path, shared_dir, capsys):
    photos = shared_dir / 'data' / 'photos'
    out = tmp_path / 'photos.beton'
    assert main(['convert', 'imagefolder', str(photos), str(out), '--jpeg-passthrough',
                 '--quiet', '--num-workers', '2']) == 0
    from ffcvx.datasets import ImageFolder
    samples = ImageFolder(photos).samples
    labels, regions, modes = stored(out)
    assert labels == [label for _, label in samples]
    assert regions == [sha(Path(path).read_bytes()) for path, _ in samples]


@pytest.mark.parametrize('command, blocked, extra', [
    (['hf', '{ds}'], 'datasets', 'hf'),
    (['hf', '{parquet}'], 'pyarrow', 'hf'),
    (['webdataset', '{shard}'], 'webdataset', 'webdataset'),
])
def test_missing_package_names_the_extra(tmp_path, jpegs, command, blocked, extra):
    """A real interpreter in which importing the package fails, as when it is not installed."""
    hf_dataset(jpegs[:2], [0, 1]).save_to_disk(str(tmp_path / 'ds'))
    hf_dataset(jpegs[:2], [0, 1]).to_parquet(str(tmp_path / 'd.parquet'))
    write_shards(tmp_path / 'shards', jpegs[:2], [0, 1])
    paths = {'ds': tmp_path / 'ds', 'parquet': tmp_path / 'd.parquet',
             'shard': tmp_path / 'shards' / 'data-000.tar'}
    argv = ['convert', command[0], command[1].format(**paths), str(tmp_path / 'o.beton')]
    code = (f"import sys; sys.modules[{blocked!r}] = None\n"
            f"from ffcvx.cli import main\n"
            f"sys.exit(main({argv!r}))")
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (f"ffcvx: error: ffcvx convert {command[0]} needs the {blocked!r} "
                           f"package: pip install 'ffcvx[{extra}]'\n")
    assert not (tmp_path / 'o.beton').exists()
