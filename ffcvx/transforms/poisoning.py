"""Poison: blend a fixed mask into chosen samples (data-poisoning experiments)."""
import numpy as np

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ._args import range_pair, sample_indices
from ._checks import require_numpy


class Poison(Operation):
    """Blend ``mask`` into the samples whose dataset index is in ``indices``, in place.

    For each such sample, ``x * (1 - alpha) + mask * alpha`` is computed in
    float32 per element, clipped to ``clamp`` and stored back in the input's
    dtype, rounded to the nearest integer for integer dtypes (FFCV 1.0
    truncated toward zero; the difference is below one level). Other samples
    are untouched. The indices are the samples' numbers in the dataset file,
    as the Loader reads them (not positions in the batch).

    Input and output: ``ndarray, shape (B, *S)`` (jit mode, any numeric
    dtype; images are ``S = (H, W, C)`` uint8), the same buffer.

    Parameters
    ----------
    mask : array_like, broadcastable to S
        What is blended in, in the samples' units (0..255 for uint8 images).
    alpha : float or array_like, values in [0, 1]
        Opacity of the mask: 0 keeps the sample, 1 replaces it by the mask.
        Broadcastable to S, or of shape ``(H, W)`` for images ``(H, W, C)``
        (FFCV's form: one opacity per pixel, the same for every channel).
    indices : sequence of int, >= 0
        Dataset indices of the samples to poison.
    clamp : (float, float), default (0, 255)
        Range the result is clipped to, ``low <= high`` (for integer dtypes
        also to the dtype's range).

    Raises
    ------
    ValueError
        At construction, for a non-numeric mask, alpha outside [0, 1],
        malformed indices or clamp; when the Loader is built, if the step
        comes after ``ToTensor()`` or mask / alpha do not broadcast to the
        sample shape.
    """

    def __init__(self, mask, alpha, indices, clamp=(0, 255)):
        super().__init__()
        try:
            self.mask = np.asarray(mask, dtype=np.float32)
            self.alpha = np.asarray(alpha, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError("Poison: mask and alpha must be numeric arrays (or numbers)") from None
        if not np.all(np.isfinite(self.mask)):
            raise ValueError("Poison: mask must be finite")
        if self.alpha.size == 0 or not np.all((self.alpha >= 0) & (self.alpha <= 1)):
            raise ValueError(f"Poison: alpha must be in [0, 1], got {alpha!r}")
        self.indices = sample_indices('Poison', indices)
        self.clamp = range_pair('Poison', 'clamp', clamp, finite=False)
        self._mask = self._alpha = None

    def declare_state_and_memory(self, previous_state):
        require_numpy('Poison', previous_state)
        shape = tuple(previous_state.shape or ())
        alpha = self.alpha
        if len(shape) == 3 and alpha.shape == shape[:2]:
            alpha = alpha[:, :, None]  # per pixel, every channel (FFCV's (H, W) form)
        try:
            mask = np.broadcast_to(self.mask, shape)
            alpha = np.broadcast_to(alpha, shape)
        except ValueError:
            raise ValueError(f"Poison: mask {self.mask.shape} and alpha {self.alpha.shape} must "
                             f"broadcast to the sample shape {shape}") from None
        self._mask = np.ascontiguousarray(mask, dtype=np.float32).reshape(-1)
        self._alpha = np.ascontiguousarray(alpha, dtype=np.float32).reshape(-1)
        dtype = np.dtype(previous_state.dtype)
        self._is_int = dtype.kind in 'iu'
        self._bounds = self.clamp
        if self._is_int:
            # Never store a value the dtype cannot hold (it would wrap around).
            info = np.iinfo(dtype)
            self._bounds = (max(self.clamp[0], info.min), min(self.clamp[1], info.max))
        return previous_state, None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        targets = self.indices
        mask, alpha = self._mask, self._alpha
        lo, hi = np.float32(self._bounds[0]), np.float32(self._bounds[1])
        is_int = self._is_int
        one = np.float32(1)
        half = np.float32(0.5)

        def poison(images, dst, indices):
            n = images.shape[0]
            flat = images.reshape(n, -1)
            for k in my_range(n):
                position = np.searchsorted(targets, indices[k])
                if position < targets.shape[0] and targets[position] == indices[k]:
                    row = flat[k]
                    for t in range(row.shape[0]):
                        value = np.float32(row[t]) * (one - alpha[t]) + mask[t] * alpha[t]
                        value = min(max(value, lo), hi)
                        if is_int:
                            value = np.floor(value + half)
                        row[t] = value
            return images
        poison.is_parallel = True
        poison.with_indices = True
        return poison
