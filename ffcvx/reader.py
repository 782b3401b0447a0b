"""Open a ``.beton`` file (format version 2) and validate all of it (``spec/beton.md``).

:class:`Reader` parses the header, the field descriptors, the metadata table and
the allocation table, and checks every reader clause of the spec before it
returns, so that code further down (memory managers, decoders) can trust every
pointer and size it is given. A violation raises
:class:`ffcvx.errors.BetonFormatError` with the byte offset and the clause.

The per-record loops run in the native core, :mod:`ffcvx._ext.beton`.
"""
import contextlib

import numpy as np

from .errors import BetonFormatError
from .fields import MetadataColumn, RegionTable
from .storage import open_source
from .fields.handlers import make_handler
from .read_exact import read_exact
from .types import (ALLOC_TABLE_TYPE, CURRENT_VERSION, FIELD_NAME_LENGTH,
                    FieldDescType, HeaderType, align_to_page, get_metadata_type, metadata_offset)

try:
    from ._ext import beton as _beton
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "ffcvx's native core ffcvx._ext.beton is not built; run `make build` or "
        "`pip install --no-build-isolation -e .` in the source tree") from exc

#: Byte offsets of the header members (FMT-010), for error messages.
_VERSION_AT = HeaderType.fields['version'][1]
_NUM_FIELDS_AT = HeaderType.fields['num_fields'][1]
_PAGE_SIZE_AT = HeaderType.fields['page_size'][1]
_NUM_SAMPLES_AT = HeaderType.fields['num_samples'][1]
_ALLOC_PTR_AT = HeaderType.fields['alloc_table_ptr'][1]
_NAME_AT = FieldDescType.fields['name'][1]


