"""Soak at real epoch length: flat memory under every Numba threading layer, with competition.

The issue: with TBB (Numba's default layer when the ``tbb`` package is
installed) a process-cache Loader's RSS grew about 1.3 MB per epoch of 235
batches, while ``omp`` and ``workqueue`` stayed flat; it showed only while
other processes competed for the cores, as a training step does, and
tests/strategies/test_soak.py (epochs of eight batches, an idle machine) never saw it.

Here, for each layer Numba can load (tbb, omp, workqueue), a fresh
interpreter (Numba chooses its layer once per process) runs ``EPOCHS``
epochs of ``BATCHES`` batches (tests/_soak_layer_worker.py) while one
busy-loop process per core competes for the CPUs. The RSS slope over the
epochs after the first ``WARMUP`` must be under ``MAX_MB_PER_EPOCH``, and the
process's thread count (native threads included) must not grow.
The figures are printed as one JSON line per layer.

The normal suite runs a short version (``EPOCHS`` 24, all layers in well
under a minute on two cores); ``make soak`` (``FFCVX_SOAK=long``) runs 100
epochs per layer. A layer that is not installed is skipped with the reason:
TBB needs ``libtbb.so.12``, which the ``tbb`` wheel puts in ``<venv>/lib``,
a folder the dynamic loader does not search by itself, so the worker gets it
on ``LD_LIBRARY_PATH`` (only the worker: the rest of the suite keeps the
layer it had).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ffcvx
from _resources import write_fashion_like

LONG = os.environ.get('FFCVX_SOAK', '').strip().lower() == 'long'
LAYERS = ['tbb', 'omp', 'workqueue']
#: Epochs per layer, and the first ones left out of the fit (compilation,
#: allocator arenas and the page cache's slots settle in the first epochs).
EPOCHS, WARMUP = (100, 20) if LONG else (24, 4)
#: Batches of ``BATCH`` per epoch: above 200, as in a Fashion-MNIST epoch (235
#: of 256); the last one is partial (drop_last=False), as in the issue.
BATCH = 64
SAMPLES = 204 * BATCH - 24
BATCHES = -(-SAMPLES // BATCH)
#: Bound on RSS growth per epoch after warm-up, MB. The leak of the issue was
#: 1.3 MB per epoch (1.7 with two competing processes); allocator noise over a
#: dozen epochs stays under a tenth of this bound.
MAX_MB_PER_EPOCH = 0.05
#: Threads the last epochs may have beyond the first measured ones: counts
#: taken right after an epoch differ by one or two (its threads may still be
#: ending); a thread kept per epoch would add one per epoch (20 in the short run).
MAX_THREADS_KEPT = 2
WORKER = Path(__file__).resolve().parents[1] / '_soak_layer_worker.py'
#: A busy loop that ends by itself once its parent (this test) is gone, so a
#: killed test run leaves no process spinning.
BUSY_LOOP = ("import os\nparent = os.getppid()\n"
             "while os.getppid() == parent:\n    for _ in range(200000): pass\n")


@pytest.fixture(scope='module')
def data_file(tmp_path_factory):
    return write_fashion_like(tmp_path_factory.mktemp('soak-layers') / 'fashion.beton', SAMPLES)


def _slope(values):
    """Least-squares slope of ``values`` against their index (per epoch)."""
    return float(np.polyfit(np.arange(len(values)), np.asarray(values, dtype=float), 1)[0])


def _competitors():
    """One busy-loop process per CPU this process may use (a training step's load)."""
    return [subprocess.Popen([sys.executable, '-S', '-c', BUSY_LOOP])
            for _ in range(len(os.sched_getaffinity(0)))]


def _stop(processes):
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def _worker_env(layer):
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    # The worker imports the ffcvx this test imported (a script's own folder,
    # not the working directory, starts its sys.path).
    root = str(Path(ffcvx.__file__).resolve().parents[1])
    env['PYTHONPATH'] = os.pathsep.join(p for p in (root, env.get('PYTHONPATH')) if p)
    # Where the tbb wheel puts libtbb.so.12 in a virtual environment (and in
    # a conda one, where it is searched anyway).
    lib = os.path.join(sys.prefix, 'lib')
    env['LD_LIBRARY_PATH'] = os.pathsep.join(p for p in (lib, env.get('LD_LIBRARY_PATH')) if p)
    return env


def run_layer(data_file, layer, epochs=EPOCHS):
    """Run the worker under ``layer``, all cores contended while it measures; its figures."""
    worker = subprocess.Popen([sys.executable, str(WORKER), str(data_file), layer, str(epochs),
                               str(BATCH)], env=_worker_env(layer), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    competitors = []
    try:
        first = worker.stdout.readline()
        if first.strip() == 'compiled':
            # Compilation is done: from here on the epochs share the cores.
            competitors = _competitors()
            worker.stdin.write('go\n')
            worker.stdin.flush()
            first = ''
        out, err = worker.communicate(timeout=60 + epochs * 30)
    finally:
        _stop(competitors)
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, err[-4000:]
    figures = json.loads((first + out).strip().splitlines()[-1])
    figures['competitors'] = len(competitors)
    return figures


def summarize(figures, warmup=WARMUP):
    """The printed figures of one run: RSS and threads, first and last, and their slopes."""
    rss, threads = figures['rss_mb'], figures['threads']
    return {'layer': figures['layer'], 'epochs': len(rss), 'batches_per_epoch': BATCHES,
            'competitors': figures['competitors'], 'rss_first_mb': rss[0],
            'rss_after_warmup_mb': rss[warmup], 'rss_last_mb': rss[-1],
            'mb_per_epoch': round(_slope(rss[warmup:]), 6),
            'threads_after_warmup': threads[warmup], 'threads_last': threads[-1],
            # The last three epochs' fewest less the first three's most.
            'threads_kept': min(threads[-3:]) - max(threads[warmup:warmup + 3]),
            'seconds_per_epoch': round(float(np.median(figures['epoch_seconds'])), 3)}


@pytest.mark.parametrize('layer', LAYERS)
def test_memory_is_flat_over_long_epochs_under_every_layer(data_file, layer, capsys):
    start = time.monotonic()
    runs = []
    # A leak grows in every run; a one-off step (an allocator taking a new
    # arena while the machine is busy) does not, so a slope over the bound is
    # measured once more before it counts.
    for _ in range(2):
        figures = run_layer(data_file, layer)
        if not figures['available']:
            # tbb comes from requirements.txt, omp and workqueue with Numba: a missing
            # layer is a broken set-up, and the soak must not pass without measuring it.
            pytest.fail(f"threading layer {layer!r} did not load: {figures['reason']} "
                        f"(tbb: pip install -r requirements.txt)")
        assert figures['layer'] == layer, figures
        # The copy of ffcvx under test, not another one on the path.
        assert Path(figures['ffcvx']).resolve() == Path(ffcvx.__file__).resolve(), figures
        assert figures['batches'] == [BATCHES] * EPOCHS, figures
        runs.append(summarize(figures))
        if runs[-1]['mb_per_epoch'] < MAX_MB_PER_EPOCH:
            break
    result = dict(runs[-1], mode='long' if LONG else 'short',
                  slopes_measured=[run['mb_per_epoch'] for run in runs],
                  seconds=round(time.monotonic() - start, 1))
    with capsys.disabled():
        print(f"\n[soak-layers] {json.dumps(result)}")
    assert result['mb_per_epoch'] < MAX_MB_PER_EPOCH, result
    assert result['threads_kept'] <= MAX_THREADS_KEPT, result
