"""The decode layer's Operation protocol (spec/backends.md BKD-070 to BKD-074).

* Decoders use exactly the buffers they declare: a user subclass that
  declares FFCV's one ``AllocationQuery((max_h, max_w, 3), uint8)`` reads
  images of several sizes, each packed at the start of its slot; an
  undersized buffer is a DecodeError naming the sample, never a write past
  the slot.
* One status table (``ffcvx.status``): each range's ``describe`` text is in
  the error of a failure from that source.
* Declarations and code generation can be repeated (the Loader re-plans
  every epoch); an absorbed flip is read when code is generated.
* Layering: transforms import only ``ffcvx.decoders.kernels`` of the decode
  layer, except ``resized_crop.py``, FFCV-SSL's module of crop *decoders*; no module of ``ffcvx/decoders`` exceeds 400 lines.
"""
import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from _common import write_labelled
from ffcvx import status
from ffcvx.backend_api import STATUS_MEANINGS
from ffcvx.decoders import CenterCropRGBImageDecoder, IntDecoder, SimpleRGBImageDecoder
from ffcvx.errors import DecodeError
from ffcvx.fields import RGBImageField
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline import AllocationQuery, State
from ffcvx.pipeline.state import INITIAL_STATE
from ffcvx.reader import Reader
from ffcvx.registry import Registry
from ffcvx.transforms import RandomHorizontalFlip

REPO = Path(__file__).resolve().parents[2]
CPU = torch.device('cpu')
UINT8 = np.dtype(np.uint8)
#: (height, width) of the variable-size images, pixels; the largest is not first.
SIZES = [(20, 30), (24, 18), (31, 40), (12, 12), (40, 50), (35, 44), (16, 33), (40, 21)]


