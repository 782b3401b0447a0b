"""Decoder backends through the Loader and the registry (spec/backends.md).

Tolerances, stated once:

- PNG through any backend: exact (BKD-023);
- JPEG batches decoded by turbojpeg (IFAST IDCT) against imagecodecs or Pillow
  (ISLOW IDCT), same decoder and same sizes: per batch, mean absolute
  difference <= JPEG_MEAN and maximum absolute difference <= JPEG_MAX, the
  BKD-023 bounds (measured on the shared photos at quality 75-95: mean <= 1.46,
  max <= 18; through the Loader at quality 90: mean 1.04 / max 6 on this
  module's synthetic images, mean 0.85 / max 7 on the photos);
- JPEG through imagecodecs against Pillow: max abs difference <= 1 (measured 0).
"""
import importlib.metadata

import numpy as np
import pytest

from ffcvx.backend_api import (DECODE_REGION_PROTO, PythonDecoderBackend, choose_scale,
                               scaled_range, sniff_format, to_gray8, to_rgb8)
from ffcvx.errors import BackendNotFoundError, DecodeError
from ffcvx.fields import IntField, RGBImageField
from ffcvx.fields.decoders import (CenterCropRGBImageDecoder, IntDecoder,
                                   RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder)
from ffcvx.loader import Loader, OrderOption
from ffcvx.reader import Reader
from ffcvx.registry import DEFAULT_DECODER_ORDER, Registry, decoder_for_format, decoder_order
from ffcvx.writer import DatasetWriter

JPEG_MEAN = 2.0
JPEG_MAX = 24
PYTHON_BACKENDS = ('imagecodecs', 'pillow')


# --- datasets ------------------------------------------------------------------------

class _Images:
    """Smooth images with noise (JPEG-like content), labelled by index; fixed or varying size."""

    def __init__(self, n, size=None, seed=0):
        self.n, self.size, self.seed = n, size, seed

    def __len__(self):
        return self.n

    def image(self, i):
        h, w = self.size or (30 + (i * 7) % 50, 40 + (i * 11) % 60)
        rng = np.random.default_rng(self.seed + i)
        yy, xx = np.mgrid[0:h, 0:w]
        phase = rng.uniform(0, 6.28, 3)
        base = np.stack([127 + 100 * np.sin(xx / (5 + c) + yy / (7 + c) + phase[c]) for c in range(3)], 2)
        return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)

    def __getitem__(self, i):
        return self.image(i), i


