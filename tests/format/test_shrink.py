"""The ``max_resolution`` shrink (``ffcvx.fields.rgb_image.shrink_to``) against FFCV 1.0's.

FFCV 1.0's writer shrinks an image whose longest side exceeds
``max_resolution`` to ``(ratio * [W, H]).astype(int)``, ``ratio =
max_resolution / max(W, H)``, with ``cv2.resize(INTER_AREA)``. On every
shared photo and several sizes this module checks ffcvx's shrink

1. against a reference of that rule written here (size from the formula,
   then ``cv2.resize``), RGB and one-channel;
2. against area averages computed with numpy alone (no OpenCV): means of
   ``k x k`` blocks for integer factors, and coverage-weighted means (each
   input pixel weighted by the fraction of the output footprint it covers)
   for any factor;
3. through ``DatasetWriter`` and ``Reader``: raw samples are the shrink
   exactly, JPEG samples (quality 90) differ from the area average by the
   JPEG noise alone, and by less than the Pillow ``BOX`` shrink ffcvx used
   before;
4. against the FFCV 1.0.2 golden files: encoding ffcvx's shrink as FFCV
   does (``cv2.imencode``, quality 90) gives FFCV's stored JPEG bytes.

The photos and golden files live in the shared folder beside the
repository; without it these tests fail (they do not skip).
"""
import hashlib
import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from _common import GOLDEN_DIR, GOLDEN_MISSING
from ffcvx.fields import GrayscaleImageField, RGBImageField
from ffcvx.fields.rgb_image import encode_jpeg, shrink_to
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

#: Longest sides that force a shrink of every photo (their sides are 172 to 640 px).
MAX_RESOLUTIONS = [256, 160, 97]


def shared_folder():
    """The shared folder; fails the test (never skips) when it is missing."""
    if GOLDEN_DIR is None:
        pytest.fail(GOLDEN_MISSING + ' (needed for the photos and golden files)')
    return GOLDEN_DIR.parents[1]


@pytest.fixture(scope='module')
def photos():
    """``[(relative path, ndarray uint8 (H, W, 3))]`` of every shared photo."""
    root = shared_folder() / 'data' / 'photos'
    paths = sorted(root.glob('*/*.jpg'))
    if not paths:
        pytest.fail(f'no photos in {root}')
    return [(str(p.relative_to(root)), np.asarray(Image.open(p).convert('RGB'))) for p in paths]


def ffcv_size(height, width, max_resolution):
    """Stored (H', W') by FFCV 1.0's rule, written out independently of ffcvx."""
    original = np.array([width, height])
    ratio = max_resolution / original.max()
    if ratio >= 1:
        return height, width
    new_w, new_h = (ratio * original).astype(int)
    return int(new_h), int(new_w)


def coverage(n_in, n_out):
    """``(n_out, n_in)`` weights: output ``i`` averages input span ``[i*s, (i+1)*s)``, ``s = n_in/n_out``.

    Input pixel ``j`` (span ``[j, j+1)``) is weighted by the length of its
    overlap with that span, divided by ``s``; every row sums to 1.
    """
    scale = n_in / n_out
    lo = np.arange(n_out)[:, None] * scale
    hi = lo + scale
    j = np.arange(n_in)[None, :]
    return np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0, None) / scale


def area_average(image, height, width):
    """Exact area average of ``image`` (H, W, C) at ``height x width``, float64."""
    rows, cols = coverage(image.shape[0], height), coverage(image.shape[1], width)
    return np.stack([rows @ image[:, :, c].astype(np.float64) @ cols.T
                     for c in range(image.shape[2])], axis=2)


def box_shrink(image, max_resolution):
    """ffcvx's shrink before this module: same sizes, Pillow's BOX filter."""
    h, w = ffcv_size(*image.shape[:2], max_resolution)
    return np.asarray(Image.fromarray(image).resize((max(1, w), max(1, h)), Image.Resampling.BOX))


def absdiff(a, b):
    return np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))


def gray(image):
    return np.asarray(Image.fromarray(image).convert('L'))


