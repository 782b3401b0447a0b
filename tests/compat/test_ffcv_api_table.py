"""spec/ffcv-api.md cannot drift: its names resolve, its differences point at real tests."""
import importlib
import re
from pathlib import Path

import pytest

from test_ffcv_api import FFCV_PUBLIC

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / 'spec' / 'ffcv-api.md'


def _rows(section):
    text = PAGE.read_text().split(f'## {section}\n', 1)[1].split('\n## ', 1)[0]
    rows = []
    for line in text.splitlines():
        if line.startswith('|') and not line.startswith('|---'):
            rows.append([cell.strip() for cell in line.strip('|').split('|')])
    return rows[1:]    # without the header


NAMES = _rows('Names')
SSL_NAMES = _rows('FFCV-SSL names')
DIFFERENCES = {row[0]: row for row in _rows('Differences')}


def _resolve(dotted):
    # The longest importable module prefix, then attributes.
    parts = dotted.split('.')
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module('.'.join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize('row', NAMES + SSL_NAMES,
                         ids=[row[0] for row in NAMES] + ['ssl:' + row[0] for row in SSL_NAMES])
def test_every_listed_name_resolves_or_says_why_absent(row):
    name, status, note = row
    assert status in ('same', 'differs', 'absent'), row
    ffcvx_name = 'ffcvx' + name.strip('`')[len('ffcv'):]
    if status == 'absent':
        assert note, f"{name}: an absent name must say why"
        with pytest.raises((ImportError, AttributeError)):
            _resolve(ffcvx_name)
        return
    # an attribute set in __init__ (e.g. Loader.pipelines) resolves on the class
    # only as a documented property or method; instance attributes are tested elsewhere
    try:
        _resolve(ffcvx_name)
    except AttributeError:
        owner, attr = ffcvx_name.rsplit('.', 1)
        assert attr in _instance_attributes(owner), \
            f"{ffcvx_name} does not exist"
    if status == 'differs':
        for ref in re.findall(r'D-[\w-]+', note):
            assert ref in DIFFERENCES, f"{name} cites {ref}, which the Differences table lacks"


def _instance_attributes(owner):
    # Names assigned as self.<name> anywhere in the class's source.
    import inspect
    source = inspect.getsource(_resolve(owner))
    return tuple(re.findall(r'self\.(\w+)\s*[:=]', source))


def test_every_ffcv_public_name_has_a_row():
    listed = {row[0].strip('`') for row in NAMES}
    missing = [f"ffcv{module[len('ffcvx'):]}.{name}" for module, names in FFCV_PUBLIC.items()
               for name in names if f"ffcv{module[len('ffcvx'):]}.{name}" not in listed]
    assert not missing, f"spec/ffcv-api.md has no row for {missing}"


@pytest.mark.parametrize('ident', sorted(DIFFERENCES))
def test_every_difference_names_an_existing_test(ident):
    row = DIFFERENCES[ident]
    assert len(row) == 5 and all(row), row
    for ref in re.findall(r'`([^`]+)`', row[4]) or [row[4]]:
        path, _, test = ref.partition('::')
        source = (REPO / path).read_text()
        assert re.search(rf'^\s*def {re.escape(test)}\(', source, re.M), f"{ident}: {ref} not found"
    cited = {ref for name_row in NAMES + SSL_NAMES for ref in re.findall(r'D-[\w-]+', name_row[2])}
    assert ident in cited, f"{ident} is cited by no name"


#: FFCV-SSL's ``ffcv.transforms.__all__`` (6458e33) beyond FFCV 1.0's.
FFCV_SSL_TRANSFORMS = ['RandomResizedCrop', 'LabelRandomResizedCrop', 'PadRGBImageDecoder', 'CornerCrop',
                       'CenterCrop', 'RandomColorJitter', 'LabelColorJitter', 'RandomGrayscale',
                       'LabelGrayscale', 'RandomSolarization', 'LabelSolarization', 'RandomTranslate',
                       'LabelTranslate', 'GaussianBlur', 'LabelGaussianBlur', 'RandomErasing', 'Rotate']


def test_every_ffcv_ssl_transform_has_a_row():
    listed = {row[0].strip('`') for row in SSL_NAMES}
    missing = [name for name in FFCV_SSL_TRANSFORMS if f'ffcv.transforms.{name}' not in listed]
    assert not missing, f"spec/ffcv-api.md's FFCV-SSL table has no row for {missing}"
