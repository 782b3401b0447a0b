"""Shared fixtures: the FFCV golden files and a tiny ``.beton`` builder for format tests."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ffcvx.fields import type_id_of
from ffcvx.testing import SharedDirNotFound
from ffcvx.testing import shared_dir as find_shared_dir
from _common import GOLDEN_DIR, GOLDEN_MISSING, REPO, write_labelled  # noqa: F401  (fixtures' and tests' helpers)
from ffcvx.types import (ALLOC_TABLE_TYPE, CURRENT_VERSION, FIELD_NAME_LENGTH, FieldDescType,
                         HeaderType, align_to_page, get_metadata_type, metadata_offset)

def golden_cases():
    """Case names (file stems) of every golden ``.beton``, sorted."""
    return sorted(p.stem for p in GOLDEN_DIR.glob('*.beton')) if GOLDEN_DIR else []


def pytest_generate_tests(metafunc):
    # Any test taking `golden_case` runs once per golden .beton file.
    if 'golden_case' in metafunc.fixturenames:
        cases = golden_cases()
        if cases:
            metafunc.parametrize('golden_case', cases)
        else:
            # One case that fails in the golden_dir fixture, saying what is missing.
            metafunc.parametrize('golden_case', [None])


@pytest.fixture(scope='session')
def shared_dir():
    """The project's ``shared/`` folder (golden files, photos); fails the test when absent."""
    try:
        return find_shared_dir()
    except SharedDirNotFound as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope='session')
def golden_dir():
    """Path of the FFCV 1.0.2 golden files; fails the test when they are absent."""
    if GOLDEN_DIR is None:
        pytest.fail(GOLDEN_MISSING)
    return GOLDEN_DIR


@pytest.fixture(scope='session')
def load_sidecar(golden_dir):
    """``load_sidecar(case) -> (dict, NpzFile | None)``: a golden file's JSON and arrays."""
    cache = {}

    def load(case):
        if case not in cache:
            meta = json.loads((golden_dir / f'{case}.json').read_text())
            npz = np.load(golden_dir / meta['npz']) if meta['npz'] else None
            cache[case] = (meta, npz)
        return cache[case]

    return load


@pytest.fixture
def golden_copy(golden_dir, tmp_path):
    """``golden_copy(case) -> Path``: a writable copy of a golden file in ``tmp_path``."""
    def copy(case):
        dest = tmp_path / f'{case}.beton'
        shutil.copyfile(golden_dir / f'{case}.beton', dest)
        dest.chmod(0o644)
        return dest
    return copy


class FilePatcher:
    """Overwrite parts of a file in place (for corruption tests)."""

    @staticmethod
    def bytes(path, offset, data):
        """Overwrite ``len(data)`` bytes of ``path`` at ``offset``."""
        with open(path, 'r+b') as f:
            f.seek(offset)
            f.write(bytes(data))

    @classmethod
    def value(cls, path, offset, dtype, value):
        """Overwrite one number of ``dtype`` (e.g. ``'<u8'``, little-endian) at ``offset``."""
        cls.bytes(path, offset, np.array([value], dtype=dtype).tobytes())

    @staticmethod
    def read(path, offset, dtype):
        """Read one number of ``dtype`` at ``offset``."""
        dtype = np.dtype(dtype)
        with open(path, 'rb') as f:
            f.seek(offset)
            return np.frombuffer(f.read(dtype.itemsize), dtype=dtype)[0].item()


@pytest.fixture(scope='session')
def patcher():
    """A :class:`FilePatcher`."""
    return FilePatcher()


