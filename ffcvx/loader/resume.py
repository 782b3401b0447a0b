"""A Loader's position as a checkpoint: ``state_dict()`` / ``load_state_dict(state)``.

The names and shape follow torchdata's ``Stateful`` protocol (a dict of plain
values), so PyTorch Lightning and ``torch.distributed.checkpoint`` can save it
with the model. The state names a position in the epoch's order (epoch
number, batches already handed out); resuming skips those batches without
reading or decoding them. Batches after a resume are bit-identical to the
uninterrupted run's because the order is a function of (seed, epoch) and
every built-in random step draws per sample from (seed, epoch, step, sample),
never from the batch's position.

This first version resumes on the same world size only; a state saved with
another number of ranks is refused (``ResumeError``), never silently remapped.
"""
import hashlib

import numpy as np

__all__ = ['STATE_VERSION', 'ResumeError', 'loader_state', 'resume_position']

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


def _position(loader):
    """``(epoch, batches handed out in it)`` of the next batch the Loader would yield."""
    progress = loader._progress
    if progress is None:        # no epoch started since construction or a load
        return loader.next_epoch, loader._resume_batches
    done = progress['start'] + progress['count'][0]
    if done >= progress['total']:
        return progress['epoch'] + 1, 0
    return progress['epoch'], done


def loader_state(loader):
    """The state dict of ``loader`` (see :meth:`ffcvx.loader.Loader.state_dict`)."""
    epoch, batches = _position(loader)
    file_id, indices_id = _identities(loader)
    return {
        'format': _FORMAT, 'version': STATE_VERSION,
        'epoch': int(epoch), 'batches_done': int(batches),
        'samples_done': int(batches) * loader.batch_size,
        'global_samples_done': int(batches) * loader.batch_size * loader.world_size,
        'seed': loader.seed, 'batch_size': loader.batch_size, 'drop_last': loader.drop_last,
        'distributed': loader.distributed, 'world_size': loader.world_size,
        'order': type(loader.traversal_order).__name__,
        'num_samples': int(loader.reader.num_samples), 'file': file_id,
        'num_indices': int(len(loader.indices)), 'indices': indices_id,
    }


_MUST_MATCH = (
    ('num_samples', "the file has another number of samples"),
    ('file', "the file's content differs (another file or another version of it)"),
    ('num_indices', "indices= selects another number of samples"),
    ('indices', "indices= selects other samples"),
    ('order', "another traversal order"),
    ('batch_size', "another batch_size"),
    ('drop_last', "another drop_last"),
    ('distributed', "another distributed= setting"),
    ('world_size', "another world size (resuming on a different number of ranks is not "
                   "supported yet: resume with the saved number of ranks)"),
    ('seed', "another seed (build the Loader with seed={saved})"),
)


def resume_position(loader, state):
    """Check ``state`` against ``loader``; return ``(epoch, batches_done)`` to resume at.

    Raises
    ------
    ResumeError
        If ``state`` is not a Loader state of this version, or any of file,
        sample count, indices, order, batch size, drop_last, distributed,
        world size or seed differs; the message names every mismatch.
    """
    if not isinstance(state, dict) or state.get('format') != _FORMAT:
        raise ResumeError(f"not a Loader state (from Loader.state_dict()): {type(state).__name__}")
    if state.get('version') != STATE_VERSION:
        raise ResumeError(f"Loader state version {state.get('version')!r}; this ffcvx reads "
                          f"version {STATE_VERSION}")
    mine = loader_state(loader)
    problems = [f"{key}: saved {state.get(key)!r}, this Loader {mine[key]!r} ("
                f"{why.format(saved=state.get(key))})"
                for key, why in _MUST_MATCH if state.get(key) != mine[key]]
    if problems:
        raise ResumeError(f"this state cannot resume the Loader of {loader.fname}: "
                          + "; ".join(problems))
    epoch, batches = int(state['epoch']), int(state['batches_done'])
    if epoch < 0 or batches < 0 or batches > len(loader):
        raise ResumeError(f"Loader state names batch {batches} of epoch {epoch}; an epoch of "
                          f"this Loader has {len(loader)} batches")
    return epoch, batches
