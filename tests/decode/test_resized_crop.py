"""FFCV-SSL's crop decoders (``ffcvx.transforms.resized_crop``).

* ``RandomResizedCrop`` takes FFCV 1.0's and FFCV-SSL's signatures; its boxes
  are torchvision's (not all square, never below ``scale[0]`` of the area up
  to rounding), distributed as torchvision's ``get_params``; ``second_seed``
  draws the other op's box bit-identically and avoids it when room allows.
* ``LabelRandomResizedCrop`` returns exactly the image op's box: cropping the
  full decode with it and resizing gives the image op's output up to the
  region decode's JPEG noise (measured and bounded below); as a transform
  after a decoder the same box gives the same pixels exactly.
* ``CornerCrop`` boxes are torchvision's ``five_crop`` corners;
  ``PadRGBImageDecoder`` puts each image top-left, zeros elsewhere.
* Loader end to end (FFCV-SSL's example): reproducible for 1 vs 2 threads and
  batch sizes 3 vs 7, new crops each epoch.
"""
import io
from math import log

import numpy as np
import pytest
import torch
from PIL import Image

from ffcvx._ext.resize import resize_rgb
from ffcvx.fields import RGBImageField
from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline.seeds import seed_sample
from ffcvx.reader import Reader
from ffcvx.transforms import (CenterCrop, CornerCrop, LabelRandomResizedCrop, PadRGBImageDecoder,
                              RandomResizedCrop, ToTensor)
from ffcvx.transforms._crop_boxes import CORNERS, corner_sampler, get_disjoint_crop, random_box_drawer

from _common import write_labelled

SIZES = [(48, 64), (96, 72), (60, 60), (80, 52), (56, 90), (72, 96), (64, 48), (90, 70)]
OUT = (32, 32)
SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


@pytest.fixture(scope='module')
def photos(shared_dir):
    paths = sorted((shared_dir / 'data' / 'photos').rglob('*.jpg'))[:len(SIZES)]
    return [np.asarray(Image.open(p).convert('RGB').resize((w, h), Image.BILINEAR))
            for p, (h, w) in zip(paths, SIZES)]


@pytest.fixture(scope='module')
def beton(photos, tmp_path_factory):
    return write_labelled(tmp_path_factory.mktemp('ssl') / 'photos.beton', photos,
                          RGBImageField(write_mode='jpg', jpeg_quality=90))


@pytest.fixture(scope='module')
def stored(beton):
    """The stored JPEGs decoded whole by PIL, per sample."""
    reader = Reader(beton)
    return [np.asarray(Image.open(io.BytesIO(bytes(reader.read_sample_region(k, 'image')))).convert('RGB'))
            for k in range(reader.num_samples)]


def _by_sample(loader, epochs=1):
    """Per epoch: {output name: ndarray indexed by sample}."""
    names = loader.graph.output_names
    result = []
    for _ in range(epochs):
        got = {}
        for batch in loader:
            batch = dict(zip(names, [b.numpy() if isinstance(b, torch.Tensor) else b for b in batch]))
            labels = batch['label'][:, 0]
            for name, value in batch.items():
                if name not in got:
                    got[name] = np.zeros((len(SIZES),) + value.shape[1:], value.dtype)
                got[name][labels] = value
        result.append(got)
    return result


def _ssl_loader(path, **kw):
    # FFCV-SSL's example pattern: views and parameters from one stored field.
    pipelines = {'image': [RandomResizedCrop(output_size=OUT, seed=5), ToTensor()],
                 'image2': [RandomResizedCrop(output_size=OUT, seed=10, second_seed=5), ToTensor()],
                 'crop': [LabelRandomResizedCrop(OUT, 5, SCALE, RATIO), ToTensor()],
                 'crop2': [LabelRandomResizedCrop(OUT, 10, SCALE, RATIO, second_seed=5), ToTensor()],
                 'full': [PadRGBImageDecoder(), ToTensor()],
                 'label': [IntDecoder(), ToTensor()]}
    mapper = {'image2': 'image', 'crop': 'image', 'crop2': 'image', 'full': 'image'}
    return Loader(path, order=OrderOption.RANDOM, drop_last=False, pipelines=pipelines,
                  custom_field_mapper=mapper, **kw)


def _resized(image, box, size=OUT):
    i, j, h, w = (int(v) for v in box)
    out = np.empty((*size, 3), np.uint8)
    resize_rgb(np.ascontiguousarray(image[i:i + h, j:j + w]), out)
    return out


