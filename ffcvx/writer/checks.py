"""Argument checks of :class:`ffcvx.writer.DatasetWriter`: page size, chunk size, field names,
parts (and where a part file goes)."""
import operator
import os
import warnings

from ..types import FIELD_NAME_LENGTH, MAX_PAGE_SIZE, MIN_PAGE_SIZE

__all__ = ['check_chunksize', 'check_count', 'check_page_size', 'check_part', 'encode_field_name',
           'part_path', 'part_range']


def check_page_size(page_size):
    """Validate a page size (FMT-013): a power of two in [2 MiB, 2**32)."""
    try:
        value = int(page_size)
    except (TypeError, ValueError):
        raise ValueError(f"page_size must be an integer, got {page_size!r}") from None
    if value != page_size or value <= 0 or value & (value - 1):
        raise ValueError(f"page_size must be a power of two, got {page_size!r}")
    if value < MIN_PAGE_SIZE:
        raise ValueError(f"page_size must be at least {MIN_PAGE_SIZE} bytes (2 MiB), got {value}")
    if value >= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be below 2**32 bytes, got {value}")
    return value


def check_count(name, value, minimum=1):
    """``value`` as an int (``operator.index``: ints and numpy integers, not 2.7).

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If it is below ``minimum`` (None: no minimum).
    """
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") \
            from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return number


def check_chunksize(chunksize):
    """``chunksize`` (samples per work item) as an int >= 1."""
    return check_count('chunksize', chunksize)


def check_part(part, seeded=True):
    """``part`` of a write as ``(k, K)`` ints, or None (FMT-093).

    Parameters
    ----------
    part : tuple of int (k, K) or None
    seeded : bool
        Whether the writer has a seed: ``K > 1`` needs one.

    Raises
    ------
    TypeError
        If ``part`` is not a pair (tuple or list) of two integers.
    ValueError
        Unless ``K >= 1`` and ``0 <= k < K``; for ``K > 1`` without a seed
        (each part would draw its own random root, so parts would disagree
        on the random choices).
    """
    if part is None:
        return None
    if not isinstance(part, (tuple, list)) or len(part) != 2:
        raise TypeError(f"part must be a pair (k, K): write part k of K, got {part!r}")
    k = check_count('part k', part[0], minimum=None)
    count = check_count('part K', part[1], minimum=None)
    if count < 1:
        raise ValueError(f"part (k, K) needs K >= 1 parts, got K={count}")
    if not 0 <= k < count:
        raise ValueError(f"part (k, K) needs 0 <= k < K, got k={k}, K={count}")
    if count > 1 and not seeded:
        raise ValueError(
            f"writing part {k} of {count} needs DatasetWriter(seed=...): without one every part "
            f"draws its own random root (shuffle_indices, write_mode='proportion'), so the parts "
            f"would not draw the same random choices")
    return k, count


def part_range(num_samples, part):
    """Positions ``[start, stop)`` of part ``k`` of ``K``, split as ``numpy.array_split`` does.

    ``spec/beton.md`` section 9.

    The first ``num_samples % K`` parts hold one sample more than the
    others; a part is empty when ``K > num_samples``.

    Parameters
    ----------
    num_samples : int
    part : tuple of int
        ``(k, K)`` as :func:`check_part` returns it.

    Returns
    -------
    tuple of int
        ``(start, stop)``, global positions.
    """
    k, count = part
    base, extra = divmod(int(num_samples), count)
    start = k * base + min(k, extra)
    return start, start + base + (1 if k < extra else 0)


def encode_field_name(name):
    """Bytes stored in a descriptor's ``name`` (FMT-020): ASCII, at most 16 bytes."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"field names must be non-empty strings, got {name!r}")
    try:
        raw = name.encode('ascii')
    except UnicodeEncodeError:
        raise ValueError(f"field name {name!r} is not ASCII (FMT-020)") from None
    if b'\0' in raw:
        raise ValueError(f"field name {name!r} contains a NUL byte")
    if len(raw) > FIELD_NAME_LENGTH:
        warnings.warn(f"field name {name!r} is longer than {FIELD_NAME_LENGTH} bytes; it is stored "
                      f"as {raw[:FIELD_NAME_LENGTH].decode()!r}", UserWarning, stacklevel=4)
        raw = raw[:FIELD_NAME_LENGTH]
    return raw


def part_path(output, parts_dir, part):
    """``DIR/<stem of output>.part-<k>-of-<K>.beton`` (str): numbers zero-padded to 5
    digits (more for K >= 100000), so that a listing sorts in part order."""
    k, count = part
    stem = os.path.basename(output)
    if stem.endswith('.beton'):
        stem = stem[:-len('.beton')]
    width = max(5, len(str(count)))
    return os.path.join(parts_dir, f"{stem}.part-{k:0{width}d}-of-{count:0{width}d}.beton")
