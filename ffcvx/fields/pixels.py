"""Writer inputs of the image fields as ``uint8`` pixels: what is accepted, what is refused.

A PIL image of more than 8 bits per channel is refused (converting it to
``RGB`` or ``L`` would clip its values); so are other types, dtypes and
shapes. Empty images are refused by ``ImageField.encode`` itself, after
these conversions (``spec/beton.md`` section 8).
"""
import numpy as np
from PIL import Image

__all__ = ['WIDE_PIL_MODES', 'check_pil_depth', 'to_gray_array', 'to_rgb_array']


#: PIL modes with more than 8 bits per channel: converting them to ``RGB`` or ``L``
#: clips or truncates values, so the image fields refuse them.
WIDE_PIL_MODES = ('I', 'F', 'I;16', 'I;16L', 'I;16B', 'I;16N', 'I;32', 'I;32L', 'I;32B',
                  'RGB;16', 'RGBA;16')


def check_pil_depth(image, field):
    """Raise TypeError for a PIL image of more than 8 bits per channel (``WIDE_PIL_MODES``)."""
    if image.mode in WIDE_PIL_MODES or image.mode.startswith(('I;', 'F;')):
        raise TypeError(f"{field} stores 8 bits per channel, but this PIL image has mode "
                        f"{image.mode!r}; converting it would clip its values. Scale it to "
                        f"8 bits first (e.g. numpy: (a >> 8).astype(np.uint8)) or store it in an "
                        f"NDArrayField")


def _pixels(value, field_name, pil_mode, shape_array):
    """A PIL image converted to ``pil_mode``, or ``shape_array(value)`` for a uint8 ndarray.

    ``shape_array`` brings a uint8 array to the field's shape (or raises
    TypeError); a converted PIL image has that shape already.

    Raises
    ------
    TypeError
        Naming ``field_name``: neither a PIL image nor an ndarray, a dtype
        other than uint8, or a PIL mode of more than 8 bits a channel.
    """
    if isinstance(value, Image.Image):
        check_pil_depth(value, field_name)
        return np.asarray(value.convert(pil_mode))
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{field_name} expects a PIL image, a uint8 ndarray, a file path or "
                        f"encoded bytes, got {type(value).__name__}")
    if value.dtype != np.uint8:
        raise TypeError(f"{field_name} expects uint8 pixels, got dtype {value.dtype}")
    return shape_array(value)


def to_rgb_array(value):
    """Turn a writer input into ``ndarray[uint8], shape (H, W, 3)``.

    Accepts a PIL image of any mode (converted to RGB), or a uint8 array of
    shape (H, W, 3), (H, W, 1) or (H, W) (gray channels are repeated).

    Raises
    ------
    TypeError
        For any other type, dtype or shape.
    """
    return _pixels(value, 'RGBImageField', 'RGB', _rgb_shape)


def _rgb_shape(value):
    if value.ndim == 2:
        value = value[:, :, None]
    if value.ndim != 3 or value.shape[2] not in (1, 3):
        raise TypeError(f"RGBImageField expects shape (H, W, 3), got {value.shape}")
    if value.shape[2] == 1:
        value = np.repeat(value, 3, axis=2)
    return np.ascontiguousarray(value)


def to_gray_array(value):
    """Turn a writer input into ``ndarray[uint8], shape (H, W)``.

    Accepts a PIL image of any mode (converted with Pillow's ``convert('L')``,
    ITU-R 601-2 luma), or a uint8 array of shape (H, W) or (H, W, 1). A
    (H, W, 3) array is converted with the same luma rule, through Pillow.
    Refuses other inputs as :func:`to_rgb_array` does (TypeError).
    """
    return _pixels(value, 'GrayscaleImageField', 'L', _gray_shape)


def _gray_shape(value):
    if value.ndim == 3 and value.shape[2] == 1:
        value = value[:, :, 0]
    elif value.ndim == 3 and value.shape[2] == 3:
        value = np.asarray(Image.fromarray(np.ascontiguousarray(value)).convert('L'))
    if value.ndim != 2:
        raise TypeError(f"GrayscaleImageField expects shape (H, W) or (H, W, 1), got {value.shape}")
    return np.ascontiguousarray(value)
