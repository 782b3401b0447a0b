"""FFCV-SSL's crop decoders (``ffcv.transforms.resized_crop``) on ffcvx's decode layer.

``RandomResizedCrop`` (FFCV-SSL's decoder and FFCV 1.0's transform in one
class), ``LabelRandomResizedCrop`` (the crop box as a label),
``CenterCrop``, ``CornerCrop`` and ``PadRGBImageDecoder``. The boxes are
torchvision's (FFCV-SSL's sampler made every crop square: its height used
``* aspect`` instead of ``/ aspect``).
"""
import numpy as np

from ..decoders.crop import (CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder,
                             ResizedCropRGBImageDecoder)
from ..decoders.simple import SimpleRGBImageDecoder
from ..pipeline.allocation_query import AllocationQuery
from ..pipeline.compiler import Compiler
from ..pipeline.operation import Decoder
from ..pipeline.state import State
from ._crop_pixels import RandomResizedCropOnPixels
from ._crop_args import UNSET, output_size_pair, parse_random_resized_crop, range_pair, seed_or_none
from ._crop_boxes import CORNERS, corner_sampler, pad_in_place, random_box_drawer

class RandomResizedCrop(RandomResizedCropRGBImageDecoder):
    """Random resized crop: a decoder as the first step of an image pipeline, a transform after one.

    Two roles, two classes behind this name (spec/pipeline.md PIP-011): the
    object is the decoder role (a ``RandomResizedCropRGBImageDecoder``, so
    views may share its decode); placed after step 0 the pipeline runs its
    :meth:`as_transform`, a :class:`~ffcvx.transforms._crop_pixels.RandomResizedCropOnPixels`
    that reads this object's parameters.

    Two signatures: FFCV 1.0's ``RandomResizedCrop(scale, ratio, size)``
    (square output ``size x size``) and FFCV-SSL's ``RandomResizedCrop(output_size,
    scale=(0.08, 1.0), ratio=(3/4, 4/3), seed=None, second_seed=None)``.
    Given positionally, the first argument decides: a pair of ints > 1 is an
    ``output_size``, a pair of floats in ``(0, 1]`` a ``scale``.

    As the first step (FFCV-SSL's way) it is
    :class:`~ffcvx.fields.decoders.RandomResizedCropRGBImageDecoder`: only
    the box is decoded, at the smallest DCT scale that keeps it at least the
    output size, then resized; a following ``RandomHorizontalFlip`` is fused.
    After a decoder (FFCV 1.0's way) it crops the decoded ``(B, H, W, C)``
    uint8 images (C = 3 or 1) with the same box and resize kernel. Output
    ``ndarray[uint8], shape (B, output_size[0], output_size[1], C)``.

    The box is torchvision's ``RandomResizedCrop.get_params``: up to 10 tries
    of area ``U(scale) * H * W`` and aspect ratio (w / h) ``exp(U(log
    ratio))``, else the centred box of the whole image clamped to the ratio
    range (torchvision's fallback, the only boxes outside ``scale``).

    Parameters
    ----------
    output_size : (int, int)
        (height, width) of the output, pixels (FFCV-SSL).
    scale, ratio : (float, float)
        Area fraction and aspect-ratio ranges, ``0 < low <= high``.
    size : int
        FFCV 1.0: side of the square output.
    seed : int or None
        None: draws follow the Loader's seed (fresh each run unless
        ``Loader(seed=...)``). An int: draws depend on (seed, epoch, sample)
        only, shared with :class:`LabelRandomResizedCrop` and every
        RandomResizedCrop with that seed; each epoch draws anew.
    second_seed : int or None
        FFCV-SSL's coupling: first draw the box that
        ``RandomResizedCrop(seed=second_seed)`` (same scale and ratio) draws
        for the sample, then this op's own box, from ``seed``, in the largest
        free band beside it (``_crop_boxes.get_disjoint_crop``): the two
        views do not overlap wherever a band holds a box of at least
        ``scale[0]`` of the image, else the ordinary draw is used.
    channels, png_channel_order
        As for ``RandomResizedCropRGBImageDecoder`` (decoder use only).

    Raises
    ------
    TypeError
        For arguments fitting neither signature.
    ValueError
        At construction for a bad range, size or seed; when the Loader is
        built, as a transform after ``ToTensor()`` or on images that are not
        uint8 with 1 or 3 channels.
    RuntimeError
        As a transform, if the resize kernel fails (a bug: sizes are checked).
    """

    seed_kind = 'RandomResizedCrop'

    def __init__(self, *args, output_size=UNSET, scale=UNSET, ratio=UNSET, size=UNSET,
                 seed=None, second_seed=None, channels=None, png_channel_order='rgb'):
        out, scale, ratio = parse_random_resized_crop(args, output_size, scale, ratio, size)
        super().__init__(out, scale=scale, ratio=ratio, channels=channels,
                         png_channel_order=png_channel_order)
        self.seed = seed_or_none('RandomResizedCrop', 'seed', seed)
        self.second_seed = seed_or_none('RandomResizedCrop', 'second_seed', second_seed)
        self._pixels = None     # the transform role, while called directly on images

    @property
    def seed_values(self):
        """``(seed,)``, or ``(seed, second_seed)`` with a second seed (``ffcvx.pipeline.seeds``)."""
        return (self.seed,) if self.second_seed is None else (self.seed, self.second_seed)

    def _seeded_region_sampler(self):
        return random_box_drawer(self.scale, self.ratio, self.second_seed is not None)

    #: Its stage methods below only add the transform role for direct calls:
    #: as a decoder its code is RandomResizedCropRGBImageDecoder's, so views
    #: may share its decode (``ffcvx.decoders.crop.can_share``).
    decodes_as_view = True

    def as_transform(self):
        """Its transform role, after step 0 (spec/pipeline.md PIP-011): crops the decoded images."""
        return RandomResizedCropOnPixels(self)

    # -- called directly with decoded images (FFCV 1.0's transform) ----------
    # A pipeline runs :meth:`as_transform` after step 0; code that calls
    # these methods itself with an image State gets that role's answers.

    def _role(self, previous_state):
        # The transform role when last declared with a shaped input, else None.
        if previous_state is not None and previous_state.shape is not None:
            if self._pixels is None:
                self._pixels = self.as_transform()
        else:
            self._pixels = None
        return self._pixels

    def declare_shared_memory(self, previous_state):
        role = self._role(previous_state)
        return (super().declare_shared_memory(previous_state) if role is None
                else role.declare_shared_memory(previous_state))

    def declare_state_and_memory(self, previous_state):
        role = self._role(previous_state)
        return (super().declare_state_and_memory(previous_state) if role is None
                else role.declare_state_and_memory(previous_state))

    def generate_code(self):
        return super().generate_code() if self._pixels is None else self._pixels.generate_code()

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        if self._pixels is None:
            return super().finish_batch(result, destination, batch_indices, storage_state)
        return self._pixels.finish_batch(result, destination, batch_indices)


