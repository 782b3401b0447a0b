"""What a ``.beton`` file holds, from its metadata and allocation table alone.

:func:`dataset_stats` summarises an opened :class:`~ffcvx.reader.Reader`:
label histograms, image sizes and storage modes, stored bytes per field and
how full the pages are. It decodes nothing and reads no sample data, so it
costs the same on a local file as on a URL (the reader has already fetched
both tables). ``ffcvx info --stats`` prints it; ``--json`` prints this dict.
"""
import numpy as np

from .fields import ImageField, IntField
from .fields.base import RegionTable
from .types import IMAGE_MODES, metadata_offset

__all__ = ['dataset_stats', 'page_layout', 'size_counts', 'PERCENTILES']

#: Percentiles of the image width and height distributions.
PERCENTILES = (5, 50, 95)

_MODE_NAMES = {code: name for name, code in IMAGE_MODES.items()}


def page_layout(reader):
    """Where the data region is and how many pages it has (FMT-040, FMT-050).

    Returns
    -------
    dict
        ``start``, ``end`` (absolute byte offsets; ``end`` is the allocation
        table's pointer), ``bytes`` (``end - start``, 0 without pages) and
        ``pages_written`` (``bytes // page_size``).
    """
    n, ps = reader.num_samples, reader.page_size
    end = int(reader.header['alloc_table_ptr'])
    meta_end = metadata_offset(reader.num_fields) + n * reader.metadata_type.itemsize
    # A file with no data stores its table right after the metadata (FMT-050).
    pages = 0 if end <= meta_end else (end - reader.data_region_start) // ps
    return {'start': int(reader.data_region_start), 'end': end, 'bytes': pages * ps,
            'pages_written': int(pages)}


def _page_usage(reader, layout):
    """Bytes of regions inside each written page, ndarray[int64] shape (pages_written,)."""
    ps, pages = reader.page_size, layout['pages_written']
    ptrs = reader.region_ptrs.astype(np.int64)
    sizes = reader.region_sizes.astype(np.int64)
    if pages == 0 or ptrs.size == 0:
        return np.zeros(pages, dtype=np.int64)
    # used(x): bytes of regions below offset x. Regions do not overlap (FMT-071), so it is
    # the sizes of the regions before the one starting at or below x plus x's part of that one.
    before = np.concatenate(([0], np.cumsum(sizes)))
    bounds = layout['start'] + ps * np.arange(pages + 1, dtype=np.int64)
    at = np.searchsorted(ptrs, bounds, side='right') - 1
    k = np.maximum(at, 0)
    used = np.where(at >= 0, before[k] + np.clip(bounds - ptrs[k], 0, sizes[k]), 0)
    return np.diff(used)


def _distribution(values):
    """min, the PERCENTILES (values that occur: ``method='nearest'``) and max; None if empty."""
    if values.size == 0:
        return None
    points = np.percentile(values, PERCENTILES, method='nearest')
    out = {'min': int(values.min())}
    out.update({f'p{p}': int(v) for p, v in zip(PERCENTILES, points)})
    out['max'] = int(values.max())
    return out


def _histogram(values, top):
    """The ``top`` most frequent values (ties: smaller value first), in value order, + the rest."""
    uniques, counts = np.unique(values, return_counts=True)
    order = np.lexsort((uniques, -counts))[:top]
    keep = np.sort(order)
    rest = counts.sum() - counts[keep].sum()
    return {'distinct': int(uniques.size),
            'counts': [[int(uniques[i]), int(counts[i])] for i in keep],
            'others': {'values': int(uniques.size - keep.size), 'count': int(rest)}}


def size_counts(column):
    """Distinct ``(width, height)`` pairs of image records and how many records have each.

    Parameters
    ----------
    column : ndarray of an image field's metadata records (FMT-036), shape (n,)

    Returns
    -------
    pairs : ndarray[int64], shape (k, 2)
        ``(width, height)`` in pixels, in ascending order.
    counts : ndarray[int64], shape (k,)
    """
    if column.size == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.int64)
    # one int64 key per record (sides are <u2): a 1-D unique, far quicker than axis=0
    keys, counts = np.unique(column['width'].astype(np.int64) << 16 | column['height'],
                             return_counts=True)
    return np.stack([keys >> 16, keys & 0xFFFF], axis=1), counts


def _image_stats(column, sizes, common):
    """Sizes and storage modes of one image field's records (FMT-036)."""
    width = column['width'].astype(np.int64)
    height = column['height'].astype(np.int64)
    pairs, counts = size_counts(column)
    order = np.lexsort((pairs[:, 1], pairs[:, 0], -counts))[:common]
    modes = {}
    for code in np.unique(column['mode']):
        chosen = column['mode'] == code
        total = int(sizes[chosen].sum())
        count = int(chosen.sum())
        modes[_MODE_NAMES.get(int(code), f'mode {int(code)}')] = {
            'count': count, 'bytes': total, 'mean_bytes': total / count}
    return {'width': _distribution(width), 'height': _distribution(height),
            'distinct_sizes': int(counts.size),
            'common_sizes': [[int(pairs[i, 0]), int(pairs[i, 1]), int(counts[i])] for i in order],
            'modes': modes}