def _room(height, width, first):
    # Whether a free band beside ``first`` holds a box of scale[0] of the area in the ratio range.
    i1, j1, h1, w1 = (int(v) for v in first)
    bands = [(i1, width), (height - i1 - h1, width), (height, j1), (height, width - j1 - w1)]
    return any(min(bh * bh * RATIO[1], bw * bw / RATIO[0], bh * bw) >= SCALE[0] * height * width
               for bh, bw in bands if bh > 0 and bw > 0)


def _overlap(a, b):
    (i1, j1, h1, w1), (i2, j2, h2, w2) = a, b
    return i1 < i2 + h2 and i2 < i1 + h1 and j1 < j2 + w2 and j2 < j1 + w1


# -- signatures -------------------------------------------------------------------------------

def test_ffcv_positional_form_with_an_integer_scale():
    op = RandomResizedCrop((1, 1), (3 / 4, 4 / 3), 24)          # FFCV 1.0: (scale, ratio, size)
    assert op.output_size == (24, 24) and op.scale == (1.0, 1.0)


def test_both_signatures_and_ambiguity():
    ffcv1 = RandomResizedCrop((0.5, 1), (1, 1), 4)
    assert ffcv1.output_size == (4, 4) and ffcv1.scale == (0.5, 1.0)
    assert RandomResizedCrop(scale=(1, 1), ratio=(1, 2), size=3).output_size == (3, 3)
    ssl = RandomResizedCrop((32, 24), seed=5)
    assert (ssl.output_size, ssl.scale, ssl.ratio, ssl.seed) == ((32, 24), SCALE, RATIO, 5)
    assert RandomResizedCrop(output_size=(8, 8), scale=(0.2, 1)).scale == (0.2, 1.0)
    assert RandomResizedCrop((8, 8), (0.3, 0.9), (1, 1)).ratio == (1.0, 1.0)
    assert ssl.seed_values == (5,)
    assert RandomResizedCrop((8, 8), seed=1, second_seed=2).seed_values == (1, 2)
    for args, kw in [(((1, 1),), {}), (((0.5, 2),), {}), (('x',), {}), ((), {}),
                     (((8, 8),), {'size': 3}), (((0.5, 1), (1, 1)), {})]:
        with pytest.raises(TypeError, match=r"RandomResizedCrop\(scale, ratio, size\)"):
            RandomResizedCrop(*args, **kw)
    for make in [lambda: RandomResizedCrop((0.5, 0.1), (1, 1), 4),
                 lambda: RandomResizedCrop((8, 8), seed=1.5),
                 lambda: RandomResizedCrop((8, 8), second_seed=True),
                 lambda: RandomResizedCrop(output_size=(8, 0)),
                 lambda: LabelRandomResizedCrop(OUT, None, SCALE, RATIO),
                 lambda: CornerCrop(OUT, 0.5, corner='middle'), lambda: CornerCrop(OUT, 1.5),
                 lambda: CenterCrop((0, 4), 0.5), lambda: CenterCrop(OUT, 0)]:
        with pytest.raises(ValueError):
            make()


# -- the box sampler --------------------------------------------------------------------------

def _draws(height, width, n, seed=7, scale=SCALE, ratio=RATIO):
    draw = random_box_drawer(scale, ratio, False)
    return np.array([draw(np.uint64(seed), k, height, width) for k in range(n)])


def test_boxes_are_torchvisions_not_square_and_never_below_scale():
    from torchvision.transforms import RandomResizedCrop as TV
    height, width, n = 96, 72, 2000
    boxes = _draws(height, width, n)
    i, j, h, w = boxes.T
    assert (i >= 0).all() and (j >= 0).all() and (i + h <= height).all() and (j + w <= width).all()
    assert np.mean(h != w) > 0.8                         # FFCV-SSL's were all square
    # Never below scale[0] of the area, up to rounding of each side (torchvision's too);
    # here torchvision's fallback is the whole image (the aspect is in range).
    assert ((h + 0.5) * (w + 0.5) >= SCALE[0] * height * width).all()
    torch.manual_seed(0)
    tv = np.array([TV.get_params(torch.empty(3, height, width), list(SCALE), list(RATIO))
                   for _ in range(n)])
    for ours, theirs in [(h * w / (height * width), tv[:, 2] * tv[:, 3] / (height * width)),
                         (np.log(w / h), np.log(tv[:, 3] / tv[:, 2]))]:
        qs = np.linspace(0.05, 0.95, 19)
        assert np.abs(np.quantile(ours, qs) - np.quantile(theirs, qs)).max() < 0.04
    # Positions uniform: the box's centre spreads over the image.
    assert abs(np.mean(i + h / 2) - height / 2) < 2 and abs(np.mean(j + w / 2) - width / 2) < 2


