"""Mixup: ImageMixup, LabelMixup and MixupToOneHot.

Sample ``i`` of a batch is mixed with sample ``i - 1`` (sample 0 with the
last one) with a weight ``lam ~ Beta(alpha, alpha)``:
image ``lam * x_i + (1 - lam) * x_{i-1}``, label ``[y_i, y_{i-1}, lam]``.

ImageMixup and LabelMixup run in different pipelines but must agree on
every ``lam``. FFCV 1.0 made them agree by re-seeding the thread's global
random generator with the batch's last sample index, which also made every
later random draw on that thread (flips, crops) a function of that index.
ffcvx instead computes the weights as a pure function of the batch's sample
indices with its own counter-based generator (SplitMix64 hashing, Box-Muller
normals, Marsaglia-Tsang gammas): no generator is seeded or advanced, both
steps get identical weights, and other augmentations are unaffected. Like
FFCV's, the weights repeat when exactly the same batch (same indices, same
order) comes again, e.g. in sequential order.
"""
from math import cos, exp, log, pi, sqrt

import numpy as np
import torch
from numba import njit

from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import mix64 as _mix64
from ._args import number, positive_int
from ._checks import require_numpy

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S11 = np.uint64(11)
_BATCH_SALT = np.uint64(0x6D69787570000001)  # "mixup" + 1: any fixed constant


@njit(nogil=True)
def _uniform(key, counter):
    """The ``counter``-th number of stream ``key``, uniform in the open interval (0, 1)."""
    z = _mix64(key + (np.uint64(counter) + np.uint64(1)) * _GOLDEN)
    return (np.float64(z >> _S11) + 0.5) * (1.0 / 9007199254740992.0)


@njit(nogil=True)
def _log_gamma_variate(shape, key, counter):
    """``(log X, next counter)`` with ``X ~ Gamma(shape, 1)`` drawn from stream ``key``.

    Marsaglia and Tsang's method; for ``shape < 1`` a ``Gamma(shape + 1)``
    variate times ``U ** (1 / shape)``, kept in logs so tiny variates do not
    underflow to 0.
    """
    boost = 0.0
    if shape < 1.0:
        boost = log(_uniform(key, counter)) / shape
        counter += 1
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / sqrt(9.0 * d)
    while True:
        u1 = _uniform(key, counter)
        u2 = _uniform(key, counter + 1)
        counter += 2
        x = sqrt(-2.0 * log(u1)) * cos(2.0 * pi * u2)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = _uniform(key, counter)
        counter += 1
        if log(u) < 0.5 * x * x + d - d * v + d * log(v):
            return log(d) + log(v) + boost, counter


@njit(nogil=True)
def _beta_symmetric(alpha, key):
    """A ``Beta(alpha, alpha)`` variate from stream ``key``, as ``X / (X + Y)`` of two gammas."""
    log_x, counter = _log_gamma_variate(alpha, key, 0)
    log_y, _ = _log_gamma_variate(alpha, key, counter)
    difference = log_y - log_x
    if difference > 700.0:
        return 0.0
    return 1.0 / (1.0 + exp(difference))


@njit(nogil=True)
def _fill_lambdas(batch_indices, alpha, same_lambda, out):
    key = _BATCH_SALT
    for k in range(batch_indices.shape[0]):
        key = _mix64(key ^ np.uint64(batch_indices[k])) + _GOLDEN
    if same_lambda:
        lam = _beta_symmetric(alpha, _mix64(key))
        for k in range(out.shape[0]):
            out[k] = lam
    else:
        for k in range(out.shape[0]):
            out[k] = _beta_symmetric(alpha, _mix64(key + np.uint64(k + 1) * _MUL2))