def _write(path, dataset, write_mode, **options):
    DatasetWriter(str(path), {'image': RGBImageField(write_mode=write_mode, **options), 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(dataset)
    return str(path)


@pytest.fixture(scope='module')
def fixed(tmp_path_factory):
    """One dataset of 24 images of 36 x 52 pixels, written as PNG, JPEG (q90) and raw."""
    folder = tmp_path_factory.mktemp('backends')
    data = _Images(24, size=(36, 52))
    return {'data': data,
            'png': _write(folder / 'fixed_png.beton', data, 'png'),
            'jpg': _write(folder / 'fixed_jpg.beton', data, 'jpg', jpeg_quality=90),
            'raw': _write(folder / 'fixed_raw.beton', data, 'raw')}


@pytest.fixture(scope='module')
def varied(tmp_path_factory):
    """40 images of varying sizes, as PNG and raw."""
    folder = tmp_path_factory.mktemp('backends_varied')
    data = _Images(40, seed=100)
    return {'data': data,
            'png': _write(folder / 'varied_png.beton', data, 'png'),
            'raw': _write(folder / 'varied_raw.beton', data, 'raw')}


def _all_images(loader):
    images, labels = [], []
    for batch, batch_labels in loader:
        images.append(np.asarray(batch).copy())
        labels.append(np.asarray(batch_labels).reshape(-1).copy())
    return np.concatenate(images), np.concatenate(labels)


def _chosen(loader, fmt):
    """Name of the backend the image decoder picked for ``fmt``."""
    decoder = loader.graph.pipelines[0].steps[0].operation
    return decoder._backends[fmt].name


# --- registry ------------------------------------------------------------------------

def test_entry_points_include_the_three_backends():
    """BKD-050: the repository's three backends are registered in group ffcvx.decoders."""
    names = {ep.name for ep in importlib.metadata.entry_points(group='ffcvx.decoders')}
    assert {'imagecodecs', 'pillow', 'turbojpeg'} <= names
    registry = Registry('ffcvx.decoders')
    for name in ('imagecodecs', 'pillow', 'turbojpeg'):
        backend = registry.get(name)
        assert backend.name == name                                  # BKD-001
        assert backend.formats and backend.formats <= {'jpeg', 'png', 'raw'}   # BKD-002
        assert backend.device == 'cpu' and backend.kind in ('native', 'python')
        assert backend.available() == (True, '')


def test_default_order_per_format():
    """BKD-052: jpeg -> turbojpeg first, png -> imagecodecs first; then pillow."""
    assert DEFAULT_DECODER_ORDER['jpeg'] == ('turbojpeg', 'imagecodecs', 'pillow')
    assert DEFAULT_DECODER_ORDER['png'] == ('imagecodecs', 'pillow')
    registry = Registry('ffcvx.decoders')
    assert decoder_order(registry, 'png')[:2] == ['imagecodecs', 'pillow']
    assert decoder_for_format(registry, 'jpeg').name == 'turbojpeg'
    assert decoder_for_format(registry, 'png').name == 'imagecodecs'
    # the named backend for its formats, the default order for the others (BKD-053)
    assert decoder_for_format(registry, 'jpeg', preferred='pillow').name == 'pillow'
    assert decoder_for_format(registry, 'png', preferred='turbojpeg').name == 'imagecodecs'


class _Unavailable:
    name = 'imagecodecs'
    formats = frozenset({'jpeg', 'png'})
    supports_crop = supports_scale = False
    device = 'cpu'
    kind = 'python'

    def available(self):
        return False, 'imagecodecs is missing here (test double); pip install imagecodecs'


def test_unavailable_backend_is_skipped_by_default_and_refused_by_name(fixed):
    """BKD-052, BKD-053: the default order skips an unavailable backend; naming it fails with its reason."""
    registry = Registry('ffcvx.decoders', extra={'imagecodecs': _Unavailable()})
    assert decoder_for_format(registry, 'png').name == 'pillow'
    loader = Loader(fixed['png'], batch_size=8, decoder_registry=registry,
                    pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    assert _chosen(loader, 'png') == 'pillow'
    with pytest.raises(BackendNotFoundError, match='unavailable here: imagecodecs is missing'):
        Loader(fixed['png'], batch_size=8, decoder_registry=registry, backend='imagecodecs',
               pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})


def test_unknown_backend_lists_registered_ones(fixed):
    """BKD-053: an unknown name fails at construction, listing the registered backends."""
    with pytest.raises(BackendNotFoundError) as info:
        Loader(fixed['jpg'], batch_size=8, backend='no-such-decoder')
    message = str(info.value)
    assert "'no-such-decoder'" in message
    for name in ('imagecodecs', 'pillow', 'turbojpeg'):
        assert name in message


def test_known_but_missing_backend_says_what_to_install(fixed, monkeypatch):
    """BKD-053: a backend ffcvx knows but that is not installed comes with its pip install line."""
    from ffcvx import registry
    monkeypatch.setitem(registry.INSTALL_HINTS['ffcvx.decoders'], 'uninstalled-codec',
                        'pip install ./backends/uninstalled-codec')
    with pytest.raises(BackendNotFoundError, match=r'Install it with: pip install \./backends/uninstalled-codec'):
        Loader(fixed['jpg'], batch_size=8, backend='uninstalled-codec')


def test_no_backend_for_a_stored_format(fixed):
    """BKD-054: no usable PNG backend -> error at construction with the pip install lines."""
    pillow = Registry('ffcvx.decoders').get('pillow')

    class NoPillow(_Unavailable):
        name = 'pillow'

    registry = Registry('ffcvx.decoders', extra={'imagecodecs': _Unavailable(), 'pillow': NoPillow()})
    with pytest.raises(BackendNotFoundError) as info:
        Loader(fixed['png'], batch_size=8, decoder_registry=registry,
               pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    message = str(info.value)
    assert "'png'" in message and 'pip install ./backends/imagecodecs' in message
    assert 'pip install ./backends/pillow' in message
    assert pillow.available()[0]                   # the real one is untouched
    # a JPEG-only field does not need a PNG backend (BKD-051)
    Loader(fixed['jpg'], batch_size=8, decoder_registry=registry,
           pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})


class _BatchBackend:
    name = 'gpu'
    formats = frozenset({'jpeg', 'png'})
    supports_crop = supports_scale = True
    device = 'cuda'
    kind = 'batch'

    def available(self):
        return True, ''


def test_batch_backends_are_not_selected_by_default(fixed):
    """BKD-042: a batch backend is never picked by default; named, it must have decode_batch.

    (tests/decode/test_batch_backend.py runs a complete batch backend through the Loader.)
    """
    registry = Registry('ffcvx.decoders', extra={'gpu': _BatchBackend()})
    assert decoder_for_format(registry, 'jpeg').name == 'turbojpeg'
    with pytest.raises(BackendNotFoundError, match='batch decoding is not implemented'):
        Loader(fixed['jpg'], batch_size=8, decoder_registry=registry, backend='gpu',
               pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})


# --- scale rule ----------------------------------------------------------------------

def test_scale_rule_matches_turbojpeg():
    """BKD-017: choose_scale / scaled_range give turbojpeg's output sizes, never below the target."""
    backend = Registry('ffcvx.decoders').get('turbojpeg')
    image = _Images(1, size=(97, 131)).image(0)
    from ffcvx.fields.rgb_image import encode_jpeg
    data = encode_jpeg(image, 90)
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(100):
        h, w = int(rng.integers(1, 98)), int(rng.integers(1, 132))
        y, x = int(rng.integers(0, 98 - h)), int(rng.integers(0, 132 - w))
        shrink = int(rng.choice([1, 2, 4, 8, 16]))     # reach every k
        target = (int(rng.integers(0, h + 1)) // shrink, int(rng.integers(0, w + 1)) // shrink)
        k = choose_scale(h, w, *target)
        seen.add(k)
        y0, y1 = scaled_range(y, h, k)
        x0, x1 = scaled_range(x, w, k)
        assert y1 - y0 >= target[0] and x1 - x0 >= target[1]
        got = backend.decode_region_py(data, (y, x, h, w), target)
        assert got.shape == (y1 - y0, x1 - x0, 3), ((y, x, h, w), target, k)
    assert seen == {1, 2, 4, 8}
    assert choose_scale(100, 100, 0, 50) == 8 and choose_scale(100, 100, 12, 12) == 1


def test_helpers():
    assert sniff_format(b'\x89PNG\r\n\x1a\n....') == 'png'
    assert sniff_format(np.frombuffer(b'\xff\xd8\xff\xe0', np.uint8)) == 'jpeg'
    assert sniff_format(b'GIF89a') is None
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    assert to_rgb8(gray).shape == (2, 3, 3) and np.array_equal(to_rgb8(gray)[:, :, 2], gray)
    rgba = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(to_rgb8(rgba), rgba[:, :, :3])
    with pytest.raises(DecodeError):
        to_rgb8(np.zeros((2, 3, 5), np.uint8))


# --- the python adapter ---------------------------------------------------------------

class _Misbehaving(PythonDecoderBackend):
    """A python backend whose decode does whatever ``self.action`` says."""

    name = 'misbehaving'
    formats = frozenset({'png'})

    def __init__(self, action):
        super().__init__()
        self.action = action

    def decode(self, data, crop, target):
        return self.action()


def _call(backend, data, crop, capacity, function='decode_region'):
    fn = DECODE_REGION_PROTO(backend.function_address(function))
    src = np.frombuffer(data, np.uint8)
    out = np.full(max(capacity, 1), 0xCD, np.uint8)
    hw = np.zeros(2, np.int64)
    status = fn(src.ctypes.data, src.size, *crop, 0, 0, out.ctypes.data, capacity, hw.ctypes.data)
    return status, out, hw


@pytest.mark.parametrize('action, status', [
    (lambda: 1 / 0, -1),                                    # any exception -> -1 (BKD-024)
    (lambda: (_ for _ in ()).throw(KeyboardInterrupt), -1),  # even BaseException
    (lambda: np.zeros((4, 4, 3), np.float32), -1),          # wrong dtype
    (lambda: np.zeros((4, 4, 2), np.uint8), -1),            # wrong channel count
    (lambda: np.zeros((4, 4, 3), np.uint8), 0),
])
def test_python_adapter_never_lets_an_exception_escape(action, status):
    """BKD-024: whatever decode does, the C caller gets a status code, never a silent 0."""
    from ffcvx.fields.rgb_image import encode_png
    data = encode_png(np.zeros((4, 4, 3), np.uint8))
    got, out, hw = _call(_Misbehaving(action), data, (0, 0, 4, 4), 48)
    assert got == status
    if status == 0:
        assert np.all(out[:48] == 0) and list(hw) == [4, 4]


def test_python_adapter_keeps_its_callback_alive():
    """BKD-041: the address stays valid while the backend lives, with no other reference kept."""
    import gc
    from ffcvx.fields.rgb_image import encode_png
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    backend = _Misbehaving(lambda: image)
    address = backend.function_address('decode_region')
    gc.collect()
    fn = DECODE_REGION_PROTO(address)
    src = np.frombuffer(encode_png(image), np.uint8)
    out = np.zeros(60, np.uint8)
    hw = np.zeros(2, np.int64)
    assert fn(src.ctypes.data, src.size, 0, 0, 4, 5, 0, 0, out.ctypes.data, 60, hw.ctypes.data) == 0
    assert np.array_equal(out.reshape(4, 5, 3), image)


def test_python_adapter_refuses_other_formats():
    """BKD-021: JPEG bytes given to a PNG-only backend -> -1 and a DecodeError naming both."""
    from ffcvx.fields.rgb_image import encode_jpeg
    backend = _Misbehaving(lambda: np.zeros((4, 4, 3), np.uint8))
    data = encode_jpeg(np.zeros((4, 4, 3), np.uint8), 90)
    assert _call(backend, data, (0, 0, 4, 4), 48)[0] == -1
    with pytest.raises(DecodeError, match='misbehaving decodes png; got JPEG data'):
        backend.decode_region_py(data)


# --- one channel (BKD-025, BKD-026) ----------------------------------------------------

def test_to_gray8_is_channel0_of_to_rgb8():
    rng = np.random.default_rng(0)
    for shape, dtype in [((3, 4), np.uint8), ((3, 4, 1), np.uint8), ((3, 4, 2), np.uint8),
                         ((3, 4, 3), np.uint8), ((3, 4, 4), np.uint8), ((3, 4), np.uint16),
                         ((3, 4, 2), np.uint16), ((3, 4, 3), np.uint16)]:
        pixels = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
        gray = to_gray8(pixels)
        assert gray.shape == (3, 4) and gray.dtype == np.uint8
        assert np.array_equal(gray, to_rgb8(pixels)[:, :, 0]), (shape, dtype)
    for bad in (np.zeros((3, 4, 5), np.uint8), np.zeros((3, 4), np.float32), np.zeros((0, 4), np.uint8)):
        with pytest.raises(DecodeError):
            to_gray8(bad)


class _GrayMisbehaving(_Misbehaving):
    supports_gray = True

    def decode_gray(self, data, crop, target):
        return self.action()


@pytest.mark.parametrize('action, status', [
    (lambda: 1 / 0, -1),
    (lambda: np.zeros((4, 4, 3), np.uint8), -1),            # RGB from decode_gray
    (lambda: np.zeros((4, 4), np.int16), -1),               # wrong dtype
    (lambda: np.zeros((4, 4), np.uint8), 0),
])
def test_python_adapter_gray_callback_statuses(action, status):
    """decode_region_gray through the adapter: status codes as for decode_region (BKD-024, BKD-026)."""
    from ffcvx.fields.rgb_image import encode_png
    data = encode_png(np.zeros((4, 4, 3), np.uint8))
    backend = _GrayMisbehaving(action)
    got, out, hw = _call(backend, data, (0, 0, 4, 4), 16, 'decode_region_gray')
    assert got == status
    if status == 0:
        assert np.all(out[:16] == 0) and np.all(out[16:] == 0xCD) and list(hw) == [4, 4]
        got, out, hw = _call(backend, data, (0, 0, 4, 4), 15, 'decode_region_gray')
        assert got == -2 and np.all(out == 0xCD) and list(hw) == [4, 4]
        assert _call(backend, data, (1, 1, 4, 4), 16, 'decode_region_gray')[0] == -3


def test_python_adapter_gray_needs_the_capability():
    """No supports_gray: KeyError for the name (BKD-010); declared without decode_gray: status -1."""
    from ffcvx.fields.rgb_image import encode_png
    with pytest.raises(KeyError, match='decode_region_gray'):
        _Misbehaving(lambda: None).function_address('decode_region_gray')
    with pytest.raises(ValueError, match='has no gray decode'):
        _Misbehaving(lambda: None).decode_region_py(b'x', gray=True)

    class _Declared(_Misbehaving):
        supports_gray = True
    data = encode_png(np.zeros((4, 4, 3), np.uint8))
    assert _call(_Declared(lambda: None), data, (0, 0, 4, 4), 16, 'decode_region_gray')[0] == -1
    with pytest.raises(DecodeError, match='decode_gray'):
        _Declared(lambda: None).decode_region_py(data, gray=True)


def _gray_pngs():
    """PNGs of colour type 0 (1, 8 and 16 bits) and 4 (gray + alpha), Pillow-encoded."""
    import io
    from PIL import Image
    rng = np.random.default_rng(9)
    pixels = rng.integers(0, 256, (13, 17), dtype=np.uint8)
    images = [Image.fromarray(pixels, 'L'), Image.fromarray(pixels > 127),
              Image.fromarray(pixels.astype(np.uint16) * 257 + 3),
              Image.merge('LA', (Image.fromarray(pixels, 'L'), Image.fromarray(pixels[::-1], 'L')))]
    out = []
    for image in images:
        buf = io.BytesIO()
        image.save(buf, 'PNG')
        out.append((image.mode, buf.getvalue()))
    return out


@pytest.mark.parametrize('backend', PYTHON_BACKENDS)
def test_python_backends_gray_png_depths(backend):
    """One-component PNGs of every kind: the gray decode is channel 0 of the RGB one (BKD-026)."""
    b = Registry('ffcvx.decoders').get(backend)
    assert b.supports_gray is True
    for mode, data in _gray_pngs():
        rgb = b.decode_region_py(data)
        for crop in (None, (2, 3, 9, 11)):
            gray = b.decode_region_py(data, crop, gray=True)
            want = rgb if crop is None else rgb[2:11, 3:14]
            assert gray.shape == want.shape[:2], mode
            assert np.array_equal(gray, want[..., 0]), mode


# --- PNG through the Loader -----------------------------------------------------------

@pytest.mark.parametrize('backend', PYTHON_BACKENDS)
def test_png_round_trip_exact(fixed, backend):
    """FMT-037 + BKD-023: SimpleRGBImageDecoder on a PNG .beton returns exactly the written pixels."""
    loader = Loader(fixed['png'], batch_size=5, num_workers=2, order=OrderOption.RANDOM, seed=3,
                    drop_last=False, backend=backend,
                    pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    assert _chosen(loader, 'png') == backend
    images, labels = _all_images(loader)
    assert sorted(labels.tolist()) == list(range(24))
    for image, label in zip(images, labels):
        np.testing.assert_array_equal(image, fixed['data'].image(int(label)), err_msg=f"sample {label}")


def test_png_default_backend_is_imagecodecs(fixed):
    loader = Loader(fixed['png'], batch_size=8,
                    pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    assert _chosen(loader, 'png') == 'imagecodecs'


def test_png_with_a_jpeg_only_backend_named_uses_the_default_order(fixed):
    """BKD-053: backend='turbojpeg' (JPEG only) on a PNG file: PNG goes to the default order."""
    loader = Loader(fixed['png'], batch_size=24, backend='turbojpeg',
                    pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    assert _chosen(loader, 'png') == 'imagecodecs'
    images, labels = _all_images(loader)
    for image, label in zip(images, labels):
        np.testing.assert_array_equal(image, fixed['data'].image(int(label)))


@pytest.mark.parametrize('backend', PYTHON_BACKENDS)
def test_png_center_crop_equals_raw(varied, backend):
    """Crop decoders on PNG (full decode, crop read out in the resize, BKD-019) == the same on raw pixels."""
    def run(path, name):
        loader = Loader(path, batch_size=8, num_workers=2, drop_last=False, backend=name,
                        pipelines={'image': [CenterCropRGBImageDecoder((24, 20), ratio=0.8)],
                                   'label': [IntDecoder()]})
        return _all_images(loader)
    png_images, png_labels = run(varied['png'], backend)
    raw_images, raw_labels = run(varied['raw'], None)
    assert np.array_equal(png_labels, raw_labels)
    np.testing.assert_array_equal(png_images, raw_images)


@pytest.mark.parametrize('backend', PYTHON_BACKENDS)
def test_png_random_resized_crop(tmp_path, backend):
    """RandomResizedCrop (+ fused flip) on PNG: flat-colour images keep their exact colour, labels align."""
    class Flat:
        def __len__(self):
            return 30

        def __getitem__(self, i):
            h, w = 20 + (i * 7) % 40, 25 + (i * 13) % 50
            colour = np.array([(i * 37) % 256, (i * 91) % 256, (i * 53) % 256], np.uint8)
            return np.broadcast_to(colour, (h, w, 3)).copy(), i

    path = _write(tmp_path / 'flat.beton', Flat(), 'png')
    from ffcvx.transforms import RandomHorizontalFlip
    loader = Loader(path, batch_size=7, num_workers=2, order=OrderOption.RANDOM, seed=1, drop_last=False,
                    backend=backend,
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((16, 12)), RandomHorizontalFlip()],
                               'label': [IntDecoder()]})
    images, labels = _all_images(loader)
    assert images.shape == (30, 16, 12, 3) and sorted(labels.tolist()) == list(range(30))
    for image, label in zip(images, labels):
        colour = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256])
        assert np.abs(image.astype(int) - colour).max() <= 1, f"label {label}"


# --- JPEG across backends ---------------------------------------------------------------

def _jpeg_batches(path, backend, decoder):
    loader = Loader(path, batch_size=6, num_workers=2, drop_last=False, backend=backend,
                    pipelines={'image': [decoder], 'label': [IntDecoder()]})
    assert _chosen(loader, 'jpeg') == backend
    return _all_images(loader)


def test_jpeg_backends_agree_through_loader(fixed):
    """BKD-023: SimpleRGBImageDecoder batches of turbojpeg, imagecodecs and Pillow agree within
    JPEG_MEAN / JPEG_MAX (measured here: turbojpeg vs the others mean 1.04, max 6;
    imagecodecs vs Pillow identical)."""
    results = {name: _jpeg_batches(fixed['jpg'], name, SimpleRGBImageDecoder())
               for name in ('turbojpeg', 'imagecodecs', 'pillow')}
    reference_images, reference_labels = results['turbojpeg']
    for name in ('imagecodecs', 'pillow'):
        images, labels = results[name]
        assert np.array_equal(labels, reference_labels)
        diff = np.abs(images.astype(int) - reference_images.astype(int))
        assert diff.mean() <= JPEG_MEAN and diff.max() <= JPEG_MAX, (name, diff.mean(), diff.max())
        for b in range(0, len(images), 6):      # per batch, too
            assert diff[b:b + 6].mean() <= JPEG_MEAN
    ic, pil = results['imagecodecs'][0].astype(int), results['pillow'][0].astype(int)
    assert np.abs(ic - pil).max() <= 1


def test_jpeg_backends_agree_on_photos(tmp_path, shared_dir):
    """BKD-023 on real photos, through CenterCrop at full DCT scale (crop <= output).

    Measured: turbojpeg vs imagecodecs or Pillow, mean 0.85, max 7.
    """
    from ffcvx.datasets import ImageFolder
    path = _write(tmp_path / 'photos.beton', ImageFolder(str(shared_dir / 'data' / 'photos')), 'jpg',
                  jpeg_quality=90, max_resolution=160)
    decoder = lambda: CenterCropRGBImageDecoder((160, 160), ratio=1.0)  # noqa: E731
    reference, reference_labels = _jpeg_batches(path, 'turbojpeg', decoder())
    for name in PYTHON_BACKENDS:
        images, labels = _jpeg_batches(path, name, decoder())
        assert np.array_equal(labels, reference_labels)
        diff = np.abs(images.astype(int) - reference.astype(int))
        assert diff.mean() <= JPEG_MEAN and diff.max() <= JPEG_MAX, (name, diff.mean(), diff.max())


@pytest.mark.parametrize('backend', PYTHON_BACKENDS)
def test_corrupt_jpeg_through_python_backend_raises_in_loop(tmp_path, backend):
    """BKD-022, BKD-024, BKD-030: a broken sample stops the epoch with DecodeError naming it."""
    path = _write(tmp_path / 'noise.beton', _Images(20, size=(30, 40)), 'jpg')
    reader = Reader(path)
    ptr = int(reader.metadata['f0'][13]['data_ptr'])
    size = int(reader.read_sample_region(13, 'image').size)
    with open(path, 'r+b') as f:         # cut sample 13 short: zero its last third (EOI included)
        f.seek(ptr + size * 2 // 3)
        f.write(b'\x00' * (size - size * 2 // 3))
    for decoder in (SimpleRGBImageDecoder(), RandomResizedCropRGBImageDecoder((16, 16))):
        loader = Loader(path, batch_size=4, num_workers=2, backend=backend,
                        pipelines={'image': [decoder], 'label': [IntDecoder()]})
        with pytest.raises(DecodeError, match=rf'sample 13 .*{backend} failed: .*truncated JPEG'):
            for _ in loader:
                pass


def test_corrupt_png_raises_in_loop(tmp_path):
    path = _write(tmp_path / 'png.beton', _Images(12, size=(30, 40)), 'png')
    reader = Reader(path)
    ptr = int(reader.metadata['f0'][5]['data_ptr'])
    with open(path, 'r+b') as f:         # damage sample 5's compressed pixel data
        f.seek(ptr + 60)
        f.write(b'\xff\x00\xff\x00')
    for backend in PYTHON_BACKENDS:
        loader = Loader(path, batch_size=4, num_workers=2, backend=backend,
                        pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
        with pytest.raises(DecodeError, match=rf'sample 5 \(png.*{backend} failed: PNG decode failed'):
            for _ in loader:
                pass
