"""DatasetWriter inputs: values a field cannot store exactly are refused, naming sample and field;
random choices come from ``seed``, never from numpy's global RNG (spec/beton.md, "Writer faults")."""
import os

import numpy as np
import pytest
from PIL import Image

from ffcvx.errors import WriterError
from ffcvx.fields import (BytesField, FloatField, GrayscaleImageField, IntField, JSONField,
                          NDArrayField, RGBImageField)
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

PAGE = 2 << 20


def _write(path, fields, samples, workers=1, seed=None, **kwargs):
    DatasetWriter(path, fields, page_size=PAGE, num_workers=workers, progress=False,
                  seed=seed).from_indexed_dataset(samples, chunksize=10, **kwargs)
    return Reader(path)


def _pil(mode, size=(4, 3)):
    return Image.new(mode, size)


GOOD = {
    'int': (IntField(), 5),
    'float': (FloatField(), 0.5),
    'json': (JSONField(), {'a': 1}),
    'bytes': (BytesField(), b'ab'),
    'rgb': (RGBImageField(), np.zeros((2, 2, 3), np.uint8)),
    'gray': (GrayscaleImageField(), np.zeros((2, 2), np.uint8)),
    'f4': (NDArrayField(np.dtype('f4'), (2,)), np.zeros(2, 'f4')),
    'i1': (NDArrayField(np.dtype('i1'), (2,)), np.zeros(2, 'i1')),
    'u8': (NDArrayField(np.dtype('u8'), (1,)), np.zeros(1, 'u8')),
}

BAD = [
    # (field key, bad value, exception name, words of the message)
    ('rgb', np.zeros((0, 5, 3), np.uint8), 'ValueError', 'empty image'),
    ('rgb', np.zeros((5, 0, 3), np.uint8), 'ValueError', 'empty image'),
    ('rgb', _pil('RGB', (0, 4)), 'ValueError', 'empty image'),
    ('gray', np.zeros((0, 3), np.uint8), 'ValueError', 'empty image'),
    ('rgb', _pil('I;16'), 'TypeError', "mode 'I;16'"),
    ('rgb', _pil('I'), 'TypeError', "mode 'I'"),
    ('rgb', _pil('F'), 'TypeError', "mode 'F'"),
    ('gray', _pil('I;16'), 'TypeError', "mode 'I;16'"),
    ('rgb', np.zeros((2, 2, 3), np.uint16), 'TypeError', 'uint8'),
    ('int', 1.5, 'ValueError', 'not an integral'),
    ('int', float('nan'), 'ValueError', 'not an integral'),
    ('int', np.float64('inf'), 'ValueError', 'not an integral'),
    ('int', 2 ** 63, 'ValueError', 'out of range'),
    ('int', '3', 'TypeError', 'expects an integer'),
    ('int', None, 'TypeError', 'expects an integer'),
    ('float', '1.0', 'TypeError', 'real number'),
    ('float', 1j, 'TypeError', 'real number'),
    ('float', 2 ** 53 + 1, 'ValueError', 'exactly'),
    ('json', {'a': float('nan')}, 'ValueError', 'NaN or infinity'),
    ('json', [float('inf')], 'ValueError', 'NaN or infinity'),
    ('json', {1, 2}, 'TypeError', 'JSON values'),
    ('bytes', 'text', 'TypeError', '1-D uint8'),
    ('f4', np.array([0.1, 0.2]), 'ValueError', 'do not fit'),             # float64 rounded
    ('i1', np.array([1, 300]), 'ValueError', 'do not fit'),
    ('i1', np.array([np.nan, 1.0]), 'TypeError', 'change kind'),          # NaN to int
    ('u8', np.array([-1]), 'ValueError', 'do not fit'),
    ('f4', np.array(['a', 'b']), 'TypeError', 'change kind'),
]


@pytest.mark.parametrize('key,value,kind,words', BAD,
                         ids=[f'{b[0]}-{i}' for i, b in enumerate(BAD)])
