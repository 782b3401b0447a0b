"""ffcvx's writer against files written by FFCV 1.0.2 (shared/golden/ffcv-1.0.2).

The golden cases whose inputs can be rebuilt exactly from their sidecars
(``ints_floats``, ``ndarray``, ``bytes_json``, ``torch_tensor`` and ``rgb_raw``)
are written again with the sidecar's writer arguments and compared byte for
byte: header, descriptors and metadata, the layout offsets, the allocation
table, and the whole file (sha256 of the sidecar). The JPEG case is checked for
FFCV's max_resolution shrink rule (stored sizes) only: its input pixels are
not in the sidecar.
"""
import hashlib
import json
import os

import numpy as np
import pytest
import torch

from ffcvx.fields import (BytesField, FloatField, IntField, JSONField, NDArrayField,
                          RGBImageField, TorchTensorField)
from ffcvx.fields.rgb_image import shrink_to
from ffcvx.testing import find_golden_dir
from ffcvx.types import FieldDescType, HeaderType, metadata_offset
from ffcvx.writer import DatasetWriter


GOLDEN = find_golden_dir()
# Every test here reads the golden files: the conftest fixture fails each one, naming
# what is missing, when they are absent.
pytestmark = pytest.mark.usefixtures('golden_dir')

BYTE_IDENTICAL_CASES = ['ints_floats', 'ndarray', 'bytes_json', 'torch_tensor', 'rgb_raw']


class ListDataset:
    def __init__(self, samples):
        self.samples = samples

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.samples[int(index)]


def load_case(case):
    """(sidecar, fields, samples) rebuilt from the sidecar and its npz."""
    with open(os.path.join(GOLDEN, f'{case}.json')) as f:
        sidecar = json.load(f)
    n = sidecar['header']['num_samples']
    arrays = np.load(os.path.join(GOLDEN, sidecar['npz'])) if sidecar['npz'] else None
    fields, columns = {}, []
    for spec in sidecar['writer']['fields']:
        name, cls, args = spec['name'], spec['class'], spec['args']
        entry = sidecar['samples'][name]
        if cls == 'IntField':
            fields[name] = IntField()
            columns.append([int(v) for v in entry['values']])
        elif cls == 'FloatField':
            fields[name] = FloatField()
            bits = np.array([int(b, 16) for b in entry['bits']], dtype='<u8')
            columns.append(list(bits.view('<f8')))
        elif cls == 'NDArrayField':
            fields[name] = NDArrayField(np.dtype(args['dtype']), tuple(args['shape']))
            columns.append(list(arrays[entry['npz_key']]))
        elif cls == 'TorchTensorField':
            assert args['dtype'] == 'torch.float32'
            fields[name] = TorchTensorField(torch.float32, tuple(args['shape']))
            columns.append([torch.from_numpy(a.copy()) for a in arrays[entry['npz_key']]])
        elif cls == 'BytesField':
            fields[name] = BytesField()
            columns.append([arrays[entry['npz_key_prefix'] + str(i)] for i in range(n)])
        elif cls == 'JSONField':
            fields[name] = JSONField()
            columns.append(entry['values'])
        elif cls == 'RGBImageField':
            assert args == {'write_mode': 'raw'}
            fields[name] = RGBImageField(write_mode='raw')
            columns.append([arrays[entry['npz_key_prefix'] + str(i)] for i in range(n)])
        else:
            raise AssertionError(f"unexpected field class {cls}")
    return sidecar, fields, list(zip(*columns))


@pytest.fixture(scope='module')
def written(tmp_path_factory):
    """Each byte-identical case written by ffcvx with the sidecar's writer arguments."""
    out = {}
    directory = tmp_path_factory.mktemp('golden_rewrite')
    for case in BYTE_IDENTICAL_CASES:
        sidecar, fields, samples = load_case(case)
        path = str(directory / f'{case}.beton')
        w = sidecar['writer']
        DatasetWriter(path, fields, page_size=w['page_size'], num_workers=w['num_workers'],
                      progress=False).from_indexed_dataset(ListDataset(samples),
                                                           chunksize=w['chunksize'])
        with open(path, 'rb') as f:
            mine = f.read()
        with open(os.path.join(GOLDEN, f'{case}.beton'), 'rb') as f:
            theirs = f.read()
        out[case] = (sidecar, mine, theirs)
    return out


