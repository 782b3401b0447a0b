"""A Loader's position as a checkpoint: ``state_dict()`` / ``load_state_dict(state)``.

The names and shape follow torchdata's ``Stateful`` protocol (a dict of plain
values), so PyTorch Lightning and ``torch.distributed.checkpoint`` can save it
with the model. The state names a position in the epoch's order (epoch
number, batches already handed out); resuming skips those batches without
reading or decoding them. Batches after a resume are bit-identical to the
uninterrupted run's because the order is a function of (seed, epoch) and
every built-in random step draws per sample from (seed, epoch, step, sample),
never from the batch's position.

The position is global: ``global_samples_done``, a prefix of the epoch's
global order (ranks take positions ``r, r + W, ...``, so after ``k`` batches
of ``b`` on each of ``W`` ranks exactly the first ``k * b * W`` positions are
done). Resuming on another number of ranks ``W'`` keeps the global batch
``b * W`` (so the per-rank batch size is ``b * W / W'``) and shards what is
left of that epoch's order, ``order[g:]`` padded with the order's head to a
multiple of ``W'``, as the ranks would have: every remaining sample is seen
once across ranks (plus that padding), with the same augmentations. On the
same world size this is exactly the uninterrupted run's layout. What is not
kept on another world size: which rank sees a sample, and the grouping of
samples into per-rank batches.
"""
import hashlib

import numpy as np

__all__ = ['STATE_VERSION', 'ResumeError', 'loader_state', 'resume_position', 'resumed_batches']

#: Version of the state's layout; a state of another version is refused.
STATE_VERSION = 1
_FORMAT = 'ffcvx.Loader'


class ResumeError(ValueError):
    """A state that does not belong to this Loader (file, configuration or version), or is damaged.

    Damaged: a field missing, of the wrong type or out of range (see
    :func:`resume_position`); ``spec/failures.md``, section Loading.
    """


def _identities(loader):
    """``(file, indices)`` digests, computed once per Loader (a few MB read at most)."""
    cached = loader.__dict__.get('_resume_identities')
    if cached is None:
        from ..storage.identity import FileIdentity
        indices = hashlib.blake2b(np.ascontiguousarray(loader.indices).tobytes(),
                                  digest_size=16).hexdigest()
        cached = (FileIdentity(loader.reader).content_key('sampled'), indices)
        loader.__dict__['_resume_identities'] = cached
    return cached


def _global_batch(loader):
    return loader.batch_size * loader.world_size


def _position(loader):
    """``(epoch, global samples done in it)`` of the next batch the Loader would yield."""
    progress = loader._progress
    if progress is None:        # no epoch started since construction or a load
        return loader.next_epoch, loader._resume_global or 0
    if progress['count'][0] >= progress['total']:
        return progress['epoch'] + 1, 0
    return progress['epoch'], progress['start'] + progress['count'][0] * _global_batch(loader)


def resumed_batches(loader, epoch, done):
    """This rank's batches of ``epoch`` after ``done`` global samples (module docstring)."""
    order = loader.traversal_order.global_order(epoch)
    world, rank = loader.world_size, loader.rank
    tail = order[done:]
    pad = -len(tail) % world if len(tail) else 0
    if pad:
        tail = np.concatenate([tail, np.resize(order, pad)])
    mine = np.ascontiguousarray(tail[rank::world], dtype=np.uint64)
    size = loader.batch_size
    count = len(mine) // size if loader.drop_last else -(-len(mine) // size)
    return [mine[b * size:(b + 1) * size] for b in range(count)]


def loader_state(loader):
    """The state dict of ``loader`` (see :meth:`ffcvx.loader.Loader.state_dict`)."""
    epoch, done = _position(loader)
    batches = done // _global_batch(loader)
    file_id, indices_id = _identities(loader)
    return {
        'format': _FORMAT, 'version': STATE_VERSION,
        'epoch': int(epoch), 'batches_done': int(batches),
        'samples_done': int(batches) * loader.batch_size,
        'global_samples_done': int(done), 'global_batch_size': _global_batch(loader),
        'seed': loader.seed, 'batch_size': loader.batch_size, 'drop_last': loader.drop_last,
        'distributed': loader.distributed, 'world_size': loader.world_size,
        'order': type(loader.traversal_order).__name__,
        'order_options': repr(sorted((loader._args.get('order_kwargs') or {}).items())),
        'num_samples': int(loader.reader.num_samples), 'file': file_id,
        'num_indices': int(len(loader.indices)), 'indices': indices_id,
    }


