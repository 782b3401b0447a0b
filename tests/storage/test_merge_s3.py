"""A merge into object storage (FMT-094, FMT-095) and DatasetWriter into a URL (issue 22).

moto's S3 server on loopback (tests/_http_servers.py) stands for the store;
it refuses upload parts under 5 MiB but the last, as S3 does (checked
below). A counting fault proxy (tests/_fault_proxy.py) between ffcvx and
moto measures the bytes the merging client sends and injects failures.
"""
import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ffcvx
from ffcvx.errors import MergeError, WriterError
from ffcvx.fields import IntField, NDArrayField
from ffcvx.fields.decoders import IntDecoder, NDArrayDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.reader import Reader
from ffcvx.writer import DatasetWriter, s3_compose
from ffcvx.writer.merge import plan as plan_of
from ffcvx.writer.remote_target import part_url

pytest.importorskip('boto3')
pytest.importorskip('moto')

MiB = 1 << 20
PAGE = 2 * MiB
#: 1 MB per sample: two samples fill a 2 MiB page, so pages are many and quick to make.
ELEMENT = 1_000_000
#: Samples per part: 16 MB and 28 MB of pages, a 4 MB part (under S3's 5 MiB), an empty one.
SIZES = (16, 4, 0, 28)
REPO = Path(__file__).resolve().parents[2]


def _fields():
    return {'index': IntField(), 'array': NDArrayField(np.dtype(np.uint8), (ELEMENT,))}


class _Arrays:
    def __init__(self, first, count):
        self.first, self.count = first, count

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        index = self.first + int(i)
        return index, np.frombuffer(np.random.default_rng(index).bytes(ELEMENT), np.uint8)


def _write(path, first, count, **kwargs):
    DatasetWriter(path, _fields(), page_size=PAGE, num_workers=1, progress=False,
                  **kwargs).from_indexed_dataset(_Arrays(first, count))
    return path


@pytest.fixture(scope='module')
def local_parts(tmp_path_factory):
    """The parts as local files, and their local merge."""
    folder = tmp_path_factory.mktemp('parts')
    paths = [_write(str(folder / f'p{k}.beton'), sum(SIZES[:k]), n) for k, n in enumerate(SIZES)]
    return paths, ffcvx.merge(paths, str(folder / 'merged.beton'))


@pytest.fixture(scope='module')
def s3_parts(local_parts, s3_server):
    """The same parts as objects of moto's bucket: their URLs."""
    urls = []
    for k, path in enumerate(local_parts[0]):
        s3_server.put_file(s3_server.bucket, f'parts/p{k}.beton', path)
        urls.append(f's3://{s3_server.bucket}/parts/p{k}.beton')
    return urls


def _options(s3_server, proxy=None, attempts=None):
    options = s3_server.storage_options(endpoint=proxy.url.rstrip('/') if proxy else None)
    if attempts:
        options['config_kwargs'] = {'retries': {'total_max_attempts': attempts, 'mode': 'standard'}}
    return options


def _get(s3_server, key):
    return s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)['Body'].read()


def _uploads(s3_server):
    return s3_server.client().list_multipart_uploads(Bucket=s3_server.bucket).get('Uploads', [])


def _missing(s3_server, key):
    from botocore.exceptions import ClientError
    try:
        s3_server.client().head_object(Bucket=s3_server.bucket, Key=key)
    except ClientError as exc:
        return exc.response['Error']['Code'] in ('404', 'NoSuchKey')
    return False


def _assert_samples(fname, storage_options, count, indices=None):
    """A Loader of ``fname`` yields sample ``i`` of :class:`_Arrays` at position ``i``."""
    pipelines = {'index': [IntDecoder()], 'array': [NDArrayDecoder()]}
    indices = list(range(count)) if indices is None else indices
    with Loader(fname, batch_size=4, order=OrderOption.SEQUENTIAL, num_workers=1,
                drop_last=False, pipelines=pipelines, indices=indices, jit=False,
                storage_options=storage_options) as loader:
        batches = [(np.array(i, copy=True).ravel(), np.array(a, copy=True)) for i, a in loader]
    assert np.concatenate([i for i, _ in batches]).tolist() == list(indices)
    arrays = _Arrays(0, count)
    rows = [row for _, batch in batches for row in batch]
    for position, row in zip(indices, rows):
        assert np.array_equal(row, arrays[position][1]), position