def test_second_seed_draws_the_other_box_then_avoids_it():
    height, width, n = 64, 96, 600
    plain = random_box_drawer(SCALE, RATIO, False)
    coupled = random_box_drawer(SCALE, RATIO, True)
    s_own, s_other = np.uint64(11), np.uint64(5)
    disjoint = room = 0
    for k in range(n):
        first = plain(s_other, k, height, width)
        own = coupled((s_own, s_other), k, height, width)
        # The second box is get_disjoint_crop after the first, drawn from the own stream.
        seed_sample(s_own, k)
        assert own == get_disjoint_crop(height, width, *first, SCALE[0], SCALE[1],
                                        log(RATIO[0]), log(RATIO[1]))
        fits = _room(height, width, first)
        room += fits
        if fits:
            assert not _overlap(first, own), (k, first, own)
        disjoint += not _overlap(first, own)
    assert room > n // 2 and disjoint >= room


# -- the Loader, end to end -------------------------------------------------------------------

@pytest.fixture(scope='module')
def ssl_run(beton):
    """Two epochs of FFCV-SSL's example pipelines, 1 thread, batches of 3."""
    return _by_sample(_ssl_loader(beton, batch_size=3, num_workers=1, seed=1), epochs=2)


def test_coupled_views_share_one_decode(beton):
    from ffcvx.decoders.views import ViewsDecoder
    step = _ssl_loader(beton, batch_size=4).graph.pipelines[0].steps[0]
    assert isinstance(step.operation, ViewsDecoder) and len(step.seeds) == 3   # 1 + 2 streams


def test_label_box_reproduces_the_image_op_and_pad_holds_the_full_image(ssl_run, stored):
    got = ssl_run[0]
    assert got['crop'].dtype == np.int32 and got['crop'].shape == (len(SIZES), 6)
    assert got['full'].shape == (len(SIZES), 96, 96, 3)
    diffs, rooms = [], 0
    for k, (height, width) in enumerate(SIZES):
        assert tuple(got['crop'][k, :2]) == (width, height)
        full = got['full'][k]
        assert (full[height:] == 0).all() and (full[:, width:] == 0).all()
        # ffcvx's turbojpeg decode (fast IDCT) against PIL's of the stored JPEG (BKD-023).
        decode_diff = np.abs(full[:height, :width].astype(int) - stored[k])
        assert decode_diff.mean() < 1.5 and decode_diff.max() <= 16
        for view, label in (('image', 'crop'), ('image2', 'crop2')):
            box = got[label][k, 2:]
            reference = _resized(full[:height, :width], box)
            diffs.append(np.abs(got[view][k].astype(int) - reference))
        if _room(height, width, got['crop'][k, 2:]):
            rooms += 1
            assert not _overlap(got['crop'][k, 2:], got['crop2'][k, 2:])
    # At 32x32 these boxes decode at full DCT scale: the full decode's pixels
    # (measured max 0). Scaled region decodes are measured in the transform test.
    diffs = np.stack(diffs)
    assert diffs.max() <= 2, diffs.max()
    boxes = got['crop'][:, 2:]
    assert (boxes[:, 2] != boxes[:, 3]).any() and rooms >= 2
    print(f"label box vs image op: mean |diff| {diffs.mean():.3f}, max {diffs.max()}")


def test_reproducible_across_threads_batch_sizes_and_new_each_epoch(beton, ssl_run):
    a = ssl_run
    b = _by_sample(_ssl_loader(beton, batch_size=7, num_workers=2, seed=99), epochs=2)
    for name in ('image', 'image2', 'crop', 'crop2', 'full'):
        for epoch in (0, 1):
            assert np.array_equal(a[epoch][name], b[epoch][name]), (name, epoch)
    assert not np.array_equal(a[0]['crop'], a[1]['crop'])
    assert not np.array_equal(a[0]['image'], a[1]['image'])


