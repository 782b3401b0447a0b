"""Corrupt files are refused with the right clause (spec/beton.md, "What a reader must reject").

Each test damages a copy of a golden file (or a tiny file built in ``tmp_path``)
in one way and checks that :class:`ffcvx.reader.Reader` raises
``BetonFormatError`` citing that rejection's clause, with the byte offset of
the damaged value.
"""
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ffcvx.errors import BetonFormatError
from ffcvx.fields import BytesField, GrayscaleImageField, IntField, NDArrayField, RGBImageField
from ffcvx.reader import Reader
from ffcvx.types import ALLOC_TABLE_TYPE, metadata_offset

SPEC = Path(__file__).resolve().parents[1] / 'spec' / 'beton.md'

HEADER_VERSION, HEADER_FIELDS, HEADER_PAGE, HEADER_SAMPLES, HEADER_ALLOC = 0, 2, 4, 8, 16
DESC_SIZE, DESC_NAME, DESC_ARGS = 1041, 1, 17
REC = ALLOC_TABLE_TYPE.itemsize


def rejects(path, clause, offset='any', match=None, **kwargs):
    """Open ``path`` and check the BetonFormatError: clause, offset, message."""
    with pytest.raises(BetonFormatError) as info:
        Reader(path, **kwargs)
    error = info.value
    assert error.clause == clause, str(error)
    assert f'[{clause}]' in str(error)
    if offset != 'any':
        assert error.offset == offset, str(error)
        assert f'at byte offset {offset}' in str(error)
    if match is not None:
        assert re.search(match, str(error)), str(error)
    return error


def desc_at(index):
    return 24 + DESC_SIZE * index


def record_at(reader, index):
    return int(reader.header['alloc_table_ptr']) + REC * index


def meta_at(reader, sample, field, member=0):
    index = reader.field_names.index(field)
    return (metadata_offset(reader.num_fields) + sample * reader.metadata_type.itemsize
            + reader.metadata_type.fields[f'f{index}'][1] + member)


@pytest.fixture
def golden_reader(golden_dir):
    """``golden_reader(case)``: a Reader of the untouched golden file (for offsets)."""
    return lambda case: Reader(golden_dir / f'{case}.beton')


# -- header -------------------------------------------------------------------------------

@pytest.mark.parametrize('size', [0, 1, 23])
def test_fmt060_shorter_than_header(tmp_path, golden_dir, size):
    """FMT-060: fewer than 24 bytes."""
    path = tmp_path / 'short.beton'
    path.write_bytes((golden_dir / 'ints_floats.beton').read_bytes()[:size])
    rejects(path, 'FMT-060', offset=size)


@pytest.mark.parametrize('version', [0, 1, 3, 0xFFFF])
def test_fmt061_version(golden_copy, patcher, version):
    """FMT-061: version other than 2."""
    path = golden_copy('ints_floats')
    patcher.value(path, HEADER_VERSION, '<u2', version)
    rejects(path, 'FMT-061', offset=HEADER_VERSION, match=f'version {version}')


@pytest.mark.parametrize('page_size', [0, 3, (1 << 21) + 1, 3 << 20, 0xFFFFFFFF])
def test_fmt062_page_size(golden_copy, patcher, page_size):
    """FMT-062: page size 0 or not a power of two."""
    path = golden_copy('ints_floats')
    patcher.value(path, HEADER_PAGE, '<u4', page_size)
    rejects(path, 'FMT-062', offset=HEADER_PAGE)


def test_fmt063_no_fields(golden_copy, patcher):
    """FMT-063: num_fields 0."""
    path = golden_copy('ints_floats')
    patcher.value(path, HEADER_FIELDS, '<u2', 0)
    rejects(path, 'FMT-063', offset=HEADER_FIELDS)


# -- descriptors --------------------------------------------------------------------------

@pytest.mark.parametrize('num_fields', [4, 0xFFFF])
def test_fmt064_descriptors_past_eof(golden_copy, patcher, num_fields):
    """FMT-064: more field descriptors than the file can hold (3706-byte file)."""
    path = golden_copy('ints_floats')
    patcher.value(path, HEADER_FIELDS, '<u2', num_fields)
    rejects(path, 'FMT-064', offset=path.stat().st_size)


