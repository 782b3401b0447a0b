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
    """A state that does not belong to this Loader (file, configuration or version)."""


def _identities(loader):
    """``(file, indices)`` digests, computed once per Loader (a few MB read at most)."""
    cached = loader.__dict__.get('_resume_identities')
    if cached is None:
        from ..memory_managers.redis_keys import file_identity
        indices = hashlib.blake2b(np.ascontiguousarray(loader.indices).tobytes(),
                                  digest_size=16).hexdigest()
        cached = (file_identity(loader.reader, mode='sampled'), indices)
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


def resume_position(loader, state):
    """Check ``state`` against ``loader``; return ``(epoch, global samples done)``.

    Raises
    ------
    ResumeError
        If ``state`` is not a Loader state of this version, or any of file,
        sample count, indices, order, global batch size, drop_last or seed
        differs; the message names every mismatch.
    """
    if not isinstance(state, dict) or state.get('format') != _FORMAT:
        raise ResumeError(f"not a Loader state (from Loader.state_dict()): {type(state).__name__}")
    if state.get('version') != STATE_VERSION:
        raise ResumeError(f"Loader state version {state.get('version')!r}; this ffcvx reads "
                          f"version {STATE_VERSION}")
    mine = loader_state(loader)
    saved_global = state.get('global_batch_size')
    hints = {'world_size': loader.world_size,
             'per_rank': (saved_global // loader.world_size
                          if isinstance(saved_global, int) and saved_global % loader.world_size == 0
                          else f"{saved_global}/{loader.world_size} (not an integer)")}
    problems = [f"{key}: saved {state.get(key)!r}, this Loader {mine[key]!r} ("
                f"{why.format(saved=state.get(key), **hints)})"
                for key, why in _MUST_MATCH if state.get(key) != mine[key]]
    if problems:
        raise ResumeError(f"this state cannot resume the Loader of {loader.fname}: "
                          + "; ".join(problems))
    epoch, done = int(state['epoch']), int(state['global_samples_done'])
    padded = -(-len(loader.indices) // state['world_size']) * state['world_size']
    if epoch < 0 or done < 0 or done % _global_batch(loader) or done > padded:
        raise ResumeError(f"Loader state names global sample {done} of epoch {epoch}; an epoch "
                          f"of this Loader has {padded} in batches of {_global_batch(loader)}")
    return epoch, done