class LabelRandomResizedCrop(Decoder):
    """The box that ``RandomResizedCrop`` with the same seed(s) crops, as a label (FFCV-SSL).

    The decoder of another read of an image field (``Loader(...,
    custom_field_mapper={'crop': 'image'})``); it reads only the metadata,
    never pixels. Output ``ndarray[int32], shape (B, 6)``: ``[width, height,
    i, j, h, w]``, the stored image's size and the box (top, left, height,
    width), in the stored image's pixels, exactly what
    ``RandomResizedCrop(output_size, scale, ratio, seed=seed,
    second_seed=second_seed)`` used for that sample and epoch as the first
    step of a pipeline, or after a decoder that outputs the stored image
    (``SimpleRGBImageDecoder``). After a decoder whose output has another
    size (a crop, ``PadRGBImageDecoder``'s padding) the image op draws in
    that output's frame, which this label cannot see.

    Parameters
    ----------
    output_size : (int, int)
        Checked and kept for FFCV-SSL's signature; the box does not depend on it.
    seed : int
        The image op's seed (required: a Loader-seeded op cannot be matched).
    scale, ratio : (float, float)
        The image op's ranges.
    second_seed : int or None
        The image op's ``second_seed``.

    Raises
    ------
    ValueError
        For a seed that is not an int, or a bad size or range.
    """

    seed_kind = RandomResizedCrop.seed_kind

    def __init__(self, output_size, seed, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), second_seed=None):
        super().__init__()
        name = 'LabelRandomResizedCrop'
        self.output_size = output_size_pair(name, output_size)
        if seed is None:
            raise ValueError(f"{name}: seed must be the int seed of the RandomResizedCrop it reports")
        self.seed = seed_or_none(name, 'seed', seed)
        self.second_seed = seed_or_none(name, 'second_seed', second_seed)
        self.scale = range_pair(name, 'scale', scale)
        self.ratio = range_pair(name, 'ratio', ratio)

    seed_values = RandomResizedCrop.seed_values

    def decodes(self, field):
        """Whether ``field`` is read by image decoders (PIP-002): it reads their metadata only."""
        return issubclass(SimpleRGBImageDecoder, field.get_decoder_class())

    def declare_state_and_memory(self, previous_state):
        shape, dtype = (6,), np.dtype(np.int32)
        return State(True, previous_state.device, shape, dtype), AllocationQuery(shape, dtype)

    def generate_code(self):
        my_range = Compiler.get_iterator()
        draw_box = random_box_drawer(self.scale, self.ratio, self.second_seed is not None)

        def crop_params(batch_indices, destination, metadata, storage_state, seed):
            for k in my_range(batch_indices.shape[0]):
                record = metadata[batch_indices[k]]
                height, width = np.int64(record['height']), np.int64(record['width'])
                i, j, h, w = draw_box(seed, batch_indices[k], height, width)
                destination[k, 0] = width
                destination[k, 1] = height
                destination[k, 2] = i
                destination[k, 3] = j
                destination[k, 4] = h
                destination[k, 5] = w
            return destination
        crop_params.is_parallel = True
        crop_params.with_seed = True
        return crop_params

