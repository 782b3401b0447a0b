"""``Loader(distributed=True)`` under ``torchrun --nproc_per_node=2`` (gloo, CPU).

The dataset's ``index`` field stores each sample's own number, so the batches
a rank yields say exactly which samples it got. Every rank's sequence is
compared with the shard of the order a single-process Loader computes with the
same seed: padded by repeating its head to a multiple of the world size, then
rank ``r`` takes positions ``r, r + world_size, ...``.

Each torchrun launch runs every configuration in one go (tests/_distributed_worker.py),
because starting a rank costs seconds; a second launch checks determinism.
"""
import collections
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ffcvx.fields import BytesField, IntField
from ffcvx.fields.decoders import IntDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.writer import DatasetWriter
from _common import Computed

WORKER = Path(__file__).resolve().parents[1] / '_distributed_worker.py'
WORLD_SIZE = 2
#: Odd, so that the full dataset does not split evenly and the shard pads.
NUM_SAMPLES = 301
#: Bytes of the ``blob`` field per sample: about 20 samples per 2 MiB page (the
#: smallest page size), so the file has 16 pages for QUASI_RANDOM to group by.
BLOB_BYTES = 100_000
#: Seconds a launch may take; a hang (e.g. ranks disagreeing on the batch count
#: inside a collective) fails the test instead of blocking CI.
LAUNCH_TIMEOUT_S = 120

CONFIGS = [
    # Built before init_process_group: the rank comes from torchrun's RANK / WORLD_SIZE.
    dict(name='sequential_env', order='SEQUENTIAL', seed=0, drop_last=False, before_init=True),
    dict(name='random', order='RANDOM', seed=5, drop_last=False),
    dict(name='quasi_random', order='QUASI_RANDOM', seed=11, drop_last=False,
         order_kwargs={'buffer_size': 2}),
    # An even-sized subset, in no particular order: no padding.
    dict(name='random_indices', order='RANDOM', seed=3, drop_last=False,
         indices=[int(i) for i in np.random.default_rng(0).permutation(NUM_SAMPLES)[:100]]),
    dict(name='quasi_random_drop_last', order='QUASI_RANDOM', seed=11, drop_last=True,
         num_workers=2, order_kwargs={'buffer_size': 2}),
    dict(name='sequential_drop_last', order='SEQUENTIAL', seed=0, drop_last=True,
         indices=list(range(0, NUM_SAMPLES, 2))),
]
for _config in CONFIGS:
    _config.setdefault('batch_size', 16)
    _config.setdefault('num_workers', 1)
    _config.setdefault('epochs', 2)
    _config.setdefault('indices', None)
    _config.setdefault('order_kwargs', None)
NAMES = [config['name'] for config in CONFIGS]
BY_NAME = {config['name']: config for config in CONFIGS}


def _numbered(i):
    """Sample i -> (i, a page-filling blob): batches of ``index`` name their samples."""
    return int(i), np.full(BLOB_BYTES, i % 251, dtype=np.uint8)


@pytest.fixture(scope='module')
def beton(tmp_path_factory):
    path = tmp_path_factory.mktemp('distributed') / 'numbered.beton'
    DatasetWriter(str(path), {'index': IntField(), 'blob': BytesField()},
                  num_workers=1, progress=False).from_indexed_dataset(Computed(NUM_SAMPLES, _numbered))
    return path


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _launch(beton, out_dir, tag):
    """Run every configuration under torchrun; rank 0's gathered result (dict)."""
    configs_path = out_dir / f'configs-{tag}.json'
    result_path = out_dir / f'result-{tag}.json'
    configs_path.write_text(json.dumps(CONFIGS))
    env = {k: v for k, v in os.environ.items()
           if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    env['OMP_NUM_THREADS'] = '1'
    # The free port may be taken by someone else before torchrun binds it: one retry.
    for attempt in range(2):
        command = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={WORLD_SIZE}',
                   '--nnodes=1', '--master_addr=127.0.0.1', f'--master_port={_free_port()}',
                   str(WORKER), str(beton), str(configs_path), str(result_path)]
        # A session of its own, so that a timeout kills torchrun and its ranks together.
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=LAUNCH_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            pytest.fail(f"torchrun did not finish within {LAUNCH_TIMEOUT_S} s (a hang?); "
                        f"output:\n{output[-5000:]}")
        if process.returncode == 0 or 'address already in use' not in output.lower():
            break
    assert process.returncode == 0, f"torchrun failed ({process.returncode}):\n{output[-5000:]}"
    result = json.loads(result_path.read_text())
    assert result['world_size'] == WORLD_SIZE
    return result['results']


