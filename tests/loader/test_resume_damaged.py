"""Damaged Loader states: refused with a ResumeError naming the field, or resumed exactly.

ffcvx.loader.resume.resume_position checks every field of a state (presence,
type, range, consistency) before using any. Here >= 1,000 states are derived,
with a seeded generator, from real ``state_dict()``s of a small Loader (one
saved by a single process, one by rank 0 of two, one at an epoch's start):
keys deleted, values replaced by None, lists, strs, floats, bools, numpy
scalars, negative or huge numbers, positions moved by one sample or one batch,
the state replaced as a whole. Each must either raise ResumeError (and leave
the Loader where it was), or be accepted and then yield exactly the batches an
uninterrupted run yields from the position it names; never another exception.
"""
import hashlib
import time

import numpy as np
import pytest

from ffcvx.fields import RGBImageField
from ffcvx.fields.decoders import IntDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.loader.resume import ResumeError
from ffcvx.transforms import RandomHorizontalFlip

from _common import write_labelled

N, BATCH, SEED = 21, 4, 7          # 6 batches an epoch, the last one of 1 sample
GENERATED = 1200


@pytest.fixture(scope='module')
def beton(tmp_path_factory):
    images = np.random.default_rng(11).integers(0, 256, (N, 6, 8, 3), dtype=np.uint8)
    return write_labelled(tmp_path_factory.mktemp('damaged') / 'small.beton', images,
                          RGBImageField(write_mode='raw'))


def _loader(path, batch_size=BATCH, **kw):
    # A random flip: batches of another epoch or seed differ, not only their order.
    return Loader(path, batch_size=batch_size, order=OrderOption.RANDOM, seed=SEED,
                  drop_last=False, num_workers=1,
                  pipelines={'image': [SimpleRGBImageDecoder(), RandomHorizontalFlip()],
                             'label': [IntDecoder()]}, **kw)


def _digests(batches, stop_after=None):
    out = []
    for batch in batches:
        h = hashlib.sha256()
        for part in batch:
            h.update(np.ascontiguousarray(part).tobytes())
        out.append(h.hexdigest())
        if stop_after is not None and len(out) == stop_after:
            break
    return out


