"""The format's dtypes (ffcvx/types.py, ffcvx/fields) against the byte tables of spec/beton.md.

The expected offsets, sizes and dtypes are parsed out of the spec itself, so the
spec and the code cannot drift apart without a failure here.
"""
import re
from pathlib import Path

import numpy as np
import pytest

from ffcvx import types
from ffcvx.fields import (TYPE_ID_HANDLER, BytesField, FloatField, IntField, JSONField,
                          NDArrayField, RGBImageField, TorchTensorField, type_id_of)
from ffcvx.fields.bytes import BytesMetadataType
from ffcvx.fields.ndarray import NDArrayArgsType
from ffcvx.fields.rgb_image import IMAGE_MODES, RGBMetadataType

SPEC = Path(__file__).resolve().parents[2] / 'spec' / 'beton.md'


def spec_table(clause):
    """Rows (dicts keyed by header) of the first table after the paragraph of ``clause``."""
    lines = SPEC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f'**{clause}**'))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith('|'):
            rows.append([cell.strip().strip('`') for cell in line.strip().strip('|').split('|')])
        elif rows:
            break
    header, _, *body = rows
    return [dict(zip(header, row)) for row in body]


def layout_rows(clause):
    """(name, offset, size, dtype) of a byte-layout table, numbers as ints."""
    return [(r['name'], int(r['offset']), int(r['size']), r['dtype']) for r in spec_table(clause)]


def member_layout(dtype):
    """(name, offset, size, dtype string) of each member of a struct dtype."""
    out = []
    for name in dtype.names:
        sub, offset = dtype.fields[name][:2]
        if sub.subdtype is not None:
            base, shape = sub.subdtype
            text = f'{base.str.replace("|", "")}[{shape[0]}]'
        else:
            text = sub.str.replace('|', '')
        out.append((name, offset, sub.itemsize, text))
    return out


@pytest.mark.parametrize('clause, dtype', [
    ('FMT-010', types.HeaderType),
    ('FMT-020', types.FieldDescType),
    ('FMT-033', BytesMetadataType),
    ('FMT-036', RGBMetadataType),
    ('FMT-050', types.ALLOC_TABLE_TYPE),
])
def test_struct_matches_spec_table(clause, dtype):
    """Header (FMT-010), descriptor (FMT-020), Bytes (FMT-033), RGB (FMT-036) and allocation
    record (FMT-050) dtypes have exactly the members, offsets, sizes and dtypes of the spec."""
    assert member_layout(dtype) == layout_rows(clause)
    last = layout_rows(clause)[-1]
    assert dtype.itemsize == last[1] + last[2]


def test_array_arguments_match_spec_table():
    """FMT-023: the fixed part of array arguments is 32 `<u8` dims, then `<u8` type_length at 256."""
    table = spec_table('FMT-023')
    assert (table[0]['offset'], table[0]['size'], table[0]['dtype']) == ('0', '256', '<u8[32]')
    assert (table[1]['offset'], table[1]['size'], table[1]['dtype']) == ('256', '8', '<u8')
    assert member_layout(NDArrayArgsType) == [('shape', 0, 256, '<u8[32]'),
                                              ('type_length', 256, 8, '<u8')]
    assert NDArrayArgsType.itemsize == int(table[2]['offset'])
    assert types.ARG_TYPE.itemsize == types.ARGUMENTS_LENGTH == 1024


def test_every_multibyte_member_is_little_endian():
    """FMT-001: no on-disk dtype uses native or big-endian byte order."""
    for dtype in (types.HeaderType, types.FieldDescType, types.ALLOC_TABLE_TYPE,
                  BytesMetadataType, RGBMetadataType, NDArrayArgsType):
        for name in dtype.names:
            base = dtype.fields[name][0].base
            assert base.itemsize == 1 or base.str.startswith('<'), (dtype, name)
    for field in (IntField(), FloatField(), NDArrayField('<f4', (2,))):
        assert field.metadata_type.str.startswith('<')