def mixup_lambdas(batch_indices, alpha, same_lambda):
    """The mixing weights ImageMixup and LabelMixup use for a batch.

    A pure function of its arguments (see the module docstring).

    Parameters
    ----------
    batch_indices : array_like of int, shape (B,)
        Dataset indices of the batch's samples, in batch order.
    alpha : float, > 0
        Parameter of the symmetric Beta distribution.
    same_lambda : bool
        One weight for the whole batch, or one per sample.

    Returns
    -------
    ndarray[float64], shape (B,)
        ``lam_i`` in [0, 1], the weight of sample ``i`` itself.
    """
    indices = np.ascontiguousarray(batch_indices, dtype=np.uint64)
    out = np.empty(indices.shape[0], dtype=np.float64)
    _fill_lambdas(indices, float(alpha), bool(same_lambda), out)
    return out


class _Mixup(Operation):
    """What ImageMixup and LabelMixup share: their arguments, so that both draw the same weights."""

    def __init__(self, alpha, same_lambda):
        super().__init__()
        self.alpha = number(type(self).__name__, 'alpha', alpha, low=0, low_open=True)
        self.same_lambda = bool(same_lambda)


class ImageMixup(_Mixup):
    """Mix each image with the previous one of the batch: ``lam_i * x_i + (1 - lam_i) * x_{i-1}``.

    Image 0 is mixed with the last image. ``lam_i ~ Beta(alpha, alpha)``,
    equal to the ``lam`` that :class:`LabelMixup` reports for the same batch
    (see :func:`mixup_lambdas`). Integer results are rounded to the nearest
    integer (FFCV 1.0 truncated).

    Input: ``ndarray, shape (B, *S)`` (jit mode, any numeric dtype; images
    are uint8 ``(H, W, C)``). Output: same shape and dtype, a new buffer
    (mixing needs the unmixed neighbour).

    Parameters
    ----------
    alpha : float, > 0
        Beta distribution parameter; small values keep images nearly intact.
    same_lambda : bool
        True: one ``lam`` for the whole batch; False: one per sample.

    Raises
    ------
    ValueError
        At construction, if ``alpha`` is not a positive finite number; when
        the Loader is built, if the step comes after ``ToTensor()``.
    """

    def declare_state_and_memory(self, previous_state):
        require_numpy('ImageMixup', previous_state)
        if not previous_state.shape:
            raise ValueError(f"ImageMixup needs array samples, got shape {previous_state.shape}")
        self._is_int = np.dtype(previous_state.dtype).kind in 'iu'
        return previous_state, AllocationQuery(previous_state.shape, np.dtype(previous_state.dtype))

    def generate_code(self):
        my_range = Compiler.get_iterator()
        alpha, same_lambda = self.alpha, self.same_lambda
        is_int = self._is_int

        def image_mixup(images, dst, indices):
            n = images.shape[0]
            lambdas = np.empty(n, dtype=np.float64)
            _fill_lambdas(indices, alpha, same_lambda, lambdas)
            source = images.reshape(n, -1)
            out = dst.reshape(n, -1)
            for k in my_range(n):
                previous = k - 1 if k > 0 else n - 1
                lam = lambdas[k]
                for t in range(source.shape[1]):
                    value = lam * source[k, t] + (1.0 - lam) * source[previous, t]
                    if is_int:
                        value = np.floor(value + 0.5)
                    out[k, t] = value
            return dst
        image_mixup.is_parallel = True
        image_mixup.with_indices = True
        return image_mixup


