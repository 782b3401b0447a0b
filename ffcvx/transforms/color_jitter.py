"""Random brightness, contrast and saturation (colour jitter), in place on uint8 RGB images.

Each image is, with probability ``p``, blended with a reference image by a
factor ``f ~ U(max(0, 1 - magnitude), 1 + magnitude)``:
``out = clip(f * x + (1 - f) * reference, 0, 255)``, rounded to the nearest
integer. ``f < 1`` moves toward the reference, ``f > 1`` away from it. The
references are those of PIL's ``ImageEnhance`` and torchvision's
``adjust_*`` functions: black (brightness), the image's mean grey
(contrast) and each pixel's own grey (saturation), grey being the ITU-R 601
luma ``0.299 R + 0.587 G + 0.114 B``. Grey values are used unrounded
(PIL and torchvision round them to integers first: differences of at most
one level). The kernel is ``_color.py``'s blend with FFCV's rounding.
"""
import numpy as np
from numba import njit

from ._args import number, probability
from ._color import BRIGHTNESS, CONTRAST, FFCV_BLEND, SATURATION
from ._per_sample import PerImageOp

#: ``blend_with_reference(image, factor, kind)``: one uint8 RGB image ``(H, W, 3)`` blended in
#: place (see the module docstring); ``kind`` 0 brightness (black), 1 contrast (mean grey),
#: 2 saturation (pixel grey); factor 1 leaves the image unchanged, 0 gives the reference.
blend_with_reference = FFCV_BLEND


@njit(nogil=True, inline='always')
def _jitter_step(image, args):
    # args: (p, low, high, kind)
    if np.random.rand() < args[0]:
        factor = np.random.uniform(args[1], args[2])
        blend_with_reference(image, factor, args[3])


class _ColorJitter(PerImageOp):
    """Shared code of the three colour jitters; ``_kind`` selects the reference."""

    _kind = None
    image_channels, image_dtype = 3, np.uint8

    def __init__(self, magnitude, p=0.5):
        super().__init__()
        name = type(self).__name__
        self.magnitude = number(name, 'magnitude', magnitude, low=0)
        self.p = probability(name, 'p', p)

    def _image_step(self):
        return _jitter_step, (self.p, max(0.0, 1.0 - self.magnitude), 1.0 + self.magnitude,
                              self._kind)


_PARAMETERS = """
    Input and output: ``ndarray[uint8], shape (B, H, W, 3)`` (jit mode), the
    same buffer.

    Parameters
    ----------
    magnitude : float, >= 0
        The factor is drawn from ``U(max(0, 1 - magnitude), 1 + magnitude)``;
        0 leaves images unchanged.
    p : float in [0, 1], default 0.5
        Probability that an image is changed.

    Raises
    ------
    ValueError
        At construction, for a negative or non-finite ``magnitude`` or ``p``
        outside [0, 1]; when the Loader is built, if the step comes after
        ``ToTensor()`` or the input is not uint8 ``(H, W, 3)``.
    """


class RandomBrightness(_ColorJitter):
    __doc__ = """Scale each image's brightness: blend with black (``out = f * x``).
    """ + _PARAMETERS
    _kind = BRIGHTNESS


class RandomContrast(_ColorJitter):
    __doc__ = """Scale each image's contrast: blend with the image's mean grey.
    """ + _PARAMETERS
    _kind = CONTRAST


class RandomSaturation(_ColorJitter):
    __doc__ = """Scale each image's saturation: blend each pixel with its own grey.
    """ + _PARAMETERS
    _kind = SATURATION
