"""RandomColorJitter / LabelColorJitter (FFCV-SSL) against torchvision v2 on the shared photos.

Kernels: each adjustment and the chain in a given order equal
``torchvision.transforms.v2.functional`` on uint8 (asserted max |diff| <= 1
per adjustment, <= 2 for the chain; measured 0). Draws: probability, ranges
and the order's distribution. Label op: the image op's output is the kernel
applied with the reported parameters, exactly; new epoch, new draws.
"""
import itertools

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline.seeds import seed_sample
from ffcvx.transforms import LabelColorJitter, RandomColorJitter
from ffcvx.transforms._tv_color import (adjust_brightness, adjust_contrast, adjust_hue,
                                        adjust_saturation)
from ffcvx.transforms.colorjitter import apply_jitter, draw_jitter

from colour_photos import photo_beton, small_photos, to_chw, to_hwc

KERNELS = {
    'brightness': (adjust_brightness, TF.adjust_brightness, (0.0, 2.0)),
    'contrast': (adjust_contrast, TF.adjust_contrast, (0.0, 2.0)),
    'saturation': (adjust_saturation, TF.adjust_saturation, (0.0, 2.0)),
    'hue': (adjust_hue, TF.adjust_hue, (-0.5, 0.5)),
}
TV_ORDER = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)


@pytest.fixture(scope='module')
def photos(shared_dir):
    return small_photos(shared_dir, count=6)


@pytest.mark.parametrize('name', list(KERNELS))
def test_adjustment_matches_torchvision(photos, name):
    mine, theirs, (low, high) = KERNELS[name]
    rng = np.random.default_rng(1)
    worst, differing, total = 0, 0, 0
    factors = [low, high, 1.0 if name != 'hue' else 0.0] + list(rng.uniform(low, high, 4))
    for image in photos:
        for factor in factors:
            expected = to_hwc(theirs(to_chw(image), float(factor)))
            got = image.copy()
            mine(got, float(factor))
            diff = np.abs(got.astype(int) - expected)
            worst = max(worst, int(diff.max()))
            differing, total = differing + int((diff > 0).sum()), total + diff.size
    # <= 1 where torch's CPU kernels round differently (no FMA); a rounding-rule error
    # (round vs truncate, no floor of the grey) would differ on far more than 1e-3 of the values
    assert worst <= 1 and differing <= 1e-3 * total, f"{name}: max |diff| {worst}, {differing} differ"


def test_chain_in_a_given_order_matches_torchvision(photos):
    rng = np.random.default_rng(2)
    enabled = (True, True, True, True)
    worst = 0
    orders = list(itertools.permutations(range(4)))
    for image in photos:
        for order in [orders[i] for i in rng.choice(len(orders), 4, replace=False)]:
            params = np.array([rng.uniform(0.2, 1.8), rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4),
                               rng.uniform(-0.2, 0.2)], dtype=np.float32)
            expected = to_chw(image)
            for which in order:
                expected = TV_ORDER[which](expected, float(params[which]))
            got = image.copy()
            apply_jitter(got, params, np.array(order, dtype=np.int64), enabled)
            worst = max(worst, int(np.abs(got.astype(int) - to_hwc(expected)).max()))
    assert worst <= 2, f"chain: max |diff| {worst}"


def test_torchvision_color_jitter_transform_agrees(photos):
    # torchvision's own ColorJitter.transform with our drawn parameters
    from torchvision.transforms.v2 import ColorJitter
    tv = ColorJitter(0.8, 0.4, 0.4, 0.2)
    op = RandomColorJitter(1.0, 0.8, 0.4, 0.4, 0.2)
    prob, lows, highs = op._draw_arguments()
    params, order = np.zeros(4, np.float32), np.zeros(4, np.int64)
    for k, image in enumerate(photos):
        seed_sample(np.uint64(7), k)
        assert draw_jitter(prob, lows, highs, params, order)
        got = image.copy()
        apply_jitter(got, params, order, op.enabled)
        expected = tv.transform(to_chw(image), dict(
            fn_idx=torch.tensor(order), brightness_factor=float(params[0]),
            contrast_factor=float(params[1]), saturation_factor=float(params[2]),
            hue_factor=float(params[3])))
        assert np.abs(got.astype(int) - to_hwc(expected)).max() <= 2


def _draw_many(op, n=6000):
    prob, lows, highs = op._draw_arguments()
    applied = np.zeros(n, bool)
    params, orders = np.zeros((n, 4), np.float32), np.zeros((n, 4), np.int64)
    for k in range(n):
        seed_sample(np.uint64(11), k)
        applied[k] = draw_jitter(prob, lows, highs, params[k], orders[k])
    return applied, params, orders


