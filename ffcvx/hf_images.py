"""Hugging Face datasets and Parquet files as ``(encoded image, int label)`` samples.

For ``ffcvx convert hf`` and :meth:`ffcvx.writer.DatasetWriter.from_indexed_dataset`:
:func:`open_images` finds the rows of a dataset saved with ``save_to_disk``
(a ``Dataset`` or one split of a ``DatasetDict``) or of Parquet files, checks
the two columns, and returns an :class:`ArrowImages`. The image column's
bytes go to the image field undecoded (never through PIL here), so that a
JPEG can be stored byte for byte (``jpeg_passthrough``).
"""
import bisect
import glob
import os

import numpy as np

from .extras import require

__all__ = ['ArrowImages', 'open_images']


class ArrowImages:
    """Rows of Arrow IPC and Parquet files as ``(image, int label)``, read lazily per process.

    Each process (each writer worker) opens the files itself the first time
    it reads a row, so pickling this object copies a list of file names,
    not the data. An Arrow file is memory-mapped whole; a Parquet file is
    read one row group at a time (the last one read is kept), so a worker
    holds at most one row group of images in memory.

    Parameters
    ----------
    parts : list of (kind, path, row_group, num_rows)
        In row order. ``kind`` is ``'arrow'`` (``row_group`` ignored) or
        ``'parquet'``.
    image_column, label_column : str

    ``dataset[i]`` is ``(image, label)``: the image's encoded bytes, or its
    path where a Hugging Face ``Image`` value holds a path and no bytes (or
    the column holds path strings); the label as an int.

    Raises
    ------
    IndexError
        For an index outside ``0 .. len - 1``.
    ValueError
        From ``dataset[i]``: a row whose image or label is missing (null).
    """

    def __init__(self, parts, image_column, label_column):
        self.parts = [tuple(part) for part in parts]
        self.image_column = image_column
        self.label_column = label_column
        self.starts = np.cumsum([0] + [part[3] for part in self.parts]).tolist()
        self._part = None               # (index, image Column, label Column) in this process

    def __len__(self):
        return self.starts[-1]

    def __getstate__(self):
        state = dict(self.__dict__)
        state['_part'] = None           # each process maps or reads the files itself
        return state

    def __getitem__(self, index):
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} out of range 0..{len(self) - 1}")
        number = bisect.bisect_right(self.starts, index) - 1
        if self._part is None or self._part[0] != number:
            table = read_part(self.parts[number], [self.image_column, self.label_column])
            self._part = (number, _Column(table.column(0)), _Column(table.column(1)))
        _, images, labels = self._part
        row = index - self.starts[number]
        image, label = _image_value(images.scalar(row)), labels.scalar(row).as_py()
        if image is None or label is None:
            what = 'image' if image is None else 'label'
            column = self.image_column if image is None else self.label_column
            raise ValueError(f"sample {index} has no {what}: column {column!r} is null there")
        return image, label

    def __repr__(self):
        return (f"ArrowImages({len(self)} rows of {len({p[1] for p in self.parts})} files, "
                f"image_column={self.image_column!r}, label_column={self.label_column!r})")


class _Column:
    """Row access to a chunked column by bisecting its chunk offsets (not a linear scan)."""

    def __init__(self, chunked):
        self.chunks = chunked.chunks
        self.starts = np.cumsum([0] + [len(chunk) for chunk in self.chunks]).tolist()

    def scalar(self, row):
        k = bisect.bisect_right(self.starts, row) - 1
        return self.chunks[k][row - self.starts[k]]


def _image_value(scalar):
    """bytes, a path, or None (null) of one image cell."""
    if not scalar.is_valid:
        return None
    if hasattr(scalar, 'keys'):         # datasets' Image: struct<bytes: binary, path: string>
        data = scalar['bytes'].as_py()
        if data is None and 'path' in scalar.keys():
            return scalar['path'].as_py()
        return data
    return scalar.as_py()               # binary: bytes; string: a path


