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

from _corrupt import (DESC_ARGS, DESC_NAME, HEADER_ALLOC, HEADER_FIELDS, HEADER_PAGE,
                      HEADER_SAMPLES, HEADER_VERSION, REC, SPEC, desc_at, rejects)
from ffcvx.errors import BetonFormatError
from ffcvx.fields import BytesField, IntField, NDArrayField
from ffcvx.reader import Reader
from ffcvx.types import metadata_offset



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



def test_fmt067_element_size_too_large(golden_copy, patcher):
    """FMT-067 (FMT-089): an array shape of 2**62 elements, which raised OverflowError before."""
    path = golden_copy('ndarray')
    at = desc_at(0) + DESC_ARGS
    patcher.value(path, at, '<u8', 2 ** 62)
    rejects(path, 'FMT-067', offset=at, match='below 4294967296')



# -- coverage of the spec, truncation, fuzzing --------------------------------------------

def test_every_rejection_clause_has_a_test():
    """Each clause of the spec's rejection table is exercised by a test here or in
    tests/faults/test_corrupt_records.py (a test named ``test_fmtNNN_...``)."""
    table = SPEC.read_text().split('## 7. What a reader must reject')[1]
    clauses = set(re.findall(r'^\| \*\*(FMT-\d{3})\*\*', table, flags=re.M))
    assert len(clauses) >= 20
    sources = [Path(__file__).read_text(),
               (Path(__file__).parent / 'test_corrupt_records.py').read_text()]
    tested = {f'FMT-{number}' for source in sources
              for number in re.findall(r'^def test_fmt(\d{3})_', source, flags=re.M)}
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
