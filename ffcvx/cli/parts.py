"""``--part k/K --parts-dir DIR`` of ``ffcvx convert``: one part of a conversion spread over
machines or processes (torchrun, SLURM array jobs), then ``ffcvx merge DIR/* OUT.beton``.

``--part auto`` takes ``k`` and ``K`` from the launcher (torchrun, a SLURM array, srun).
Each invocation writes part ``k`` of ``K`` (``part=(k, K)`` of the source's
``DatasetWriter.from_*`` call, FMT-093) to ``DIR/<OUT stem>.part-<k>-of-<K>.beton``, numbers zero-padded
so that a shell glob lists the parts in order. The writer renames a part into place
only once it is complete, so a part file that exists and opens is done: running the
same command again skips it (a killed run is redone, and only that part).

``--merge`` joins the parts into OUT in the same job: under torchrun every process
waits at a barrier of a ``gloo`` process group once its part is written, rank 0
merges, and every process learns the outcome
(:func:`ffcvx.writer.distributed_merge.merge_after_barrier`).
"""
import argparse
import os

from ..writer.checks import part_path
from .usage import UsageError

__all__ = ['add_part_options', 'merge_if_asked', 'part_from_environment', 'part_path',
           'written_part']

#: Seed of a part write when ``--seed`` is not given: every part must draw the same
#: random choices (FMT-093), so it cannot be left to chance.
DEFAULT_PART_SEED = 0


#: Environment variables that name this process's part: (k, K, first k) per launcher.
LAUNCHERS = (
    ('torchrun', 'RANK', 'WORLD_SIZE', None),
    ('a SLURM array', 'SLURM_ARRAY_TASK_ID', 'SLURM_ARRAY_TASK_COUNT', 'SLURM_ARRAY_TASK_MIN'),
    ('srun', 'SLURM_PROCID', 'SLURM_NTASKS', None),
)


def part_from_environment(environ=None):
    """``(k, K)`` from the launcher's variables (``--part auto``).

    torchrun's ``RANK``/``WORLD_SIZE`` first, then a SLURM array's task id
    (minus its first id) and count, then srun's ``SLURM_PROCID``/``SLURM_NTASKS``.

    Raises
    ------
    UsageError
        If none of them is set, or they do not make a part k of K.
    """
    environ = os.environ if environ is None else environ
    for launcher, index, count, first in LAUNCHERS:
        if index in environ and count in environ:
            try:
                offset = int(environ[first]) if first and first in environ else 0
                k = int(environ[index]) - offset
                total = int(environ[count])
            except ValueError:
                raise UsageError(f"--part auto: {index}/{count} set by {launcher} are not "
                                 f"integers") from None
            if total < 1 or not 0 <= k < total:
                raise UsageError(f"--part auto: {index}={environ[index]} and "
                                 f"{count}={environ[count]} ({launcher}) are not a part k of K")
            return k, total
    raise UsageError("--part auto: no RANK/WORLD_SIZE (torchrun), SLURM_ARRAY_TASK_ID/"
                     "SLURM_ARRAY_TASK_COUNT (SLURM array) or SLURM_PROCID/SLURM_NTASKS (srun) "
                     "in the environment; give --part k/K")