@pytest.mark.parametrize('case', BYTE_IDENTICAL_CASES)
def test_header_descriptors_metadata_identical(written, case):
    sidecar, mine, theirs = written[case]
    num_fields = sidecar['header']['num_fields']
    layout = sidecar['layout']
    # FMT-010 header (incl. alloc_table_ptr), FMT-020 descriptors
    assert mine[:HeaderType.itemsize] == theirs[:HeaderType.itemsize]
    desc_end = HeaderType.itemsize + FieldDescType.itemsize * num_fields
    assert mine[HeaderType.itemsize:desc_end] == theirs[HeaderType.itemsize:desc_end]
    # FMT-030 / FMT-031 metadata table
    start = metadata_offset(num_fields)
    assert start == layout['metadata_offset']
    end = start + sidecar['header']['num_samples'] * layout['metadata_itemsize']
    assert mine[start:end] == theirs[start:end]


@pytest.mark.parametrize('case', BYTE_IDENTICAL_CASES)
def test_layout_offsets_match(written, case):
    sidecar, mine, _ = written[case]
    layout = sidecar['layout']
    header = np.frombuffer(mine[:24], dtype=HeaderType)[0]
    assert int(header['alloc_table_ptr']) == layout['alloc_table_ptr']
    assert len(mine) == layout['file_size'] == sidecar['file']['size']
    table = np.frombuffer(mine[layout['alloc_table_ptr']:], dtype='<u8').reshape(-1, 3)
    assert table.shape[0] == layout['alloc_table_entries']
    # FMT-050: same records in the same order as FFCV's single writer process
    assert table.tolist() == sidecar['alloc_table']
    if layout['pages_written']:
        assert layout['data_region_start'] + layout['pages_written'] * sidecar['header']['page_size'] \
            == layout['alloc_table_ptr']


@pytest.mark.parametrize('case', BYTE_IDENTICAL_CASES)
def test_whole_file_byte_identical(written, case):
    sidecar, mine, theirs = written[case]
    assert mine == theirs
    assert hashlib.sha256(mine).hexdigest() == sidecar['file']['sha256']


def test_metadata_only_file_identical_with_two_workers(tmp_path):
    """ints_floats was written by FFCV with 2 processes; so is this one (FMT-030)."""
    sidecar, fields, samples = load_case('ints_floats')
    path = tmp_path / 'ints_floats.beton'
    DatasetWriter(path, fields, page_size=1 << 21, num_workers=2,
                  progress=False).from_indexed_dataset(ListDataset(samples), chunksize=5)
    with open(os.path.join(GOLDEN, 'ints_floats.beton'), 'rb') as f:
        assert path.read_bytes() == f.read()


@pytest.mark.parametrize('case', ['rgb_jpg', 'rgb_smart'])
def test_shrink_rule_matches_ffcv(case):
    """Stored sizes follow FFCV's truncating max_resolution rule for every golden input size."""
    with open(os.path.join(GOLDEN, f'{case}.json')) as f:
        sidecar = json.load(f)
    max_res = sidecar['writer']['fields'][0]['args']['max_resolution']
    entry = sidecar['samples']['image']
    shapes = sidecar['input_provenance']['input_shapes']
    shrunk = 0
    for (h, w, _), height, width in zip(shapes, entry['heights'], entry['widths']):
        out = shrink_to(np.zeros((h, w, 3), dtype=np.uint8), max_res)
        assert out.shape[:2] == (height, width), ((h, w), (height, width))
        shrunk += (h, w) != (height, width)
    assert shrunk > 0


def test_smart_mode_choices_match_ffcv(tmp_path):
    """For the stored sizes of rgb_smart, ffcvx picks raw/jpg exactly as FFCV did."""
    with open(os.path.join(GOLDEN, 'rgb_smart.json')) as f:
        sidecar = json.load(f)
    args = sidecar['writer']['fields'][0]['args']
    entry = sidecar['samples']['image']
    rng = np.random.default_rng(5)
    samples = [(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), 0)
               for h, w in zip(entry['heights'], entry['widths'])]
    field = RGBImageField(write_mode='smart', smart_threshold=args['smart_threshold'],
                          jpeg_quality=args['jpeg_quality'], max_resolution=args['max_resolution'])
    path = tmp_path / 'smart.beton'
    DatasetWriter(path, {'image': field, 'label': IntField()}, page_size=1 << 22, num_workers=1,
                  progress=False).from_indexed_dataset(ListDataset(samples))
    from ffcvx.reader import Reader
    reader = Reader(path)
    assert reader.metadata['f0']['mode'].tolist() == entry['mode_ids']
