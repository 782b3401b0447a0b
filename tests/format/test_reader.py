"""The Reader's interface (DEVELOPERS.md "Reader", spec/beton.md): attributes, read-only tables,
``read_sample_region``, custom fields (type id 255), the region tie rule, speed at scale."""
import json
import os
import time

import numpy as np
import pytest

from ffcvx import types
from ffcvx._ext import beton
from ffcvx.errors import BetonFormatError
from ffcvx.fields import (BytesField, FloatField, IntField, JSONField, NDArrayField,
                          RGBImageField, TorchTensorField)
from ffcvx.fields.base import Field, zero_arguments
from ffcvx.reader import Reader


def test_attributes_of_multipage(golden_dir, load_sidecar):
    """FFCV's attribute names and types, plus ffcvx's; values from the multipage sidecar."""
    meta, _ = load_sidecar('multipage')
    reader = Reader(golden_dir / 'multipage.beton')
    assert reader.num_samples == 46 == meta['header']['num_samples']
    assert reader.num_fields == 3 and reader.page_size == 2 ** 21
    assert reader.header.dtype == types.HeaderType
    assert int(reader.header['alloc_table_ptr']) == meta['layout']['alloc_table_ptr']
    assert reader.field_names == ['image', 'label', 'blob']
    assert list(reader.handlers) == reader.field_names
    assert [type(h) for h in reader.handlers.values()] == [RGBImageField, IntField, BytesField]
    assert reader.metadata_type == types.get_metadata_type(list(reader.handlers.values()))
    assert reader.metadata.dtype == reader.metadata_type
    assert reader.alloc_table.dtype == types.ALLOC_TABLE_TYPE
    assert reader.file_size == meta['file']['size']
    assert reader.data_region_start == meta['layout']['data_region_start']
    assert reader.region_ptrs.dtype == np.uint64 and reader.region_sizes.dtype == np.uint64
    assert np.all(np.diff(reader.region_ptrs.astype(np.int64)) > 0)
    assert not meta['layout']['alloc_table_sorted_by_ptr']
    assert 'multipage.beton' in repr(reader) and '46 samples' in repr(reader)


def test_tables_are_read_only(golden_dir):
    """All arrays the Reader exposes refuse writes."""
    reader = Reader(golden_dir / 'bytes_json.beton')
    for array in (reader.metadata, reader.alloc_table, reader.region_ptrs, reader.region_sizes):
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[...] = 0
    with pytest.raises(ValueError):
        reader.metadata['f0']['size'][0] = 5
    with pytest.raises(ValueError):
        reader.read_sample_region(1, 'payload')[0] = 0


def test_read_sample_region_of_each_field_kind(make_beton):
    """read_sample_region returns the stored bytes: Bytes/JSON by metadata size, arrays by element
    size, images by region (FMT-033 to FMT-036)."""
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    array = np.array([[1.5, -2.0], [np.inf, 0.0]], dtype='<f8')
    fields = [('i', IntField()), ('f', FloatField()), ('img', RGBImageField()),
              ('arr', NDArrayField('<f8', (2, 2))), ('b', BytesField()), ('j', JSONField())]
    samples = [(7, 0.5, image, array, b'xyz', {'a': [1, 2]}),
               (-1, 2.5, image[::-1].copy(), array * 2, b'', 'text')]
    path, _ = make_beton(fields, samples)
    reader = Reader(path)
    assert reader.read_sample_region(0, 'img').tobytes() == image.tobytes()
    assert reader.read_sample_region(1, 'img').tobytes() == image[::-1].tobytes()
    assert reader.read_sample_region(0, 'arr').view('<f8').tolist() == array.ravel().tolist()
    assert reader.read_sample_region(0, 'b').tobytes() == b'xyz'
    empty = reader.read_sample_region(1, 'b')
    assert empty.dtype == np.uint8 and empty.shape == (0,)
    assert reader.read_sample_region(0, 'j').tobytes() == json.dumps({'a': [1, 2]}).encode() + b'\0'
    assert reader.read_sample_region(1, 'j').tobytes() == b'"text"\0'
    assert reader.metadata['f0'].tolist() == [7, -1]
    assert reader.metadata['f1'].tolist() == [0.5, 2.5]
    with pytest.raises(TypeError, match='no data region'):
        reader.read_sample_region(0, 'i')
    with pytest.raises(IndexError):
        reader.read_sample_region(2, 'b')
    with pytest.raises(IndexError):
        reader.read_sample_region(-1, 'b')
    with pytest.raises(KeyError):
        reader.read_sample_region(0, 'missing')


