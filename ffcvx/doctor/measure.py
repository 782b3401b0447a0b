"""The doctor's measurements: storage, per-step time with the real compiled pipelines, workers.

Per-step times come from Loaders whose image pipeline is cut after step k
(the decoder alone, decoder + the next step, ..., the full pipeline), each
run with one worker over the same samples after a warm-up epoch (which
compiles, and fills a URL's page arena), so that differences between them are
the compiled steps' own time per sample per core: CPU time, which
another process on the same cores does not inflate as it does wall time. A Loader that reads only
the labels (images dropped) gives the loader's own cost: order, label reads,
batch assembly and hand-out.
"""
import contextlib
import os
import threading
import time

import numpy as np

__all__ = ['image_outputs', 'loader_timing', 'OtherLoad', 'other_load', 'sample_indices', 'stage_pipelines',
           'storage_rate', 'host_to_device', 'rate_with_step']


def sample_indices(num_samples, count, seed=0):
    """``count`` sample numbers (repeated when the file has fewer), uint64."""
    rng = np.random.default_rng(seed)
    return rng.choice(num_samples, size=count, replace=count > num_samples).astype(np.uint64)


def storage_rate(path, storage_options, reader, indices, budget_s=2.0):
    """Read the data pages of ``indices``'s samples through a fresh Source, timed.

    One request at a time, whole pages (the unit every strategy reads), at
    most ``budget_s`` seconds after the first page.

    Returns
    -------
    dict
        ``bytes_read``, ``seconds``, ``bytes_per_s`` and ``bytes_per_sample``
        (the data pages' bytes over the samples: what one epoch reads per sample).
    """
    from ..storage import open_source
    table = reader.alloc_table
    wanted = np.isin(table['sample_id'], indices)
    start = int(reader.data_region_start)
    end = int(reader.header['alloc_table_ptr'])
    page = int(reader.page_size)
    pages = np.unique((table['ptr'][wanted].astype(np.int64) - start) // page)
    source = open_source(path, storage_options)
    read, began = 0, time.perf_counter()
    try:
        for number in pages:
            offset = start + int(number) * page
            buffer = np.empty(min(page, end - offset), dtype=np.uint8)
            source.read_into(offset, memoryview(buffer))
            read += buffer.size
            if time.perf_counter() - began > budget_s:
                break
    finally:
        source.close()
    seconds = time.perf_counter() - began
    return {'bytes_read': read, 'seconds': seconds, 'bytes_per_s': read / max(seconds, 1e-9),
            'bytes_per_sample': (end - start) / max(reader.num_samples, 1)}


def _running_threads():
    """(runnable threads on the machine, runnable threads of this process), from /proc."""
    with open('/proc/stat') as f:
        machine = next(int(line.split()[1]) for line in f if line.startswith('procs_running'))
    own = 0
    for task in os.listdir('/proc/self/task'):
        try:
            with open(f'/proc/self/task/{task}/stat') as f:
                # the state follows the parenthesised name, which may hold spaces
                own += f.read().rpartition(')')[2].split()[0] == 'R'
        except OSError:
            continue   # a thread that ended meanwhile
    return machine, own


class OtherLoad:
    """Threads of other processes ready to run, sampled in the background while in the ``with``.

    ``procs_running`` (``/proc/stat``) counts every runnable thread of the
    machine, less this process's own runnable threads: it measures demand,
    which a share of CPU time cannot once the CPUs are full. ``value`` is the
    mean, 0.0 when ``/proc`` cannot be read.
    """

    def __init__(self, interval_s=0.01):
        self.interval_s = interval_s
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            try:
                machine, own = _running_threads()
            except (OSError, ValueError, StopIteration):
                return
            self.samples.append(max(machine - own, 0))
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def value(self):
        return float(np.mean(self.samples)) if self.samples else 0.0


def other_load(window_s=0.3):
    """:class:`OtherLoad` over ``window_s`` seconds of waiting."""
    with OtherLoad() as load:
        time.sleep(window_s)
    return load.value


def image_outputs(recipe, pipelines):
    """Names of the outputs that decode the image field (its views included)."""
    return [recipe.image_field] + [name for name in pipelines
                                   if name not in recipe.reader.handlers]


def stage_pipelines(recipe):
    """The pipelines of each measured stage, from fewest steps to all.

    Returns
    -------
    list of (str, dict, dict or None)
        ``(stage name, pipelines, custom_field_mapper)``: first ``'loader'``
        (images dropped), then one per step of the image pipeline, named by the
        step's class. A pipeline that is not a list of Operations is one stage.
    """
    pipelines, mapper = recipe.pipelines()
    outputs = image_outputs(recipe, pipelines)
    steps = pipelines.get(recipe.image_field)
    dropped = {name: (None if name in outputs else value) for name, value in pipelines.items()}
    stages = [('loader', dropped, None)]
    if not isinstance(steps, (list, tuple)) or not steps:
        return stages + [('pipeline', pipelines, mapper)]
    for k in range(1, len(steps) + 1):
        fresh, fresh_mapper = recipe.pipelines()
        for name in outputs:
            fresh[name] = list(fresh[name])[:k]
        stages.append((type(steps[k - 1]).__name__, fresh, fresh_mapper))
    return stages


def _loader(recipe, pipelines, mapper, indices, workers):
    from ..loader import Loader
    options = dict(recipe.options, num_workers=workers, indices=indices, drop_last=False)
    return Loader(recipe.path, pipelines=pipelines, custom_field_mapper=mapper, **options)


def _epoch(loader, step_s=0.0):
    """Samples, wall seconds and this process's CPU seconds of one epoch."""
    count, began, cpu = 0, time.perf_counter(), time.process_time()
    for batch in loader:
        count += len(batch[0])
        if step_s:
            time.sleep(step_s)
    return count, time.perf_counter() - began, time.process_time() - cpu


def loader_timing(recipe, pipelines, mapper, indices, workers, epochs=3, load=None):
    """One warm-up epoch, then ``epochs`` timed ones, of a Loader with ``pipelines``.

    ``load``, an :class:`OtherLoad` or None, samples the other processes'
    load during the timed epochs (not the warm-up, which compiles).

    Returns
    -------
    (float, float)
        The least CPU seconds per sample (every thread's, so the time per
        sample per core whatever else runs on the machine), and the highest
        img/s of wall time.
    """
    with _loader(recipe, pipelines, mapper, indices, workers) as loader:
        _epoch(loader)
        with load if load is not None else contextlib.nullcontext():
            runs = [_epoch(loader) for _ in range(epochs)]
    return (min(cpu / max(count, 1) for count, _, cpu in runs),
            max(count / max(wall, 1e-9) for count, wall, _ in runs))


def rate_with_step(recipe, indices, workers, step_ms):
    """img/s of the full pipeline when each batch is followed by a ``step_ms`` sleep (a training step)."""
    pipelines, mapper = recipe.pipelines()
    with _loader(recipe, pipelines, mapper, indices, workers) as loader:
        _epoch(loader)
        count, seconds, _ = _epoch(loader, step_ms / 1000.0)
    return count / max(seconds, 1e-9)


def host_to_device(recipe, indices):
    """Seconds per sample to copy the full pipeline's image batch to the GPU, or None without one."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    pipelines, mapper = recipe.pipelines()
    with _loader(recipe, pipelines, mapper, indices, 1) as loader:
        batch = next(iter(loader))[0]
    tensor = torch.as_tensor(np.asarray(batch)).pin_memory()
    tensor.to('cuda')
    torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(5):
        tensor.to('cuda', non_blocking=False)
    torch.cuda.synchronize()
    return (time.perf_counter() - began) / (5 * len(tensor))