def test_moto_refuses_parts_under_5_mib(s3_server):
    """The server of these tests holds the real minimum, so compose's layout is tested."""
    from botocore.exceptions import ClientError
    client, bucket = s3_server.client(), s3_server.bucket
    upload = client.create_multipart_upload(Bucket=bucket, Key='small')['UploadId']
    parts = [{'PartNumber': n, 'ETag': client.upload_part(
        Bucket=bucket, Key='small', UploadId=upload, PartNumber=n, Body=b'x' * MiB)['ETag']}
        for n in (1, 2)]
    with pytest.raises(ClientError, match='EntityTooSmall'):
        client.complete_multipart_upload(Bucket=bucket, Key='small', UploadId=upload,
                                         MultipartUpload={'Parts': parts})
    client.abort_multipart_upload(Bucket=bucket, Key='small', UploadId=upload)


def test_compose_is_the_local_merge_and_sends_no_page(local_parts, s3_parts, s3_server,
                                                      fault_proxy):
    paths, merged = local_parts
    proxy = fault_proxy(s3_server.endpoint + '/')
    options = _options(s3_server, proxy)
    plan = plan_of(s3_parts, storage_options=options)
    pages = sum(length for _, _, length in plan.ranges)
    # the parts' tables only: header, descriptors, metadata, allocation table, not a page
    tables = sum(os.path.getsize(p) for p in paths) - pages
    assert proxy.bytes_sent() <= tables
    proxy.clear()

    out = f's3://{s3_server.bucket}/merged/train.beton'
    assert ffcvx.merge(s3_parts, out, storage_options=options) == out
    assert _get(s3_server, 'merged/train.beton') == Path(merged).read_bytes()
    assert _uploads(s3_server) == []

    # what went up: the head, the table and the joins of short ranges, each range lending
    # at most 2 * 5 MiB (the layout's promise); the pages themselves were copied by the store
    bound = len(plan.head) + len(plan.table) + sum(min(length, 2 * s3_compose.MIN_PART)
                                                   for _, _, length in plan.ranges)
    sent = proxy.bytes_received()
    copies = [r for r in proxy.requests if r['copy_source']]
    assert len(copies) >= 2 and all(r['request_bytes'] == 0 for r in copies)
    assert sent <= bound + 64 * 1024          # the requests' XML (CompleteMultipartUpload)
    assert sent < pages / 4, (sent, pages)
    # and what came down: the tables again (a fresh plan) and the joined bytes only
    assert proxy.bytes_sent() <= tables + bound
    # the first and last sample of every part, read back through a Loader
    ends = np.cumsum(SIZES)
    _assert_samples(out, _options(s3_server), sum(SIZES),
                    sorted({int(i) for n, e in zip(SIZES, ends) if n for i in (e - n, e - 1)}))


class _FakePart:
    path = 's3://bucket/part.beton'


def test_layout_on_many_shapes_of_merge():
    """S3's rules hold, the pieces are the file in order, and a range lends <= 2 * 5 MiB."""
    from ffcvx.writer.merge import Plan
    rng = np.random.default_rng(0)
    shapes = [(8 * MiB, [8 * MiB, 8 * MiB], 240), (100, [], 24), (100, [MiB] * 30, 48),
              (3 * MiB, [6 * MiB, 9 * MiB, 2 * MiB], 5 * MiB), (10, [12 << 30], 10)]
    for _ in range(300):
        shapes.append((int(rng.integers(24, 12 * MiB)),
                       [int(rng.choice([rng.integers(1, 3), rng.integers(3, 12)])) * MiB
                        for _ in range(rng.integers(0, 8))], int(rng.integers(0, 6 * MiB))))
    for head, lengths, table in shapes:
        parts = [_FakePart() for _ in lengths]
        plan = Plan(parts, b'h' * head, [(p, 1000, n) for p, n in zip(parts, lengths)],
                    b't' * table)
        uploads = s3_compose.layout(plan)
        pieces, sizes = [], []
        for upload in uploads:
            got = [upload[1:]] if upload[0] == 'copy' else upload[1]
            pieces += got
            sizes.append(sum(len(p) if isinstance(p, bytes) else p[2] for p in got))
        assert all(s3_compose.MIN_PART <= n <= s3_compose.MAX_PART for n in sizes[:-1])
        assert sum(sizes) == plan.size and len(uploads) <= s3_compose.MAX_PARTS
        # the pieces, in order, are the head, each range from its start, the table
        rebuilt, position = [], {}
        for piece in pieces:
            if isinstance(piece, bytes):
                rebuilt.append(piece)
                continue
            part, start, length = piece
            assert start == position.get(id(part), 1000)
            position[id(part)] = start + length
            rebuilt.append(('range', id(part), length))
        assert [position.get(id(p)) for p in parts] == [1000 + n for n in lengths]
        joined = {}
        for upload in uploads:
            if upload[0] == 'put':
                for piece in upload[1]:
                    if not isinstance(piece, bytes):
                        joined[id(piece[0])] = joined.get(id(piece[0]), 0) + piece[2]
        assert all(n <= 2 * s3_compose.MIN_PART for n in joined.values())


