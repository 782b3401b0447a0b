"""The Loader with a decoder backend of kind ``batch`` (spec/backends.md BKD-042).

Everything except the CUDA decode itself runs here on the CPU: the nvjpeg
backend is built with a Pillow decode step (``decode_fn``) and
``device='cpu'``, and handed to the Loader through a ``Registry`` with
``extra=`` (the installed entry points are not touched). The GPU test at the
end runs the real torchvision/nvJPEG path and skips, with the backend's
``available()`` reason, where there is none.

Crops are drawn by Numba's RNG in the loader's thread, so the tests record the
crops and flips the decoder hands to ``decode_batch`` and replay them.

Tolerances, stated once:

- batch path vs the same backend's ``decode_batch`` on the same bytes, crops
  and flips: exact (the same code runs);
- batch path (Pillow ISLOW IDCT, torch float32 antialiased bilinear resize) vs
  the default turbojpeg path (IFAST IDCT, ffcvx's fixed-point triangle
  resize), over an epoch: full decodes within BKD-023's bounds between JPEG
  backends (mean <= 2.0, max <= 24; measured mean 1.03, max 6); resized crops
  mean <= RESIZED_MEAN and max <= RESIZED_MAX levels (measured on this
  module's noisy images, downscaled about 2x: CenterCrop mean 2.49, max 37;
  whole-image RandomResizedCrop mean 3.07, max 36; the two resize kernels
  weigh the noise differently).
"""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from ffcvx.errors import BackendNotFoundError, DecodeError
from ffcvx.fields import IntField, RGBImageField
from ffcvx.fields.decoders import (CenterCropRGBImageDecoder, IntDecoder,
                                   RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder)
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline.state import State
from ffcvx.reader import Reader
from ffcvx.registry import Registry, decoder_for_format
from ffcvx.transforms import RandomHorizontalFlip, ToDevice, ToTensor, ToTorchImage
from ffcvx.transforms.common import Squeeze
from ffcvx.writer import DatasetWriter
from ffcvx_nvjpeg import NvJPEGBackend

BKD023_MEAN = 2.0
BKD023_MAX = 24
RESIZED_MEAN = 4.0
RESIZED_MAX = 48


# --- data and helpers ----------------------------------------------------------------

class _Images:
    """Smooth images with noise, labelled by index; fixed or varying size."""

    def __init__(self, n, size=None, seed=0):
        self.n, self.size, self.seed = n, size, seed

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        h, w = self.size or (60 + (i * 7) % 50, 70 + (i * 11) % 60)
        rng = np.random.default_rng(self.seed + i)
        yy, xx = np.mgrid[0:h, 0:w]
        phase = rng.uniform(0, 6.28, 3)
        base = np.stack([127 + 100 * np.sin(xx / (5 + c) + yy / (7 + c) + phase[c]) for c in range(3)], 2)
        return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8), i


