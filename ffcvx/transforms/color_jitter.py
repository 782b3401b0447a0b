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
one level).
"""
import numbers

import numpy as np
from numba import njit

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import probability, require_images

_BRIGHTNESS, _CONTRAST, _SATURATION = 0, 1, 2


@njit(nogil=True)
def _store(value):
    # clip to 0..255, round half up
    if value < 0.0:
        value = 0.0
    elif value > 255.0:
        value = 255.0
    return np.uint8(np.floor(value + 0.5))


@njit(nogil=True)
def _luma(image, y, x):
    return 0.299 * image[y, x, 0] + 0.587 * image[y, x, 1] + 0.114 * image[y, x, 2]


@njit(nogil=True)
def blend_with_reference(image, factor, kind):
    """Blend one uint8 RGB image, ``(H, W, 3)``, in place (see the module docstring).

    Parameters
    ----------
    image : ndarray[uint8], shape (H, W, 3)
    factor : float
        1 leaves the image unchanged; 0 gives the reference.
    kind : int
        0 brightness (black), 1 contrast (mean grey), 2 saturation (pixel grey).
    """
    height, width = image.shape[0], image.shape[1]
    keep = 1.0 - factor
    if kind == _BRIGHTNESS:
        for y in range(height):
            for x in range(width):
                for c in range(3):
                    image[y, x, c] = _store(factor * image[y, x, c])
    elif kind == _CONTRAST:
        total = 0.0
        for y in range(height):
            for x in range(width):
                total += _luma(image, y, x)
        reference = keep * (total / (height * width))
        for y in range(height):
            for x in range(width):
                for c in range(3):
                    image[y, x, c] = _store(factor * image[y, x, c] + reference)
    else:
        for y in range(height):
            for x in range(width):
                reference = keep * _luma(image, y, x)
                for c in range(3):
                    image[y, x, c] = _store(factor * image[y, x, c] + reference)


class _ColorJitter(Operation):
    """Shared code of the three colour jitters; ``_kind`` selects the reference."""

    _kind = None

    def __init__(self, magnitude, p=0.5):
        super().__init__()
        name = type(self).__name__
        if (isinstance(magnitude, bool) or not isinstance(magnitude, numbers.Real)
                or not 0 <= magnitude < float('inf')):
            raise ValueError(f"{name}: magnitude must be a finite number >= 0, got {magnitude!r}")
        self.magnitude = float(magnitude)
        self.p = probability(name, 'p', p)

    def declare_state_and_memory(self, previous_state):
        require_images(type(self).__name__, previous_state, channels=3, dtype=np.uint8)
        return previous_state, None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        p = self.p
        low, high = max(0.0, 1.0 - self.magnitude), 1.0 + self.magnitude
        kind = self._kind

        def jitter(images, dst, indices, seed):
            for k in my_range(images.shape[0]):
                seed_sample(seed, indices[k])
                if np.random.rand() < p:
                    factor = np.random.uniform(low, high)
                    blend_with_reference(images[k], factor, kind)
            return images
        jitter.is_parallel = True
        jitter.with_seed = True
        return jitter


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
    _kind = _BRIGHTNESS


class RandomContrast(_ColorJitter):
    __doc__ = """Scale each image's contrast: blend with the image's mean grey.
    """ + _PARAMETERS
    _kind = _CONTRAST


class RandomSaturation(_ColorJitter):
    __doc__ = """Scale each image's saturation: blend each pixel with its own grey.
    """ + _PARAMETERS
    _kind = _SATURATION
