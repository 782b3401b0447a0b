"""The doctor's verdict: which resource bounds the Loader, the one change that helps most, its gain.

A pure function of the measured figures (:func:`decide`), so that every
bound and every piece of advice can be checked on hand-made numbers.

The model: with ``W`` workers on ``C`` cores a Loader makes
``min(storage img/s, cores_used(W) / T)`` img/s, where
``cores_used`` is ``min(W, C)`` on an idle machine (:func:`cores_used`), where ``T`` is the sum of the
per-sample, per-core times of its stages (the loader's own work, decoding,
each augmentation step). A training step of ``s`` ms per batch of ``B``
consumes at most ``B / s`` img/s.
"""
from dataclasses import asdict, dataclass

__all__ = ['Figures', 'Verdict', 'cores_used', 'decide', 'duration', 'predicted_rate']

#: The image side (pixels) that ``max_resolution`` advice aims for: 512 keeps
#: RandomResizedCrop to 224 sharp (ImageNet's usual choice is 256..512).
TARGET_SIDE = 512
#: Advice to shrink images only when they are at least this many times the target's pixels.
SHRINK_WORTH = 1.5


@dataclass
class Figures:
    """What the doctor measured; seconds are per sample per core.

    Attributes
    ----------
    stages : dict of str to float
        ``'loader'`` (order, labels, batching), then the image pipeline's
        steps in order, the decoder first.
    storage_rate : float or None
        img/s the storage delivers (None: not measured).
    cores : int
        CPUs this process may run on.
    other_load : float
        Threads of other processes ready to run (0: an idle machine).
    workers : int
        The Loader's decoding threads.
    batch_size : int
    step_ms : float
        The simulated training step per batch, 0 for none.
    order : str
        ``'sequential'``, ``'random'`` or ``'quasi_random'``.
    cache : str
        The memory strategy's name (``'os'``, ``'process'``, ``'remote'``, ...).
    is_url : bool
    resident : float or None
        Fraction of a local file in the page cache.
    mean_pixels : float or None
        Mean stored image height * width.
    gpu_backends : list of str
        Installed decoder backends that decode on a GPU.
    """

    stages: dict
    storage_rate: float = None
    cores: int = 1
    other_load: float = 0.0
    workers: int = 1
    batch_size: int = 1
    step_ms: float = 0.0
    order: str = 'random'
    cache: str = 'os'
    is_url: bool = False
    resident: float = None
    mean_pixels: float = None
    gpu_backends: list = ()


@dataclass
class Verdict:
    """The bound, the advice, and img/s now and after the advice (None: not predicted)."""

    bound: str
    advice: str
    predicted_now: float
    predicted_after: float = None

    def to_dict(self):
        return asdict(self)


def cores_used(workers, cores, other_load=0.0):
    """Cores ``workers`` decoding threads get on ``cores`` CPUs beside ``other_load`` runnable threads.

    The workers meet at the end of every batch (each decodes its share of
    the batch, then all wait), so they go at the pace of the slowest: they
    get the cores the other threads leave free, ``cores - other_load``, and
    never less than one thread's fair share, ``cores / (1 + other_load)``;
    at most ``min(workers, cores)``. (A fair share of ``cores * workers /
    (workers + other_load)`` over-predicts: a worker descheduled for a time
    slice holds up the whole batch.)
    """
    free = max(cores - other_load, cores / (1.0 + other_load))
    return min(workers, cores, free)


def predicted_rate(figures, workers, stages=None):
    """img/s the model predicts at ``workers`` threads (``stages`` overrides the measured times)."""
    total = sum((stages or figures.stages).values())
    compute = cores_used(workers, figures.cores, figures.other_load) / max(total, 1e-12)
    if figures.storage_rate is None:
        return compute
    return min(compute, figures.storage_rate)


def duration(seconds):
    """``seconds`` in ms, or in µs below 0.1 ms."""
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-4 else f"{seconds * 1e6:.1f} µs"


