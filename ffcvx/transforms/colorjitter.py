"""FFCV-SSL's ``RandomColorJitter`` and ``LabelColorJitter``, with torchvision's semantics.

``RandomColorJitter(p, b, c, s, h)`` is torchvision's
``RandomApply([ColorJitter(b, c, s, h)], p)`` on uint8 RGB images: with
probability ``p`` a sample gets a uniformly random order of the four
adjustments and the factors ``b ~ U(b_lo, b_hi)`` (likewise ``c``, ``s``)
and ``h ~ U(h_lo, h_hi)``, each adjustment rounded back to uint8 as
``torchvision.transforms.v2.functional.adjust_*`` does (``_tv_color.py``).
Factors are drawn as float64 and kept as float32 (FFCV-SSL's precision; the
image op uses exactly what the label op reports).
"""

import numpy as np
from numba import njit

from ._args import is_number, number, probability, range_pair, seed_arg
from ._color import BRIGHTNESS, CONTRAST, SATURATION
from ._per_sample import LabelOp, PerImageOp
from ._tv_color import adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation

HUE = 3
IDENTITY = (1.0, 1.0, 1.0, 0.0)


def jitter_range(op_name, name, value, center=1.0, bound=(0.0, None), clip_first_on_zero=True):
    """torchvision's ``ColorJitter._check_input``: ``(low, high, enabled)``.

    A number ``x >= 0`` gives ``[center - x, center + x]`` (the low end
    raised to 0 when ``clip_first_on_zero``), a pair ``(low, high)`` is
    taken as it is; both must lie within ``bound`` (finite). None or a
    range of only ``center`` disables the adjustment. Raises ValueError
    naming the op and argument otherwise.
    """
    if value is None:
        return center, center, False
    if is_number(value):
        spread = number(op_name, name, value, low=0)
        low, high = center - spread, center + spread
        if clip_first_on_zero:
            low = max(low, 0.0)
        value = (low, high)
    low, high = range_pair(op_name, name, value, low=bound[0], high=bound[1])
    return low, high, not low == high == center


@njit(nogil=True)
def draw_jitter(prob, lows, highs, params, order):
    """One sample's draws (after ``seed_sample``): returns whether the jitter applies.

    Parameters
    ----------
    prob : float
        ``jitter_prob``.
    lows, highs : tuple of 4 floats
        Factor ranges, in the order brightness, contrast, saturation, hue.
    params : ndarray[float32], shape (4,)
        Out: the factors; ``(1, 1, 1, 0)`` when not applied.
    order : ndarray[int64], shape (4,)
        Out: the adjustments' order (a uniformly random permutation of
        0..3, Fisher-Yates); ``0, 1, 2, 3`` when not applied.
    """
    for i in range(4):
        order[i] = i
    if not np.random.rand() < prob:
        for i in range(4):
            params[i] = IDENTITY[i]
        return False
    for i in range(3, 0, -1):
        j = np.random.randint(0, i + 1)
        order[i], order[j] = order[j], order[i]
    for i in range(4):
        params[i] = np.float32(np.random.uniform(lows[i], highs[i]))
    return True


@njit(nogil=True)
def apply_jitter(image, params, order, enabled):
    """Apply the enabled adjustments to one ``(H, W, 3)`` uint8 image in ``order``, in place."""
    for i in range(4):
        which = order[i]
        if not enabled[which]:
            continue
        factor = np.float64(params[which])
        if which == BRIGHTNESS:
            adjust_brightness(image, factor)
        elif which == CONTRAST:
            adjust_contrast(image, factor)
        elif which == SATURATION:
            adjust_saturation(image, factor)
        else:
            adjust_hue(image, factor)


@njit(nogil=True, inline='always')
def _jitter_step(image, args):
    # args: (jitter_prob, lows, highs, enabled)
    params = np.empty(4, dtype=np.float32)
    order = np.empty(4, dtype=np.int64)
    if draw_jitter(args[0], args[1], args[2], params, order):
        apply_jitter(image, params, order, args[3])


@njit(nogil=True, inline='always')
def _jitter_columns(args, out):
    # args: (jitter_prob, lows, highs, with_order); the factors, then the order if asked
    order = np.empty(4, dtype=np.int64)
    draw_jitter(args[0], args[1], args[2], out[:4], order)
    if args[3]:
        for i in range(4):
            out[4 + i] = order[i]