def read_part(part, columns):
    """A pyarrow Table of ``columns`` of one part (memory-mapped for Arrow files)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    kind, path, row_group, _ = part
    if kind == 'parquet':
        # no threads: the workers already run in parallel, and Arrow's pool would be
        # one more thing alive in a process that the writer may fork
        return pq.ParquetFile(path).read_row_group(row_group, columns=columns, use_threads=False)
    source = pa.memory_map(path, 'r')
    is_file = source.read(6) == b'ARROW1'
    source.seek(0)
    reader = pa.ipc.open_file(source) if is_file else pa.ipc.open_stream(source)
    return reader.read_all().select(columns)


# ---------------------------------------------------------------------------
# finding the rows

def open_images(paths, image_column='image', label_column='label', split=None,
                user='ffcvx.hf_images.open_images'):
    """The rows of a saved dataset or of Parquet files, columns checked.

    Parameters
    ----------
    paths : sequence of str
        One folder written by ``Dataset.save_to_disk`` or
        ``DatasetDict.save_to_disk``; or Parquet files, globs of them
        (``data/train-*.parquet``, ``**`` allowed) or folders holding them,
        in row order (each glob and folder sorted by name).
    image_column : str
        A ``datasets.Image`` column (struct of bytes and path), encoded image
        bytes, or image file paths.
    label_column : str
        Integers: a ``ClassLabel`` or any integer column.
    split : str or None
        The split of a ``DatasetDict``; None means ``'train'``. Must be None
        for a single ``Dataset`` and for Parquet files.
    user : str
        Who asks, for the message naming the extra when a package is missing.

    Returns
    -------
    ArrowImages

    Raises
    ------
    FileNotFoundError
        A path or glob that names nothing.
    ValueError
        A folder that is neither a saved dataset nor holds Parquet files, a
        file that is not Parquet, a split that does not exist (the splits are
        listed), a column that does not exist (the columns are listed), an
        image column of another type, a label column that is not integers or
        has missing values.
    ffcvx.extras.MissingExtraError
        If ``pyarrow`` (or, for a saved dataset, ``datasets``) is missing.
    """
    require('pyarrow', 'hf', user)
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("no dataset folder or Parquet file given")
    if len(paths) == 1 and _is_saved_dataset(paths[0]):
        parts, schema, name = _saved_dataset(paths[0], split, user)
    else:
        if split is not None:
            raise ValueError(f"--split {split!r} selects a split of a DatasetDict; Parquet files "
                             f"have none (give the files of one split instead)")
        parts, schema, name = _parquet_files(paths)
    _check_columns(schema, name, image_column, label_column)
    _check_labels(parts, label_column, name)
    return ArrowImages(parts, image_column, label_column)


def _is_saved_dataset(path):
    return os.path.isfile(os.path.join(path, 'dataset_dict.json')) or \
        os.path.isfile(os.path.join(path, 'state.json'))


def _saved_dataset(path, split, user):
    datasets = require('datasets', 'hf', user)
    loaded = datasets.load_from_disk(path, keep_in_memory=False)
    if isinstance(loaded, datasets.DatasetDict):
        chosen = 'train' if split is None else split
        if chosen not in loaded:
            raise ValueError(f"{path} has no split {chosen!r}; its splits: {', '.join(loaded)}")
        dataset, name = loaded[chosen], f"split {chosen!r} of {path}"
    else:
        if split is not None:
            raise ValueError(f"{path} holds one Dataset, not a DatasetDict of splits; "
                             f"leave out --split {split!r}")
        dataset, name = loaded, path
    parts = []
    for entry in dataset.cache_files:
        table = read_part(('arrow', entry['filename'], 0, 0), [])
        parts.append(('arrow', entry['filename'], 0, table.num_rows))
    # load_from_disk maps the files in order and save_to_disk flattens any index
    # mapping; anything else would make file rows differ from the dataset's rows
    if sum(part[3] for part in parts) != len(dataset):
        raise ValueError(f"{name}: its Arrow files hold {sum(p[3] for p in parts)} rows, the "
                         f"dataset {len(dataset)}; save it again with save_to_disk")
    return parts, dataset.features.arrow_schema, name


def _parquet_files(paths):
    import pyarrow as pa
    import pyarrow.parquet as pq
    files = []
    for path in paths:
        if glob.has_magic(path):
            found = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
            if not found:
                raise FileNotFoundError(f"{path}: no file matches")
        elif os.path.isdir(path):
            found = sorted(glob.glob(os.path.join(glob.escape(path), '**', '*.parquet'),
                                     recursive=True))
            if not found:
                raise ValueError(f"{path} is neither a dataset saved with save_to_disk (no "
                                 f"dataset_dict.json or state.json) nor a folder of .parquet files")
        elif os.path.exists(path):
            found = [path]
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
        files.extend(found)
    parts, schema = [], None
    for path in files:
        try:
            metadata = pq.ParquetFile(path).metadata
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"{path} is not a Parquet file ({exc})") from None
        if schema is None:
            schema, first = metadata.schema.to_arrow_schema(), path
        elif metadata.schema.to_arrow_schema().names != schema.names:
            raise ValueError(f"{path} has other columns than {first}: "
                             f"{', '.join(metadata.schema.to_arrow_schema().names)}")
        parts.extend(('parquet', path, k, metadata.row_group(k).num_rows)
                     for k in range(metadata.num_row_groups))
    name = files[0] if len(files) == 1 else f"{len(files)} Parquet files ({files[0]}, ...)"
    return parts, schema, name


def _check_columns(schema, name, image_column, label_column):
    import pyarrow as pa
    for column in (image_column, label_column):
        if column not in schema.names:
            raise ValueError(f"{name} has no column {column!r}; its columns: "
                             f"{', '.join(schema.names)}")
    kind = schema.field(image_column).type
    # the *_view checks exist from pyarrow 16 on only
    binary = any(getattr(pa.types, f'is_{name}', lambda _: False)(kind)
                 for name in ('binary', 'large_binary', 'binary_view',
                              'string', 'large_string', 'string_view'))
    struct = pa.types.is_struct(kind) and kind.get_field_index('bytes') >= 0
    if not (binary or struct):
        raise ValueError(f"column {image_column!r} of {name} holds {kind}, not encoded images: "
                         f"expected a datasets Image feature, image file bytes or file paths")
    kind = schema.field(label_column).type
    if not pa.types.is_integer(kind):
        raise ValueError(f"label column {label_column!r} of {name} holds {kind} values, not "
                         f"integers (a ClassLabel or an integer column)")


def _check_labels(parts, label_column, name):
    """No null label: they would fail a writer worker half-way, naming one sample only."""
    seen = 0
    for part in parts:
        column = read_part(part, [label_column]).column(0)
        if column.null_count:
            first = seen + int(np.flatnonzero(column.is_null().to_numpy())[0])
            raise ValueError(f"label column {label_column!r} of {name} has missing (null) "
                             f"values, the first at sample {first}")
        seen += len(column)
