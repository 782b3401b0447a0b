"""GrayscaleImageField (FMT-083 to FMT-085): writing, the RGB decoders on one channel, FFCV layout."""
import numpy as np
import pytest

from ffcvx.backend_api import PythonDecoderBackend
from ffcvx.errors import DecodeError
from ffcvx.fields import GrayscaleImageField, IntField, RGBImageField
from ffcvx.fields.decoders import (CenterCropRGBImageDecoder, IntDecoder,
                                   RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder)
from ffcvx.fields.rgb_image import GRAY_MAGIC, to_gray_array
from ffcvx.loader import Loader
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

GRAY = {'image': GrayscaleImageField}


class _Images:
    """``(image, label)`` pairs from a list of arrays."""

    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.images[index], index


def _smooth(n, h, w, seed=0):
    # Smooth gradients plus a per-sample offset: JPEG keeps them within a few levels.
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for _ in range(n):
        a, b, c = rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(40, 200)
        out.append(np.clip(c + a * y + b * x, 0, 255).astype(np.uint8))
    return out


def _noise(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(n)]


def _write(path, images, field):
    DatasetWriter(str(path), {'image': field, 'label': IntField()}, num_workers=1,
                  progress=False).from_indexed_dataset(_Images(images))
    return str(path)


def _load(path, decoder, custom_fields=GRAY, batch_size=8, pipelines_extra=(), **kwargs):
    loader = Loader(path, batch_size=batch_size, num_workers=2, drop_last=False,
                    custom_fields=custom_fields,
                    pipelines={'image': [decoder, *pipelines_extra], 'label': [IntDecoder()]}, **kwargs)
    images, labels = [], []
    for x, y in loader:
        images.append(x.copy())
        labels.append(y.copy().reshape(-1))
    return np.concatenate(images), np.concatenate(labels)


@pytest.mark.parametrize('mode', ['raw', 'png'])
def test_lossless_round_trip(tmp_path, mode):
    """Raw and PNG gray samples come back exactly, as (B, H, W, 1) and as (B, H, W, 3)."""
    images = _noise(19, 20, 24)
    path = _write(tmp_path / 'g.beton', images, GrayscaleImageField(write_mode=mode))
    got, labels = _load(path, SimpleRGBImageDecoder())
    assert got.shape == (19, 20, 24, 1) and got.dtype == np.uint8
    assert labels.tolist() == list(range(19))
    assert np.array_equal(got[..., 0], np.stack(images))
    got3, _ = _load(path, SimpleRGBImageDecoder(channels=3))
    assert got3.shape == (19, 20, 24, 3)
    assert np.array_equal(got3, np.repeat(np.stack(images)[..., None], 3, axis=3))


@pytest.mark.parametrize('backend', ['turbojpeg', 'pillow'])
def test_jpeg_round_trip(tmp_path, backend):
    """Gray JPEG samples (one-component JPEGs, FMT-085) decode within a small tolerance."""
    images = _smooth(10, 32, 40)
    path = _write(tmp_path / 'g.beton', images, GrayscaleImageField(write_mode='jpg', jpeg_quality=95))
    got, _ = _load(path, SimpleRGBImageDecoder(), backend=backend)
    assert got.shape == (10, 32, 40, 1)
    diff = np.abs(got[..., 0].astype(int) - np.stack(images).astype(int))
    assert diff.max() <= 4, diff.max()
    got3, _ = _load(path, SimpleRGBImageDecoder(channels=3), backend=backend)
    assert np.array_equal(got3, np.repeat(got, 3, axis=3))


def test_jpeg_is_one_component(tmp_path):
    """The writer stores a grayscale JPEG (SOF0 with 1 component), not RGB, and a colour type 0 PNG."""
    import io
    from PIL import Image
    field = GrayscaleImageField(write_mode='jpg')
    records = np.zeros(1, dtype=field.metadata_type)
    store = {}

    def malloc(size):
        store['buf'] = np.zeros(size, np.uint8)
        return 4096, store['buf']
    field.encode(records[0:1], _smooth(1, 16, 16)[0], malloc)
    assert Image.open(io.BytesIO(store['buf'].tobytes())).mode == 'L'
    assert int(records['mode'][0]) == 0
    GrayscaleImageField(write_mode='png').encode(records[0:1], _smooth(1, 16, 16)[0], malloc)
    png = store['buf'].tobytes()
    assert png[25] == 0 and Image.open(io.BytesIO(png)).mode == 'L'   # IHDR colour type 0
    GrayscaleImageField(write_mode='raw').encode(records[0:1], _smooth(1, 16, 16)[0], malloc)
    assert store['buf'].size == 16 * 16 and int(records['mode'][0]) == 1


