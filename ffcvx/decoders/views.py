"""Several crop views of one image field from one decode per sample (multi-view SSL).

Self-supervised recipes (SimCLR, BYOL, ...) read each image two or more
times, each view with its own random crop. Decoding the JPEG once per view
(FFCV-SSL's way) repeats the costliest part of the pipeline. The Loader
instead gives the views' crop decoders to one :class:`ViewsDecoder`, which
per sample

1. draws every view's crop box (and fused flip) exactly as that view's own
   decoder would, from that view's seed stream, so outputs and ``Label*``
   ops do not depend on the sharing;
2. decodes the union of the boxes once, at the finest DCT scale any view
   needs (backends that crop, BKD-017), or the whole image (others, BKD-019;
   raw samples are read in place);
3. resizes each view's box out of that region into the view's own buffer.

Pixels equal a view's own decode up to the rounding of its box to the
union's decoded grid (the region is at one scale for every view).
"""

import numba
import numpy as np
from numba import njit

from .. import status
from ..types import IMAGE_MODES
from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.planning import fingerprint
from ..pipeline.seeds import seed_streams
from .image import ImageDecoder
from .kernels import flip_resize_function, resize_functions

_UINT8 = np.dtype(np.uint8)
_INT64 = np.dtype(np.int64)


def _view_seed(start, count):
    # The seed(s) of one view out of the step's tuple: what its own step
    # would receive (a uint64, or a pair for an op with two seed_values).
    if count == 1:
        @njit(nogil=True)
        def pick(seeds):
            return seeds[start]
    else:
        @njit(nogil=True)
        def pick(seeds):
            return (seeds[start], seeds[start + 1])
    return pick


def _link(draw, pick, k, rest):
    # One view's draw, then the others': a chain of jitted closures, because
    # compiled code cannot loop over functions of different types.
    if rest is None:
        @njit(nogil=True)
        def fill(height, width, index, seeds, boxes):
            boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3], boxes[k, 4] = \
                draw(height, width, index, pick(seeds))
    else:
        @njit(nogil=True)
        def fill(height, width, index, seeds, boxes):
            boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3], boxes[k, 4] = \
                draw(height, width, index, pick(seeds))
            rest(height, width, index, seeds, boxes)
    return fill


@njit(nogil=True)
def _scaled(start, stop, origin, factor, limit):
    # Box edges [start, stop) of the source, in a region decoded from
    # ``origin`` at ``factor`` decoded pixels per source pixel.
    lo = min(int((start - origin) * factor + 0.5), limit - 1)
    hi = min(max(int((stop - origin) * factor + 0.5), lo + 1), limit)
    return lo, hi - lo