def test_torch_tensor_reads_back_as_ndarray(make_beton):
    """FMT-022: type id 6 is stored, and it reads back as a plain NDArrayField."""
    import torch
    path, _ = make_beton([('t', TorchTensorField(torch.int16, (3,)))],
                         [(torch.tensor([1, -2, 3], dtype=torch.int16),)])
    with open(path, 'rb') as f:
        assert f.read(25)[24] == 6
    reader = Reader(path)
    assert type(reader.handlers['t']) is NDArrayField
    assert reader.handlers['t'].dtype == np.dtype('<i2')
    assert reader.read_sample_region(0, 't').view('<i2').tolist() == [1, -2, 3]


def test_read_sample_region_detects_file_shrunk_after_open(make_beton):
    """A file cut after opening makes reads fail with FMT-060 instead of returning short data."""
    path, layout = make_beton([('b', BytesField())], [(b'hello',)])
    reader = Reader(path)
    os.truncate(path, layout['data_start'] + 2)
    with pytest.raises(BetonFormatError, match='FMT-060'):
        reader.read_sample_region(0, 'b')


class TaggedBytes(BytesField):
    """A BytesField subclass: not in the type map, so written with type id 255 (FMT-022)."""

    @staticmethod
    def from_binary(binary):
        field = TaggedBytes()
        field.tag = bytes(binary[:4])
        return field

    def to_binary(self):
        out = zero_arguments()
        out[0][:4] = np.frombuffer(b'TAG!', dtype=np.uint8)
        return out


class Int32Field(Field):
    """A custom field with its own 4-byte metadata and no data region."""

    @property
    def metadata_type(self):
        return np.dtype('<i4')

    @staticmethod
    def from_binary(binary):
        return Int32Field()

    def to_binary(self):
        return zero_arguments()

    def encode(self, destination, field, malloc):
        destination[0] = field

    def get_decoder_class(self):
        raise NotImplementedError


def test_custom_field_needs_handler_then_reads(make_beton):
    """FMT-022/FMT-066: type 255 fields need `custom_handlers`; then `from_binary` gets the
    1024 argument bytes and the field's metadata type shapes the record."""
    path, layout = make_beton([('small', Int32Field()), ('tagged', TaggedBytes()),
                               ('n', IntField())],
                              [(5, b'abc', 1), (-6, b'defg', 2)])
    with open(path, 'rb') as f:
        head = f.read(24 + 3 * 1041)
    assert head[24] == 255 and head[24 + 1041] == 255 and head[24 + 2 * 1041] == 1
    with pytest.raises(BetonFormatError, match='custom_handlers') as info:
        Reader(path)
    assert info.value.clause == 'FMT-066' and info.value.offset == 24
    reader = Reader(path, custom_handlers={'small': Int32Field, 'tagged': TaggedBytes})
    assert isinstance(reader.handlers['tagged'], TaggedBytes)
    assert reader.handlers['tagged'].tag == b'TAG!'
    assert reader.metadata_type.fields['f0'][0] == np.dtype('<i4')
    assert [reader.metadata_type.fields[f'f{i}'][1] for i in range(3)] == layout['member_offsets']
    assert reader.metadata['f0'].tolist() == [5, -6]
    assert reader.metadata['f2'].tolist() == [1, 2]
    assert reader.read_sample_region(1, 'tagged').tobytes() == b'defg'
    with pytest.raises(TypeError):
        reader.read_sample_region(0, 'small')


def test_custom_subclass_is_still_checked(make_beton, patcher):
    """A custom class that keeps the Bytes metadata type gets the Bytes pointer checks."""
    path, layout = make_beton([('tagged', TaggedBytes())], [(b'abc',)])
    patcher.value(path, layout['metadata_start'] + 8, '<u8', 4)
    with pytest.raises(BetonFormatError, match='FMT-080'):
        Reader(path, custom_handlers={'tagged': TaggedBytes})


@pytest.mark.parametrize('zero_first', [True, False])
def test_region_tie_keeps_largest_size(make_beton, patcher, zero_first):
    """FMT-050: a zero-size record sharing a ptr with a region never hides the region's size,
    whatever the table order."""
    fields = [('b', BytesField()), ('j', JSONField())]
    path, layout = make_beton(fields, [(b'', [1, 2, 3]), (b'q', None)])
    records = layout['records']
    assert records[0][1] == records[1][1] and records[0][2] == 0 < records[1][2]
    if not zero_first:  # reverse the table so that the zero-size record comes last
        table = np.fromfile(path, dtype=types.ALLOC_TABLE_TYPE, offset=layout['alloc_table_ptr'])
        assert table['size'][0] == 0
        patcher.bytes(path, layout['alloc_table_ptr'], table[::-1].tobytes())
    reader = Reader(path)
    index = int(np.searchsorted(reader.region_ptrs, records[1][1]))
    assert reader.region_ptrs[index] == records[1][1]
    assert reader.region_sizes[index] == records[1][2] == len(b'[1, 2, 3]\0')
    assert len(reader.region_ptrs) == len({r[1] for r in layout['records']})
    assert reader.read_sample_region(0, 'j').tobytes() == b'[1, 2, 3]\0'
    assert beton.region_size(reader.region_ptrs, reader.region_sizes, records[1][1]) == 10
    assert beton.region_size(reader.region_ptrs, reader.region_sizes, records[1][1] + 1) == -1


