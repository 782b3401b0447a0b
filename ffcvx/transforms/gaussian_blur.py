"""Random Gaussian blur of uint8 images (FFCV-SSL's ``GaussianBlur``), torchvision's arithmetic.

With probability ``blur_prob`` an image is blurred with a Gaussian of
standard deviation ``sigma ~ U(sigma_min, sigma_max)``, as
``torchvision.transforms.RandomApply([GaussianBlur(kernel_size, sigma)], p)``
does: the kernel is torchvision's (``exp(-d^2 / (2 sigma^2))`` over
``d = -(k-1)/2 .. (k-1)/2``, normalised, float32), borders are reflected
(``reflect``: the edge pixel is not repeated) and the result is rounded half
to even, as ``torchvision.transforms.v2.functional.gaussian_blur`` rounds
uint8 results. The blur is computed as two 1-D passes in exact arithmetic
with the weights in 23- and 21-bit fixed point (torchvision convolves once
with the outer-product kernel in float32): the two round differently,
so a pixel may differ by one level where the exact value lies near ``.5``.
"""
import numbers

import numba
import numpy as np
from numba import njit

from ..pipeline.allocation_query import AllocationQuery
from ._args import probability, range_pair, seed_arg
from ._per_sample import LabelOp, PerImageOp


@njit(nogil=True)
def draw_sigma(blur_prob, sigma_lo, sigma_hi):
    """One sample's draw: the sigma to blur with (float32-exact), or 0.0 for no blur.

    Call after ``seed_sample``; the image and the label op both call it, so
    with one seed they see the same number. Sigma is rounded to float32 so
    that the label column (float32) re-creates the very same kernel.
    """
    if np.random.rand() < blur_prob:
        return np.float64(np.float32(np.random.uniform(sigma_lo, sigma_hi)))
    return 0.0


# Fixed-point weights held in float64: every product and sum is an integer below 2**53, so exact
# in any order (vectorised or not), and the result is a multiple of 2**-44 rounded exactly.
_ONE_Y = 1 << 23          # vertical pass: sums below 255 * 2**23
_ONE_X = 1 << 21          # horizontal pass: sums below 255 * 2**44 < 2**53
_SCALE = 2.0 ** -44
_HALF = 2.0 ** 43


@njit(nogil=True)
def _weights(size, sigma, out, one):
    # torchvision's kernel (softmax(-(x / sigma)^2), x = linspace(-lim, lim), lim = (size-1)/(2 sqrt 2),
    # i.e. exp(-d^2 / (2 sigma^2))), as integers summing to exactly `one`
    half = (size - 1) / 2.0
    total = 0.0
    for t in range(size):
        d = (t - half) / sigma
        total += np.exp(-0.5 * d * d)
    given = 0.0
    for t in range(size):
        d = (t - half) / sigma
        out[t] = np.rint(np.exp(-0.5 * d * d) / total * one)
        given += out[t]
    out[size // 2] += one - given


@njit(nogil=True, inline='always')
def _reflect(i, n):
    # 'reflect' padding (no edge repetition); callers guarantee |overhang| < n
    if i < 0:
        return -i
    if i >= n:
        return 2 * n - 2 - i
    return i


@njit(nogil=True)
def blur_image(image, size_x, size_y, sigma, scratch):
    """Blur one image in place with torchvision's Gaussian kernel.

    Exact arithmetic (fixed-point weights, every sum an integer below
    2**53, the result rounded half to even): the same bytes whatever the
    compiler flags of the caller, so a label's sigma re-creates the output
    exactly.

    Parameters
    ----------
    image : ndarray[uint8], shape (H, W, C)
        Modified in place. ``size_x // 2 < W`` and ``size_y // 2 < H``
        (reflection needs that much image, as in torchvision).
    size_x, size_y : int
        Odd kernel widths along x (columns) and y (rows), torchvision's
        ``kernel_size`` order.
    sigma : float
        Standard deviation in pixels, > 0 (the same along both axes).
    scratch : ndarray[float64], shape (>= (H + 1) * W * C + size_x + size_y,)
        Work space (the vertical pass's result, a row and the two 1-D kernels).
    """
    height, width, channels = image.shape
    row = width * channels
    plane = height * row
    tmp = scratch[:plane]                       # vertical pass, rows of W * C
    acc = scratch[plane:plane + row]            # one output row of the horizontal pass
    wy = scratch[plane + row:plane + row + size_y]
    wx = scratch[plane + row + size_y:plane + row + size_y + size_x]
    _weights(size_y, sigma, wy, _ONE_Y)
    _weights(size_x, sigma, wx, _ONE_X)
    py, px = size_y // 2, size_x // 2
    flat = image.reshape(-1)
    for y in range(height):
        base = y * row
        for i in range(row):
            tmp[base + i] = 0.0
        for t in range(size_y):
            src = _reflect(y + t - py, height) * row
            weight = wy[t]
            # one flat run per source row, so that the loop vectorises
            for i in range(row):
                tmp[base + i] += weight * np.float64(flat[src + i])
    for y in range(height):
        base = y * row
        for i in range(row):
            acc[i] = 0.0
        for t in range(size_x):
            weight = wx[t]
            shift = t - px
            # columns whose source x + shift lies inside: one contiguous run
            lo, hi = max(0, -shift), min(width, width - shift)
            src = base + shift * channels
            for i in range(lo * channels, hi * channels):
                acc[i] += weight * tmp[src + i]
            for x in range(lo):
                xs = _reflect(x + shift, width)
                for c in range(channels):
                    acc[x * channels + c] += weight * tmp[base + xs * channels + c]
            for x in range(hi, width):
                xs = _reflect(x + shift, width)
                for c in range(channels):
                    acc[x * channels + c] += weight * tmp[base + xs * channels + c]
        for x in range(width):
            for c in range(channels):
                total = acc[x * channels + c]
                q = np.floor(total * _SCALE)
                rest = total - q / _SCALE
                if rest > _HALF or (rest == _HALF and q % 2.0 == 1.0):
                    q += 1.0
                image[y, x, c] = np.uint8(q)


def _kernel_sizes(name, kernel_size):
    # torchvision's form: an odd int or (size_x, size_y) of odd ints
    sizes = kernel_size if isinstance(kernel_size, (tuple, list)) else (kernel_size, kernel_size)
    if len(sizes) != 2 or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool)
                                  and s >= 1 and s % 2 == 1 for s in sizes):
        raise ValueError(f"{name}: kernel_size must be an odd positive integer or a pair of them "
                         f"(x, y), got {kernel_size!r}")
    return int(sizes[0]), int(sizes[1])


