"""FFCV 1.0.2's format-layer API, behaviour for behaviour (issue 10).

Each test uses the API as FFCV's docs and tests do, with ``ffcv`` replaced by
``ffcvx``, and asserts what FFCV 1.0.2 gives (its ``ffcv/reader.py``,
``ffcv/types.py`` and ``ffcv/fields/*.py``; the golden sidecars record what
FFCV's own Reader and Loader returned). Where ffcvx differs on purpose, the
test says so.
"""
import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

from ffcvx import types
from ffcvx.errors import BetonFormatError
from ffcvx.fields import (BytesField, Field, FloatField, ImageField, IntField, JSONField,
                          NDArrayField, RGBImageField, TorchTensorField, GrayscaleImageField,
                          type_id_of)
from ffcvx.fields.base import zero_arguments
from ffcvx.reader import Reader
from ffcvx.types import FieldDescType
from ffcvx.writer import DatasetWriter

READER_SOURCE = Path(__file__).resolve().parents[2] / 'ffcvx' / 'reader.py'


@pytest.fixture
def golden(golden_dir, load_sidecar):
    """``golden(case) -> (Path, sidecar dict, npz)``."""
    def get(case):
        meta, npz = load_sidecar(case)
        return golden_dir / f'{case}.beton', meta, npz
    return get


# -- Reader: attributes and the four read_* methods --------------------------------------

@pytest.mark.parametrize('case', ['ints_floats', 'bytes_json', 'torch_tensor', 'rgb_jpg'])
def test_reader_attributes_on_golden_files(golden, case):
    path, meta, _ = golden(case)
    reader = Reader(str(path))
    assert reader.file_name == str(path)
    descriptors = reader.field_descriptors
    assert descriptors.dtype == FieldDescType and descriptors.shape == (len(meta['fields']),)
    assert not descriptors.flags.writeable
    assert descriptors['type_id'].tolist() == [f['type_id'] for f in meta['fields']]
    names = [bytes(n).split(b'\0')[0].decode('ascii') for n in descriptors['name']]
    assert names == reader.field_names == [f['name'] for f in meta['fields']]
    for key in ('version', 'num_fields', 'page_size', 'num_samples', 'alloc_table_ptr'):
        assert int(reader.header[key]) == meta['header'][key]
    assert (reader.num_samples, reader.num_fields, reader.page_size) == (
        meta['header']['num_samples'], meta['header']['num_fields'], meta['header']['page_size'])
    for array in (reader.metadata, reader.alloc_table):
        assert not array.flags.writeable
    assert reader.metadata.shape == (reader.num_samples,)


def test_init_calls_the_four_read_methods_in_order(golden):
    path, _, _ = golden('ints_floats')
    calls = []

    class Recording(Reader):
        def read_header(self):
            calls.append('read_header')
            super().read_header()

        def read_field_descriptors(self):
            calls.append('read_field_descriptors')
            super().read_field_descriptors()

        def read_metadata(self):
            calls.append('read_metadata')
            super().read_metadata()

        def read_allocation_table(self):
            calls.append('read_allocation_table')
            super().read_allocation_table()

    Recording(path)
    assert calls == ['read_header', 'read_field_descriptors', 'read_metadata',
                     'read_allocation_table']


# What each of FFCV's read_* methods sets (ffcv/reader.py, 1.0.2).
FFCV_SETS = {
    'read_header': ['num_samples', 'page_size', 'num_fields', 'header'],
    'read_field_descriptors': ['field_descriptors', 'field_names', 'handlers', 'metadata_type'],
    'read_metadata': ['metadata'],
    'read_allocation_table': ['alloc_table'],
}


@pytest.mark.parametrize('method', sorted(FFCV_SETS))
def test_each_read_method_sets_ffcvs_attributes(golden, method):
    path, _, _ = golden('multipage')
    reader = Reader(path)
    before = {name: getattr(reader, name) for name in FFCV_SETS[method]}
    for name in FFCV_SETS[method]:
        delattr(reader, name)
    getattr(reader, method)()
    for name, value in before.items():
        again = getattr(reader, name)
        if isinstance(value, np.ndarray):
            assert again is not value and np.array_equal(again, value)
        elif name == 'handlers':    # new instances of the same classes
            assert [(k, type(v)) for k, v in again.items()] == [(k, type(v)) for k, v in value.items()]
        else:
            assert again == value