def _part(text):
    """``'k/K'`` as ``(k, K)`` with 0 <= k < K, or ``'auto'`` (argparse type)."""
    if text == 'auto':
        return text
    try:
        k, count = (int(v) for v in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected k/K (part k of K, k from 0), got {text!r}") \
            from None
    if count < 1 or not 0 <= k < count:
        raise argparse.ArgumentTypeError(f"part {text}: need K >= 1 and 0 <= k < K")
    return k, count


def add_part_options(parser):
    """``--part``, ``--parts-dir``, ``--seed`` and ``--merge`` of an ``ffcvx convert`` source."""
    group = parser.add_argument_group('parts (one .beton written by many processes; then '
                                      '`ffcvx merge DIR/* OUT.beton`)')
    group.add_argument('--part', type=_part, default=None, metavar='k/K',
                       help="write only part k of K (k from 0) of the samples into --parts-dir; "
                            "OUT.beton names the merged file, nothing is written there; 'auto': "
                            "k and K of this process under torchrun, a SLURM array or srun")
    group.add_argument('--parts-dir', default=None, metavar='DIR',
                       help="folder of the part files (created if missing)")
    group.add_argument('--seed', type=int, default=None, metavar='N',
                       help=f"root of the writer's random choices; every part must use the same "
                            f"(default with --part: {DEFAULT_PART_SEED})")
    group.add_argument('--merge', action='store_true',
                       help="once every part is written, merge them into OUT.beton: under "
                            "torchrun all processes wait at a barrier and rank 0 merges (a "
                            "SLURM array's tasks run apart: run `ffcvx merge` after it)")


def _check_merge(part):
    """``--merge`` of part ``(k, K)``: K = 1, or this process is rank k of K under torchrun."""
    k, count = part
    if count == 1:
        return
    from ..writer.distributed_merge import LAUNCHER_VARIABLES
    rank, world = os.environ.get('RANK'), os.environ.get('WORLD_SIZE')
    if any(name not in os.environ for name in LAUNCHER_VARIABLES):
        raise UsageError(f"--merge waits for the other parts at a torch.distributed barrier, so "
                         f"the processes must run together under torchrun "
                         f"({', '.join(LAUNCHER_VARIABLES)} set); otherwise run `ffcvx merge` "
                         f"once every part is written")
    if (str(k), str(count)) != (rank, world):
        raise UsageError(f"--merge: part {k}/{count} must be written by rank {k} of {count}, "
                         f"but this is rank {rank} of {world}; use --part auto")


def merge_if_asked(args, output, written=True):
    """With ``--merge``: join the parts of ``output`` into it (rank 0, after a barrier).

    ``written=False`` (this process's write failed) still meets the other
    processes, so that they stop instead of waiting for this part.

    Raises
    ------
    UsageError
        If the process group cannot be set up.
    ffcvx.errors.MergeError, ffcvx.errors.WriterError
        From the merge, or naming the parts not written (on every rank).
    """
    if not getattr(args, 'merge', False):
        return
    count = args.part[1]
    paths = [part_path(output, args.parts_dir, (k, count)) for k in range(count)]
    from ..writer.distributed_merge import init_from_launcher, merge_after_barrier
    from ..writer.merge import merge
    if count == 1:
        if written:
            merge(paths, output)
    else:
        try:
            if init_from_launcher():
                import atexit

                import torch.distributed as dist
                # one group for the whole command (fashion-mnist merges two files)
                atexit.register(dist.destroy_process_group)
        except RuntimeError as exc:
            raise UsageError(str(exc)) from None
        merge_after_barrier(paths, output, written=written)
    if written and args.part[0] == 0:
        print(f"merged {count} part{'s' if count > 1 else ''} into {output}")


def written_part(args, output=None):
    """Where this part of ``output`` (default ``args.output``) goes and whether it is
    already there, complete.

    Returns
    -------
    path : str or None
        The part file (None without ``--part``).
    done : bool
        The file exists and opens as a valid ``.beton``: nothing to do.

    Raises
    ------
    UsageError
        For ``--part`` without ``--parts-dir`` or the other way round, or a
        seed given differently than the writer needs; ``--merge`` without
        ``--part`` or outside torchrun with K > 1.
    """
    part, parts_dir = getattr(args, 'part', None), getattr(args, 'parts_dir', None)
    if part is None and parts_dir is None:
        if getattr(args, 'merge', False):
            raise UsageError("--merge joins the parts of --part k/K --parts-dir DIR; give them")
        return None, False
    if part is None or parts_dir is None:
        raise UsageError("--part and --parts-dir go together: --part k/K --parts-dir DIR")
    if part == 'auto':
        part = args.part = part_from_environment()
    if getattr(args, 'merge', False):
        _check_merge(part)
    if args.seed is None:
        args.seed = DEFAULT_PART_SEED
    os.makedirs(parts_dir, exist_ok=True)      # several ranks may create it at once
    path = part_path(args.output if output is None else output, parts_dir, part)
    if not os.path.exists(path):
        return path, False
    from ..errors import BetonFormatError
    from ..reader import Reader
    try:
        Reader(path)
    except BetonFormatError:
        return path, False          # not a part this writer finished: write it again
    return path, True
