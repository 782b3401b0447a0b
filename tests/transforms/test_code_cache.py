"""Compiled code reused between Loaders whose code is equal (ffcvx/pipeline/code_cache.py).

Numba never frees machine code: before the cache, every Loader kept ~10 MB of
it for the rest of the process (issue 12). The cache must reuse code only when
everything Numba freezes into it is equal, so these tests check both sides:
equal closures share one compiled function, and any difference in a frozen
value (a number, an array's bytes, a called function) compiles anew and
computes with its own value.
"""
import gc

import numpy as np
import pytest

from ffcvx.fields import IntField, NDArrayField
from ffcvx.fields.decoders import IntDecoder, NDArrayDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.pipeline.code_cache import CodeCache, code_key
from ffcvx.pipeline.compiler import Compiler
from ffcvx.transforms import ToTensor
from ffcvx.writer import DatasetWriter


def _scale_by(k):
    def scale(x):
        return x * k
    return scale


def _add_table(table):
    def add(x):
        return x + table[0]
    return add


def _calls(inner):
    def outer(x):
        return inner(x) + 1
    return outer


def _with_list(values):
    def first(x):
        return x + values[0]
    return first


def test_equal_closures_share_compiled_code_and_unequal_ones_do_not():
    a, b, c = Compiler.compile(_scale_by(3)), Compiler.compile(_scale_by(3)), Compiler.compile(_scale_by(4))
    assert a is b and a is not c
    assert (a(2), c(2)) == (6, 8)


def test_array_constants_are_keyed_by_their_bytes():
    one = Compiler.compile(_add_table(np.array([5], np.int64)))
    same = Compiler.compile(_add_table(np.array([5], np.int64)))
    other = Compiler.compile(_add_table(np.array([7], np.int64)))
    wider = Compiler.compile(_add_table(np.array([5], np.int32)))
    assert one is same and one is not other and one is not wider
    assert (one(1), other(1)) == (6, 8)


def test_called_closures_are_part_of_the_key():
    inner_3, inner_5 = Compiler.compile(_scale_by(3)), Compiler.compile(_scale_by(5))
    f, g = Compiler.compile(_calls(inner_3)), Compiler.compile(_calls(inner_5))
    assert f is not g and (f(2), g(2)) == (7, 11)


def test_values_the_key_cannot_capture_are_compiled_every_time():
    assert code_key(_with_list([1]), ()) is None
    f, g = Compiler.compile(_with_list([1])), Compiler.compile(_with_list([1]))
    assert f is not g   # (Numba itself cannot freeze a list: never called here)


def test_cache_compiles_once_per_key():
    cache, compiled = CodeCache(), []

    def compile_(func):
        compiled.append(func)
        return func

    first = cache.get_or_compile(_scale_by(2), ('opts',), compile_)
    again = cache.get_or_compile(_scale_by(2), ('opts',), compile_)
    other_options = cache.get_or_compile(_scale_by(2), ('other',), compile_)
    assert first is again and other_options is not first and len(compiled) == 2 and len(cache) == 2


@pytest.fixture(scope='module')
def small_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('cache') / 'small.beton'
    rng = np.random.default_rng(0)
    samples = [(rng.integers(0, 1000, (3, 4)).astype('<i4'), i) for i in range(64)]
    DatasetWriter(str(path), {'array': NDArrayField(np.dtype('<i4'), (3, 4)), 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(samples)
    return str(path), samples


def _loader(path, seed):
    return Loader(path, batch_size=8, num_workers=1, order=OrderOption.RANDOM, seed=seed,
                  pipelines={'array': [NDArrayDecoder(), ToTensor()], 'label': [IntDecoder()]})


def test_two_loaders_share_step_code_and_read_their_own_order(small_file):
    path, samples = small_file
    first, second = _loader(path, 1), _loader(path, 2)
    codes = [[s.code for s in p.steps if s.state.jit_mode] for p in (first.graph.pipelines[0],
                                                                     second.graph.pipelines[0])]
    assert codes[0] and all(a is b for a, b in zip(*codes))
    for loader in (first, second):
        with loader:
            for arrays, labels in loader:
                expected = np.stack([samples[int(i)][0] for i in labels[:, 0]])
                assert np.array_equal(arrays.numpy(), expected)


def _rss_mb():
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmRSS')) / 1024


def test_abandoned_loaders_do_not_grow_memory(small_file):
    path, _ = small_file
    for seed in range(3):   # warm-up: code compiled, allocator pools filled
        with _loader(path, seed) as loader:
            next(iter(loader))
    gc.collect()
    before = _rss_mb()
    for seed in range(40):
        loader = _loader(path, seed)
        next(iter(loader))
        del loader
    gc.collect()
    growth = _rss_mb() - before
    print(f"RSS growth over 40 abandoned Loaders: {growth:.2f} MB")
    # Without the cache: ~1-10 MB of machine code per Loader, never freed.
    assert growth < 8, f"{growth:.1f} MB"