def _label_fields(reader, label_fields):
    if label_fields is None:
        return [name for name in reader.field_names if isinstance(reader.handlers[name], IntField)]
    for name in label_fields:
        if name not in reader.handlers:
            raise KeyError(f"no field {name!r}; the fields are {', '.join(reader.field_names)}")
        if not isinstance(reader.handlers[name], IntField):
            raise ValueError(f"field {name!r} is a {type(reader.handlers[name]).__name__}, "
                             f"not an IntField: no label histogram")
    return list(label_fields)


def _samples_per_page(samples, pages, num_samples, num_pages):
    """How many samples have data in each page, ndarray[int64] shape (num_pages,).

    All non-empty regions of a sample lie in one page (FMT-041; the reader refuses a
    file where they do not, FMT-078), so a sample counts in the page of any of its regions.
    """
    page_of = np.full(num_samples, -1, dtype=np.int64)
    for owner, page in zip(samples, pages):
        page_of[owner] = page
    return np.bincount(page_of[page_of >= 0], minlength=num_pages)


def dataset_stats(reader, label_fields=None, top=20, common_sizes=5):
    """Label histograms, image sizes, stored bytes and page use of an opened file.

    Only the metadata and the allocation table are used (nothing is decoded).

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    label_fields : list of str, optional
        IntFields to histogram; default: every IntField.
    top : int
        How many values each histogram keeps (the most frequent); the rest are
        counted under ``others``.
    common_sizes : int
        How many of the most frequent ``(width, height)`` pairs to list.

    Returns
    -------
    dict of plain values (JSON-ready)
        ``samples``, ``page_size`` (bytes), ``data_region`` (see
        :func:`page_layout`), ``pages`` (``written``, ``holding_data``,
        ``used_bytes``, ``mean_fill`` = used bytes / (written * page size),
        ``lowest_fill`` over the pages holding data; fills are 0..1),
        ``samples_per_page`` (``mean``, ``min``, ``max`` over the pages holding
        data; a sample's regions all lie in one page, FMT-041), ``fields``
        (per field that stores data in regions: ``kind``, ``stored_bytes``,
        ``share`` of the data region, ``samples_with_data``), ``labels`` (per
        label field: ``distinct``, ``counts`` = ``[[value, count], ...]`` in
        value order, ``others`` = ``{'values', 'count'}``) and ``images``
        (per image field: ``width`` and ``height`` as ``{'min', 'p5', 'p50',
        'p95', 'max'}`` in pixels, ``distinct_sizes``, ``common_sizes`` =
        ``[[width, height, count], ...]`` most frequent first, ``modes`` =
        ``{name: {'count', 'bytes', 'mean_bytes'}}``).

    Raises
    ------
    KeyError
        If a name in ``label_fields`` is not a field.
    ValueError
        If a field in ``label_fields`` is not an IntField, or ``top`` or
        ``common_sizes`` is below 1.
    """
    if top < 1 or common_sizes < 1:
        raise ValueError(f"top and common_sizes must be at least 1, got {top} and {common_sizes}")
    labels = _label_fields(reader, label_fields)
    n, ps = reader.num_samples, reader.page_size
    layout = page_layout(reader)
    start, pages = layout['start'], layout['pages_written']
    table = RegionTable(reader.region_ptrs, reader.region_sizes)
    out = {'samples': n, 'page_size': ps, 'data_region': layout, 'fields': {}, 'labels': {},
           'images': {}}
    owners, pages_of = [], []
    for index, name in enumerate(reader.field_names):
        handler = reader.handlers[name]
        column = reader.metadata[f'f{index}']
        found = handler.data_regions(column, table)
        if found is None:
            continue
        ptrs = found[0].astype(np.int64)
        # -1: a custom field's record that names no region (not checked at open).
        sizes = np.maximum(found[1].astype(np.int64), 0)
        stored = sizes > 0
        owners.append(np.flatnonzero(stored))
        pages_of.append((ptrs[stored] - start) // ps)
        total = int(sizes.sum())
        out['fields'][name] = {
            'kind': type(handler).__name__, 'stored_bytes': total,
            'share': total / layout['bytes'] if layout['bytes'] else 0.0,
            'samples_with_data': int(stored.sum())}
        if isinstance(handler, ImageField):
            out['images'][name] = _image_stats(column, sizes, common_sizes)
    for name in labels:
        column = reader.metadata[f'f{reader.field_names.index(name)}']
        out['labels'][name] = _histogram(column, top)
    usage = _page_usage(reader, layout)
    holding = usage[usage > 0]
    out['pages'] = {'written': pages, 'holding_data': int(holding.size),
                    'used_bytes': int(usage.sum()),
                    'mean_fill': float(usage.sum() / layout['bytes']) if pages else 0.0,
                    'lowest_fill': float(holding.min() / ps) if holding.size else 0.0}
    per_page = _samples_per_page(owners, pages_of, n, pages)[usage > 0]
    out['samples_per_page'] = {'mean': float(per_page.mean()) if per_page.size else 0.0,
                               'min': int(per_page.min()) if per_page.size else 0,
                               'max': int(per_page.max()) if per_page.size else 0}
    return out
