"""Loader.state_dict() / load_state_dict(): a resumed run yields the uninterrupted run's batches.

Same world size (ffcvx.loader.resume). Each check hashes every batch of an
uninterrupted run of two epochs, then stops a run after k batches, saves the
state, builds a fresh Loader (here, or in a new process), loads it and runs
to the end: the hashes concatenated must be equal.
"""
import hashlib
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ffcvx.fields import RGBImageField
from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.loader.resume import ResumeError
from ffcvx.transforms import Cutout, RandomBrightness, RandomHorizontalFlip, RandomTranslate

from _common import REPO, write_labelled

N, H, W = 45, 20, 24
ORDERS = ['SEQUENTIAL', 'RANDOM', 'QUASI_RANDOM']


@pytest.fixture(scope='module')
def beton(tmp_path_factory):
    images = np.random.default_rng(3).integers(1, 256, (N, H, W, 3), dtype=np.uint8)
    return write_labelled(tmp_path_factory.mktemp('resume') / 'raw.beton', images,
                          RGBImageField(write_mode='raw'))


def _pipelines():
    return {'image': [RandomResizedCropRGBImageDecoder((12, 12)), RandomHorizontalFlip(),
                      RandomTranslate(2), Cutout(3), RandomBrightness(0.4)],
            'label': [IntDecoder()]}


def _loader(path, order, drop_last=True, **kw):
    return Loader(path, batch_size=8, order=getattr(OrderOption, order), seed=21,
                  drop_last=drop_last, pipelines=_pipelines(), num_workers=2, **kw)


def _digest(batch):
    h = hashlib.sha256()
    for part in batch:
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def _run(loader, epochs, stop_after=None):
    """Batch digests of ``epochs`` epochs; stops after ``stop_after`` batches in all."""
    out = []
    for _ in range(epochs):
        for batch in loader:
            out.append(_digest(batch))
            if stop_after is not None and len(out) == stop_after:
                return out
    return out


@pytest.mark.parametrize('order', ORDERS)
def test_resume_with_indices_is_bit_identical(beton, order):
    picked = np.random.default_rng(5).permutation(N)[:29]
    whole = _run(_loader(beton, order, indices=picked), epochs=2)
    first = _loader(beton, order, indices=picked)
    head = _run(first, epochs=2, stop_after=4)
    state = first.state_dict()
    first.close()
    second = _loader(beton, order, indices=picked)
    second.load_state_dict(state)
    assert head + _run(second, epochs=2 - state['epoch']) == whole
    with pytest.raises(ResumeError, match='indices= selects other samples'):
        _loader(beton, order, indices=picked[::-1]).load_state_dict(state)
    with pytest.raises(ResumeError, match='other order_kwargs'):
        _loader(beton, order, indices=picked).load_state_dict(
            {**state, 'order_options': "[('buffer_size', 3)]"})


@pytest.mark.parametrize('drop_last', [True, False])
@pytest.mark.parametrize('order', ORDERS)
def test_resume_in_this_process_is_bit_identical(beton, order, drop_last):
    whole = _run(_loader(beton, order, drop_last), epochs=2)
    per_epoch = len(whole) // 2
    for k in (2, per_epoch, per_epoch + 3):        # mid-epoch 0, between epochs, mid-epoch 1
        first = _loader(beton, order, drop_last)
        head = _run(first, epochs=2, stop_after=k)
        state = first.state_dict()
        first.close()
        assert (state['epoch'], state['batches_done']) == divmod(k, per_epoch)
        second = _loader(beton, order, drop_last)
        second.load_state_dict(state)
        rest = _run(second, epochs=2 - state['epoch'])
        assert head + rest == whole, (order, drop_last, k)


_CHILD = r'''
import json, os, pickle, sys, hashlib
sys.path[:0] = [sys.argv[3], os.path.dirname(sys.argv[3])]   # the module, then tests/
import numpy as np
from test_resume import _loader, _run
loader = _loader(sys.argv[1], sys.argv[2])
with open(sys.argv[4], 'rb') as f:
    loader.load_state_dict(pickle.load(f))
print(json.dumps(_run(loader, epochs=1)))
'''


