"""A Ray Data datasink that writes a Dataset into one ``.beton``: :class:`BetonDatasink`.

``ds.write_datasink(BetonDatasink('train.beton', fields))``: every write task
writes the rows of its blocks as one complete part file (the
:class:`~ffcvx.writer.DatasetWriter` of this process, into a parts folder next
to the target), and the driver joins the parts with :func:`ffcvx.merge`
(FMT-092) once every task is done, then removes the folder (spec
``beton.md`` section 9, FMT-097).

Where each part goes in the merged file:

- without ``index_column``, parts follow the write tasks' indices
  (``TaskContext.task_idx``). Ray Data numbers the tasks of an operator in
  the order their inputs arrive, which is the Dataset's order only with
  ``DataContext.execution_options.preserve_order = True`` when the Dataset
  is created; a write task checks that and refuses to write otherwise. A
  task does not know how many rows the tasks before it hold, so fields that
  draw per-sample random numbers (``write_mode='proportion'``, keyed by the
  global position, FMT-093) are refused in this mode.
- with ``index_column``, each row's position is its value there: a task
  sorts its rows by it and writes one part per contiguous run, drawing
  random choices at the global positions; the driver checks that the runs
  cover ``0 .. N-1`` exactly once. Then neither task order nor
  ``preserve_order`` matters.

Needs ``pip install 'ffcvx[ray]'``; importing this module without Ray raises
:class:`~ffcvx.extras.MissingExtraError` (an ImportError) saying so.
"""
import os
import shutil
import socket
import uuid

import numpy as np

from .errors import WriterError
from .extras import require
from .fields import FloatField, ImageField, IntField
from .types import DEFAULT_PAGE_SIZE

# ray.data, not ray: ray without its [data] extra (pyarrow, pandas) cannot write either
require('ray.data', 'ray', 'ffcvx.ray_datasink.BetonDatasink')
import pyarrow as pa                                     # noqa: E402  (after the check)
from ray.data import DataContext                         # noqa: E402
from ray.data.block import BlockAccessor                 # noqa: E402
from ray.data.datasource import Datasink                 # noqa: E402

__all__ = ['BetonDatasink']

#: Most runs of consecutive positions one write task may hold: each run is a part, and
#: every part takes at least one page of the merged file (FMT-092).
MAX_RUNS_PER_TASK = 16


def _type_fault(field, arrow_type):
    """Why a column of ``arrow_type`` cannot feed ``field``, or None (a cheap check by type).

    Only the fields whose inputs a column type rules out are checked; the
    rest is left to the field, which names the sample when a value is wrong.
    """
    numeric = pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type)
    if isinstance(field, IntField) and not numeric:
        return "IntField needs an integer column"
    if isinstance(field, FloatField) and not (numeric or pa.types.is_floating(arrow_type)):
        return "FloatField needs a numeric column"
    if isinstance(field, ImageField) and (numeric or pa.types.is_floating(arrow_type)):
        return ("an image field needs encoded bytes, a path (string) or pixels (an array "
                "column, as ray.data.read_images gives)")
    return None


