"""GrayscaleImageField files open without ``custom_fields`` (spec/beton.md FMT-087).

The reader recognises a type-255 field by the ffcvx marker at the start of its
``arguments`` (FMT-084) and uses the class of ``EXTENSION_MARKERS``; a class the
user gives still wins, and a type-255 field with no known marker (or a marker
whose class refuses the arguments) is still refused with FMT-066.
"""
import re
from pathlib import Path

import numpy as np
import pytest

from ffcvx.cli import main
from ffcvx.errors import BetonFormatError
from ffcvx.fields import (EXTENSION_MARKERS, BytesField, GrayscaleImageField, IntField,
                          RGBImageField, extension_field_class)
from ffcvx.fields.base import zero_arguments
from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.fields.rgb_image import GRAY_MAGIC
from ffcvx.loader import Loader
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

SPEC = Path(__file__).resolve().parents[2] / 'spec' / 'beton.md'
#: Offsets of field descriptor ``i`` and of its ``arguments`` (FMT-020).
DESC_AT = [24 + 1041 * i for i in range(3)]
ARGS = 17


class _Rows:
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, index):
        return self.rows[index]


def _images(n=6, h=9, w=11, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w), dtype=np.uint8) for _ in range(n)]


def _write_gray(path, images, write_mode='raw'):
    """``image`` (GrayscaleImageField), ``label`` (IntField)."""
    DatasetWriter(str(path), {'image': GrayscaleImageField(write_mode=write_mode),
                              'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(
        _Rows([(im, i) for i, im in enumerate(images)]))
    return str(path)


def _patch(path, offset, data):
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(data)


def _load(path, **kwargs):
    loader = Loader(path, batch_size=4, num_workers=1, drop_last=False,
                    pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]},
                    **kwargs)
    images = np.concatenate([x.copy() for x, _ in loader])
    return loader, images


class _MyGray(GrayscaleImageField):
    """A user class for the field: must be used instead of the marker's class."""

    @staticmethod
    def from_binary(binary):
        GrayscaleImageField.from_binary(binary)     # same marker check
        return _MyGray()


class _OtherCustom(BytesField):
    """A third party's custom field (type id 255) with its own arguments marker."""

    def __init__(self, marker=b'acme.Thing\0'):
        super().__init__()
        self.marker = marker

    @staticmethod
    def from_binary(binary):
        return _OtherCustom(bytes(binary[:16]))

    def to_binary(self):
        out = zero_arguments()
        out[0][:len(self.marker)] = np.frombuffer(self.marker, dtype=np.uint8)
        return out


# --- Reader and Loader without custom_fields -----------------------------------------------

@pytest.mark.parametrize('write_mode', ['raw', 'png'])
def test_reader_opens_gray_without_custom_handlers(tmp_path, write_mode):
    path = _write_gray(tmp_path / 'g.beton', _images(), write_mode)
    auto = Reader(path)
    assert type(auto.handlers['image']) is GrayscaleImageField
    assert type(auto.handlers['label']) is IntField
    given = Reader(path, custom_handlers={'image': GrayscaleImageField})
    assert auto.metadata_type == given.metadata_type
    assert np.array_equal(auto.metadata.view(np.uint8), given.metadata.view(np.uint8))
    assert 'image: GrayscaleImageField' in repr(auto)


def test_loader_reads_gray_without_custom_fields(tmp_path):
    images = _images(n=6)
    path = _write_gray(tmp_path / 'g.beton', images)
    loader, got = _load(path)
    assert type(loader.reader.handlers['image']) is GrayscaleImageField
    assert got.shape == (6, 9, 11, 1)
    assert np.array_equal(got[..., 0], np.stack(images))
    _, given = _load(path, custom_fields={'image': GrayscaleImageField})
    assert np.array_equal(got, given)


def test_gray_beside_rgb_and_unknown_custom_needs_only_the_unknown(tmp_path):
    """Recognition is per field: an unmarked custom field beside a gray one still needs its class."""
    path = str(tmp_path / 'mixed.beton')
    images = _images(n=3)
    DatasetWriter(path, {'gray': GrayscaleImageField(), 'rgb': RGBImageField(),
                         'other': _OtherCustom()}, num_workers=1, progress=False
                  ).from_indexed_dataset(
        _Rows([(im, np.repeat(im[..., None], 3, axis=2), b'x') for im in images]))
    with pytest.raises(BetonFormatError) as info:
        Reader(path)
    assert info.value.clause == 'FMT-066' and info.value.offset == DESC_AT[2]
    assert "'other'" in str(info.value)
    reader = Reader(path, custom_handlers={'other': _OtherCustom})
    assert type(reader.handlers['gray']) is GrayscaleImageField
    assert type(reader.handlers['rgb']) is RGBImageField
    assert reader.handlers['other'].marker == b'acme.Thing\0'.ljust(16, b'\0')


# --- explicit classes still win ------------------------------------------------------------

def test_explicit_custom_fields_still_win(tmp_path):
    images = _images(n=4)
    path = _write_gray(tmp_path / 'g.beton', images)
    assert type(Reader(path, custom_handlers={'image': _MyGray}).handlers['image']) is _MyGray
    loader, got = _load(path, custom_fields={'image': _MyGray})
    assert type(loader.reader.handlers['image']) is _MyGray
    assert np.array_equal(got[..., 0], np.stack(images))
    # a user class that refuses the field is not silently replaced by the marker's class
    with pytest.raises(ValueError, match='not-a-gray'):
        class _Refuses(GrayscaleImageField):
            @staticmethod
            def from_binary(binary):
                raise ValueError('not-a-gray')
        Reader(path, custom_handlers={'image': _Refuses})


