"""RandomGrayscale / RandomSolarization and their label ops (FFCV-SSL) against torchvision v2.

Kernels on the shared photos: tolerance 0 for both (``rgb_to_grayscale(x, 3)``
and ``solarize``). Draws: the probability. Label ops: 1.0 exactly where the
image op with the same seed changed the image.
"""
import numpy as np
import pytest
import torchvision.transforms.v2.functional as TF

from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline.seeds import seed_sample
from ffcvx.transforms import (LabelGrayscale, LabelSolarization, RandomGrayscale,
                              RandomSolarization)
from ffcvx.transforms._ssl import draw_applied
from ffcvx.transforms._tv_color import solarize, to_grayscale

from colour_photos import photo_beton, small_photos, to_chw, to_hwc


@pytest.fixture(scope='module')
def photos(shared_dir):
    return small_photos(shared_dir, count=8)


def test_grayscale_equals_torchvision(photos):
    for image in photos:
        got = image.copy()
        to_grayscale(got)
        assert np.array_equal(got, to_hwc(TF.rgb_to_grayscale(to_chw(image), 3)))


@pytest.mark.parametrize('threshold', [0, 1, 64, 128, 200, 255])
def test_solarize_equals_torchvision(photos, threshold):
    for image in photos:
        got = image.copy()
        solarize(got, threshold)
        assert np.array_equal(got, to_hwc(TF.solarize(to_chw(image), threshold)))


def test_draw_probability():
    n = 8000
    for prob in (0.0, 0.2, 0.5, 1.0):
        hits = 0
        for k in range(n):
            seed_sample(np.uint64(5), k)
            hits += draw_applied(prob)
        assert abs(hits / n - prob) <= 4 * np.sqrt(prob * (1 - prob) / n)


def test_arguments_are_checked():
    for make in (lambda: RandomGrayscale(1.2), lambda: LabelGrayscale(-0.1),
                 lambda: RandomGrayscale(0.5, seed='1'), lambda: RandomSolarization(2.0),
                 lambda: RandomSolarization(0.5, threshold=256), lambda: LabelSolarization(0.5, 'x'),
                 lambda: RandomSolarization(0.5, seed=True)):
        with pytest.raises(ValueError, match=r'^(Random|Label)(Grayscale|Solarization): '):
            make()


def _rows(path, image_op, label_op, epochs=2, **kw):
    loader = Loader(path, batch_size=kw.pop('batch_size', 4), order=OrderOption.RANDOM,
                    drop_last=False, custom_field_mapper={'plain': 'image'}, pipelines={
                        'image': [SimpleRGBImageDecoder(), image_op],
                        'plain': [SimpleRGBImageDecoder()],
                        'label': [IntDecoder(), label_op]}, **kw)
    names = loader.graph.output_names
    result = []
    for _ in range(epochs):
        rows = {}
        for batch in loader:
            batch = dict(zip(names, batch))
            for k in range(len(batch['label'])):
                rows[int(batch['label'][k, 0])] = (batch['image'][k], batch['plain'][k],
                                                   batch['label'][k])
        result.append(rows)
    return result


@pytest.mark.parametrize('image_op, label_op, kernel', [
    (RandomGrayscale(0.5, seed=8), LabelGrayscale(0.5, seed=8), to_grayscale),
    (RandomSolarization(0.5, 100, seed=8), LabelSolarization(0.5, 100, seed=8),
     lambda image: solarize(image, 100)),
])
def test_label_flag_is_what_the_image_op_did(tmp_path, shared_dir, image_op, label_op, kernel):
    path, n = photo_beton(tmp_path / 'photos.beton', shared_dir)
    epochs = _rows(path, image_op, label_op)
    for rows in epochs:
        flags = np.array([rows[i][2][1] for i in range(n)])
        assert rows[0][2].dtype == np.float32 and rows[0][2].shape == (2,)
        assert set(flags.tolist()) == {0.0, 1.0}
        for i in range(n):
            image, plain, label = rows[i]
            expected = plain.copy()
            if label[1] == 1.0:
                kernel(expected)
            assert np.array_equal(image, expected), f"sample {i}"
    first = [epochs[0][i][2][1] for i in range(n)]
    assert first != [epochs[1][i][2][1] for i in range(n)]      # a new epoch draws anew