@pytest.mark.parametrize('workers', [1, 2])
def test_inexact_input_is_refused_naming_sample_and_field(tmp_path, key, value, kind, words,
                                                         workers):
    field, good = GOOD[key]
    samples = [(good,)] * 13 + [(value,)] + [(good,)] * 13
    target = tmp_path / 'x.beton'
    target.write_bytes(b'old')
    with pytest.raises(WriterError) as info:
        _write(target, {key: field}, samples, workers=workers)
    message = str(info.value)
    assert 'sample 13' in message and f"field {key!r}" in message
    assert f'{kind}: ' in message and words in message
    assert sorted(os.listdir(tmp_path)) == ['x.beton'] and target.read_bytes() == b'old'


def test_exact_values_of_other_types_are_stored(tmp_path):
    """What converts without loss still works (FFCV datasets return such values)."""
    reader = _write(tmp_path / 'ok.beton',
                    {'i': IntField(), 'f': FloatField(), 'a': NDArrayField(np.dtype('<i4'), (2,)),
                     'g': NDArrayField(np.dtype('f8'), (2,)), 'img': RGBImageField()},
                    [(3.0, np.float32(0.1), np.array([1, -2], '>i4'), np.array([1, 2]),
                      _pil('L', (3, 2))),
                     (np.int8(-4), 7, np.array([5, 6], 'i8'), np.array([0.5, np.nan], 'f4'),
                      _pil('P', (3, 2))),
                     (np.array([9]), True, [7, 8], [1.5, 2.5], _pil('RGBA', (3, 2)))])
    assert reader.metadata['f0'].tolist() == [3, -4, 9]
    assert reader.metadata['f1'].tolist() == [float(np.float32(0.1)), 7.0, 1.0]
    assert reader.read_sample_region(2, 'a').view('<i4').tolist() == [7, 8]
    assert np.array_equal(reader.read_sample_region(1, 'g').view('f8'), [0.5, np.nan],
                          equal_nan=True)


@pytest.mark.parametrize('workers', [1, 2])
def test_torch_and_index_scalars_are_stored(tmp_path, workers):
    """Datasets often return ``torch.tensor(label)``; FFCV stored it (``dest[0] = value``)."""
    import fractions

    import torch

    class Label:   # any integer type with __index__
        def __init__(self, n):
            self.n = n

        def __index__(self):
            return self.n

    samples = [(torch.tensor(i), torch.tensor(i / 4), Label(-i), fractions.Fraction(i, 8))
               for i in range(12)]
    reader = _write(tmp_path / 't.beton', {'label': IntField(), 'x': FloatField(),
                                           'k': IntField(), 'q': FloatField()}, samples, workers)
    assert reader.metadata['f0'].tolist() == list(range(12))
    assert reader.metadata['f1'].tolist() == [i / 4 for i in range(12)]
    assert reader.metadata['f2'].tolist() == [-i for i in range(12)]
    assert reader.metadata['f3'].tolist() == [i / 8 for i in range(12)]
    with pytest.raises(WriterError, match=r"sample 0.*'label'|'label'.*sample 0"):
        _write(tmp_path / 'u.beton', {'label': IntField()}, [(torch.tensor(0.5),)])


def test_subclass_encode_runs_in_proportion_mode(tmp_path):
    """A custom RGBImageField overriding ``encode`` (FFCV's interface) is not bypassed."""
    calls = []

    class Counting(RGBImageField):
        def encode(self, destination, field, malloc):
            calls.append(1)
            super().encode(destination, field, malloc)

    path = tmp_path / 'c.beton'
    DatasetWriter(path, {'img': Counting(write_mode='proportion', compress_probability=0.5)},
                  page_size=PAGE, num_workers=1, progress=False, seed=1) \
        .from_indexed_dataset([(np.full((4, 5, 3), i, np.uint8),) for i in range(6)])
    assert len(calls) == 6
    assert Reader(path, custom_handlers={'img': Counting}).num_samples == 6


