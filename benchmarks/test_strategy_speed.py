"""Memory strategies on the photos .beton: epoch time cold and warm, memory per process.

Run: pytest benchmarks/test_strategy_speed.py --benchmark-only -s

Each strategy runs in fresh processes (benchmarks/_strategy_worker.py):
RandomResizedCrop 224 + flip on 2 threads, four epochs, the file dropped from
the OS page cache before the Loader is made. Loader construction includes the
copy into shared memory for ``shared`` and into an emptied server for
``redis`` (a throw-away ``redis-server`` on loopback); epoch 0 includes compiling the
pipelines; before epoch 1 the file is dropped from the page cache again, so
epoch 1 is cold (disk reads, unless the strategy keeps its own copy); epochs 2
and 3 are warm. Then two processes load the same file at once and, while both
hold it, the parent reads each one's USS (memory private to the process) and
PSS (proportional set size: shared pages split between the processes): a
private copy of the data shows in USS, a shared one only in PSS, once in the
sum.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

WORKER = Path(__file__).with_name('_strategy_worker.py')
STRATEGIES = ['os', 'process', 'shared', 'redis']
MIB = 1 << 20

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tests'))
from _redis_server import RedisServer  # noqa: E402  (the tests' throw-away server)


@pytest.fixture(scope='module')
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp('redis')).start()
    yield server.url
    server.stop()


def _options(strategy, redis_url):
    """Constructor options; for Redis, an emptied server (so Loader construction fills it)."""
    if strategy != 'redis':
        return {}
    import redis
    with redis.Redis.from_url(redis_url) as client:
        client.flushall()
    return {'url': redis_url}


def _run_one(path, strategy, options, cold=True, epochs=4):
    out = subprocess.run([sys.executable, str(WORKER), str(path), strategy, json.dumps(options),
                          str(epochs), '1' if cold else '0', '-'],
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_two(path, strategy, options, hold_dir):
    """Two processes on one file; PSS of each measured while both hold the data."""
    hold_dir.mkdir()
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(path), strategy, json.dumps(options),
                               '1', '0', str(hold_dir)], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        deadline = time.monotonic() + 300
        while len(list(hold_dir.glob('ready-*'))) < 2:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f'{strategy}: workers did not get ready')
            time.sleep(0.05)
        memory = [psutil.Process(p.pid).memory_full_info() for p in procs]
    finally:
        (hold_dir / 'release').touch()
        for p in procs:
            p.wait(timeout=120)
    return [m.pss for m in memory], [m.uss for m in memory]


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_strategy_epoch_time_and_memory(benchmark, photos_beton, strategy, tmp_path, request):
    size = os.path.getsize(photos_beton)
    url = request.getfixturevalue('redis_url') if strategy == 'redis' else None
    result = {}

    def run():
        result['one'] = _run_one(photos_beton, strategy, _options(strategy, url))
        result['two'] = _run_two(photos_beton, strategy, _options(strategy, url), tmp_path / 'hold')
    benchmark.pedantic(run, rounds=1, iterations=1)
    one, (pss, uss) = result['one'], result['two']
    cold, warm = one['epoch_s'][1], min(one['epoch_s'][2:])
    mib = lambda values: [round(v / MIB) for v in values]  # noqa: E731
    benchmark.extra_info.update({'file_mib': round(size / MIB, 1), 'construct_s': round(one['construct_s'], 3),
                                 'cold_epoch_s': round(cold, 3), 'warm_epoch_s': round(warm, 3),
                                 'peak_rss_mib': round(one['peak_rss'] / MIB),
                                 'two_processes_pss_mib': mib(pss), 'two_processes_uss_mib': mib(uss)})
    print(f"\n{strategy}: file {size / MIB:.0f} MiB; Loader made in {one['construct_s']:.2f} s; "
          f"epoch cold {cold:.3f} s, warm {warm:.3f} s; peak RSS {one['peak_rss'] / MIB:.0f} MiB "
          f"(USS before the Loader {one['uss_before'] / MIB:.0f} MiB); two processes: "
          f"USS {mib(uss)} MiB, PSS {mib(pss)} MiB, sum PSS {sum(pss) / MIB:.0f} MiB")