def test_fmt064_truncated_inside_descriptors(golden_copy):
    """FMT-064: the file ends inside the second descriptor."""
    path = golden_copy('ints_floats')
    os.truncate(path, desc_at(1) + 500)
    rejects(path, 'FMT-064', offset=desc_at(1) + 500)


def test_fmt068_non_ascii_name(golden_copy, patcher):
    """FMT-068: a name byte above 0x7f."""
    path = golden_copy('ints_floats')
    patcher.bytes(path, desc_at(1) + DESC_NAME, b'v\xe4lue')
    rejects(path, 'FMT-068', offset=desc_at(1) + DESC_NAME, match='not ASCII')


def test_fmt068_duplicate_name(golden_copy, patcher):
    """FMT-068: two fields called the same (as FFCV makes of two long names with one prefix)."""
    path = golden_copy('ints_floats')
    patcher.bytes(path, desc_at(1) + DESC_NAME, b'label\0')
    rejects(path, 'FMT-068', offset=desc_at(1) + DESC_NAME, match="'label'")


def test_fmt066_custom_type_without_handler(golden_copy, patcher):
    """FMT-066: type id 255 and no class given; the message says how to pass one."""
    path = golden_copy('bytes_json')
    patcher.value(path, desc_at(1), 'u1', 255)
    rejects(path, 'FMT-066', offset=desc_at(1), match=r"custom_handlers=\{'meta'.*custom_fields")
    rejects(path, 'FMT-066', offset=desc_at(1), custom_handlers={'payload': BytesField})


@pytest.mark.parametrize('type_id', [7, 100, 254])
def test_fmt065_unknown_type_id(golden_copy, patcher, type_id):
    """FMT-065: type ids 7..254 are unassigned; the message lists the known ones."""
    path = golden_copy('ints_floats')
    patcher.value(path, desc_at(0), 'u1', type_id)
    error = rejects(path, 'FMT-065', offset=desc_at(0), match=f'unknown type id {type_id}')
    assert '4 (NDArrayField)' in str(error) and '255' in str(error)


def test_fmt065_bypassed_by_custom_handler(golden_copy, patcher):
    """FMT-022: a class given by the user is used whatever the stored type id."""
    path = golden_copy('ints_floats')
    patcher.value(path, desc_at(0), 'u1', 200)
    reader = Reader(path, custom_handlers={'label': IntField})
    assert isinstance(reader.handlers['label'], IntField)


def ndarray_args_cases():
    def descr(text):
        return lambda raw: raw.__setitem__(slice(256, 264 + len(text)),
                                           np.concatenate([np.array([len(text)], '<u8').view('u1'),
                                                           np.frombuffer(text, 'u1')]))

    def set_u8(at, value):
        return lambda raw: raw.__setitem__(slice(at, at + 8), np.array([value], '<u8').view('u1'))

    cases = [
        pytest.param(set_u8(256, 0), id='type_length-0'),
        pytest.param(set_u8(256, 761), id='type_length-too-long'),
        pytest.param(set_u8(256, 2 ** 63), id='type_length-huge'),
        pytest.param(descr(b'[["", "<f4"'), id='descr-not-json'),
        pytest.param(descr(b'[["", "|O"]]'), id='descr-object'),
        pytest.param(descr(b'[["", "<f4", [2]]]'), id='descr-subarray'),
        pytest.param(descr(b'[["a", "<f4"], ["b", "<i4"]]'), id='descr-struct'),
        pytest.param(descr(b'[["", "not-a-type"]]'), id='descr-bad-type'),
        pytest.param(descr(b'{"x": 1}'), id='descr-dict'),
        pytest.param(descr(b'[' * 700), id='descr-deep'),
        pytest.param(descr(b'[["", "|V0"]]'), id='descr-zero-size'),
    ]
    def zero_dim(raw):  # shape (0, 4): a zero dimension before a used one
        set_u8(0, 0)(raw)
        set_u8(8, 4)(raw)

    return [
        *cases,
        pytest.param(set_u8(0, 0), id='shape-empty'),
        pytest.param(zero_dim, id='shape-zero-dim'),
    ]


@pytest.mark.parametrize('damage', ndarray_args_cases())
def test_fmt067_bad_array_arguments(golden_copy, damage):
    """FMT-067: array-field arguments that break FMT-023."""
    path = golden_copy('ndarray')
    data = np.fromfile(path, dtype=np.uint8)
    at = desc_at(0) + DESC_ARGS
    arguments = data[at:at + 1024].copy()
    damage(arguments)
    data[at:at + 1024] = arguments
    data.tofile(path)
    rejects(path, 'FMT-067', offset=at, match="field 0 'f32'")


