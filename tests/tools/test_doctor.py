"""``ffcvx doctor`` on real files: the photos (local and behind a throttled HTTP server), Fashion-MNIST.

The doctor runs in this process (``ffcvx.cli.main``), so the later runs reuse
the code the first compiled (``ffcvx.pipeline.code_cache``).
"""
import contextlib
import io
import json
import shutil

import numpy as np
import pytest

from _http_servers import NginxServer

from ffcvx.cli import main
from ffcvx.doctor.plot import FIGURE_SIZE
from ffcvx.testing import shared_dir

#: A quick sample: 4 batches of 32 samples per timed epoch.
QUICK = ['--batches', '4', '--batch-size', '32']
#: Timed epochs of ~0.4 s for the comparison of img/s: shorter ones are mostly scheduling noise.
STEADY = ['--batches', '12', '--batch-size', '32']
DIAGNOSIS_KEYS = {'file', 'samples', 'stages', 'storage', 'resident', 'resident_note', 'measured',
                  'predicted', 'with_step', 'host_to_device', 'cores', 'other_load', 'workers',
                  'step_ms', 'verdict', 'seconds'}


def doctor(*argv):
    """Run ``ffcvx doctor argv``; returns (exit status, stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(['doctor', *map(str, argv)])
    return status, out.getvalue()


def doctor_json(*argv):
    status, out = doctor(*argv, '--json')
    assert status == 0
    return json.loads(out)


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    path = tmp_path_factory.mktemp('doctor') / 'photos.beton'
    assert main(['convert', 'imagefolder', str(shared_dir() / 'data' / 'photos'), str(path),
                 '--write-mode', 'jpg', '--quiet', '--num-workers', '1']) == 0
    return path


@pytest.fixture(scope='module')
def photos_rrc(photos, tmp_path_factory):
    """The doctor's JSON for RRC 224 on the photos, uint8 output, and the PNG it drew."""
    png = tmp_path_factory.mktemp('plot') / 'doctor.png'
    return doctor_json(photos, '--decoder', 'rrc224', '--no-to-tensor', *STEADY,
                       '--plot', png), png


def test_rrc_on_photos_is_decode_bound(photos_rrc):
    diagnosis, _ = photos_rrc
    assert set(diagnosis) == DIAGNOSIS_KEYS
    assert list(diagnosis['stages']) == ['loader', 'RandomResizedCropRGBImageDecoder']
    stages = diagnosis['stages']
    assert stages['RandomResizedCropRGBImageDecoder'] > 10 * stages['loader'] > 0
    assert diagnosis['verdict']['bound'] == 'decode'
    assert diagnosis['storage']['img_per_s'] > max(diagnosis['measured'].values())
    assert diagnosis['resident_note'] == '' and 0 <= diagnosis['resident'] <= 1


def test_plot_has_its_size_and_content(photos_rrc):
    from PIL import Image
    _, png = photos_rrc
    with Image.open(png) as image:
        assert image.size == FIGURE_SIZE
        pixels = np.asarray(image.convert('RGB'))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50   # bars, lines, text: not blank


def test_throttled_http_is_storage_bound(photos, tmp_path):
    server = NginxServer(tmp_path / 'http', latency_s=0.02, rate=5_000_000).start()
    try:
        shutil.copy(photos, server.root / 'photos.beton')
        diagnosis = doctor_json(server.url_for('photos.beton'), '--decoder', 'rrc224',
                                '--no-to-tensor', *QUICK, '--max-workers', '1')
    finally:
        server.stop()
    assert diagnosis['verdict']['bound'] == 'storage'
    assert diagnosis['resident'] is None and diagnosis['resident_note'] == 'not local'
    # 5 MB/s over pages of 8 MiB holding 31 samples: a few img/s at most
    assert diagnosis['storage']['bytes_per_s'] < 6_000_000
    assert 'QUASI_RANDOM' in diagnosis['verdict']['advice']


def test_fashion_mnist_report(tmp_path):
    from ffcvx.datasets import FashionMNIST
    from ffcvx.fields import GrayscaleImageField
    from _common import write_labelled
    images = FashionMNIST(train=False).images[:2048]
    path = write_labelled(tmp_path / 'fmnist.beton', list(images),
                          GrayscaleImageField(write_mode='raw'))
    status, report = doctor(path, '--decoder', 'simple', *QUICK, '--max-workers', '1')
    assert status == 0
    lines = report.splitlines()
    assert lines[0].startswith(f"{path}: 128 samples per timed epoch")
    for step in ('SimpleRGBImageDecoder', 'NormalizeImage', 'ToTensor', 'ToTorchImage'):
        assert any(line.split()[:1] == [step] for line in lines), report
    assert lines[-1].startswith('verdict: ') and '-bound at ' in lines[-1]
    status, line = doctor(path, '--decoder', 'simple', *QUICK, '--max-workers', '1', '--brief')
    assert status == 0 and len(line.splitlines()) == 1 and '-bound at ' in line


@pytest.mark.parametrize('argv, message', [
    (['{text}'], 'format version'),
    (['{photos}', '--decoder', 'bicubic'], 'unknown decoder preset'),
    (['{photos}', '--pipelines', 'no_such_module_xyz:pipelines'], 'cannot import'),
    (['{photos}', '--pipelines', 'json'], 'module:function'),
    (['{photos}', '--image-field', 'picture'], "no field 'picture'"),
    (['{missing}'], 'no such file'),
])
def test_bad_input_is_one_line_and_status_2(argv, message, photos, tmp_path, capsys):
    text = tmp_path / 'notes.beton'
    text.write_text("not a beton file\n" * 10)
    values = {'text': text, 'photos': photos, 'missing': tmp_path / 'missing.beton'}
    status, _ = doctor(*[a.format(**values) for a in argv])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith('ffcvx: error: ')
    assert message in err
