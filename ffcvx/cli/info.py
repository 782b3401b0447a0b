"""``ffcvx info FILE|URL``: validate a ``.beton`` file and describe its layout and fields.

``--stats``, ``--plot`` and ``--json`` add the statistics of ``info_stats.py``.
"""
import json
import os

import numpy as np

from ..types import CUSTOM_TYPE_ID, IMAGE_MODES, metadata_offset
from .common import UsageError, human
from .info_stats import add_stats_options, run_stats, wants_stats

__all__ = ['add_parser', 'run']


def _range(values):
    if values.size == 0:
        return 'none'
    low, high = values.min(), values.max()
    return f"{low}" if low == high else f"{low}..{high}"


def _region_sizes(reader, ptrs):
    """Stored size of the region at each ptr, from the allocation table (FMT-050)."""
    ptrs = np.asarray(ptrs, dtype=np.uint64)
    if ptrs.size == 0 or reader.region_ptrs.size == 0:
        return np.zeros(ptrs.shape, dtype=np.uint64)
    pos = np.clip(np.searchsorted(reader.region_ptrs, ptrs), 0, reader.region_ptrs.size - 1)
    return reader.region_sizes[pos]


def _field_stats(reader, index, handler):
    """One-line summaries of field ``index``'s values, from the metadata alone."""
    from ..fields import BytesField, FloatField, ImageField, IntField, NDArrayField

    column = reader.metadata[f'f{index}']
    n = reader.num_samples
    lines = []
    # RGB and gray fields share the 13-byte record (FMT-036, FMT-083).
    if isinstance(handler, ImageField) and column.dtype.names:
        names = {v: k for k, v in IMAGE_MODES.items()}
        modes, counts = np.unique(column['mode'], return_counts=True)
        lines.append('modes: ' + ', '.join(f"{names.get(int(m), f'unknown {int(m)}')} {int(c)}"
                                           for m, c in zip(modes, counts)))
        lines.append(f"width {_range(column['width'])} px, height {_range(column['height'])} px")
        sizes = _region_sizes(reader, column['data_ptr'])
        if n:
            lines.append(f"stored bytes per image {_range(sizes)} (total {human(int(sizes.sum()))}, "
                         f"mean {sizes.mean():.0f})")
    elif isinstance(handler, BytesField) and column.dtype.names:
        sizes = column['size']
        if n:
            lines.append(f"bytes per sample {_range(sizes)} (total {human(int(sizes.sum()))}), "
                         f"{int((sizes == 0).sum())} empty")
    elif isinstance(handler, NDArrayField):
        lines.append(f"dtype {handler.dtype.str}, shape {tuple(handler.shape)}, "
                     f"{handler.element_size} bytes per sample")
    elif isinstance(handler, IntField):
        if n:
            lines.append(f"values {_range(column)}, {np.unique(column).size} distinct")
    elif isinstance(handler, FloatField):
        finite = column[np.isfinite(column)]
        if n:
            lines.append(f"finite values {_range(finite)}; {int(np.isnan(column).sum())} NaN, "
                         f"{int(np.isinf(column).sum())} infinite")
    return lines


def _field_kind(type_id, arguments, handler):
    """How ``ffcvx info`` names a field: its class, and for type id 255 whether ffcvx knows it."""
    from ..fields import TYPE_ID_HANDLER, extension_field_class

    if type_id not in TYPE_ID_HANDLER:
        kind = 'unknown'
    else:
        kind = 'custom' if type_id == CUSTOM_TYPE_ID else TYPE_ID_HANDLER[type_id].__name__
    if type_id == CUSTOM_TYPE_ID and type(handler) is extension_field_class(arguments):
        # a marked ffcvx extension (FMT-087): name the class, not just "custom"
        return f"{type(handler).__name__} (type id {type_id}, ffcvx extension)"
    return (f"{kind} (type id {type_id})"
            + (f", read as {type(handler).__name__}" if type(handler).__name__ != kind else ""))


def run(args):
    """Print the description of ``args.file``; 0, or UsageError / BetonFormatError."""
    from ..dataset_stats import page_layout
    from ..reader import Reader
    from ..storage import is_url

    path = args.file
    try:
        options = json.loads(args.storage_options) if args.storage_options else None
    except ValueError as exc:
        raise UsageError(f"--storage-options is not JSON: {exc}") from None
    if options is not None and not isinstance(options, dict):
        raise UsageError("--storage-options must be a JSON object, e.g. '{\"anon\": true}'")
    if not is_url(path) and not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    reader = Reader(path, storage_options=options)
    header = reader.header
    # As stored, type ids included (the reader's handlers may be other classes).
    descriptors = reader.field_descriptors
    n, ps = reader.num_samples, reader.page_size
    layout = page_layout(reader)
    table_ptr, pages = layout['end'], layout['pages_written']
    meta_start = metadata_offset(reader.num_fields)
    meta_end = meta_start + n * reader.metadata_type.itemsize
    table = reader.alloc_table
    used = np.unique(table['ptr'][table['size'] > 0] // np.uint64(ps))
    out = [
        f"file:              {path} ({human(reader.file_size)}, {reader.file_size} bytes)",
        f"format version:    {int(header['version'])}",
        f"samples:           {n}",
        f"page size:         {ps} bytes ({human(ps)})",
        f"pages:             {pages} written, {used.size} holding data",
        f"metadata:          bytes {meta_start}..{meta_end} ({reader.metadata_type.itemsize} per sample)",
        "data region:       " + (f"bytes {reader.data_region_start}..{table_ptr}" if pages else "none"),
        f"allocation table:  at {table_ptr}, {table.size} records",
        f"fields:            {reader.num_fields}",
    ]
    for index, name in enumerate(reader.field_names):
        handler = reader.handlers[name]
        kind = _field_kind(int(descriptors['type_id'][index]), descriptors['arguments'][index],
                           handler)
        out.append(f"  [{index}] {name}: {kind}")
        out.extend(f"        {line}" for line in _field_stats(reader, index, handler))
    if wants_stats(args):
        return run_stats(reader, args, out)
    print('\n'.join(out))
    return 0


def add_parser(commands):
    """Add ``info`` to the sub-command parsers ``commands``."""
    info = commands.add_parser('info', help="describe a .beton file",
                               description="Validate a .beton file and print its layout and "
                                           "per-field statistics.")
    info.add_argument('file', help="path or URL (s3://, gs://, az://, http(s)://, any fsspec "
                                   "protocol) of the .beton file")
    info.add_argument('--storage-options', metavar='JSON', default=None,
                      help="options of the URL's filesystem, fsspec's keys, as a JSON object, "
                           "e.g. '{\"endpoint_url\": \"http://127.0.0.1:9000\"}'")
    add_stats_options(info)
    info.set_defaults(run=run)
