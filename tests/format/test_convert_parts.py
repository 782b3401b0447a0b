"""``ffcvx convert imagefolder ... --part k/K --parts-dir DIR`` then ``ffcvx merge``: the
torchrun / SLURM way of issue 22 (each process writes its part, one merges), resumable.

The parts of the shared photos folder, merged, must hold what one whole conversion
holds, sample for sample (labels, modes and stored bytes); a complete part is skipped
when the command runs again, a part file that is not a valid .beton is written again.
"""
import filecmp
import glob
import os
from pathlib import Path

import pytest

from ffcvx.cli import main
from ffcvx.reader import Reader

#: Small images, so the 40-odd photos convert in well under a second per part.
OPTIONS = ['--max-resolution', '48', '--write-mode', 'proportion', '--num-workers', '1',
           '--quiet']


@pytest.fixture(scope='module')
def photos(shared_dir):
    root = Path(shared_dir, 'data', 'photos')
    if not list(root.glob('*/*.jpg')):
        pytest.fail(f"no photos under {root}: the parts test needs them")
    return str(root)


def _samples(path):
    """``[(label, mode, stored bytes)]`` of every sample of ``path``."""
    reader = Reader(str(path))
    images, labels = reader.metadata['f0'], reader.metadata['f1']
    return [(int(labels[i]), int(images[i]['mode']),
             bytes(reader.read_sample_region(i, 'image'))) for i in range(reader.num_samples)]


def _convert_parts(photos, out, parts_dir, count):
    for k in range(count):
        assert main(['convert', 'imagefolder', photos, str(out), '--part', f'{k}/{count}',
                     '--parts-dir', str(parts_dir), *OPTIONS]) == 0
    return sorted(glob.glob(os.path.join(parts_dir, '*.beton')))


@pytest.mark.parametrize('count', [1, 3])
def test_parts_merged_equal_one_conversion(tmp_path, photos, count, capsys):
    whole = tmp_path / 'whole.beton'
    assert main(['convert', 'imagefolder', photos, str(whole), '--seed', '0', *OPTIONS]) == 0
    out = tmp_path / 'train.beton'
    parts = _convert_parts(photos, out, tmp_path / 'parts', count)
    assert [os.path.basename(p) for p in parts] == [
        f'train.part-{k:05d}-of-{count:05d}.beton' for k in range(count)]
    assert not out.exists()                      # OUT only names the merged file
    assert sum(Reader(p).num_samples for p in parts) == Reader(str(whole)).num_samples
    assert main(['merge', *parts, str(out)]) == 0
    merged, expected = _samples(out), _samples(whole)
    assert merged == expected
    # proportion mode drew per global sample: both modes occur, the same ones
    assert {mode for _, mode, _ in merged} == {0, 1}


def test_complete_parts_are_skipped_broken_ones_written_again(tmp_path, photos, capsys):
    out = tmp_path / 'train.beton'
    parts_dir = tmp_path / 'parts'
    parts = _convert_parts(photos, out, parts_dir, 3)
    first = [_samples(p) for p in parts]
    stamps = [os.stat(p).st_mtime_ns for p in parts]
    capsys.readouterr()
    # part 1 left as a file that is not a .beton (not what the writer leaves: it renames
    # a part into place only when complete, but what a copy gone wrong could leave)
    with open(parts[1], 'r+b') as handle:
        handle.truncate(100)
    os.unlink(parts[2])
    assert _convert_parts(photos, out, parts_dir, 3) == parts
    said = capsys.readouterr().out
    assert f"part 0 of 3 is already written: {parts[0]} (skipped)" in said
    assert 'part 1 of 3 is already written' not in said and 'part 2 of 3 is already' not in said
    assert os.stat(parts[0]).st_mtime_ns == stamps[0]
    assert [_samples(p) for p in parts] == first


def test_part_options_are_checked(tmp_path, photos, capsys):
    out = str(tmp_path / 'train.beton')
    assert main(['convert', 'imagefolder', photos, out, '--part', '0/2', *OPTIONS]) == 2
    assert '--part and --parts-dir go together' in capsys.readouterr().err
    assert main(['convert', 'imagefolder', photos, out, '--parts-dir', str(tmp_path),
                 *OPTIONS]) == 2
    for bad in ('2/2', '-1/2', '1', 'a/b', '0/0'):
        with pytest.raises(SystemExit) as exited:
            main(['convert', 'imagefolder', photos, out, '--part', bad, '--parts-dir',
                  str(tmp_path), *OPTIONS])
        assert exited.value.code == 2
    assert not os.path.exists(out) and not glob.glob(str(tmp_path / '*.beton'))