def test_as_a_transform_it_crops_decoded_pixels_with_the_same_box(tmp_path, photos):
    # One size, so SimpleRGBImageDecoder can decode it whole first (FFCV 1.0's way).
    same = [p[:48, :48] for p in photos]
    path = write_labelled(tmp_path / 'same.beton', same, RGBImageField(write_mode='jpg'))
    pipelines = {'image': [SimpleRGBImageDecoder()],
                 'view': [SimpleRGBImageDecoder(), RandomResizedCrop(output_size=(20, 16), seed=5,
                                                                      second_seed=3)],
                 'decoded': [RandomResizedCrop(output_size=(20, 16), seed=5, second_seed=3)],
                 'crop': [LabelRandomResizedCrop((20, 16), 5, SCALE, RATIO, second_seed=3)],
                 'label': [IntDecoder()]}
    loader = Loader(path, batch_size=4, drop_last=False, pipelines=pipelines, custom_field_mapper={
        'view': 'image', 'decoded': 'image', 'crop': 'image'})
    got, = _by_sample(loader)
    assert got['view'].shape == (len(SIZES), 20, 16, 3)
    for k in range(len(SIZES)):
        assert np.array_equal(got['view'][k], _resized(got['image'][k], got['crop'][k, 2:], (20, 16)))
    # The decoder form of the same op: same boxes, decoded at DCT scale 1/2 where the
    # box is at least twice the output (measured mean 0.21, max 9): the DCT's filtering.
    diff = np.abs(got['view'].astype(int) - got['decoded'])
    assert diff.mean() < 1.0 and diff.max() <= 40
    print(f"transform vs decoder form: mean |diff| {diff.mean():.3f}, max {diff.max()}")


def test_corner_boxes_are_torchvisions_five_crop_corners(stored):
    from torchvision.transforms.v2 import functional as F
    for k, (height, width) in enumerate(SIZES):
        side = int(0.75 * min(height, width))
        corners = F.five_crop(torch.from_numpy(stored[k].copy()).permute(2, 0, 1), [side, side])[:4]
        for corner, expected in zip(CORNERS, corners):
            i, j, h, w = corner_sampler(0.75, corner)(height, width)
            assert (h, w) == (side, side)
            assert np.array_equal(expected.permute(1, 2, 0).numpy(), stored[k][i:i + h, j:j + w])