class CenterCrop(CenterCropRGBImageDecoder):
    """FFCV-SSL's ``CenterCrop(output_size, ratio)``: the centred square of side ``int(ratio * min(H, W))``.

    Decodes only that box, resized to ``output_size`` (see
    ``CenterCropRGBImageDecoder``). Output ``ndarray[uint8], shape (B,
    output_size[0], output_size[1], 3)``. ``ratio`` in ``(0, 1]``.

    Raises
    ------
    ValueError
        For a bad ``output_size`` or ``ratio``.
    """

    def __init__(self, output_size, ratio=224 / 256, channels=None, png_channel_order='rgb'):
        super().__init__(output_size_pair('CenterCrop', output_size), ratio=ratio, channels=channels,
                         png_channel_order=png_channel_order)


class CornerCrop(ResizedCropRGBImageDecoder):
    """FFCV-SSL's ``CornerCrop(output_size, ratio, corner='top_left')``: a square at one corner.

    The square has side ``max(1, int(ratio * min(H, W)))`` (as ``CenterCrop``)
    and touches the named corner of the image as stored, row 0 at the top
    (torchvision's ``five_crop`` convention); only it is decoded, then
    resized to ``output_size``. FFCV-SSL's own boxes are mirrored top to
    bottom with respect to their names (its 'top_left' is the bottom-left
    square); ffcvx follows the names.

    Parameters
    ----------
    output_size : (int, int)
    ratio : float in (0, 1]
    corner : {'top_left', 'top_right', 'bottom_left', 'bottom_right'}

    Raises
    ------
    ValueError
        For a bad ``ratio`` or ``corner``.
    """

    def __init__(self, output_size, ratio, corner='top_left', channels=None, png_channel_order='rgb'):
        super().__init__(output_size_pair('CornerCrop', output_size), channels=channels,
                         png_channel_order=png_channel_order)
        if not isinstance(ratio, (int, float, np.integer, np.floating)) or not 0 < ratio <= 1:
            raise ValueError(f"CornerCrop: ratio must be in (0, 1], got {ratio!r}")
        if corner not in CORNERS:
            raise ValueError(f"CornerCrop: corner must be one of {CORNERS}, got {corner!r}")
        self.ratio, self.corner = float(ratio), corner

    def crop_sampler(self):
        return corner_sampler(self.ratio, self.corner)


class PadRGBImageDecoder(SimpleRGBImageDecoder):
    """Whole images of any size, each padded to the field's largest height and width (FFCV-SSL).

    Output ``ndarray[uint8], shape (B, Hmax, Wmax, C)`` (C = 3, or the
    field's channels): the image at the top-left corner, zeros to its right
    and below it (FFCV-SSL's ``copyMakeBorder`` with constant 0; its call
    swapped the two pad amounts for non-square maxima, ffcvx does not). The
    per-sample engine decodes each image packed at the start of its slot
    (BKD-074); the rows are then moved to their padded places.

    Raises
    ------
    ValueError
        At Loader construction with a backend of kind ``batch``.
    """

    def accept_backends(self, select_backend):
        super().accept_backends(select_backend)
        if self._batch_backend is not None:
            raise ValueError(f"PadRGBImageDecoder decodes on the CPU; backend "
                             f"{self._batch_backend.name!r} decodes whole batches of one size")

    def declare_state_and_memory(self, previous_state):
        self.output_size = self._max_size()
        return self.engine.declare(self, *self.output_size, self._out_channels())

    def finish_batch(self, result, destination, batch_indices, storage_state=None):
        images = super().finish_batch(result, destination, batch_indices, storage_state)
        records = self.metadata[batch_indices]
        pad_in_place(images, records['height'].astype(np.int64), records['width'].astype(np.int64))
        return images