@pytest.mark.parametrize('fault, key', [('status', 'failed/old.beton'),
                                        ('reset', 'failed/new.beton')])
def test_a_failure_mid_compose_leaves_the_old_object_and_no_upload(s3_parts, s3_server,
                                                                   fault_proxy, fault, key):
    proxy = fault_proxy(s3_server.endpoint + '/')
    s3_server.client().put_object(Bucket=s3_server.bucket, Key='failed/old.beton',
                                  Body=b'old object')
    # the second UploadPartCopy fails on every try (botocore's retries are spent)
    if fault == 'status':
        proxy.fail_next(100, status=500, methods=('PUT',), header='x-amz-copy-source', skip=1)
    else:
        proxy.reset_next(100, methods=('PUT',), header='x-amz-copy-source', skip=1)
    out = f's3://{s3_server.bucket}/{key}'
    with pytest.raises(WriterError, match=f'composing {out} failed.*UploadPartCopy.*no object '
                                          f'was written there.*upload was aborted'):
        ffcvx.merge(s3_parts, out, storage_options=_options(s3_server, proxy, attempts=2))
    assert _get(s3_server, 'failed/old.beton') == b'old object'
    assert _missing(s3_server, 'failed/new.beton')
    assert _uploads(s3_server) == []
    copies = [r for r in proxy.requests if r['copy_source']]
    # in the order they ended: the first copy (done), the second twice (injected), no other
    assert sorted(str(r['injected']) for r in copies) == ['None', fault, fault]


def test_parts_the_store_cannot_copy_are_refused(local_parts, s3_parts, s3_server, tmp_path):
    options = _options(s3_server)
    bucket = s3_server.bucket
    out = f's3://{bucket}/refused/out.beton'
    s3_server.create_bucket('ffcvx-other')
    s3_server.put_file('ffcvx-other', 'p1.beton', local_parts[0][1])
    s3_server.client().put_object(Bucket=bucket, Key='refused/not.beton', Body=b'\0' * 4096)
    cases = [
        ([s3_parts[0], 's3://ffcvx-other/p1.beton'], 'not an object of the bucket'),
        ([s3_parts[0], local_parts[0][1]], 'not an object of the bucket'),
        ([s3_parts[0], f's3://{bucket}/refused/absent.beton'], 'does not exist'),
        ([s3_parts[0], f's3://{bucket}/refused/not.beton'], 'not a valid .beton'),
    ]
    for parts, message in cases:
        with pytest.raises(MergeError, match=message):
            ffcvx.merge(parts, out, storage_options=options)
    assert _missing(s3_server, 'refused/out.beton')
    assert _uploads(s3_server) == []


def test_a_stream_merge_into_other_urls_is_the_local_merge(local_parts, tmp_path):
    import fsspec
    paths, merged = local_parts
    memory = fsspec.filesystem('memory')
    urls = []
    for k, path in enumerate(paths):
        memory.put_file(path, f'/stream/p{k}.beton')
        urls.append(f'memory://stream/p{k}.beton')
    assert ffcvx.merge(urls, 'memory://stream/out.beton') == 'memory://stream/out.beton'
    assert memory.cat_file('/stream/out.beton') == Path(merged).read_bytes()
    assert [p for p in memory.ls('/stream', detail=False) if '.tmp' in p] == []
    # a file:// target is a local merge (atomic rename); parts may be URLs there too
    ffcvx.merge(urls, f'file://{tmp_path}/from-memory.beton')
    assert filecmp.cmp(tmp_path / 'from-memory.beton', merged, shallow=False)
    ffcvx.merge([f'file://{p}' for p in paths], f'file://{tmp_path}/from-files.beton')
    assert filecmp.cmp(tmp_path / 'from-files.beton', merged, shallow=False)
    memory.rm('/stream', recursive=True)


def test_a_failed_stream_merge_leaves_nothing(local_parts, monkeypatch):
    import fsspec
    paths, _ = local_parts
    memory = fsspec.filesystem('memory')
    memory.pipe_file('/failing/out.beton', b'old')
    urls = []
    for k, path in enumerate(paths[:2]):
        memory.put_file(path, f'/failing/p{k}.beton')
        urls.append(f'memory://failing/p{k}.beton')
    from ffcvx.writer import merge_plan

    def broken(self, start, count, chunk=0):
        yield b'x'
        raise OSError('the part could not be read')
    monkeypatch.setattr(merge_plan._Part, 'chunks', broken)
    with pytest.raises(WriterError, match='memory://failing/out.beton failed.*could not be read'):
        ffcvx.merge(urls, 'memory://failing/out.beton')
    assert memory.cat_file('/failing/out.beton') == b'old'
    assert sorted(memory.ls('/failing', detail=False)) == [
        '/failing/out.beton', '/failing/p0.beton', '/failing/p1.beton']
    memory.rm('/failing', recursive=True)