def test_read_methods_re_read_the_file(golden_copy, patcher):
    """Calling a read_* method again reads that part of the file as it is now."""
    path = golden_copy('ints_floats')
    reader = Reader(path)
    first_label = int(reader.metadata['f0'][0])
    patcher.value(path, types.metadata_offset(2), '<i8', first_label + 1)
    reader.read_metadata()
    assert int(reader.metadata['f0'][0]) == first_label + 1
    patcher.bytes(path, 24 + 1, b'tag\0')            # rename field 0
    reader.read_field_descriptors()
    assert reader.field_names == ['tag', 'value'] and list(reader.handlers) == ['tag', 'value']
    patcher.value(path, 0, '<u2', 3)                 # version 3
    # FFCV: AssertionError('file format mismatch: code=2,file=3'); ffcvx: FMT-061
    with pytest.raises(BetonFormatError, match='version 3') as info:
        reader.read_header()
    assert info.value.clause == 'FMT-061'


def test_custom_handlers_override_builtin_classes(golden):
    """FFCV applies custom handlers by field name, also over built-in type ids."""
    path, meta, _ = golden('ints_floats')

    class FloatBits(FloatField):
        """The float64 column read as its raw bit patterns."""
        @property
        def metadata_type(self):
            return np.dtype('<u8')

        @staticmethod
        def from_binary(binary):
            return FloatBits()

    reader = Reader(path, custom_handlers={'value': FloatBits})
    assert type(reader.handlers['value']) is FloatBits and type(reader.handlers['label']) is IntField
    bits = ['%016x' % b for b in reader.metadata['f1'].tolist()]
    assert bits == meta['samples']['value']['bits']
    assert reader._custom_handlers == {'value': FloatBits}


# -- one table of type ids; type id 6 ------------------------------------------------------

def test_type_id_handler_is_ffcvs_table():
    assert dict(types.TYPE_ID_HANDLER) == {
        255: None, 0: FloatField, 1: IntField, 2: RGBImageField, 3: BytesField,
        4: NDArrayField, 5: JSONField, 6: TorchTensorField}
    assert [type_id_of(f) for f in (FloatField(), IntField(), RGBImageField(), BytesField(),
                                    NDArrayField(np.dtype('<f4'), (2,)), JSONField())] == list(range(6))
    assert type_id_of(GrayscaleImageField()) == 255
    assert not any(hasattr(cls, 'TYPE_ID') for cls in types.TYPE_ID_HANDLER.values() if cls)


def test_get_handlers_as_ffcv(golden):
    path, meta, _ = golden('torch_tensor')
    descriptors = Reader(path).field_descriptors
    handlers = types.get_handlers(descriptors)
    assert [type(h).__name__ for h in handlers] == [f['reader_handler'] for f in meta['fields']]


def test_golden_type_id_6_reads_back_as_ffcv_does(golden):
    """torch_tensor.beton: FFCV's Reader builds an NDArrayField; its Loader yields float32."""
    import torch
    from ffcvx.fields.decoders import NDArrayDecoder
    from ffcvx.loader import Loader, OrderOption
    path, meta, npz = golden('torch_tensor')
    reader = Reader(path)
    assert meta['fields'][0]['reader_handler'] == 'NDArrayField'
    assert type(reader.handlers['tensor']) is NDArrayField
    expected = npz['tensor']
    default = Loader(str(path), batch_size=20, num_workers=1, order=OrderOption.SEQUENTIAL)
    (tensor, index), = list(default)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    assert tensor.shape == (20, 5) and tensor.numpy().tobytes() == expected.tobytes()
    plain = Loader(str(path), batch_size=20, num_workers=1, order=OrderOption.SEQUENTIAL,
                   pipelines={'tensor': [NDArrayDecoder()]})
    (array, _), = list(plain)
    assert isinstance(array, np.ndarray) and array.dtype == np.float32
    assert array.tobytes() == expected.tobytes()