@pytest.fixture(scope='module')
def saved_states(beton):
    """Real states: single process mid-epoch 1; rank 0 of 2 mid-epoch 0; start of epoch 3."""
    states = []
    with _loader(beton) as loader:
        _digests(loader)
        _digests(loader, stop_after=2)
        states.append(loader.state_dict())
        _digests(loader)
        states.append(loader.state_dict())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('RANK', '0')
        patch.setenv('WORLD_SIZE', '2')
        with _loader(beton, batch_size=BATCH // 2, distributed=True) as rank0:
            _digests(rank0, stop_after=3)
            states.insert(1, rank0.state_dict())
    assert [(s['epoch'], s['global_samples_done'], s['world_size']) for s in states] == [
        (1, 8, 1), (0, 12, 2), (3, 0, 1)]
    return states


class _Reference:
    """Batch digests of the uninterrupted run, per epoch (``next_epoch`` set, as FFCV's users do)."""

    def __init__(self, loader):
        self.loader, self.epochs = loader, {}

    def epoch(self, epoch):
        if epoch not in self.epochs:
            self.loader.next_epoch = epoch
            self.epochs[epoch] = _digests(self.loader)
        return self.epochs[epoch]

    def from_position(self, epoch, done):
        """The next two epochs of the run from ``done`` global samples into ``epoch``.

        ``[rest of epoch, next epoch]``, one list of digests per ``iter()``;
        the run never stops where the rest is empty (it is then at the next
        epoch's start), so the test asserts the rest is not.
        """
        return [self.epoch(epoch)[done // BATCH:], self.epoch(epoch + 1)]


# -- generating damaged states ----------------------------------------------------------

def _replacements(rng, value):
    """Candidate values for a field holding ``value``: wrong types, edges, near misses."""
    number = value if _plain_int(value) else 3
    small = number if abs(number) < 2 ** 31 else 3      # what numpy scalars can hold
    pool = [None, [], [value], {}, (value,), 'x', str(value), b'1', float(number), number + 0.5,
            1.9, float('nan'), float('inf'), 1e300, True, False, -1, -number, number + 1,
            number - 1, 0, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64 + 1, -(2 ** 63),
            np.int64(small), np.int32(small), np.uint64(abs(small)), np.int8(small % 128),
            np.float64(small), np.float32(small), np.bool_(True), np.array(small),
            np.array([small, small]), np.str_(str(value)), complex(number), object()]
    return [pool[int(k)] for k in rng.choice(len(pool), size=2, replace=False)]


def _plain_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _follow_counts(state):
    """Set ``batches_done`` and ``samples_done`` to what ``global_samples_done`` implies (if it can)."""
    done, per_rank = state.get('global_samples_done'), state.get('batch_size')
    if _plain_int(done) and _plain_int(per_rank):
        state['batches_done'] = done // BATCH
        state['samples_done'] = state['batches_done'] * per_rank


def _shift_position(rng, state):
    """Move ``global_samples_done`` by a sample or a batch, keeping the counts in step or not."""
    delta = int(rng.choice([-BATCH, BATCH, 2 * BATCH, -1, 1, 24, 7 * BATCH]))
    done = state.get('global_samples_done')
    state['global_samples_done'] = (done if _plain_int(done) else 0) + delta
    if rng.random() < 0.7:        # the batch counts follow, as a coherent state would
        _follow_counts(state)


def _mutants(states, count, seed=2024):
    """``count`` damaged states: ``(state, words one of which its refusal must name)``."""
    rng = np.random.default_rng(seed)
    keys = sorted(states[0])
    out = []
    while len(out) < count:
        state, touched = dict(states[int(rng.integers(len(states)))]), set()
        kind = rng.random()
        if kind < 0.03:
            whole = [None, [], 'state', 7, list(state.items()), {}, {'epoch': 1}]
            out.append((whole[int(rng.integers(len(whole)))], {'not a Loader state'}))
            continue
        for _ in range(int(rng.integers(1, 4))):
            action = rng.random()
            key = keys[int(rng.integers(len(keys)))]
            if action < 0.15:
                state.pop(key, None)
            elif action < 0.75:
                state[key] = _replacements(rng, state.get(key))[0]
            elif action < 0.85:
                _shift_position(rng, state)
                key = 'global_samples_done'
            elif action < 0.92:       # another epoch, valid or not
                state['epoch'] = int(rng.choice([0, 1, 3, 2 ** 40, 2 ** 63 - 1, -1, 2 ** 63]))
                key = 'epoch'
            else:                     # another world size, with the per-rank batch to match or not
                world = int(rng.choice([1, 2, 3, 4, 0]))
                state.update(world_size=world, distributed=bool(rng.random() < 0.8))
                if world and BATCH % world == 0 and rng.random() < 0.7:
                    state['batch_size'] = BATCH // world
                    _follow_counts(state)
                key = 'world_size'
            touched.add(key)
        out.append((state, touched))
    return out


_INT_KEYS = ('version', 'epoch', 'batches_done', 'samples_done', 'global_samples_done',
             'global_batch_size', 'seed', 'batch_size', 'world_size', 'num_samples', 'num_indices')


def _plainly_typed(state):
    """Whether every int field is an int (numpy integers too), never a bool or float."""
    return all(isinstance(state[key], (int, np.integer))
               and not isinstance(state[key], (bool, np.bool_)) for key in _INT_KEYS)


def test_damaged_states_are_refused_or_resume_exactly(beton, saved_states):
    start = time.perf_counter()
    mutants = _mutants(saved_states, GENERATED)
    assert len(mutants) >= 1000
    refused, resumed = 0, 0
    with _loader(beton) as loader, _loader(beton) as reference_loader:
        reference = _Reference(reference_loader)
        for number, (state, touched) in enumerate(mutants):
            before = loader.state_dict()
            try:
                loader.load_state_dict(state)
            except ResumeError as error:
                refused += 1
                message = str(error)
                assert any(key in message for key in touched), (number, touched, message)
                assert loader.state_dict() == before, (number, message)  # nothing changed
                continue
            # Accepted: the state must name a position exactly (no truncation) ...
            assert isinstance(state, dict) and _plainly_typed(state), (number, state)
            epoch, done = int(state['epoch']), int(state['global_samples_done'])
            now = loader.state_dict()
            assert (now['epoch'], now['global_samples_done'], now['batches_done']) == (
                epoch, done, int(state['batches_done'])), (number, state)
            # ... one where the uninterrupted run can be, and the batches from it are the run's.
            expected = reference.from_position(epoch, done)
            assert expected[0], (number, "accepted a position past the epoch's last batch", state)
            assert [_digests(loader), _digests(loader)] == expected, (number, state)
            resumed += 1
    seconds = time.perf_counter() - start
    print(f"{len(mutants)} damaged states: {refused} refused, {resumed} resumed exactly, "
          f"{seconds:.1f} s")
    assert refused + resumed == len(mutants)
    # Both outcomes happen (the generator also makes harmless changes, e.g. numpy ints).
    assert refused > 0.8 * len(mutants) and resumed > 0


def test_reference_is_the_uninterrupted_run(beton):
    """The test's reference (``next_epoch`` set) equals running the epochs one after another."""
    with _loader(beton) as run, _loader(beton) as jumped:
        through = [_digests(run) for _ in range(3)]
        assert _Reference(jumped).epoch(2) == through[2]
        assert through[1] != through[2]


@pytest.mark.parametrize('change, field', [
    ({'epoch': None}, 'epoch'),
    ({'global_samples_done': None}, 'global_samples_done'),
    ({'world_size': None}, 'world_size'),
    ({'epoch': 1.9}, 'epoch'),
    ({'epoch': np.float64(1.0)}, 'epoch'),
    ({'global_samples_done': 40.5}, 'global_samples_done'),
    ({'global_samples_done': 8.0}, 'global_samples_done'),
    ({'epoch': 2 ** 64 + 1}, 'epoch'),
    ({'epoch': -1}, 'epoch'),
    ({'world_size': 0}, 'world_size'),
    ({'world_size': -1}, 'world_size'),
    ({'world_size': 2}, 'world_size'),                   # not distributed: 1 rank
    ({'distributed': 'yes'}, 'distributed'),
    ({'distributed': 1}, 'distributed'),
    ({'drop_last': 0}, 'drop_last'),
    ({'seed': True}, 'seed'),
    ({'batch_size': 0}, 'batch_size'),
    ({'batch_size': 2}, 'batch_size'),                   # 2 x 1 rank is not the global 4
    ({'batches_done': 3}, 'batches_done'),
    ({'samples_done': 9}, 'samples_done'),
    ({'global_samples_done': 9, 'batches_done': 2}, 'global_samples_done'),
    ({'global_samples_done': 24, 'batches_done': 6, 'samples_done': 24}, 'global_samples_done'),
    ({'file': 5}, 'file'),
    ({'version': True}, 'version'),
    ({'version': 1.0}, 'version'),
    ({'format': ['ffcvx.Loader']}, 'format'),
])
def test_each_damage_names_its_field(beton, saved_states, change, field):
    with _loader(beton) as loader:
        with pytest.raises(ResumeError, match=field):
            loader.load_state_dict({**saved_states[0], **change})


def test_each_missing_field_is_named(beton, saved_states):
    with _loader(beton) as loader:
        for key in saved_states[0]:
            damaged = {k: v for k, v in saved_states[0].items() if k != key}
            with pytest.raises(ResumeError, match=key):
                loader.load_state_dict(damaged)
        for whole in (None, [], list(saved_states[0].items()), 'state'):
            with pytest.raises(ResumeError, match='not a Loader state'):
                loader.load_state_dict(whole)


def test_numpy_integers_resume_like_plain_ints(beton, saved_states):
    state = saved_states[0]
    as_numpy = {k: (np.int64(v) if isinstance(v, int) and not isinstance(v, bool)
                    else np.bool_(v) if isinstance(v, bool) else v) for k, v in state.items()}
    with _loader(beton) as plain, _loader(beton) as numpy_typed:
        plain.load_state_dict(state)
        numpy_typed.load_state_dict(as_numpy)
        assert numpy_typed.state_dict() == plain.state_dict() == state
        assert _digests(numpy_typed) == _digests(plain)


def test_a_state_saved_after_a_resume_on_another_world_size_loads(tmp_path, monkeypatch):
    """drop_last on 1 rank may leave no whole batch where 4 ranks stopped: the next epoch."""
    from ffcvx.fields import IntField
    from ffcvx.writer import DatasetWriter

    class Ten:
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return (i,)

    path = str(tmp_path / 'ten.beton')
    DatasetWriter(path, {'x': IntField()}, num_workers=1, progress=False).from_indexed_dataset(
        Ten())
    options = dict(drop_last=True, order=OrderOption.SEQUENTIAL, pipelines={'x': [IntDecoder()]},
                   num_workers=1, seed=0)
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '4')
    with Loader(path, batch_size=1, distributed=True, **options) as four:
        iterator = iter(four)
        next(iterator)
        next(iterator)
        state = four.state_dict()
    assert state['global_samples_done'] == 8
    monkeypatch.delenv('RANK')
    monkeypatch.delenv('WORLD_SIZE')
    with Loader(path, batch_size=4, **options) as one:
        one.load_state_dict(state)
        again = one.state_dict()
        # 2 samples are left of epoch 0: no whole batch of 4, so the next is epoch 1's first.
        assert (again['epoch'], again['global_samples_done']) == (state['epoch'] + 1, 0)
        expected = [np.asarray(x).ravel().tolist() for (x,) in one]
    assert len(expected) == 2
    with Loader(path, batch_size=4, **options) as other:
        other.load_state_dict(again)
        assert [np.asarray(x).ravel().tolist() for (x,) in other] == expected