@pytest.mark.parametrize('mode', ['raw', 'png', 'jpg'])
def test_center_crop_equals_rgb_path(tmp_path, mode):
    """CenterCrop on gray == CenterCrop on the same pixels stored as RGB, channel 0 (exact)."""
    images = _noise(9, 30, 44, seed=3)
    gray = _write(tmp_path / 'g.beton', images, GrayscaleImageField(write_mode=mode, jpeg_quality=95))
    got, _ = _load(gray, CenterCropRGBImageDecoder((16, 12), ratio=0.8))
    assert got.shape == (9, 16, 12, 1)
    got3, _ = _load(gray, CenterCropRGBImageDecoder((16, 12), ratio=0.8, channels=3))
    assert np.array_equal(got3, np.repeat(got, 3, axis=3))
    if mode == 'jpg':
        return  # a colour JPEG of the same pixels is a different file
    rgb = _write(tmp_path / 'c.beton', [np.repeat(im[..., None], 3, axis=2) for im in images],
                 RGBImageField(write_mode=mode))
    ref, _ = _load(rgb, CenterCropRGBImageDecoder((16, 12), ratio=0.8), custom_fields=None)
    assert np.array_equal(got[..., 0], ref[..., 0])


@pytest.mark.parametrize('mode', ['raw', 'png', 'jpg'])
@pytest.mark.parametrize('channels', [None, 3])
def test_random_resized_crop_on_gray(tmp_path, mode, channels):
    """Images of several sizes, each of one grey level = 5 * label: every output pixel keeps it."""
    rng = np.random.default_rng(1)
    images = [np.full((int(rng.integers(8, 60)), int(rng.integers(8, 60))), 5 * i, np.uint8)
              for i in range(23)]
    path = _write(tmp_path / 'g.beton', images, GrayscaleImageField(write_mode=mode))
    got, labels = _load(path, RandomResizedCropRGBImageDecoder((10, 14), channels=channels))
    assert got.shape == (23, 10, 14, 3 if channels == 3 else 1)
    tolerance = 1 if mode == 'jpg' else 0
    for image, label in zip(got, labels):
        assert np.abs(image.astype(int) - 5 * int(label)).max() <= tolerance


def test_fashion_mnist_like(tmp_path):
    """28x28 gray images with labels, the shape of Fashion-MNIST as it is stored."""
    from ffcvx.transforms import ToTensor, ToTorchImage
    images = _noise(64, 28, 28, seed=7)
    path = _write(tmp_path / 'f.beton', images, GrayscaleImageField())
    loader = Loader(path, batch_size=32, num_workers=2, custom_fields=GRAY,
                    pipelines={'image': [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage()],
                               'label': [IntDecoder()]})
    batches = list(loader)
    assert len(batches) == 2
    x, y = batches[0]
    assert tuple(x.shape) == (32, 1, 28, 28)
    assert np.array_equal(x[5, 0].numpy(), images[int(y[5, 0])])


def test_writer_inputs(tmp_path):
    """PIL images, (H, W, 1) and (H, W, 3) arrays are accepted; other inputs refused."""
    from PIL import Image
    image = _noise(1, 6, 7)[0]
    assert np.array_equal(to_gray_array(image[..., None]), image)
    assert np.array_equal(to_gray_array(Image.fromarray(image)), image)
    assert np.array_equal(to_gray_array(np.repeat(image[..., None], 3, axis=2)), image)
    with pytest.raises(TypeError, match='uint8'):
        to_gray_array(image.astype(np.float32))
    with pytest.raises(TypeError, match='shape'):
        to_gray_array(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match='write_mode'):
        GrayscaleImageField(write_mode='gif')


def test_storage_is_a_marked_custom_field(tmp_path):
    """FMT-083/FMT-084: type id 255 with the marker; RGB fields beside it keep id 2 and zero arguments."""
    path = str(tmp_path / 'm.beton')
    images = _noise(3, 5, 5)
    DatasetWriter(path, {'gray': GrayscaleImageField(), 'rgb': RGBImageField()}, num_workers=1,
                  progress=False).from_indexed_dataset(
        _Pairs([(im, np.repeat(im[..., None], 3, axis=2)) for im in images]))
    # no class given: recognised by its marker (FMT-087; tests/format/test_gray_autodetect.py)
    assert isinstance(Reader(path).handlers['gray'], GrayscaleImageField)
    reader = Reader(path, custom_handlers={'gray': GrayscaleImageField})
    raw = open(path, 'rb').read()
    gray_desc, rgb_desc = raw[24:24 + 1041], raw[24 + 1041:24 + 2 * 1041]
    assert gray_desc[0] == 255 and rgb_desc[0] == 2
    assert gray_desc[17:17 + len(GRAY_MAGIC)] == GRAY_MAGIC and gray_desc[17 + len(GRAY_MAGIC)] == 1
    assert rgb_desc[17:] == bytes(1024)
    assert isinstance(reader.handlers['gray'], GrayscaleImageField)
    assert type(reader.handlers['rgb']) is RGBImageField