def test_torchrun_two_processes_write_the_parts_of_one_conversion(tmp_path, photos):
    """Real torchrun, 2 processes: each writes its part (``--part auto``), then rank 0
    merges them after a torch.distributed barrier (``--merge``)."""
    import socket
    import subprocess
    import sys
    repo = str(Path(__file__).resolve().parents[2])
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    env.update(PYTHONPATH=repo, OMP_NUM_THREADS='1')
    out, parts_dir = tmp_path / 'train.beton', tmp_path / 'parts'
    run = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--nnodes=1',
         '--master_addr=127.0.0.1', f'--master_port={port}', '--no-python',
         sys.executable, '-m', 'ffcvx', 'convert', 'imagefolder', photos, str(out),
         '--part', 'auto', '--parts-dir', str(parts_dir), '--merge', *OPTIONS],
        env=env, capture_output=True, text=True, timeout=300, cwd=repo)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    parts = sorted(glob.glob(str(parts_dir / '*.beton')))
    assert [os.path.basename(p) for p in parts] == [
        'train.part-00000-of-00002.beton', 'train.part-00001-of-00002.beton']
    assert run.stdout.count(f'merged 2 parts into {out}') == 1          # rank 0 only
    # the same file, byte for byte, as the parts written one after the other here and merged
    here = _convert_parts(photos, tmp_path / 'here.beton', tmp_path / 'here', 2)
    assert main(['merge', *here, str(tmp_path / 'here.beton')]) == 0
    assert filecmp.cmp(out, tmp_path / 'here.beton', shallow=False)
    whole = tmp_path / 'whole.beton'
    assert main(['convert', 'imagefolder', photos, str(whole), '--seed', '0', *OPTIONS]) == 0
    assert _samples(out) == _samples(whole)


def test_torchrun_merge_stops_every_rank_when_one_part_fails(tmp_path, photos):
    """Rank 1's part cannot be written (a damaged JPEG in its range): rank 0 does not wait
    for it, nothing is merged, both exit with an error naming rank 1."""
    import shutil
    import socket
    import subprocess
    import sys
    repo = str(Path(__file__).resolve().parents[2])
    src = tmp_path / 'src'
    for i, photo in enumerate(sorted(Path(photos).glob('*/*.jpg'))[:6]):
        (src / 'a').mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, src / 'a' / f'{i:02d}.jpg')
    (src / 'a' / '99.jpg').write_bytes(b'\xff\xd8\xff\xe0 not a JPEG')     # last: rank 1's
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items()
           if k not in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')}
    env.update(PYTHONPATH=repo, OMP_NUM_THREADS='1')
    out = tmp_path / 'train.beton'
    run = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--nnodes=1',
         '--master_addr=127.0.0.1', f'--master_port={port}', '--no-python',
         sys.executable, '-m', 'ffcvx', 'convert', 'imagefolder', str(src), str(out),
         '--part', 'auto', '--parts-dir', str(tmp_path / 'parts'), '--merge', *OPTIONS],
        env=env, capture_output=True, text=True, timeout=240, cwd=repo)
    assert run.returncode != 0
    said = run.stdout + run.stderr
    assert '99.jpg' in said                                     # rank 1's own error
    assert 'the part of rank(s) [1] was not written' in said   # rank 0 learnt it at the barrier
    assert not out.exists()


def test_merge_of_a_single_part_needs_no_launcher(tmp_path, photos):
    out, whole = tmp_path / 'train.beton', tmp_path / 'whole.beton'
    assert main(['convert', 'imagefolder', photos, str(out), '--part', '0/1', '--parts-dir',
                 str(tmp_path / 'parts'), '--merge', *OPTIONS]) == 0
    assert main(['convert', 'imagefolder', photos, str(whole), '--seed', '0', *OPTIONS]) == 0
    assert _samples(out) == _samples(whole)


def test_merge_of_several_parts_outside_torchrun_is_refused_before_writing(tmp_path, photos,
                                                                          capsys, monkeypatch):
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    out, parts_dir = tmp_path / 'train.beton', tmp_path / 'parts'
    assert main(['convert', 'imagefolder', photos, str(out), '--part', '0/2', '--parts-dir',
                 str(parts_dir), '--merge', *OPTIONS]) == 2
    assert 'under torchrun' in capsys.readouterr().err
    assert not glob.glob(str(parts_dir / '*')) and not out.exists()
    # a rank must write its own part: rank 1 of 2 asked for part 0
    monkeypatch.setenv('RANK', '1')
    monkeypatch.setenv('WORLD_SIZE', '2')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', '29500')
    assert main(['convert', 'imagefolder', photos, str(out), '--part', '0/2', '--parts-dir',
                 str(parts_dir), '--merge', *OPTIONS]) == 2
    assert 'use --part auto' in capsys.readouterr().err
    assert main(['convert', 'imagefolder', photos, str(out), '--merge', *OPTIONS]) == 2
    assert '--merge joins the parts' in capsys.readouterr().err