class BetonDatasink(Datasink):
    """Writes a Ray Dataset into one ``.beton`` (``ds.write_datasink(sink)``).

    Parameters
    ----------
    path : str or os.PathLike
        The merged file (local or on a shared filesystem); replaced atomically
        once the merge succeeded, untouched otherwise.
    fields : Mapping[str, ffcvx.fields.Field]
        Field name to field, in file order, as for :class:`~ffcvx.writer.DatasetWriter`.
    columns : Mapping[str, str], optional
        Field name to the column that feeds it; a field not named here reads
        the column of its own name. An image field takes encoded bytes
        (``read_binary_files``, a Parquet binary column, ``read_webdataset(...,
        decoder=...)`` leaving the image undecoded), a path (``include_paths=True``:
        the field reads the file itself, so JPEGs may pass through byte for
        byte, FMT-090) or pixels (``read_images``' ``image`` column).
    index_column : str, optional
        An integer column holding each row's position ``0 .. N-1`` in the file
        (see the module docstring); needed by fields that draw random numbers.
        It is not stored unless a field reads it.
    seed : int or None
        Root of the random choices (``DatasetWriter(seed=...)``); needed when a
        field draws random numbers, so that every task draws from one root.
    page_size : int
        Page size of the parts and the merged file (FMT-013).
    num_workers : int
        Writer processes per write task (1: encode in the task). Ray's tasks
        are the parallelism; give a task more CPUs with
        ``write_datasink(sink, ray_remote_args={'num_cpus': n})`` if you raise it.
    parts_dir : str or os.PathLike, optional
        Folder in which this write's parts folder is made; default: the
        target's folder. Every node and the driver must see it (a shared
        filesystem on a multi-node cluster).
    min_rows_per_write : int, optional
        Passed to Ray: rows bundled into one write task at least (fewer, larger
        parts: each part's last page is copied whole, so the merged file is up
        to one partly filled page per part larger than one write, FMT-092).

    Attributes
    ----------
    parts : list of tuple (int, int)
        After a successful write: ``(first position, samples)`` of every part
        merged, in file order.
    tasks : int or None
        After a successful write: how many write tasks ran (a task with no
        rows writes no part).

    Raises
    ------
    TypeError, ValueError
        As ``DatasetWriter`` for ``fields``, ``page_size``, ``seed``; a ValueError
        for a field that draws random numbers without ``index_column`` or
        without ``seed``, or ``columns`` naming an unknown field.
    WriterError
        From ``write_datasink`` (Ray raises it, possibly wrapped in its own
        exception type that also derives from it): a column missing or of a
        type its field cannot take (each task checks its blocks before it
        writes), ``preserve_order`` off without
        ``index_column``, index values that are not ``0 .. N-1`` once each, a
        sample a field cannot store (naming the write task and row), or the
        merge failing. No file that looks valid is left at ``path``, and the
        parts folder is removed.

    Notes
    -----
    Parts of one write go into ``.<name>.ray-<id>.parts`` (``id`` unique per
    sink object), and only the parts the tasks of this write reported are
    merged, never whatever else lies there: a retried task replaces its own
    part, and the folder of a driver that was killed is never merged in
    (remove such folders by hand). A rerun writes everything again.
    """

    def __init__(self, path, fields, columns=None, index_column=None, seed=None,
                 page_size=DEFAULT_PAGE_SIZE, num_workers=1, parts_dir=None,
                 min_rows_per_write=None):
        from .writer import DatasetWriter
        self.path = os.path.abspath(os.fspath(path))
        # the writer checks fields, page size and seed once here, on the driver
        probe = DatasetWriter(self.path, fields, page_size=page_size, num_workers=num_workers,
                              progress=False, seed=seed)
        self.fields = dict(fields)
        columns = dict(columns or {})
        unknown = sorted(set(columns) - set(self.fields))
        if unknown:
            raise ValueError(f"columns names {unknown}, which are not fields {list(self.fields)}")
        self.columns = {name: columns.get(name, name) for name in self.fields}
        self.index_column = index_column
        self.seed, self.page_size, self.num_workers = probe.seed, page_size, probe.num_workers
        random = [name for name, field in self.fields.items()
                  if getattr(field, 'encode_uses_rng', False)]
        if random and index_column is None:
            raise ValueError(
                f"field(s) {random} draw a random choice per sample from its global position "
                f"(write_mode='proportion', FMT-093), which a Ray write task cannot know: give "
                f"index_column= (an integer column of positions 0..N-1, e.g. the 'id' of "
                f"ray.data.range or a zip with it)")
        if random and seed is None:
            raise ValueError(f"field(s) {random} draw random choices: BetonDatasink needs seed=..."
                             f" so that every write task draws from the same root")
        self.min_rows = min_rows_per_write
        self.id = uuid.uuid4().hex[:12]
        name = os.path.basename(self.path)
        base = os.path.abspath(os.fspath(parts_dir)) if parts_dir else os.path.dirname(self.path)
        self.parts_dir = os.path.join(base, f".{name}.ray-{self.id}.parts")
        self.parts = self.tasks = None

    @property
    def min_rows_per_write(self):
        return self.min_rows

    def get_name(self):
        return 'Beton'

    # -- driver ------------------------------------------------------------

    def on_write_start(self, schema=None):
        """Make this write's parts folder.

        ``schema`` is not checked here: it is the first input bundle's, which
        is a read task's file listing when Ray fuses the read into the write
        tasks; each task checks its blocks instead.
        """
        shutil.rmtree(self.parts_dir, ignore_errors=True)   # a failed earlier use of this sink
        os.makedirs(self.parts_dir)

    def on_write_complete(self, write_result):
        """Merge the parts in file order into ``path``, then remove the parts folder."""
        from .writer import DatasetWriter
        from .writer.merge import merge
        try:
            runs = self._ordered(write_result.write_returns, write_result.num_rows)
            if runs:
                merge([path for _, _, path in runs], self.path)
            else:   # no row at all: one empty file, as a write of nothing
                DatasetWriter(self.path, self.fields, page_size=self.page_size, num_workers=1,
                              progress=False, seed=self.seed).from_iterable([])
        finally:
            shutil.rmtree(self.parts_dir, ignore_errors=True)
        self.parts = [(first, count) for first, count, _ in runs]
        self.tasks = len(write_result.write_returns)

    def on_write_failed(self, error):
        # tasks that still run fail to write into a folder that is gone: nothing is merged
        shutil.rmtree(self.parts_dir, ignore_errors=True)

    def _ordered(self, returns, num_rows):
        """``[(first, count, path)]`` of every part in file order; checks they tile ``0..N-1``."""
        if self.index_column is None:
            # each task reports its index; its parts start where the tasks before it end
            by_task = sorted(returns, key=lambda report: report[0])
            runs, first = [], 0
            for _, task_parts in by_task:
                for _, count, path in task_parts:
                    runs.append((first, count, path))
                    first += count
        else:
            runs = sorted(run for _, task_parts in returns for run in task_parts)
            expected = 0
            for first, count, _ in runs:
                if first != expected:
                    what = (f"positions {expected} to {first - 1} are missing" if first > expected
                            else f"position {first} occurs more than once")
                    raise WriterError(f"index column {self.index_column!r} must hold every "
                                      f"position 0..N-1 once: {what}; nothing was written to "
                                      f"{self.path}")
                expected = first + count
        total = sum(count for _, count, _ in runs)
        if total != num_rows:
            raise WriterError(f"the write tasks wrote {total} samples, Ray counted {num_rows} "
                              f"rows; nothing was written to {self.path}")
        return runs

    def _check_schema(self, schema, where):
        """Raise WriterError for a column that is missing or of a type its field cannot take."""
        names = list(getattr(schema, 'names', None) or [])
        wanted = dict(self.columns)
        if self.index_column is not None:
            wanted['(index_column)'] = self.index_column
        missing = [f"{column!r} (field {field})" for field, column in wanted.items()
                   if column not in names]
        if missing:
            raise WriterError(f"{where} has no column {', '.join(missing)}; its columns: "
                              f"{names}")
        if not isinstance(schema, pa.Schema):
            return          # a pandas block's schema: the fields check the values
        for field, column in self.columns.items():
            fault = _type_fault(self.fields[field], schema.field(column).type)
            if fault:
                raise WriterError(f"column {column!r} of {where} is {schema.field(column).type}, "
                                  f"but it feeds field {field!r}: {fault}")
        if self.index_column is not None:
            kind = schema.field(self.index_column).type
            if not pa.types.is_integer(kind):
                raise WriterError(f"index column {self.index_column!r} of {where} is {kind}, "
                                  f"not integers")

    # -- write tasks -------------------------------------------------------

    def write(self, blocks, ctx):
        """Write this task's rows as part file(s); return ``(task index, [(first, count, path)])``.

        Runs in a Ray worker. ``first`` is the global position of the part's
        first row with ``index_column`` and 0 without it (the driver places
        the part after the parts of the tasks with lower indices).
        """
        task = int(ctx.task_idx)
        keeps_order = DataContext.get_current().execution_options.preserve_order
        if self.index_column is None and not keeps_order:
            raise WriterError(
                "BetonDatasink without index_column writes the rows in the Dataset's order, "
                "which Ray keeps only with ray.data.DataContext.get_current().execution_options"
                ".preserve_order = True set before the Dataset is made; set it, or give "
                "index_column=")
        if not os.path.isdir(self.parts_dir):
            raise WriterError(f"write task {task} on {socket.gethostname()}: the parts folder "
                              f"{self.parts_dir} is missing (the write failed and removed it, "
                              f"or, on a multi-node cluster, the target's folder or parts_dir "
                              f"is not on a filesystem every node shares)")
        values, positions = self._columns(blocks, task)
        count = len(positions) if positions is not None else \
            (len(next(iter(values.values()))) if values else 0)
        if count == 0:
            return task, []
        if positions is None:
            runs = [(0, 0, count)]          # (first position, start row, stop row)
        else:
            order = np.argsort(positions, kind='stable')
            positions = positions[order]
            values = {name: column[order] for name, column in values.items()}
            if positions[0] < 0:
                raise WriterError(f"index column {self.index_column!r} holds {positions[0]}, "
                                  f"a negative position (write task {task})")
            if np.any(np.diff(positions) == 0):
                twice = positions[1:][np.diff(positions) == 0][0]
                raise WriterError(f"index column {self.index_column!r}: position {twice} "
                                  f"occurs more than once (write task {task})")
            cuts = np.flatnonzero(np.diff(positions) != 1) + 1
            bounds = [0, *cuts.tolist(), count]
            runs = [(int(positions[a]), a, b) for a, b in zip(bounds[:-1], bounds[1:])]
            if len(runs) > MAX_RUNS_PER_TASK:
                raise WriterError(
                    f"write task {task} holds {len(runs)} separate runs of positions of index "
                    f"column {self.index_column!r}: each would be a part of its own, at least one "
                    f"page of the file (shuffled rows?); sort the Dataset by it first "
                    f"(ds.sort({self.index_column!r})) or write it in its order")
        written = []
        for first, start, stop in runs:
            path = os.path.join(self.parts_dir, f"task-{task:06d}.from-{first:012d}.beton")
            self._write_part(path, values, start, stop, first, task)
            written.append((first, stop - start, path))
        return task, written

    def _columns(self, blocks, task):
        """The task's values per field (ndarrays) and index positions (int64 or None)."""
        names = list(self.fields)
        wanted = [self.columns[name] for name in names]
        if self.index_column is not None:
            wanted.append(self.index_column)
        pieces = {column: [] for column in wanted}
        for block in blocks:
            accessor = BlockAccessor.for_block(block)
            if accessor.num_rows() == 0:
                continue        # an empty block may come without any column
            self._check_schema(accessor.schema(), f"a block of write task {task}")
            arrays = accessor.to_numpy(list(dict.fromkeys(wanted)))
            for column in wanted:
                pieces[column].append(_as_rows(arrays[column]))
        joined = {column: (np.concatenate(parts) if len(parts) > 1 else parts[0])
                  for column, parts in pieces.items() if parts}
        if not joined:
            return {}, (np.zeros(0, np.int64) if self.index_column else None)
        values = {name: joined[self.columns[name]] for name in names}
        positions = None
        if self.index_column is not None:
            positions = joined[self.index_column].astype(np.int64)
        return values, positions

    def _write_part(self, path, values, start, stop, first, task):
        """Rows ``start:stop`` as one ``.beton`` whose sample 0 is global position ``first``."""
        from .writer import DatasetWriter
        from .writer.sources import IterableSource
        writer = DatasetWriter(path, self.fields, page_size=self.page_size,
                               num_workers=self.num_workers, progress=False, seed=self.seed)
        columns = [values[name][start:stop] for name in self.fields]
        rows = zip(*columns)
        try:
            # the writer's part seam: random choices are keyed by first + k (FMT-093)
            writer._write(IterableSource(rows, stop - start, 100), None, first)
        except WriterError as exc:
            where = (f"rows at positions {first} to {first + stop - start - 1}"
                     if self.index_column else f"its rows 0 to {stop - start - 1}")
            raise WriterError(f"write task {task} ({where}; sample k of the message is the "
                              f"k-th of them): {exc}") from exc


def _as_rows(array):
    """One value per row: a tensor column comes as one (N, ...) array, split it by row."""
    if array.dtype == object or array.ndim == 1:
        return array
    rows = np.empty(len(array), dtype=object)
    for i, row in enumerate(array):
        rows[i] = row
    return rows