def test_marker_is_checked():
    """The class given for a field that another class wrote is refused (FMT-084)."""
    from ffcvx.fields.base import zero_arguments
    with pytest.raises(ValueError, match='marker'):
        GrayscaleImageField.from_binary(zero_arguments())
    assert isinstance(GrayscaleImageField.from_binary(GrayscaleImageField().to_binary()),
                      GrayscaleImageField)


def test_channels_one_refused_on_rgb(tmp_path):
    """An RGB field cannot be read as one channel; bad channel counts are refused."""
    path = _write(tmp_path / 'c.beton', [np.zeros((4, 4, 3), np.uint8)] * 2, RGBImageField())
    with pytest.raises(ValueError, match='GrayscaleImageField'):
        Loader(path, batch_size=2, pipelines={'image': [SimpleRGBImageDecoder(channels=1)]})
    with pytest.raises(ValueError, match='channels'):
        SimpleRGBImageDecoder(channels=2)


class _Pairs:
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def _idx(path, array, magic):
    import gzip
    import struct
    with gzip.open(path, 'wb') as f:
        f.write(struct.pack('>I', magic) + b''.join(struct.pack('>I', d) for d in array.shape))
        f.write(array.tobytes())


def test_cli_fashion_mnist_grayscale(tmp_path):
    """``ffcvx convert fashion-mnist --grayscale`` writes (28, 28) one-channel images; the default stays RGB."""
    from ffcvx.cli import main
    images = {p: np.stack(_noise(n, 28, 28, seed=n)) for p, n in (('train', 12), ('t10k', 5))}
    for prefix, array in images.items():
        _idx(tmp_path / f'{prefix}-images-idx3-ubyte.gz', array, 0x803)
        _idx(tmp_path / f'{prefix}-labels-idx1-ubyte.gz', np.arange(len(array), dtype=np.uint8) % 10, 0x801)
    out = tmp_path / 'out'
    assert main(['convert', 'fashion-mnist', str(out), '--source', str(tmp_path), '--grayscale',
                 '--quiet', '--num-workers', '1']) == 0
    got, labels = _load(str(out / 'train.beton'), SimpleRGBImageDecoder())
    assert got.shape == (12, 28, 28, 1)
    assert np.array_equal(got[..., 0], images['train'])
    rgb = tmp_path / 'rgb'
    assert main(['convert', 'fashion-mnist', str(rgb), '--source', str(tmp_path), '--quiet',
                 '--num-workers', '1']) == 0
    assert type(Reader(str(rgb / 'test.beton')).handlers['image']) is RGBImageField


# --- the one-channel path (BKD-025 to BKD-027): channels=1 == channel 0 of channels=3 ---------
#
# Before the one-channel path, channels=1 decoded and resized as RGB (R = G = B) and kept
# channel 0; that is still exactly what channels=3 does, so channels=3's channel 0 is the
# previous behaviour. Each file stores the same images in a pair of fields read with
# channels=1 and channels=3 by one Loader. The crop samplers are reseeded from each image's
# size, so both fields of a sample get the same random crop and the same random flip.

class _SeededRRC(RandomResizedCropRGBImageDecoder):
    """RandomResizedCrop whose per-sample draws (crop, then the fused flip) depend only on the size."""

    def crop_sampler(self):
        from numba import njit
        from ffcvx.decoders.kernels import get_random_crop
        from math import log
        scale_lo, scale_hi = self.scale
        log_lo, log_hi = log(self.ratio[0]), log(self.ratio[1])

        @njit(nogil=True)
        def sample(height, width):
            np.random.seed(height * 7919 + width)
            return get_random_crop(height, width, scale_lo, scale_hi, log_lo, log_hi)
        return sample


class _NoGray(PythonDecoderBackend):
    """Pillow without ``supports_gray``: the decoders fall back to the RGB decode (BKD-027)."""

    name = 'nogray'
    formats = frozenset({'jpeg', 'png'})
    requires = ('PIL.Image',)

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def decode(self, data, crop, target):
        return self.inner.decode_region_py(data)


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