def test_draws_follow_torchvision_distributions():
    applied, params, orders = _draw_many(RandomColorJitter(0.3, 0.8, (0.5, 0.7), 0.4, 0.2))
    n = len(applied)
    assert abs(applied.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    assert np.all(params[~applied] == [1, 1, 1, 0])
    assert np.all(orders[~applied] == [0, 1, 2, 3])
    p = params[applied]
    for column, (low, high) in enumerate([(0.2, 1.8), (0.5, 0.7), (0.6, 1.4), (-0.2, 0.2)]):
        values = p[:, column].astype(np.float64)
        assert values.min() >= np.float32(low) and values.max() <= np.float32(high)
        assert abs(values.mean() - (low + high) / 2) < 4 * (high - low) / np.sqrt(12 * len(values))
        assert values.max() - values.min() > 0.95 * (high - low)
    counts = {}
    for row in orders[applied]:
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    assert sorted(counts) == sorted(itertools.permutations(range(4)))
    expected = applied.sum() / 24
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 60                        # 23 degrees of freedom: p < 1e-5 beyond


def test_arguments_as_torchvision_checks_them():
    op = RandomColorJitter(0.5, 0.8, 1.5, (0.2, 0.3), (-0.1, 0.05))
    assert op.brightness == pytest.approx((0.2, 1.8)) and op.contrast == (0.0, 2.5)
    assert op.saturation == (0.2, 0.3) and op.hue == (-0.1, 0.05)
    assert RandomColorJitter(0.5, 0, None, 0.1, 0).enabled == (False, False, True, False)
    bad = [dict(jitter_prob=1.5), dict(brightness=-1), dict(brightness=(1.2, 1.1)),
           dict(contrast=(-0.1, 1)), dict(hue=0.6), dict(hue=(-0.6, 0.1)), dict(saturation='x'),
           dict(brightness=(1, 2, 3)), dict(seed=1.5), dict(brightness=float('inf'))]
    for kwargs in bad:
        with pytest.raises(ValueError, match='RandomColorJitter: '):
            RandomColorJitter(**kwargs)
    with pytest.raises(ValueError, match='LabelColorJitter: with_order'):
        LabelColorJitter(with_order=1)


def _jitter_loader(path, seed, **kw):
    return Loader(path, batch_size=kw.pop('batch_size', 5), order=OrderOption.RANDOM, seed=seed,
                  drop_last=False,
                  custom_field_mapper={'plain': 'image'}, pipelines={
                      'image': [SimpleRGBImageDecoder(), RandomColorJitter(0.7, seed=42)],
                      'plain': [SimpleRGBImageDecoder()],
                      'label': [IntDecoder(), LabelColorJitter(0.7, seed=42, with_order=True)]},
                  **kw)


def _epochs(loader, epochs):
    names = loader.graph.output_names
    result = []
    for _ in range(epochs):
        rows = {}
        for batch in loader:
            batch = dict(zip(names, batch))
            for k in range(len(batch['label'])):
                rows[int(batch['label'][k, 0])] = (batch['image'][k].copy(), batch['plain'][k].copy(),
                                                   batch['label'][k].copy())
        result.append(rows)
    return result


def test_label_reports_exactly_what_the_image_op_drew(tmp_path, shared_dir):
    path, n = photo_beton(tmp_path / 'photos.beton', shared_dir, repeat=1)
    epochs = _epochs(_jitter_loader(path, seed=1), 2)
    enabled = RandomColorJitter(0.7).enabled
    applied_counts = []
    for rows in epochs:
        assert len(rows) == n
        applied = 0
        for index, (image, plain, label) in rows.items():
            assert label.dtype == np.float32 and label.shape == (9,) and label[0] == index
            params, order = label[1:5], label[5:9].astype(np.int64)
            expected = plain.copy()
            if not (np.all(params == [1, 1, 1, 0]) and np.all(order == [0, 1, 2, 3])):
                apply_jitter(expected, params, order, enabled)
                applied += 1
            assert np.array_equal(image, expected), f"sample {index}"
        applied_counts.append(applied)
    assert all(0 < a < n for a in applied_counts)
    assert any(not np.array_equal(epochs[0][i][2], epochs[1][i][2]) for i in range(n))
    # a different Loader seed, thread count and batch size: same draws (the ops' own seed)
    again = _epochs(_jitter_loader(path, seed=9, num_workers=2, batch_size=7), 1)[0]
    assert all(np.array_equal(again[i][2], epochs[0][i][2]) for i in range(n))


def test_label_op_without_order_appends_four_columns_after_float_labels(tmp_path, shared_dir):
    path, n = photo_beton(tmp_path / 'p.beton', shared_dir, repeat=1)
    loader = Loader(path, batch_size=n, order=OrderOption.SEQUENTIAL, pipelines={
        'image': None, 'label': [IntDecoder(), LabelColorJitter(0.0, seed=3),
                                 LabelColorJitter(1.0, seed=3)]})
    label, = list(loader)[0]
    assert label.shape == (n, 9) and label.dtype == np.float32
    assert np.array_equal(label[:, 0], np.arange(n))
    assert np.all(label[:, 1:5] == [1, 1, 1, 0])
    assert np.all(label[:, 5:9] != [1, 1, 1, 0])
