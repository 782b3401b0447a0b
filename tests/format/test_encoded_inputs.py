"""Encoded image inputs (paths, bytes, memoryviews, unloaded PIL JPEGs) and ``jpeg_passthrough``.

Lossless modes (raw, png) store exactly the pixels of the same image given
as an array. JPEG modes re-encode (FFCV's default) or, with
``jpeg_passthrough=True``, store a JPEG every backend reads byte for byte.
JPEG-mode pixels are compared with the array path by PSNR > 35 dB: a
passed-through file (quality 95) and its re-encoding at quality 90 differ by
about 50 dB on these smooth test images (measured 49.8 to 50.8 dB), so the
bound leaves 15 dB for other encoders and IDCTs, while a wrong channel
order, size or offset gives < 20 dB. Decoders' IDCTs differ by rounding, so
a passed-through file is compared with Pillow's decode within 3 levels.
"""
import hashlib
import io
import os

import numpy as np
import pytest
from PIL import Image

from ffcvx.errors import WriterError
from ffcvx.fields import GrayscaleImageField, IntField, RGBImageField
from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.fields.encoded import jpeg_passes_through, parse_jpeg
from ffcvx.loader import Loader
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

H, W = 48, 64
KINDS = ['array', 'pil_loaded', 'pil_unloaded', 'path', 'pathlike', 'bytes', 'memoryview']
MODES = ['jpg', 'raw', 'smart', 'proportion', 'png']