_MUST_MATCH = (
    ('num_samples', "the file has another number of samples"),
    ('file', "the file's content differs (another file or another version of it)"),
    ('num_indices', "indices= selects another number of samples"),
    ('indices', "indices= selects other samples"),
    ('order', "another traversal order"),
    ('order_options', "other order_kwargs"),
    ('global_batch_size', "another global batch (batch_size x world size): on "
                          "{world_size} ranks pass batch_size={per_rank}"),
    ('drop_last', "another drop_last"),
    ('seed', "another seed (build the Loader with seed={saved})"),
)

# Every field of a state and its type (loader_state() writes exactly these).
_INT_FIELDS = ('version', 'epoch', 'batches_done', 'samples_done', 'global_samples_done',
               'global_batch_size', 'seed', 'batch_size', 'world_size', 'num_samples',
               'num_indices')
_STR_FIELDS = ('format', 'order', 'order_options', 'file', 'indices')
_BOOL_FIELDS = ('drop_last', 'distributed')

#: Saved epochs must be below this. The order and the augmentation seeds take
#: any non-negative int, but checkpoint formats (numpy, torch tensors,
#: torch.distributed.checkpoint) may hold an int as int64, and no run counts
#: that far: a larger epoch is damage, not progress.
EPOCH_LIMIT = 2 ** 63


def _shown(value):
    """``repr(value)`` cut to 60 characters (a damaged state may hold anything)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + '...'


def _typed(key, value):
    """``(value as int/str/bool, None)``, or ``(None, problem)`` for a value of the wrong type.

    numpy integers and ``numpy.bool_`` are taken: a state that went through
    numpy (or a tool that stores ints as int64) holds them, with the same
    meaning. A bool is not an int here, and no float is one, even an integral
    one: a float position was computed, not saved, and may have been rounded.
    """
    if key in _INT_FIELDS:
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value), None
        kind = 'an int'
    elif key in _STR_FIELDS:
        if isinstance(value, str):
            return str(value), None
        kind = 'a str'
    else:
        if isinstance(value, (bool, np.bool_)):
            return bool(value), None
        kind = 'a bool'
    return None, f"{key}: saved {_shown(value)} ({type(value).__name__}), expected {kind}"


def _checked_fields(state):
    """``state``'s fields as plain int/str/bool; ResumeError naming every missing or mistyped one."""
    if not isinstance(state, dict):
        raise ResumeError(f"not a Loader state (from Loader.state_dict()): {type(state).__name__}")
    fmt = state.get('format')
    if not isinstance(fmt, str) or fmt != _FORMAT:
        raise ResumeError(f"not a Loader state (from Loader.state_dict()): format "
                          f"{_shown(fmt)}, expected {_FORMAT!r}")
    version, problem = _typed('version', state.get('version'))
    if problem is not None or version != STATE_VERSION:
        raise ResumeError(f"Loader state version {_shown(state.get('version'))}; this ffcvx "
                          f"reads version {STATE_VERSION}")
    saved, problems = {}, []
    for key in _INT_FIELDS + _STR_FIELDS + _BOOL_FIELDS:
        if key not in state:
            problems.append(f"{key}: missing")
            continue
        saved[key], problem = _typed(key, state[key])
        if problem is not None:
            problems.append(problem)
    if problems:
        raise ResumeError("damaged Loader state: " + "; ".join(problems))
    return saved


def _shape_problems(saved):
    """What is wrong with the saved epoch, world size and batch sizes (empty if nothing)."""
    problems = []
    if not 0 <= saved['epoch'] < EPOCH_LIMIT:
        problems.append(f"epoch: saved {saved['epoch']}, expected 0 <= epoch < 2**63")
    if saved['world_size'] < 1:
        problems.append(f"world_size: saved {saved['world_size']}, expected at least 1")
    elif not saved['distributed'] and saved['world_size'] != 1:
        problems.append(f"world_size: saved {saved['world_size']} with distributed False "
                        f"(a Loader that is not distributed runs on 1 rank)")
    if saved['batch_size'] < 1:
        problems.append(f"batch_size: saved {saved['batch_size']}, expected at least 1")
    elif saved['batch_size'] * saved['world_size'] != saved['global_batch_size']:
        problems.append(f"batch_size: saved {saved['batch_size']} on world_size "
                        f"{saved['world_size']} ranks, but global_batch_size is "
                        f"{saved['global_batch_size']}")
    return problems


