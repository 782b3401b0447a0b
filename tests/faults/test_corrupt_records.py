"""Damaged allocation records and metadata are refused with the right clause (spec/beton.md).

As in tests/faults/test_corrupt.py: each test damages one record of a golden file (or
of a tiny file built in ``tmp_path``) and checks the ``BetonFormatError``:
clause, byte offset of the damaged value, message.
"""
import numpy as np
import pytest

from _corrupt import meta_at, record_at, rejects
from ffcvx.fields import BytesField, GrayscaleImageField, RGBImageField
from ffcvx.reader import Reader
from ffcvx.types import metadata_offset



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


@pytest.mark.parametrize('strategy', ['os', 'process'])
def test_free_zero_size_pointer_passes_the_strategy_checks(golden_copy, golden_reader, patcher,
                                                           strategy):
    """The file above is valid, so ffcvx.testing's region checks accept it too (they
    raised AssertionError before) and do not read the free pointer, like the decoder."""
    from ffcvx.memory_managers.select import select_strategy
    from ffcvx.testing.regions import RegionTable, epoch_batches, make_gather, serve_epoch
    reader = golden_reader('bytes_json')
    path = golden_copy('bytes_json')
    patcher.value(path, meta_at(reader, 11, 'payload', 0), '<u8', 12345)
    damaged = Reader(path)
    table = RegionTable(damaged)
    k = table.fields.index('payload')
    assert not table.referenced[11, k] and table.referenced.sum() == table.count - 1
    manager = select_strategy(damaged, cache=strategy)
    try:
        read = manager.compile_reader()
        problems, served = serve_epoch(manager, read, make_gather(read), table,
                                       epoch_batches(damaged, 'RANDOM', 5, seed=1, epoch=0),
                                       keep=True)
    finally:
        manager.close()
    assert problems == []
    assert served['lengths'][11][k] == 0
    assert table.digest(served['lengths'], served['data']) == table.digest()


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