def test_merge_after_barrier_needs_a_process_group(tmp_path):
    from ffcvx.writer.distributed_merge import merge_after_barrier
    with pytest.raises(RuntimeError, match='init_process_group'):
        merge_after_barrier([tmp_path / 'a.beton'], tmp_path / 'out.beton')


def test_webdataset_parts_merged_equal_one_conversion(tmp_path, photos):
    import webdataset
    shards = []
    files = sorted(Path(photos).glob('*/*.jpg'))
    for s in range(3):                          # 3 shards of unequal size
        shard = tmp_path / f'data-{s}.tar'
        with webdataset.TarWriter(str(shard)) as sink:
            for i, photo in enumerate(files[s * 7:(s + 1) * 7 + s * 5]):
                sink.write({'__key__': f'{s}-{i:04d}', 'jpg': photo.read_bytes(),
                            'cls': str(i % 3).encode()})
        shards.append(str(shard))
    whole, out, parts_dir = tmp_path / 'whole.beton', tmp_path / 'train.beton', tmp_path / 'p'
    assert main(['convert', 'webdataset', *shards, str(whole), '--seed', '0', *OPTIONS]) == 0
    for k in range(3):
        assert main(['convert', 'webdataset', *shards, str(out), '--part', f'{k}/3',
                     '--parts-dir', str(parts_dir), *OPTIONS]) == 0
    parts = sorted(glob.glob(str(parts_dir / '*.beton')))
    assert main(['merge', *parts, str(out)]) == 0
    assert _samples(out) == _samples(whole)


def test_fashion_mnist_parts_merged_equal_one_conversion(tmp_path):
    from ffcvx.datasets import FASHION_MNIST_ROOT
    if not glob.glob(os.path.join(FASHION_MNIST_ROOT, '*ubyte*')):
        pytest.fail(f"no Fashion-MNIST at {FASHION_MNIST_ROOT}: `make test` installs the Debian "
                    f"package dataset-fashion-mnist")
    whole, out, parts_dir = tmp_path / 'whole', tmp_path / 'out', tmp_path / 'parts'
    assert main(['convert', 'fashion-mnist', str(whole), '--quiet']) == 0
    for k in range(2):
        assert main(['convert', 'fashion-mnist', str(out), '--part', f'{k}/2', '--parts-dir',
                     str(parts_dir), '--quiet']) == 0
    for split in ('train', 'test'):
        parts = sorted(glob.glob(str(parts_dir / f'{split}.part-*.beton')))
        assert len(parts) == 2
        assert main(['merge', *parts, str(out / f'{split}.beton')]) == 0
    assert _samples(out / 'test.beton') == _samples(whole / 'test.beton')
    assert Reader(str(out / 'train.beton')).num_samples == 60000


@pytest.mark.parametrize('environ, part', [
    ({'RANK': '3', 'WORLD_SIZE': '4'}, (3, 4)),
    ({'SLURM_ARRAY_TASK_ID': '12', 'SLURM_ARRAY_TASK_COUNT': '5',
      'SLURM_ARRAY_TASK_MIN': '10'}, (2, 5)),
    ({'SLURM_PROCID': '0', 'SLURM_NTASKS': '1'}, (0, 1)),
    # torchrun's variables win over SLURM's when a job runs torchrun inside SLURM
    ({'RANK': '1', 'WORLD_SIZE': '2', 'SLURM_PROCID': '0', 'SLURM_NTASKS': '8'}, (1, 2)),
])
def test_part_auto_reads_the_launchers_variables(environ, part):
    from ffcvx.cli.parts import part_from_environment
    assert part_from_environment(environ) == part


@pytest.mark.parametrize('environ', [{}, {'RANK': '2', 'WORLD_SIZE': '2'},
                                     {'RANK': 'x', 'WORLD_SIZE': '2'}])
def test_part_auto_without_a_launcher_is_a_usage_error(environ):
    from ffcvx.cli.common import UsageError
    from ffcvx.cli.parts import part_from_environment
    with pytest.raises(UsageError, match='--part auto'):
        part_from_environment(environ)


