"""What a write reports: outcome counts per image field, ``WriteStats``, the bar and the closing line."""
import io

import numpy as np
import pytest
from PIL import Image

from ffcvx.fields import BytesField, IntField, NDArrayField, RGBImageField
from ffcvx.fields.outcomes import OUTCOMES, PASSED_THROUGH, RAW, REENCODED, SHRUNK
from ffcvx.writer import DatasetWriter
from ffcvx.writer.progress import WriteStats


def _smooth(h, w, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.clip(rng.uniform(60, 180) + (y - x) * rng.uniform(-0.5, 0.5), 0, 255)
                     for _ in range(3)], -1).astype(np.uint8)


def _jpeg(array):
    out = io.BytesIO()
    Image.fromarray(array).save(out, format='JPEG', quality=95)
    return out.getvalue()


class _Pairs:
    def __init__(self, values):
        self.values = values

    def __len__(self):
        return len(self.values)

    def __getitem__(self, i):
        return self.values[i], int(i)


def _mixed():
    """10 inputs: 3 JPEGs that pass through, 2 that shrink, 4 arrays at their size, 1 big array."""
    small = _jpeg(_smooth(32, 48))
    big = _jpeg(_smooth(200, 100, 1))
    return ([small] * 3 + [big] * 2 + [_smooth(40, 30, k) for k in range(4)]
            + [_smooth(300, 20, 9)])


@pytest.mark.parametrize('workers', [1, 2])
def test_counts_per_outcome(tmp_path, workers):
    field = RGBImageField('jpg', max_resolution=64, jpeg_passthrough=True)
    writer = DatasetWriter(str(tmp_path / 'x.beton'), {'image': field, 'label': IntField()},
                           num_workers=workers, progress=False, seed=1)
    assert writer.last_write is None
    stats = writer.from_indexed_dataset(_Pairs(_mixed()), chunksize=3)
    assert isinstance(stats, WriteStats) and writer.last_write is stats
    assert stats.num_samples == 10 and stats.seconds > 0 and stats.unit == 'img'
    assert stats.outcomes == {'image': {PASSED_THROUGH: 3, SHRUNK: 3, REENCODED: 4, RAW: 0}}
    assert list(stats.outcomes['image']) == list(OUTCOMES)
    assert stats.fast_path is None and stats.read_by_path == 0
    assert stats.samples_per_second == pytest.approx(10 / stats.seconds)


@pytest.mark.parametrize('mode,expected', [('raw', {RAW: 6}), ('png', {REENCODED: 6}),
                                           ('smart', {RAW: 3, REENCODED: 3})])
def test_counts_of_each_write_mode(tmp_path, mode, expected):
    values = [_smooth(8, 8, k) for k in range(3)] + [_smooth(40, 40, k) for k in range(3)]
    field = RGBImageField(mode, smart_threshold=1000)
    stats = DatasetWriter(str(tmp_path / 'x.beton'), {'image': field, 'label': IntField()},
                          num_workers=1, progress=False).from_indexed_dataset(_Pairs(values))
    want = dict.fromkeys(OUTCOMES, 0)
    want.update(expected)
    assert stats.outcomes == {'image': want}


def test_a_sample_moved_to_a_fresh_page_is_counted_once(tmp_path):
    # the second sample's array does not fit after the first's: it is encoded again on a
    # fresh page, and its image's outcome must count once
    big = np.zeros(1_500_000, dtype=np.uint8)
    fields = {'image': RGBImageField('raw'), 'blob': NDArrayField(np.dtype('u1'), big.shape)}

    class Samples:
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return _smooth(10, 10, int(i)), big

    stats = DatasetWriter(str(tmp_path / 'x.beton'), fields, num_workers=1, progress=False,
                          page_size=1 << 21).from_indexed_dataset(Samples())
    assert stats.outcomes == {'image': {PASSED_THROUGH: 0, SHRUNK: 0, REENCODED: 0, RAW: 3}}


def test_from_iterable_and_empty_writes_report_too(tmp_path):
    fields = {'image': RGBImageField('jpg'), 'label': IntField()}
    stats = DatasetWriter(str(tmp_path / 'a.beton'), fields, num_workers=2,
                          progress=False).from_iterable(((_smooth(9, 9, k), k) for k in range(7)),
                                                        length=7, chunksize=2)
    assert stats.outcomes['image'][REENCODED] == 7 and stats.num_samples == 7
    stats = DatasetWriter(str(tmp_path / 'b.beton'), fields, num_workers=1,
                          progress=False).from_indexed_dataset([])
    assert stats.num_samples == 0 and stats.outcomes == {'image': dict.fromkeys(OUTCOMES, 0)}
    assert 'wrote 0 samples' in stats.summary()


def test_fields_without_outcomes_and_custom_labels(tmp_path):
    class Labelled(IntField):
        def encode(self, destination, field, malloc):
            super().encode(destination, field, malloc)
            return 'odd' if field % 2 else 'even'

    fields = {'label': Labelled(), 'data': BytesField()}
    samples = [(k, np.zeros(3, np.uint8)) for k in range(5)]
    stats = DatasetWriter(str(tmp_path / 'x.beton'), fields, num_workers=1,
                          progress=False).from_indexed_dataset(samples)
    assert stats.unit == 'samples'
    assert stats.outcomes == {'label': {'even': 3, 'odd': 2}}
    assert 'label: 3 even, 2 odd' in stats.summary()


def test_closing_line_and_bar_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv('TQDM_DISABLE', raising=False)
    field = RGBImageField('jpg', max_resolution=64, jpeg_passthrough=True)
    DatasetWriter(str(tmp_path / 'out.beton'), {'image': field, 'label': IntField()},
                  num_workers=2).from_indexed_dataset(_Pairs(_mixed()), chunksize=3)
    captured = capsys.readouterr()
    assert 'wrote' not in captured.out
    lines = [line for line in captured.err.splitlines() if 'wrote ' in line]
    assert len(lines) == 1, captured.err
    line = lines[0].split('\r')[-1]
    assert line.startswith('wrote 10 samples to out.beton in ')
    assert line.endswith('img/s): image: 3 passed through, 3 shrunk, 4 re-encoded, 0 raw'), line
    assert 'img/s]' in captured.err and '10/10' in captured.err     # rate and total


@pytest.mark.parametrize('how', ['progress_false', 'tqdm_disable'])
def test_closing_line_is_off_with_the_bar(tmp_path, capsys, monkeypatch, how):
    monkeypatch.delenv('TQDM_DISABLE', raising=False)
    if how == 'tqdm_disable':
        monkeypatch.setenv('TQDM_DISABLE', '1')
    fields = {'image': RGBImageField('raw'), 'label': IntField()}
    writer = DatasetWriter(str(tmp_path / 'x.beton'), fields, num_workers=1,
                           progress=how != 'progress_false')
    stats = writer.from_indexed_dataset(_Pairs([_smooth(4, 4)] * 3))
    captured = capsys.readouterr()
    assert captured.err == '' and captured.out == ''
    assert stats.outcomes['image'][RAW] == 3


def test_summary_wording():
    stats = WriteStats('/tmp/out.beton', 2000, 3.1,
                       {'image': {PASSED_THROUGH: 1200, SHRUNK: 700, REENCODED: 100, RAW: 0}},
                       fast_path='torchvision ImageFolder', read_by_path=2000, unit='img')
    assert stats.summary() == (
        'wrote 2,000 samples to out.beton in 3.1 s (645 img/s): image: 1,200 passed through, '
        '700 shrunk, 100 re-encoded, 0 raw; read 2,000 images by path (torchvision ImageFolder '
        'fast path)')