@pytest.mark.parametrize('order', ORDERS)
def test_resume_in_a_new_process_is_bit_identical(beton, order, tmp_path):
    whole = _run(_loader(beton, order), epochs=1)
    first = _loader(beton, order)
    head = _run(first, epochs=1, stop_after=3)
    state_file = tmp_path / 'state.pt'
    state_file.write_bytes(pickle.dumps(first.state_dict()))
    out = subprocess.run([sys.executable, '-c', _CHILD, beton, order, str(Path(__file__).resolve().parent),
                          str(state_file)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert head + json.loads(out.stdout.strip().splitlines()[-1]) == whole


def test_state_is_small_plain_and_cheap(beton):
    loader = _loader(beton, 'RANDOM')
    iterator = iter(loader)
    next(iterator)
    state = loader.state_dict()
    assert all(isinstance(v, (int, str, bool)) for v in state.values()), state
    assert len(pickle.dumps(state)) < 1000
    start = time.perf_counter()
    for _ in range(1000):
        loader.state_dict()
    assert (time.perf_counter() - start) / 1000 < 1e-3   # well under a millisecond each
    assert state['batches_done'] == 1 and state['samples_done'] == 8 and state['epoch'] == 0
    loader.close()


def test_a_state_of_another_file_or_configuration_is_refused(beton, tmp_path):
    state = _loader(beton, 'RANDOM').state_dict()
    images = np.zeros((N, H, W, 3), np.uint8)
    other = write_labelled(tmp_path / 'other.beton', images, RGBImageField(write_mode='raw'))
    cases = [
        (_loader(other, 'RANDOM'), "file: saved"),
        (_loader(beton, 'SEQUENTIAL'), "order: saved 'Random'"),
        (Loader(beton, batch_size=5, order=OrderOption.RANDOM, seed=21), "global_batch_size: saved 8"),
        (Loader(beton, batch_size=8, order=OrderOption.RANDOM, seed=22), r"seed=21"),
        (_loader(beton, 'RANDOM', indices=np.arange(10)), "indices= selects another number"),
        (_loader(beton, 'RANDOM', drop_last=False), "drop_last: saved True"),
    ]
    for loader, words in cases:
        with pytest.raises(ResumeError, match=words):
            loader.load_state_dict(state)
        loader.close()
    loader = _loader(beton, 'RANDOM')
    with pytest.raises(ResumeError, match='version 99'):
        loader.load_state_dict({**state, 'version': 99})
    with pytest.raises(ResumeError, match='on 1 ranks pass batch_size=32'):
        loader.load_state_dict({**state, 'world_size': 4, 'global_batch_size': 32})
    with pytest.raises(ResumeError, match='not a Loader state'):
        loader.load_state_dict({'epoch': 1})
    with pytest.raises(ResumeError, match='global sample 99 of epoch 0'):
        loader.load_state_dict({**state, 'global_samples_done': 99})
    assert isinstance(ResumeError('x'), ValueError)
    # nothing was changed by the refused loads: the Loader starts at epoch 0
    assert loader.state_dict()['epoch'] == 0 and loader.state_dict()['batches_done'] == 0
    loader.close()


# -- another world size (ranks simulated in one process through RANK / WORLD_SIZE) -------

def _rank_loader(path, monkeypatch, rank, world, per_rank):
    monkeypatch.setenv('RANK', str(rank))
    monkeypatch.setenv('WORLD_SIZE', str(world))
    return Loader(path, batch_size=per_rank, order=OrderOption.RANDOM, seed=21, drop_last=False,
                  distributed=True, pipelines=_pipelines(), num_workers=1)


def _samples(batches):
    """``[(sample number, digest of its augmented image)]`` of batches ``(image, label)``."""
    return [(int(label), hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest())
            for images, labels in batches for image, label in zip(images, labels[:, 0])]


@pytest.mark.parametrize('old, new', [(2, 1), (2, 3), (3, 2)])
def test_resume_on_another_world_size_sees_the_rest_once(beton, monkeypatch, old, new):
    global_batch, epoch = 12, 1
    reference = Loader(beton, batch_size=global_batch, order=OrderOption.RANDOM, seed=21,
                       drop_last=False, pipelines=_pipelines(), num_workers=1)
    order = reference.traversal_order.global_order(epoch).tolist()
    augmented = {}
    for e in range(epoch + 1):
        for sample, digest in _samples(reference):
            if e == epoch:
                augmented[sample] = digest       # the uninterrupted run's output per sample
    reference.close()
    done_before, states = [], []
    for rank in range(old):                      # every old rank: epoch 0, then 2 batches of 1
        loader = _rank_loader(beton, monkeypatch, rank, old, global_batch // old)
        _run(loader, epochs=1)
        iterator = iter(loader)
        done_before += _samples([next(iterator), next(iterator)])
        states.append(loader.state_dict())
        loader.close()
    assert all(state == states[0] for state in states)
    g = states[0]['global_samples_done']
    assert g == 2 * global_batch and states[0]['epoch'] == epoch
    after = []
    for rank in range(new):
        loader = _rank_loader(beton, monkeypatch, rank, new, global_batch // new)
        loader.load_state_dict(states[0])
        after.append(_samples(iter(loader)))
        loader.close()
    assert len({len(part) for part in after}) == 1          # equal shares: ranks stay in step
    rest = [s for part in after for s in part]
    padding = np.resize(order, -(len(order) - g) % new).tolist()
    assert sorted(s for s, _ in rest) == sorted(order[g:] + padding)
    assert sorted(s for s, _ in done_before) == sorted(order[:g])
    assert all(digest == augmented[sample] for sample, digest in done_before + rest)


@pytest.mark.parametrize('order', ORDERS)
def test_distributed_resume_on_the_same_world_size_is_bit_identical(beton, monkeypatch, order):
    """Two ranks, 45 samples: the shard pads by one; every rank's batches after the resume
    are exactly the uninterrupted rank's, padding included."""
    def rank_loader(rank):
        monkeypatch.setenv('RANK', str(rank))
        monkeypatch.setenv('WORLD_SIZE', '2')
        return Loader(beton, batch_size=4, order=getattr(OrderOption, order), seed=21,
                      drop_last=False, distributed=True, pipelines=_pipelines(), num_workers=1)
    for rank in range(2):
        with rank_loader(rank) as loader:
            whole = _run(loader, epochs=2)
        with rank_loader(rank) as loader:
            head = _run(loader, epochs=2, stop_after=len(whole) // 2 + 2)
            state = loader.state_dict()
        assert state['global_samples_done'] == 2 * 4 * 2
        with rank_loader(rank) as loader:
            loader.load_state_dict(state)
            assert head + _run(loader, epochs=1) == whole, (order, rank)


# -- the same under torchrun (gloo): saved on 2 processes, resumed on 1 and on 3 ---------

GLOBAL_BATCH = 12
WORKER = str(Path(__file__).resolve().parent / '_resume_worker.py')


def _rank_samples(beton, mode, state_path):
    """Body of one torchrun rank (tests/loader/_resume_worker.py): its samples, and its state."""
    import torch.distributed as dist
    loader = Loader(beton, batch_size=GLOBAL_BATCH // dist.get_world_size(), seed=21,
                    order=OrderOption.RANDOM, drop_last=False, distributed=True,
                    pipelines=_pipelines(), num_workers=1)
    with loader:
        if mode == 'save':
            _run(loader, epochs=1)
            iterator = iter(loader)
            samples = _samples([next(iterator), next(iterator)])
            return samples, loader.state_dict()
        with open(state_path, 'rb') as f:
            loader.load_state_dict(pickle.load(f))
        return _samples(iter(loader)), None


def _torchrun(nproc, *args):
    import os
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    env['OMP_NUM_THREADS'] = '1'
    out = subprocess.run([sys.executable, '-m', 'torch.distributed.run',
                          f'--nproc_per_node={nproc}', '--nnodes=1', '--master_addr=127.0.0.1',
                          f'--master_port={port}', WORKER, *map(str, args)],
                         env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]


def test_torchrun_saved_on_two_resumed_on_one_and_three(beton, tmp_path):
    reference = Loader(beton, batch_size=GLOBAL_BATCH, order=OrderOption.RANDOM, seed=21,
                       drop_last=False, pipelines=_pipelines(), num_workers=1)
    _run(reference, epochs=1)
    augmented = dict(_samples(reference))           # epoch 1, uninterrupted, per sample
    order = reference.traversal_order.global_order(1).tolist()
    reference.close()
    state_path, saved = tmp_path / 'state.pkl', tmp_path / 'saved.json'
    _torchrun(2, beton, 'save', state_path, saved)
    before = [s for rank in json.loads(saved.read_text())['ranks'] for s in rank]
    g = pickle.loads(state_path.read_bytes())['global_samples_done']
    assert g == 2 * GLOBAL_BATCH and sorted(s for s, _ in before) == sorted(order[:g])
    for nproc in (1, 3):
        result = tmp_path / f'resumed-{nproc}.json'
        _torchrun(nproc, beton, 'resume', state_path, result)
        ranks = json.loads(result.read_text())['ranks']
        assert len(ranks) == nproc and len({len(r) for r in ranks}) == 1
        rest = [tuple(s) for rank in ranks for s in rank]
        padding = np.resize(order, -(len(order) - g) % nproc).tolist()
        assert sorted(s for s, _ in rest) == sorted(order[g:] + padding)
        assert all(augmented[s] == d for s, d in [tuple(x) for x in before] + rest)