def test_packed_records_have_alignment_one():
    """FMT-031 rule 3: the RGB and Bytes/JSON records are packed (alignment 1)."""
    assert RGBMetadataType.alignment == 1 and RGBMetadataType.itemsize == 13
    assert BytesMetadataType.alignment == 1 and BytesMetadataType.itemsize == 16
    assert JSONField().metadata_type == BytesMetadataType


def test_scalar_metadata_types():
    """FMT-032 and FMT-034: Float `<f8`, Int `<i8`, arrays a `<u8` pointer."""
    assert FloatField().metadata_type == np.dtype('<f8')
    assert IntField().metadata_type == np.dtype('<i8')
    assert NDArrayField(np.int16, (3, 2)).metadata_type == np.dtype('<u8')


FIELD_BY_NAME = {
    'Int': IntField, 'Float': FloatField, 'RGB': RGBImageField, 'Bytes': BytesField,
    'JSON': JSONField, 'NDArray': lambda: NDArrayField('<f4', (3, 4)),
}


def record_layout_rows():
    rows = spec_table('FMT-031')
    return [pytest.param([FIELD_BY_NAME[n.strip()]() for n in r['fields, in order'].split(',')],
                         [int(x) for x in r['member offsets'].split(',')], int(r['R']),
                         id=r['fields, in order'].replace(' ', ''))
            for r in rows]


@pytest.mark.parametrize('fields, offsets, itemsize', record_layout_rows())
def test_metadata_record_layouts(fields, offsets, itemsize):
    """FMT-031: `get_metadata_type` gives the member offsets and record sizes of the spec table
    (which are those of FFCV 1.0 under numpy 1.26 and 2.4, ffcv-format.md section 1.4)."""
    dtype = types.get_metadata_type(fields)
    assert dtype.names == tuple(f'f{i}' for i in range(len(fields)))
    assert [dtype.fields[n][1] for n in dtype.names] == offsets
    assert dtype.itemsize == itemsize


def test_record_table_has_the_reference_cases():
    """FMT-031: the spec's table covers the seven layouts listed in ffcv-format.md section 1.4."""
    names = {r['fields, in order'] for r in spec_table('FMT-031')}
    assert names == {'Int, Float', 'RGB, Int', 'Int, RGB', 'RGB, Bytes', 'RGB, RGB, Int', 'RGB',
                     'Int, Float, RGB, NDArray, Bytes, JSON'}


def test_metadata_offset_and_page_alignment():
    """FMT-030 and FMT-040: `M0 = 24 + 1041 F`; `align_up` to page multiples."""
    assert types.metadata_offset(2) == 2106 and types.metadata_offset(3) == 3147
    assert types.metadata_offset(6) == 6270
    assert types.align_to_page(6990, 1 << 23) == 1 << 23
    assert types.align_to_page(1 << 21, 1 << 21) == 1 << 21
    assert types.align_to_page(0, 4096) == 0
    assert types.align_to_page((1 << 21) + 1, 1 << 21) == 1 << 22


def test_page_size_constants():
    """FMT-013: writers use 2 MiB <= page size < 2^32; FFCV's default is 8 MiB."""
    assert types.MIN_PAGE_SIZE == 2 ** 21
    assert types.MAX_PAGE_SIZE == 2 ** 32
    assert types.DEFAULT_PAGE_SIZE == 2 ** 23
    assert types.CURRENT_VERSION == 2


def test_type_ids_match_spec_table():
    """FMT-022: the type-id table of the spec is TYPE_ID_HANDLER (FFCV's, 255 -> None);
    id 6 reads back as NDArray through the class's from_binary."""
    table = {int(r['type_id']): r['class'] for r in spec_table('FMT-022')}
    assert table.pop(255).startswith('custom')
    assert {tid: name for tid, name in table.items()} == {
        0: 'FloatField', 1: 'IntField', 2: 'RGBImageField', 3: 'BytesField',
        4: 'NDArrayField', 5: 'JSONField', 6: 'TorchTensorField'}
    assert TYPE_ID_HANDLER[255] is None and set(TYPE_ID_HANDLER) == set(table) | {255}
    for tid, name in table.items():
        assert TYPE_ID_HANDLER[tid].__name__ == name
    args = NDArrayField('<f4', (5,)).to_binary()
    assert type(TYPE_ID_HANDLER[6].from_binary(np.frombuffer(bytes(args), np.uint8))) is NDArrayField
    assert types.CUSTOM_TYPE_ID == 255