def _write(path, dataset, write_mode='jpg', **options):
    DatasetWriter(str(path), {'image': RGBImageField(write_mode=write_mode, jpeg_quality=90, **options),
                              'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(dataset)
    return str(path)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('batch_backend')
    return {'varied': _write(folder / 'varied.beton', _Images(40)),
            'fixed': _write(folder / 'fixed.beton', _Images(24, size=(48, 64), seed=50)),
            'mixed': _write(folder / 'mixed.beton', _Images(16, seed=90), write_mode='proportion',
                            compress_probability=0.5)}


def pillow_decode(data, device):
    """CPU stand-in for torchvision's ``decode_jpeg`` (the nvjpeg backend's decode step)."""
    out = []
    for tensor in data:
        image = Image.open(io.BytesIO(tensor.numpy().tobytes()), formats=['JPEG'])
        pixels = np.asarray(image.convert('RGB')).copy()
        out.append(torch.from_numpy(pixels).permute(2, 0, 1).to(device))
    return out


class RecordingBackend(NvJPEGBackend):
    """The nvjpeg backend on the CPU, remembering what each decode_batch call got."""

    def __init__(self):
        super().__init__(decode_fn=pillow_decode, device='cpu')
        self.calls = []

    def decode_batch(self, sources, crops=None, output_size=None, flips=None, device=None):
        self.calls.append({'sources': [bytes(s) for s in sources],
                           'crops': None if crops is None else np.array(crops),
                           'output_size': output_size,
                           'flips': None if flips is None else np.array(flips),
                           'device': device})
        return super().decode_batch(sources, crops, output_size, flips, device)


def _loader(path, image_ops, backend=None, **kwargs):
    registry = Registry('ffcvx.decoders', extra={'nvjpeg': backend} if backend is not None else None)
    options = dict(batch_size=8, num_workers=2, drop_last=False)
    options.update(kwargs)
    return Loader(path, decoder_registry=registry, backend='nvjpeg' if backend is not None else None,
                  pipelines={'image': image_ops, 'label': [IntDecoder(), ToTensor(), Squeeze()]},
                  **options)


def _epoch(loader):
    images, labels = [], []
    for batch, batch_labels in loader:
        images.append(batch.clone() if isinstance(batch, torch.Tensor) else torch.from_numpy(batch.copy()))
        labels.append(batch_labels.clone())
    return torch.cat(images), torch.cat(labels)


def _close(a, b, mean, maximum):
    diff = (a.to(torch.int16) - b.to(torch.int16)).abs()
    assert diff.float().mean().item() <= mean and diff.max().item() <= maximum, \
        (diff.float().mean().item(), diff.max().item())


# --- the batch path ------------------------------------------------------------------

def test_random_resized_crop_matches_decode_batch_and_keeps_labels(files):
    """BKD-042: the decoder hands each sample's bytes, crop and flip to one decode_batch call."""
    backend = RecordingBackend()
    path = files['varied']
    loader = _loader(path, [RandomResizedCropRGBImageDecoder((32, 24)), RandomHorizontalFlip(0.5),
                            ToTensor(), ToDevice('cpu'), ToTorchImage()],
                     backend, order=OrderOption.RANDOM, seed=3)
    steps = loader.graph.pipelines[0].steps
    assert steps[0].operation.flip_prob == 0.5          # the flip was fused
    assert all(step.destination is None and step.shared is None for step in steps)
    reader = Reader(path)
    metadata = reader.metadata['f0']
    seen, flips = [], []
    for (images, labels), call in zip(loader, backend.calls):
        assert images.shape == (len(labels), 3, 32, 24) and images.dtype == torch.uint8
        labels = labels.tolist()
        # labels aligned: sample k's bytes are those of the sample labelled k
        assert call['sources'] == [reader.read_sample_region(i, 'image').tobytes() for i in labels]
        for (y, x, h, w), i in zip(call['crops'].tolist(), labels):
            height, width = int(metadata[i]['height']), int(metadata[i]['width'])
            assert 0 <= y and 0 <= x and 0 < h and 0 < w and y + h <= height and x + w <= width
            assert h * w <= height * width
        again = NvJPEGBackend(decode_fn=pillow_decode, device='cpu').decode_batch(
            call['sources'], call['crops'], (32, 24), call['flips'], 'cpu')
        assert torch.equal(images.permute(0, 2, 3, 1), again)
        seen += labels
        flips += call['flips'].tolist()
    assert sorted(seen) == list(range(40))
    assert 0 < sum(flips) < len(flips)                  # both outcomes occur at p = 0.5


def test_center_crop_and_simple_match_decode_batch_and_turbojpeg(files):
    """Deterministic crops: exact against decode_batch, close to the turbojpeg path."""
    cases = [(files['varied'], lambda: CenterCropRGBImageDecoder((40, 40), 0.875), RESIZED_MEAN, RESIZED_MAX),
             (files['fixed'], lambda: SimpleRGBImageDecoder(), BKD023_MEAN, BKD023_MAX),
             # scale (1, 1) and a wide ratio range: the whole image, resized
             (files['varied'], lambda: RandomResizedCropRGBImageDecoder((40, 40), (1.0, 1.0), (0.2, 5.0)),
              RESIZED_MEAN, RESIZED_MAX)]
    for path, make, mean, maximum in cases:
        backend = RecordingBackend()
        # One seed for both: a ratio drawn within rounding of the image's gives a
        # near-whole crop at a drawn offset, which must be the same one on both paths.
        images, labels = _epoch(_loader(path, [make(), ToTensor()], backend, seed=5))
        reference, ref_labels = _epoch(_loader(path, [make(), ToTensor()], seed=5))
        assert torch.equal(labels, ref_labels)
        assert images.shape == reference.shape and images.dtype == torch.uint8
        _close(images, reference, mean, maximum)
        replay = torch.cat([backend.decode_batch(c['sources'], c['crops'], c['output_size'], c['flips'], 'cpu')
                            for c in list(backend.calls)])
        assert torch.equal(images, replay)


def test_flip_fused_into_batch_decode(files):
    path = files['varied']
    plain, _ = _epoch(_loader(path, [CenterCropRGBImageDecoder((20, 30), 1.0)], RecordingBackend()))
    loader = _loader(path, [CenterCropRGBImageDecoder((20, 30), 1.0), RandomHorizontalFlip(1.0)],
                     RecordingBackend())
    assert len(loader.graph.pipelines[0].steps) == 1
    flipped, _ = _epoch(loader)
    assert torch.equal(flipped, plain.flip(2))
    assert not torch.equal(flipped, plain)


def test_states_and_pass_through_transforms(files):
    """The decoder's State is a device uint8 tensor; ToTensor and ToDevice then do nothing."""
    loader = _loader(files['fixed'], [SimpleRGBImageDecoder(), ToTensor(), ToDevice('cpu'),
                                      ToTorchImage(channels_last=False)], RecordingBackend())
    steps = loader.graph.pipelines[0].steps
    assert loader.graph.pipelines[0].output_state == State(False, torch.device('cpu'), (3, 48, 64), torch.uint8)
    assert [s.destination is None for s in steps] == [True, True, True, False]
    images, _ = next(iter(loader))
    assert images.shape == (8, 3, 48, 64) and images.is_contiguous()


def test_corrupt_jpeg_names_the_sample_in_the_loop(tmp_path):
    path = _write(tmp_path / 'corrupt.beton', _Images(20, size=(40, 56), seed=7))
    ptr = int(Reader(path).metadata['f0'][13]['data_ptr'])
    with open(path, 'r+b') as f:       # destroy sample 13's start-of-image marker
        f.seek(ptr)
        f.write(b'\x00\x00')
    for decoder in (SimpleRGBImageDecoder(), RandomResizedCropRGBImageDecoder((16, 16))):
        loader = _loader(path, [decoder], RecordingBackend(), batch_size=4, order=OrderOption.RANDOM, seed=1)
        with pytest.raises(DecodeError, match=r'sample 13 \(jpg.*nvjpeg failed: .*position \d of the batch'):
            for _ in loader:
                pass


def test_batch_backend_needs_a_jpeg_only_rgb_field(files):
    """Mixed JPEG/raw fields are refused at construction, not half-decoded (BKD-042)."""
    with pytest.raises(BackendNotFoundError, match=r"batch decoding is not implemented.*raw samples.*JPEG-only"):
        _loader(files['mixed'], [CenterCropRGBImageDecoder((16, 16))], RecordingBackend())
    # the same field through the per-sample path is fine
    _loader(files['mixed'], [CenterCropRGBImageDecoder((16, 16))])


def test_unavailable_batch_backend_and_default_order(files):
    """No CUDA here: the installed nvjpeg is refused at construction with its reason."""
    registry = Registry('ffcvx.decoders')
    assert decoder_for_format(registry, 'jpeg').name == 'turbojpeg'      # never the batch one
    loader = _loader(files['fixed'], [SimpleRGBImageDecoder()])
    assert loader.graph.pipelines[0].steps[0].operation._batch_backend is None
    if 'nvjpeg' not in registry.names():
        pytest.skip("the nvjpeg backend is not installed (pip install ./backends/nvjpeg)")
    ok, why = registry.get('nvjpeg').available()
    if ok:
        pytest.skip("nvjpeg is available here; see test_nvjpeg_on_the_gpu")
    with pytest.raises(BackendNotFoundError, match=r"'nvjpeg' is unavailable here: no CUDA device"):
        Loader(files['fixed'], batch_size=8, backend='nvjpeg',
               pipelines={'image': [RandomResizedCropRGBImageDecoder((32, 32))], 'label': None})


def test_nvjpeg_on_the_gpu(files):
    """The real path: nvJPEG decode on CUDA, crop, resize and flip there."""
    backend = Registry('ffcvx.decoders').get('nvjpeg')
    ok, why = backend.available()
    if not ok:
        pytest.skip(f"nvjpeg unavailable: {why}")
    loader = Loader(files['varied'], batch_size=8, backend='nvjpeg', order=OrderOption.RANDOM, seed=0,
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((32, 32)), RandomHorizontalFlip(),
                                         ToTensor(), ToDevice('cuda'), ToTorchImage()],
                               'label': [IntDecoder(), ToTensor(), Squeeze()]})
    seen = []
    for images, labels in loader:
        assert images.device.type == 'cuda' and images.shape == (8, 3, 32, 32)
        seen += labels.tolist()
    assert sorted(seen) == list(range(40))
    make = lambda: CenterCropRGBImageDecoder((40, 40), 0.875)  # noqa: E731
    gpu, gpu_labels = _epoch(Loader(files['varied'], batch_size=8, backend='nvjpeg',
                                    pipelines={'image': [make(), ToTensor()], 'label': [IntDecoder(), ToTensor()]}))
    cpu, cpu_labels = _epoch(Loader(files['varied'], batch_size=8,
                                    pipelines={'image': [make(), ToTensor()], 'label': [IntDecoder(), ToTensor()]}))
    assert torch.equal(gpu_labels, cpu_labels)
    _close(gpu.cpu(), cpu, RESIZED_MEAN, RESIZED_MAX)


