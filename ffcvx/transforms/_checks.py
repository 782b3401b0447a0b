"""State checks shared by the transforms: what a step needs from the previous one (not public API).

Constructor argument checks are in ``_args.py``.
"""
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








def fill_for(op_name, fill, shape, dtype):
    """The fill colour in the images' dtype, after checking its length and range.

    A fill of one value, or of equal values (FFCV's default ``(0, 0, 0)``),
    serves images of any channel count, gray ``(H, W, 1)`` ones included.

    Parameters
    ----------
    fill : ndarray, shape (k,)
        From ``_args.fill_vector``.
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
