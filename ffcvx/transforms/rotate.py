"""Random rotation about the image centre, nearest neighbour (FFCV-SSL's ``Rotate``)."""
import math
import numbers

import numba
import numpy as np
from numba import njit

from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import probability, require_images, seed_arg


@njit(nogil=True)
def draw_angle(rotate_prob, angle):
    """One sample's draw: ``(rotated, angle in radians ~ U(-angle, angle))``; call after ``seed_sample``."""
    if np.random.rand() < rotate_prob:
        return True, np.random.uniform(-angle, angle)
    return False, 0.0


@njit(nogil=True)
def rotate_image(image, theta, scratch):
    """Rotate one image by ``theta`` radians (counter-clockwise) in place, filling with 0.

    torchvision's inverse mapping (``rotate`` without ``expand``, centre at
    the image centre): output pixel ``(x, y)``, taken as
    ``(x - (W-1)/2, y - (H-1)/2)`` from the centre, reads source pixel
    ``rint(cos t * u - sin t * v + (W-1)/2)``, ``rint(sin t * u + cos t * v + (H-1)/2)``
    (``grid_sample``'s nearest, half to even); outside the image it is 0.

    Parameters
    ----------
    image : ndarray[uint8], shape (H, W, C)
        Modified in place.
    theta : float
        Angle in radians; positive turns the content counter-clockwise.
    scratch : ndarray[uint8], shape (>= H * W * C,)
        Holds a copy of the input.
    """
    height, width, channels = image.shape
    source = scratch[:height * width * channels].reshape((height, width, channels))
    source[:] = image
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    cx, cy = (width - 1) * 0.5, (height - 1) * 0.5
    for y in range(height):
        v = y - cy
        for x in range(width):
            u = x - cx
            xs = np.rint(cos_t * u - sin_t * v + cx)
            ys = np.rint(sin_t * u + cos_t * v + cy)
            if 0 <= xs < width and 0 <= ys < height:
                xi, yi = int(xs), int(ys)
                for c in range(channels):
                    image[y, x, c] = source[yi, xi, c]
            else:
                for c in range(channels):
                    image[y, x, c] = 0


class Rotate(Operation):
    """Rotate each image, with probability ``rotate_prob``, by an angle drawn from ``U(-angle, angle)``.

    torchvision's ``RandomApply([RandomRotation(degrees=(-a, a),
    interpolation=NEAREST, expand=False, center=None, fill=0)], p=rotate_prob)``
    with ``a = degrees(angle)``: ``angle`` is in radians, as in FFCV-SSL (the
    default 0.2 is about 11.5 degrees). Nearest-neighbour inverse mapping
    about the centre (:func:`rotate_image`); corners left uncovered are 0.
    Tolerance: computed in float64 where torchvision uses float32, so a
    source coordinate within about 1e-5 of a ``.5`` boundary may round the
    other way: at least 99.5% of pixels equal
    ``torchvision.transforms.v2.functional.rotate(img, degrees(t), NEAREST)``
    (measured on photos: over 99.9%), the others are a neighbour's value.
    FFCV-SSL truncated coordinates instead of rounding and output float32.

    Input and output: ``ndarray[uint8], shape (B, H, W, C)`` (jit mode), the
    same buffer (a per-thread scratch holds the copy being read).

    Parameters
    ----------
    rotate_prob : float in [0, 1], default 0.5
        Probability that an image is rotated.
    angle : float >= 0, default 0.2
        Largest rotation, radians.
    seed : int or None
        None follows the Loader's seed; an int gives draws depending only on
        (seed, epoch, sample).

    Raises
    ------
    ValueError
        At construction for a bad argument; when the Loader is built, if the
        step comes after ``ToTensor()`` or the input is not uint8 (H, W, C).
    """

    def __init__(self, rotate_prob=0.5, angle=0.2, seed=None):
        super().__init__()
        self.rotate_prob = probability('Rotate', 'rotate_prob', rotate_prob)
        if (isinstance(angle, bool) or not isinstance(angle, numbers.Real)
                or not math.isfinite(angle) or angle < 0):
            raise ValueError(f"Rotate: angle must be a finite number >= 0 (radians), got {angle!r}")
        self.angle = float(angle)
        self.seed = seed_arg('Rotate', seed)

    def declare_shared_memory(self, previous_state):
        height, width, channels = require_images('Rotate', previous_state, dtype=np.uint8)
        return AllocationQuery((numba.config.NUMBA_NUM_THREADS, height * width * channels),
                               np.dtype(np.uint8))

    def declare_state_and_memory(self, previous_state):
        require_images('Rotate', previous_state, dtype=np.uint8)
        return previous_state, None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        thread_id = Compiler.thread_id()
        rotate_prob, angle = self.rotate_prob, self.angle

        def rotate(images, dst, indices, seed, shared):
            for k in my_range(images.shape[0]):
                seed_sample(seed, indices[k])
                rotated, theta = draw_angle(rotate_prob, angle)
                if rotated:
                    rotate_image(images[k], theta, shared[thread_id()])
            return images
        rotate.is_parallel = True
        rotate.with_seed = True
        return rotate
