"""Shape edits: Squeeze."""
from ..pipeline.operation import Operation


class Squeeze(Operation):
    """Remove size-1 dimensions of a tensor batch, in place (``squeeze_``).

    Parameters
    ----------
    *dims : int
        Batch dimensions to squeeze (e.g. ``Squeeze()`` turns labels of shape
        (B, 1) into (B,)). None given: every size-1 dimension except the batch.
    """

    def __init__(self, *dims):
        super().__init__()
        self.dims = dims

    def generate_code(self):
        dims = self.dims

        def squeeze(inp, dst):
            if dims:
                for d in sorted(dims, reverse=True):
                    inp = inp.squeeze(d)
                return inp
            keep = [inp.shape[0]] + [s for s in inp.shape[1:] if s != 1]
            return inp.reshape(keep)
        return squeeze

    def declare_state_and_memory(self, previous_state):
        shape = list(previous_state.shape)
        if self.dims:
            for d in sorted(self.dims, reverse=True):
                # dims count the batch dimension; the state's shape does not.
                if d >= 1 and d - 1 < len(shape) and shape[d - 1] == 1:
                    shape.pop(d - 1)
        else:
            shape = [s for s in shape if s != 1]
        return previous_state.replace(jit_mode=False, shape=tuple(shape)), None
