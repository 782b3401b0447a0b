"""The image decoders' shared base: channels, backends per stored format, the engine seam.

An image decoder reads an RGBImageField or GrayscaleImageField (FMT-036,
FMT-037, FMT-083). What differs between decoders is the region they read
(the whole image, a random box, the centre box) and whether they resize;
what they share lives here:

* the output channels (``channels``) and the R/B order of PNG samples
  (``png_channel_order``, FMT-086);
* one decoder backend per stored format, chosen when the Loader is built
  (:meth:`ImageDecoder.accept_backends`, BKD-052, BKD-053), and the compiled
  code's view of each (:meth:`ImageDecoder._decode_function`);
* the *engine*, chosen once in ``accept_backends``: the per-sample compiled
  engine (:class:`~ffcvx.decoders.sample_engine.SampleEngine`) for
  ``native`` and ``python`` backends, or the per-batch engine
  (:class:`~ffcvx.decoders.batch_engine.BatchEngine`) for a backend of kind
  ``batch`` (BKD-042). Every stage method (``declare_shared_memory``,
  ``generate_code``, ``finish_batch``, and the subclasses'
  ``declare_state_and_memory``) delegates to it;
* the error messages, which name the dataset sample and, through
  ``ffcvx.status.describe``, the part that failed (BKD-070).
"""
import ctypes
from abc import abstractmethod

import numpy as np
from numba import njit

from .. import status
from ..backend_api import DECODE_REGION_PROTO, GRAY_FUNCTION
from ..errors import DecodeError
from ..types import IMAGE_MODES
from ..pipeline.operation import Decoder
from ..pipeline.seeds import seed_sample
from ..pipeline.step_code import StepCode
from ..registry import Registry, decoder_for_format
from .batch_engine import batch_backend_for, BatchEngine
from .headers import header_size
from .sample_engine import SampleEngine

#: Name of each storage mode byte (FMT-036).
MODE_NAMES = {v: k for k, v in IMAGE_MODES.items()}
#: Backend format of each compressed storage mode (FMT-036, FMT-037).
FORMAT_OF_MODE = {IMAGE_MODES['jpg']: 'jpeg', IMAGE_MODES['png']: 'png'}
#: Values of the decoders' ``png_channel_order`` (FMT-086).
PNG_CHANNEL_ORDERS = ('rgb', 'bgr')


@DECODE_REGION_PROTO
def _no_backend(src, src_len, cy, cx, ch, cw, th, tw, out, cap, out_hw):
    # Stands in for a storage mode with no backend; accept_backends chooses a
    # backend for every mode the metadata holds, so it is never reached.
    return status.DECODER_NO_BACKEND


_NO_BACKEND_FN = DECODE_REGION_PROTO(ctypes.cast(_no_backend, ctypes.c_void_p).value)


