"""``ffcvx show`` and ``ffcvx.show``: the grid shows each sample's own image over its own label.

The synthetic file fills every image of label k with colour k, so a cell whose
pixels do not have the colour of the label printed under it is a wrong grid.
"""
import re
import sys

import numpy as np
import pytest
from PIL import Image

import ffcvx
from ffcvx.cli import build_parser, main
from ffcvx.cli.loader_options import recipe_from_args

COLOURS = np.array([(220, 40, 40), (40, 200, 60), (50, 70, 230), (240, 220, 30), (200, 60, 220)],
                   np.uint8)
N = 40
SIZE = (48, 64)  # (H, W)


def label_of(i):
    return (i * 3 + i // 5) % len(COLOURS)   # every label 8 times, not in index order


def coloured_sample(i):
    return np.full(SIZE + (3,), COLOURS[label_of(i)], np.uint8), label_of(i)


@pytest.fixture(scope='module')
def colour_file(tmp_path_factory):
    from _common import Computed
    from ffcvx.fields import IntField, RGBImageField
    from ffcvx.writer import DatasetWriter
    path = str(tmp_path_factory.mktemp('show') / 'colours.beton')
    DatasetWriter(path, {'image': RGBImageField(write_mode='raw'), 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(Computed(N, coloured_sample))
    return path


def run_show(capsys, *argv):
    """``ffcvx show *argv``: (exit status, stdout, stderr)."""
    status = main(['show', *argv])
    out, err = capsys.readouterr()
    return status, out, err


def api_grid(argv):
    """The grid and layout of the Loader that ``ffcvx show argv`` makes (same options, same seed)."""
    args = build_parser().parse_args(['show', *argv])
    loader = recipe_from_args(args).loader(drop_last=False)
    try:
        return ffcvx.show(loader, n=args.n, columns=args.columns, tile=args.tile,
                          return_layout=True)
    finally:
        loader.close()


def written_size(out):
    match = re.search(r'(\d+)x(\d+) px', out)
    assert match, out
    return int(match.group(1)), int(match.group(2))


def check_cells(pixels, layout, tolerance=0):
    """Each view's pixels have the colour of the sample's label in the file; captions say it."""
    for cell in layout.cells:
        label = label_of(cell.index)
        assert cell.label == label
        assert cell.caption == f"#{cell.index}  label {label}"
        for left, top, right, bottom in cell.view_boxes:
            region = pixels[top:bottom, left:right].reshape(-1, 3).astype(int)
            assert region.size
            assert np.abs(region - COLOURS[label]).max() <= tolerance, (cell, region[:3])


def test_cli_grid_puts_each_colour_over_its_label(colour_file, tmp_path, capsys):
    out_png = tmp_path / 'grid.png'
    argv = [colour_file, '-n', '12', '-o', str(out_png), '--decoder', 'simple',
            '--batch-size', '5', '--workers', '1', '--seed', '3']
    status, out, err = run_show(capsys, *argv)
    assert status == 0, err
    grid = Image.open(out_png)
    assert grid.size == written_size(out)
    pixels = np.asarray(grid.convert('RGB'))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) >= len(COLOURS) + 2  # not blank
    image, layout = api_grid(argv)
    assert layout.size == grid.size and layout.image_outputs == ('image',)
    assert np.array_equal(np.asarray(image), pixels)
    assert len(layout.cells) == 12
    indices = [c.index for c in layout.cells]
    assert len(set(indices)) == 12 and indices != list(range(12))  # random order, seeded
    check_cells(pixels, layout)
    # the tiles are 96 px (64x48 enlarged, aspect kept), 12 cells in rows of about sqrt(12)
    left, top, right, bottom = layout.cells[0].view_boxes[0]
    assert (right - left, bottom - top) == (96, 72)
    assert layout.columns == 3


def test_two_views_side_by_side(colour_file, tmp_path, capsys):
    argv = [colour_file, '-n', '6', '-o', str(tmp_path / 'views.png'), '--decoder', 'center224',
            '--views', '2', '--tile', '100', '--workers', '1']
    status, out, err = run_show(capsys, *argv)
    assert status == 0, err
    assert Image.open(tmp_path / 'views.png').size == written_size(out)
    image, layout = api_grid(argv)
    assert layout.image_outputs == ('image', 'image_view1')
    for cell in layout.cells:
        (l0, t0, r0, b0), (l1, t1, r1, b1) = cell.view_boxes
        assert (t0, b0) == (t1, b1) and l1 > r0 and (r0 - l0, b0 - t0) == (100, 100)
    check_cells(np.asarray(image), layout, tolerance=2)


NORMALISED = '''
import numpy as np
from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.transforms import NormalizeImage, ToTensor, ToTorchImage

def pipelines():
    mean, std = np.array([0.485, 0.456, 0.406]) * 255, np.array([0.229, 0.224, 0.225]) * 255
    return {'image': [SimpleRGBImageDecoder(), NormalizeImage(mean, std, np.float32),
                      ToTensor(), ToTorchImage()],
            'label': [IntDecoder()]}

def broken():
    raise RuntimeError("no pipelines today")
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / 'show_user_pipes.py').write_text(NORMALISED)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield 'show_user_pipes'
    sys.modules.pop('show_user_pipes', None)


def test_normalised_tensors_are_mapped_back(colour_file, user_module, tmp_path, capsys):
    argv = [colour_file, '-n', '5', '-o', str(tmp_path / 'norm.png'), '--workers', '1',
            '--pipelines', f'{user_module}:pipelines', '--order', 'sequential']
    status, out, err = run_show(capsys, *argv)
    assert status == 0, err
    args = build_parser().parse_args(['show', *argv])
    loader = recipe_from_args(args).loader(drop_last=False)
    images = next(iter(loader))[0]
    assert images.dtype.is_floating_point and tuple(images.shape[1:]) == (3, 48, 64)
    assert images.min() < 0  # really normalised, not pixels
    image, layout = ffcvx.show(loader, n=5, return_layout=True)
    loader.close()
    assert [c.index for c in layout.cells] == list(range(5))
    check_cells(np.asarray(image), layout, tolerance=1)
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'norm.png').convert('RGB')),
                          np.asarray(image))


def test_show_returns_a_pil_image(colour_file):
    from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
    loader = ffcvx.Loader(colour_file, batch_size=3, num_workers=1,
                          pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]})
    image = ffcvx.show(loader, n=4)
    assert isinstance(image, Image.Image) and image.mode == 'RGB'
    assert image.width == 4 + 2 * (96 + 4) and image.height > image.width  # 2 rows of 2, captions
    with pytest.raises(ValueError, match='n must be at least 1'):
        ffcvx.show(loader, n=0)
    loader.close()


@pytest.mark.parametrize('case, words', [
    ('not_beton', 'not_a.beton'),
    ('preset', "unknown decoder preset 'huge'"),
    ('no_module', "cannot import 'no_such_module_xyz'"),
    ('raises', 'no pipelines today'),
    ('field', "no field 'pixels'"),
    ('zero', '-n must be at least 1, got 0'),
    ('folder', 'no folder'),
])
def test_bad_input_is_one_line_and_status_2(case, words, colour_file, user_module, tmp_path,
                                            capsys):
    out_png = str(tmp_path / 'g.png')
    not_beton = tmp_path / 'not_a.beton'
    not_beton.write_bytes(b'this is not a beton file at all' * 20)
    argv = {'not_beton': [str(not_beton), '-o', out_png],
            'preset': [colour_file, '-o', out_png, '--decoder', 'huge'],
            'no_module': [colour_file, '-o', out_png, '--pipelines', 'no_such_module_xyz:f'],
            'raises': [colour_file, '-o', out_png, '--pipelines', f'{user_module}:broken'],
            'field': [colour_file, '-o', out_png, '--image-field', 'pixels'],
            'zero': [colour_file, '-o', out_png, '-n', '0'],
            'folder': [colour_file, '-o', str(tmp_path / 'missing' / 'g.png')]}[case]
    status, out, err = run_show(capsys, *argv)
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('ffcvx: error: ') and words in lines[0], err
    assert not (tmp_path / 'g.png').exists()


def test_photos_grid(shared_dir, tmp_path, capsys):
    photos = shared_dir / 'data' / 'photos'
    beton = str(tmp_path / 'photos.beton')
    assert main(['convert', 'imagefolder', str(photos), beton, '--write-mode', 'jpg',
                 '--max-resolution', '128']) == 0
    capsys.readouterr()
    out_png = tmp_path / 'photos.png'
    argv = [beton, '-n', '8', '-o', str(out_png), '--decoder', 'center224', '--workers', '1',
            '--class-names', str(photos)]
    status, out, err = run_show(capsys, *argv)
    assert status == 0, err
    grid = Image.open(out_png)
    assert grid.size == written_size(out)
    pixels = np.asarray(grid.convert('RGB'))
    assert pixels.std() > 20 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1000
    args = build_parser().parse_args(['show', *argv])
    loader = recipe_from_args(args).loader(drop_last=False)
    classes = sorted(p.name for p in photos.iterdir() if p.is_dir())
    image, layout = ffcvx.show(loader, n=8, class_names=classes, return_layout=True)
    loader.close()
    assert np.array_equal(np.asarray(image), pixels)
    from ffcvx.reader import Reader
    labels = Reader(beton).metadata['f1']
    for cell in layout.cells:
        assert cell.label == labels[cell.index]
        assert cell.caption.endswith(f"label {cell.label} {classes[cell.label]}")


class ListLoader:
    """Batches from a list, and no order or pipelines: what ``show`` needs at least."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def test_gray_and_float_images_without_a_loader():
    import torch
    gray = np.stack([np.full((20, 30), 10 * k + 50, np.uint8) for k in range(3)])  # (B, H, W)
    unit = torch.stack([torch.full((1, 30, 20), k / 4) for k in range(3)])  # (B, 1, H, W), 0..1
    odd = torch.stack([torch.full((30, 20, 3), -5.0 + k) for k in range(3)])  # (B,H,W,C) off-range
    odd[:, :, :10] = 7.0
    labels = np.array([[4], [5], [6]], np.int64)
    image, layout = ffcvx.show(ListLoader([(gray, unit, odd, labels)]), n=3, return_layout=True)
    assert layout.image_outputs == ('output0', 'output1', 'output2')
    assert layout.label_output == 'output3' and layout.tile == 96
    pixels = np.asarray(image).astype(int)
    for k, cell in enumerate(layout.cells):
        assert (cell.index, cell.label) == (k, 4 + k)
        values = [pixels[t:b, l:r].reshape(-1, 3) for l, t, r, b in cell.view_boxes]
        assert (values[0] == 10 * k + 50).all()  # gray stays gray, same level
        assert (values[1] == round(255 * k / 4)).all()  # 0..1 floats are fractions of white
        assert {tuple(v) for v in values[2]} == {(0, 0, 0), (255, 255, 255)}  # min..max rescaled
        (l0, t0, r0, b0), (l1, _, r1, _) = cell.view_boxes[:2]
        assert (r0 - l0, b0 - t0) == (96, 64) and (r1 - l1) == 64  # aspect kept both ways
