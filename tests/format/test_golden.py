"""Every FFCV 1.0.2 golden file reads back exactly as its sidecar says (spec/beton.md).

Runs once per ``*.beton`` in ``shared/golden/ffcv-1.0.2``. Values are compared
the way the golden README prescribes: ints exactly, floats by bit pattern,
arrays and payloads byte for byte, JSON by stored text and by value, images by
the sha256 of the stored region, raw pixels exactly and JPEG pixels (decoded
here with Pillow, an ISLOW decoder) within the sidecar's suggested tolerance.
"""
import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image

import ffcvx.fields as fields
from ffcvx.reader import Reader
from ffcvx.types import metadata_offset


@pytest.fixture
def golden(golden_case, golden_dir, load_sidecar):
    """(Reader, sidecar dict, npz or None) for one golden case."""
    meta, npz = load_sidecar(golden_case)
    return Reader(golden_dir / meta['beton']), meta, npz


def sha256(data):
    return hashlib.sha256(bytes(data)).hexdigest()


def test_file_is_the_documented_one(golden_case, golden_dir, load_sidecar):
    """The file on disk is the one the sidecar describes (size and sha256)."""
    meta, _ = load_sidecar(golden_case)
    data = (golden_dir / meta['beton']).read_bytes()
    assert len(data) == meta['file']['size']
    assert sha256(data) == meta['file']['sha256']


def test_header(golden):
    """FMT-010: version, num_fields, page_size, num_samples as FFCV read them."""
    reader, meta, _ = golden
    expected = meta['header']
    assert int(reader.header['version']) == expected['version'] == 2
    assert reader.num_fields == expected['num_fields']
    assert reader.page_size == expected['page_size']
    assert reader.num_samples == expected['num_samples']
    assert reader.file_size == meta['file']['size']


def test_fields(golden):
    """FMT-020 to FMT-023: names, type ids, handler classes, array dtype/shape, arguments blob."""
    reader, meta, _ = golden
    assert reader.field_names == [f['name'] for f in meta['fields']]
    with open(reader.fname, 'rb') as f:
        raw = f.read(metadata_offset(reader.num_fields))
    for field in meta['fields']:
        handler = reader.handlers[field['name']]
        # FFCV builds BytesField for type 5, ffcvx its JSONField subclass; both satisfy this.
        assert isinstance(handler, getattr(fields, field['reader_handler']))
        at = 24 + 1041 * field['index']
        assert raw[at] == field['type_id']
        arguments = raw[at + 17:at + 17 + 1024].rstrip(b'\0')
        assert arguments.hex() == field['arguments_hex']
        if field['type_id'] in (4, 6):
            assert handler.dtype == np.dtype(field['dtype'])
            assert list(handler.shape) == field['shape']


def test_metadata_layout(golden):
    """FMT-030/FMT-031/FMT-040: metadata offset, record size, member offsets, data start."""
    reader, meta, _ = golden
    layout = meta['layout']
    mtype = reader.metadata_type
    assert metadata_offset(reader.num_fields) == layout['metadata_offset']
    assert mtype.itemsize == layout['metadata_itemsize']
    assert [mtype.fields[n][1] for n in mtype.names] == layout['metadata_member_offsets']
    assert reader.data_region_start == layout['data_region_start']
    assert len(reader.alloc_table) == layout['alloc_table_entries']
    assert reader.metadata.shape == (reader.num_samples,)


def test_alloc_table_and_regions(golden):
    """FMT-050: the table as FFCV wrote it; regions sorted, one per ptr, largest size on ties."""
    reader, meta, _ = golden
    expected = np.array(meta['alloc_table'], dtype=np.uint64).reshape(-1, 3)
    table = reader.alloc_table
    assert np.array_equal(table['sample_id'], expected[:, 0])
    assert np.array_equal(table['ptr'], expected[:, 1])
    assert np.array_equal(table['size'], expected[:, 2])
    best = {}
    for _, ptr, size in expected.tolist():
        best[ptr] = max(size, best.get(ptr, 0))
    assert reader.region_ptrs.tolist() == sorted(best)
    assert reader.region_sizes.tolist() == [best[p] for p in sorted(best)]
    for tie in meta['layout']['zero_size_allocation_ties']:
        index = int(np.searchsorted(reader.region_ptrs, tie['ptr']))
        assert reader.region_sizes[index] == tie['other_size'] > 0


def field_index(reader, name):
    return reader.field_names.index(name)


def check_int(reader, name, expected, npz):
    values = reader.metadata[f'f{field_index(reader, name)}']
    assert values.dtype == np.dtype(expected['dtype'])
    assert values.tolist() == expected['values']