@pytest.fixture(scope='module')
def runs(beton, tmp_path_factory):
    """Two launches of the same configurations: (first, second) results."""
    out_dir = tmp_path_factory.mktemp('distributed-out')
    return _launch(beton, out_dir, 'first'), _launch(beton, out_dir, 'second')


@pytest.fixture(scope='module')
def global_orders(beton):
    """Per configuration, the single-process (distributed=False) order of each epoch."""
    orders = {}
    for config in CONFIGS:
        loader = Loader(str(beton), batch_size=config['batch_size'], num_workers=1,
                        order=OrderOption[config['order']], distributed=False, seed=config['seed'],
                        indices=config['indices'], drop_last=config['drop_last'],
                        order_kwargs=config['order_kwargs'],
                        pipelines={'index': [IntDecoder()], 'blob': None})
        with loader:
            orders[config['name']] = [loader.traversal_order.sample_order(epoch).tolist()
                                      for epoch in range(config['epochs'])]
    return orders


def _subset(config):
    return config['indices'] if config['indices'] is not None else list(range(NUM_SAMPLES))


def _expected_shard(global_order, rank, config):
    """What ``rank`` must yield: the padded order's every WORLD_SIZE-th sample, less any dropped tail."""
    padding = -len(global_order) % WORLD_SIZE
    padded = global_order + global_order[:padding]
    shard = padded[rank::WORLD_SIZE]
    if config['drop_last']:
        shard = shard[:len(shard) // config['batch_size'] * config['batch_size']]
    return shard


@pytest.mark.parametrize('name', NAMES)
def test_rank_and_world_size_detected(runs, name):
    first, _ = runs
    assert [note['rank'] for note in first[name]] == list(range(WORLD_SIZE))
    assert all(note['world_size'] == WORLD_SIZE for note in first[name])


@pytest.mark.parametrize('name', NAMES)
def test_each_rank_gets_its_shard_of_the_global_order(runs, global_orders, name):
    first, _ = runs
    config = BY_NAME[name]
    for rank, note in enumerate(first[name]):
        for epoch, seen in enumerate(note['epochs']):
            assert seen == _expected_shard(global_orders[name][epoch], rank, config), (rank, epoch)


@pytest.mark.parametrize('name', [n for n in NAMES if not BY_NAME[n]['drop_last']])
def test_ranks_cover_the_dataset_and_overlap_only_in_padding(runs, global_orders, name):
    first, _ = runs
    subset = _subset(BY_NAME[name])
    for epoch in range(BY_NAME[name]['epochs']):
        per_rank = [note['epochs'][epoch] for note in first[name]]
        combined = [sample for seen in per_rank for sample in seen]
        assert set(combined) == set(subset)
        # Every rank gets the same count, so the few extra samples (fewer than
        # world_size) are exactly the head of the global order, repeated.
        assert len({len(seen) for seen in per_rank}) == 1
        padding = -len(subset) % WORLD_SIZE
        extra = collections.Counter(combined) - collections.Counter(subset)
        assert extra == collections.Counter(global_orders[name][epoch][:padding])
        overlap = set(per_rank[0]).intersection(*per_rank[1:])
        assert overlap == set(global_orders[name][epoch][:padding])


def test_padding_case_is_exercised():
    """The full dataset splits unevenly (one repeated sample); the subset evenly."""
    assert NUM_SAMPLES % WORLD_SIZE == 1
    assert len(BY_NAME['random_indices']['indices']) % WORLD_SIZE == 0


@pytest.mark.parametrize('name', NAMES)
def test_len_is_per_rank_batches_and_equal_across_ranks(runs, name):
    first, _ = runs
    config = BY_NAME[name]
    per_rank_samples = -(-len(_subset(config)) // WORLD_SIZE)
    batch_size = config['batch_size']
    expected = (per_rank_samples // batch_size if config['drop_last']
                else -(-per_rank_samples // batch_size))
    for note in first[name]:
        assert note['len'] == expected
        for sizes in note['batch_sizes']:
            assert len(sizes) == expected
            if config['drop_last']:
                assert sizes == [batch_size] * expected
    # The same sequence of batch sizes on every rank: DDP's collectives line up.
    assert len({json.dumps(note['batch_sizes']) for note in first[name]}) == 1


@pytest.mark.parametrize('name', [n for n in NAMES if BY_NAME[n]['drop_last']])
def test_drop_last_ranks_are_disjoint(runs, name):
    first, _ = runs
    for epoch in range(BY_NAME[name]['epochs']):
        per_rank = [set(note['epochs'][epoch]) for note in first[name]]
        assert sum(len(s) for s in per_rank) == len(set().union(*per_rank))
        assert set().union(*per_rank) <= set(_subset(BY_NAME[name]))


@pytest.mark.parametrize('name', [n for n in NAMES if BY_NAME[n]['order'] != 'SEQUENTIAL'])
def test_epochs_differ(runs, name):
    first, _ = runs
    for note in first[name]:
        assert note['epochs'][0] != note['epochs'][1]
        # A rank sees other samples each epoch, not a fixed slice of the dataset.
        assert set(note['epochs'][0]) != set(note['epochs'][1])


def test_second_launch_gives_identical_sequences(runs):
    first, second = runs
    for name in NAMES:
        for rank in range(WORLD_SIZE):
            assert first[name][rank]['epochs'] == second[name][rank]['epochs'], (name, rank)


# -- in-process checks of the rank detection (no torchrun needed) ------------

def _env_loader(beton, monkeypatch, rank, world_size, **kw):
    monkeypatch.setenv('RANK', str(rank))
    monkeypatch.setenv('WORLD_SIZE', str(world_size))
    kw.setdefault('seed', 9)
    return Loader(str(beton), batch_size=10, num_workers=1, distributed=True,
                  pipelines={'index': [IntDecoder()], 'blob': None}, **kw)


def test_env_sharding_with_three_ranks(beton, monkeypatch):
    """World size 3 over 301 samples: 101 each, two head samples repeated."""
    shards = []
    for rank in range(3):
        with _env_loader(beton, monkeypatch, rank, 3, order=OrderOption.QUASI_RANDOM,
                         drop_last=False) as loader:
            assert (loader.rank, loader.world_size) == (rank, 3)
            assert len(loader) == 11
            shards.append(loader.traversal_order.sample_order(4).tolist())
    reference = Loader(str(beton), batch_size=10, num_workers=1, seed=9,
                       order=OrderOption.QUASI_RANDOM, pipelines={'index': [IntDecoder()], 'blob': None})
    global_order = reference.traversal_order.sample_order(4).tolist()
    reference.close()
    assert [len(s) for s in shards] == [101] * 3
    padded = global_order + global_order[:2]
    assert shards == [padded[r::3] for r in range(3)]


def test_env_fewer_samples_than_ranks(beton, monkeypatch):
    """One sample, three ranks: each rank gets it once, so all run one batch."""
    for rank in range(3):
        with _env_loader(beton, monkeypatch, rank, 3, indices=[42], drop_last=False) as loader:
            assert len(loader) == 1
            assert loader.traversal_order.sample_order(0).tolist() == [42]


@pytest.mark.parametrize('rank, world_size', [(2, 2), (-1, 2), (0, 0), ('x', 2)])
def test_env_rank_out_of_range_is_rejected(beton, monkeypatch, rank, world_size):
    with pytest.raises(ValueError, match='RANK'):
        _env_loader(beton, monkeypatch, rank, world_size)


def test_env_half_set_is_rejected(beton, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    with pytest.raises(ValueError, match='WORLD_SIZE'):
        Loader(str(beton), batch_size=10, num_workers=1, distributed=True, seed=0,
               pipelines={'index': [IntDecoder()], 'blob': None})


def test_no_group_and_no_env_warns_and_loads_everything(beton, monkeypatch):
    monkeypatch.delenv('RANK', raising=False)
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    with pytest.warns(UserWarning, match='whole dataset'):
        loader = Loader(str(beton), batch_size=10, num_workers=1, distributed=True, seed=0,
                        pipelines={'index': [IntDecoder()], 'blob': None})
    with loader:
        assert (loader.rank, loader.world_size) == (0, 1)
        assert len(loader.traversal_order.sample_order(0)) == NUM_SAMPLES


def test_not_distributed_ignores_env(beton, monkeypatch):
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '2')
    with Loader(str(beton), batch_size=10, num_workers=1, seed=1,
                pipelines={'index': [IntDecoder()], 'blob': None}) as loader:
        assert (loader.rank, loader.world_size) == (0, 1)
        assert len(loader) == NUM_SAMPLES // 10
