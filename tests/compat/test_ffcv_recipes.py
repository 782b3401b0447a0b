"""FFCV's published usage patterns, unchanged but for ``ffcv`` -> ``ffcvx`` in the imports.

Each test follows an FFCV recipe or documented API (the ffcv-imagenet
training script, the "custom transforms" guide, the Compiler and Loader
APIs) and asserts what FFCV 1.0.2 yields: shapes, dtypes, values, and what
changes between epochs.
"""
from dataclasses import replace
from typing import Callable, Optional, Tuple

import numpy as np
import pytest
import torch as ch

from ffcvx.fields import IntField, RGBImageField
from ffcvx.fields.basics import IntDecoder
from ffcvx.fields.rgb_image import (CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder,
                                    SimpleRGBImageDecoder)
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline.allocation_query import AllocationQuery
from ffcvx.pipeline.compiler import Compiler
from ffcvx.pipeline.operation import Operation
from ffcvx.pipeline.state import State
from ffcvx.transforms import (NormalizeImage, RandomHorizontalFlip, Squeeze, ToDevice, ToTensor,
                              ToTorchImage)
from ffcvx.writer import DatasetWriter

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255
DEFAULT_CROP_RATIO = 224 / 256


@pytest.fixture(scope='module')
def photos_beton(tmp_path_factory, shared_dir):
    """The shared photos as FFCV's ImageNet writer stores them (jpg, max_resolution 256)."""
    from ffcvx.datasets import ImageFolder
    path = tmp_path_factory.mktemp('recipes') / 'photos.beton'
    dataset = ImageFolder(str(shared_dir / 'data' / 'photos'))
    DatasetWriter(str(path), {'image': RGBImageField(write_mode='jpg', max_resolution=256,
                                                     jpeg_quality=90),
                              'label': IntField()},
                  num_workers=2, progress=False).from_indexed_dataset(dataset)
    return str(path), len(dataset)