class ImageDecoder(Decoder):
    """Base of the image decoders (not used directly).

    Parameters
    ----------
    channels : {None, 1, 3}
        Output channels. None: the field's own (3 for RGB, 1 for gray). 3 on a
        gray field repeats the channel; 1 on an RGB field is refused.
    png_channel_order : {'rgb', 'bgr'}
        'bgr' swaps R and B of every PNG (mode 2) sample after decoding, to
        read the R/B-swapped PNGs written by FFCV's "erow" fork (FMT-086).

    Raises
    ------
    ValueError
        For a bad ``channels`` or ``png_channel_order``.
    """

    def __init__(self, channels=None, png_channel_order='rgb'):
        super().__init__()
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be None, 1 or 3, got {channels!r}")
        if png_channel_order not in PNG_CHANNEL_ORDERS:
            raise ValueError(f"png_channel_order must be one of {PNG_CHANNEL_ORDERS}, "
                             f"got {png_channel_order!r}")
        self.channels = channels
        self.png_channel_order = png_channel_order
        self._backends = {}
        #: The backend of kind ``batch`` decoding this field, or None (per-sample engine).
        self._batch_backend = None
        #: Operations fused into this decoder (``absorb``), which it now performs.
        self.absorbed = []
        self._engine = None

    # -- channels ------------------------------------------------------------

    def _in_channels(self):
        # Channels of a stored sample: 1 for GrayscaleImageField, else 3.
        return int(getattr(self.field, 'channels', 3)) if self.field is not None else 3

    def _out_channels(self):
        in_c = self._in_channels()
        out_c = in_c if self.channels is None else self.channels
        if in_c == 3 and out_c == 1:
            raise ValueError(f"{type(self).__name__}(channels=1) needs a GrayscaleImageField; "
                             f"this field stores RGB images")
        return out_c

    def _one_channel(self):
        # A gray field decoded to one channel: the case that never needs RGB.
        return self._in_channels() == 1 and self._out_channels() == 1

    def _decodes_rgb(self):
        # Whether some chosen backend decodes this field's samples to RGB:
        # always for an RGB output, and for one channel unless every backend
        # in use has decode_region_gray (BKD-025, BKD-027).
        return not self._one_channel() or not all(
            getattr(b, 'supports_gray', False) is True for b in self._backends.values())

    def _max_size(self):
        # (height, width) bounding every image of the field, pixels.
        if len(self.metadata) == 0:
            return 1, 1
        return int(self.metadata['height'].max()), int(self.metadata['width'].max())

    @property
    def flip_prob(self):
        """Probability of mirroring the output: that of an absorbed flip, read now (else 0.0)."""
        for op in self.absorbed:
            probability = op.horizontal_flip_probability
            if probability is None:
                # Fused when the Loader was built, made unfusable since (a
                # seed set between epochs): it can no longer draw its own way.
                raise ValueError(f"{type(op).__name__} was fused into {type(self).__name__} when "
                                 f"the Loader was built and can no longer be (its seed was set "
                                 f"since); give it its seed before building the Loader")
            return float(probability)
        return 0.0

    # -- set-up --------------------------------------------------------------

    def accept_backends(self, select_backend):
        """Choose a backend for each format the field stores, and the engine (BKD-052, BKD-053).

        Called once by the Loader with ``select_backend(format) -> backend``.
        Only formats present in the metadata need a backend, so a JPEG-only
        field never asks for a PNG decoder. A backend of kind ``batch``
        selects the per-batch engine, anything else the per-sample one.

        Raises
        ------
        BackendNotFoundError
            From ``select_backend``, when no usable backend decodes a stored
            format; or when a batch backend cannot decode this field (BKD-042).
        DecodeError
            If a sample has an unknown mode byte (FMT-036), or a gray sample a
            zero side (FMT-082, FMT-083).
        """
        modes = set(int(m) for m in np.unique(self.metadata['mode'])) if len(self.metadata) else set()
        unknown = modes - set(MODE_NAMES)
        if unknown:
            raise DecodeError(f"field has samples with unknown image mode(s) {sorted(unknown)} (FMT-036)")
        if self._in_channels() != 3 and len(self.metadata):
            # Readers check RGB records at open time (FMT-082); a gray field is
            # a custom one to them (FMT-083), so its records are checked here.
            if (self.metadata['width'] == 0).any() or (self.metadata['height'] == 0).any():
                raise DecodeError("field has images of width or height 0 (FMT-083, FMT-082)")
        self._backends = {fmt: select_backend(fmt)
                          for mode, fmt in FORMAT_OF_MODE.items() if mode in modes}
        self._batch_backend = batch_backend_for(self, modes)
        self._engine = (BatchEngine(self._batch_backend) if self._batch_backend is not None
                        else SampleEngine())

    @property
    def engine(self):
        """The engine chosen by :meth:`accept_backends` (the per-sample one before it runs)."""
        if self._engine is None:
            self._engine = SampleEngine()
        return self._engine

    def _decode_function(self, fmt):
        """The compiled decoders' view of the backend chosen for ``fmt``.

        Returns
        -------
        function : ctypes function of ``DECODE_REGION_PROTO``
            ``decode_region_gray`` for a one-channel field and output when the
            backend ``supports_gray`` (BKD-027), else ``decode_region``; a
            stub returning ``DECODER_NO_BACKEND`` when no backend was chosen.
        crops : bool
            The backend's ``supports_crop``.
        gray : bool
            Whether ``function`` writes one byte per pixel.
        """
        # The ctypes object only wraps the address; the backend object, kept
        # in self._backends for the decoder's lifetime, owns the function
        # (for a python backend, the callback thunk, BKD-041).
        backend = self._backends.get(fmt)
        if backend is None:
            return _NO_BACKEND_FN, False, False
        gray = self._one_channel() and getattr(backend, 'supports_gray', False) is True
        name = GRAY_FUNCTION if gray else 'decode_region'
        return DECODE_REGION_PROTO(backend.function_address(name)), bool(backend.supports_crop), gray

    # -- stages: each delegates to the engine --------------------------------

    def declare_shared_memory(self, previous_state):
        return self.engine.shared_memory(self)

    def generate_code(self):
        """The engine's decode step, as a StepCode FFCV code can also call with four arguments (PIP-013).

        Called before :meth:`accept_backends` (FFCV's plain use: only
        ``accept_globals``), the backends are chosen first, in the default
        order (BKD-052).
        """
        if self._engine is None:
            registry = Registry('ffcvx.decoders')
            self.accept_backends(lambda fmt: decoder_for_format(registry, fmt))
        code = StepCode.of(self.engine.generate_code(self))
        return StepCode(code.function, code.with_indices, code.with_seed, code.is_parallel, self)

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        return self.engine.finish_batch(self, result, destination, batch_indices, storage_state)

    # -- what the engines ask of a decoder (subclasses) ----------------------

    @abstractmethod
    def _scratch_bytes(self):
        """Bytes of per-thread scratch memory the per-sample code needs."""

    @abstractmethod
    def _region_sampler(self):
        """A jitted ``(height, width) -> (i, j, h, w)``: the box of each image to decode, pixels."""

    def _seeded_region_sampler(self):
        """A jitted ``(seed, index, height, width) -> (i, j, h, w)``: seed the draws of sample ``index``, then its box.

        ``seed`` is what the step receives (``code.with_seed``): a ``uint64``,
        or a tuple of them for an Operation with ``seed_values``. The default
        seeds the thread's generator for the sample
        (``ffcvx.pipeline.seeds.seed_sample``) and calls
        :meth:`_region_sampler`; later draws of the sample (an absorbed flip)
        continue from that generator. Override to draw from several streams.
        """
        sample = self._region_sampler()

        @njit(nogil=True)
        def draw(seed, index, height, width):
            seed_sample(seed, index)
            return sample(height, width)
        return draw

    @abstractmethod
    def _sample_code(self, helpers):
        """The per-sample engine's decode step, built on ``helpers`` (a ``SampleHelpers``)."""

    # -- errors --------------------------------------------------------------

    def memory_claim(self):
        """Which samples size this decoder's buffers, for errors about them (``buffer_check``).

        Returns
        -------
        str or None
            ``"sample 2 of the field claims 65500x65500 pixels (its record; data
            at byte ...), the largest height and width, ..."``; None for an empty field.
        """
        if len(self.metadata) == 0:
            return None
        tallest = int(np.argmax(self.metadata['height']))
        widest = int(np.argmax(self.metadata['width']))
        height, width = self._max_size()
        which = (f"{self._where(tallest)} has the largest height and width" if tallest == widest
                 else f"{self._where(tallest)} has the largest height, {self._where(widest)} "
                      f"the largest width")
        return (f"{which} of the field: its record claims it, and each buffer holds "
                f"{width}x{height} pixels x {self._out_channels()} channels = "
                f"{height * width * self._out_channels()} bytes per image (or per thread)")

    def _slot_needs(self, record, slot_bytes):
        # What a slot too small for the sample of metadata ``record`` lacks.
        need = int(record['height']) * int(record['width']) * self._out_channels()
        return (f"the image needs {need} bytes, its slot holds {slot_bytes}; "
                f"{type(self).__name__}.declare_state_and_memory must declare a buffer of at "
                f"least (max height, max width, {self._out_channels()}) uint8 per sample")

    def _where(self, sample):
        # How error messages name a dataset sample.
        record = self.metadata[sample]
        mode = MODE_NAMES.get(int(record['mode']), f"unknown ({int(record['mode'])})")
        return (f"sample {sample} ({mode}, {int(record['width'])}x{int(record['height'])} pixels, "
                f"data at byte {int(record['data_ptr'])})")

    def _decode_error(self, sample, code, storage_state=None, slot_bytes=None):
        """The DecodeError of ``sample`` for status ``code`` of the table (BKD-070).

        Parameters
        ----------
        sample : int
            Dataset index.
        code : int
            A non-zero code of ``ffcvx.status``.
        storage_state : tuple, optional
            To read the sample's bytes again and ask the backend, in Python,
            for its own message (BKD-030).
        slot_bytes : int, optional
            Size of the sample's output slot, for ``DECODER_BUFFER_TOO_SMALL``.
        """
        record = self.metadata[sample]
        where = self._where(sample)
        described = status.describe(code)
        source = status.source_of(code)
        if code == status.DECODER_BUFFER_TOO_SMALL:
            return DecodeError(f"{where}: {described}: {self._slot_needs(record, slot_bytes)}")
        if code == status.DECODER_SHORT_RAW:
            return DecodeError(f"{where}: {described} ({self._in_channels()} channels, FMT-083)")
        if code == status.RESIZE_SCRATCH_TOO_SMALL:
            # The scratch is declared for output_size; only a buffer declared
            # larger than that (a subclass's) makes the kernel ask for more.
            return DecodeError(f"{where}: {described}: the output buffer is larger than the "
                               f"output size {tuple(getattr(self, 'output_size', ()))} that the "
                               f"shared memory was declared for")
        if code == status.DECODER_HEADER_MISMATCH and storage_state is not None:
            data = np.asarray(self.memory_read(record['data_ptr'], storage_state))
            _, h, w = header_size(data)
            # Width x height, as _where prints the record's size.
            claims = (f"its header claims {w}x{h} pixels" if h >= 0
                      else "no frame size found in its header")
            return DecodeError(f"{where}: {described}: {claims} (BKD-075)")
        if source != status.BACKEND:
            return DecodeError(f"{where}: {described}")
        backend = self._backends.get(FORMAT_OF_MODE.get(int(record['mode'])))
        message = described
        if backend is not None and storage_state is not None:
            data = bytes(self.memory_read(record['data_ptr'], storage_state))
            try:
                backend.decode_region_py(data)
            except DecodeError as exc:
                message = f"{exc} ({described})"
        return DecodeError(f"{where}: {backend.name if backend else 'decoder'} failed: {message}")