# -- metadata and table placement ---------------------------------------------------------

@pytest.mark.parametrize('num_samples', [101, 2 ** 40, 2 ** 64 - 1])
def test_fmt069_metadata_past_eof(golden_copy, patcher, num_samples):
    """FMT-069: num_samples records do not fit in the file."""
    path = golden_copy('ints_floats')
    patcher.value(path, HEADER_SAMPLES, '<u8', num_samples)
    rejects(path, 'FMT-069', offset=path.stat().st_size)


def test_fmt069_zero_size_record(golden_copy):
    """FMT-069: a record of 0 bytes (only possible with a custom class)."""
    class Nothing(IntField):
        metadata_type = np.dtype([])

        @staticmethod
        def from_binary(binary):
            return Nothing()

    path = golden_copy('ints_floats')
    with open(path, 'r+b') as f:
        f.seek(HEADER_FIELDS)
        f.write(np.array([1], '<u2').tobytes())
    rejects(path, 'FMT-069', offset=metadata_offset(1), custom_handlers={'label': Nothing})


@pytest.mark.parametrize('case', ['ints_floats', 'rgb_raw'])
def test_fmt071_alloc_table_past_eof(golden_copy, patcher, case):
    """FMT-071: alloc_table_ptr beyond the end of the file."""
    path = golden_copy(case)
    patcher.value(path, HEADER_ALLOC, '<u8', path.stat().st_size + REC)
    rejects(path, 'FMT-071', offset=HEADER_ALLOC)


@pytest.mark.parametrize('case, ptr', [('ints_floats', 0), ('ints_floats', 3705),
                                       ('rgb_raw', 0), ('rgb_raw', 2106)])
def test_fmt070_alloc_table_inside_metadata(golden_copy, patcher, case, ptr):
    """FMT-070: alloc_table_ptr before the end of the metadata (0 = a writer that died)."""
    path = golden_copy(case)
    patcher.value(path, HEADER_ALLOC, '<u8', ptr)
    rejects(path, 'FMT-070', offset=HEADER_ALLOC)


@pytest.mark.parametrize('extra', [1, 8, 23, 25])
def test_fmt072_table_not_whole_records(golden_copy, extra):
    """FMT-072: bytes after alloc_table_ptr not a multiple of 24 (junk appended)."""
    path = golden_copy('rgb_raw')
    with open(path, 'ab') as f:
        f.write(b'\1' * extra)
    rejects(path, 'FMT-072', offset=HEADER_ALLOC)


def test_fmt073_table_not_after_whole_pages(golden_copy, patcher):
    """FMT-073: the data region is not whole pages (table moved into page 1)."""
    path = golden_copy('rgb_raw')
    size = path.stat().st_size
    patcher.value(path, HEADER_ALLOC, '<u8', size - 24 * 1000)
    rejects(path, 'FMT-073', offset=HEADER_ALLOC)


def test_fmt073_padding_without_pages(golden_copy, patcher):
    """FMT-073: alloc_table_ptr strictly between the end of metadata and the first page."""
    path = golden_copy('ints_floats')
    size = path.stat().st_size
    with open(path, 'ab') as f:
        f.write(bytes(48))
    patcher.value(path, HEADER_ALLOC, '<u8', size + 24)  # one 24-byte record left
    rejects(path, 'FMT-073', offset=HEADER_ALLOC)


# -- allocation records -------------------------------------------------------------------

def test_fmt074_sample_id_out_of_range(golden_copy, golden_reader, patcher):
    """FMT-074: a record owned by sample N."""
    reader = golden_reader('multipage')
    path = golden_copy('multipage')
    patcher.value(path, record_at(reader, 7), '<u8', reader.num_samples)
    rejects(path, 'FMT-074', offset=record_at(reader, 7), match='allocation record 7')


@pytest.mark.parametrize('where', ['before-data', 'in-metadata', 'past-table', 'size-huge',
                                   'zero-size-past-table'])