def test_corner_and_center_crop_decoders(beton):
    pipelines = {'tr': [CornerCrop(OUT, 0.75, corner='top_right')],
                 'bl': [CornerCrop(OUT, 0.5, corner='bottom_left')],
                 'center': [CenterCrop(OUT, 0.75)], 'full': [PadRGBImageDecoder()],
                 'label': [IntDecoder()], 'image': None}
    loader = Loader(beton, batch_size=4, drop_last=False, pipelines=pipelines,
                    custom_field_mapper={k: 'image' for k in ('tr', 'bl', 'center', 'full')})
    got, = _by_sample(loader)
    diffs = []
    for k, (height, width) in enumerate(SIZES):
        full = got['full'][k, :height, :width]
        for name, ratio, corner in (('tr', 0.75, 'top_right'), ('bl', 0.5, 'bottom_left')):
            box = corner_sampler(ratio, corner)(height, width)
            diffs.append(np.abs(got[name][k].astype(int) - _resized(full, box)))
        side = int(0.75 * min(height, width))
        centre = ((height - side) // 2, (width - side) // 2, side, side)
        diffs.append(np.abs(got['center'][k].astype(int) - _resized(full, centre)))
    diffs = np.stack(diffs)
    assert diffs.mean() < 2.0 and diffs.max() <= 40
    print(f"corner/centre crops vs full decode + resize: mean |diff| {diffs.mean():.3f}, "
          f"max {diffs.max()}")


def test_pad_decoder_with_pillow_is_the_pil_decode(beton, stored):
    loader = Loader(beton, batch_size=3, drop_last=False, backend='pillow',
                    pipelines={'image': [PadRGBImageDecoder()], 'label': [IntDecoder()]})
    got, = _by_sample(loader)
    for k, (height, width) in enumerate(SIZES):
        assert np.array_equal(got['image'][k, :height, :width], stored[k])
        assert not got['image'][k, height:].any() and not got['image'][k, :, width:].any()


def test_batch_backend_draws_the_same_coupled_boxes(beton):
    """The per-batch engine (nvjpeg's, run on the CPU here) asks for the boxes the label op reports."""
    from ffcvx.registry import Registry
    from ffcvx_nvjpeg import NvJPEGBackend
    calls = []

    class Recording(NvJPEGBackend):
        def decode_batch(self, sources, crops=None, output_size=None, flips=None, device=None):
            calls.append(np.array(crops))
            return super().decode_batch(sources, crops, output_size, flips, device)

    def pil_decode(data, device):
        return [torch.from_numpy(np.asarray(Image.open(io.BytesIO(t.numpy().tobytes())).convert('RGB'))
                                 .copy()).permute(2, 0, 1) for t in data]

    registry = Registry('ffcvx.decoders', extra={'nvjpeg': Recording(decode_fn=pil_decode, device='cpu')})
    loader = Loader(beton, batch_size=len(SIZES), order=OrderOption.SEQUENTIAL, decoder_registry=registry,
                    backend='nvjpeg', custom_field_mapper={'crop': 'image'}, pipelines={
                        'image': [RandomResizedCrop(output_size=OUT, seed=10, second_seed=5)],
                        'crop': [LabelRandomResizedCrop(OUT, 10, SCALE, RATIO, second_seed=5)],
                        'label': [IntDecoder()]})
    batch, = list(loader)
    got = dict(zip(loader.graph.output_names, batch))
    assert tuple(got['image'].shape) == (len(SIZES), *OUT, 3)
    assert np.array_equal(calls[0], got['crop'][:, 2:].astype(np.int64))


def test_uncoupled_views_share_one_decode_and_keep_their_boxes(beton):
    """Two FFCV-SSL RandomResizedCrop views of one field: one decode step (ViewsDecoder), same boxes."""
    from ffcvx.decoders.views import ViewsDecoder
    pipelines = {'image': [RandomResizedCrop(output_size=OUT, seed=5)],
                 'image2': [RandomResizedCrop(output_size=(24, 24), seed=10)],
                 'crop': [LabelRandomResizedCrop(OUT, 5, SCALE, RATIO)],
                 'crop2': [LabelRandomResizedCrop((24, 24), 10, SCALE, RATIO)],
                 'full': [PadRGBImageDecoder()], 'label': [IntDecoder()]}
    loader = Loader(beton, batch_size=4, drop_last=False, pipelines=pipelines,
                    custom_field_mapper={k: 'image' for k in ('image2', 'crop', 'crop2', 'full')})
    assert isinstance(loader.graph.pipelines[0].steps[0].operation, ViewsDecoder)
    got, = _by_sample(loader)
    diffs = []
    for k, (height, width) in enumerate(SIZES):
        full = got['full'][k, :height, :width]
        diffs.append(np.abs(got['image'][k].astype(int) - _resized(full, got['crop'][k, 2:])).ravel())
        diffs.append(np.abs(got['image2'][k].astype(int)
                            - _resized(full, got['crop2'][k, 2:], (24, 24))).ravel())
    diffs = np.concatenate(diffs)
    # The union of the boxes is decoded at the finest scale either view needs.
    assert diffs.mean() < 1.0, (diffs.mean(), diffs.max())
    print(f"shared views vs label boxes: mean |diff| {diffs.mean():.3f}, max {diffs.max()}")


def test_a_seeded_crop_decoder_leaves_an_unseeded_flip_to_the_loader_seed(beton):
    """A fused flip draws from the decoder's stream: with the decoder's own seed it would ignore the Loader's."""
    from ffcvx.transforms import RandomHorizontalFlip
    assert not RandomResizedCrop(output_size=OUT, seed=0).absorb(RandomHorizontalFlip())
    assert RandomResizedCrop(output_size=OUT).absorb(RandomHorizontalFlip())
    runs = []
    for loader_seed in (1, 2):
        loader = Loader(beton, batch_size=4, order=OrderOption.SEQUENTIAL, seed=loader_seed,
                        drop_last=False, pipelines={'image': [RandomResizedCrop(output_size=OUT, seed=0),
                                                              RandomHorizontalFlip()],
                                                    'label': [IntDecoder()]})
        runs.append(np.concatenate([b[0] for b in loader]))
    flipped = [np.array_equal(a, b[:, ::-1]) for a, b in zip(*runs)]
    same = [np.array_equal(a, b) for a, b in zip(*runs)]
    assert all(f or s for f, s in zip(flipped, same))          # the same crops
    assert any(flipped)                                        # other flips under another Loader seed