def test_empty_dataset_and_no_pages(make_beton):
    """FMT-012/FMT-040: zero samples, and files without pages, open cleanly."""
    path, layout = make_beton([('x', IntField())], [])
    reader = Reader(path)
    assert reader.num_samples == 0 and len(reader.alloc_table) == 0
    assert layout['alloc_table_ptr'] == reader.file_size == types.metadata_offset(1)
    path, _ = make_beton([('x', IntField()), ('y', FloatField())], [(1, 2.0)] * 3, name='s.beton')
    reader = Reader(path)
    assert len(reader.region_ptrs) == 0 and reader.metadata['f0'].tolist() == [1, 1, 1]


def test_table_after_padding_without_pages(make_beton, patcher):
    """FMT-040: `alloc_table_ptr = D0` with zero pages is accepted too."""
    path, layout = make_beton([('x', IntField())], [(1,), (2,)], page_size=4096)
    assert layout['alloc_table_ptr'] < layout['data_start']
    with open(path, 'ab') as f:
        f.write(bytes(layout['data_start'] - layout['alloc_table_ptr']))
    patcher.value(path, 16, '<u8', layout['data_start'])
    assert Reader(path).metadata['f0'].tolist() == [1, 2]


def test_samples_move_to_a_fresh_page(make_beton):
    """FMT-041: a sample that does not fit the rest of a page starts a new one; regions stay
    within pages, and samples keep one page each."""
    blobs = [bytes([i]) * 1500 for i in range(6)]
    path, layout = make_beton([('a', BytesField()), ('b', BytesField())],
                              [(x, x[:100]) for x in blobs], page_size=4096)
    reader = Reader(path)
    pages = {}
    for sid, ptr, size in layout['records']:
        assert ptr // 4096 == (ptr + size - 1) // 4096
        pages.setdefault(sid, set()).add(ptr // 4096)
    assert all(len(p) == 1 for p in pages.values()) and len(set().union(*pages.values())) == 3
    for i, blob in enumerate(blobs):
        assert reader.read_sample_region(i, 'a').tobytes() == blob
        assert reader.read_sample_region(i, 'b').tobytes() == blob[:100]


def test_opens_1_3_million_samples_quickly(tmp_path):
    """The checks run in the native core: 1.3M samples, 1.3M regions in a shuffled table open
    in well under the time a per-sample Python loop would need."""
    n, page = 1_300_000, 1 << 21
    handlers = [IntField(), BytesField()]
    mtype = types.get_metadata_type(handlers)
    m1 = types.metadata_offset(2) + n * mtype.itemsize
    d0 = types.align_to_page(m1, page)
    per_page = page // 8
    ptrs = d0 + (np.arange(n) // per_page) * page + (np.arange(n) % per_page) * 8
    pages = -(-n // per_page)
    meta = np.zeros(n, dtype=mtype)
    meta['f0'] = np.arange(n)
    meta['f1']['ptr'], meta['f1']['size'] = ptrs, 8
    order = np.random.default_rng(0).permutation(n)
    table = np.zeros(n, dtype=types.ALLOC_TABLE_TYPE)
    table['sample_id'], table['ptr'], table['size'] = order, ptrs[order], 8
    header = np.zeros(1, dtype=types.HeaderType)
    header[0] = (2, 2, page, n, d0 + pages * page)
    descs = np.zeros(2, dtype=types.FieldDescType)
    descs['type_id'] = [1, 3]
    descs['name'][:, 0] = [ord('a'), ord('b')]
    path = tmp_path / 'big.beton'
    with open(path, 'wb') as f:
        f.write(header.tobytes() + descs.tobytes() + meta.tobytes())
        f.truncate(d0 + pages * page)
        f.seek(d0 + pages * page)
        f.write(table.tobytes())
    start = time.perf_counter()
    reader = Reader(path)
    elapsed = time.perf_counter() - start
    assert reader.num_samples == n and len(reader.region_ptrs) == n
    assert np.array_equal(reader.region_ptrs, ptrs.astype(np.uint64))
    assert elapsed < 3.0, f'opening took {elapsed:.2f} s'
    # A defect far into the sorted table is still found.
    with open(path, 'r+b') as f:
        f.seek(d0 + pages * page + 24 * int(np.flatnonzero(order == n - 2)[0]) + 8)
        f.write(np.array([ptrs[n - 1]], '<u8').tobytes())
    with pytest.raises(BetonFormatError, match='FMT-077'):
        Reader(path)
