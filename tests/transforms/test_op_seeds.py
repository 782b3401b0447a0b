"""Operations with their own ``seed`` (FFCV-SSL's argument): ``ffcvx.pipeline.seeds.seed_streams``.

An int seed makes an op's draws a function of (seed, epoch, seed_kind,
sample): the same in any pipeline, under any Loader seed, thread count or
batch size; a new epoch draws anew. ``seed_values`` gives several streams.
"""
import numpy as np
import pytest

from ffcvx.fields.decoders import IntDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline.compiler import Compiler
from ffcvx.pipeline.operation import Operation
from ffcvx.pipeline.seeds import EpochSeeds, seed_sample, seed_streams

from _common import write_labelled

N = 30


class Draw(Operation):
    """Replaces each label by a uniform draw in [0, 1) (float64), from its seed streams."""

    def __init__(self, seed=None, second_seed=None, kind=None):
        super().__init__()
        self.seed, self.second_seed = seed, second_seed
        if kind:
            self.seed_kind = kind

    @property
    def seed_values(self):
        return (self.seed,) if self.second_seed is None else (self.seed, self.second_seed)

    def declare_state_and_memory(self, previous_state):
        from dataclasses import replace
        from ffcvx.pipeline.allocation_query import AllocationQuery
        streams = len(self.seed_values)
        return (replace(previous_state, shape=(streams,), dtype=np.dtype('f8')),
                AllocationQuery((streams,), np.dtype('f8')))

    def generate_code(self):
        my_range = Compiler.get_iterator()
        if self.second_seed is None:
            def draw(labels, dst, indices, seed):
                for k in my_range(labels.shape[0]):
                    seed_sample(seed, indices[k])
                    dst[k, 0] = np.random.rand()
                return dst
        else:
            def draw(labels, dst, indices, seeds):
                for k in my_range(labels.shape[0]):
                    seed_sample(seeds[0], indices[k])
                    dst[k, 0] = np.random.rand()
                    seed_sample(seeds[1], indices[k])
                    dst[k, 1] = np.random.rand()
                return dst
        draw.is_parallel = True
        draw.with_seed = True
        return draw


@pytest.fixture(scope='module')
def beton(tmp_path_factory):
    from ffcvx.fields import IntField
    from ffcvx.writer import DatasetWriter
    path = str(tmp_path_factory.mktemp('opseeds') / 'ints.beton')
    DatasetWriter(path, {'label': IntField(), 'other': IntField()}, num_workers=1,
                  progress=False).from_indexed_dataset([(i, i) for i in range(N)])
    return path


def _draws(path, ops, loader_seed, epochs=1, **kw):
    """Per epoch, per op: ndarray (N, streams) indexed by sample."""
    pipelines = {'label': [IntDecoder()], 'other': [IntDecoder()]}
    from ffcvx.pipeline import PipelineSpec
    for k, op in enumerate(ops):
        pipelines[f'd{k}'] = PipelineSpec('label', IntDecoder(), [op])
    loader = Loader(path, order=OrderOption.RANDOM, seed=loader_seed, drop_last=False,
                    pipelines=pipelines, **kw)
    names = loader.graph.output_names
    result = []
    for _ in range(epochs):
        got = [np.zeros((N, len(op.seed_values))) for op in ops]
        for batch in loader:
            batch = dict(zip(names, batch))
            for k in range(len(ops)):
                got[k][batch['label'][:, 0]] = batch[f'd{k}']
        result.append(got)
    return result


def test_int_seed_ignores_loader_seed_threads_batch_size_and_place(beton):
    a, = _draws(beton, [Draw(seed=3)], loader_seed=1, batch_size=4, num_workers=1)
    b, = _draws(beton, [Draw(), Draw(seed=3)], loader_seed=99, batch_size=7, num_workers=2)
    assert np.array_equal(a[0], b[1])
    assert not np.array_equal(b[0], b[1])
    assert len(np.unique(a[0])) == N                      # a draw per sample, not per batch


def test_none_seed_follows_the_loader_seed_and_place(beton):
    a, = _draws(beton, [Draw(), Draw()], loader_seed=5, batch_size=4)
    b, = _draws(beton, [Draw(), Draw()], loader_seed=5, batch_size=9, num_workers=2)
    c, = _draws(beton, [Draw(), Draw()], loader_seed=6, batch_size=4)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])                 # two steps never draw alike
    assert not np.array_equal(a[0], c[0])


def test_new_epoch_new_draws_and_same_again_next_run(beton):
    run1 = _draws(beton, [Draw(seed=3)], loader_seed=1, epochs=2, batch_size=8)
    run2 = _draws(beton, [Draw(seed=3)], loader_seed=2, epochs=2, batch_size=5)
    assert not np.array_equal(run1[0][0], run1[1][0])      # FFCV-SSL repeats them
    assert np.array_equal(run1[1][0], run2[1][0])


def test_kind_separates_ops_with_one_seed_and_second_seed_reaches_another(beton):
    first, = _draws(beton, [Draw(seed=5), Draw(seed=5, kind='other'), Draw(seed=10, second_seed=5)],
                    loader_seed=0, batch_size=8)
    assert not np.array_equal(first[0], first[1])
    assert np.array_equal(first[2][:, 1], first[0][:, 0])   # second stream = the seed-5 op's
    assert not np.array_equal(first[2][:, 0], first[0][:, 0])


def test_seed_streams_refuse_non_integers():
    with pytest.raises(TypeError, match='seed must be None or an int'):
        seed_streams(Draw(seed=1.5), 'x', 0)
    with pytest.raises(TypeError, match='seed must be None or an int'):
        seed_streams(Draw(seed=True), 'x', 0)
    assert EpochSeeds(1, 0).for_step([(None, 7)]) != EpochSeeds(1, 1).for_step([(None, 7)])
    assert len(EpochSeeds(1, 0).for_step([(None, 7), (4, 2)])) == 2