def test_fmt075_region_outside_data(golden_copy, golden_reader, patcher, where):
    """FMT-075: a region outside the data region (or a zero-size one past the table)."""
    case = 'bytes_json' if where == 'zero-size-past-table' else 'ndarray'
    reader = golden_reader(case)
    index = 0 if case == 'bytes_json' else 4  # bytes_json record 0 is a zero-size payload
    assert (reader.alloc_table['size'][index] == 0) == (case == 'bytes_json')
    at = record_at(reader, index)
    start, table = reader.data_region_start, int(reader.header['alloc_table_ptr'])
    path = golden_copy(case)
    if where == 'before-data':
        patcher.value(path, at + 8, '<u8', start - 1)
    elif where == 'in-metadata':
        patcher.value(path, at + 8, '<u8', metadata_offset(3))
    elif where == 'past-table':
        patcher.value(path, at + 8, '<u8', table - 2)
    elif where == 'size-huge':
        patcher.value(path, at + 16, '<u8', 2 ** 64 - 1)
    else:
        patcher.value(path, at + 8, '<u8', table + 1)
    rejects(path, 'FMT-075', offset=at + 8, match=f'allocation record {index}')


def test_fmt075_allows_ffcv_zero_size_before_first_page(make_beton):
    """FMT-050: FFCV puts a 0-byte allocation made before any page at D0 - PS; that is valid."""
    path, layout = make_beton([('blob', BytesField())], [(b'',), (b'',)])
    assert layout['records'] == [(0, layout['data_start'] - 4096, 0),
                                 (1, layout['data_start'] - 4096, 0)]
    reader = Reader(path)
    assert reader.read_sample_region(1, 'blob').size == 0


def test_fmt076_region_crosses_page(golden_copy, golden_reader, patcher):
    """FMT-076: a region moved so that it straddles the end of page 1."""
    reader = golden_reader('multipage')
    index = 0
    at = record_at(reader, index)
    page_end = 2 * reader.page_size
    path = golden_copy('multipage')
    patcher.value(path, at + 8, '<u8', page_end - 10)
    rejects(path, 'FMT-076', offset=at + 8, match='crosses the boundary of page 1')


def test_fmt078_sample_split_over_pages(golden_copy, golden_reader, load_sidecar, patcher):
    """FMT-078: a sample's blob moved to another page (into bytes no region covers)."""
    reader = golden_reader('multipage')
    hole = load_sidecar('multipage')[0]['layout']['unreferenced_nonzero_regions'][0]
    table = reader.alloc_table
    sample = int(table['sample_id'][0])
    second = [i for i in range(len(table)) if table['sample_id'][i] == sample][1]
    assert int(table['size'][second]) <= hole['end'] - hole['start']
    # Record 0 is in page 2 (the second writer's page); the hole is at the end of page 1.
    assert int(table['ptr'][0]) >> 21 == 2 and hole['start'] >> 21 == 1
    path = golden_copy('multipage')
    patcher.value(path, record_at(reader, second) + 8, '<u8', hole['start'])
    rejects(path, 'FMT-078', offset=record_at(reader, second) + 8,
            match=f'sample {sample} has regions in page 2 and page 1')


@pytest.mark.parametrize('case', ['ndarray', 'multipage'])
def test_fmt077_overlapping_regions(golden_copy, golden_reader, patcher, case):
    """FMT-077: one record's region starts inside the region of another."""
    reader = golden_reader(case)
    table = reader.alloc_table
    order = np.argsort(table['ptr'])
    first, second = int(order[0]), int(order[1])
    assert table['size'][first] > 1
    path = golden_copy(case)
    patcher.value(path, record_at(reader, second) + 8, '<u8', int(table['ptr'][first]) + 1)
    # Both lowest regions are in the first page, so only the overlap rule is broken.
    assert int(table['ptr'][first]) >> 21 == int(table['ptr'][second]) >> 21
    rejects(path, 'FMT-077', offset=record_at(reader, second) + 8, match='overlap')


def test_fmt077_same_ptr_twice(make_beton):
    """FMT-077: two non-empty records at one ptr are an overlap, not a tie."""
    path, layout = make_beton([('blob', BytesField())], [(b'abcd',)])
    ptr = layout['records'][0][1]
    path2, _ = make_beton([('blob', BytesField())], [(b'abcd',)], name='dup.beton',
                          extra_records=[(0, ptr, 2)])
    Reader(path)
    rejects(path2, 'FMT-077', match='overlap')


# -- metadata pointers --------------------------------------------------------------------