class Reader:
    """A validated, read-only view of a ``.beton`` file's tables (FFCV 1.0's ``Reader``).

    Opening calls :meth:`read_header`, :meth:`read_field_descriptors`,
    :meth:`read_metadata` and :meth:`read_allocation_table`, in that order
    (as FFCV does), and checks everything they read against
    ``spec/beton.md``. Sample data stays on disk; :meth:`read_sample_region`
    fetches one region. The reader knows no field class: each field checks
    its own records (``Field.check_metadata``) and says where its data is
    (``Field.data_regions``).

    Parameters
    ----------
    fname : str, os.PathLike or ffcvx.storage.Source
        Path of the ``.beton`` file, or its URL (``s3://``, ``gs://``,
        ``az://``, ``http(s)://``, any fsspec protocol; spec/remote.md): the
        tables are then read with range requests, and every read asks for
        the version seen at open (REM-004).
    custom_handlers : Mapping[str, type[Field]], optional
        Field class per field name, applied by name whatever the stored type
        id, so also in place of a built-in class (as in FFCV). Required for
        fields stored with type id 255 (FMT-022) unless their ``arguments``
        carry the marker of an ffcvx extension (FMT-087:
        ``GrayscaleImageField``), which the reader then uses by itself. The
        class's ``from_binary(arguments)`` receives the descriptor's 1024
        ``arguments`` bytes as ``ndarray[uint8], shape (1024,)``.
    storage_options : dict or None
        Options of a URL's filesystem (fsspec's keys, REM-003), e.g.
        ``{'key': ..., 'secret': ..., 'endpoint_url': ...}`` for S3.

    Attributes
    ----------
    file_name : str
        The path or URL given, as a string (FFCV's name; ``fname`` is the same).
    source : ffcvx.storage.Source
        Where the bytes are read from (``source.remote`` for a URL).
    header : numpy.void of :data:`ffcvx.types.HeaderType`
        The 24-byte header (FMT-010), read-only.
    num_samples : int
        Number of samples (metadata records).
    num_fields : int
        Number of fields, at least 1.
    page_size : int, bytes
        Page size, a power of two (FMT-013).
    file_size : int, bytes
        Size of the file when it was last read.
    field_descriptors : ndarray[FieldDescType], shape (num_fields,)
        The field descriptors as stored (FMT-020), read-only.
    field_names : list of str
        Field names in file order (FMT-020).
    handlers : dict of str to Field
        Field instance per name, in file order, built with ``from_binary``.
    metadata_type : numpy.dtype
        Aligned struct with members ``f0``, ``f1``, ... (FMT-031).
    metadata : ndarray[metadata_type], shape (num_samples,)
        The metadata table, read-only (FMT-030).
    alloc_table : ndarray[ALLOC_TABLE_TYPE], shape (n,)
        The allocation table in file order, read-only (FMT-050).
    data_region_start : int, bytes
        ``align_up(end of metadata, page_size)`` (FMT-040), also when the file
        has no pages.
    region_ptrs : ndarray[uint64], shape (m,)
        Distinct region start offsets (absolute, bytes) of the allocation
        table, ascending, read-only.
    region_sizes : ndarray[uint64], shape (m,)
        Size in bytes of each region in ``region_ptrs``; where records share a
        pointer (a zero-size record ahead of another region) the largest,
        read-only.

    Raises
    ------
    BetonFormatError
        For any violation listed under "What a reader must reject" in
        ``spec/beton.md`` (clauses FMT-060 to FMT-082 and FMT-088; FMT-066 also for a
        type-255 field whose marker is unknown or whose class refuses its
        arguments, FMT-087). ``offset`` is the byte offset in the file of the
        offending value (for a truncated file, the file size); ``clause`` the
        clause number. FFCV raises ``AssertionError`` for a wrong version
        (FMT-061) and ``ValueError`` for a custom field without a class
        (FMT-066), and checks nothing else.
    OSError
        If the file cannot be opened or read; for a URL
        :class:`~ffcvx.errors.RemoteUnavailableError` (a ``ConnectionError``)
        or ``FileNotFoundError``.
    ffcvx.errors.RemoteFileChangedError
        If a remote file is replaced while it is being opened.
    ffcvx.errors.BackendNotFoundError
        If a URL's client is not installed (the message names the ``pip install``).
    """

    def __init__(self, fname, custom_handlers={}, storage_options=None):
        self.source = open_source(fname, storage_options)
        self._fname = self.source.location
        self._custom_handlers = dict(custom_handlers)
        self._regions = None
        self.read_header()
        self.read_field_descriptors()
        self.read_metadata()
        self.read_allocation_table()

    @property
    def file_name(self):
        """str: path the reader was opened with (FFCV's name)."""
        return self._fname

    #: ffcvx's earlier name of :attr:`file_name`, kept for its callers.
    fname = file_name

    # -- the four parts, FFCV's methods ----------------------------------------------------
    # Each opens the file again, so calling one again re-reads its part from the
    # file as it is now and re-runs that part's checks against the parts already
    # read. To take in a file that changed, call all four in order, as __init__ does.

    def read_header(self):
        """Read and check the header (FMT-010 to FMT-013).

        Sets ``header``, ``num_samples``, ``page_size``, ``num_fields`` and
        ``file_size``.

        Raises
        ------
        BetonFormatError
            FMT-060 (file shorter than 24 bytes), FMT-061 (version not 2),
            FMT-062 (page size), FMT-063 (no fields).
        """
        with self._open() as f:
            header = read_exact(f, self.file_size, 0, HeaderType, 1, 'FMT-060',
                                'the 24-byte header')[0]
        version = int(header['version'])
        if version != CURRENT_VERSION:
            raise BetonFormatError(
                f"unsupported format version {version}; this reader reads version "
                f"{CURRENT_VERSION} (FFCV 1.0)", offset=_VERSION_AT, clause='FMT-061')
        page_size = int(header['page_size'])
        if page_size == 0 or page_size & (page_size - 1):
            raise BetonFormatError(f"page size {page_size} is not a power of two",
                                   offset=_PAGE_SIZE_AT, clause='FMT-062')
        num_fields = int(header['num_fields'])
        if num_fields == 0:
            raise BetonFormatError("the file declares 0 fields", offset=_NUM_FIELDS_AT,
                                   clause='FMT-063')
        self.header = header
        self.num_samples = int(header['num_samples'])
        self.num_fields = num_fields
        self.page_size = page_size

    def read_field_descriptors(self):
        """Read the ``num_fields`` descriptors and build a field for each (FMT-020 to FMT-023).

        Sets ``field_descriptors``, ``field_names``, ``handlers`` and
        ``metadata_type``. A class in ``custom_handlers`` wins for its field
        name; otherwise the class is ``TYPE_ID_HANDLER[type_id]`` (type id 6
        reads back as an NDArrayField), or for type id 255 the ffcvx
        extension named by the arguments' marker (FMT-087).

        Raises
        ------
        BetonFormatError
            FMT-064 (file too short), FMT-068 (name not ASCII or repeated),
            FMT-066 (custom field without a class), FMT-065 (unknown type
            id), FMT-067 (bad array arguments).
        """
        with self._open() as f:
            descriptors = read_exact(f, self.file_size, HeaderType.itemsize, FieldDescType,
                                     self.num_fields, 'FMT-064',
                                     f'{self.num_fields} field descriptors')
        handlers = {}
        for index, desc in enumerate(descriptors):
            at = HeaderType.itemsize + index * FieldDescType.itemsize
            raw_name = desc['name'].tobytes()
            try:
                name = raw_name.split(b'\0', 1)[0].decode('ascii')
            except UnicodeDecodeError:
                raise BetonFormatError(f"field {index}: name {raw_name!r} is not ASCII",
                                       offset=at + _NAME_AT, clause='FMT-068') from None
            if name in handlers:
                raise BetonFormatError(
                    f"field {index}: name {name!r} is used by an earlier field (names are cut to "
                    f"{FIELD_NAME_LENGTH} bytes, so long names can collide)",
                    offset=at + _NAME_AT, clause='FMT-068')
            handlers[name] = make_handler(index, name, int(desc['type_id']), desc['arguments'],
                                          at, self._custom_handlers)
        self.field_descriptors = descriptors
        self.field_names = list(handlers)
        self.handlers = handlers
        self.metadata_type = get_metadata_type(list(handlers.values()))

    def read_metadata(self):
        """Read the ``num_samples`` metadata records (FMT-030, FMT-031).

        Sets ``metadata`` and ``data_region_start``. When the allocation
        table has been read already (a second call), the records' pointers
        are checked against it again.

        Raises
        ------
        BetonFormatError
            FMT-069 (table past the end of the file, or records of 0 bytes);
            on a second call also FMT-079 to FMT-082.
        """
        self._metadata_start = metadata_offset(self.num_fields)
        itemsize = self.metadata_type.itemsize
        if itemsize == 0:
            raise BetonFormatError("the metadata record of these fields is 0 bytes long",
                                   offset=self._metadata_start, clause='FMT-069')
        with self._open() as f:
            end = self._metadata_start + self.num_samples * itemsize
            if end > self.file_size:
                raise BetonFormatError(
                    f"file too short for the metadata table: {self.num_samples} samples of "
                    f"{itemsize} bytes end at {end}, the file has {self.file_size} bytes",
                    offset=self.file_size, clause='FMT-069')
            self.metadata = read_exact(f, self.file_size, self._metadata_start, self.metadata_type,
                                       self.num_samples, 'FMT-069', 'the metadata table')
        self._metadata_end = end
        self.data_region_start = align_to_page(end, self.page_size)
        if self._regions is not None:
            self._check_metadata_pointers()

    def read_allocation_table(self):
        """Read the allocation table, from ``alloc_table_ptr`` to the end of the file (FMT-050).

        Sets ``alloc_table``, ``region_ptrs`` and ``region_sizes``, then has
        every field check its records against the regions.

        Raises
        ------
        BetonFormatError
            FMT-070 to FMT-078 (table placement and regions), then FMT-079 to
            FMT-082 and FMT-088 (the fields' records).
        """
        ptr = int(self.header['alloc_table_ptr'])
        with self._open() as f:
            if ptr > self.file_size:
                raise BetonFormatError(
                    f"alloc_table_ptr {ptr} is past the end of the file ({self.file_size} bytes)",
                    offset=_ALLOC_PTR_AT, clause='FMT-071')
            if ptr < self._metadata_end:
                raise BetonFormatError(
                    f"alloc_table_ptr {ptr} is before the end of the metadata table "
                    f"({self._metadata_end})", offset=_ALLOC_PTR_AT, clause='FMT-070')
            table_bytes = self.file_size - ptr
            if table_bytes % ALLOC_TABLE_TYPE.itemsize:
                raise BetonFormatError(
                    f"the allocation table from {ptr} to the end of the file is {table_bytes} "
                    f"bytes, not a multiple of {ALLOC_TABLE_TYPE.itemsize}", offset=_ALLOC_PTR_AT,
                    clause='FMT-072')
            data_bytes = ptr - self.data_region_start
            if ptr != self._metadata_end and (data_bytes < 0 or data_bytes % self.page_size):
                raise BetonFormatError(
                    f"alloc_table_ptr {ptr} is neither the end of the metadata "
                    f"({self._metadata_end}) nor the end of a whole page after the data region "
                    f"start {self.data_region_start} (page size {self.page_size})",
                    offset=_ALLOC_PTR_AT, clause='FMT-073')
            table = read_exact(f, self.file_size, ptr, ALLOC_TABLE_TYPE,
                               table_bytes // ALLOC_TABLE_TYPE.itemsize,
                               'FMT-072', 'the allocation table')
        raw = table.view(np.uint8).reshape(-1, ALLOC_TABLE_TYPE.itemsize)
        ptrs, sizes, owners = _beton.check_alloc_table(raw, self.num_samples,
                                                       self.data_region_start, ptr, self.page_size)
        for array in (ptrs, sizes, owners):
            array.flags.writeable = False
        self.alloc_table = table
        self.region_ptrs = ptrs
        self.region_sizes = sizes
        self._regions = RegionTable(ptrs, sizes, owners)
        self._check_metadata_pointers()

    # -- helpers ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _open(self):
        """The source, with ``file_size`` set from it (a local file's size now)."""
        self.file_size = self.source.stat()
        yield self.source

    def _column(self, index):
        """Field ``index``'s records, as ``Field.check_metadata`` takes them."""
        raw = self.metadata.view(np.uint8).reshape(self.num_samples, self.metadata_type.itemsize)
        return MetadataColumn(name=self.field_names[index], values=self.metadata[f'f{index}'],
                              raw=raw, member=self.metadata_type.fields[f'f{index}'][1],
                              table_offset=self._metadata_start)

    def _check_metadata_pointers(self):
        # FMT-079 to FMT-082: each field knows its own record layout.
        for index, handler in enumerate(self.handlers.values()):
            handler.check_metadata(self._column(index), self._regions)

    # -- access --------------------------------------------------------------------------

    def read_sample_region(self, sample, field_name):
        """The stored bytes of one sample's field.

        Parameters
        ----------
        sample : int
            Sample index, ``0 <= sample < num_samples``.
        field_name : str
            One of :attr:`field_names`; its field must store data in regions
            (``Field.data_regions``): for the built-in fields, images (the
            JPEG/PNG file or the raw pixels, size from the region table,
            FMT-036), Bytes and JSON (``size`` bytes from the metadata,
            FMT-033/FMT-035; JSON text includes its trailing NUL) and arrays
            (``element_size`` bytes, FMT-034).

        Returns
        -------
        ndarray[uint8], shape (size,)
            A read-only copy of the bytes.

        Raises
        ------
        IndexError
            If ``sample`` is out of range.
        KeyError
            If there is no such field.
        TypeError
            If the field keeps its value in the metadata (Int, Float) or is a
            custom field that does not say where its data is.
        BetonFormatError
            FMT-079 if the record names no region (only for custom fields,
            which are not checked at open); FMT-060 if the file has shrunk
            since it was opened.
        """
        if not 0 <= sample < self.num_samples:
            raise IndexError(f"sample {sample} out of range for {self.num_samples} samples")
        handler = self.handlers[field_name]
        index = self.field_names.index(field_name)
        found = handler.data_regions(self.metadata[f'f{index}'][sample:sample + 1], self._regions)
        if found is None:
            raise TypeError(f"field {field_name!r} ({type(handler).__name__}) has no data region "
                            f"(its data_regions gives None: the value is in the metadata)")
        ptr, size = int(found[0][0]), int(found[1][0])
        if size < 0:
            raise BetonFormatError(
                f"sample {sample}, field {field_name!r}: pointer {ptr} is not the start of any "
                f"allocation-table region", offset=self._column(index).offset_of(sample),
                clause='FMT-079')
        data = self.source.read(ptr, size) if size else b''
        if len(data) != size:
            raise BetonFormatError(f"file ended after {len(data)} of the {size} bytes at {ptr}; "
                                   f"was it truncated after opening?", offset=ptr + len(data),
                                   clause='FMT-060')
        return np.frombuffer(data, dtype=np.uint8)

    def __repr__(self):
        fields = ", ".join(f"{n}: {type(h).__name__}" for n, h in self.handlers.items())
        return (f"<Reader {self._fname!r}: {self.num_samples} samples, page size "
                f"{self.page_size}, fields {{{fields}}}>")
