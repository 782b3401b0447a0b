"""Per-sample seeds: random augmentations that depend only on the Loader's seed.

A random step draws from NumPy's generator in compiled code, which Numba
keeps per thread. Which thread handles which sample changes from run to run,
so drawing from that state directly makes augmentations irreproducible even
with ``Loader(seed=...)`` (FFCV issue #392). Instead a step that sets
``code.with_seed = True`` receives a ``seed`` for the batch, a ``uint64``
derived from the Loader's seed, the epoch and the step's place in the
pipelines, and calls :func:`seed_sample` before each sample's draws: every
draw then depends on ``(Loader seed, epoch, step, sample index)`` only, not
on threads, batch size or order.

An Operation with its own integer ``seed`` (FFCV-SSL's ``seed=`` argument)
draws from ``(its seed, epoch, its seed_kind, sample index)`` instead, so
that two ops of one kind with the same seed draw the same numbers wherever
they are: how a ``Label*`` op reports exactly what its image op drew, and
how ``second_seed`` reaches another op's draws. ``seed_kind`` defaults to
the class name; a label op sets its image op's.
"""
from dataclasses import dataclass
import zlib

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
_MASK64 = (1 << 64) - 1


@njit(nogil=True)
def mix64(z):
    """SplitMix64's finaliser: a bijective scramble of a ``uint64``."""
    z = (z ^ (z >> _S30)) * _MUL1
    z = (z ^ (z >> _S27)) * _MUL2
    return z ^ (z >> _S31)


@njit(nogil=True)
def seed_sample(seed, index):
    """Seed this thread's NumPy generator (compiled code) for one sample.

    Parameters
    ----------
    seed : uint64
        The step's seed for this batch (the ``seed`` argument of a step with
        ``with_seed``).
    index : int
        The sample's index in the dataset file.
    """
    z = mix64(np.uint64(seed) ^ mix64(np.uint64(index) + _GOLDEN))
    np.random.seed(np.uint32(z >> _S32))


def _mix64_py(z):
    # mix64 in Python integers (for seeds computed once per epoch or step).
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def epoch_seed(loader_seed, epoch):
    """The seed of one epoch's augmentations, an int in ``[0, 2**64)``."""
    return _mix64_py(_mix64_py(int(loader_seed)) + int(epoch) * 0x9E3779B97F4A7C15)


def step_salt(pipeline_name, position):
    """A stable number per step, so that two random steps never draw alike."""
    return zlib.crc32(f"{pipeline_name}/{position}".encode())


def step_seed(epoch_seed_value, salt):
    """The ``seed`` argument a step gets for every batch of an epoch (``numpy.uint64``)."""
    return np.uint64(_mix64_py(epoch_seed_value ^ (salt * 0x9E3779B97F4A7C15)))


def kind_salt(kind):
    """Salt of an Operation with its own seed: depends on its ``seed_kind`` only."""
    return zlib.crc32(f"kind:{kind}".encode())


def seed_streams(operation, name, position):
    """``[(own_seed or None, salt), ...]``: one per seed a seeded step receives.

    A step receives one stream unless its Operation lists several in
    ``seed_values`` (e.g. ``(seed, second_seed)``), or stands for several
    Operations (``seed_sources``: ``(operation, name, position)`` each). A stream whose seed is
    None follows the Loader's seed and is salted by the step's place
    (``name``, ``position``); an integer one is salted by ``seed_kind``.

    Parameters
    ----------
    operation : Operation
    name : str
        The output's name.
    position : int
        The step's place in that output's pipeline.

    Raises
    ------
    TypeError
        For a seed that is neither None nor an integer.
    """
    # The hooks are Operation's, declared with their defaults (spec/pipeline.md PIP-008).
    if operation.seed_sources is not None:
        # A step doing the work of several Operations (a shared decode of
        # views): each one's streams, as its own step would have them.
        return [stream for op, op_name, op_position in operation.seed_sources
                for stream in seed_streams(op, op_name, op_position)]
    values = operation.seed_values
    if values is None:
        values = (operation.seed,)
    kind = operation.seed_kind or type(operation).__name__
    streams = []
    for value in values:
        if value is None:
            streams.append((None, step_salt(name, position)))
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            streams.append((int(value), kind_salt(kind)))
        else:
            raise TypeError(f"{type(operation).__name__}: seed must be None or an int, got {value!r}")
    return streams


@dataclass(frozen=True)
class EpochSeeds:
    """What seeds one epoch's random steps: the Loader's seed and the epoch number."""

    loader_seed: int = 0
    epoch: int = 0

    def stream(self, own_seed, salt):
        """The ``seed`` (``numpy.uint64``) a step stream gets for every batch of this epoch."""
        base = self.loader_seed if own_seed is None else own_seed
        return step_seed(epoch_seed(base, self.epoch), salt)

    def for_step(self, streams):
        """The ``seed`` argument of a step: a ``uint64``, or a tuple of them for several streams."""
        values = tuple(self.stream(own, salt) for own, salt in streams)
        return values[0] if len(values) == 1 else values