@pytest.mark.parametrize('case, field, member', [
    ('ndarray', 'i64', 0), ('torch_tensor', 'tensor', 0), ('rgb_raw', 'image', 5),
    ('rgb_jpg', 'image', 5), ('bytes_json', 'payload', 0), ('bytes_json', 'meta', 0),
    ('multipage', 'blob', 0)])
def test_fmt079_pointer_not_a_region(golden_copy, golden_reader, patcher, case, field, member):
    """FMT-079: a metadata pointer moved one byte into its region."""
    reader = golden_reader(case)
    sample = 5
    at = meta_at(reader, sample, field, member)
    path = golden_copy(case)
    patcher.value(path, at, '<u8', patcher.read(path, at, '<u8') + 1)
    rejects(path, 'FMT-079', offset=at, match=f"sample {sample}, field '{field}'")


def test_fmt079_zero_size_payload_pointer_is_not_checked(golden_copy, golden_reader, patcher):
    """FMT-033: a Bytes record of size 0 references nothing, so its ptr is free."""
    reader = golden_reader('bytes_json')
    assert int(reader.metadata['f0']['size'][11]) == 0
    path = golden_copy('bytes_json')
    patcher.value(path, meta_at(reader, 11, 'payload', 0), '<u8', 12345)
    assert Reader(path).read_sample_region(11, 'payload').size == 0


def test_fmt080_array_region_size(golden_copy, golden_reader, patcher):
    """FMT-080: an array region one byte shorter than the element size."""
    reader = golden_reader('ndarray')
    index = int(np.flatnonzero(reader.alloc_table['size'] == 12 * 4)[3])
    path = golden_copy('ndarray')
    patcher.value(path, record_at(reader, index) + 16, '<u8', 47)
    sample = int(reader.alloc_table['sample_id'][index])
    rejects(path, 'FMT-080', offset=meta_at(reader, sample, 'f32'), match='needs exactly 48')


def test_fmt080_raw_image_size(golden_copy, golden_reader, patcher):
    """FMT-080: a raw image whose width no longer matches its region."""
    reader = golden_reader('rgb_raw')
    at = meta_at(reader, 9, 'image', 1)
    path = golden_copy('rgb_raw')
    patcher.value(path, at, '<u2', patcher.read(path, at, '<u2') + 1)
    rejects(path, 'FMT-080', offset=meta_at(reader, 9, 'image', 5), match='raw')


def test_fmt080_jpeg_empty_region(golden_copy, golden_reader, patcher):
    """FMT-080: a JPEG sample whose region is empty."""
    reader = golden_reader('rgb_jpg')
    index = int(np.flatnonzero(reader.alloc_table['sample_id'] == 4)[0])
    path = golden_copy('rgb_jpg')
    patcher.value(path, record_at(reader, index) + 16, '<u8', 0)
    rejects(path, 'FMT-080', offset=meta_at(reader, 4, 'image', 5), match='empty region')


def test_fmt080_bytes_longer_than_region(golden_copy, golden_reader, patcher):
    """FMT-080: Bytes metadata claiming more bytes than its region holds."""
    reader = golden_reader('bytes_json')
    at = meta_at(reader, 5, 'payload', 8)
    path = golden_copy('bytes_json')
    patcher.value(path, at, '<u8', patcher.read(path, at, '<u8') + 1)
    rejects(path, 'FMT-080', offset=at, match='holds only 100000')


@pytest.mark.parametrize('mode', [3, 255])
def test_fmt081_image_mode(golden_copy, golden_reader, patcher, mode):
    """FMT-081: image mode outside {0, 1, 2}."""
    reader = golden_reader('rgb_smart')
    at = meta_at(reader, 2, 'image', 0)
    path = golden_copy('rgb_smart')
    patcher.value(path, at, 'u1', mode)
    rejects(path, 'FMT-081', offset=at, match=f'mode {mode}')


@pytest.mark.parametrize('member', [1, 3])
def test_fmt082_image_zero_side(golden_copy, golden_reader, patcher, member):
    """FMT-082: width 0 or height 0."""
    reader = golden_reader('multipage')
    at = meta_at(reader, 30, 'image', member)
    path = golden_copy('multipage')
    patcher.value(path, at, '<u2', 0)
    rejects(path, 'FMT-082', offset=at, match='zero side')


def _blob_samples(reader):
    """Samples of golden ``multipage`` with a non-empty blob, and the page of each."""
    blob = reader.metadata['f2']
    return {s: int(blob['ptr'][s]) // reader.page_size for s in range(reader.num_samples)
            if int(blob['size'][s]) > 0}


