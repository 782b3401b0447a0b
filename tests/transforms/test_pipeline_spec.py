"""The Operation calling convention of spec/pipeline.md: clauses cited, hooks declared, FFCV's plain calls.

The positions' checks (PIP-002, PIP-003, PIP-011) are in tests/transforms/test_pipeline_checks.py.
"""
import re
from pathlib import Path
from tempfile import NamedTemporaryFile

import numpy as np
import pytest
from torch.utils.data import Dataset

from ffcvx.fields import IntField, RGBImageField
from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.fields.decoders import SimpleRGBImageDecoder
from ffcvx.memory_managers import OSCacheManager
from ffcvx.pipeline.allocation_query import AllocationQuery
from ffcvx.pipeline.compiler import Compiler
from ffcvx.pipeline.operation import Decoder
from ffcvx.pipeline.step_code import StepCode
from ffcvx.reader import Reader
from ffcvx.transforms import RandomHorizontalFlip, ToTensor
from ffcvx.transforms.resized_crop import LabelRandomResizedCrop, RandomResizedCrop
from ffcvx.writer import DatasetWriter

REPO = Path(__file__).resolve().parents[2]
SPEC = REPO / 'spec' / 'pipeline.md'


def test_spec_lists_every_cited_clause():
    """Every PIP clause cited in ffcvx/, tests/ or spec/ is defined in spec/pipeline.md, once."""
    defined_list = re.findall(r'^\*\*(PIP-\d{3})\*\*', SPEC.read_text(), flags=re.MULTILINE)
    assert defined_list and len(defined_list) == len(set(defined_list))
    cited = set()
    for folder in ('ffcvx', 'tests', 'spec'):
        for pattern in ('*.py', '*.md'):
            for path in (REPO / folder).rglob(pattern):
                cited |= set(re.findall(r'PIP-\d{3}', path.read_text(errors='replace')))
    assert cited <= set(defined_list), sorted(cited - set(defined_list))


# -- FFCV 1.0's tests/test_image_read.py, as FFCV wrote it ----------------------------------


class DummyDataset(Dataset):

    def __init__(self, length):
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        if index >= self.length:
            raise IndexError
        np.random.seed(37 + index)
        image_data = np.random.randint(low=0, high=255, size=(128, 128, 3), dtype='uint8')
        return index, image_data


def create_and_validate(length, mode='raw', compile=True):
    dataset = DummyDataset(length)
    with NamedTemporaryFile() as handle:
        name = handle.name
        writer = DatasetWriter(name, {
            'index': IntField(),
            'value': RGBImageField(write_mode=mode)
        }, num_workers=2)
        writer.from_indexed_dataset(dataset, chunksize=5)
        reader = Reader(name)
        manager = OSCacheManager(reader)
        context = manager.schedule_epoch(np.array([0, 1]))
        Compiler.set_enabled(compile)
        with context:
            Decoder = RGBImageField().get_decoder_class()
            decoder = Decoder()
            decoder.accept_globals(reader.metadata['f1'], manager.compile_reader())
        decode = Compiler.compile(decoder.generate_code())
        assert len(reader.metadata) == length
        buff = np.zeros((1, 128, 128, 3), dtype='uint8')
        for i in range(length):
            result = decode(np.array([i]), buff, reader.metadata['f1'], context.state)[0]
            _, ref_image = dataset[i]
            assert result.shape == ref_image.shape
            if mode == 'jpg':
                dist = np.abs(ref_image.astype('float') - result.astype('float'))
                assert dist.mean() < 80
            else:
                assert np.all(ref_image == result)
        manager.close()


@pytest.mark.parametrize('compile', [True, False], ids=['compiled', 'python'])
@pytest.mark.parametrize('mode,length', [('raw', 40), ('jpg', 20)])
def test_ffcv_image_read_pattern(mode, length, compile):
    """PIP-013: an image decoder's code called with FFCV's four arguments decodes the image."""
    before = Compiler.is_enabled
    try:
        create_and_validate(length, mode, compile)
    finally:
        Compiler.set_enabled(before)


# -- hooks, code, roles ----------------------------------------------------------------------


def test_hooks_are_declared_with_their_defaults():
    """PIP-008 to PIP-012: every hook the pipeline reads is on Operation, with its default."""
    op = ToTensor()
    assert (op.seed, op.seed_values, op.seed_kind, op.seed_sources) == (None, None, None, None)
    assert op.horizontal_flip_probability is None and tuple(op.absorbed) == ()
    assert op.absorb(RandomHorizontalFlip()) is False and op.part_states() is None
    assert op.as_transform() is op and op.accept_backends(None) is None
    assert isinstance(IntDecoder(), Decoder) and isinstance(SimpleRGBImageDecoder(), Decoder)
    assert RandomHorizontalFlip(0.25).horizontal_flip_probability == 0.25


def test_step_code_reads_a_plain_functions_attributes_once():
    """PIP-003: a plain function's attributes become the StepCode's; later changes are not read."""
    def code(x, dst, indices, seed):
        return x
    code.with_seed, code.is_parallel = True, True
    step = StepCode.of(code)
    code.with_seed = False
    assert (step.function, step.with_indices, step.with_seed, step.is_parallel) == (code, False, True, True)
    assert StepCode.of(step) is step


def test_random_resized_crop_has_two_roles_behind_one_name():
    """PIP-011: the decoder role is the object; its transform role is another class, not a decoder."""
    crop = RandomResizedCrop((32, 24), scale=(0.5, 1.0), seed=3)
    assert isinstance(crop, RandomResizedCropRGBImageDecoder)
    role = crop.as_transform()
    assert not isinstance(role, Decoder) and role.crop is crop
    assert (role.seed, role.seed_values, role.seed_kind) == (3, (3,), crop.seed_kind)
    label = LabelRandomResizedCrop((32, 24), seed=3)
    assert isinstance(label, Decoder) and not isinstance(label, SimpleRGBImageDecoder)
    assert label.decodes(RGBImageField()) and not label.decodes(IntField())


def test_shared_memory_declarations_allocate_once():
    from ffcvx.pipeline.allocation_query import allocate_all
    assert allocate_all(None, ()) is None
    one, two = allocate_all((AllocationQuery((2,), np.dtype('u1')), AllocationQuery((3,), np.dtype('i8'))), (4,))
    assert one.shape == (4, 2) and two.shape == (4, 3) and two.dtype == np.int64