class DummyActivationsDataset:
    """FFCV's tests/test_array_field.py dataset: ``(index, tensor or array)``."""

    def __init__(self, n_samples, shape, is_ch=False):
        self.n_samples, self.shape, self.is_ch = n_samples, shape, is_ch

    def __len__(self):
        return self.n_samples

    def __getitem__(self, index):
        import torch as ch
        if index >= self.n_samples:
            raise IndexError()
        np.random.seed(index)
        to_return = np.random.randn(*self.shape).astype('<f4')
        if self.is_ch:
            to_return = ch.from_numpy(to_return)
        return index, to_return


def test_torch_tensor_field_round_trip_as_ffcvs_test(tmp_path):
    """FFCV's test_simple_activations_ch, smaller: id 6 on disk, NDArrayField on reading."""
    import torch as ch
    from ffcvx.loader import Loader
    name = str(tmp_path / 'activations.beton')
    dataset = DummyActivationsDataset(64, (16,), True)
    writer = DatasetWriter(name, {'index': IntField(),
                                  'activations': TorchTensorField(ch.float32, (16,))},
                           num_workers=1, progress=False)
    writer.from_indexed_dataset(dataset)
    reader = Reader(name)
    assert reader.field_descriptors['type_id'].tolist() == [1, 6]
    assert type(reader.handlers['activations']) is NDArrayField
    assert reader.handlers['activations'].dtype == np.dtype('<f4')
    loader = Loader(name, batch_size=3, num_workers=1)
    seen = 0
    for ixes, activations in loader:
        assert activations.dtype == ch.float32
        for ix, activation in zip(ixes, activations):
            assert np.all(dataset[int(ix)][1].numpy() == activation.numpy())
            seen += 1
    assert seen == 63   # drop_last=True, as in FFCV


# -- NDArrayField.encode -------------------------------------------------------------------

LINEAR_REGRESSION_WRITER = '''
from ffcvx.fields import NDArrayField, FloatField

class LinearRegressionDataset:
    def __getitem__(self, idx):
        return (X[idx], np.array(Y[idx]).astype('float32'))

    def __len__(self):
        return len(X)

writer = DatasetWriter('/tmp/linreg_data.beton', {
    'covariate': NDArrayField(shape=(D,), dtype=np.dtype('float32')),
    'label': NDArrayField(shape=(1,), dtype=np.dtype('float32')),
}, num_workers=16)

writer.from_indexed_dataset(LinearRegressionDataset())
'''


def test_linear_regression_docs_example_writes_0d_labels(tmp_path):
    """docs/ffcv_examples/linear_regression.rst's writer, unchanged but for the import
    (and the output path): each label is a 0-d float32 array for a shape (1,) field."""
    from ffcvx.fields.decoders import NDArrayDecoder
    from ffcvx.loader import Loader, OrderOption
    from ffcvx.transforms import Squeeze, ToTensor
    N, D = 300, 10
    # the data as examples/docs_examples/linear_regression.py makes it (float32)
    X = np.random.rand(N, D).astype('float32')
    W, b = np.random.rand(D).astype('float32'), np.random.rand()
    Y = X @ W + b + np.random.randn(N).astype('float32')
    assert np.array(Y[0]).astype('float32').shape == ()
    out = str(tmp_path / 'linreg_data.beton')
    code = LINEAR_REGRESSION_WRITER.replace("'/tmp/linreg_data.beton'", repr(out))
    exec(code, {'np': np, 'DatasetWriter': DatasetWriter, 'X': X, 'Y': Y, 'D': D})
    reader = Reader(out)
    assert reader.num_samples == N
    labels = np.stack([reader.read_sample_region(i, 'label').view('<f4') for i in range(N)])
    assert labels.reshape(-1).tobytes() == Y.astype('<f4').tobytes()
    loader = Loader(out, batch_size=N, num_workers=1, order=OrderOption.SEQUENTIAL,
                    pipelines={'covariate': [NDArrayDecoder(), ToTensor()],
                               'label': [NDArrayDecoder(), ToTensor(), Squeeze()]})
    (x_batch, y_batch), = list(loader)
    assert tuple(x_batch.shape) == (N, D) and tuple(y_batch.shape) == (N,)
    assert np.array_equal(x_batch.numpy(), X) and np.array_equal(y_batch.numpy(), Y)