def test_fmt088_pointer_into_another_samples_page(golden_copy, golden_reader, patcher):
    """FMT-088: sample A's blob record names sample B's region, in another page.

    Found by the fuzzer (issue 12): the file opened, and the ``process``
    strategy, which loads only the pages the allocation table gives sample A,
    served bytes of an unloaded slot instead of B's blob.
    """
    reader = golden_reader('multipage')
    pages = _blob_samples(reader)
    a = min(pages)
    b = next(s for s in sorted(pages, reverse=True) if pages[s] != pages[a])
    at = meta_at(reader, a, 'blob', 0)
    path = golden_copy('multipage')
    record = reader.metadata['f2'][b]
    patcher.value(path, at, '<u8', int(record['ptr']))
    patcher.value(path, at + 8, '<u8', int(record['size']))
    rejects(path, 'FMT-088', offset=at, match=f"sample {a}, field 'blob'.* region of sample {b}")


def test_fmt088_record_given_to_another_sample(golden_copy, golden_reader, patcher):
    """FMT-088: an allocation record's sample_id changed to a neighbour in the same page."""
    reader = golden_reader('multipage')
    pages = _blob_samples(reader)
    a = max(s for s in pages if s + 1 in pages and pages[s + 1] == pages[s])
    ptr = int(reader.metadata['f2']['ptr'][a])
    index = int(np.flatnonzero(reader.alloc_table['ptr'] == ptr)[0])
    path = golden_copy('multipage')
    patcher.value(path, record_at(reader, index), '<u8', a + 1)
    rejects(path, 'FMT-088', offset=meta_at(reader, a, 'blob', 0), match=f'sample {a + 1}')


def test_fmt067_element_size_too_large(golden_copy, patcher):
    """FMT-067 (FMT-089): an array shape of 2**62 elements, which raised OverflowError before."""
    path = golden_copy('ndarray')
    at = desc_at(0) + DESC_ARGS
    patcher.value(path, at, '<u8', 2 ** 62)
    rejects(path, 'FMT-067', offset=at, match='below 4294967296')


@pytest.fixture
def gray_file(make_beton):
    """``(path, reader)``: 4 samples of a raw and a PNG GrayscaleImageField (FMT-083)."""
    rng = np.random.default_rng(5)
    samples = [(rng.integers(0, 256, (5, 7), dtype=np.uint8),
                rng.integers(0, 256, (6, 4), dtype=np.uint8)) for _ in range(4)]
    path, _ = make_beton([('raw', GrayscaleImageField(write_mode='raw')),
                          ('png', GrayscaleImageField(write_mode='png'))], samples)
    return path, Reader(path)


@pytest.mark.parametrize('field, member, dtype, value, clause, pointer', [
    ('raw', 5, '<u8', 'ptr+1', 'FMT-079', True), ('png', 5, '<u8', 'ptr+1', 'FMT-079', True),
    ('raw', 1, '<u2', 8, 'FMT-080', True), ('raw', 0, 'u1', 2 ** 7, 'FMT-081', False),
    ('png', 3, '<u2', 0, 'FMT-082', False)])
def test_fmt079_gray_records_checked_at_open(gray_file, patcher, field, member, dtype, value,
                                             clause, pointer):
    """FMT-083: grayscale records are checked at open like RGB ones, raw regions h*w bytes.

    Found by the fuzzer (issue 12): a gray ``data_ptr`` naming no region
    opened, and the decoders read whatever lay there.
    """
    path, reader = gray_file
    at = meta_at(reader, 2, field, member)
    if value == 'ptr+1':
        value = patcher.read(path, at, dtype) + 1
    patcher.value(path, at, dtype, value)
    rejects(path, clause, offset=meta_at(reader, 2, field, 5) if pointer else at,
            match=f"sample 2, field '{field}'")


def test_gray_raw_region_is_height_times_width(gray_file):
    """FMT-083: the untouched gray file opens; raw regions are h*w bytes, not h*w*3."""
    _, reader = gray_file
    assert reader.read_sample_region(1, 'raw').size == 5 * 7


def test_png_mode_is_accepted(make_beton):
    """FMT-037: mode 2 (PNG) images are valid for ffcvx readers."""
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    path, _ = make_beton([('image', RGBImageField(write_mode='png'))], [(image,)])
    reader = Reader(path)
    assert int(reader.metadata['f0']['mode'][0]) == 2
    assert reader.read_sample_region(0, 'image')[:8].tobytes() == b'\x89PNG\r\n\x1a\n'


