"""The two shapes of a random per-sample step, written once (internal to the transforms).

:class:`PerImageOp`: a random image op that seeds each sample's draws
(``ffcvx.pipeline.seeds``) and changes the image in place.
:class:`LabelOp`: FFCV-SSL's ``Label*`` ops, which copy each sample's labels
and append the numbers their image op drew for it.

A subclass supplies a compiled ``step`` and the tuple of its constant
arguments; the base owns the State rule, the declaration and the loop.
Steps are compiled with ``inline='always'`` so that their arithmetic is
compiled into the loop, with the loop's options, as when each op wrote
its own loop (the bytes of the results depend on it).
"""
import numpy as np

from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Operation
from ..pipeline.seeds import seed_sample
from ._checks import require_images, require_numpy


class PerImageOp(Operation):
    """Base of the in-place random image ops: seed each sample, then ``step`` its image.

    Input and output: ``ndarray, shape (B, H, W, C)`` (jit mode), the same
    buffer. Subclasses set ``image_channels`` and ``image_dtype`` (None: any) for the
    input check, may override :meth:`_accept_images` (called with the
    images' ``(H, W, C)`` and dtype when the Loader is built), and write
    :meth:`_image_step`. With ``needs_scratch`` the step also gets this
    thread's row of :meth:`declare_shared_memory`'s buffer.
    """

    image_channels = None
    image_dtype = None
    needs_scratch = False

    def _accept_images(self, shape, dtype):
        """Check or adapt to the images the op will get (default: nothing more)."""

    def _image_step(self):
        """``(step, args)``: ``step(image, args[, scratch])`` compiled, draws then changes one image."""
        raise NotImplementedError

    def declare_state_and_memory(self, previous_state):
        shape = require_images(type(self).__name__, previous_state, channels=self.image_channels,
                               dtype=self.image_dtype)
        self._accept_images(shape, np.dtype(previous_state.dtype))
        return previous_state, None

    def generate_code(self):
        my_range = Compiler.get_iterator()
        thread_id = Compiler.thread_id()
        step, args = self._image_step()
        if self.needs_scratch:
            def per_image(images, dst, indices, seed, shared):
                for k in my_range(images.shape[0]):
                    seed_sample(seed, indices[k])
                    step(images[k], args, shared[thread_id()])
                return images
        else:
            def per_image(images, dst, indices, seed):
                for k in my_range(images.shape[0]):
                    seed_sample(seed, indices[k])
                    step(images[k], args)
                return images
        per_image.is_parallel = True
        per_image.with_seed = True
        return per_image


class LabelOp(Operation):
    """Base of the ``Label*`` ops: copy each sample's labels, then append ``columns`` float32 values.

    Input: ``ndarray, shape (B,)``, ``(B, 1)`` (``IntDecoder``) or ``(B, k)``
    (another label op), numbers, jit mode. Output: ``ndarray[float32],
    shape (B, k + columns)``, the labels first, as FFCV-SSL lays them out.
    Subclasses set ``columns`` (an int, or an instance attribute) and
    ``seed_kind`` (their image op's, so that with the same ``seed`` both
    draw the same numbers), and write :meth:`_label_step`.

    Raises
    ------
    ValueError
        When the Loader is built, for input after ``ToTensor()`` or that is
        not one row of numbers per sample.
    """

    columns = 0

    def _label_step(self):
        """``(draw, args)``: ``draw(args, out)`` compiled, writes one sample's ``columns`` values."""
        raise NotImplementedError

    def declare_state_and_memory(self, previous_state):
        name = type(self).__name__
        require_numpy(name, previous_state)
        shape = previous_state.shape
        if shape is None or len(shape) > 1 or np.dtype(previous_state.dtype).kind not in 'iufb':
            raise ValueError(f"{name} appends columns to labels of shape () or (k,) per sample "
                             f"(put it after IntDecoder() or another label op), got shape "
                             f"{shape}, dtype {previous_state.dtype}")
        out = ((int(shape[0]) if shape else 1) + self.columns,)
        return (previous_state.replace(shape=out, dtype=np.dtype(np.float32)),
                AllocationQuery(out, np.dtype(np.float32)))

    def generate_code(self):
        my_range = Compiler.get_iterator()
        columns = self.columns
        draw, args = self._label_step()

        def label_columns(labels, dst, indices, seed):
            # the labels' width from the output's, so that the code needs no declaration first
            n = labels.shape[0]
            width = dst.shape[1] - columns
            flat = labels.reshape(n, width)
            for k in my_range(n):
                for i in range(width):
                    dst[k, i] = flat[k, i]
                seed_sample(seed, indices[k])
                draw(args, dst[k, width:])
            return dst
        label_columns.is_parallel = True
        label_columns.with_seed = True
        return label_columns
