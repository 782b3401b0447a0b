"""Rank 0 joins the parts once every rank is done with its own: :func:`merge_after_barrier`.

For conversions run as one ``torch.distributed`` job (torchrun, or srun with
the process group set up by the user): rank ``k`` writes part ``k`` of
``K``, then every rank calls :func:`merge_after_barrier` with the same list
of part files. No scheduler of our own: a gather over the process group
says when all parts are there (or that one failed: then nobody waits for
it), and a broadcast tells every rank how the merge went, so that no rank
reports success for a merge that failed.
"""
import datetime
import os

from ..errors import MergeError
from .merge import merge

__all__ = ['PART_WAIT', 'init_from_launcher', 'merge_after_barrier']

#: How long ranks wait at the barrier for the slowest part when :func:`init_from_launcher`
#: creates the group: a rerun skips complete parts, so a rank may wait out a whole part's
#: write. A rank that fails makes torchrun stop the others, so the wait never outlives a job.
PART_WAIT = datetime.timedelta(hours=48)

#: The variables torchrun sets for ``init_process_group(init_method='env://')``.
LAUNCHER_VARIABLES = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')


def _dist():
    import torch.distributed as dist
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed; merge the parts with "
                           "ffcvx.merge (or `ffcvx merge`) once every part is written")
    return dist


def init_from_launcher(environ=None):
    """Join the launcher's process group (CPU, ``gloo``) unless one is already set up.

    Parameters
    ----------
    environ : Mapping[str, str], optional
        Default ``os.environ``; must hold ``RANK``, ``WORLD_SIZE``,
        ``MASTER_ADDR`` and ``MASTER_PORT`` as torchrun sets them.

    Returns
    -------
    bool
        True if this call created the group (the caller destroys it).

    Raises
    ------
    RuntimeError
        If no group exists and the variables are missing (a SLURM array's
        tasks do not run together: run ``ffcvx merge`` after the array).
    """
    dist = _dist()
    if dist.is_initialized():
        return False
    environ = os.environ if environ is None else environ
    missing = [name for name in LAUNCHER_VARIABLES if name not in environ]
    if missing:
        raise RuntimeError(
            f"merging after a barrier needs the processes to run together under torchrun (or "
            f"with {', '.join(LAUNCHER_VARIABLES)} set); {', '.join(missing)} not set. In a "
            f"SLURM array the tasks run apart: run `ffcvx merge` once the array is done")
    dist.init_process_group('gloo', init_method='env://', timeout=PART_WAIT)
    return True


def merge_after_barrier(parts, out, custom_handlers=None, storage_options=None, written=True):
    """Wait until every rank is done with its part, merge on rank 0 (FMT-092), tell all ranks.

    Every rank of the initialised default process group must call this with
    the same ``parts`` and ``out`` once its own part is written, or once its
    write failed (``written=False``): then no rank waits for it, no merge
    happens and every rank raises.

    Parameters
    ----------
    parts : sequence of str or os.PathLike
        The part files, part 0 first, where rank 0 can read them.
    out : str or os.PathLike
        The merged file, written by rank 0.
    custom_handlers : Mapping[str, type[Field]], optional
        As for :func:`ffcvx.merge`.
    storage_options : dict, optional
        As for :func:`ffcvx.merge` (URL parts or ``out``).
    written : bool
        Whether this rank's part was written.

    Returns
    -------
    str
        ``out``, on every rank, once it is in place.

    Raises
    ------
    RuntimeError
        If ``torch.distributed`` is not initialised.
    MergeError, WriterError
        On rank 0, the merge's own error; on the other ranks a MergeError
        quoting it; on every rank a MergeError naming the ranks whose part
        was not written. Nothing is left at ``out`` but an older file then.

    Notes
    -----
    The ranks meet in a ``gloo`` group of their own (whatever the default
    group's backend, e.g. NCCL with its short watchdog), whose timeout is
    :data:`PART_WAIT`: room for the slowest part.
    """
    dist = _dist()
    if not dist.is_initialized():
        raise RuntimeError("merge_after_barrier needs an initialised torch.distributed process "
                           "group (torch.distributed.init_process_group); without one call "
                           "ffcvx.merge once every part is written")
    group = None if dist.get_backend() == 'gloo' else dist.new_group(backend='gloo',
                                                                     timeout=PART_WAIT)
    # the barrier: every rank says whether its part is there
    states = [None] * dist.get_world_size()
    dist.all_gather_object(states, bool(written), group=group)
    missing = [rank for rank, state in enumerate(states) if not state]
    if missing:
        raise MergeError(f"not merging into {os.fspath(out)}: the part of rank(s) {missing} was "
                         f"not written")
    outcome, failure = [None], None
    if dist.get_rank() == 0:
        try:
            merge(parts, out, custom_handlers=custom_handlers, storage_options=storage_options)
        except Exception as exc:        # every rank must hear of it, then rank 0 re-raises
            outcome[0], failure = f"{type(exc).__name__}: {exc}", exc
    dist.broadcast_object_list(outcome, src=0, group=group)
    if failure is not None:
        raise failure
    if outcome[0] is not None:
        raise MergeError(f"rank 0 could not merge the parts into {os.fspath(out)}: {outcome[0]}")
    return os.fspath(out)