@pytest.mark.parametrize('max_resolution', MAX_RESOLUTIONS)
def test_equals_ffcv_rule(photos, max_resolution):
    """ffcvx's shrink is cv2.resize(INTER_AREA) at FFCV's size, RGB and one channel."""
    worst = 0
    for name, image in photos:
        h, w = ffcv_size(*image.shape[:2], max_resolution)
        assert (h, w) != image.shape[:2], name   # every photo is shrunk
        got = shrink_to(image, max_resolution)
        ref = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        assert got.shape == (h, w, 3) and got.dtype == np.uint8, name
        worst = max(worst, absdiff(got, ref).max())
        one = gray(image)
        ref1 = cv2.resize(one, (w, h), interpolation=cv2.INTER_AREA)
        got2 = shrink_to(one, max_resolution)
        got3 = shrink_to(one[:, :, None], max_resolution)
        assert got2.shape == (h, w) and got3.shape == (h, w, 1), name
        worst = max(worst, absdiff(got2, ref1).max(), absdiff(got3[:, :, 0], ref1).max())
    print(f'\nmax_resolution {max_resolution}: max |ffcvx - FFCV rule| = {worst:.0f}')
    assert worst <= 1


def test_never_enlarges_and_keeps_one_pixel_sides():
    small = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    assert shrink_to(small, 5) is small
    assert shrink_to(small, None) is small
    # FFCV's rule gives width 0 here (its cv2.resize call fails); ffcvx keeps 1 pixel
    thin = np.full((600, 1, 3), 7, np.uint8)
    assert ffcv_size(600, 1, 256) == (256, 0)
    assert shrink_to(thin, 256).shape == (256, 1, 3)
    assert (shrink_to(thin, 256) == 7).all()