@pytest.fixture(scope='module')
def squares_beton(tmp_path_factory):
    """40 raw 32x48 images with known pixels, label = index."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (40, 32, 48, 3), dtype=np.uint8)

    class Squares:
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return images[i], i

    path = tmp_path_factory.mktemp('recipes') / 'squares.beton'
    DatasetWriter(str(path), {'image': RGBImageField(write_mode='raw'), 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(Squares())
    return str(path), images


def get_resolution(epoch, min_res=160, max_res=224, end_ramp=2, start_ramp=0):
    # ffcv-imagenet's rule: linear ramp to the nearest multiple of 32.
    if epoch <= start_ramp:
        return min_res
    if epoch >= end_ramp:
        return max_res
    interp = np.interp([epoch], [start_ramp, end_ramp], [min_res, max_res])
    return int(np.round(interp[0] / 32)) * 32


def test_imagenet_train_loader_progressive_resizing(photos_beton):
    path, count = photos_beton
    this_device = 'cpu'
    res = get_resolution(epoch=0)
    decoder = RandomResizedCropRGBImageDecoder((res, res))
    image_pipeline = [decoder, RandomHorizontalFlip(), ToTensor(),
                      ToDevice(ch.device(this_device), non_blocking=True), ToTorchImage(),
                      NormalizeImage(IMAGENET_MEAN, IMAGENET_STD, np.float16)]
    label_pipeline = [IntDecoder(), ToTensor(), Squeeze(), ToDevice(ch.device(this_device), non_blocking=True)]
    loader = Loader(path, batch_size=8, num_workers=2, order=OrderOption.QUASI_RANDOM, os_cache=True,
                    drop_last=True, pipelines={'image': image_pipeline, 'label': label_pipeline},
                    distributed=False)
    seen = []
    for epoch in range(3):
        res = get_resolution(epoch)
        decoder.output_size = (res, res)       # the recipe's way: no recompile=True
        batches = 0
        for images, labels in loader:
            assert images.shape == (8, 3, res, res)
            assert images.dtype == ch.float16
            assert labels.shape == (8,) and labels.dtype == ch.int64
            # normalised real pixels: centred near 0, spread near 1
            assert -1.5 < images.float().mean().item() < 1.5
            assert 0.3 < images.float().std().item() < 2.0
            batches += 1
        assert batches == count // 8
        seen.append(res)
    assert seen == [160, 192, 224]


def test_imagenet_val_loader(photos_beton):
    path, count = photos_beton
    res_tuple = (224, 224)
    cropper = CenterCropRGBImageDecoder(res_tuple, ratio=DEFAULT_CROP_RATIO)
    image_pipeline = [cropper, ToTensor(), ToDevice(ch.device('cpu'), non_blocking=True), ToTorchImage(),
                      NormalizeImage(IMAGENET_MEAN, IMAGENET_STD, np.float16)]
    label_pipeline = [IntDecoder(), ToTensor(), Squeeze(), ToDevice(ch.device('cpu'), non_blocking=True)]
    loader = Loader(path, batch_size=8, num_workers=2, order=OrderOption.SEQUENTIAL, drop_last=False,
                    pipelines={'image': image_pipeline, 'label': label_pipeline}, distributed=False)
    firsts = []
    for epoch in range(2):
        shapes, labels = [], []
        for images, batch_labels in loader:
            assert images.dtype == ch.float16
            shapes.append(tuple(images.shape))
            labels.extend(batch_labels.tolist())
            if not labels[:-len(batch_labels)]:
                firsts.append(images.clone())
        assert shapes == [(8, 3, 224, 224)] * (count // 8) + ([(count % 8, 3, 224, 224)] if count % 8 else [])
        assert len(labels) == count
    # a centre crop draws nothing: both epochs give the same pixels
    assert ch.equal(firsts[0], firsts[1])


class PickACorner(Operation):
    # FFCV's "custom transforms" guide, as written there.
    def generate_code(self) -> Callable:
        parallel_range = Compiler.get_iterator()

        def pick_a_corner(images, dst):
            which_corner = np.random.rand(images.shape[0])
            for i in parallel_range(images.shape[0]):
                if which_corner[i] == 0:
                    dst[i] = images[i, :images.shape[1] // 2, :images.shape[2] // 2]
                else:
                    dst[i] = images[i, -images.shape[1] // 2:, -images.shape[2] // 2:]
            return dst

        pick_a_corner.is_parallel = True
        return pick_a_corner

    def declare_state_and_memory(self, previous_state: State) -> Tuple[State, Optional[AllocationQuery]]:
        h, w, c = previous_state.shape
        new_shape = (h // 2, w // 2, c)
        new_state = replace(previous_state, shape=new_shape)
        mem_allocation = AllocationQuery(new_shape, previous_state.dtype)
        return (new_state, mem_allocation)


def test_pick_a_corner_custom_operation(squares_beton):
    path, images = squares_beton
    loader = Loader(path, batch_size=16, num_workers=2, drop_last=False,
                    pipelines={'image': [SimpleRGBImageDecoder(), PickACorner(), ToTensor()], 'label': None})
    out = np.concatenate([batch.numpy() for (batch,) in loader])
    assert out.shape == (40, 16, 24, 3)
    # which_corner is never exactly 0: always the bottom-right quarter
    assert np.array_equal(out, images[:, 16:, 24:])


class AddIndex(Operation):
    # An Operation whose code also receives the batch's sample indices (FFCV's ``with_indices``).
    def generate_code(self):
        parallel_range = Compiler.get_iterator()

        def add_index(labels, dst, indices):
            for i in parallel_range(labels.shape[0]):
                dst[i] = labels[i] * 1000 + indices[i]
            return dst

        add_index.is_parallel = True
        add_index.with_indices = True
        return add_index

    def declare_state_and_memory(self, previous_state):
        return previous_state, AllocationQuery(previous_state.shape, previous_state.dtype)


def test_operation_with_indices(squares_beton):
    path, _ = squares_beton
    loader = Loader(path, batch_size=8, num_workers=2, order=OrderOption.RANDOM, seed=1,
                    pipelines={'image': None, 'label': [IntDecoder(), AddIndex(), ToTensor(), Squeeze()]})
    values = ch.cat([labels for (labels,) in loader]).numpy()
    assert sorted(values.tolist()) == [i * 1000 + i for i in range(40)]


def _image_batches(path, **kwargs):
    loader = Loader(path, batch_size=8, num_workers=2, order=OrderOption.RANDOM, seed=5, **kwargs,
                    pipelines={'image': [RandomResizedCropRGBImageDecoder((24, 24)), RandomHorizontalFlip(),
                                         PickACorner(), ToTensor(), ToTorchImage()],
                               'label': [IntDecoder(), AddIndex(), ToTensor(), Squeeze()]})
    return [(x.clone(), y.clone()) for _ in range(2) for x, y in loader]


def test_compiler_set_enabled_false_gives_the_compiled_batches(squares_beton):
    path, _ = squares_beton
    compiled = _image_batches(path)
    Compiler.set_enabled(False)
    try:
        assert Compiler.is_enabled is False
        plain = _image_batches(path)
    finally:
        Compiler.set_enabled(True)
    assert Compiler.is_enabled is True
    assert len(plain) == len(compiled) == 10
    for (x1, y1), (x2, y2) in zip(compiled, plain):
        assert ch.equal(x1, x2) and ch.equal(y1, y2)
    # epochs differ (new draws), whichever way the code runs
    assert not ch.equal(compiled[0][0], compiled[5][0])


class Explodes(Operation):
    def generate_code(self):
        def explode(labels, dst):
            # Python integers: a ZeroDivisionError when run as Python (compiled
            # with error_model='numpy' it would quietly give 0)
            labels[0, 0] = int(labels[0, 0]) // int(labels[0, 0] - labels[0, 0])
            return labels
        return explode

    def declare_state_and_memory(self, previous_state):
        return previous_state, None


def test_uncompiled_operations_raise_with_a_python_traceback(squares_beton):
    path, _ = squares_beton
    Compiler.set_enabled(False)
    try:
        code = Compiler.compile(Explodes().generate_code())
        assert code.__name__ == 'explode'           # the function itself, not a dispatcher
        loader = Loader(path, batch_size=8, pipelines={
            'image': None, 'label': [IntDecoder(), Explodes(), ToTensor()]})
    finally:
        Compiler.set_enabled(True)
    with pytest.raises(ZeroDivisionError) as info:
        for _ in loader:
            pass
    assert any(entry.name == 'explode' for entry in info.traceback)


def test_per_loader_jit_beats_the_default(squares_beton):
    path, _ = squares_beton
    loader = Loader(path, batch_size=8, jit=False, pipelines={'image': None})
    step = loader.pipelines['label'].steps[0]
    assert not hasattr(step.code, 'py_func')          # plain Python
    compiled = Loader(path, batch_size=8, pipelines={'image': None})
    assert hasattr(compiled.pipelines['label'].steps[0].code, 'py_func')


def test_compiler_num_threads(squares_beton):
    path, _ = squares_beton
    before = Compiler.num_threads, ch.get_num_threads()
    try:
        Compiler.set_num_threads(1)
        assert Compiler.num_threads == 1 and ch.get_num_threads() == 1
        seen = {}

        class Records(PickACorner):
            def generate_code(self):
                seen['threads'] = Compiler.num_threads   # what FFCV ops read while compiled
                return super().generate_code()

        Loader(path, batch_size=8, num_workers=2, pipelines={
            'image': [SimpleRGBImageDecoder(), Records()], 'label': None})
        assert seen['threads'] == 2                   # the Loader's num_workers while it plans
        assert Compiler.num_threads == 1              # the default is not changed by a Loader
    finally:
        Compiler.set_num_threads(before[0])
        ch.set_num_threads(before[1])


def test_loader_filter(squares_beton):
    path, _ = squares_beton
    loader = Loader(path, batch_size=4, order=OrderOption.RANDOM, seed=2, drop_last=False,
                    pipelines={'image': None, 'label': [IntDecoder(), ToTensor(), Squeeze()]})
    evens = loader.filter('label', lambda label: label % 2 == 0)
    assert sorted(evens.indices.tolist()) == list(range(0, 40, 2))
    labels = ch.cat([y for (y,) in evens]).tolist()
    assert sorted(labels) == list(range(0, 40, 2))
    assert len(evens) == 5
    # on a Loader already restricted by indices, filter keeps sample numbers, not positions
    subset = Loader(path, batch_size=4, indices=[39, 38, 5, 7, 10], drop_last=False,
                    pipelines={'image': None})
    assert sorted(subset.filter('label', lambda label: label > 6).indices.tolist()) == [7, 10, 38, 39]


def test_traversal_order_api(squares_beton):
    from ffcvx.loader.loader import ORDER_TYPE, ORDER_MAP
    from ffcvx.traversal_order import Random
    assert ORDER_MAP[OrderOption.RANDOM] is Random
    assert OrderOption.RANDOM in ORDER_TYPE.__args__[1].__args__
    path, _ = squares_beton
    loader = Loader(path, batch_size=8, order=OrderOption.RANDOM, seed=4, pipelines={'image': None})
    first = loader.first_traversal_order
    assert sorted(first.tolist()) == list(range(40))
    assert np.array_equal(loader.next_traversal_order(), first)
    iterator = iter(loader)
    assert np.array_equal(iterator.order, first)
    labels = ch.cat([y for (y,) in iterator]).reshape(-1)
    assert labels.tolist() == first.tolist()
    second = loader.next_traversal_order()
    assert not np.array_equal(second, first)
    assert np.array_equal(iter(loader).order, second)


def test_loader_pipelines_attribute(squares_beton):
    path, _ = squares_beton
    decoder, flip = SimpleRGBImageDecoder(), RandomHorizontalFlip()
    loader = Loader(path, batch_size=8, pipelines={'image': [decoder, flip, ToTensor()]})
    assert list(loader.pipelines) == ['image', 'label']
    assert loader.pipelines['image'].operations[:2] == [decoder, flip]


def test_ffcv_ssl_loader_arguments(squares_beton):
    path, images = squares_beton
    views = {name: [SimpleRGBImageDecoder(), PickACorner(), ToTensor()] for name in ('image', 'image_0')}
    loader = Loader(path=path, batch_size=8, order=OrderOption.SEQUENTIAL,
                    custom_field_mapper={'image_0': 'image'},
                    pipelines={**views, 'label': [IntDecoder(), ToTensor(), Squeeze()]})
    image, label, image_0 = next(iter(loader))
    assert ch.equal(image, image_0)
    assert np.array_equal(image_0.numpy(), images[:8, 16:, 24:])
    assert label.tolist() == list(range(8))
    # FFCV-SSL's positional order: (path, batch_size, order)
    positional = Loader(path, 8, OrderOption.RANDOM, pipelines={'image': None}, seed=3)
    assert positional.traversal_order.__class__.__name__ == 'Random'
    with pytest.raises(ValueError, match="custom_field_mapper"):
        Loader(path=path, batch_size=8, custom_field_mapper={'image_1': 'image'})


def test_top_level_exports():
    import ffcvx
    from ffcvx.loader import Loader as L
    from ffcvx.writer import DatasetWriter as W
    assert ffcvx.Loader is L and ffcvx.DatasetWriter is W
