"""Rank 0 joins the parts once every rank has written its own: :func:`merge_after_barrier`.

For conversions run as one ``torch.distributed`` job (torchrun, or srun with
the process group set up by the user): rank ``k`` writes part ``k`` of
``K``, then every rank calls :func:`merge_after_barrier` with the same list
of part files. No scheduler of our own: the process group's barrier says
when all parts are there, and a broadcast tells every rank how the merge
went, so that no rank reports success for a merge that failed.
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


def merge_after_barrier(parts, out, custom_handlers=None):
    """Wait until every rank has written its part, merge on rank 0 (FMT-092), tell all ranks.

    Every rank of the initialised default process group must call this with
    the same ``parts`` and ``out``, after writing its own part.

    Parameters
    ----------
    parts : sequence of str or os.PathLike
        The part files, part 0 first, on a filesystem rank 0 sees.
    out : str or os.PathLike
        The merged file, written by rank 0.
    custom_handlers : Mapping[str, type[Field]], optional
        As for :func:`ffcvx.merge`.

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
        quoting it. Nothing is left at ``out`` but an older file then.

    Notes
    -----
    The barrier is bounded by the group's timeout (``init_process_group(...,
    timeout=...)``): give it room for the slowest part.
    """
    dist = _dist()
    if not dist.is_initialized():
        raise RuntimeError("merge_after_barrier needs an initialised torch.distributed process "
                           "group (torch.distributed.init_process_group); without one call "
                           "ffcvx.merge once every part is written")
    dist.barrier()
    outcome, failure = [None], None
    if dist.get_rank() == 0:
        try:
            merge(parts, out, custom_handlers=custom_handlers)
        except Exception as exc:        # every rank must hear of it, then rank 0 re-raises
            outcome[0], failure = f"{type(exc).__name__}: {exc}", exc
    dist.broadcast_object_list(outcome, src=0)
    if failure is not None:
        raise failure
    if outcome[0] is not None:
        raise MergeError(f"rank 0 could not merge the parts into {os.fspath(out)}: {outcome[0]}")
    return os.fspath(out)