def build_beton(path, fields, samples, page_size=4096, extra_records=()):
    """Write a small ``.beton`` file the way FFCV 1.0 lays one out (spec/beton.md).

    Parameters
    ----------
    path : Path
    fields : list of (str, Field)
        Names and field instances, in file order; type ids from ``type_id_of``.
    samples : list of tuple
        One value per field for each sample.
    page_size : int, bytes
        A power of two; small values keep test files small.
    extra_records : iterable of (sample_id, ptr, size)
        Extra allocation records appended after the real ones (for tie tests).

    Returns
    -------
    dict
        Layout facts: ``metadata_start``, ``itemsize``, ``data_start``,
        ``alloc_table_ptr``, ``member_offsets``, ``records`` (list of
        (sample_id, ptr, size) in file order).
    """
    handlers = [field for _, field in fields]
    mtype = get_metadata_type(handlers)
    m0 = metadata_offset(len(fields))
    m1 = m0 + len(samples) * mtype.itemsize
    d0 = align_to_page(m1, page_size)
    metadata = np.zeros(len(samples), dtype=mtype)
    pages = []
    records = []
    used = page_size  # no page open yet

    for sid, values in enumerate(samples):
        sizes = []

        def measure(size):
            sizes.append(size)
            return 0, np.zeros(size, dtype=np.uint8)

        scratch = np.zeros(1, dtype=mtype)
        for index, (field, value) in enumerate(zip(handlers, values)):
            field.encode(scratch[f'f{index}'], value, measure)
        if used + sum(sizes) > page_size:
            pages.append(np.zeros(page_size, dtype=np.uint8))
            used = 0
        page_base = d0 + (len(pages) - 1) * page_size if pages else d0

        def malloc(size):
            nonlocal used
            if not pages:  # only zero-size regions so far: FFCV puts them one page before D0
                records.append((sid, d0 - page_size, 0))
                return d0 - page_size, np.zeros(0, dtype=np.uint8)
            ptr = page_base + used
            view = pages[-1][used:used + size]
            used += size
            records.append((sid, ptr, size))
            return ptr, view

        for index, (field, value) in enumerate(zip(handlers, values)):
            field.encode(metadata[f'f{index}'][sid:sid + 1], value, malloc)

    records.extend(extra_records)
    alloc_table_ptr = d0 + len(pages) * page_size if pages else m1
    header = np.zeros(1, dtype=HeaderType)
    header['version'] = CURRENT_VERSION
    header['num_fields'] = len(fields)
    header['page_size'] = page_size
    header['num_samples'] = len(samples)
    header['alloc_table_ptr'] = alloc_table_ptr
    descs = np.zeros(len(fields), dtype=FieldDescType)
    for i, (name, field) in enumerate(fields):
        descs[i]['type_id'] = type_id_of(field)
        raw_name = name.encode('ascii')[:FIELD_NAME_LENGTH]
        descs[i]['name'][:len(raw_name)] = np.frombuffer(raw_name, dtype=np.uint8)
        descs[i]['arguments'] = np.frombuffer(field.to_binary().tobytes(), dtype=np.uint8)
    table = np.array(records, dtype=np.uint64).reshape(-1, 3)
    alloc = np.zeros(len(records), dtype=ALLOC_TABLE_TYPE)
    alloc['sample_id'], alloc['ptr'], alloc['size'] = table[:, 0], table[:, 1], table[:, 2]
    with open(path, 'wb') as f:
        f.write(header.tobytes())
        f.write(descs.tobytes())
        f.write(metadata.tobytes())
        if pages:
            f.write(bytes(d0 - m1))
            for page in pages:
                f.write(page.tobytes())
        f.write(alloc.tobytes())
    return {
        'metadata_start': m0, 'itemsize': mtype.itemsize, 'data_start': d0,
        'alloc_table_ptr': alloc_table_ptr, 'records': records,
        'member_offsets': [mtype.fields[f'f{i}'][1] for i in range(len(fields))],
    }


@pytest.fixture
def make_beton(tmp_path):
    """``make_beton(fields, samples, name='t.beton', **kw) -> (Path, layout)``; see ``build_beton``."""
    def make(fields, samples, name='t.beton', **kwargs):
        path = tmp_path / name
        return path, build_beton(path, fields, samples, **kwargs)
    return make


@pytest.fixture
def golden_reader(golden_dir):
    """``golden_reader(case)``: a Reader of the untouched golden file (for offsets)."""
    from ffcvx.reader import Reader
    return lambda case: Reader(golden_dir / f'{case}.beton')


# -- servers of the remote-file tests (tests/_http_servers.py, tests/_fault_proxy.py) ----------


@pytest.fixture(scope='module')
def nginx_server(tmp_path_factory):
    """nginx on loopback serving ``nginx_server.root`` (Range, If-Match)."""
    from _http_servers import NginxServer
    server = NginxServer(tmp_path_factory.mktemp('nginx')).start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def s3_server(tmp_path_factory):
    """moto's S3 server on loopback, with the bucket ``s3_server.bucket`` made."""
    from _http_servers import MotoS3Server
    server = MotoS3Server(tmp_path_factory.mktemp('moto')).start()
    server.bucket = server.create_bucket('ffcvx-test')
    yield server
    server.stop()


@pytest.fixture
def fault_proxy():
    """``fault_proxy(upstream_url) -> FaultProxy``, started; all stopped after the test."""
    from _fault_proxy import FaultProxy
    proxies = []

    def make(upstream):
        proxy = FaultProxy(upstream).start()
        proxies.append(proxy)
        return proxy
    yield make
    for proxy in proxies:
        proxy.stop()
