"""ReplaceLabel: give chosen samples another label (label-noise / poisoning experiments)."""
import numbers

import numpy as np

from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ._args import sample_indices
from ._checks import require_numpy


class ReplaceLabel(Operation):
    """Set the label of the samples whose dataset index is in ``indices`` to ``new_label``.

    The indices are the samples' numbers in the dataset file, as the Loader
    reads them (not positions in the batch); other labels are untouched.

    Input and output: ``ndarray, shape (B, 1)`` or ``(B,)`` (jit mode, e.g.
    ``IntDecoder``'s int64), the same buffer.

    Parameters
    ----------
    indices : sequence of int, >= 0
        Dataset indices of the samples to relabel.
    new_label : int
        The label they get; must fit the labels' dtype.

    Raises
    ------
    ValueError
        At construction, for malformed indices or a non-integer label; when
        the Loader is built, if the step comes after ``ToTensor()``, the
        labels are not one number per sample, or ``new_label`` does not fit
        their dtype.
    """

    def __init__(self, indices, new_label):
        super().__init__()
        self.indices = sample_indices('ReplaceLabel', indices)
        if isinstance(new_label, (bool, np.bool_)) or not isinstance(new_label, numbers.Integral):
            raise ValueError(f"ReplaceLabel: new_label must be an integer, got {new_label!r}")
        self.new_label = int(new_label)
        self._label = None

    def declare_state_and_memory(self, previous_state):
        require_numpy('ReplaceLabel', previous_state)
        shape = tuple(previous_state.shape or ())
        if shape not in ((), (1,)):
            raise ValueError(f"ReplaceLabel needs one label per sample (shape (1,) or ()), got {shape}")
        dtype = np.dtype(previous_state.dtype)
        if dtype.kind in 'iu':
            info = np.iinfo(dtype)
            if not info.min <= self.new_label <= info.max:
                raise ValueError(f"ReplaceLabel: new_label {self.new_label} does not fit {dtype} labels")
        elif dtype.kind != 'f':
            raise ValueError(f"ReplaceLabel needs integer or float labels, got {dtype}")
        self._label = dtype.type(self.new_label)
        return previous_state, None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        targets = self.indices
        label = self._label

        def replace_label(labels, dst, indices):
            flat = labels.reshape(labels.shape[0])
            for k in my_range(flat.shape[0]):
                position = np.searchsorted(targets, indices[k])
                if position < targets.shape[0] and targets[position] == indices[k]:
                    flat[k] = label
            return labels
        replace_label.is_parallel = True
        replace_label.with_indices = True
        return replace_label
