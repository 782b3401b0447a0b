"""Type and device conversions: ToTensor, ToDevice, ToTorchImage, Convert, View."""
import numpy as np
import torch

from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.operation import Operation
from ..pipeline.state import concrete_device


def _torch_dtype(np_dtype):
    return torch.from_numpy(np.empty(0, dtype=np_dtype)).dtype


class ToTensor(Operation):
    """numpy batch -> ``torch.Tensor`` sharing the same memory (no copy).

    Output: same shape and dtype as the input, on the CPU; leaves jit mode.
    A batch that is already a tensor (a batch decoder's output, BKD-042,
    possibly on a GPU) is passed through unchanged.
    """

    def generate_code(self):
        def to_tensor(inp, dst):
            if isinstance(inp, torch.Tensor):
                return inp
            return torch.from_numpy(inp)
        return to_tensor

    def declare_state_and_memory(self, previous_state):
        dtype = previous_state.dtype
        if not isinstance(dtype, torch.dtype):
            dtype = _torch_dtype(dtype)
        return previous_state.replace(jit_mode=False, dtype=dtype), None


class ToDevice(Operation):
    """Copy a tensor batch to ``device``.

    On the CPU this is the identity. On a CUDA device the batch is copied into
    a buffer allocated once on that device; the copy is asynchronous from
    pinned memory and finished before the batch is handed to the training loop.
    A batch already on ``device`` (a batch decoder's output, BKD-042) is
    passed through: no buffer, no copy; the device's work on it is still
    finished before the hand-over.

    Parameters
    ----------
    device : torch.device or str
    non_blocking : bool
    """

    def __init__(self, device, non_blocking=True):
        super().__init__()
        self.device = torch.device(device)
        self.non_blocking = non_blocking
        self._previous_state = None

    def _already_there(self, state):
        # 'cuda' and 'cuda:0' name one device when 0 is the current one.
        return (state is not None
                and concrete_device(state.device) == concrete_device(self.device))

    def generate_code(self):
        if self._already_there(self._previous_state):
            def already_there(inp, dst):
                return inp
            return already_there
        if self.device.type == 'cpu':
            def to_cpu(inp, dst):
                return inp.cpu()
            return to_cpu
        non_blocking = self.non_blocking

        def to_device(inp, dst):
            if inp.dim() == 4 and inp.is_contiguous(memory_format=torch.channels_last):
                dst = dst.contiguous(memory_format=torch.channels_last)
            dst.copy_(inp, non_blocking=non_blocking)
            return dst
        return to_device

    def declare_state_and_memory(self, previous_state):
        # Remembered for generate_code, which the pipeline calls right after.
        self._previous_state = previous_state
        state = previous_state.replace(device=self.device)
        if self.device.type == 'cpu' or self._already_there(previous_state):
            return state, None
        return state, AllocationQuery(previous_state.shape, previous_state.dtype, self.device)

    def finish_batch(self, result, destination, batch_indices):
        if self.device.type == 'cuda':
            # The source slot is reused a few batches later: make sure the copy is done.
            torch.cuda.current_stream(self.device).synchronize()
        return result


class ToTorchImage(Operation):
    """(B, H, W, C) tensor -> (B, C, H, W), as torch image models expect.

    Parameters
    ----------
    channels_last : bool
        True: return a permuted view (memory stays channels-last, which
        convolutions on recent GPUs prefer). False: copy to contiguous NCHW.
    convert_back_int16 : bool
        View int16 input as float16 (NormalizeImage stores float16 as int16).
    """

    def __init__(self, channels_last=True, convert_back_int16=True):
        super().__init__()
        self.channels_last = channels_last
        self.convert_back_int16 = convert_back_int16

    def generate_code(self):
        channels_last = self.channels_last
        convert_back = self.convert_back_int16

        def to_torch_image(inp, dst):
            if convert_back and inp.dtype == torch.int16:
                inp = inp.view(torch.float16)
            out = inp.permute(0, 3, 1, 2)
            if not channels_last:
                dst.copy_(out)
                return dst
            return out
        return to_torch_image

    def declare_state_and_memory(self, previous_state):
        if previous_state.jit_mode:
            raise ValueError("ToTorchImage expects a torch tensor: put ToTensor() before it")
        h, w, c = previous_state.shape
        dtype = previous_state.dtype
        if self.convert_back_int16 and dtype == torch.int16:
            dtype = torch.float16
        state = previous_state.replace(shape=(c, h, w), dtype=dtype)
        if self.channels_last:
            return state, None
        return state, AllocationQuery((c, h, w), dtype, previous_state.device)


class _NewDtype(Operation):
    """What Convert and View share: a target element type, and an output of that type out of jit mode."""

    def __init__(self, target_dtype):
        super().__init__()
        self.target_dtype = target_dtype

    def declare_state_and_memory(self, previous_state):
        return previous_state.replace(jit_mode=False, dtype=self.target_dtype), None


class Convert(_NewDtype):
    """Change the element type: ``tensor.type(target_dtype)`` (or ``ndarray.astype``).

    Parameters
    ----------
    target_dtype : torch.dtype or numpy dtype
    """

    def generate_code(self):
        target = self.target_dtype

        def convert(inp, dst):
            if isinstance(inp, torch.Tensor):
                return inp.type(target)
            return inp.astype(target)
        return convert


class View(_NewDtype):
    """Reinterpret the bytes of a tensor as ``target_dtype`` (``tensor.view``)."""

    def generate_code(self):
        target = self.target_dtype

        def view(inp, dst):
            return inp.view(target)
        return view
