"""Converting the ImageNet-like folder with Ray (``BetonDatasink``): 2 CPUs against 1.

Run: make bench, or pytest benchmarks/test_ray_write_speed.py --benchmark-only -s

The folder of ``test_write_speed.py`` (``write_folder.py``: 1,000 JPEGs, long
sides 300-2,000 px) is converted by ``ds.write_datasink(BetonDatasink(...))``
on a local Ray cluster of 1 CPU and on one of 2 CPUs, each in a process of its
own (``_ray_convert.py``), with ``RGBImageField(write_mode='jpg',
max_resolution=256, jpeg_quality=90)`` reading each image by path (the fast
path), from a Dataset of 8 blocks (8 write tasks, 8 parts merged), 2 MiB
pages, and ``DataContext.op_resource_reservation_enabled = False`` (with Ray
Data's reservation, a 2-CPU cluster starts the write tasks one at a time
until the first is done, and each later one about 0.2 s after a CPU frees).
Each round starts a 1-CPU cluster, warms it up, converts twice and stops
it, then does the same with a 2-CPU cluster (one cluster at a time: an idle
cluster's own processes take about 5% of a core; twice: during the first
conversion after a start, Ray's own processes are still busy); 3 rounds, so
that load from other processes on a shared machine falls on both alike.
Left out of the timed conversions: ``ray.init`` and a warm-up write that
starts the workers (printed). Timed: ``write_datasink`` from call to return,
tasks and the merge on the driver included; the best of the 6. Target: 2 CPUs
>= 1.8x 1 CPU, the ratio measured in one run. A plain ``DatasetWriter`` with
1 and 2 workers is measured in the same rounds: its ratio is what 2
processes get on the machine at that time (1.90-1.96x on this project's
idle 2-core machine).
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ffcvx.fields import IntField, RGBImageField
from ffcvx.writer import DatasetWriter

from conftest import photos_dir
from write_folder import make_folder

NUM_IMAGES = int(os.environ.get('FFCVX_BENCH_WRITE_IMAGES', '1000'))
MAX_RESOLUTION = 256
BLOCKS = 8
ROUNDS = 3
#: Conversions per cluster start (the best of all is kept).
CONVERSIONS = 2
#: The smallest page (FMT-013): each of the parts ends in a partly filled page.
PAGE_SIZE = 2 << 20
MIN_SCALING = 1.8
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    root = photos_dir()
    out = tmp_path_factory.mktemp('imagenet_like_ray')
    samples = make_folder(root, out / 'folder', NUM_IMAGES)
    listing = out / 'samples.json'
    listing.write_text(json.dumps(samples))
    return out, samples, listing


def _start_cluster(listing, out, cpus):
    """A ``_ray_convert.py`` process with its cluster started and warm; its start-up figures."""
    env = dict(os.environ)
    paths = [str(HERE.parent), str(HERE.parent / 'backends' / 'turbojpeg'),
             env.get('PYTHONPATH', '')]
    env['PYTHONPATH'] = os.pathsep.join(p for p in paths if p)
    proc = subprocess.Popen([sys.executable, str(HERE / '_ray_convert.py'), str(listing),
                             str(out), str(cpus), str(MAX_RESOLUTION), str(BLOCKS),
                             str(PAGE_SIZE)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    return proc, _answer(proc)


def _answer(proc):
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the Ray conversion process ended (status {proc.wait()})")
    return json.loads(line)


def _convert(proc):
    proc.stdin.write('convert\n')
    proc.stdin.flush()
    return _answer(proc)


def _stop(proc):
    proc.stdin.close()
    proc.wait(timeout=120)


@pytest.fixture(scope='module')
def figures(folder):
    out, samples, listing = folder
    fields = {'image': RGBImageField(write_mode='jpg', max_resolution=MAX_RESOLUTION,
                                     jpeg_quality=90), 'label': IntField()}
    result = {cpus: {'start': [], 'rounds': []} for cpus in (1, 2)}
    result['plain'] = {1: [], 2: []}
    for _ in range(ROUNDS):     # alternated, so that all see the same load
        for workers in (1, 2):
            start = time.perf_counter()
            DatasetWriter(str(out / 'plain.beton'), fields, page_size=PAGE_SIZE,
                          num_workers=workers, progress=False).from_iterable(samples)
            result['plain'][workers].append(time.perf_counter() - start)
        for cpus in (1, 2):
            # one cluster at a time: an idle one beside it would take CPU from the other
            proc, started = _start_cluster(listing, out / f'ray_{cpus}.beton', cpus)
            try:
                # twice: Ray's own processes are still busy starting up during the first
                for _ in range(CONVERSIONS):
                    result[cpus]['rounds'].append(_convert(proc))
            finally:
                _stop(proc)
            result[cpus]['start'].append(started)
    n = len(samples)
    best = {cpus: min(r['seconds'] for r in result[cpus]['rounds']) for cpus in (1, 2)}
    print(f"\nConverting {n} ImageNet-like JPEGs with Ray (BetonDatasink, {BLOCKS} blocks, "
          f"jpg at {MAX_RESOLUTION}, read by path), img/s (best of "
          f"{ROUNDS * CONVERSIONS}, alternated):")
    plain = {workers: n / min(times) for workers, times in result['plain'].items()}
    print(f"  DatasetWriter, no Ray: 1 worker {plain[1]:,.0f}, 2 workers {plain[2]:,.0f} "
          f"({plain[2] / plain[1]:.2f}x: what 2 processes get on this machine now)")
    for cpus in (1, 2):
        run, last = result[cpus], result[cpus]['rounds'][-1]
        rounds = ', '.join(f"{r['seconds']:.2f}" for r in run['rounds'])
        print(f"  Ray, {cpus} CPU(s): {n / best[cpus]:,.0f}  (rounds {rounds} s; left out: "
              f"ray.init {run['start'][-1]['start_s']:.1f} s, warm-up write "
              f"{run['start'][-1]['warm_up_s']:.1f} s; {last['parts']} parts, "
              f"{last['bytes'] / 1e6:.1f} MB; driver and Ray's own processes used "
              f"{last['overhead_cpu_s']:.2f} CPU-s in the last round)")
    result['scaling'] = best[1] / best[2]
    result['img_per_s'] = {cpus: n / best[cpus] for cpus in (1, 2)}
    result['img_per_s']['plain'] = plain[1]
    result['plain_scaling'] = plain[2] / plain[1]
    print(f"  2 CPUs / 1 CPU: {result['scaling']:.2f}x")
    return result


def test_ray_two_cpus_scale(benchmark, figures):
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    rates = figures['img_per_s']
    benchmark.extra_info.update(scaling=round(figures['scaling'], 2),
                                ray_1cpu_img_per_s=round(rates[1]),
                                ray_2cpu_img_per_s=round(rates[2]),
                                plain_1worker_img_per_s=round(rates['plain']),
                                plain_scaling=round(figures['plain_scaling'], 2))
    assert figures['scaling'] >= MIN_SCALING, (
        f"Ray with 2 CPUs converts {figures['scaling']:.2f}x as fast as with 1; target "
        f"{MIN_SCALING}x (DatasetWriter with 2 workers against 1, in the same rounds: "
        f"{figures['plain_scaling']:.2f}x; far below 1.9x means other processes load the "
        f"machine: run it again)")