class RandomColorJitter(PerImageOp):
    """torchvision's ``RandomApply([ColorJitter(...)], p=jitter_prob)``, in place.

    Input and output: ``ndarray[uint8], shape (B, H, W, 3)`` (jit mode),
    the same buffer. Tolerance against torchvision v2 with the same factors
    and order: 0 (measured 0 on the shared photos, every adjustment and the
    chain; ``tests/transforms/test_colorjitter.py`` asserts max |diff| <= 1 per
    adjustment and <= 2 for the chain).

    Parameters
    ----------
    jitter_prob : float in [0, 1]
    brightness, contrast, saturation : float >= 0, (min, max) pair or None
        Factor ``~ U(max(0, 1 - x), 1 + x)`` or ``U(min, max)``; 0 or None: off.
    hue : float in [0, 0.5], (min, max) pair in [-0.5, 0.5] or None
        Shift in turns ``~ U(-x, x)`` or ``U(min, max)`` (FFCV-SSL's image op
        used ``U(0, x)``; torchvision's range is kept).
    seed : int or None
        None follows the Loader's seed; an int draws from (seed, epoch,
        sample), the same as a :class:`LabelColorJitter` with that seed.

    Raises
    ------
    ValueError
        At construction for arguments outside those ranges; when the Loader
        is built for input that is not uint8 ``(H, W, 3)`` before ``ToTensor()``.
    """

    seed_kind = 'RandomColorJitter'
    image_channels, image_dtype = 3, np.uint8

    def __init__(self, jitter_prob=0.5, brightness=0.8, contrast=0.4, saturation=0.4, hue=0.2,
                 seed=None):
        super().__init__()
        name = type(self).__name__
        self.jitter_prob = probability(name, 'jitter_prob', jitter_prob)
        ranges = [jitter_range(name, 'brightness', brightness),
                  jitter_range(name, 'contrast', contrast),
                  jitter_range(name, 'saturation', saturation),
                  jitter_range(name, 'hue', hue, center=0.0, bound=(-0.5, 0.5),
                               clip_first_on_zero=False)]
        self.brightness, self.contrast, self.saturation, self.hue = (r[:2] for r in ranges)
        self.enabled = tuple(r[2] for r in ranges)
        self.seed = seed_arg(name, seed)

    def _draw_arguments(self):
        ranges = (self.brightness, self.contrast, self.saturation, self.hue)
        return (self.jitter_prob, tuple(r[0] for r in ranges), tuple(r[1] for r in ranges))

    def _image_step(self):
        return _jitter_step, self._draw_arguments() + (self.enabled,)


class LabelColorJitter(LabelOp):
    """Append what :class:`RandomColorJitter` with the same arguments and seed drew.

    Columns (float32, after the incoming labels): brightness, contrast,
    saturation and hue factors, ``(1, 1, 1, 0)`` when the jitter was not
    applied (FFCV-SSL's layout); with ``with_order=True`` also the four
    adjustment indices in the order applied (0 brightness, 1 contrast,
    2 saturation, 3 hue; ``0, 1, 2, 3`` when not applied). A disabled
    adjustment reports its identity value. Input ``(B,)``, ``(B, 1)`` or
    ``(B, k)``; output ``ndarray[float32], shape (B, k + 4)`` or ``(B, k + 8)``.

    Parameters
    ----------
    jitter_prob, brightness, contrast, saturation, hue, seed
        As for :class:`RandomColorJitter` (defaults too).
    with_order : bool
        Also append the order.

    Raises
    ------
    ValueError
        As :class:`RandomColorJitter`, and when the labels are not ``()`` or
        ``(k,)`` per sample.
    """

    seed_kind = RandomColorJitter.seed_kind

    def __init__(self, jitter_prob=0.5, brightness=0.8, contrast=0.4, saturation=0.4, hue=0.2,
                 seed=None, with_order=False):
        super().__init__()
        self._image_op = RandomColorJitter(jitter_prob, brightness, contrast, saturation, hue, seed)
        self.jitter_prob, self.seed = self._image_op.jitter_prob, self._image_op.seed
        self.brightness, self.contrast = self._image_op.brightness, self._image_op.contrast
        self.saturation, self.hue = self._image_op.saturation, self._image_op.hue
        if not isinstance(with_order, (bool, np.bool_)):
            raise ValueError(f"LabelColorJitter: with_order must be a bool, got {with_order!r}")
        self.with_order = bool(with_order)
        self.columns = 8 if self.with_order else 4

    def _label_step(self):
        return _jitter_columns, self._image_op._draw_arguments() + (self.with_order,)