def _smooth_rgb(seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    chans = [np.clip(rng.uniform(40, 200) + rng.uniform(-1, 1) * y + rng.uniform(-1, 1) * x, 0, 255)
             for _ in range(3)]
    return np.stack(chans, -1).astype(np.uint8)


def _jpeg_bytes(array, **kwargs):
    out = io.BytesIO()
    Image.fromarray(array).save(out, format='JPEG', quality=95, **kwargs)
    return out.getvalue()


class _Samples:
    def __init__(self, values):
        self.values = values

    def __len__(self):
        return len(self.values)

    def __getitem__(self, i):
        value = self.values[i]
        return (value() if callable(value) else value), i


def _as(kind, path):
    """A zero-argument maker of the input ``kind`` for the image file at ``path``."""
    data = path.read_bytes()
    return {
        'array': lambda: np.asarray(Image.open(path).convert('RGB')),
        'pil_loaded': lambda: Image.open(path).convert('RGB'),
        'pil_unloaded': lambda: Image.open(path),
        'path': lambda: str(path),
        'pathlike': lambda: path,
        'bytes': lambda: data,
        'memoryview': lambda: memoryview(bytearray(data)),
    }[kind]


def _write(target, field, values, workers=1):
    DatasetWriter(str(target), {'image': field, 'label': IntField()}, num_workers=workers,
                  progress=False, seed=3).from_indexed_dataset(_Samples(values))
    return str(target)


def _load(path, custom_fields=None):
    loader = Loader(path, batch_size=4, num_workers=1, drop_last=False,
                    custom_fields=custom_fields or {},
                    pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    return np.concatenate([x.copy() for x, _ in loader])


def _max_diff(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def _psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255 ** 2 / mse)


@pytest.fixture(scope='module')
def jpegs(tmp_path_factory):
    folder = tmp_path_factory.mktemp('jpegs')
    paths = []
    for i in range(5):
        path = folder / f'{i}.jpg'
        path.write_bytes(_jpeg_bytes(_smooth_rgb(i)))
        paths.append(path)
    return paths


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('kind', KINDS)
@pytest.mark.parametrize('passthrough', [False, True])
def test_every_input_kind_in_every_mode(tmp_path, jpegs, kind, mode, passthrough):
    kwargs = dict(write_mode=mode, smart_threshold=W * H * 3 - 1, compress_probability=0.5)
    reference = _load(_write(tmp_path / 'a.beton', RGBImageField(**kwargs),
                             [_as('array', p) for p in jpegs]))
    target = _write(tmp_path / 'k.beton', RGBImageField(jpeg_passthrough=passthrough, **kwargs),
                    [_as(kind, p) for p in jpegs])
    got = _load(target)
    assert got.shape == reference.shape == (5, H, W, 3)
    modes = Reader(target).metadata['f0']['mode']
    assert modes.tolist() == Reader(str(tmp_path / 'a.beton')).metadata['f0']['mode'].tolist()
    if mode in ('raw', 'png'):
        assert np.array_equal(got, reference)
    else:
        for a, b in zip(got, reference):
            assert _psnr(a, b) > 35
    if passthrough and kind not in ('array', 'pil_loaded'):
        reader = Reader(target)
        for i, path in enumerate(jpegs):
            if modes[i] == 0:
                stored = reader.read_sample_region(i, 'image').tobytes()
                assert hashlib.sha256(stored).digest() == hashlib.sha256(path.read_bytes()).digest()
        # a stored file decodes to what Pillow makes of it, within IDCT rounding
        for i, path in enumerate(jpegs):
            if modes[i] == 0:
                assert _max_diff(got[i], np.asarray(Image.open(path).convert('RGB'))) <= 3


def test_passthrough_record_is_the_frame_header(tmp_path):
    """Width and height of a stored JPEG come from its SOF, mode 0 (FFCV 1.0's record)."""
    path = tmp_path / 'x.jpg'
    path.write_bytes(_jpeg_bytes(np.zeros((37, 91, 3), np.uint8)))
    reader = Reader(_write(tmp_path / 'x.beton', RGBImageField('jpg', jpeg_passthrough=True),
                           [str(path)]))
    record = reader.metadata['f0'][0]
    assert (int(record['mode']), int(record['width']), int(record['height'])) == (0, 91, 37)


@pytest.mark.parametrize('case', ['progressive', 'cmyk', 'adobe_rgb', 'shrink'])
def test_jpegs_backends_cannot_all_read_are_reencoded(tmp_path, case):
    array = _smooth_rgb(7)
    if case == 'progressive':
        data = _jpeg_bytes(array, progressive=True)
    elif case == 'cmyk':
        out = io.BytesIO()
        Image.fromarray(array).convert('CMYK').save(out, format='JPEG', quality=95)
        data = out.getvalue()
    elif case == 'adobe_rgb':
        out = io.BytesIO()     # an RGB JPEG (Adobe transform 0): Pillow writes it for keep_rgb
        Image.fromarray(array).save(out, format='JPEG', quality=95, keep_rgb=True)
        data = out.getvalue()
    else:
        data = _jpeg_bytes(array)
    info = parse_jpeg(data)
    if case != 'shrink':
        assert not jpeg_passes_through(info, 3)
    resolution = 32 if case == 'shrink' else None
    target = _write(tmp_path / 'p.beton', RGBImageField('jpg', jpeg_passthrough=True,
                                                        max_resolution=resolution), [data])
    reader = Reader(target)
    stored = reader.read_sample_region(0, 'image').tobytes()
    assert stored != data
    stored_info = parse_jpeg(stored)
    assert jpeg_passes_through(stored_info, 3) and stored_info.sof_kind == 0
    got = _load(target)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert('RGB'))
    if case == 'shrink':
        assert got.shape == (1, 24, 32, 3)
    else:
        assert got.shape == (1, H, W, 3)
        assert _psnr(got[0], expected) > 35


def test_gray_field_passes_through_only_one_component(tmp_path):
    gray = _smooth_rgb(1)[..., 0]
    one = io.BytesIO()
    Image.fromarray(gray).save(one, format='JPEG', quality=95)
    colour = _jpeg_bytes(_smooth_rgb(2))
    field = GrayscaleImageField('jpg', jpeg_passthrough=True)
    target = _write(tmp_path / 'g.beton', field, [one.getvalue(), colour])
    reader = Reader(target, custom_handlers={'image': GrayscaleImageField})
    assert reader.read_sample_region(0, 'image').tobytes() == one.getvalue()
    second = reader.read_sample_region(1, 'image').tobytes()
    assert second != colour and parse_jpeg(second).components == 1
    got = _load(target, custom_fields={'image': GrayscaleImageField})
    assert got.shape == (2, H, W, 1)
    assert _max_diff(got[0, ..., 0], np.asarray(Image.open(one))) <= 3   # IDCT rounding
    luma = np.asarray(Image.open(io.BytesIO(colour)).convert('L'))
    assert _psnr(got[1, ..., 0], luma) > 35


@pytest.mark.parametrize('kind', ['png_path', 'png_bytes'])
@pytest.mark.parametrize('mode', ['raw', 'png', 'jpg'])
def test_png_inputs_follow_the_pixel_path(tmp_path, kind, mode):
    array = _smooth_rgb(4)
    path = tmp_path / 'x.png'
    Image.fromarray(array).save(path)
    value = str(path) if kind == 'png_path' else path.read_bytes()
    reference = _load(_write(tmp_path / 'a.beton', RGBImageField(mode), [array]))
    got = _load(_write(tmp_path / 'b.beton', RGBImageField(mode, jpeg_passthrough=True), [value]))
    assert np.array_equal(got, reference)


def test_draft_shrink_is_close_to_full_decode(tmp_path):
    """FMT-091: a JPEG path that shrinks 8x is decoded at a reduced DCT scale (1/2 keeps
    3x the target); the stored size is FFCV's and the pixels are close to full decode + area."""
    from ffcvx.fields.rgb_image import shrink_to
    big = np.kron(_smooth_rgb(5), np.ones((8, 8, 1), np.uint8))      # 384 x 512
    path = tmp_path / 'big.jpg'
    path.write_bytes(_jpeg_bytes(big))
    got = _load(_write(tmp_path / 's.beton', RGBImageField('raw', max_resolution=64), [str(path)]))
    full = shrink_to(np.asarray(Image.open(path).convert('RGB')), 64)
    assert got.shape == (1,) + full.shape
    assert _psnr(got[0], full) > 40


def _bad_inputs(folder):
    good = _jpeg_bytes(_smooth_rgb(0))
    (folder / 'truncated.jpg').write_bytes(good[:len(good) // 2])
    (folder / 'text.jpg').write_bytes(b'this is not an image')
    (folder / 'adir').mkdir()
    sof = good.find(b'\xff\xc0')
    empty = bytearray(good)
    empty[sof + 7:sof + 9] = b'\x00\x00'          # width 0 in the frame header
    return [
        (str(folder / 'missing.jpg'), 'missing.jpg', 'FileNotFoundError'),
        (str(folder / 'adir'), 'it is a directory', 'IsADirectoryError'),
        (str(folder / 'truncated.jpg'), 'truncated.jpg', 'truncated or corrupt'),
        (str(folder / 'text.jpg'), 'text.jpg', 'not an image format'),
        (good[:len(good) // 2], 'encoded image bytes', 'truncated or corrupt'),
        (bytes(empty), 'empty image', 'ValueError'),
    ]


@pytest.mark.parametrize('workers', [1, 2])
@pytest.mark.parametrize('passthrough', [False, True])
@pytest.mark.parametrize('which', range(6))
def test_bad_encoded_input_is_a_writer_error_leaving_nothing(tmp_path, workers, passthrough,
                                                              which):
    folder = tmp_path / 'in'
    folder.mkdir()
    value, *words = _bad_inputs(folder)[which]
    good = _jpeg_bytes(_smooth_rgb(0))
    out = tmp_path / 'out'
    out.mkdir()
    target = out / 'x.beton'
    with pytest.raises(WriterError) as info:
        _write(target, RGBImageField('jpg', jpeg_passthrough=passthrough),
               [good] * 13 + [value] + [good] * 13, workers=workers)
    message = str(info.value)
    assert 'sample 13' in message and "field 'image'" in message
    for word in words:
        assert word in message, message
    assert os.listdir(out) == []


@pytest.mark.parametrize('mode', ['jpg', 'raw', 'png', 'smart'])
@pytest.mark.parametrize('kind', ['pil_unloaded', 'path', 'bytes'])
def test_gray_field_input_kinds(tmp_path, kind, mode):
    """Gray JPEG files through a GrayscaleImageField: lossless modes equal the array path,
    ``jpg`` passes the one-component file through, ``smart`` below threshold stores raw."""
    paths = []
    for i in range(3):
        path = tmp_path / f'{i}.jpg'
        Image.fromarray(_smooth_rgb(i)[..., i]).save(path, format='JPEG', quality=95)
        paths.append(path)
    gray = {'image': GrayscaleImageField}
    field = dict(write_mode=mode, smart_threshold=10 ** 9)
    reference = _load(_write(tmp_path / 'a.beton', GrayscaleImageField(**field),
                             [np.asarray(Image.open(p)) for p in paths]), gray)
    values = [{'pil_unloaded': lambda p=p: Image.open(p), 'path': str(p),
               'bytes': p.read_bytes()}[kind] for p in paths]
    target = _write(tmp_path / 'k.beton', GrayscaleImageField(jpeg_passthrough=True, **field),
                    values)
    got = _load(target, gray)
    assert got.shape == reference.shape == (3, H, W, 1)
    if mode == 'jpg':
        reader = Reader(target, custom_handlers=gray)
        for i, path in enumerate(paths):
            assert reader.read_sample_region(i, 'image').tobytes() == path.read_bytes()
            assert _max_diff(got[i, ..., 0], np.asarray(Image.open(path))) <= 3
    else:
        assert np.array_equal(got, reference)


def test_jpeg_parser_refuses_what_is_not_whole():
    """Truncation anywhere, a missing SOI or a segment running past the end: ValueError or not
    ``complete``, so such a file is never passed through."""
    data = _jpeg_bytes(_smooth_rgb(3))
    assert parse_jpeg(data).complete
    for cut in range(4, len(data) - 1, max(1, len(data) // 97)):
        try:
            info = parse_jpeg(data[:cut])
        except ValueError:
            continue
        assert not info.complete, cut
    with pytest.raises(ValueError, match='SOI'):
        parse_jpeg(b'\x89PNG\r\n\x1a\n' + data)
    filled = data[:2] + b'\xff\xff\xff' + data[2:]           # fill bytes before a marker
    assert parse_jpeg(filled)[:4] == parse_jpeg(data)[:4]
    assert parse_jpeg(data + b'\x00' * 10).complete            # padding after EOI is kept


def test_unloaded_pil_of_a_stream_passes_through_and_stays_usable(tmp_path):
    """``Image.open(BytesIO)`` not loaded: its stream's bytes are stored, the image still loads."""
    data = _jpeg_bytes(_smooth_rgb(6))
    stream = io.BytesIO(data)
    image = Image.open(stream)
    field = RGBImageField('jpg', jpeg_passthrough=True)
    records = np.zeros(1, dtype=field.metadata_type)
    store = {}

    def malloc(size):
        store['buf'] = np.zeros(size, np.uint8)
        return 0, store['buf']
    field.encode(records[0:1], image, malloc)
    assert store['buf'].tobytes() == data and int(records['mode'][0]) == 0
    assert np.asarray(image.convert('RGB')).shape == (H, W, 3)      # still decodes
    drafted = Image.open(io.BytesIO(data))
    drafted.draft('RGB', (W // 2, H // 2))                # another size than its file
    field.encode(records[0:1], drafted, malloc)
    assert store['buf'].tobytes() != data and int(records['width'][0]) == W // 2


def _photo_like(h, w, seed=0):
    """Smooth colour pixels with some texture, (h, w, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(x / (7 + 5 * c) + y / (11 + 3 * c)) for c in range(3)], -1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def test_header_is_read_without_walking_the_file():
    """``jpeg_header`` stops at the SOF (``complete`` None); ``decode`` never walks the file."""
    from ffcvx.fields.encoded import EncodedImage
    data = _jpeg_bytes(_photo_like(120, 160))
    encoded = EncodedImage(data, 'x')
    assert encoded.jpeg_header.complete is None
    assert encoded.jpeg_header[:9] == parse_jpeg(data)[:9]
    encoded.decode(lambda image: np.asarray(image.convert('RGB')), 'F', 64, 3)
    assert encoded._info is False                      # the walk never ran
    assert encoded.jpeg_info.complete and parse_jpeg(data, walk=False).complete is None


def test_scan_walk_skips_stuffing_restarts_and_fill_bytes():
    data = _jpeg_bytes(_photo_like(64, 80))
    assert data.endswith(b'\xff\xd9') and parse_jpeg(data).complete
    assert parse_jpeg(data[:-2] + b'\xff\xff\xff\xd9').complete          # fill bytes before EOI
    assert not parse_jpeg(data[:-2] + b'\xff').complete                  # ends on a 0xFF
    assert not parse_jpeg(data[:-2] + b'\xff\xff').complete
    assert not parse_jpeg(data[:-2] + b'\xff\xd0').complete              # a restart, no EOI
    assert not parse_jpeg(data[:-2] + b'\xff\x00').complete              # stuffed, no EOI
    sos = data.find(b'\xff\xda')
    cut = sos + 2 + ((data[sos + 2] << 8) | data[sos + 3])
    assert not parse_jpeg(data[:cut] + b'\xff\xc4' + data[cut:]).complete  # DHT in the scan


def _codec():
    from ffcvx.fields.image_codecs import compiled_codec
    codec = compiled_codec()
    if codec is None:
        # make setup installs backends/turbojpeg: a missing codec is a broken set-up
        pytest.fail('ffcvx-turbojpeg (compiled writer codec) is not installed: '
                    'pip install -e backends/turbojpeg (needs libjpeg62-turbo-dev)')
    return codec


@pytest.mark.parametrize('channels', [3, 1])
def test_compiled_shrink_matches_pillow_draft_path(channels):
    """The compiled decode (DCT scale keeping 3x the target + C area resize) against the Pillow
    path (``draft`` at 3x the target, the same DCT scale here, INTER_AREA):
    within 1 level (same IDCT; area rounding of halves; gray: Pillow's RGB-to-L after the
    area resize instead of before), and close to a full decode + INTER_AREA."""
    from ffcvx.fields.encoded import EncodedImage
    from ffcvx.fields.image_codecs import shrink_to
    from ffcvx.fields.pixels import to_gray_array, to_rgb_array
    _codec()
    to_pixels = to_rgb_array if channels == 3 else to_gray_array
    for seed, (h, w) in enumerate([(1600, 2400), (2000, 1400), (333, 999)]):
        data = _jpeg_bytes(_photo_like(h, w, seed))
        compiled, shrunk = EncodedImage(data, 'x').decode(to_pixels, 'F', 256, channels)
        pillow, pillow_shrunk = EncodedImage(data, 'x').decode(to_pixels, 'F', 256, None)
        if not pillow_shrunk:           # no DCT scale keeps 3x: Pillow decoded at full size
            pillow = shrink_to(pillow, 256)
        assert shrunk and compiled.shape == pillow.shape
        assert _max_diff(compiled, pillow) <= 1
        full = shrink_to(to_pixels(Image.open(io.BytesIO(data))), 256)
        assert _psnr(compiled, full) > 35


@pytest.mark.parametrize('mode', ['raw', 'png'])
@pytest.mark.parametrize('field', [RGBImageField, GrayscaleImageField])
def test_compiled_full_decode_stores_pillows_pixels(tmp_path, mode, field):
    """No shrink: raw / png samples of a JPEG path are exactly those of Pillow's decode."""
    _codec()
    paths = []
    for i, array in enumerate([_photo_like(90, 120, 1), _photo_like(75, 50, 2)[..., 0]]):
        paths.append(tmp_path / f'{i}.jpg')
        Image.fromarray(array).save(paths[-1], quality=90)
    convert = 'RGB' if field is RGBImageField else 'L'
    custom = {} if field is RGBImageField else {'image': GrayscaleImageField}
    for path in paths:
        ref = _load(_write(tmp_path / 'a.beton', field(mode),
                           [np.asarray(Image.open(path).convert(convert))]), custom)
        got = _load(_write(tmp_path / 'b.beton', field(mode), [str(path)]), custom)
        assert np.array_equal(got, ref)


def test_encode_jpeg_is_pillows_bytes():
    from ffcvx.fields.image_codecs import encode_jpeg
    for pixels in (_photo_like(70, 90), _photo_like(33, 47)[..., 1]):
        for quality in (50, 75, 90, 95):
            out = io.BytesIO()
            Image.fromarray(pixels).save(out, format='JPEG', quality=quality)
            assert encode_jpeg(pixels, quality) == out.getvalue()


_WITHOUT_BACKEND = r'''
import sys
sys.modules['ffcvx_turbojpeg'] = None          # the optional package cannot be imported
import numpy as np
from PIL import Image
from ffcvx.fields import RGBImageField, IntField
from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.fields.image_codecs import compiled_codec
from ffcvx.loader import Loader
from ffcvx.writer import DatasetWriter
folder = sys.argv[1]
assert compiled_codec() is None
rng = np.random.default_rng(0)
paths = []
for i, (h, w) in enumerate([(300, 400), (600, 800)]):
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([x * 255 // w, y * 255 // h, (x + y) * 255 // (w + h)], -1).astype(np.uint8)
    paths.append(f'{folder}/{i}.jpg')
    Image.fromarray(pixels).save(paths[-1], quality=90)
class Samples:
    def __len__(self): return len(paths)
    def __getitem__(self, i): return paths[i], i
target = f'{folder}/x.beton'
DatasetWriter(target, {'image': RGBImageField('jpg', max_resolution=100), 'label': IntField()},
              num_workers=1, progress=False).from_indexed_dataset(Samples())
loader = Loader(target, batch_size=1, num_workers=1,
                pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
got = [x[0].copy() for x, _ in loader]
assert [g.shape for g in got] == [(75, 100, 3)] * 2
for path, image in zip(paths, got):
    ref = np.asarray(Image.open(path).convert('RGB').reduce(1).resize((100, 75), Image.BOX))
    mse = np.mean((image.astype(float) - ref) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 35, mse
assert 'ffcvx_turbojpeg._libjpeg_write' not in sys.modules
assert 'ffcvx_turbojpeg._libjpeg_encode' not in sys.modules
print('ok')
'''


def test_core_works_without_the_turbojpeg_package(tmp_path):
    """ffcvx writes paths (shrink, JPEG encode through Pillow) and reads them back when
    ffcvx_turbojpeg cannot be imported at all."""
    import subprocess
    import sys
    script = tmp_path / 'run.py'
    script.write_text(_WITHOUT_BACKEND)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([os.getcwd()] + [p for p in sys.path if p])
    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith('ok')


@pytest.mark.parametrize('max_resolution', [None, 64])
def test_damaged_jpeg_pillow_decodes_is_written_as_pillow_decodes_it(tmp_path, max_resolution):
    """A stray EOI in the scan data is a libjpeg warning, not an error: Pillow (and so
    FFCV) decodes the file, so the writer must too, with or without the compiled codec."""
    from ffcvx.fields.rgb_image import shrink_to
    big = np.kron(_smooth_rgb(3), np.ones((8, 8, 1), np.uint8))
    data = bytearray(_jpeg_bytes(big))
    sos = data.find(b'\xff\xda')
    middle = sos + (len(data) - sos) // 2
    data[middle:middle] = b'\xff\xd9'                 # premature end of the data segment
    path = tmp_path / 'damaged.jpg'
    path.write_bytes(bytes(data))
    expected = np.asarray(Image.open(path).convert('RGB'))    # Pillow decodes it
    got = _load(_write(tmp_path / 'd.beton', RGBImageField('raw', max_resolution=max_resolution),
                       [str(path)]))
    if max_resolution is None:
        assert np.array_equal(got[0], expected)
    else:
        full = shrink_to(expected, max_resolution)
        assert got.shape == (1,) + full.shape
        assert _psnr(got[0], full) > 30
