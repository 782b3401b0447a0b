"""Random rotation about the image centre, nearest neighbour (FFCV-SSL's ``Rotate``)."""
import numba
import numpy as np
from numba import njit

from ..pipeline.allocation_query import AllocationQuery
from ._args import number, probability, seed_arg
from ._per_sample import PerImageOp


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


@njit(nogil=True, inline='always')
def _rotate_step(image, args, scratch):
    # args: (rotate_prob, angle)
    rotated, theta = draw_angle(args[0], args[1])
    if rotated:
        rotate_image(image, theta, scratch)


class Rotate(PerImageOp):
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
        An int makes each sample's draws a function of (seed, epoch, sample)
        alone; None takes the Loader's seed.

    Raises
    ------
    ValueError
        At construction, for a probability outside [0, 1], a negative or
        infinite angle or a seed that is not an integer >= 0; when the Loader
        is built, for input other than uint8 ``(H, W, C)`` images in jit mode.
    """

    image_dtype = np.uint8
    needs_scratch = True

    def __init__(self, rotate_prob=0.5, angle=0.2, seed=None):
        super().__init__()
        self.rotate_prob = probability('Rotate', 'rotate_prob', rotate_prob)
        self.angle = number('Rotate', 'angle', angle, low=0, unit='radians')
        self.seed = seed_arg('Rotate', seed)

    def declare_shared_memory(self, previous_state):
        self.declare_state_and_memory(previous_state)       # the checks
        height, width, channels = previous_state.shape
        return AllocationQuery((numba.config.NUMBA_NUM_THREADS, height * width * channels),
                               np.dtype(np.uint8))

    def _image_step(self):
        return _rotate_step, (self.rotate_prob, self.angle)