def test_device_without_index_is_resolved_in_the_building_thread(monkeypatch):
    """'cuda' means the current device of the thread that builds the Loader, not the epoch thread's."""
    from ffcvx.pipeline.state import State, concrete_device
    from ffcvx.transforms import ToDevice

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'current_device', lambda: 3)
    assert concrete_device('cuda') == torch.device('cuda', 3)
    assert concrete_device('cuda:1') == torch.device('cuda', 1)
    assert concrete_device('cpu') == torch.device('cpu')
    # A batch decoded on 'cuda' is already where ToDevice('cuda:3') would put it.
    decoded = State(False, torch.device('cuda'), (4, 4, 3), torch.uint8)
    assert ToDevice('cuda:3')._already_there(decoded)
    assert not ToDevice('cuda:1')._already_there(decoded)


def test_field_without_jpegs_uses_the_default_order(tmp_path):
    """BKD-042, BKD-053: a PNG-only field under backend='nvjpeg' is decoded per sample on the CPU."""
    path = _write(tmp_path / 'png.beton', _Images(8, size=(32, 40)), write_mode='png')
    backend = RecordingBackend()
    loader = _loader(path, [SimpleRGBImageDecoder()], backend)
    try:
        images, _ = next(iter(loader))
    finally:
        loader.close()
    assert backend.calls == []                       # the batch backend never ran
    assert isinstance(images, np.ndarray) and images.shape == (8, 32, 40, 3)
    np.testing.assert_array_equal(images[3], _Images(8, size=(32, 40))[3][0])  # PNG: exact


def test_named_backend_is_only_asked_about_formats_it_declares(tmp_path, monkeypatch):
    """BKD-053: naming a JPEG-only backend for a PNG field neither uses nor probes it."""
    class Unavailable(RecordingBackend):
        def available(self):
            pytest.fail('available() asked for a format the backend does not declare')

    path = _write(tmp_path / 'png.beton', _Images(4, size=(16, 20)), write_mode='png')
    registry = Registry('ffcvx.decoders', extra={'nvjpeg': Unavailable()})
    assert decoder_for_format(registry, 'png', preferred='nvjpeg').name in ('imagecodecs', 'pillow')