def _encode(field, value):
    """Bytes ``field.encode`` stores for ``value``."""
    store = {}

    def malloc(size):
        store['data'] = np.zeros(size, np.uint8)
        return 4096, store['data']

    destination = np.zeros(1, dtype=field.metadata_type)
    field.encode(destination, value, malloc)
    return store['data'].tobytes()


def test_ndarray_encode_takes_what_ffcv_takes():
    """FFCV copies ``field.reshape(-1).view('<u1')``: only the element count matters."""
    f32 = NDArrayField(np.dtype('float32'), (1,))
    assert _encode(f32, np.array(2.5, 'float32')) == np.float32(2.5).tobytes()   # 0-d
    assert _encode(f32, np.float32(2.5)) == np.float32(2.5).tobytes()            # numpy scalar
    grid = np.arange(12, dtype='<i2').reshape(3, 4)
    assert _encode(NDArrayField(np.dtype('<i2'), (4, 3)), grid) == grid.tobytes()  # C order
    assert _encode(NDArrayField(np.dtype('<i2'), (12,)), grid.T) == grid.T.copy().tobytes()


def test_ndarray_encode_refuses_what_would_lose_data():
    f32 = NDArrayField(np.dtype('float32'), (2,))
    with pytest.raises(ValueError, match=r'expects 2 elements .*got shape \(3,\)'):
        _encode(f32, np.zeros(3, 'float32'))
    # FFCV broadcasts a 1-byte array over the whole region; ffcvx refuses it
    with pytest.raises(ValueError, match='2 elements'):
        _encode(NDArrayField(np.dtype('u1'), (2,)), np.uint8(7))
    # FFCV stores the bytes of another dtype of the same total size as they are
    # (int32 bits read back as float32); ffcvx converts values or refuses
    assert _encode(f32, np.array([1, 2], 'int32')) == np.array([1, 2], '<f4').tobytes()
    with pytest.raises(TypeError, match='dtype int16'):
        _encode(NDArrayField(np.dtype('int16'), (2,)), np.array([1.5, 2], 'float32'))
    with pytest.raises(ValueError, match='do not fit'):
        _encode(NDArrayField(np.dtype('int8'), (2,)), np.array([1, 300]))
    assert _encode(NDArrayField(np.dtype('<i4'), (2,)), np.array([1, -2], '>i4')) == \
        np.array([1, -2], '<i4').tobytes()


def test_bytes_encode_takes_bytes_and_refuses_other_dtypes():
    """FFCV assigns any array into its uint8 buffer, so floats are cast to bytes (data lost)."""
    assert _encode(BytesField(), b'\x00\xffab') == b'\x00\xffab'
    assert _encode(BytesField(), np.frombuffer(b'xyz', np.uint8)) == b'xyz'
    with pytest.raises(TypeError, match='1-D uint8 .*got float32'):
        _encode(BytesField(), np.array([0.5, 300.0, -1.0], 'float32'))
    with pytest.raises(TypeError, match='1-D uint8 .*shape \\(2, 2\\)'):
        _encode(BytesField(), np.zeros((2, 2), np.uint8))


def test_type_id_5_reads_back_as_json_field(tmp_path):
    """FFCV's table maps type 5 to BytesField; ffcvx builds JSONField, a BytesField subclass."""
    name = str(tmp_path / 'doc.beton')
    DatasetWriter(name, {'doc': JSONField(), 'raw': BytesField()}, num_workers=1,
                  progress=False).from_indexed_dataset([({'k': 1}, b'ab')])
    reader = Reader(name)
    assert type(reader.handlers['doc']) is JSONField
    assert type(reader.handlers['raw']) is BytesField
    assert isinstance(reader.handlers['doc'], BytesField)       # what FFCV code checks holds
    row = reader.read_sample_region(0, 'doc')
    assert reader.handlers['doc'].unpack(row) == {'k': 1}


