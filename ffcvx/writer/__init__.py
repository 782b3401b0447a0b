"""Writing ``.beton`` files: :class:`DatasetWriter` (FFCV's ``ffcv.writer.DatasetWriter``).

The writer is split by job:

``dataset_writer``
    :class:`DatasetWriter`: argument checks, the atomic write through a
    temporary file, the choice between encoding here and in workers.
``layout``
    the file layout (header, descriptors, metadata table, data pages,
    allocation table) and the tables written around the data pages.
``pages``
    the page allocator and the sample encoder (they run in the workers).
``sources``
    the work items of each kind of source (indexed, iterable, WebDataset).
``imagefolder``
    the torchvision ``ImageFolder`` fast path: files read by path, not
    decoded by ``dataset[i]``.
``progress``
    the progress bar, the outcome counts of the image fields and the
    closing line (:class:`WriteStats`, ``DatasetWriter.last_write``).
``workers``
    the worker processes, their start method and their failure reports.
``temp``
    temporary files: naming, creation, removal of stale ones
    (:func:`clean_temporary_files`, ``ffcvx clean``).
``checks``
    argument checks: page size, chunk size, counts, field names, parts.
``merge``
    :func:`~ffcvx.writer.merge.merge` (``ffcvx.merge``): part files joined
    into one ``.beton`` (FMT-092); not imported here, so that
    ``ffcvx.writer.merge`` stays the module. It plans the merge and hands
    the writing to one of:
``merge_local``
    into a local or shared-filesystem file (``os.copy_file_range``).
``s3_compose``
    into an ``s3://`` object, composed in the store by one multipart upload
    of server-side copies (FMT-094).
``merge_stream``
    into any other fsspec URL, streamed through this process (FMT-095).
``remote_target``
    ``DatasetWriter`` into a URL: a local write, uploaded whole; part files
    next to the target (:func:`~ffcvx.writer.remote_target.part_url`, FMT-096).
"""
from .checks import check_page_size
from .dataset_writer import DatasetWriter
from .pages import suggest_page_size
from .progress import WriteStats
from .temp import clean_temporary_files

__all__ = ['DatasetWriter', 'WriteStats', 'check_page_size', 'clean_temporary_files']

# FFCV-era private name, kept for callers and tests that import it from here
_suggest_page_size = suggest_page_size