def _position_problems(saved, num_indices):
    """What is wrong with the saved position in its epoch (empty if nothing).

    On ``W`` ranks of ``b`` an epoch has ``k`` batches per rank (the padded
    shard ``ceil(n / W)`` in batches of ``b``, the last one dropped or
    partial); a position is ``j * b * W`` with ``j < k``, or 0. A finished
    epoch is saved as the next one's 0 (``_position``), so ``j = k`` is damage.
    """
    world, per_rank, every = saved['world_size'], saved['batch_size'], saved['global_batch_size']
    epoch, done = saved['epoch'], saved['global_samples_done']
    shard = -(-num_indices // world)
    batches = shard // per_rank if saved['drop_last'] else -(-shard // per_rank)
    if done != 0 and (done < 0 or done % every or done >= batches * every):
        return [f"global_samples_done: Loader state names global sample {done} of epoch {epoch}; "
                f"an epoch of this Loader has {shard * world} in batches of {every} "
                f"({batches} on {world} rank(s)), so a position is 0 or a multiple of "
                f"{every} below {batches * every}"]
    problems = []
    if saved['batches_done'] != done // every:
        problems.append(f"batches_done: saved {saved['batches_done']}, but global_samples_done "
                        f"{done} is {done // every} batch(es) of {every}")
    elif saved['samples_done'] != saved['batches_done'] * per_rank:
        problems.append(f"samples_done: saved {saved['samples_done']}, expected batches_done x "
                        f"batch_size = {saved['batches_done'] * per_rank}")
    return problems


def resume_position(loader, state):
    """Check ``state`` against ``loader``; return ``(epoch, global samples done)``.

    Every field :func:`loader_state` writes is checked for presence, type
    (ints are ``int`` or numpy integers, never bool or float; strs ``str``;
    bools ``bool`` or ``numpy.bool_``) and range before any is used, so a
    damaged state is refused rather than truncated or read in part.

    Parameters
    ----------
    loader : ffcvx.loader.Loader
    state : dict
        From :func:`loader_state` (``Loader.state_dict()``), possibly saved
        and loaded since, possibly of another world size with the same global batch.

    Returns
    -------
    (int, int)
        The epoch to start at, and the global samples of it already done.

    Raises
    ------
    ResumeError
        If ``state`` is not a dict of this format and version; if a field is
        missing or of the wrong type; if any of file, sample count,
        indices, order, global batch size, drop_last or seed differs from
        the Loader's; if the epoch is negative or at least 2**63; if
        world_size or batch_size is below 1, ``batch_size * world_size`` is
        not ``global_batch_size``, or a Loader that was not distributed
        names more than one rank; if ``global_samples_done`` is not a batch
        boundary inside the epoch, or ``batches_done`` / ``samples_done``
        disagree with it. The message names each offending field.
    """
    saved = _checked_fields(state)
    mine = loader_state(loader)
    hints = {'world_size': loader.world_size,
             'per_rank': (saved['global_batch_size'] // loader.world_size
                          if saved['global_batch_size'] % loader.world_size == 0
                          else f"{saved['global_batch_size']}/{loader.world_size} (not an integer)")}
    problems = [f"{key}: saved {saved[key]!r}, this Loader {mine[key]!r} ("
                f"{why.format(saved=saved[key], **hints)})"
                for key, why in _MUST_MATCH if saved[key] != mine[key]]
    if problems:
        raise ResumeError(f"this state cannot resume the Loader of {loader.fname}: "
                          + "; ".join(problems))
    problems = (_shape_problems(saved)
                or _position_problems(saved, len(loader.indices)))
    if problems:
        raise ResumeError("damaged Loader state: " + "; ".join(problems))
    epoch, done = saved['epoch'], saved['global_samples_done']
    if done and not resumed_batches(loader, epoch, done):
        # A position saved on another world size may leave this Loader no whole
        # batch of that epoch (drop_last): its next batch is the next epoch's first.
        return epoch + 1, 0
    return epoch, done