# -- JSONField.unpack ----------------------------------------------------------------------

def test_json_unpack_batches_and_single_rows(tmp_path):
    """FFCV: "works both on an entire batch ... or a single sample and will simply return a dict"."""
    import torch
    from ffcvx.fields.bytes import BytesDecoder
    from ffcvx.fields.basics import IntDecoder
    from ffcvx.loader import Loader
    docs = [{'a': i, 'text': 'x' * (i * 7)} for i in range(6)]
    name = str(tmp_path / 'json.beton')
    DatasetWriter(name, {'index': IntField(), 'activations': JSONField()}, num_workers=1,
                  progress=False).from_indexed_dataset([(i, d) for i, d in enumerate(docs)])
    loader = Loader(name, batch_size=3, num_workers=1,
                    pipelines={'activations': [BytesDecoder()], 'index': [IntDecoder()]})
    ix = 0
    for _, json_encoded in loader:
        assert JSONField.unpack(json_encoded) == docs[ix:ix + 3]
        for row in json_encoded:
            assert JSONField.unpack(row) == docs[ix]            # the object, not a list
            assert JSONField.unpack(torch.from_numpy(row)) == docs[ix]
            ix += 1
    assert ix == 6


# -- constructors and signatures -----------------------------------------------------------

# FFCV 1.0.2's constructor signatures (name, default), ``inspect.Parameter.empty`` for none.
EMPTY = inspect.Parameter.empty
FFCV_SIGNATURES = {
    RGBImageField: [('write_mode', 'raw'), ('max_resolution', None), ('smart_threshold', None),
                    ('jpeg_quality', 90), ('compress_probability', 0.5)],
    NDArrayField: [('dtype', EMPTY), ('shape', EMPTY)],
    TorchTensorField: [('dtype', EMPTY), ('shape', EMPTY)],
    BytesField: [], JSONField: [], IntField: [], FloatField: [],
}


# ffcvx's additions: keyword-only, after FFCV's parameters, so FFCV's calls mean the same.
FFCVX_KEYWORDS = {RGBImageField: [('jpeg_passthrough', False)]}