def _images():
    rng = np.random.default_rng(3)
    out = []
    for h, w in SIZES:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([120 + 90 * np.sin(xx / (4 + c) + yy / (6 + c)) for c in range(3)], 2)
        out.append(np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    """``mode -> path``: the variable-size images written raw and as JPEGs."""
    folder = tmp_path_factory.mktemp('protocol')
    return {mode: write_labelled(folder / f'{mode}.beton', _images(), RGBImageField(write_mode=mode))
            for mode in ('raw', 'jpg')}


class VariableSizeDecoder(SimpleRGBImageDecoder):
    """FFCV's documented way to load variable-size images: one buffer of the largest size."""

    shrink = (0, 0)   # pixels taken off the declared (max_h, max_w), for the undersized case

    def declare_state_and_memory(self, previous_state):
        max_h = int(self.metadata['height'].max()) - self.shrink[0]
        max_w = int(self.metadata['width'].max()) - self.shrink[1]
        return (State(jit_mode=True, device=CPU, shape=(max_h, max_w, 3), dtype=UINT8),
                AllocationQuery((max_h, max_w, 3), UINT8))


def _loader(path, decoder=None, batch_size=3, pipelines=None):
    pipelines = pipelines or {'image': [decoder], 'label': [IntDecoder()]}
    return Loader(path, batch_size=batch_size, num_workers=2, order=OrderOption.SEQUENTIAL,
                  drop_last=False, backend='turbojpeg', pipelines=pipelines)


@pytest.mark.parametrize('mode', ['raw', 'jpg'])
def test_variable_size_subclass_writes_each_image_at_the_start_of_its_slot(files, mode):
    path = files[mode]
    reader = Reader(path)
    backend = Registry('ffcvx.decoders').get('turbojpeg')
    originals = _images()
    max_h, max_w = max(h for h, _ in SIZES), max(w for _, w in SIZES)
    seen = 0
    loader = _loader(path, VariableSizeDecoder())
    for images, labels in loader:
        assert images.shape == (len(labels), max_h, max_w, 3) and images.dtype == np.uint8
        for slot, label in zip(images, labels[:, 0]):
            h, w = SIZES[label]
            if mode == 'raw':
                want = originals[label]
            else:      # the same backend's own decode of the stored bytes (BKD-030)
                want = backend.decode_region_py(bytes(reader.read_sample_region(int(label), 'image')))
            assert np.array_equal(slot.reshape(-1)[:h * w * 3], want.reshape(-1)), (mode, label)
            seen += 1
    assert seen == len(SIZES)


@pytest.mark.parametrize('mode', ['raw', 'jpg'])
def test_undersized_declared_buffer_is_a_decode_error(files, mode):
    decoder = VariableSizeDecoder()
    decoder.shrink = (10, 0)
    capacity = (max(h for h, _ in SIZES) - 10) * max(w for _, w in SIZES)
    first = next(k for k, (h, w) in enumerate(SIZES) if h * w > capacity)
    described = status.describe(status.DECODER_BUFFER_TOO_SMALL)
    # One batch, two threads: the lowest failing position is the one named.
    loader = _loader(files[mode], decoder, batch_size=len(SIZES))
    with pytest.raises(DecodeError) as info:
        for _ in loader:
            pass
    message = str(info.value)
    assert message.startswith(f'sample {first} ({mode}, ') and described in message, message
    assert f'its slot holds {capacity * 3}' in message


def test_crop_slot_of_other_channels_is_a_decode_error(files):
    class OneChannelSlot(CenterCropRGBImageDecoder):
        def declare_state_and_memory(self, previous_state):
            return (State(True, CPU, (8, 8, 1), UINT8), AllocationQuery((8, 8, 1), UINT8))
    loader = _loader(files['raw'], OneChannelSlot((8, 8)))
    with pytest.raises(DecodeError, match=r'sample 0 \(raw.*status -104, BKD-074'):
        for _ in loader:
            pass


# -- one status table ------------------------------------------------------------------

def test_status_table_ranges_are_disjoint_and_described():
    for code, row in status.TABLE.items():
        assert row.code == code and status.source_of(code) == row.source
        assert status.describe(code) == f"{row.source}: {row.meaning} (status {code}, {row.clause})"
    assert {status.source_of(c) for c in (-1, -99)} == {status.BACKEND}
    assert {status.source_of(c) for c in (-100, -199)} == {status.DECODER}
    assert {status.source_of(c) for c in (-200, -299)} == {status.RESIZE}
    assert status.source_of(0) is None and status.source_of(-300) is None
    assert status.source_of(4) == status.BACKEND          # BKD-013 forbids it: still the backend's
    assert 'unknown status -7' in status.describe(-7) and status.describe(-7).startswith('decoder backend:')
    # the C ABI values are unchanged, and backend_api's words come from the table
    assert (status.BACKEND_CORRUPT, status.BACKEND_CAPACITY, status.BACKEND_BAD_ARGUMENT) == (-1, -2, -3)
    assert STATUS_MEANINGS == {-1: 'corrupt or unsupported data', -2: 'output buffer too small',
                               -3: 'bad arguments'}
    # the resize kernel's own -2 / -3 land in its range
    assert [status.resize_status(c) for c in (0, -2, -3)] == [0, -202, -203]
    from ffcvx.decoders.kernels import resize_status
    assert [resize_status(c) for c in (0, -2, -3)] == [0, -202, -203]


def test_corrupt_jpeg_error_names_the_backend_range(tmp_path):
    path = write_labelled(tmp_path / 'c.beton', _images(), RGBImageField(write_mode='jpg'))
    ptr = int(Reader(path).metadata['f0'][5]['data_ptr'])
    with open(path, 'r+b') as f:       # destroy sample 5's start-of-image marker
        f.seek(ptr)
        f.write(b'\x00\x00')
    loader = _loader(path, VariableSizeDecoder())
    with pytest.raises(DecodeError) as info:
        for _ in loader:
            pass
    message = str(info.value)
    assert message.startswith('sample 5 (jpg, ') and 'turbojpeg failed: ' in message
    assert status.describe(status.BACKEND_CORRUPT) in message, message


def test_forced_resize_failure_names_the_resize_kernel(files):
    """A crop subclass declaring a larger output than the scratch was declared for: the kernel
    refuses (its -2, recorded as -202) instead of writing past the scratch memory."""
    class Larger(CenterCropRGBImageDecoder):
        def declare_state_and_memory(self, previous_state):
            return (State(True, CPU, (200, 200, 3), UINT8), AllocationQuery((200, 200, 3), UINT8))
    loader = _loader(files['raw'], Larger((8, 8), ratio=1.0))
    with pytest.raises(DecodeError) as info:
        for _ in loader:
            pass
    message = str(info.value)
    assert message.startswith('sample 0 (raw, ')
    assert status.describe(status.RESIZE_SCRATCH_TOO_SMALL) in message, message


# -- re-planning -------------------------------------------------------------------------

def test_declarations_and_code_can_be_repeated(files):
    flip = RandomHorizontalFlip(0.5)
    loader = _loader(files['jpg'], pipelines={
        'image': [CenterCropRGBImageDecoder((16, 16)), flip], 'label': [IntDecoder()]})
    (step,) = loader.graph.pipelines[0].steps
    op = step.operation
    assert op.absorbed == [flip] and op.flip_prob == 0.5
    first = (op.declare_shared_memory(INITIAL_STATE), op.declare_state_and_memory(INITIAL_STATE))
    for _ in range(3):
        assert (op.declare_shared_memory(INITIAL_STATE), op.declare_state_and_memory(INITIAL_STATE)) == first
        op.generate_code()
    assert op.absorbed == [flip] and op.absorb(flip)     # offered again: still the one flip
    assert not op.absorb(RandomHorizontalFlip(0.3)) and op.absorbed == [flip]


def test_replanned_output_size_and_flip_take_effect(files):
    """Progressive resizing (FFCV's ImageNet recipe): output_size and the flip's probability
    changed between epochs are used in the next epoch, which the Loader plans again."""
    flip = RandomHorizontalFlip(0.0)
    loader = _loader(files['raw'], batch_size=4, pipelines={
        'image': [CenterCropRGBImageDecoder((16, 16), ratio=1.0), flip], 'label': [IntDecoder()]})
    before = np.concatenate([images.copy() for images, _ in loader])
    assert before.shape == (len(SIZES), 16, 16, 3)
    op = loader.graph.pipelines[0].steps[0].operation
    op.output_size = (24, 20)
    flip.flip_prob = 1.0
    after = np.concatenate([images.copy() for images, _ in loader])
    reference = _loader(files['raw'], batch_size=4, pipelines={
        'image': [CenterCropRGBImageDecoder((24, 20), ratio=1.0)], 'label': [IntDecoder()]})
    plain = np.concatenate([images.copy() for images, _ in reference])
    assert after.shape == (len(SIZES), 24, 20, 3)
    assert np.array_equal(after, plain[:, :, ::-1])        # the mirrored resize, exactly


# -- layering ----------------------------------------------------------------------------

def _imported_modules(path, package):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - node.level + 1]
                name = '.'.join(base + ([node.module] if node.module else []))
            else:
                name = node.module
            yield name
            yield from (f'{name}.{alias.name}' for alias in node.names)