def test_writer_type_ids_exact_class_match():
    """FMT-022: ids go by exact class; a subclass of a built-in class gets 255."""
    import torch

    class MyBytes(BytesField):
        pass

    assert [type_id_of(f) for f in (FloatField(), IntField(), RGBImageField(), BytesField(),
                                    NDArrayField('<u1', (1,)), JSONField(),
                                    TorchTensorField(torch.float32, (2,)))] == list(range(7))
    assert type_id_of(MyBytes()) == 255


def test_image_modes():
    """FMT-036 / FMT-037: jpg = 0, raw = 1, png = 2 (ffcvx extension)."""
    assert IMAGE_MODES == {'jpg': 0, 'raw': 1, 'png': 2}


def test_array_arguments_round_trip():
    """FMT-023: `to_binary` writes shape, type_length and the descr JSON; `from_binary` reverses."""
    field = NDArrayField('<i2', (5, 1, 7))
    raw = np.frombuffer(field.to_binary().tobytes(), dtype=np.uint8)
    assert raw.size == 1024
    head = raw[:264].view(NDArrayArgsType)[0]
    assert list(head['shape'][:4]) == [5, 1, 7, 0]
    text = b'[["", "<i2"]]'
    assert int(head['type_length']) == len(text)
    assert raw[264:264 + len(text)].tobytes() == text
    assert not raw[264 + len(text):].any()
    back = NDArrayField.from_binary(raw)
    assert back.dtype == np.dtype('<i2') and back.shape == (5, 1, 7) and back.element_size == 70


def test_array_element_size_does_not_wrap():
    """FMT-023: the element size of a huge shape is exact (no int64 wrap-around to a small number)."""
    field = NDArrayField('<u1', (2 ** 32, 2 ** 32))
    assert field.element_size == 2 ** 64


def test_spec_lists_every_cited_clause():
    """Every clause the code cites in errors or docstrings is defined in the spec."""
    text = SPEC.read_text()
    defined = set(re.findall(r'\*\*(FMT-\d{3})\*\*', text))
    root = Path(__file__).resolve().parents[2] / 'ffcvx'
    cited = set()
    for path in list(root.rglob('*.py')) + list(root.rglob('*.pyx')):
        cited |= set(re.findall(r'FMT-\d{3}', path.read_text()))
    assert cited, 'no clause citations found in ffcvx/'
    assert cited <= defined, sorted(cited - defined)


BACKEND_SPEC = Path(__file__).resolve().parents[2] / 'spec' / 'backends.md'


def test_backend_spec_lists_every_cited_clause():
    """Every BKD clause cited in ffcvx/, backends/, tests/ or spec/ is defined in spec/backends.md,
    and the spec defines each clause once."""
    text = BACKEND_SPEC.read_text()
    defined_list = re.findall(r'^\*\*(BKD-\d{3})\*\*', text, flags=re.MULTILINE)
    assert defined_list, 'spec/backends.md defines no BKD clause'
    assert len(defined_list) == len(set(defined_list)), 'a BKD clause is defined twice'
    defined = set(defined_list)
    repo = Path(__file__).resolve().parents[2]
    cited = set()
    for folder in ('ffcvx', 'backends', 'tests', 'spec'):
        for pattern in ('*.py', '*.pyx', '*.md'):
            for path in (repo / folder).rglob(pattern):
                cited |= set(re.findall(r'BKD-\d{3}', path.read_text(errors='replace')))
    assert cited, 'no BKD clause citations found in ffcvx/, backends/ or tests/'
    assert cited <= defined, sorted(cited - defined)