def check_float(reader, name, expected, npz):
    values = reader.metadata[f'f{field_index(reader, name)}']
    assert values.dtype == np.dtype(expected['dtype'])
    bits = [f'{b:016x}' for b in values.view('<u8').tolist()]
    assert bits == expected['bits']


def check_ndarray(reader, name, expected, npz):
    handler = reader.handlers[name]
    ptrs = reader.metadata[f'f{field_index(reader, name)}']
    assert ptrs.tolist() == expected['ptrs']
    reference = npz[expected['npz_key']]
    assert reference.shape == (reader.num_samples, *expected['shape'])
    for i in range(reader.num_samples):
        stored = reader.read_sample_region(i, name)
        assert stored.size == handler.element_size
        assert sha256(stored) == expected['sha256'][i]
        assert stored.tobytes() == np.ascontiguousarray(reference[i]).tobytes()
        array = stored.view(handler.dtype).reshape(handler.shape)
        assert array.tobytes() == reference[i].astype(handler.dtype).tobytes()


def check_bytes(reader, name, expected, npz):
    records = reader.metadata[f'f{field_index(reader, name)}']
    assert records['ptr'].tolist() == expected['ptrs']
    assert records['size'].tolist() == expected['sizes']
    for i in range(reader.num_samples):
        stored = reader.read_sample_region(i, name)
        assert stored.size == expected['sizes'][i]
        assert sha256(stored) == expected['sha256'][i]
        if 'npz_key_prefix' in expected:
            assert stored.tobytes() == npz[expected['npz_key_prefix'] + str(i)].tobytes()


def check_json(reader, name, expected, npz):
    records = reader.metadata[f'f{field_index(reader, name)}']
    assert records['ptr'].tolist() == expected['ptrs']
    assert records['size'].tolist() == expected['sizes']
    for i in range(reader.num_samples):
        stored = reader.read_sample_region(i, name).tobytes()
        assert sha256(stored) == expected['sha256'][i]
        assert stored == expected['stored_text'][i].encode('utf-8') + b'\0'
        assert json.loads(stored[:-1].decode('utf-8')) == expected['values'][i]
        rows = np.frombuffer(stored, dtype=np.uint8)[None]
        assert fields.JSONField.unpack(rows) == [expected['values'][i]]


def check_rgb(reader, name, expected, npz):
    records = reader.metadata[f'f{field_index(reader, name)}']
    assert records['mode'].tolist() == expected['mode_ids']
    assert records['width'].tolist() == expected['widths']
    assert records['height'].tolist() == expected['heights']
    assert records['data_ptr'].tolist() == expected['data_ptrs']
    tolerance = expected['jpeg']['suggested_tolerance']['max_abs'] if 'jpeg' in expected else None
    for i in range(reader.num_samples):
        stored = reader.read_sample_region(i, name)
        height, width = expected['heights'][i], expected['widths'][i]
        assert stored.size == expected['stored_sizes'][i]
        assert sha256(stored) == expected['stored_sha256'][i]
        if expected['modes'][i] == 'raw':
            assert expected['exact'][i]
            pixels = stored.reshape(height, width, 3)
        else:
            assert expected['modes'][i] == 'jpg'
            with Image.open(io.BytesIO(stored.tobytes())) as image:
                assert image.format == 'JPEG'
                pixels = np.asarray(image.convert('RGB'))
            assert pixels.shape == (height, width, 3)
        if 'npz_key_prefix' in expected:
            reference = npz[expected['npz_key_prefix'] + str(i)]
            assert reference.shape == (height, width, 3)
            if expected['exact'][i]:
                assert np.array_equal(pixels, reference)
            else:
                diff = np.abs(pixels.astype(np.int16) - reference.astype(np.int16)).max()
                assert diff <= tolerance, f'sample {i}: max abs {diff} > {tolerance}'
        elif expected['exact'][i]:
            assert sha256(np.ascontiguousarray(pixels)) == expected['pixels_sha256'][i]


CHECKS = {'int': check_int, 'float': check_float, 'ndarray': check_ndarray, 'bytes': check_bytes,
          'json': check_json, 'rgb_image': check_rgb}


def test_sample_values(golden):
    """FMT-032 to FMT-036: every value of every sample equals the sidecar's."""
    reader, meta, npz = golden
    assert set(meta['samples']) == set(reader.field_names)
    for name, expected in meta['samples'].items():
        CHECKS[expected['kind']](reader, name, expected, npz)
