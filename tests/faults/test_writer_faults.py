"""Writer faults (spec/beton.md, "Writer faults"): what is left on disk after each one.

Every test lists the folder of the target afterwards, so what a fault leaves
behind (the old target, a temporary file, nothing) is asserted, not assumed.
The slow faults run the writer in a subprocess (``_CHILD``): SIGKILL of the
writing process, a file size limit (``RLIMIT_FSIZE``, the disk-full path).
``make writer-faults`` runs :func:`test_random_sigkills_never_leave_a_partial_target`
with 100 kills and prints the counts.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ffcvx import cli
from ffcvx.writer.temp import TempName, _host_token, process_start_time
from ffcvx.errors import WriterError
from ffcvx.fields import BytesField, IntField
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAGE = 2 << 20

#: The writing process of the subprocess faults. argv: target, n, workers, offset,
#: sleep per sample (s), file size limit (bytes, 0: none), pid file ('' : none).
_CHILD = r'''
import os, resource, signal, sys, time
import numpy as np
from ffcvx.errors import WriterError
from ffcvx.fields import BytesField, IntField
from ffcvx.writer import DatasetWriter

target, n, workers, offset, sleep_s, limit, pid_file = sys.argv[1:8]
n, workers, offset, sleep_s, limit = int(n), int(workers), int(offset), float(sleep_s), int(limit)

class Slow:
    def __len__(self):
        return n
    def __getitem__(self, i):
        if pid_file:
            with open(pid_file, 'a') as f:
                f.write(f'{os.getpid()}\n')
        if sleep_s:
            time.sleep(sleep_s)
        i = int(i)
        return i + offset, np.full(2000, (i + offset) % 251, np.uint8)

if limit:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG from write(), as on a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
print('go', flush=True)
try:
    DatasetWriter(target, {'v': IntField(), 'b': BytesField()}, page_size=2 << 20,
                  num_workers=workers, progress=False).from_indexed_dataset(Slow(), chunksize=50)
except WriterError as exc:
    print('WriterError:', exc, flush=True)
    sys.exit(3)
print('done', flush=True)
'''


def _start_child(target, n, workers=1, offset=0, sleep_s=0.0, limit=0, pid_file=''):
    proc = subprocess.Popen([sys.executable, '-c', _CHILD, str(target), str(n), str(workers),
                             str(offset), str(sleep_s), str(limit), str(pid_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == 'go', proc.stderr.read()
    return proc


def _listing(folder):
    return sorted(os.listdir(folder))


def _temps(folder):
    return [name for name in _listing(folder) if name.endswith('.tmp')]


def _wait_for(predicate, timeout_s=20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _write(target, samples, workers=1, **kwargs):
    DatasetWriter(target, {'v': IntField()}, page_size=PAGE, num_workers=workers,
                  progress=False, **kwargs).from_indexed_dataset(samples, chunksize=5)


class Values:
    """``dataset[i] = (values[i],)``; raises at ``fail_at``. Module level, so it pickles."""

    def __init__(self, values, fail_at=None):
        self.values = values
        self.fail_at = fail_at

    def __len__(self):
        return len(self.values)

    def __getitem__(self, i):
        if int(i) == self.fail_at:
            raise KeyError(f'sample {int(i)} is broken')
        return (self.values[int(i)],)


# ---------------------------------------------------------------------------
# temporary files: name, mode, stale ones


def test_temp_file_names_its_writer_and_gets_the_umask_mode(tmp_path, monkeypatch):
    """The temp is in the target's folder, named by pid + start time; mode from the umask, no flip."""
    target = tmp_path / 'out.beton'
    seen = []

    class Watching(Values):
        def __getitem__(self, i):
            seen.append(_temps(tmp_path))
            return super().__getitem__(i)

    def no_umask(*args):
        raise AssertionError("os.umask changes process-wide state and must not be called")

    monkeypatch.setattr(os, 'umask', no_umask)
    _write(target, Watching([1, 2, 3]))
    monkeypatch.undo()
    (name,) = seen[0]
    parsed = TempName.parse(name)
    assert parsed.target == 'out.beton' and parsed.pid == os.getpid()
    assert parsed.start == process_start_time(os.getpid()) and parsed.host == _host_token()
    assert _listing(tmp_path) == ['out.beton']
    # a subprocess with umask 027 gets a 640 file: the mode comes from os.open(..., 0o666)
    code = ("import os, stat; os.umask(0o027)\n"
            "from ffcvx.fields import IntField\nfrom ffcvx.writer import DatasetWriter\n"
            f"DatasetWriter({str(tmp_path / 'm.beton')!r}, {{'v': IntField()}}, num_workers=1, "
            "progress=False).from_indexed_dataset([(1,), (2,)])\n"
            f"print(oct(stat.S_IMODE(os.stat({str(tmp_path / 'm.beton')!r}).st_mode)))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == '0o640', out.stderr
    assert _listing(tmp_path) == ['m.beton', 'out.beton']


def test_only_stale_temps_are_removed(tmp_path):
    """Dead pid, recycled pid (other start time): removed. Live writer, other host: kept."""
    me, start, host = os.getpid(), process_start_time(os.getpid()), _host_token()
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    names = {
        'dead': f'.t.beton.ffcvx-{host}-{dead}-123-aa.tmp',
        'recycled': f'.t.beton.ffcvx-{host}-{me}-{start + 1}-bb.tmp',
        'live': f'.t.beton.ffcvx-{host}-{me}-{start}-cc.tmp',
        'other host': f'.t.beton.ffcvx-{"0" * 8 if host != "0" * 8 else "1" * 8}-{dead}-1-dd.tmp',
        'other target': f'.u.beton.ffcvx-{host}-{dead}-123-ee.tmp',
        'not ours': '.t.beton.abc123.tmp',
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b'x' * 100)
    _write(tmp_path / 't.beton', Values([7]))
    left = set(_listing(tmp_path))
    assert left == {'t.beton', names['live'], names['other host'], names['other target'],
                    names['not ours']}
    assert cli.main(['clean', str(tmp_path)]) == 0      # a folder: every target in it
    assert set(_listing(tmp_path)) == left - {names['other target']}


def test_temps_whose_writer_cannot_be_judged_are_kept(tmp_path, monkeypatch):
    """Hidden /proc (hidepid), another user's file, an unremovable file: never a lost write."""
    from ffcvx.writer import temp
    host = _host_token()
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f'.t.beton.ffcvx-{host}-{dead}-123-aa.tmp'
    stale.write_bytes(b'x')
    assert temp.stale_temps(tmp_path / 't.beton') == [str(stale)]

    def hidden(pid):
        raise PermissionError(13, 'hidden by hidepid')

    with monkeypatch.context() as patch:        # a live pid whose /proc entry is hidden
        live = tmp_path / f'.t.beton.ffcvx-{host}-{os.getpid()}-1-bb.tmp'
        live.write_bytes(b'x')
        patch.setattr(temp, 'process_start_time', hidden)
        assert temp.stale_temps(tmp_path / 't.beton') == [str(stale)]
        live.unlink()
    with monkeypatch.context() as patch:        # another user's file, judged by a non-root user
        patch.setattr(os, 'getuid', lambda: os.stat(stale).st_uid + 1)
        assert temp.stale_temps(tmp_path / 't.beton') == []
    real_unlink = os.unlink

    def refuse(path, *args, **kwargs):
        if str(path) == str(stale):
            raise PermissionError(1, 'Operation not permitted', str(path))
        return real_unlink(path, *args, **kwargs)

    with monkeypatch.context() as patch:        # a sticky folder: the write still succeeds
        patch.setattr(os, 'unlink', refuse)
        with pytest.warns(RuntimeWarning, match='cannot remove the stale temporary file'):
            _write(tmp_path / 't.beton', Values([4, 5]))
    assert Reader(tmp_path / 't.beton').metadata['f0'].tolist() == [4, 5]
    assert _listing(tmp_path) == [stale.name, 't.beton']


# ---------------------------------------------------------------------------
# worker exception


@pytest.mark.parametrize('workers', [1, 2])
def test_worker_exception_keeps_old_target_and_leaves_no_temp(tmp_path, workers):
    target = tmp_path / 'w.beton'
    _write(target, Values(list(range(10))))
    old = target.read_bytes()
    with pytest.raises(WriterError) as info:
        _write(target, Values(list(range(40)), fail_at=23), workers=workers)
    message = str(info.value)
    assert 'sample 23' in message and 'KeyError' in message and str(target) in message
    assert isinstance(info.value.__cause__, KeyError)
    assert _listing(tmp_path) == ['w.beton'] and target.read_bytes() == old


# ---------------------------------------------------------------------------
# SIGKILL of the writing process


def _kill_mid_write(tmp_path, target, workers, pid_file=''):
    proc = _start_child(target, 400, workers=workers, offset=1000, sleep_s=0.005,
                        pid_file=pid_file)
    # mid-write: the temp exists, and the 400 samples take 2 s in all
    assert _wait_for(lambda: bool(_temps(tmp_path)))
    time.sleep(0.4)
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize('cleaner', ['next write', 'ffcvx clean'])
def test_sigkill_mid_write_then_cleanup_leaves_no_temp(tmp_path, cleaner):
    target = tmp_path / 'k.beton'
    _write(target, Values(list(range(5))))
    old = target.read_bytes()
    _kill_mid_write(tmp_path, target, workers=1)
    (temp,) = _temps(tmp_path)
    assert _listing(tmp_path) == sorted(['k.beton', temp]) and target.read_bytes() == old
    if cleaner == 'next write':
        _write(target, Values([9, 8]))
        assert Reader(target).metadata['f0'].tolist() == [9, 8]
    else:
        assert cli.main(['clean', str(target)]) == 0
        assert target.read_bytes() == old
    assert _listing(tmp_path) == ['k.beton']


def test_sigkill_of_a_parallel_write_stops_its_workers(tmp_path):
    target = tmp_path / 'p.beton'
    pid_file = tmp_path / 'pids.txt'
    _kill_mid_write(tmp_path, target, workers=2, pid_file=pid_file)
    pids = {int(line) for line in pid_file.read_text().split()}
    assert len(pids) == 2

    def gone(pid):
        start = process_start_time(pid)
        if start is None:
            return True
        with open(f'/proc/{pid}/stat') as stat:      # reaped by init soon; a zombie is gone too
            return stat.read().rsplit(')', 1)[1].split()[0] == 'Z'

    assert _wait_for(lambda: all(gone(pid) for pid in pids))
    assert len(_temps(tmp_path)) == 1 and not target.exists()
    assert cli.main(['clean', str(target)]) == 0
    assert _listing(tmp_path) == ['pids.txt']


def test_clean_keeps_a_running_writers_temp(tmp_path, capsys):
    target = tmp_path / 'r.beton'
    proc = _start_child(target, 400, sleep_s=0.005)
    try:
        assert _wait_for(lambda: bool(_temps(tmp_path)))
        assert cli.main(['clean', str(target)]) == 0
        assert 'kept' in capsys.readouterr().out and len(_temps(tmp_path)) == 1
    finally:
        proc.kill()
        proc.wait()
    assert cli.main(['clean', str(target)]) == 0
    assert '1 stale temporary file(s) removed' in capsys.readouterr().out
    assert _listing(tmp_path) == []


# ---------------------------------------------------------------------------
# disk full (a file size limit: write() fails with EFBIG, as with ENOSPC on a full disk)


@pytest.mark.parametrize('workers', [1, 2])
def test_disk_full_is_a_writer_error_and_leaves_nothing(tmp_path, workers):
    target = tmp_path / 'full.beton'
    proc = _start_child(target, 3000, workers=workers, limit=3 << 20)   # needs ~8 MiB
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, out + err
    assert 'WriterError' in out and str(target) in out and 'File too large' in out
    assert _listing(tmp_path) == []
    # with an existing target: the same, and the old file is intact
    _write(target, Values([1, 2, 3]))
    old = target.read_bytes()
    proc = _start_child(target, 3000, workers=workers, limit=3 << 20)
    proc.communicate(timeout=120)
    assert proc.returncode == 3
    assert _listing(tmp_path) == ['full.beton'] and target.read_bytes() == old


# ---------------------------------------------------------------------------
# random-time SIGKILLs: the target is always the old file or the new one


def _classify(target, old, n, offset):
    data = target.read_bytes()
    if data == old:
        return 'old'
    try:
        reader = Reader(target)
    except Exception:  # noqa: BLE001  (anything that does not open is partial)
        return 'partial'
    values = reader.metadata['f0'].tolist()
    blobs_ok = all(reader.read_sample_region(i, 'b').tolist() == [(i + offset) % 251] * 2000
                   for i in (0, n // 2, n - 1))
    return 'new' if values == [i + offset for i in range(n)] and blobs_ok else 'partial'


def test_random_sigkills_never_leave_a_partial_target(tmp_path):
    kills = int(os.environ.get('FFCVX_WRITER_KILLS', '6'))
    n, offset = 3000, 1000
    target = tmp_path / 'r.beton'
    old_path = tmp_path / 'old.beton'
    _write(old_path, Values(list(range(7))))
    old = old_path.read_bytes()
    proc = _start_child(target, n, workers=2, offset=offset)
    start = time.monotonic()                     # how long one uninterrupted write takes
    proc.wait()
    duration = time.monotonic() - start
    assert _classify(target, old, n, offset) == 'new'
    rng = random.Random(12)
    counts = {'old': 0, 'new': 0, 'partial': 0, 'temps after kill': 0, 'temps after clean': 0}
    for k in range(kills):
        target.write_bytes(old)
        proc = _start_child(target, n, workers=1 + k % 2, offset=offset)
        time.sleep(rng.uniform(0, 1.2 * duration))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts[_classify(target, old, n, offset)] += 1
        counts['temps after kill'] += len(_temps(tmp_path))
        # its workers may still be writing to the (now stale) temp for a moment
        assert _wait_for(lambda: (cli.main(['clean', str(target)]) == 0
                                  and not _temps(tmp_path)), 10)
        counts['temps after clean'] += len(_temps(tmp_path))
    print(f"\nwriter faults: {kills} random-time SIGKILLs (write ~{duration:.2f} s): {counts}")
    assert counts['partial'] == 0 and counts['temps after clean'] == 0
    if kills >= 50:
        assert counts['old'] > 0 and counts['new'] > 0


# ---------------------------------------------------------------------------
# fork only with one thread


#: Set in the parent before a write: a forked worker sees it, a spawned one does not.
_PARENT_STATE = {}


class ForkProbe:
    """``dataset[i] = (1 if this process has the parent's memory else 0,)``."""

    def __len__(self):
        return 20

    def __getitem__(self, i):
        return (len(_PARENT_STATE),)


#: Runs the check in a fresh interpreter (from a file, so spawned workers can import it).
_FRESH_SCRIPT = """
import pathlib, sys
sys.path[:0] = [{tests!r}, {helpers!r}]
import test_writer_faults
if __name__ == '__main__':   # spawned workers import this file again
    test_writer_faults.check_fork_rule(pathlib.Path(sys.argv[1]))
"""


def test_workers_are_not_forked_while_other_threads_run(tmp_path):
    if threading.active_count() == 1:
        check_fork_rule(tmp_path)
        return
    # Another test of this worker left a thread (fsspec's event loop lives as long as the
    # process), and the rule under test is about this process's threads: use a fresh one.
    script = tmp_path / 'fresh.py'
    script.write_text(_FRESH_SCRIPT.format(tests=str(Path(__file__).resolve().parent),
                                            helpers=str(Path(__file__).resolve().parents[1])))
    (tmp_path / 'out').mkdir()
    result = subprocess.run([sys.executable, str(script), str(tmp_path / 'out')],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def check_fork_rule(tmp_path):
    """Forked with one thread (the parent's memory is seen); spawned with two; else one process."""
    _PARENT_STATE['set'] = True
    target = tmp_path / 'f.beton'
    DatasetWriter(target, {'v': IntField()}, num_workers=2, progress=False) \
        .from_indexed_dataset(ForkProbe(), chunksize=5)
    assert set(Reader(target).metadata['f0'].tolist()) == {1}       # one thread: forked
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        DatasetWriter(target, {'v': IntField()}, num_workers=2, progress=False) \
            .from_indexed_dataset(ForkProbe(), chunksize=5)
        assert set(Reader(target).metadata['f0'].tolist()) == {0}   # spawned, fresh memory
        # an unpicklable dataset cannot be spawned: one process, with a warning
        local = type('Local', (ForkProbe,), {})
        with pytest.warns(RuntimeWarning, match='writing in one process'):
            DatasetWriter(target, {'v': IntField()}, num_workers=2, progress=False) \
                .from_indexed_dataset(local(), chunksize=5)
        assert set(Reader(target).metadata['f0'].tolist()) == {1}
    finally:
        stop.set()
        other.join()
        _PARENT_STATE.pop('set', None)
    assert _listing(tmp_path) == ['f.beton']


def test_spawned_workers_write_the_same_file_as_forked_ones(tmp_path):
    samples = [(i, np.full(i % 700, i % 256, np.uint8)) for i in range(300)]
    fields = {'v': IntField(), 'b': BytesField()}
    DatasetWriter(tmp_path / 'a.beton', fields, num_workers=3, progress=False) \
        .from_indexed_dataset(samples, chunksize=7)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    try:
        DatasetWriter(tmp_path / 'b.beton', fields, num_workers=3, progress=False) \
            .from_indexed_dataset(samples, chunksize=7)
    finally:
        stop.set()
        other.join()
    a, b = Reader(tmp_path / 'a.beton'), Reader(tmp_path / 'b.beton')
    assert a.metadata['f0'].tolist() == b.metadata['f0'].tolist() == list(range(300))
    for i in range(300):
        assert a.read_sample_region(i, 'b').tolist() == b.read_sample_region(i, 'b').tolist() \
            == samples[i][1].tolist()


def test_unguarded_script_with_threads_gets_a_clear_error(tmp_path):
    """forkserver workers import the main module again: no guard is a WriterError that says so."""
    script = tmp_path / 'unguarded.py'
    script.write_text(
        "import threading\nfrom ffcvx.fields import IntField\nfrom ffcvx.writer import DatasetWriter\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        f"DatasetWriter({str(tmp_path / 'u.beton')!r}, {{'v': IntField()}}, num_workers=2, "
        "progress=False).from_indexed_dataset([(i,) for i in range(50)], chunksize=5)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert out.returncode != 0
    assert "before it started" in out.stderr and "if __name__ == '__main__':" in out.stderr
    assert _listing(tmp_path) == ['unguarded.py']


def test_dataset_defined_in_python_c_with_threads_writes_in_one_process(tmp_path):
    """A notebook or ``python -c`` main module has no file, so spawned workers could not
    import its classes (they died with AttributeError): the write runs in one process."""
    target = tmp_path / 'c.beton'
    code = (
        "import threading, warnings\nfrom ffcvx.fields import IntField\n"
        "from ffcvx.writer import DatasetWriter\n"
        "class DS:\n    def __len__(self): return 40\n"
        "    def __getitem__(self, i): return (int(i) * 3,)\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "with warnings.catch_warnings(record=True) as seen:\n"
        "    warnings.simplefilter('always')\n"
        f"    DatasetWriter({str(target)!r}, {{'v': IntField()}}, num_workers=2,"
        " progress=False).from_indexed_dataset(DS(), chunksize=5)\n"
        "print([str(w.message) for w in seen])\n")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'main module with no file' in out.stdout and 'writing in one process' in out.stdout
    assert Reader(target).metadata['f0'].tolist() == [3 * i for i in range(40)]
    assert _listing(tmp_path) == ['c.beton']


def test_counts_must_be_integers_and_a_missing_folder_is_a_writer_error(tmp_path):
    with pytest.raises(TypeError, match='num_workers must be an integer'):
        DatasetWriter(tmp_path / 'n.beton', {'v': IntField()}, num_workers=2.7)
    with pytest.raises(TypeError, match='chunksize must be an integer'):
        DatasetWriter(tmp_path / 'n.beton', {'v': IntField()}, num_workers=1,
                      progress=False).from_indexed_dataset(Values([1]), chunksize=2.5)
    DatasetWriter(tmp_path / 'n.beton', {'v': IntField()}, num_workers=np.int64(1),
                  progress=False).from_indexed_dataset(Values([1, 2]), chunksize=np.int32(1))
    missing = tmp_path / 'no-such-folder' / 'x.beton'
    with pytest.raises(WriterError, match='cannot create the temporary file .*no-such-folder'):
        _write(missing, Values([1]))
    assert _listing(tmp_path) == ['n.beton']