class LabelMixup(_Mixup):
    """Report each sample's mixup partner and weight: ``[y_i, y_{i-1}, lam_i]``.

    Use with an :class:`ImageMixup` of the same ``alpha`` and
    ``same_lambda`` on the image pipeline: both compute the same ``lam_i``
    from the batch's indices. Turn the result into soft targets with
    :class:`MixupToOneHot`, or compute the loss as
    ``lam * loss(out, y_i) + (1 - lam) * loss(out, y_{i-1})``.

    Input: ``ndarray, shape (B, 1)`` or ``(B,)`` (jit mode, e.g.
    ``IntDecoder``'s int64). Output: ``ndarray[float32], shape (B, 3)``.

    Parameters
    ----------
    alpha : float, > 0
    same_lambda : bool
        As for :class:`ImageMixup`.

    Raises
    ------
    ValueError
        At construction, if ``alpha`` is not a positive finite number; when
        the Loader is built, if the step comes after ``ToTensor()`` or the
        labels are not one number per sample.
    """

    def declare_state_and_memory(self, previous_state):
        require_numpy('LabelMixup', previous_state)
        if tuple(previous_state.shape or ()) not in ((), (1,)):
            raise ValueError(f"LabelMixup needs one label per sample (shape (1,) or ()), "
                             f"got {previous_state.shape}")
        return (previous_state.replace(shape=(3,), dtype=np.dtype(np.float32)),
                AllocationQuery((3,), np.dtype(np.float32)))

    def generate_code(self):
        my_range = Compiler.get_iterator()
        alpha, same_lambda = self.alpha, self.same_lambda

        def label_mixup(labels, dst, indices):
            n = labels.shape[0]
            flat = labels.reshape(n)
            lambdas = np.empty(n, dtype=np.float64)
            _fill_lambdas(indices, alpha, same_lambda, lambdas)
            for k in my_range(n):
                previous = k - 1 if k > 0 else n - 1
                dst[k, 0] = flat[k]
                dst[k, 1] = flat[previous]
                dst[k, 2] = lambdas[k]
            return dst
        label_mixup.is_parallel = True
        label_mixup.with_indices = True
        return label_mixup


class MixupToOneHot(Operation):
    """``[y_i, y_{i-1}, lam_i]`` rows to soft one-hot targets.

    Row ``i`` gets ``lam_i`` at class ``y_i`` plus ``1 - lam_i`` at class
    ``y_{i-1}``, so every row sums to 1; when both are the same class it is
    1 there. (FFCV 1.0 wrote the second value over the first, so such rows
    held ``1 - lam`` and summed to less than 1.)

    Input: ``torch.Tensor, shape (B, 3)``, floating point, as
    :class:`LabelMixup` then ``ToTensor()`` (and ``ToDevice``) give. Output:
    ``torch.Tensor, shape (B, num_classes)``, same dtype and device, a new
    buffer.

    Parameters
    ----------
    num_classes : int, >= 1
        Labels must be in ``0 .. num_classes - 1`` (torch raises an
        IndexError otherwise, on the CPU).

    Raises
    ------
    ValueError
        At construction, if ``num_classes`` is not a positive integer; when
        the Loader is built, if the step is not after ``ToTensor()`` or the
        input is not (B, 3) floating point.
    """

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = positive_int('MixupToOneHot', 'num_classes', num_classes)

    def declare_state_and_memory(self, previous_state):
        if previous_state.jit_mode:
            raise ValueError("MixupToOneHot works on tensors: put ToTensor() before it")
        if tuple(previous_state.shape or ()) != (3,):
            raise ValueError(f"MixupToOneHot needs LabelMixup's (B, 3) rows, got per-sample shape "
                             f"{previous_state.shape}; put LabelMixup before it")
        dtype = previous_state.dtype
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"MixupToOneHot needs floating-point input, got {dtype}")
        return (previous_state.replace(shape=(self.num_classes,)),
                AllocationQuery((self.num_classes,), dtype, previous_state.device))

    def generate_code(self):
        def mixup_to_one_hot(mixed, dst):
            rows = torch.arange(mixed.shape[0], device=mixed.device)
            lam = mixed[:, 2].to(dst.dtype)
            dst.zero_()
            dst.index_put_((rows, mixed[:, 0].long()), lam, accumulate=True)
            dst.index_put_((rows, mixed[:, 1].long()), 1 - lam, accumulate=True)
            return dst
        return mixup_to_one_hot
