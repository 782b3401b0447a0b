"""The per-batch engine: one ``decode_batch`` call per batch on a batch backend (BKD-042).

A backend of kind ``batch`` (e.g. nvjpeg), used only when the user names it,
decodes a whole batch of JPEGs on its device. The decoder's step is then
plain Python: small jitted helpers copy the samples' bytes into one reused
host buffer and draw the crops (and the flips of an absorbed
``RandomHorizontalFlip``), and one ``backend.decode_batch`` call returns the
``(B, H, W, 3)`` uint8 tensor on the backend's device. The State is
``(jit_mode=False, device, (H, W, 3), torch.uint8)``; no buffer is declared,
the backend allocates the output.

Only JPEG-only RGB fields with an RGB output: anything else raises
``BackendNotFoundError`` when the Loader is built (:func:`batch_backend_for`).
"""
from contextlib import nullcontext

import numpy as np
import torch
from numba import njit

from .. import status
from ..errors import BackendNotFoundError, DecodeError
from ..types import IMAGE_MODES
from ..pipeline.state import State, concrete_device
from .headers import header_matches

_MODE_NAMES = {v: k for k, v in IMAGE_MODES.items()}


def batch_backend_for(decoder, modes):
    """The chosen backend of kind ``batch``, if any, after checking that it suits the field.

    Parameters
    ----------
    decoder : ImageDecoder
        After its backends were chosen (``decoder._backends``).
    modes : set of int
        Storage modes present in the field (FMT-036).

    Returns
    -------
    backend or None

    Raises
    ------
    BackendNotFoundError
        If a batch backend was named but this field cannot be decoded by it
        alone: samples that are not JPEGs (PNG or raw; mixing per-sample CPU
        decodes into a device batch is not implemented), a one-channel
        field or output, or a backend without ``decode_batch`` (BKD-042).
    """
    chosen = [b for b in decoder._backends.values() if getattr(b, 'kind', None) == 'batch']
    if not chosen:
        return None
    backend = chosen[0]
    problems = []
    others = sorted(_MODE_NAMES[m] for m in modes if m != IMAGE_MODES['jpg'])
    if others:
        problems.append(f"the field also stores {' and '.join(others)} samples; batch backends "
                        f"need a JPEG-only field (write it with write_mode='jpg')")
    if decoder._in_channels() != 3 or decoder._out_channels() != 3:
        problems.append("the field or the requested output is not 3-channel RGB")
    if not callable(getattr(backend, 'decode_batch', None)):
        problems.append("the backend has no decode_batch method")
    if problems:
        raise BackendNotFoundError(
            f"decoder backend {backend.name!r} is of kind 'batch': batch decoding is not "
            f"implemented for this {type(decoder).__name__} here: {'; '.join(problems)}. "
            f"Use a per-sample backend (backend=None or e.g. 'turbojpeg') for this Loader "
            f"(spec/backends.md BKD-042)")
    return backend


def batch_helpers(mem_read, draw_crop, flip_prob):
    """The two jitted steps of the batch path that need compiled code.

    ``mem_read`` (the memory strategy's reader) and ``draw_crop`` (a
    decoder's ``_seeded_region_sampler()``) are Numba functions, callable only from
    compiled code, so the gathering of bytes and the drawing of crops happen
    here; everything else on the batch path is plain Python.

    Returns
    -------
    gather : ``(batch_indices, metadata, storage_state, buffer, offsets) -> int``
        Copies sample ``k``'s stored bytes to ``buffer[offsets[k]:offsets[k + 1]]``
        (``buffer`` uint8, ``offsets`` int64 of length ``B + 1``) and returns
        the bytes needed; when that exceeds ``len(buffer)`` nothing past the
        end is written and the caller grows the buffer and calls again.
        ``-1 - k`` instead when sample ``k``'s header size differs from its
        record (BKD-075): nothing of the batch is decoded then.
    plan : ``(batch_indices, metadata, crops, flips, seed) -> None``
        Fills ``crops`` (int64, ``(B, 4)``, ``(y, x, h, w)`` pixels) from the
        sampler and ``flips`` (bool, ``(B,)``) with probability ``flip_prob``,
        drawing per sample from ``seed`` (``ffcvx.pipeline.seeds``).
    """
    @njit(nogil=True)
    def gather(batch_indices, metadata, storage_state, buffer, offsets):
        total = 0
        capacity = buffer.shape[0]
        for k in range(batch_indices.shape[0]):
            record = metadata[batch_indices[k]]
            data = mem_read(record['data_ptr'], storage_state)
            if not header_matches(data, np.int64(record['height']), np.int64(record['width'])):
                return -1 - k
            n = data.shape[0]
            offsets[k] = total
            if total + n <= capacity:
                buffer[total:total + n] = data
            total += n
        offsets[batch_indices.shape[0]] = total
        return total

    @njit(nogil=True)
    def plan(batch_indices, metadata, crops, flips, seed):
        for k in range(batch_indices.shape[0]):
            record = metadata[batch_indices[k]]
            i, j, h, w = draw_crop(seed, batch_indices[k], np.int64(record['height']),
                                   np.int64(record['width']))
            crops[k, 0] = i
            crops[k, 1] = j
            crops[k, 2] = h
            crops[k, 3] = w
            flips[k] = flip_prob > 0 and np.random.rand() < flip_prob
    return gather, plan


