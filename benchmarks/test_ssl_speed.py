"""SimCLR-style two-view loading (examples/simclr_two_views.py's pipelines), in views per second.

Run: pytest benchmarks/test_ssl_speed.py --benchmark-only
Next to one view alone, and to two views that each decode their JPEG
(FFCV-SSL's way; here forced with a decoder subclass that cannot share).
Ratios compare measurements taken in this one run.
"""
import importlib.util
import time

import pytest

from ffcvx.fields.decoders import IntDecoder, RandomResizedCropRGBImageDecoder
from ffcvx.loader import Loader, OrderOption

from conftest import REPO

_spec = importlib.util.spec_from_file_location('simclr_two_views',
                                               REPO / 'examples' / 'simclr_two_views.py')
simclr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(simclr)

RESULTS = {}


class OwnDecode(RandomResizedCropRGBImageDecoder):
    """The same crop decoder, but excluded from shared decodes (no ``view_draw``)."""

    view_draw = None


def _view(blur, solarize, own_decode=False):
    ops = simclr.view(blur, solarize)
    if own_decode:
        ops[0] = OwnDecode((224, 224), scale=(0.08, 1.0))
    return ops


def _loader(path, threads, views, own_decode=False):
    pipelines = {'image': _view(1.0, 0.0, own_decode), 'label': [IntDecoder()]}
    mapper = None
    if views == 2:
        pipelines['image2'] = _view(0.1, 0.2, own_decode)
        mapper = {'image2': 'image'}
    loader = Loader(str(path), batch_size=64, num_workers=threads, order=OrderOption.RANDOM,
                    seed=0, drop_last=False, backend='turbojpeg', pipelines=pipelines,
                    custom_field_mapper=mapper)
    _views_per_second(loader, views)   # compile, warm the page cache
    return loader


def _views_per_second(loader, views):
    start = time.perf_counter()
    count = 0
    for batch in loader:
        count += views * batch[0].shape[0]
    return count / (time.perf_counter() - start)


@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.parametrize('case', ['one_view', 'two_views_shared', 'two_views_own_decode'])
def test_simclr_views(benchmark, photos_beton, threads, case):
    views = 1 if case == 'one_view' else 2
    loader = _loader(photos_beton, threads, views, own_decode=case.endswith('own_decode'))
    rates = []
    benchmark.pedantic(lambda: rates.append(_views_per_second(loader, views)), rounds=2, iterations=1)
    RESULTS[(case, threads)] = max(rates)
    benchmark.extra_info['views_per_s'] = round(max(rates))
    print(f"\nSimCLR {case}, {threads} thread(s): {max(rates):,.0f} views/s")
    shared, own = RESULTS.get(('two_views_shared', threads)), RESULTS.get(('two_views_own_decode', threads))
    if shared and own:
        print(f"two views, shared decode / own decodes, {threads} thread(s): {shared / own:.2f}")
    loader.close()