def _dominant(stages):
    steps = [(name, seconds) for name, seconds in stages.items() if name != 'loader']
    return max(steps, key=lambda item: item[1]) if steps else ('loader', stages.get('loader', 0))


def decide(figures):
    """The :class:`Verdict` for ``figures`` (a :class:`Figures`).

    Bounds: ``'consumer'`` when the training step takes longer than the
    Loader needs for a batch; ``'storage'`` when the storage delivers fewer
    img/s than the cores could decode; else ``'decode'`` when the decoder is
    the costliest stage, ``'augmentation'`` when another step is.
    """
    now = predicted_rate(figures, figures.workers)
    compute = predicted_rate(_cores_only(figures), figures.workers)
    if figures.step_ms > 0 and figures.batch_size / (figures.step_ms / 1000) < now:
        consumer = figures.batch_size / (figures.step_ms / 1000)
        return Verdict('consumer', f"the training step ({figures.step_ms:g} ms per batch, "
                                   f"{consumer:.0f} img/s) is slower than the loader "
                                   f"({now:.0f} img/s): the loader is not what to speed up",
                       consumer)
    if figures.storage_rate is not None and figures.storage_rate < compute:
        return _storage_advice(figures, now, compute)
    return _compute_advice(figures, now)


def _cores_only(figures):
    """``figures`` without the storage limit (the cores' rate alone)."""
    return Figures(**dict(vars(figures), storage_rate=None))


def _storage_advice(figures, now, compute):
    if figures.order == 'random' and (figures.is_url or figures.cache not in ('os',)):
        advice = ("use order=OrderOption.QUASI_RANDOM: pages are then read whole, in turn, "
                  "instead of in random order")
    elif not figures.is_url and figures.resident is not None and figures.resident < 0.5:
        advice = (f"use cache='process' (only {figures.resident:.0%} of the file is in the page "
                  "cache): pages are then read ahead of need")
    elif figures.is_url:
        advice = "use a disk cache (cache_options={'cache_dir': ...}) so that later runs read locally"
    else:
        advice = ("store smaller samples (a smaller max_resolution or jpeg quality at write time) "
                  "or move the file to faster storage")
    return Verdict('storage', advice + f"; up to {compute:.0f} img/s, what the cores decode",
                   now, compute)


def _compute_advice(figures, now):
    name, seconds = _dominant(figures.stages)
    decoder = next((n for n in figures.stages if n != 'loader'), None)
    bound = 'decode' if name == decoder else 'augmentation'
    if figures.workers < figures.cores:
        after = predicted_rate(figures, figures.cores)
        return Verdict(bound, f"use num_workers={figures.cores} (now {figures.workers}): "
                              f"{figures.cores} cores are available", now, after)
    if bound == 'augmentation':
        stages = dict(figures.stages, **{name: 0.0})
        after = predicted_rate(figures, figures.workers, stages)
        return Verdict(bound, f"{name} takes {duration(seconds)} per sample per core: run it on "
                              "the GPU (after ToDevice), or use a cheaper step", now, after)
    target = TARGET_SIDE ** 2
    if figures.mean_pixels and figures.mean_pixels > SHRINK_WORTH * target:
        # decoding time grows about in proportion to the pixels decoded
        stages = dict(figures.stages, **{name: seconds * target / figures.mean_pixels})
        after = predicted_rate(figures, figures.workers, stages)
        side = int(round(figures.mean_pixels ** 0.5))
        return Verdict(bound, f"write the file with max_resolution={TARGET_SIDE} (images are "
                              f"~{side}x{side} px on average; decoding time follows pixels)",
                       now, after)
    if figures.gpu_backends:
        return Verdict(bound, f"decode on the GPU: backend={figures.gpu_backends[0]!r} "
                              "(not measured here)", now)
    return Verdict(bound, f"decoding takes {duration(seconds)} per sample per core on images "
                          "already small: more CPU cores, or a GPU decoder backend", now)