def _write_part(root, path, k, count):
    """The Dask recipe's task: part k of count of an ImageFolder (README "Converting on a cluster")."""
    from ffcvx.datasets import ImageFolder
    from ffcvx.fields import IntField, RGBImageField
    from ffcvx.writer import DatasetWriter
    writer = DatasetWriter(path, {'image': RGBImageField(write_mode='proportion',
                                                         max_resolution=48),
                                  'label': IntField()}, num_workers=1, progress=False, seed=0)
    return writer.from_indexed_dataset(ImageFolder(root), part=(k, count)).num_samples


def test_dask_local_cluster_writes_the_parts_of_one_conversion(tmp_path, photos):
    """The README's Dask recipe on a real LocalCluster of 2 worker processes."""
    from dask.distributed import Client, LocalCluster

    import ffcvx
    count = 4
    paths = [str(tmp_path / f'train.part-{k}-of-{count}.beton') for k in range(count)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        futures = client.map(_write_part, [photos] * count, paths, range(count), [count] * count)
        written = client.gather(futures)
        workers = {who for who_has in client.who_has(futures).values() for who in who_has}
    assert len(workers) == 2                    # both worker processes wrote parts
    ffcvx.merge(paths, tmp_path / 'train.beton')
    # the same file, byte for byte, as the parts written one after the other here and merged
    here = [str(tmp_path / f'here-{k}.beton') for k in range(count)]
    for k, path in enumerate(here):
        _write_part(photos, path, k, count)
    assert filecmp.cmp(ffcvx.merge(here, tmp_path / 'here.beton'), tmp_path / 'train.beton',
                       shallow=False)
    whole = tmp_path / 'whole.beton'
    assert main(['convert', 'imagefolder', photos, str(whole), '--seed', '0', *OPTIONS]) == 0
    assert sum(written) == Reader(str(whole)).num_samples
    assert _samples(tmp_path / 'train.beton') == _samples(whole)


def test_a_part_killed_mid_write_is_redone_on_the_rerun_and_only_it(tmp_path, photos, capsys):
    """SIGKILL during part 0 leaves no part file (only a stale temporary file, removed by
    the rerun); the rerun skips part 1 and writes part 0; the merge is the whole write."""
    import signal
    import subprocess
    import sys
    import time
    from PIL import Image
    repo = str(Path(__file__).resolve().parents[2])
    # slow enough to kill mid-write: large images stored as PNG (tens of ms each)
    src = tmp_path / 'src'
    for i, photo in enumerate(sorted(Path(photos).glob('*/*.jpg'))[:24]):
        folder = src / f'c{i % 2}'
        folder.mkdir(parents=True, exist_ok=True)
        Image.open(photo).convert('RGB').resize((1000, 750)).save(folder / f'{i:02d}.png')
    out, parts_dir = tmp_path / 'train.beton', tmp_path / 'parts'
    options = ['--write-mode', 'png', '--num-workers', '1', '--quiet']

    def command(k):
        return ['convert', 'imagefolder', str(src), str(out), '--part', f'{k}/2',
                '--parts-dir', str(parts_dir), *options]

    proc = subprocess.Popen([sys.executable, '-m', 'ffcvx', *command(0)],
                            env={**os.environ, 'PYTHONPATH': repo}, cwd=repo)
    pattern = str(parts_dir / '.train.part-00000-of-00002.beton.ffcvx-*.tmp')
    deadline = time.monotonic() + 120
    while not glob.glob(pattern) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "part 0 ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    part0 = parts_dir / 'train.part-00000-of-00002.beton'
    assert not part0.exists() and glob.glob(pattern)     # nothing that looks valid
    assert main(command(1)) == 0
    part1 = parts_dir / 'train.part-00001-of-00002.beton'
    stamp = os.stat(part1).st_mtime_ns
    capsys.readouterr()
    for k in (0, 1):                          # the rerun of every part
        assert main(command(k)) == 0
    said = capsys.readouterr().out
    assert f"part 1 of 2 is already written: {part1} (skipped)" in said
    assert 'part 0 of 2 is already written' not in said
    assert os.stat(part1).st_mtime_ns == stamp and part0.exists()
    assert not glob.glob(pattern)             # the killed write's file is gone
    assert main(['merge', str(part0), str(part1), str(out)]) == 0
    whole = tmp_path / 'whole.beton'
    assert main(['convert', 'imagefolder', str(src), str(whole), '--seed', '0', *options]) == 0
    assert _samples(out) == _samples(whole)