# -- coverage of the spec, truncation, fuzzing --------------------------------------------

def test_every_rejection_clause_has_a_test():
    """Each clause of the spec's rejection table is exercised by a test in this module."""
    table = SPEC.read_text().split('## 7. What a reader must reject')[1]
    clauses = set(re.findall(r'^\| \*\*(FMT-\d{3})\*\*', table, flags=re.M))
    assert len(clauses) >= 20
    tested = {name.split('_')[1].upper().replace('FMT', 'FMT-')
              for name in globals() if re.match(r'test_fmt\d{3}_', name)}
    assert clauses <= tested, sorted(clauses - tested)


@pytest.mark.parametrize('case', ['ints_floats', 'bytes_json', 'multipage', 'rgb_jpg', 'ndarray'])
def test_truncation_sweep(golden_dir, tmp_path, case):
    """FMT-060..FMT-079: a golden file cut at any of ~300 points is refused, never crashes."""
    source = golden_dir / f'{case}.beton'
    size = source.stat().st_size
    reader = Reader(source)
    table = int(reader.header['alloc_table_ptr'])
    meta_end = metadata_offset(reader.num_fields) + reader.num_samples * reader.metadata_type.itemsize
    cuts = set(range(0, 64)) | set(range(64, meta_end, max(1, meta_end // 120)))
    cuts |= {meta_end - 1, meta_end, reader.data_region_start, reader.data_region_start + 1,
             table - 1, table}
    cuts |= set(range(table, size, 24)) | set(range(table + 5, size, 24 * 7)) | {size - 1}
    cuts = sorted((c for c in cuts if 0 <= c < size), reverse=True)
    assert len(cuts) > 100
    path = tmp_path / f'{case}.beton'
    shutil.copyfile(source, path)
    os.chmod(path, 0o644)
    seen = set()
    for cut in cuts:  # shrink one copy step by step
        os.truncate(path, cut)
        with pytest.raises(BetonFormatError) as info:
            Reader(path)
        assert re.fullmatch(r'FMT-0[6-8]\d', info.value.clause), str(info.value)
        seen.add(info.value.clause)
    assert {'FMT-060', 'FMT-064'} <= seen


@pytest.mark.parametrize('case', ['bytes_json', 'multipage', 'rgb_smart', 'ndarray'])
def test_random_damage_never_crashes(golden_dir, tmp_path, case):
    """Random byte damage to the tables is either refused (BetonFormatError) or harmless:
    every region of the opened file can then be read and has the size the metadata implies."""
    source = golden_dir / f'{case}.beton'
    original = np.fromfile(source, dtype=np.uint8)
    reader = Reader(source)
    table = int(reader.header['alloc_table_ptr'])
    meta_end = metadata_offset(reader.num_fields) + reader.num_samples * reader.metadata_type.itemsize
    # Tables only: header + descriptors + metadata, and the allocation table.
    head = original[:meta_end].copy()
    tail = original[table:].copy()
    path = tmp_path / f'{case}.beton'
    shutil.copyfile(source, path)
    os.chmod(path, 0o644)
    rng = np.random.default_rng(1234)
    outcomes = {'refused': 0, 'opened': 0}
    for trial in range(120):
        damaged_head, damaged_tail = head.copy(), tail.copy()
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5 or tail.size == 0:
                part = damaged_head
            else:
                part = damaged_tail
            part[int(rng.integers(0, part.size))] ^= np.uint8(1 << int(rng.integers(0, 8)))
        with open(path, 'r+b') as f:
            f.write(damaged_head.tobytes())
            f.seek(table)
            f.write(damaged_tail.tobytes())
        try:
            opened = Reader(path)
        except BetonFormatError:
            outcomes['refused'] += 1
            continue
        outcomes['opened'] += 1
        for name, handler in opened.handlers.items():
            for sample in range(opened.num_samples):
                try:
                    data = opened.read_sample_region(sample, name)
                except TypeError:
                    break  # Int/Float: no region
                assert data.dtype == np.uint8 and data.ndim == 1
                if isinstance(handler, NDArrayField):
                    assert data.size == handler.element_size
    assert outcomes['refused'] > 0 and outcomes['opened'] > 0, outcomes