def test_ndarray_keeps_ffcv_element_count_rule(tmp_path):
    reader = _write(tmp_path / 'n.beton', {'a': NDArrayField(np.dtype('<i2'), (4, 3))},
                    [(np.arange(12, dtype='<i2').reshape(3, 4),)])
    assert reader.read_sample_region(0, 'a').view('<i2').tolist() == list(range(12))


# ---------------------------------------------------------------------------
# random choices: seed, per sample, never numpy's global RNG


def _images(n):
    rng = np.random.default_rng(7)
    return [(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),) for _ in range(n)]


def _modes(path, workers, seed, samples):
    field = RGBImageField(write_mode='proportion', compress_probability=0.5)
    return _write(path, {'img': field}, samples, workers=workers,
                  seed=seed).metadata['f0']['mode'].tolist()


@pytest.fixture
def no_global_rng(monkeypatch):
    """numpy's global RNG raises: the writer must not draw from it."""
    def refuse(*args, **kwargs):
        raise AssertionError("numpy's global RNG was used")
    for name in ('rand', 'random', 'permutation', 'shuffle', 'randint', 'random_sample'):
        monkeypatch.setattr(np.random, name, refuse)


def test_proportion_is_reproducible_per_sample_and_independent_of_workers(tmp_path,
                                                                          no_global_rng):
    samples = _images(60)
    one = _modes(tmp_path / 'a.beton', 1, 5, samples)
    three = _modes(tmp_path / 'b.beton', 3, 5, samples)
    other = _modes(tmp_path / 'c.beton', 3, 6, samples)
    assert one == three                       # a seed fixes every choice, whatever the workers
    assert one != other and set(one) == {0, 1}
    # chunks of 10 went to different workers: a copied global RNG state would repeat them
    chunks = [tuple(three[k:k + 10]) for k in range(0, 60, 10)]
    assert len(set(chunks)) == len(chunks)


def test_no_seed_draws_the_root_once_from_numpys_global_rng(tmp_path, monkeypatch):
    """seed=None: np.random.seed() before the write reproduces it (as in FFCV), one draw in
    the calling process; without reseeding, each write differs."""
    samples = _images(60)
    np.random.seed(11)
    first = _modes(tmp_path / 'd.beton', 2, None, samples)
    second = _modes(tmp_path / 'e.beton', 2, None, samples)
    np.random.seed(11)
    assert _modes(tmp_path / 'f.beton', 2, None, samples) == first != second
    draws = []
    real = np.random.randint
    monkeypatch.setattr(np.random, 'randint', lambda *a, **k: draws.append(1) or real(*a, **k))
    _modes(tmp_path / 'g.beton', 2, None, samples)
    assert draws == [1]


def test_shuffle_indices_is_drawn_from_the_seed(tmp_path, no_global_rng):
    samples = [(i,) for i in range(50)]

    def order(seed, workers):
        return _write(tmp_path / f's{seed}{workers}.beton', {'v': IntField()}, samples,
                      workers=workers, seed=seed, shuffle_indices=True).metadata['f0'].tolist()

    assert order(3, 1) == order(3, 2) != list(range(50))
    assert sorted(order(3, 1)) == list(range(50)) and order(4, 1) != order(3, 1)


def test_ffcv_docs_arguments_still_work(tmp_path):
    """FFCV's docs: DatasetWriter(path, fields, num_workers=..., page_size=...), no seed."""
    path = str(tmp_path / 'docs.beton')
    writer = DatasetWriter(path, {'label': IntField()}, num_workers=2, page_size=1 << 21)
    writer.from_indexed_dataset([(i,) for i in range(30)], chunksize=4)
    assert Reader(path).metadata['f0'].tolist() == list(range(30))
    with pytest.raises(ValueError):
        DatasetWriter(path, {'label': IntField()}, seed=-1)