@pytest.mark.parametrize('cls', list(FFCV_SIGNATURES), ids=lambda c: c.__name__)
def test_constructor_signatures(cls):
    params = list(inspect.signature(cls).parameters.values())
    ffcv = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    extra = [p for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert [(p.name, p.default) for p in ffcv] == FFCV_SIGNATURES[cls]
    assert [(p.name, p.default) for p in extra] == FFCVX_KEYWORDS.get(cls, [])
    for method in ('from_binary', 'to_binary', 'encode', 'get_decoder_class'):
        assert callable(getattr(cls, method))
    assert isinstance(inspect.getattr_static(cls, 'from_binary'), staticmethod)
    assert [p for p in inspect.signature(cls.encode).parameters] == [
        'self', 'destination', 'field', 'malloc']


def test_rgb_field_attributes_as_ffcv():
    field = RGBImageField(write_mode='proportion', max_resolution=256, smart_threshold=1000,
                          jpeg_quality=80.0, compress_probability=0.25)
    assert (field.write_mode, field.max_resolution, field.smart_threshold, field.jpeg_quality,
            field.proportion) == ('proportion', 256, 1000, 80, 0.25)
    assert type(field.jpeg_quality) is int and field.compress_probability == 0.25
    assert field.metadata_type.names == ('mode', 'width', 'height', 'data_ptr')
    assert field.metadata_type.itemsize == 13
    # ffcvx refuses at construction what FFCV would fail on (or ignore) later
    for bad in ({'write_mode': 'gif'}, {'jpeg_quality': 0}, {'compress_probability': 2}):
        with pytest.raises(ValueError):
            RGBImageField(**bad)


def test_image_fields_share_a_base_but_gray_is_not_rgb():
    assert issubclass(RGBImageField, ImageField) and issubclass(GrayscaleImageField, ImageField)
    assert not issubclass(GrayscaleImageField, RGBImageField)
    assert (RGBImageField.channels, GrayscaleImageField.channels) == (3, 1)
    assert GrayscaleImageField().metadata_type == RGBImageField().metadata_type


# -- the reader knows no field class -------------------------------------------------------

def test_reader_source_has_no_isinstance():
    """Record layouts and region lookups live in the fields, not in a switch in the reader."""
    tree = ast.parse(READER_SOURCE.read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id in ('isinstance', 'issubclass')]
    assert not calls, [ast.unparse(c) for c in calls]
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert not imported & {'RGBImageField', 'BytesField', 'NDArrayField', 'GrayscaleImageField'}


#: Record of TwoPartField: a payload split in two regions, size first (not Bytes's layout).
TwoPartType = np.dtype([('size_a', '<u4'), ('ptr_a', '<u8'), ('ptr_b', '<u8'), ('size_b', '<u4')])


class TwoPartField(Field):
    """A custom field with its own record layout, open-time check and region lookup.

    Stores ``bytes`` as two regions (first half, second half); ``data_regions``
    names the second half, ``check_metadata`` checks both pointers.
    """

    @property
    def metadata_type(self):
        return TwoPartType

    @staticmethod
    def from_binary(binary):
        return TwoPartField()

    def to_binary(self):
        return zero_arguments()

    def encode(self, destination, field, malloc):
        half = len(field) // 2
        for part, data in (('a', field[:half]), ('b', field[half:])):
            ptr, buffer = malloc(len(data))
            buffer[:] = np.frombuffer(data, np.uint8)
            destination[f'ptr_{part}'], destination[f'size_{part}'] = ptr, len(data)

    def check_metadata(self, column, regions):
        for part in 'ab':
            sizes = regions.size_at(column.values[f'ptr_{part}'])
            bad = np.flatnonzero(sizes != column.values[f'size_{part}'])
            if bad.size:
                raise BetonFormatError(f"part {part} of sample {bad[0]} has no region of its size",
                                       offset=column.offset_of(bad[0]), clause='FMT-080')

    def data_regions(self, values, regions):
        return values['ptr_b'].astype(np.uint64), values['size_b'].astype(np.int64)

    def get_decoder_class(self):
        raise NotImplementedError


def test_reader_handles_a_custom_layout_without_changes(make_beton, patcher):
    path, layout = make_beton([('n', IntField()), ('two', TwoPartField())],
                              [(1, b'abcdef'), (2, b'0123456789')])
    reader = Reader(path, custom_handlers={'two': TwoPartField})
    assert reader.read_sample_region(0, 'two').tobytes() == b'def'
    assert reader.read_sample_region(1, 'two').tobytes() == b'56789'
    with pytest.raises(TypeError, match='no data region'):
        reader.read_sample_region(0, 'n')
    # a wrong size in sample 1's record: the field's own check refuses the file
    size_b_at = (layout['metadata_start'] + layout['itemsize'] + layout['member_offsets'][1]
                 + TwoPartType.fields['size_b'][1])
    patcher.value(path, size_b_at, '<u4', 4)
    with pytest.raises(BetonFormatError, match='part b of sample 1') as info:
        Reader(path, custom_handlers={'two': TwoPartField})
    assert info.value.offset == layout['metadata_start'] + layout['itemsize'] + layout['member_offsets'][1]


def test_gray_fields_have_regions_too(tmp_path):
    """The shared image base gives GrayscaleImageField the RGB region lookup."""
    image = (np.arange(30, dtype=np.uint8) * 7).reshape(5, 6)
    name = str(tmp_path / 'gray.beton')
    DatasetWriter(name, {'image': GrayscaleImageField()}, num_workers=1,
                  progress=False).from_indexed_dataset([(image,)])
    assert Reader(name).read_sample_region(0, 'image').tobytes() == image.tobytes()
