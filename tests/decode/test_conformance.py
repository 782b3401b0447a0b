"""The decoder conformance suite (ffcvx.testing.decoders, ``ffcvx conformance``).

* every installed CPU backend passes it through the command line (exit 0), and
  nvjpeg, unavailable without CUDA, reports ``unavailable: no CUDA device``
  and its skips (exit 2, spec/backends.md BKD-061);
* backends that break the contract (wrong pixels, swapped channels, a
  crop off by one pixel, a wrong status for a small buffer) fail it, so the
  suite can fail;
* a third-party backend (``tests/third_party_backend``, package
  ``ffcvx_toy_backend``) installed with pip into a temporary folder passes it
  and decodes a PNG ``.beton`` through ``Loader(backend='toy')`` exactly;
* the spec vectors (package data ``ffcvx/testing/vectors``) are what
  ``spec/vectors/make_vectors.py`` writes, and the suite finds them through
  ``importlib.resources``, as an installed ffcvx does.
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ffcvx.backend_api import PythonDecoderBackend
from ffcvx.registry import Registry
from ffcvx.testing.decoders import CHECK_NAMES, Vectors, run_suite

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / 'ffcvx' / 'testing' / 'vectors'
MAKE_VECTORS = REPO / 'spec' / 'vectors' / 'make_vectors.py'


def conformance(*args, env=None):
    """``python -m ffcvx conformance ARGS``: (exit status, stdout, stderr)."""
    proc = subprocess.run([sys.executable, '-m', 'ffcvx', 'conformance', *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def table_rows(stdout):
    """``{check: (result, rest of the line)}`` from the printed table."""
    rows = {}
    for line in stdout.splitlines():
        # columns are separated by two spaces or more; clause lists hold single spaces
        parts = re.split(r'\s{2,}', line.strip(), maxsplit=3)
        if len(parts) >= 2 and parts[0] in CHECK_NAMES and parts[1] in ('pass', 'fail', 'skip'):
            rows[parts[0]] = (parts[1], parts[3] if len(parts) > 3 else '')
    return rows


@pytest.fixture(scope='module')
def vectors():
    return Vectors()


@pytest.fixture(scope='module')
def pillow():
    backend = Registry('ffcvx.decoders').get('pillow')
    ok, why = backend.available()
    assert ok, why
    return backend


# --- the installed backends, through the CLI ------------------------------------------------

@pytest.mark.parametrize('name, expect_pass, expect_skip', [
    ('turbojpeg', {'jpeg-vectors', 'jpeg-golden', 'crop', 'scale', 'corrupt', 'capacity', 'gray'},
     {'png-vectors', 'target-ignored', 'batch'}),
    ('imagecodecs', {'jpeg-vectors', 'jpeg-golden', 'png-vectors', 'target-ignored', 'corrupt',
                     'gray'},
     {'crop', 'scale', 'batch'}),
    ('pillow', {'jpeg-vectors', 'jpeg-golden', 'png-vectors', 'target-ignored', 'corrupt', 'gray'},
     {'crop', 'scale', 'batch'}),
])
def test_cpu_backends_pass(name, expect_pass, expect_skip):
    """The capability-driven matrix: each backend runs the checks it declares and passes them."""
    status, out, err = conformance('--backend', name, '-v')
    assert status == 0, out + err
    rows = table_rows(out)
    assert set(rows) == set(CHECK_NAMES), out
    assert not [c for c, (r, _) in rows.items() if r == 'fail'], out
    golden = rows['jpeg-golden']
    if golden[0] == 'skip':  # only where the shared golden files are absent
        assert 'golden files not found' in golden[1]
        expect_pass = expect_pass - {'jpeg-golden'}
    assert {c for c in expect_pass if rows[c][0] == 'pass'} == expect_pass, out
    assert {c for c in expect_skip if rows[c][0] == 'skip'} == expect_skip, out
    for check, (result, reason) in rows.items():
        if result == 'skip':
            assert reason.strip(), f"{check} skipped without a reason:\n{out}"


def test_nvjpeg_is_unavailable_without_cuda():
    """An unavailable backend: 'unavailable: <reason>' first, every other check skipped (exit 2)."""
    ok, why = Registry('ffcvx.decoders').get('nvjpeg').available()
    if ok:
        pytest.skip("a CUDA device is present here")
    status, out, err = conformance('--backend', 'nvjpeg')
    assert status == 2, out + err
    first = out.splitlines()[0]
    assert first == f"unavailable: {why}" and first.startswith("unavailable: no CUDA device"), out
    rows = table_rows(out)
    assert rows['interface'][0] == 'pass'
    assert all(r == 'skip' and reason for c, (r, reason) in rows.items() if c != 'interface'), out
    assert rows['batch'][1].startswith('unavailable: no CUDA device'), out
    assert 'no decode_region' in rows['crop'][1], out


def test_unknown_backend_lists_registered_ones():
    status, out, err = conformance('--backend', 'no-such-backend')
    assert status == 2
    assert 'no-such-backend' in err
    for name in ('imagecodecs', 'pillow', 'turbojpeg'):
        assert name in err


def test_golden_dir_option(tmp_path):
    """--golden-dir is used when given, and a folder without .beton files is a usage error."""
    status, out, err = conformance('--backend', 'pillow', '--golden-dir', str(tmp_path))
    assert status == 2 and '--golden-dir' in err and 'no .beton' in err


# --- the suite can fail -----------------------------------------------------------------------

class _Wrapped(PythonDecoderBackend):
    """A backend that decodes with Pillow and then breaks one rule."""

    formats = frozenset({'jpeg', 'png'})
    requires = ('PIL.Image',)

    def __init__(self, inner, name):
        super().__init__()
        self.inner, self.name = inner, name

    def decode(self, data, crop, target):
        return self.inner.decode_region_py(data)


class _SwappedChannels(_Wrapped):
    def decode(self, data, crop, target):
        return super().decode(data, crop, target)[:, :, ::-1]


class _OffByOne(_Wrapped):
    def decode(self, data, crop, target):
        image = super().decode(data, crop, target).copy()
        image[-1, -1, 0] ^= 1  # one pixel, one channel, one level: still exact for PNG
        return image


class _ShiftedCrop(_Wrapped):
    supports_crop = True

    def decode(self, data, crop, target):
        full = super().decode(data, None, None)
        if crop is None:
            return full
        y, x, h, w = crop
        if y + h > full.shape[0] or x + w > full.shape[1]:
            from ffcvx.backend_api import BadRegionError
            raise BadRegionError("outside")
        # the window one column to the right where it can be: a classic edge bug
        x = min(x + 1, full.shape[1] - w)
        return full[y:y + h, x:x + w]


class _Gray(_Wrapped):
    """A conforming one-channel decode: channel 0 of the RGB one (BKD-025, BKD-026)."""

    supports_gray = True

    def decode_gray(self, data, crop, target):
        return self.decode(data, crop, target)[:, :, 0]


class _GrayOffByOne(_Gray):
    def decode_gray(self, data, crop, target):
        image = super().decode_gray(data, crop, target).copy()
        image[-1, -1] ^= 1
        return image


class _GrayFromGreenOfColour(_Gray):
    """Channel 1, not 0: the same on gray sources, all BKD-026 fixes, so it conforms."""

    def decode_gray(self, data, crop, target):
        return self.decode(data, crop, target)[:, :, 1]


class _GrayAcceptsTruncated(_Gray):
    def _region(self, data, crop, target, gray=False):
        try:
            return super()._region(data, crop, target, gray)
        except Exception:
            if not gray:
                raise
            return np.zeros((1, 1), np.uint8)


class _AcceptsTruncated(_Wrapped):
    """Turns truncated data into pixels instead of status -1."""

    def _region(self, data, crop, target, gray=False):
        try:
            return super()._region(data, crop, target, gray)
        except Exception:
            return np.zeros((1, 1, 3), np.uint8)


@pytest.mark.parametrize('broken, failing', [
    (_SwappedChannels, {'jpeg-vectors', 'png-vectors'}),
    (_OffByOne, {'png-vectors'}),
    (_ShiftedCrop, {'crop'}),
    (_AcceptsTruncated, {'corrupt'}),
    (_GrayOffByOne, {'gray'}),
    (_GrayAcceptsTruncated, {'gray'}),
])
def test_broken_backends_fail(pillow, vectors, broken, failing):
    results = {r.name: r for r in run_suite(broken(pillow, 'broken'), vectors=vectors,
                                            only=failing | {'interface', 'layout'})}
    assert {n for n, r in results.items() if r.status == 'fail'} == failing, results
    assert results['interface'].status == 'pass'


def test_a_conforming_wrapper_passes(pillow, vectors):
    """The control for the test above: the same wrapper without a bug passes."""
    results = {r.name: r for r in run_suite(_Wrapped(pillow, 'wrapped'), vectors=vectors)}
    assert not [r for r in results.values() if r.status == 'fail'], results
    assert results['gray'].status == 'skip' and 'supports_gray' in results['gray'].detail
    for gray in (_Gray, _GrayFromGreenOfColour):
        results = {r.name: r for r in run_suite(gray(pillow, 'gray'), vectors=vectors,
                                                only={'interface', 'function-address', 'gray'})}
        assert all(r.status == 'pass' for r in results.values()), results


def test_gray_function_only_with_supports_gray(pillow):
    """BKD-010: 'decode_region_gray' answers exactly when supports_gray is True."""
    with pytest.raises(KeyError):
        _Wrapped(pillow, 'w').function_address('decode_region_gray')
    assert isinstance(_Gray(pillow, 'g').function_address('decode_region_gray'), int)
    results = {r.name: r for r in run_suite(_Wrapped(pillow, 'w'), only={'function-address'})}
    assert 'decode_region_gray' in results['function-address'].detail

    class _Lies(_Wrapped):      # answers for the gray name without declaring it
        def function_address(self, name):
            return super().function_address('decode_region' if name == 'decode_region_gray' else name)
    results = {r.name: r for r in run_suite(_Lies(pillow, 'l'), only={'function-address'})}
    assert results['function-address'].status == 'fail'


def test_wrong_name_and_bad_capacity_fail(pillow, vectors):
    class _NoCapacityCheck(_Wrapped):
        def _decode_region_c(self, *args):
            status = super()._decode_region_c(*args)
            return 0 if status == -2 else status
    results = {r.name: r for r in run_suite(_NoCapacityCheck(pillow, 'x'), name='y',
                                            vectors=vectors, only={'interface', 'capacity'})}
    assert results['interface'].status == 'fail' and "'y'" in results['interface'].detail
    assert results['capacity'].status == 'fail'


# --- a third-party backend --------------------------------------------------------------------

@pytest.fixture(scope='module')
def toy_path(tmp_path_factory):
    """``tests/third_party_backend`` installed by pip into a temporary folder (offline)."""
    root = tmp_path_factory.mktemp('toy')
    # a copy, so that pip's build folders never land in the source tree
    source = shutil.copytree(REPO / 'tests' / 'third_party_backend', root / 'src')
    target = root / 'site'
    proc = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index',
                           '--no-build-isolation', '--quiet', '--target', str(target),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / 'ffcvx_toy_backend' / '__init__.py').is_file()
    return target


def _env_with(path):
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(path)] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


def test_third_party_backend_passes(toy_path):
    status, out, err = conformance('--backend', 'toy', env=_env_with(toy_path))
    assert status == 0, out + err
    rows = table_rows(out)
    assert rows['png-vectors'][0] == 'pass' and rows['corrupt'][0] == 'pass', out
    assert rows['jpeg-vectors'] == ('skip', "'jpeg' not in formats"), out


def test_third_party_backend_through_the_loader(toy_path, tmp_path):
    """Loader(backend='toy') decodes a PNG .beton with the installed toy backend, exactly."""
    script = textwrap.dedent("""
        import sys, numpy as np
        from ffcvx.fields import IntField, RGBImageField
        from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
        from ffcvx.loader import Loader, OrderOption
        from ffcvx.writer import DatasetWriter

        rng = np.random.default_rng(5)
        images = [rng.integers(0, 256, (12, 18, 3), dtype=np.uint8) for _ in range(6)]
        path = sys.argv[1]
        DatasetWriter(path, {'image': RGBImageField(write_mode='png'), 'label': IntField()},
                      num_workers=1, progress=False).from_indexed_dataset(
                          [(im, i) for i, im in enumerate(images)])
        loader = Loader(path, batch_size=3, num_workers=1, order=OrderOption.SEQUENTIAL,
                        drop_last=False, backend='toy',
                        pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
        decoder = loader.graph.pipelines[0].steps[0].operation
        assert decoder._backends['png'].name == 'toy', decoder._backends
        seen = 0
        for batch, labels in loader:
            for image, label in zip(np.asarray(batch), np.asarray(labels).reshape(-1)):
                assert np.array_equal(image, images[int(label)]), int(label)
                seen += 1
        assert seen == 6, seen
        print('ok', type(decoder._backends['png']).__module__)
    """)
    proc = subprocess.run([sys.executable, '-c', script, str(tmp_path / 'toy.beton')],
                          capture_output=True, text=True, timeout=300, env=_env_with(toy_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ['ok', 'ffcvx_toy_backend']


# --- the spec vectors -------------------------------------------------------------------------

def test_vectors_are_reproducible(tmp_path):
    """make_vectors.py regenerates exactly the committed vectors."""
    proc = subprocess.run([sys.executable, str(MAKE_VECTORS), '--out',
                           str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == ['jpeg.beton.gz', 'jpeg_reference.npz', 'png.beton.gz', 'raw.beton.gz',
                    'vectors.json']
    for name in made:
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == \
            hashlib.sha256((VECTORS / name).read_bytes()).hexdigest(), name
    total = sum(p.stat().st_size for p in VECTORS.iterdir())
    assert total < 300_000, total


def test_vectors_hold_what_the_manifest_says(vectors):
    manifest = json.loads((VECTORS / 'vectors.json').read_text())
    assert {fmt: len(v['samples']) for fmt, v in manifest['files'].items()} == \
        {fmt: len(rows) for fmt, rows in vectors.samples.items()}
    # raw vectors: the stored region is the pixels themselves, so both hashes agree
    for row in vectors.samples['raw']:
        assert hashlib.sha256(row['data']).hexdigest() == row['pixels_sha256']
        assert len(row['data']) == row['height'] * row['width'] * 3


def test_suite_finds_the_vectors_as_package_data():
    """The suite locates the vectors through importlib.resources, not the source tree, so a
    non-editable install (which has no spec/) finds the copy it carries."""
    import importlib.resources

    from ffcvx.testing.decoders import vectors_dir
    found = vectors_dir()
    assert found == importlib.resources.files('ffcvx.testing') / 'vectors'
    assert Path(str(found)).resolve() == VECTORS.resolve()
    assert 'spec' not in Path(str(found)).relative_to(REPO).parts
    manifest = json.loads((found / 'vectors.json').read_text())
    for entry in manifest['files'].values():
        assert (found / entry['beton_gz']).is_file(), entry['beton_gz']
    assert (found / manifest['files']['jpeg']['reference_npz']).is_file()
    # setup.cfg ships every file of the folder as package data
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(REPO / 'setup.cfg')
    patterns = [p.strip() for p in cfg['options.package_data']['ffcvx.testing'].split(',')]
    shipped = {p.name for pattern in patterns for p in (REPO / 'ffcvx' / 'testing').glob(pattern)}
    assert shipped == {p.name for p in VECTORS.iterdir()}
    # ... and make_vectors.py writes there unless told otherwise
    import importlib.util
    spec = importlib.util.spec_from_file_location('make_vectors', MAKE_VECTORS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert Path(module.PACKAGE_VECTORS).resolve() == VECTORS.resolve()


def test_pytest_entry_with_the_plugin_option(tmp_path):
    """The documented pytest form runs one test per check, with the backend's skip reasons.

    No ``-p``: the plugin is a ``pytest11`` entry point of the installed ffcvx.
    """
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '--pyargs',
         'ffcvx.testing.decoders', '--ffcvx-backend', 'pillow', '-q', '-rs'],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    summary = output.strip().splitlines()[-1]
    passed = int(re.search(r'(\d+) passed', summary).group(1))
    skipped = int(re.search(r'(\d+) skipped', summary).group(1))
    assert passed + skipped == len(CHECK_NAMES), summary   # pillow only, one test per check
    assert 'failed' not in summary, summary
    assert "supports_crop is False" in output               # a skip carries its reason