PAIRS = ('simple', 'rrc', 'center')


def _pair_file(path, mode):
    """20 samples: one 40x56 image for the Simple pair, one of varying size (3..130 px) for the crop pairs."""
    rng = np.random.default_rng(11)
    fixed = _smooth(20, 40, 56, seed=5)
    rows = []
    for k in range(20):
        h, w = int(rng.integers(3, 130)), int(rng.integers(3, 130))
        varied = (_smooth(1, h, w, seed=k)[0] if k % 2 else _noise(1, h, w, seed=k)[0])
        rows.append((fixed[k], fixed[k], varied, varied, varied, varied, k))
    field = lambda: GrayscaleImageField(write_mode=mode, jpeg_quality=90)
    fields = {f'{p}{c}': field() for p in PAIRS for c in (1, 3)}
    order = ['simple1', 'simple3', 'rrc1', 'rrc3', 'center1', 'center3']
    DatasetWriter(str(path), {**{name: fields[name] for name in order}, 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(_Rows(rows))
    return str(path)


def _pair_pipelines(flip):
    from ffcvx.transforms import RandomHorizontalFlip
    pipes = {}
    for c in (1, 3):
        pipes[f'simple{c}'] = [SimpleRGBImageDecoder(channels=c)]
        pipes[f'rrc{c}'] = [_SeededRRC((24, 20), channels=c)] + ([RandomHorizontalFlip(0.5)] if flip else [])
        pipes[f'center{c}'] = [CenterCropRGBImageDecoder((17, 23), ratio=0.7, channels=c)]
    return pipes


#: (write mode, backend): raw samples never reach a backend, so once is enough;
#: turbojpeg decodes no PNG (the default order would take those samples).
PAIR_CASES = ([('jpg', b) for b in ('turbojpeg', 'pillow', 'imagecodecs', 'nogray')]
              + [('png', b) for b in ('pillow', 'imagecodecs', 'nogray')] + [('raw', 'turbojpeg')])


@pytest.fixture(scope='module')
def pair_files(tmp_path_factory):
    """``mode -> path`` of the paired-fields file, written once per mode."""
    made = {}

    def get(mode):
        if mode not in made:
            made[mode] = _pair_file(tmp_path_factory.mktemp('gray_pairs') / 'p.beton', mode)
        return made[mode]
    return get


@pytest.mark.parametrize('mode, backend', PAIR_CASES)
def test_one_channel_path_equals_channel0_of_rgb_path(pair_files, mode, backend):
    from ffcvx.registry import Registry
    path = pair_files(mode)
    registry = Registry('ffcvx.decoders')
    registry = Registry('ffcvx.decoders', extra={'nogray': _NoGray(registry.get('pillow'))})
    chosen = registry.get(backend)
    assert getattr(chosen, 'supports_gray', False) is (backend != 'nogray')
    loader = Loader(path, batch_size=6, num_workers=2, drop_last=False, custom_fields=None,
                    decoder_registry=registry, backend=backend,
                    pipelines={**_pair_pipelines(flip=True), 'label': [IntDecoder()]})
    # every decoder of the one-channel fields takes the one-channel path
    one_channel = [op for op in _decoders(loader) if op.channels == 1]
    assert len(one_channel) == 3
    for op in one_channel:
        assert op._one_channel()
        for fmt in op._backends:
            assert op._decode_function(fmt)[2] is (backend != 'nogray')
    names = [pipeline.name for pipeline in loader.graph.pipelines]
    out = {name: [] for name in names}
    for batch in loader:
        for name, array in zip(names, batch):
            out[name].append(array.copy())
    for p in PAIRS:
        one, three = np.concatenate(out[f'{p}1']), np.concatenate(out[f'{p}3'])
        assert one.shape[-1] == 1 and three.shape[-1] == 3 and len(one) == 20
        assert np.array_equal(three[..., 0], three[..., 2])     # gray stays gray as RGB
        assert np.array_equal(one[..., 0], three[..., 0]), (p, np.abs(
            one[..., 0].astype(int) - three[..., 0]).max())
        assert one.std() > 5                                    # real pixels
    # the seeded sampler gives varied crops and flips: not all outputs are alike
    rrc = np.concatenate(out['rrc1'])
    assert len({rrc[k].tobytes() for k in range(20)}) == 20


def _decoders(loader):
    from ffcvx.decoders import SimpleRGBImageDecoder as Base
    return [step.operation for pipeline in loader.graph.pipelines for step in pipeline.steps
            if isinstance(step.operation, Base)]


def test_one_channel_scratch_is_smaller(tmp_path):
    """One-channel decoders declare one byte per pixel of region and the gray resize scratch."""
    from ffcvx.reader import Reader
    images = [np.zeros((60, 80), np.uint8)] * 2
    path = _write(tmp_path / 'g.beton', images, GrayscaleImageField(write_mode='jpg'))
    sizes = {}
    for c in (1, 3):
        loader = Loader(path, batch_size=2, custom_fields=GRAY, backend='turbojpeg',
                        pipelines={'image': [CenterCropRGBImageDecoder((32, 32), channels=c)],
                                   'label': None})
        (op,) = _decoders(loader)
        region, resize = op._scratch_layout()
        sizes[c] = (region, resize, op.declare_shared_memory(None)[0].shape[1])
        simple = Loader(path, batch_size=2, custom_fields=GRAY, backend='turbojpeg',
                        pipelines={'image': [SimpleRGBImageDecoder(channels=c)], 'label': None})
        (sop,) = _decoders(simple)
        sizes[f's{c}'] = sop.declare_shared_memory(None)[0].shape[1]
    assert sizes[1][0] == 60 * 80 and sizes[3][0] == 60 * 80 * 3
    assert sizes[1][1] < sizes[3][1] and sizes[1][2] == sizes[1][0] + sizes[1][1]
    assert sizes['s1'] == 1     # decoded straight into the output, no RGB scratch
    assert Reader(path).num_samples == 2


@pytest.mark.parametrize('backend', ['turbojpeg', 'pillow', 'nogray'])
def test_corrupt_gray_jpeg_raises_in_loop(tmp_path, backend):
    """A damaged gray JPEG read with one channel: DecodeError naming the sample, no crash."""
    from ffcvx.registry import Registry
    path = _write(tmp_path / 'g.beton', _noise(12, 30, 40, seed=4), GrayscaleImageField(write_mode='jpg'))
    ptr = int(Reader(path).metadata['f0'][7]['data_ptr'])
    with open(path, 'r+b') as f:       # destroy sample 7's start-of-image marker
        f.seek(ptr)
        f.write(b'\x00\x00')
    registry = Registry('ffcvx.decoders')
    registry = Registry('ffcvx.decoders', extra={'nogray': _NoGray(registry.get('pillow'))})
    for decoder in (SimpleRGBImageDecoder(), RandomResizedCropRGBImageDecoder((16, 16))):
        loader = Loader(path, batch_size=4, num_workers=2, custom_fields=GRAY, backend=backend,
                        decoder_registry=registry, pipelines={'image': [decoder], 'label': None})
        with pytest.raises(DecodeError, match=r'sample 7 \(jpg, .* failed: '):
            for _ in loader:
                pass


def test_raw_gray_crop_and_flip_match_a_reference(tmp_path):
    """One channel, raw samples, RRC + fused flip: exactly resize_gray of the same box, mirrored
    where the decoder's draw says so (the draws are replayed with the same seed)."""
    from numba import njit
    from math import log
    from ffcvx._ext.resize import resize_gray
    from ffcvx.decoders.kernels import get_random_crop
    from ffcvx.transforms import RandomHorizontalFlip
    rng = np.random.default_rng(8)
    images = [_noise(1, int(rng.integers(20, 90)), int(rng.integers(20, 90)), seed=k)[0] for k in range(24)]
    path = _write(tmp_path / 'g.beton', images, GrayscaleImageField(write_mode='raw'))
    decoder = _SeededRRC((24, 20), channels=1)
    log_lo, log_hi = log(decoder.ratio[0]), log(decoder.ratio[1])
    scale_lo, scale_hi = decoder.scale

    @njit
    def replay(height, width):
        np.random.seed(height * 7919 + width)
        i, j, h, w = get_random_crop(height, width, scale_lo, scale_hi, log_lo, log_hi)
        return i, j, h, w, np.random.rand() < 0.5

    got, labels = _load(path, decoder, pipelines_extra=[RandomHorizontalFlip(0.5)])
    flips = 0
    for image, label in zip(got, labels):
        source = images[int(label)]
        i, j, h, w, flip = replay(*source.shape)
        flips += flip
        want = resize_gray(source[i:i + h, j:j + w], np.empty((24, 20), np.uint8), mirror=flip)
        assert np.array_equal(image[..., 0], want), int(label)
    assert 0 < flips < len(images)