def test_dataset_writer_to_s3_whole_and_in_parts(s3_server, tmp_path, monkeypatch):
    options = _options(s3_server)
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    monkeypatch.setenv('FFCVX_TMPDIR', str(scratch))      # where the local copies go
    count = 6
    local = _write(str(tmp_path / 'local.beton'), 0, count, seed=3)
    target = f's3://{s3_server.bucket}/written/train.beton'
    _write(target, 0, count, seed=3, storage_options=options)
    assert _get(s3_server, 'written/train.beton') == Path(local).read_bytes()
    _assert_samples(target, options, count)

    parts_target = f's3://{s3_server.bucket}/written/split.beton'
    for k in range(3):
        DatasetWriter(parts_target, _fields(), page_size=PAGE, num_workers=1, progress=False,
                      seed=3, storage_options=options).from_indexed_dataset(
                          _Arrays(0, count), part=(k, 3))
    urls = [part_url(parts_target, (k, 3)) for k in range(3)]
    assert urls[1] == (f's3://{s3_server.bucket}/written/split.beton.parts/'
                       f'split.part-00001-of-00003.beton')
    assert _missing(s3_server, 'written/split.beton')      # parts only: no compose yet
    ffcvx.merge(urls, parts_target, storage_options=options)
    assert _get(s3_server, 'written/split.beton') == Path(local).read_bytes()
    assert _uploads(s3_server) == []
    assert list(scratch.iterdir()) == []                   # every local copy removed


def test_a_failed_upload_of_a_write_leaves_nothing(s3_server, fault_proxy, tmp_path,
                                                   monkeypatch):
    scratch = tmp_path / 'scratch'
    scratch.mkdir()
    monkeypatch.setenv('FFCVX_TMPDIR', str(scratch))
    proxy = fault_proxy(s3_server.endpoint + '/')
    proxy.fail_next(100, status=500, methods=('PUT', 'POST'))
    s3_server.client().put_object(Bucket=s3_server.bucket, Key='upload/old.beton', Body=b'old')
    for key in ('upload/old.beton', 'upload/new.beton'):
        target = f's3://{s3_server.bucket}/{key}'
        with pytest.raises(WriterError, match=f'uploading {target} failed.*nothing was written'):
            _write(target, 0, 4, storage_options=_options(s3_server, proxy, attempts=1))
    assert _get(s3_server, 'upload/old.beton') == b'old'
    assert _missing(s3_server, 'upload/new.beton')
    assert _uploads(s3_server) == [] and list(scratch.iterdir()) == []


def test_ffcvx_merge_command_with_urls(s3_parts, local_parts, s3_server):
    out = f's3://{s3_server.bucket}/cli/merged.beton'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.fspath(REPO)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    proc = subprocess.run([sys.executable, '-m', 'ffcvx', 'merge', *s3_parts, out,
                           '--storage-options', json.dumps(_options(s3_server))],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert out in proc.stdout and f'{sum(SIZES)} samples' in proc.stdout
    assert _get(s3_server, 'cli/merged.beton') == Path(local_parts[1]).read_bytes()


class _Images:
    """The README's ``my_dataset``: ``(image, label)`` pairs."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        rng = np.random.default_rng(int(i))
        return rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), int(i) % 3


def test_readme_example_composes_in_moto(s3_server):
    """The README's "Into object storage" example, pointed at moto, makes the file."""
    import re
    from ffcvx.fields import RGBImageField
    readme = (REPO / 'README.md').read_text()
    section = readme.split('### Into object storage', 1)[1].split('\n## ', 1)[0]
    code = re.search(r'```py\n(.*?)```', section, flags=re.S).group(1)
    replacements = {'https://s3.example.internal:9000': s3_server.endpoint,
                    's3://my-bucket/': f's3://{s3_server.bucket}/readme/',
                    'my-access-key': 'testing', 'my-secret-key': 'testing'}
    for placeholder, value in replacements.items():
        assert placeholder in code, placeholder
        code = code.replace(placeholder, value)
    namespace = {'my_dataset': _Images(), 'DatasetWriter': DatasetWriter,
                 'RGBImageField': RGBImageField, 'IntField': IntField}
    exec(compile(code, 'README.md', 'exec'), namespace)
    merged = Reader(f's3://{s3_server.bucket}/readme/train.beton',
                    storage_options=namespace['options'])
    assert merged.num_samples == 10
    assert _uploads(s3_server) == []