def test_transforms_import_only_the_kernels_of_the_decode_layer():
    decode_layer = []
    for path in sorted((REPO / 'ffcvx' / 'transforms').glob('*.py')):
        for name in _imported_modules(path, 'ffcvx.transforms'):
            if name.startswith(('ffcvx.decoders', 'ffcvx.fields')) and 'decoder' in name.lower():
                decode_layer.append((path.name, name))
    modules = {name for _, name in decode_layer}
    assert {'ffcvx.decoders.kernels'} <= modules, decode_layer    # the resize transform uses it
    # FFCV-SSL's crop decoders live in ffcv.transforms.resized_crop: that module
    # subclasses the decoders, as FFCV-SSL's does.
    stray = [(f, n) for f, n in decode_layer if f != 'resized_crop.py'
             and n != 'ffcvx.decoders.kernels' and not n.startswith('ffcvx.decoders.kernels.')]
    assert not stray, stray


def test_decode_layer_modules_are_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (REPO / 'ffcvx' / 'decoders').glob('*.py')}
    assert sizes and all(n <= 400 for n in sizes.values()), sizes


def test_fields_still_name_their_decoders():
    import ffcvx.decoders as layer
    from ffcvx.fields import BytesField, FloatField, IntField, NDArrayField
    assert RGBImageField().get_decoder_class() is layer.SimpleRGBImageDecoder
    assert IntField().get_decoder_class() is layer.IntDecoder
    assert FloatField().get_decoder_class() is layer.FloatDecoder
    assert BytesField().get_decoder_class() is layer.BytesDecoder
    assert NDArrayField(np.dtype('<f4'), (2,)).get_decoder_class() is layer.NDArrayDecoder