class ViewsDecoder(ImageDecoder):
    """The crop decoders of several views of one field, run as one decode step.

    Built by the Loader (not by users) when two or more outputs read one
    RGB image field through crop decoders that :func:`ffcvx.decoders.crop.can_share`. Its
    output is a tuple with one ``ndarray[uint8], shape (B, h_v, w_v, 3)``
    per view; the first continues the first view's pipeline, the others
    start their views' pipelines (``ffcvx.pipeline.graph.ViewBranch``).

    Parameters
    ----------
    views : list of ResizedCropRGBImageDecoder
        The views' decoders, each with its fused flip (``absorb``) if any.
    names : list of str
        The views' output names: a view's unseeded draws follow the stream
        its own decoder would have had (``seed_sources``).
    """

    def __init__(self, views, names):
        super().__init__()
        self.views = list(views)
        self.names = list(names)
        self._views_fingerprint = None

    @property
    def seed_sources(self):
        """``(view decoder, its output name, position 0)``, one stream each (``seeds.seed_streams``)."""
        return [(view, name, 0) for view, name in zip(self.views, self.names)]

    def accept_field(self, field):
        super().accept_field(field)
        for view in self.views:
            view.accept_field(field)

    def accept_globals(self, metadata, memory_read):
        super().accept_globals(metadata, memory_read)
        for view in self.views:
            view.accept_globals(metadata, memory_read)

    def accept_backends(self, select_backend):
        super().accept_backends(select_backend)
        for view in self.views:
            view._backends = self._backends

    def absorb(self, operation):
        """The views absorbed their flips before; nothing more is fused."""
        return False

    def part_states(self):
        """The State of each view's output, in order (after :meth:`declare_state_and_memory`)."""
        return [view.declare_state_and_memory(None)[0] for view in self.views]

    def declare_state_and_memory(self, previous_state):
        # Read the views' parameters now, so that a change of any of them
        # (e.g. progressive resizing of one view) generates code again.
        self._views_fingerprint = tuple(fingerprint(view) for view in self.views)
        declared = [view.declare_state_and_memory(previous_state) for view in self.views]
        return declared[0][0], tuple(query for _, query in declared)

    def declare_shared_memory(self, previous_state):
        threads = numba.config.NUMBA_NUM_THREADS
        return (AllocationQuery((threads, max(1, self._scratch_bytes())), _UINT8),
                AllocationQuery((threads, 2), _INT64),
                AllocationQuery((threads, len(self.views), 5), _INT64),
                AllocationQuery((threads, 2), _INT64))

    def _scratch_layout(self):
        # Per thread: the decoded union (at most the largest image), then the
        # largest scratch any view's resize needs.
        max_h, max_w = self._max_size()
        _, _, resize_scratch = resize_functions(3)
        resize_bytes = max(int(resize_scratch(max_h, max_w, int(v.output_size[0]),
                                              int(v.output_size[1]))) for v in self.views)
        return max_h * max_w * 3, max(resize_bytes, 0)

    def _scratch_bytes(self):
        return sum(self._scratch_layout())

    def _region_sampler(self):
        return self.views[0].crop_sampler()

    def generate_code(self):
        return self._sample_code(self.engine.helpers(self))

    def _sample_code(self, helpers):
        mem_read = self.memory_read
        decode_region, _, record, clear = helpers
        resize = flip_resize_function(3)
        counts = [len(seed_streams(view, name, 0)) for view, name in zip(self.views, self.names)]
        starts = [sum(counts[:k]) for k in range(len(counts))]
        fill = None
        for k in reversed(range(len(self.views))):
            fill = _link(self.views[k].view_draw(), _view_seed(starts[k], counts[k]), k, fill)
        n_views = len(self.views)
        region_bytes, resize_bytes = self._scratch_layout()
        my_range = Compiler.get_iterator()
        thread_id = Compiler.thread_id()
        raw = IMAGE_MODES['raw']
        short_raw = status.DECODER_SHORT_RAW


        def decode(batch_indices, destination, metadata, storage_state, seeds, shared):
            scratch_all, out_hw_all, boxes_all, errors = shared
            clear(errors)
            for k in my_range(batch_indices.shape[0]):
                t = thread_id()
                index = batch_indices[k]
                record_ = metadata[index]
                height = np.int64(record_['height'])
                width = np.int64(record_['width'])
                boxes = boxes_all[t]
                fill(height, width, index, seeds, boxes)
                # The union of the boxes, and the finest scale any view needs.
                top, left, bottom, right, need = height, width, 0, 0, 0.0
                for v in range(n_views):
                    i, j, h, w = boxes[v, 0], boxes[v, 1], boxes[v, 2], boxes[v, 3]
                    top, left = min(top, i), min(left, j)
                    bottom, right = max(bottom, i + h), max(right, j + w)
                    need = max(need, destination[v].shape[1] / h, destination[v].shape[2] / w)
                uh, uw = bottom - top, right - left
                need = min(need, 1.0)
                data = mem_read(record_['data_ptr'], storage_state)
                scratch = scratch_all[t]
                region_ptr = scratch.ctypes.data
                resize_ptr = region_ptr + region_bytes
                rc = 0
                # Where the views' boxes are: origin, pixels per source pixel, extent, row stride.
                oy, ox, fy, fx, lim_h, lim_w = 0, 0, 1.0, 1.0, height, width
                base, row = data.ctypes.data, width * 3
                if record_['mode'] == raw:
                    if data.shape[0] < height * width * 3:
                        rc = short_raw
                else:
                    out_hw = out_hw_all[t]
                    th = min(uh, int(np.ceil(uh * need)))
                    tw = min(uw, int(np.ceil(uw * need)))
                    rc, cropped = decode_region(record_['mode'], data, top, left, uh, uw, height,
                                                width, th, tw, region_ptr, region_bytes, out_hw)
                    base = region_ptr
                    if cropped:
                        lim_h, lim_w, row = out_hw[0], out_hw[1], out_hw[1] * 3
                        oy, ox, fy, fx = top, left, out_hw[0] / uh, out_hw[1] / uw
                for v in range(n_views):
                    if rc != 0:
                        break
                    y, bh = _scaled(boxes[v, 0], boxes[v, 0] + boxes[v, 2], oy, fy, lim_h)
                    x, bw = _scaled(boxes[v, 1], boxes[v, 1] + boxes[v, 3], ox, fx, lim_w)
                    slot = destination[v][k]
                    rc = resize(boxes[v, 4] != 0, base + y * row + x * 3, bh, bw, row,
                                slot.ctypes.data, slot.shape[0], slot.shape[1], resize_ptr,
                                resize_bytes)
                if rc != 0:
                    record(errors, t, k, rc)
            return destination, errors
        decode.is_parallel = True
        decode.with_seed = True
        return decode

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        """The views' images, or the DecodeError of the batch's first failing sample."""
        images, errors = result
        codes = errors[:, 1]
        if codes.any():
            rows = np.flatnonzero(codes)
            row = rows[np.argmin(errors[rows, 0])]
            k, code = int(errors[row, 0]), int(errors[row, 1])
            errors[:] = 0
            raise self._decode_error(int(batch_indices[k]), code, storage_state)
        return images

    def __repr__(self):
        return f"ViewsDecoder({', '.join(type(v).__name__ for v in self.views)})"