# --- what is still refused -----------------------------------------------------------------

def test_unknown_custom_field_still_fmt066(tmp_path):
    path = str(tmp_path / 'o.beton')
    DatasetWriter(path, {'blob': _OtherCustom(), 'label': IntField()}, num_workers=1,
                  progress=False).from_indexed_dataset(_Rows([(b'ab', 0), (b'', 1)]))
    with pytest.raises(BetonFormatError) as info:
        Reader(path)
    error = info.value
    assert error.clause == 'FMT-066' and error.offset == DESC_AT[0]
    message = str(error)
    assert 'type id 255' in message and 'no ffcvx extension marker' in message
    assert re.search(r"custom_handlers=\{'blob': FieldClass\}.*custom_fields", message)
    with pytest.raises(BetonFormatError, match=r'\[FMT-066\]'):
        Loader(path, batch_size=1)
    assert isinstance(Reader(path, custom_handlers={'blob': _OtherCustom}).handlers['blob'],
                      _OtherCustom)


@pytest.mark.parametrize('arguments, why', [
    (b'ffcvx.GrayImag\0\0\1', 'no ffcvx extension marker'),       # one letter short
    (b'ffcvx.GrayImageX\1', 'no ffcvx extension marker'),         # no zero byte after the text
    (b'FFCVX.GRAYIMAGE\0\1', 'no ffcvx extension marker'),        # case matters
    (bytes(17), 'no ffcvx extension marker'),                     # all zero, as FMT-021
    (GRAY_MAGIC + b'\3', 'GrayscaleImageField refuses'),          # marker, 3 channels (FMT-084)
    (GRAY_MAGIC + b'\0', 'GrayscaleImageField refuses'),
])
def test_near_miss_markers_fmt066(tmp_path, arguments, why):
    path = _write_gray(tmp_path / 'g.beton', _images(n=2))
    _patch(path, DESC_AT[0] + ARGS, arguments)
    with pytest.raises(BetonFormatError, match=why) as info:
        Reader(path)
    assert info.value.clause == 'FMT-066' and info.value.offset == DESC_AT[0]
    assert 'custom_handlers=' in str(info.value)


def test_marker_on_another_type_id_is_ignored(tmp_path):
    """Only type id 255 is looked at: an RGB field (id 2) with marker bytes in its unused
    arguments (FMT-021) is still an RGB field."""
    path = str(tmp_path / 'rgb.beton')
    DatasetWriter(path, {'image': RGBImageField(), 'label': IntField()}, num_workers=1,
                  progress=False).from_indexed_dataset(
        _Rows([(np.zeros((4, 4, 3), np.uint8), 0)]))
    _patch(path, DESC_AT[0] + ARGS, GRAY_MAGIC + b'\1')
    assert type(Reader(path).handlers['image']) is RGBImageField


# --- the lookup and the spec -----------------------------------------------------------------

def test_extension_markers_match_spec_table():
    """FMT-087's table is EXTENSION_MARKERS, and the mapping cannot be changed at run time."""
    lines = SPEC.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('**FMT-087**'))
    rows = []
    for line in lines[start + 1:]:
        if line.startswith('|'):
            rows.append([c.strip().strip('`') for c in line.strip().strip('|').split('|')])
        elif rows:
            break
    table = {row[0].encode('ascii') + b'\0': row[1] for row in rows[2:]}
    assert table == {marker: cls.__name__ for marker, cls in EXTENSION_MARKERS.items()}
    for marker in EXTENSION_MARKERS:
        assert marker.startswith(b'ffcvx.') and marker.endswith(b'\0')
    with pytest.raises(TypeError):
        EXTENSION_MARKERS[b'x\0'] = IntField


def test_extension_field_class_lookup():
    args = GrayscaleImageField().to_binary()            # an ARG_TYPE void, as writers hold it
    assert extension_field_class(args) is GrayscaleImageField
    # ... and as the reader holds it: the descriptor's uint8 array
    assert extension_field_class(np.frombuffer(bytes(args), np.uint8)) is GrayscaleImageField
    assert extension_field_class(GRAY_MAGIC + b'\1' + bytes(1007)) is GrayscaleImageField
    assert extension_field_class(zero_arguments()) is None
    assert extension_field_class(b'ffcvx.GrayImage') is None      # no zero byte: not the marker


# --- ffcvx info ------------------------------------------------------------------------------

def test_info_on_gray_file(tmp_path, capsys):
    images = _images(n=5, h=12, w=10) + _images(n=2, h=7, w=10, seed=1)
    path = _write_gray(tmp_path / 'g.beton', images, write_mode='png')
    assert main(['info', path]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith('[0] image:'))
    assert lines[at].strip() == '[0] image: GrayscaleImageField (type id 255, ffcvx extension)'
    assert lines[at + 1].strip() == 'modes: png 7'
    assert lines[at + 2].strip() == 'width 10 px, height 7..12 px'
    assert lines[at + 3].strip().startswith('stored bytes per image ')
    assert '[1] label: IntField (type id 1)' in out


def test_info_on_unknown_custom_field_fails(tmp_path, capsys):
    path = str(tmp_path / 'o.beton')
    DatasetWriter(path, {'blob': _OtherCustom()}, num_workers=1,
                  progress=False).from_indexed_dataset(_Rows([(b'ab',)]))
    assert main(['info', path]) == 2
    err = capsys.readouterr().err
    assert '[FMT-066]' in err and 'no ffcvx extension marker' in err
