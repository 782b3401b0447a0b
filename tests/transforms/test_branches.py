"""Several outputs from one decode: ``PipelineSpec(source=<Operation>)`` (FFCV 1.0).

Raw RGB images, so decoders return exactly the pixels written; the label of
sample ``i`` is ``i``. Flips with probability 1 make every transform
deterministic, so each output can be compared with the pixels it must hold.
"""
import numpy as np
import pytest
import torch

from ffcvx.fields import RGBImageField
from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline import PipelineSpec
from ffcvx.transforms import Cutout, RandomHorizontalFlip, ToTensor, ToTorchImage

from _common import write_labelled

N, H, W = 20, 10, 14


@pytest.fixture(scope='module')
def originals():
    # No pixel is 0, so Cutout's black square is the only black in an image.
    return np.random.default_rng(5).integers(1, 256, (N, H, W, 3), dtype=np.uint8)


@pytest.fixture(scope='module')
def beton(tmp_path_factory, originals):
    path = tmp_path_factory.mktemp('branches') / 'raw.beton'
    return write_labelled(path, originals, RGBImageField(write_mode='raw'))


def _epoch(loader):
    """Every output of every batch, concatenated: a dict name -> array."""
    names = loader.graph.output_names
    out = {name: [] for name in names}
    for batch in loader:
        for name, array in zip(names, batch):
            out[name].append(array.numpy().copy() if isinstance(array, torch.Tensor) else array.copy())
    return {name: np.concatenate(arrays) for name, arrays in out.items()}


def _load(path, pipelines, **kw):
    return _epoch(Loader(path, batch_size=6, num_workers=2, order=OrderOption.RANDOM, seed=1,
                         drop_last=False, pipelines={**pipelines, 'label': [IntDecoder()]}, **kw))


def _one_black_square(image, size):
    black = np.all(image == 0, axis=-1)
    ys, xs = np.nonzero(black)
    return black.sum() == size * size and np.ptp(ys) == size - 1 and np.ptp(xs) == size - 1


def test_two_views_of_one_decode_do_not_see_each_others_in_place_steps(beton, originals):
    decoder = SimpleRGBImageDecoder()
    out = _load(beton, {'image': [decoder, Cutout(4)],
                        'mirror': PipelineSpec(source=decoder, transforms=[RandomHorizontalFlip(1.0)]),
                        'plain': PipelineSpec(source=decoder)})
    assert list(out) == ['image', 'label', 'mirror', 'plain']
    expected = originals[out['label'][:, 0]]
    assert np.array_equal(out['plain'], expected)
    assert np.array_equal(out['mirror'], expected[:, :, ::-1])
    for image, original in zip(out['image'], expected):
        assert _one_black_square(image, 4)
        assert np.array_equal(image[image != 0], original[image != 0])


def test_a_decoder_that_is_a_source_keeps_its_own_output(beton, originals):
    # Right after a crop decoder a flip is normally fused into its resize; the
    # branch must still get the unflipped decode.
    decoder = RandomResizedCropRGBImageDecoder((H, W), scale=(1, 1), ratio=(W / H, W / H))
    flip = RandomHorizontalFlip(1.0)
    out = _load(beton, {'image': [decoder, flip],
                        'decoded': PipelineSpec(source=decoder),
                        'flipped': PipelineSpec(source=flip)})
    expected = originals[out['label'][:, 0]]
    assert np.array_equal(out['decoded'], expected)
    assert np.array_equal(out['image'], expected[:, :, ::-1])
    assert np.array_equal(out['flipped'], out['image'])


def test_an_absorbed_flip_is_a_source_too(beton, originals):
    decoder = RandomResizedCropRGBImageDecoder((H, W), scale=(1, 1), ratio=(W / H, W / H))
    flip = RandomHorizontalFlip(1.0)
    loader = Loader(beton, batch_size=6, drop_last=False,
                    pipelines={'image': [decoder, flip, ToTensor()], 'label': [IntDecoder()],
                               'flipped': PipelineSpec(source=flip, transforms=[Cutout(3)])})
    assert len(loader.graph.pipelines[0].steps) == 2  # the flip is fused into the decoder
    out = _epoch(loader)
    expected = originals[out['label'][:, 0]][:, :, ::-1]
    assert np.array_equal(out['image'], expected)
    assert all(_one_black_square(image, 3) for image in out['flipped'])


def test_branch_from_a_tensor_step_and_from_a_branch(beton, originals):
    to_tensor = ToTensor()
    chw = ToTorchImage(channels_last=False)
    out = _load(beton, {'image': [SimpleRGBImageDecoder(), to_tensor],
                        'chw': PipelineSpec(source=to_tensor, transforms=[chw]),
                        'again': PipelineSpec(source=chw)})
    expected = originals[out['label'][:, 0]]
    assert np.array_equal(out['image'], expected)
    assert np.array_equal(out['chw'], expected.transpose(0, 3, 1, 2))
    assert np.array_equal(out['again'], out['chw'])


def test_bad_sources_are_refused(beton):
    decoder = SimpleRGBImageDecoder()
    with pytest.raises(ValueError, match="'view' starts from RandomHorizontalFlip, which is in no "
                                         "pipeline listed before it"):
        Loader(beton, batch_size=4, pipelines={'image': [decoder],
                                               'view': PipelineSpec(source=RandomHorizontalFlip())})
    with pytest.raises(ValueError, match="takes no decoder"):
        Loader(beton, batch_size=4, pipelines={'image': [decoder],
                                               'view': PipelineSpec(source=decoder, decoder=SimpleRGBImageDecoder())})
    flip = RandomHorizontalFlip()
    with pytest.raises(ValueError, match="'first' starts from RandomHorizontalFlip, which is in no "
                                         "pipeline listed before it"):
        Loader(beton, batch_size=4, pipelines={'image': [decoder],
                                               'first': PipelineSpec(source=flip),
                                               'second': PipelineSpec(source=decoder, transforms=[flip])})
