"""ModuleWrapper: run a ``torch.nn.Module`` (or any callable on tensors) as a step."""
from ..pipeline.operation import Operation


class ModuleWrapper(Operation):
    """Apply ``module(batch)`` to a tensor batch, in the loader thread.

    Torch code is not compiled with Numba; use it for experiments or GPU
    augmentations. The output shape is assumed to equal the input's.
    """

    def __init__(self, module):
        super().__init__()
        self.module = module

    def generate_code(self):
        module = self.module

        def apply(inp, dst):
            return module(inp)
        return apply

    def declare_state_and_memory(self, previous_state):
        if previous_state.jit_mode:
            raise ValueError("ModuleWrapper works on tensors: put ToTensor() before it")
        return previous_state, None