def _blur_arguments(op, blur_prob, kernel_size, sigma, seed):
    # the image op's and the label op's, alike
    name = type(op).__name__
    op.blur_prob = probability(name, 'blur_prob', blur_prob)
    op.kernel_size = _kernel_sizes(name, kernel_size)
    op.sigma = range_pair(name, 'sigma', sigma, low=0, low_open=True, scalar=True)
    op.seed = seed_arg(name, seed)


@njit(nogil=True, inline='always')
def _blur_step(image, args, scratch):
    # args: (blur_prob, sigma_lo, sigma_hi, size_x, size_y)
    sigma = draw_sigma(args[0], args[1], args[2])
    if sigma > 0.0:
        blur_image(image, args[3], args[4], sigma, scratch)


@njit(nogil=True, inline='always')
def _sigma_column(args, out):
    # args: (blur_prob, sigma_lo, sigma_hi)
    out[0] = draw_sigma(args[0], args[1], args[2])


class GaussianBlur(PerImageOp):
    """Blur each image, with probability ``blur_prob``, by a Gaussian of random sigma.

    torchvision's ``RandomApply([GaussianBlur(kernel_size, sigma)], p=blur_prob)``
    per image, in place (module docstring): ``sigma ~ U(min, max)`` per
    blurred image (FFCV-SSL picked one of 10 evenly spaced values instead).
    Tolerance: at most one level of difference from
    ``torchvision.transforms.v2.functional.gaussian_blur`` with the same
    sigma (ties at ``.5`` summed in another order).

    Input and output: ``ndarray[uint8], shape (B, H, W, C)`` (jit mode), the
    same buffer.

    Parameters
    ----------
    blur_prob : float in [0, 1]
        Probability that an image is blurred.
    kernel_size : odd int or (odd int, odd int), default 5
        Kernel width in pixels, or (along x, along y); ``size // 2`` must be
        less than the image's width (height).
    sigma : float or (float, float), default (0.1, 2.0)
        Standard deviation in pixels, fixed or the range it is drawn from.
    seed : int or None
        None follows the Loader's seed; an int gives draws depending only on
        (seed, epoch, sample), shared with ``LabelGaussianBlur(seed=...)``.

    Raises
    ------
    ValueError
        At construction for a bad argument; when the Loader is built, if the
        step comes after ``ToTensor()``, the input is not uint8 (H, W, C) or
        is too small for the kernel.
    """

    seed_kind = 'GaussianBlur'
    image_dtype = np.uint8
    needs_scratch = True

    def __init__(self, blur_prob, kernel_size=5, sigma=(0.1, 2.0), seed=None):
        super().__init__()
        _blur_arguments(self, blur_prob, kernel_size, sigma, seed)

    def _accept_images(self, shape, dtype):
        size_x, size_y = self.kernel_size
        if size_x // 2 >= shape[1] or size_y // 2 >= shape[0]:
            raise ValueError(f"GaussianBlur: kernel_size {self.kernel_size} needs images wider than "
                             f"{size_x // 2} and taller than {size_y // 2} pixels, got {shape}")

    def declare_shared_memory(self, previous_state):
        self.declare_state_and_memory(previous_state)       # the checks
        height, width, channels = previous_state.shape
        length = (height + 1) * width * channels + sum(self.kernel_size)
        return AllocationQuery((numba.config.NUMBA_NUM_THREADS, length), np.dtype(np.float64))

    def _image_step(self):
        return _blur_step, (self.blur_prob, *self.sigma, *self.kernel_size)


class LabelGaussianBlur(LabelOp):
    """Append the sigma that ``GaussianBlur`` with the same arguments drew (0.0: not blurred).

    Goes in a label pipeline after ``IntDecoder()`` or another label op.
    With the same int ``seed`` it reports exactly the image op's draw per
    (epoch, sample): blurring the un-blurred image with this sigma gives the
    image op's output bit for bit.

    Input: ``ndarray, shape (B,)`` or ``(B, n)`` (labels); output
    ``ndarray[float32], shape (B, n + 1)``: the input columns, then sigma in pixels.

    Parameters
    ----------
    blur_prob, kernel_size, sigma, seed
        As for :class:`GaussianBlur` (``kernel_size`` is checked, not used).

    Raises
    ------
    ValueError
        At construction for a bad argument; when the Loader is built, if the
        input is not 1-D per sample or comes after ``ToTensor()``.
    """

    seed_kind = 'GaussianBlur'
    columns = 1

    def __init__(self, blur_prob, kernel_size=5, sigma=(0.1, 2.0), seed=None):
        super().__init__()
        _blur_arguments(self, blur_prob, kernel_size, sigma, seed)

    def _label_step(self):
        return _sigma_column, (self.blur_prob, *self.sigma)
