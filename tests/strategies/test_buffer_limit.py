"""A file whose sizes ask for more buffer memory than there is: a clear error, nothing allocated.

One sample's image record AND its JPEG frame header both claim 65500 x 65500
pixels (the header check, BKD-075, finds nothing to refuse: they agree). The
Loader sizes its image buffers from the field's largest record, so its crop
decoder's per-thread scratch wanted 2 x 12 GiB and numpy raised a bare
MemoryError naming no sample (ffcvx.pipeline.buffer_check). The memory
available is set here, so the outcome does not depend on the machine's RAM.
"""
import io

import numpy as np
import pytest
from PIL import Image

import ffcvx.pipeline.allocation_query as allocation_query
import ffcvx.pipeline.buffer_check as buffer_check
import ffcvx.pipeline.graph as graph
from ffcvx.errors import PipelineError
from ffcvx.fields import IntField, RGBImageField
from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder, SimpleRGBImageDecoder
from ffcvx.loader import Loader
from ffcvx.reader import Reader
from ffcvx.types import metadata_offset
from ffcvx.writer import DatasetWriter

HUGE, HEIGHT, WIDTH = 65500, 24, 32
GIB = 2 ** 30


def _sof_offset(data):
    """Offset of the JPEG's first SOF0/1/2 marker (plain Python, not ffcvx's header reader)."""
    p = 2
    while data[p + 1] not in (0xC0, 0xC1, 0xC2):
        p += 2 + int.from_bytes(data[p + 2:p + 4], 'big')
    return p


def _huge_claim_file(path, count, bad):
    """``count`` JPEG samples; sample ``bad``'s record and header both say 65500 x 65500 (None: none)."""
    images = [np.random.default_rng(k).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
              for k in range(count)]
    DatasetWriter(str(path), {'image': RGBImageField(write_mode='jpg'), 'label': IntField()},
                  num_workers=1, progress=False).from_indexed_dataset(
                      [(image, k) for k, image in enumerate(images)])
    if bad is None:
        return str(path)
    reader = Reader(str(path))
    record = reader.metadata.dtype
    image_field = record['f0']
    at = (metadata_offset(reader.num_fields) + bad * record.itemsize + record.fields['f0'][1])
    region = bytes(reader.read_sample_region(bad, 'image'))
    ptr = int(reader.metadata['f0'][bad]['data_ptr'])
    with open(path, 'r+b') as f:
        f.seek(ptr + _sof_offset(region) + 5)            # SOF: precision, height, width
        f.write(HUGE.to_bytes(2, 'big') * 2)
        for side in ('width', 'height'):
            f.seek(at + image_field.fields[side][1])
            f.write(HUGE.to_bytes(2, 'little'))
    patched = Reader(str(path)).metadata['f0'][bad]
    assert (int(patched['height']), int(patched['width'])) == (HUGE, HUGE)
    return str(path)


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('huge-claim')
    return {'mixed': _huge_claim_file(folder / 'mixed.beton', count=4, bad=2),
            'single': _huge_claim_file(folder / 'single.beton', count=1, bad=0),
            'plain': _huge_claim_file(folder / 'plain.beton', count=4, bad=None)}


@pytest.fixture
def allocations(monkeypatch):
    """Bytes of every buffer the pipeline allocates from now on."""
    sizes = []
    real = allocation_query.allocate

    def recording(query, leading):
        sizes.append(buffer_check.buffer_bytes(query, leading))
        return real(query, leading)
    _replace_allocate(monkeypatch, recording)
    return sizes


def _replace_allocate(monkeypatch, function):
    # Every buffer comes from allocation_query.allocate: directly, through
    # allocate_all, or through the name graph.py imported.
    monkeypatch.setattr(allocation_query, 'allocate', function)
    monkeypatch.setattr(graph, 'allocate', function)


@pytest.mark.parametrize('name, decoder, sample', [
    ('mixed', lambda: RandomResizedCropRGBImageDecoder((16, 16)), 2),
    ('single', SimpleRGBImageDecoder, 0),
])
def test_huge_claim_is_refused_before_allocating(files, monkeypatch, allocations, name, decoder,
                                                 sample):
    monkeypatch.setattr(buffer_check, 'available_memory', lambda: 8 * GIB)
    with pytest.raises(PipelineError) as info:
        Loader(files[name], batch_size=2, num_workers=1,
               pipelines={'image': [decoder()], 'label': [IntDecoder()]})
    message = str(info.value)
    per_image = HUGE * HUGE * 3
    print(message)
    assert f"sample {sample} (jpg, {HUGE}x{HUGE} pixels" in message
    assert f"{per_image} bytes per image" in message
    need = int(message.split('its buffers need ')[1].split(' bytes')[0])
    assert need >= 2 * per_image                     # two threads' scratch, or two images
    assert f"more than the {8 * GIB} bytes" in message and "pipeline 'image', step 0" in message
    assert max(allocations, default=0) < 64 * 2 ** 20, allocations   # nothing huge was tried


def test_memory_error_at_allocation_names_the_sample(files, monkeypatch):
    """Where the memory available is unknown (or wrong), numpy's MemoryError gets the same context."""
    monkeypatch.setattr(buffer_check, 'available_memory', lambda: None)
    real = allocation_query.allocate

    def failing(query, leading):
        if buffer_check.buffer_bytes(query, leading) > GIB:
            raise MemoryError("Unable to allocate 24.0 GiB")
        return real(query, leading)
    _replace_allocate(monkeypatch, failing)
    with pytest.raises(PipelineError, match='allocating them failed') as info:
        Loader(files['mixed'], batch_size=2, num_workers=1,
               pipelines={'image': [RandomResizedCropRGBImageDecoder((16, 16))],
                          'label': [IntDecoder()]})
    assert f"sample 2 (jpg, {HUGE}x{HUGE} pixels" in str(info.value)
    assert isinstance(info.value.__cause__, MemoryError)


def test_buffers_that_fit_are_allocated(files, monkeypatch, allocations):
    """The same limit lets an undamaged file's Loader through, and it yields its images."""
    monkeypatch.setattr(buffer_check, 'available_memory', lambda: 8 * GIB)
    with Loader(files['plain'], batch_size=2, num_workers=1,
                pipelines={'image': [SimpleRGBImageDecoder()], 'label': [IntDecoder()]}) as good:
        images, labels = next(iter(good))
    assert images.shape == (2, HEIGHT, WIDTH, 3) and allocations


def test_available_memory_is_what_the_system_reports():
    available = buffer_check.available_memory()
    assert available is None or 0 <= available
    # The project runs on Linux (Debian); a missing /proc/meminfo is a failure, not a skip.
    with open('/proc/meminfo') as f:
        total = int(next(line for line in f if line.startswith('MemTotal:')).split()[1]) * 1024
    assert available <= total


def test_cgroup_file_cache_is_not_counted_as_used(tmp_path):
    """A container near its limit with mostly page cache still has that memory to give."""
    from ffcvx.pipeline.buffer_check import _cgroup_available
    (tmp_path / 'memory.max').write_text('1000000000\n')
    (tmp_path / 'memory.current').write_text('900000000\n')
    (tmp_path / 'memory.stat').write_text('anon 150000000\nfile 700000000\nkernel 50000000\n')
    assert _cgroup_available(str(tmp_path)) == 1000000000 - (900000000 - 700000000)
    (tmp_path / 'memory.max').write_text('max\n')
    assert _cgroup_available(str(tmp_path)) is None