@pytest.mark.parametrize('factor', [2, 3, 4])
def test_integer_factor_is_block_mean(photos, factor):
    """At an integer factor k the shrink is the mean of k x k blocks, rounded."""
    tested, worst = 0, 0
    for name, image in photos:
        h, w = (side - side % factor for side in image.shape[:2])
        crop = np.ascontiguousarray(image[:h, :w])
        max_resolution = max(h, w) // factor
        if ffcv_size(h, w, max_resolution) != (h // factor, w // factor):
            continue   # FFCV's float ratio truncates a side: not an integer factor
        blocks = crop.reshape(h // factor, factor, w // factor, factor, 3).astype(np.float64)
        ref = np.floor(blocks.mean(axis=(1, 3)) + 0.5)
        worst = max(worst, absdiff(shrink_to(crop, max_resolution), ref).max())
        tested += 1
    print(f'\nfactor {factor}: {tested} photos, max |ffcvx - block mean| = {worst:.0f}')
    assert tested >= len(photos) // 2
    assert worst <= 1


@pytest.mark.parametrize('max_resolution', MAX_RESOLUTIONS)
def test_matches_area_average(photos, max_resolution):
    """At any factor the shrink is the coverage-weighted mean, rounded (within 1)."""
    worst, means, box_worst = 0, [], 0
    for name, image in photos:
        h, w = ffcv_size(*image.shape[:2], max_resolution)
        ref = area_average(image, h, w)
        diff = absdiff(shrink_to(image, max_resolution), np.floor(ref + 0.5))
        worst = max(worst, diff.max())
        means.append(diff.mean())
        box_worst = max(box_worst, absdiff(box_shrink(image, max_resolution), ref).max())
    print(f'\nmax_resolution {max_resolution}: max |ffcvx - area average| = {worst:.0f}, '
          f'mean {np.mean(means):.5f}; Pillow BOX max {box_worst:.1f}')
    assert worst <= 1
    assert np.mean(means) < 0.01


def write(path, field, images, num_workers):
    DatasetWriter(str(path), {'image': field}, num_workers=num_workers,
                  progress=False).from_indexed_dataset([(im,) for im in images], chunksize=4)
    return Reader(str(path))


@pytest.mark.parametrize('max_resolution', MAX_RESOLUTIONS)
def test_written_raw_is_the_shrink(tmp_path, photos, max_resolution):
    """Raw samples read back are the shrink exactly, RGB and gray (two forked workers)."""
    images = [image for _, image in photos]
    for field, inputs, channels in [
            (RGBImageField(write_mode='raw', max_resolution=max_resolution), images, 3),
            (GrayscaleImageField(write_mode='raw', max_resolution=max_resolution),
             [gray(image) for image in images], 1)]:
        path = tmp_path / f'raw{channels}.beton'
        meta = write(path, field, inputs, num_workers=2).metadata['f0']
        for i, image in enumerate(inputs):
            h, w = ffcv_size(*image.shape[:2], max_resolution)
            assert (meta['height'][i], meta['width'][i]) == (h, w)
            # raw region: H*W*channels bytes at data_ptr (FMT-036); read here
            # directly, as Reader.read_sample_region knows no gray field
            stored = np.fromfile(path, np.uint8, h * w * channels, offset=int(meta['data_ptr'][i]))
            expected = shrink_to(image, max_resolution)
            assert np.array_equal(stored.reshape(expected.shape), expected), (channels, i)
            ref = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            assert np.array_equal(stored.reshape(ref.shape), ref), (channels, i)


def decode(data):
    return np.asarray(Image.open(io.BytesIO(bytes(data))).convert('RGB'))


@pytest.mark.parametrize('max_resolution', MAX_RESOLUTIONS)
def test_written_jpeg_within_jpeg_noise(tmp_path, photos, max_resolution):
    """JPEG q90 samples differ from the area average by JPEG noise alone.

    Per photo, mean |decoded - area average (rounded)| stays within 0.02 of
    mean |decoded - shrink| (the JPEG noise); averaged over the photos it is
    below what Pillow's BOX shrink, JPEG-encoded the same way, gives.
    """
    images = [image for _, image in photos]
    field = RGBImageField(write_mode='jpg', jpeg_quality=90, max_resolution=max_resolution)
    reader = write(tmp_path / 'jpg.beton', field, images, num_workers=1)
    new, old, noise, new_max, old_max = [], [], [], 0, 0
    for i, image in enumerate(images):
        h, w = ffcv_size(*image.shape[:2], max_resolution)
        ref = np.floor(area_average(image, h, w) + 0.5)
        decoded = decode(reader.read_sample_region(i, 'image'))
        assert decoded.shape == (h, w, 3)
        new.append(absdiff(decoded, ref).mean())
        noise.append(absdiff(decoded, shrink_to(image, max_resolution)).mean())
        new_max = max(new_max, absdiff(decoded, ref).max())
        before = decode(encode_jpeg(box_shrink(image, max_resolution), 90))
        old.append(absdiff(before, ref).mean())
        old_max = max(old_max, absdiff(before, ref).max())
        assert new[-1] <= noise[-1] + 0.02, (photos[i][0], new[-1], noise[-1])
    print(f'\nmax_resolution {max_resolution}, q90 vs area average: INTER_AREA mean '
          f'{np.mean(new):.3f} max {new_max:.0f} (JPEG noise {np.mean(noise):.3f}); '
          f'old Pillow BOX mean {np.mean(old):.3f} max {old_max:.0f}')
    assert np.mean(new) < np.mean(old)


def rebuild_input(photo, provenance):
    """A golden file's writer input, from its ``input_provenance`` entry."""
    if 'resized_to' in provenance:
        h, w = provenance['resized_to']
        return cv2.resize(photo, (w, h), interpolation=cv2.INTER_AREA)
    if provenance.get('whole'):
        return photo
    top, left = provenance['top'], provenance['left']
    return np.ascontiguousarray(photo[top:top + provenance['height'],
                                      left:left + provenance['width']])


@pytest.mark.parametrize('case', ['rgb_jpg', 'rgb_smart'])
def test_golden_shrunk_samples_encode_to_ffcv_bytes(case):
    """FFCV 1.0.2's stored JPEG of a shrunk sample is cv2.imencode(q90) of ffcvx's shrink.

    Both golden files written with ``max_resolution`` (256 and 200) hold only
    JPEG samples among the shrunk ones; JPEG encoding is deterministic, so
    equal bytes mean ffcvx's shrink gave FFCV's pixels.
    """
    shared_folder()
    meta = json.loads((GOLDEN_DIR / f'{case}.json').read_text())
    args = meta['writer']['fields'][0]['args']
    max_resolution, quality = args['max_resolution'], args['jpeg_quality']
    samples = meta['samples']['image']
    photo_root = GOLDEN_DIR.parents[1] / 'data' / 'photos'
    shrunk = 0
    for i, provenance in enumerate(meta['input_provenance']['image']):
        photo = np.asarray(Image.open(photo_root / provenance['photo']).convert('RGB'))
        image = rebuild_input(photo, provenance)
        assert list(image.shape) == meta['input_provenance']['input_shapes'][i]
        out = shrink_to(image, max_resolution)
        assert out.shape[:2] == (samples['heights'][i], samples['widths'][i])
        if out.shape == image.shape:
            continue
        shrunk += 1
        assert samples['modes'][i] == 'jpg'
        ok, data = cv2.imencode('.jpg', cv2.cvtColor(out, cv2.COLOR_RGB2BGR),
                                [int(cv2.IMWRITE_JPEG_QUALITY), quality])
        assert ok
        assert hashlib.sha256(data.tobytes()).hexdigest() == samples['stored_sha256'][i], (
            f'sample {i}: FFCV used opencv {meta["made_with"].get("opencv-python")}, '
            f'this is {cv2.__version__}')
    assert shrunk > 0
