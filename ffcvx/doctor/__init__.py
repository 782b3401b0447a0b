"""``ffcvx doctor``: where a Loader's time goes, which resource bounds it, and what to change.

:func:`diagnose` measures (:mod:`.measure`, :mod:`.residency`), decides
(:mod:`.verdict`) and returns a :class:`Diagnosis` of plain values;
:mod:`.report` prints it, :mod:`.plot` draws it.
"""
import os
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .verdict import Figures, decide, predicted_rate

__all__ = ['Diagnosis', 'diagnose']


@dataclass
class Diagnosis:
    """What ``ffcvx doctor`` found; every value is a plain number, string, list or dict.

    Attributes
    ----------
    file : str
    samples : int
        Samples in each timed epoch (the measured sample).
    stages : dict of str to float
        CPU seconds per sample, in pipeline order: ``'loader'`` (order,
        labels, batch assembly; a Loader with the images dropped), then each
        image step (differences of Loaders cut after that step).
    storage : dict
        ``bytes_per_s``, ``bytes_per_sample``, ``bytes_read``, ``seconds``,
        ``img_per_s`` (of the storage alone).
    resident, resident_note : float or None, str
        Fraction of the file in the page cache, or why unknown.
    measured : dict of str to float
        Workers (as a string, for JSON) -> img/s of the full pipeline.
    predicted : dict of str to float
        Workers -> img/s of the model.
    with_step : float or None
        img/s with the simulated training step, None without ``step_ms``.
    host_to_device : float or None
        Seconds per sample to copy images to the GPU (None: no GPU).
    cores, workers : int
    other_load : float
        Threads of other processes ready to run, on average over the worker
        scan's timed epochs (each count's prediction uses the load sampled
        while that count ran).
    verdict : dict
        ``bound``, ``advice``, ``predicted_now``, ``predicted_after``.
    seconds : float
        How long the diagnosis took.
    """

    file: str
    samples: int
    stages: dict
    storage: dict
    resident: float
    resident_note: str
    measured: dict
    predicted: dict
    with_step: float
    host_to_device: float
    cores: int
    other_load: float
    workers: int
    step_ms: float
    verdict: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self):
        """The diagnosis as a JSON-ready dict."""
        return asdict(self)


def _mean_pixels(reader, image_field):
    values = reader.metadata[f'f{reader.field_names.index(image_field)}']
    if 'height' not in (values.dtype.names or ()):
        return None
    return float(np.mean(values['height'].astype(np.float64) * values['width']))


def _gpu_backends():
    from ..registry import Registry
    registry, found = Registry('ffcvx.decoders'), []
    for name in registry.names():
        try:
            if getattr(registry.get(name), 'device', 'cpu') == 'cuda' and registry.usable(name):
                found.append(name)
        except Exception:  # an unusable backend is simply not advised
            continue
    return found


def _stage_times(cumulative):
    """Per-step seconds from ``(name, seconds per sample of the pipeline cut after it)``.

    Another process on the cores only adds time, so a cut pipeline measured
    slower than a longer one is taken at the longer one's time (a running
    minimum from the end): steps never get negative times, and they add up
    to the full pipeline's time.
    """
    times = [seconds for _, seconds in cumulative]
    for k in range(len(times) - 2, -1, -1):
        times[k] = min(times[k], times[k + 1])
    return {name: times[k] - (times[k - 1] if k else 0.0)
            for k, (name, _) in enumerate(cumulative)}


def diagnose(recipe, batches=4, max_workers=None, step_ms=0.0, cores=None):
    """Measure ``recipe``'s Loader and decide what bounds it.

    Parameters
    ----------
    recipe : ffcvx.cli.loader_options.LoaderRecipe
        The file, pipelines and Loader options.
    batches : int
        Batches in each timed epoch (the sample size).
    max_workers : int or None
        Measure the full pipeline at 1..max_workers threads (default: the cores).
    step_ms : float
        A simulated training step per batch, ms (0: the loader alone).
    cores : int or None
        CPUs available (default: this process's affinity).

    Returns
    -------
    Diagnosis
    """
    from ..loader.epoch_iterator import thread_count
    from ..storage import is_url
    from . import measure
    from .residency import page_cache_residency

    began = time.perf_counter()
    cores = cores or len(os.sched_getaffinity(0))
    workers = thread_count(recipe.options.get('num_workers', -1))
    max_workers = max(1, min(max_workers or cores, cores))
    reader = recipe.reader
    indices = measure.sample_indices(reader.num_samples, batches * recipe.options['batch_size'],
                                     recipe.options.get('seed') or 0)
    resident, note = page_cache_residency(recipe.path)   # before the doctor's reads fill it
    storage = measure.storage_rate(recipe.path, recipe.options.get('storage_options'),
                                   reader, indices)
    storage['img_per_s'] = storage['bytes_per_s'] / max(storage['bytes_per_sample'], 1e-9)
    timings = [(name, measure.loader_timing(recipe, pipelines, mapper, indices, 1))
               for name, pipelines, mapper in measure.stage_pipelines(recipe)]
    stages = _stage_times([(name, cpu) for name, (cpu, _) in timings])
    measured = {'1': timings[-1][1][1]}
    loads = {}
    pipelines, mapper = recipe.pipelines()
    for count in range(2, max_workers + 1):
        load = measure.OtherLoad()   # the other processes' load while these epochs run
        measured[str(count)] = measure.loader_timing(recipe, pipelines, mapper, indices, count,
                                                     load=load)[1]
        loads[str(count)] = load.value
    load = float(np.mean(list(loads.values()))) if loads else measure.other_load()
    with_step = (measure.rate_with_step(recipe, indices, workers, step_ms) if step_ms > 0
                 else None)
    loader_cache = getattr(recipe.options.get('cache'), 'lower', lambda: None)()
    storage_rate = storage['img_per_s']
    if not is_url(recipe.path):
        # A local file's reads after the warm-up epoch come partly from the page cache: a
        # Loader that went faster than the storage estimate shows storage did not hold it back.
        # Then the verdict is about the cores (the storage figure stays in the report).
        storage_rate = None if max(measured.values()) >= storage_rate else storage_rate
    figures = Figures(stages=stages, storage_rate=storage_rate, cores=cores,
                      other_load=load,
                      workers=workers, batch_size=recipe.options['batch_size'],
                      step_ms=float(step_ms), order=recipe.options['order'].name.lower(),
                      cache=loader_cache or ('remote' if is_url(recipe.path) else 'os'),
                      is_url=is_url(recipe.path), resident=resident,
                      mean_pixels=_mean_pixels(reader, recipe.image_field),
                      gpu_backends=_gpu_backends())
    predicted = {str(w): predicted_rate(replace(figures, other_load=loads.get(str(w), load)), w)
                 for w in range(1, max(max_workers, workers) + 1)}
    return Diagnosis(file=recipe.path, samples=int(indices.size), stages=stages, storage=storage,
                     resident=resident, resident_note=note, measured=measured,
                     predicted=predicted, with_step=with_step,
                     host_to_device=measure.host_to_device(recipe, indices), cores=cores,
                     other_load=load,
                     workers=workers, step_ms=float(step_ms), verdict=decide(figures).to_dict(),
                     seconds=time.perf_counter() - began)
