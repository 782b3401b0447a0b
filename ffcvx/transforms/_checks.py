"""Argument and State checks shared by the transforms (not part of the public API)."""
import numbers

import numpy as np


def require_numpy(op_name, state):
    """Refuse a State that left jit mode (a transform that needs numpy after ToTensor).

    Raises
    ------
    ValueError
        Naming the fix: move the transform before ``ToTensor()``.
    """
    if not state.jit_mode:
        raise ValueError(f"{op_name} works on numpy arrays in the compiled part of the pipeline: "
                         f"put it before ToTensor()")


def require_images(op_name, state, channels=None, dtype=None):
    """Check that ``state`` describes numpy images ``(H, W, C)``; returns ``(H, W, C)``.

    Parameters
    ----------
    op_name : str
        Used in the messages.
    state : State
        The previous Operation's output State.
    channels : int, optional
        Required number of channels.
    dtype : numpy dtype, optional
        Required element type.

    Raises
    ------
    ValueError
        If the state is not in jit mode, not 3-D per sample, or has the wrong
        channel count or dtype.
    """
    require_numpy(op_name, state)
    shape = state.shape
    if shape is None or len(shape) != 3:
        raise ValueError(f"{op_name} needs images of shape (H, W, C) per sample, got {shape}; "
                         f"put it after an image decoder")
    if channels is not None and shape[2] != channels:
        raise ValueError(f"{op_name} needs {channels}-channel images, got shape {shape}")
    if dtype is not None and np.dtype(state.dtype) != np.dtype(dtype):
        raise ValueError(f"{op_name} needs {np.dtype(dtype)} images, got {np.dtype(state.dtype)}")
    return tuple(int(s) for s in shape)


def positive_int(op_name, name, value, minimum=1):
    """``int(value)`` if it is an integer ``>= minimum``, else ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{op_name}: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{op_name}: {name} must be at least {minimum}, got {value}")
    return int(value)


def probability(op_name, name, value):
    """``float(value)`` if it is a number in [0, 1], else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        raise ValueError(f"{op_name}: {name} must be a number in [0, 1], got {value!r}")
    return float(value)


def fill_vector(op_name, fill):
    """A fill colour as a 1-D float64 array (checked against the images later).

    Raises
    ------
    ValueError
        If ``fill`` is not a non-empty 1-D sequence of finite numbers.
    """
    try:
        values = np.asarray(fill, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{op_name}: fill must be a sequence of numbers, one per channel, "
                         f"got {fill!r}") from None
    if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"{op_name}: fill must be a sequence of numbers, one per channel, "
                         f"got {fill!r}")
    return values


def fill_for(op_name, fill, shape, dtype):
    """The fill colour in the images' dtype, after checking its length and range.

    A fill of one value, or of equal values (FFCV's default ``(0, 0, 0)``),
    serves images of any channel count, gray ``(H, W, 1)`` ones included.

    Parameters
    ----------
    fill : ndarray, shape (k,)
        From :func:`fill_vector`.
    shape : tuple (H, W, C)
    dtype : numpy dtype
        The images' element type.

    Returns
    -------
    ndarray of ``dtype``, shape (C,)

    Raises
    ------
    ValueError
        If ``k != C`` and the values differ, or an integer dtype cannot hold a
        value exactly.
    """
    channels = shape[2]
    if fill.size != channels:
        if np.any(fill != fill[0]):
            raise ValueError(f"{op_name}: fill has {fill.size} values but the images have "
                             f"{channels} channels (shape {shape})")
        fill = np.full(channels, fill[0])
    dtype = np.dtype(dtype)
    if dtype.kind in 'iu':
        info = np.iinfo(dtype)
        if np.any(fill != np.round(fill)) or fill.min() < info.min or fill.max() > info.max:
            raise ValueError(f"{op_name}: fill {tuple(fill.tolist())} is not a colour of {dtype} "
                             f"images (integers in [{info.min}, {info.max}])")
    return fill.astype(dtype)


def sample_indices(op_name, indices):
    """Sorted, distinct sample indices as ``ndarray[uint64]`` (what the Loader passes).

    Raises
    ------
    ValueError
        If ``indices`` is not a 1-D collection of non-negative integers.
    """
    values = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if values.size == 0:
        return np.zeros(0, dtype=np.uint64)
    if values.ndim != 1 or values.dtype.kind not in 'iu':
        raise ValueError(f"{op_name}: indices must be a 1-D collection of sample numbers "
                         f"(integers), got dtype {values.dtype} and shape {values.shape}")
    if values.min() < 0:
        raise ValueError(f"{op_name}: indices must be non-negative, got {int(values.min())}")
    return np.unique(values.astype(np.uint64))


def seed_arg(op_name, seed, name='seed'):
    """FFCV-SSL's ``seed`` argument: None, or ``int(seed)`` for an integer >= 0 (not a bool).

    Raises
    ------
    ValueError
        Naming the op and the argument, for anything else.
    """
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{op_name}: {name} must be None or an integer >= 0, got {seed!r}")
    return int(seed)