class BatchEngine:
    """The per-batch engine of an image decoder on a backend of kind ``batch`` (BKD-042).

    Parameters
    ----------
    backend : batch backend
        With ``decode_batch(sources, crops, output_size, flips, device)``.
    """

    def __init__(self, backend):
        self.batch_backend = backend
        # Resolved now, in the thread that builds the Loader (see concrete_device).
        self.device = concrete_device(backend.device)

    def declare(self, decoder, height, width, channels):
        """The batch path's output: a uint8 tensor ``(height, width, 3)`` on the device; no buffer."""
        return State(False, self.device, (int(height), int(width), 3), torch.uint8), None

    def shared_memory(self, decoder):
        return None

    def generate_code(self, decoder):
        """The plain-Python decode step (BKD-042).

        Called as ``code(batch_indices, None, metadata, storage_state, seed)``;
        returns ``torch.Tensor`` of ``torch.uint8``, shape ``(B, H, W, 3)``,
        on the backend's device, which the backend allocates. ``(H, W)`` is
        ``decoder.output_size`` and the flip probability that of the absorbed
        flip, both read now. On the host only the gathered bytes (one
        buffer, reused and grown to the largest batch seen) and the small
        crop, flip and offset arrays are kept.

        Raises (in the training loop)
        -----------------------------
        DecodeError
            A sample cannot be decoded: the message names the dataset sample
            (``batch_indices[position]``) and carries the backend's message.
        """
        backend, device = self.batch_backend, self.device
        # The pipeline runs in the Loader's thread, whose current CUDA device
        # is not the user's: decode under the resolved one.
        on_device = (lambda: torch.cuda.device(device)) if device.type == 'cuda' else nullcontext
        flip_prob = decoder.flip_prob
        gather, plan = batch_helpers(decoder.memory_read, decoder._seeded_region_sampler(),
                                     flip_prob)
        output_size = (int(decoder.output_size[0]), int(decoder.output_size[1]))
        host = {'bytes': np.empty(0, np.uint8), 'offsets': np.empty(1, np.int64),
                'crops': np.empty((0, 4), np.int64), 'flips': np.empty(0, np.bool_)}

        def decode(batch_indices, destination, metadata, storage_state, seed):
            count = batch_indices.shape[0]
            if host['flips'].shape[0] < count:
                host['offsets'] = np.empty(count + 1, np.int64)
                host['crops'] = np.empty((count, 4), np.int64)
                host['flips'] = np.empty(count, np.bool_)
            offsets = host['offsets']
            needed = gather(batch_indices, metadata, storage_state, host['bytes'], offsets)
            if needed < 0:
                raise decoder._decode_error(int(batch_indices[-1 - needed]),
                                            status.DECODER_HEADER_MISMATCH, storage_state)
            if needed > host['bytes'].shape[0]:
                # Grown with headroom so later batches of similar size fit.
                host['bytes'] = np.empty(needed + needed // 4, np.uint8)
                gather(batch_indices, metadata, storage_state, host['bytes'], offsets)
            crops, flips = host['crops'][:count], host['flips'][:count]
            plan(batch_indices, metadata, crops, flips, seed)
            data = host['bytes']
            # Views only: decode_batch copies each sample before it returns,
            # so the buffer may be refilled by the next batch.
            sources = [data[offsets[k]:offsets[k + 1]] for k in range(count)]
            try:
                with on_device():
                    return backend.decode_batch(sources, crops=crops, output_size=output_size,
                                                flips=flips if flip_prob > 0 else None, device=device)
            except DecodeError as exc:
                position = getattr(exc, 'position', None)
                if position is None or not 0 <= int(position) < count:
                    raise
                sample = int(batch_indices[int(position)])
                raise DecodeError(f"{decoder._where(sample)}: {backend.name} failed: {exc}") from exc
        decode.with_seed = True
        return decode

    def finish_batch(self, decoder, result, destination, batch_indices, storage_state):
        # decode_batch raised its errors itself, naming the sample.
        return result
