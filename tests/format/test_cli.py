"""The ``ffcvx`` command line (ffcvx.cli, python -m ffcvx)."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ffcvx.cli import main
from ffcvx.datasets import FASHION_MNIST_ROOT, FashionMNIST
from ffcvx.reader import Reader

HAVE_FASHION_MNIST = os.path.isfile(os.path.join(FASHION_MNIST_ROOT, 'train-images-idx3-ubyte.gz'))


def make_folder(root, sizes=((40, 60), (300, 200), (20, 20), (64, 64), (90, 10))):
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        cls = root / ('cat' if i % 2 else 'dog')
        cls.mkdir(parents=True, exist_ok=True)
        yy, xx = np.mgrid[0:h, 0:w]
        image = np.stack([yy * 3 % 256, xx * 5 % 256, rng.integers(0, 256, (h, w))], -1)
        Image.fromarray(image.astype(np.uint8)).save(cls / f'{i}.png')


def test_info_golden(capsys, golden_dir):
    assert main(['info', os.path.join(golden_dir, 'rgb_smart.beton')]) == 0
    out = capsys.readouterr().out
    assert 'samples:           40' in out
    assert 'page size:         2097152' in out
    assert 'pages:             1 written' in out
    assert 'image: RGBImageField (type id 2)' in out
    assert 'modes: jpg 25, raw 15' in out
    assert 'label: IntField (type id 1)' in out
    assert main(['info', os.path.join(golden_dir, 'torch_tensor.beton')]) == 0
    out = capsys.readouterr().out
    assert 'TorchTensorField (type id 6), read as NDArrayField' in out
    assert "dtype <f4, shape (5,)" in out
    assert main(['info', os.path.join(golden_dir, 'bytes_json.beton')]) == 0
    out = capsys.readouterr().out
    assert '3 empty' in out and 'JSONField (type id 5)' in out
    assert main(['info', os.path.join(golden_dir, 'ints_floats.beton')]) == 0
    out = capsys.readouterr().out
    assert 'pages:             0 written' in out and '4 NaN, 2 infinite' in out


def test_info_bad_file(tmp_path, capsys):
    bad = tmp_path / 'bad.beton'
    bad.write_bytes(b'\x07\x00' + bytes(40))
    assert main(['info', str(bad)]) == 2
    err = capsys.readouterr().err
    assert 'unsupported format version 7' in err and 'FMT-' in err and 'Traceback' not in err
    assert main(['info', str(tmp_path / 'missing.beton')]) == 2
    assert 'no such file' in capsys.readouterr().err


def test_python_m_ffcvx_bad_file_has_no_traceback(tmp_path):
    bad = tmp_path / 'short.beton'
    bad.write_bytes(b'\x02\x00\x01')
    proc = subprocess.run([sys.executable, '-m', 'ffcvx', 'info', str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert 'ffcvx: error:' in proc.stderr and 'Traceback' not in proc.stderr


def _dead_pid():
    return subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True, timeout=60).stdout.strip()


def test_clean_of_a_path_that_does_not_exist_fails(tmp_path, capsys):
    """Neither the path nor a temporary file of it: exit 2 naming it; the other paths are cleaned."""
    from ffcvx.writer.temp import _host_token
    # A killed first write: no target, but its stale temporary file; a folder holding another.
    first = f'.first.beton.ffcvx-{_host_token()}-{_dead_pid()}-1-aa.tmp'
    (tmp_path / first).write_bytes(b'x' * 10)
    folder = tmp_path / 'out'
    folder.mkdir()
    other = f'.t.beton.ffcvx-{_host_token()}-{_dead_pid()}-1-bb.tmp'
    (folder / other).write_bytes(b'x' * 10)
    assert main(['clean', str(tmp_path / 'first.beton')]) == 0
    assert not (tmp_path / first).exists() and capsys.readouterr().err == ''
    missing = [tmp_path / 'typo.beton', tmp_path / 'no-such-folder' / 'x.beton',
               tmp_path / 'no-such-folder']
    assert main(['clean', *map(str, missing), str(folder)]) == 2
    out, err = capsys.readouterr()
    assert not (folder / other).exists() and '1 stale temporary file(s) removed' in out
    assert err.startswith('ffcvx: error: ') and err.count('no such file or folder') == 3
    assert all(str(path) in err for path in missing)
    assert main(['clean', str(folder)]) == 0         # an existing folder, nothing left in it
    assert capsys.readouterr().err == ''


def test_convert_imagefolder(tmp_path, capsys):
    make_folder(tmp_path / 'src')
    out = tmp_path / 'out.beton'
    code = main(['convert', 'imagefolder', str(tmp_path / 'src'), str(out), '--max-resolution', '100',
                 '--jpeg-quality', '80', '--page-size', str(1 << 21), '--num-workers', '2',
                 '--chunksize', '2', '--quiet'])
    assert code == 0
    assert 'wrote' in capsys.readouterr().out
    reader = Reader(out)
    assert reader.num_samples == 5 and reader.page_size == 1 << 21
    assert reader.field_names == ['image', 'label']
    md = reader.metadata
    assert (md['f0']['mode'] == 0).all()                                   # jpg is the default
    # cat (label 0) holds files 1.png and 3.png, dog (label 1) 0.png, 2.png, 4.png
    assert md['f1'].tolist() == [0, 0, 1, 1, 1]
    sizes = list(zip(md['f0']['height'].tolist(), md['f0']['width'].tolist()))
    assert sizes == [(100, 66), (64, 64), (40, 60), (20, 20), (90, 10)]

    assert main(['convert', 'imagefolder', str(tmp_path / 'src'), str(out), '--write-mode', 'smart',
                 '--smart-threshold', str(64 * 64 * 3), '--quiet', '--num-workers', '1']) == 0
    assert Reader(out).metadata['f0']['mode'].tolist() == [0, 1, 1, 1, 1]
    assert main(['info', str(out)]) == 0
    assert 'modes: jpg 1, raw 4' in capsys.readouterr().out


def test_convert_imagefolder_errors(tmp_path, capsys):
    assert main(['convert', 'imagefolder', str(tmp_path / 'nope'), str(tmp_path / 'o.beton')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    (tmp_path / 'empty' / 'cls').mkdir(parents=True)
    assert main(['convert', 'imagefolder', str(tmp_path / 'empty'), str(tmp_path / 'o.beton')]) == 2
    assert 'no images found' in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(['convert', 'imagefolder', str(tmp_path), str(tmp_path / 'o.beton'), '--page-size', '3000000'])
    assert info.value.code == 2
    assert 'power of two' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['convert', 'imagefolder', str(tmp_path), str(tmp_path / 'o.beton'), '--jpeg-quality', '0'])


def test_convert_fashion_mnist_missing_source(tmp_path, capsys):
    assert main(['convert', 'fashion-mnist', str(tmp_path / 'out'), '--source', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f'Fashion-MNIST not found at {tmp_path}' in err and 'dataset-fashion-mnist' in err


@pytest.mark.skipif(not HAVE_FASHION_MNIST, reason='Debian dataset-fashion-mnist not installed')
def test_convert_fashion_mnist_full(tmp_path, capsys):
    out = tmp_path / 'fm'
    assert main(['convert', 'fashion-mnist', str(out), '--quiet', '--chunksize', '1000']) == 0
    train, test = Reader(out / 'train.beton'), Reader(out / 'test.beton')
    assert train.num_samples == 60000 and test.num_samples == 10000
    assert train.field_names == ['image', 'label']
    source = FashionMNIST(train=True)
    assert np.array_equal(train.metadata['f1'], source.labels.astype(np.int64))
    md = train.metadata['f0']
    assert (md['mode'] == 1).all() and (md['width'] == 28).all() and (md['height'] == 28).all()
    for i in (0, 1, 31337, 59999):
        pixels = train.read_sample_region(i, 'image').reshape(28, 28, 3)
        assert np.array_equal(pixels, np.repeat(source.images[i][:, :, None], 3, axis=2))
    assert np.array_equal(test.metadata['f1'], FashionMNIST(train=False).labels.astype(np.int64))
