"""Named pipelines: the usual image-training recipes, for ``ffcvx show`` and ``ffcvx doctor``.

A preset is a decoder (``simple``, ``center224``, ``rrc224``, ``rrc160``),
optionally a horizontal flip, and a number of views of the image field
(FFCV-SSL's ``custom_field_mapper``: each view is decoded and augmented
independently). The image pipeline ends with the decoder and the augmentations
(``ndarray[uint8], shape (B, H, W, C)``) unless ``to_tensor`` is set; then it
goes on with ``ToTensor``, ``ToTorchImage`` and ``NormalizeImage`` (ImageNet's
mean and standard deviation, float32), the steps a training script runs on
the CPU. The label field is read with its default decoder.

Instead of a preset, a user names a function, ``module:function``, that
returns the ``pipelines`` dict of a Loader (:func:`import_pipelines`).
"""
import importlib
from dataclasses import dataclass

import numpy as np

__all__ = ['DECODERS', 'IMAGENET_MEAN', 'IMAGENET_STD', 'PipelinePreset', 'PresetError',
           'choose_fields', 'import_pipelines', 'preset_pipelines', 'view_name']

#: The decoder presets: name -> (kind, output side in pixels or None).
DECODERS = {'simple': ('simple', None), 'center224': ('center', 224),
            'rrc224': ('random_resized_crop', 224), 'rrc160': ('random_resized_crop', 160)}
#: ImageNet's per-channel mean and standard deviation, in pixel units (0..255).
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255


class PresetError(ValueError):
    """A preset, a field or a ``module:function`` that cannot give pipelines; the message says which."""


@dataclass(frozen=True)
class PipelinePreset:
    """A named image pipeline.

    Parameters
    ----------
    decoder : str
        A key of :data:`DECODERS`.
    flip : bool
        Add ``RandomHorizontalFlip`` after the decoder.
    views : int
        Outputs decoded from the image field, >= 1 (2 for two-view SSL methods).
    to_tensor : bool
        End with ``ToTensor``, ``ToTorchImage`` and ``NormalizeImage`` (float32).
    """

    decoder: str = 'rrc224'
    flip: bool = False
    views: int = 1
    to_tensor: bool = False

    def __post_init__(self):
        if self.decoder not in DECODERS:
            raise PresetError(f"unknown decoder preset {self.decoder!r}; "
                              f"the presets are {', '.join(DECODERS)}")
        if int(self.views) < 1:
            raise PresetError(f"views must be at least 1, got {self.views}")

    def image_steps(self, channels=3):
        """A fresh list of Operations for one view (each view needs its own instances)."""
        from .fields.decoders import (CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder,
                                      SimpleRGBImageDecoder)
        from .transforms import NormalizeImage, RandomHorizontalFlip, ToTensor, ToTorchImage

        kind, side = DECODERS[self.decoder]
        if kind == 'simple':
            steps = [SimpleRGBImageDecoder()]
        elif kind == 'center':
            steps = [CenterCropRGBImageDecoder((side, side), ratio=224 / 256)]
        else:
            steps = [RandomResizedCropRGBImageDecoder((side, side))]
        if self.flip:
            steps.append(RandomHorizontalFlip())
        if self.to_tensor:
            mean, std = IMAGENET_MEAN, IMAGENET_STD
            if channels == 1:
                mean, std = mean.mean(keepdims=True), std.mean(keepdims=True)
            steps += [NormalizeImage(mean, std, np.float32), ToTensor(), ToTorchImage()]
        return steps


def view_name(image_field, view):
    """Output name of view ``view`` (0-based) of ``image_field``: the field's own name for view 0."""
    return image_field if view == 0 else f"{image_field}_view{view}"


def choose_fields(reader, image_field=None, label_field=None):
    """The image field and the label field a preset reads.

    Parameters
    ----------
    reader : ffcvx.reader.Reader
    image_field, label_field : str or None
        Names; None picks the first image field, and the first integer field
        (None if the file has no integer field).

    Returns
    -------
    (str, str or None)

    Raises
    ------
    PresetError
        If a named field is not in the file or has the wrong kind, or the file
        has no image field.
    """
    from .fields import ImageField, IntField

    handlers = reader.handlers
    for name, kind, wanted in ((image_field, ImageField, 'an image'),
                               (label_field, IntField, 'an integer')):
        if name is not None and name not in handlers:
            raise PresetError(f"{reader.file_name}: no field {name!r}; its fields are "
                              f"{', '.join(handlers)}")
        if name is not None and not isinstance(handlers[name], kind):
            raise PresetError(f"{reader.file_name}: field {name!r} is not {wanted} field "
                              f"({type(handlers[name]).__name__})")
    images = [n for n, h in handlers.items() if isinstance(h, ImageField)]
    labels = [n for n, h in handlers.items() if isinstance(h, IntField)]
    if image_field is None:
        if not images:
            raise PresetError(f"{reader.file_name}: no image field; its fields are "
                              f"{', '.join(handlers) or 'none'}")
        image_field = images[0]
    if label_field is None and labels:
        label_field = labels[0]
    return image_field, label_field


def preset_pipelines(reader, preset, image_field=None, label_field=None):
    """A Loader's ``pipelines`` and ``custom_field_mapper`` for ``preset`` over ``reader``'s file.

    Fields other than the image and label fields are dropped (``None``).

    Returns
    -------
    pipelines : dict of str to list of Operation or None
    custom_field_mapper : dict of str to str or None
        ``{view_name(image, k): image}`` for the views after the first.

    Raises
    ------
    PresetError
        As :func:`choose_fields`.
    """
    from .fields.decoders import IntDecoder

    image_field, label_field = choose_fields(reader, image_field, label_field)
    channels = getattr(reader.handlers[image_field], 'channels', 3)
    pipelines = {name: None for name in reader.handlers}
    pipelines[image_field] = preset.image_steps(channels)
    if label_field is not None:
        pipelines[label_field] = [IntDecoder()]
    mapper = {}
    for view in range(1, int(preset.views)):
        name = view_name(image_field, view)
        pipelines[name] = preset.image_steps(channels)
        mapper[name] = image_field
    return pipelines, (mapper or None)


def import_pipelines(target):
    """Call the function ``target`` (``"module:function"``) and return the pipelines dict it makes.

    The function takes no arguments and returns a Loader's ``pipelines`` dict.

    Raises
    ------
    PresetError
        If ``target`` is not ``module:function``, the module cannot be
        imported, it has no such function, the call raises (the message gives
        the exception), or the result is not a dict.
    """
    module_name, sep, function_name = str(target).partition(':')
    if not sep or not module_name or not function_name:
        raise PresetError(f"--pipelines takes module:function, got {target!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any failure of the user's module is reported, not raised
        raise PresetError(f"cannot import {module_name!r} for --pipelines: "
                          f"{type(exc).__name__}: {exc}") from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise PresetError(f"module {module_name!r} has no function {function_name!r}")
    try:
        pipelines = function()
    except Exception as exc:
        raise PresetError(f"{target}() raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(pipelines, dict):
        raise PresetError(f"{target}() must return a pipelines dict, "
                          f"got {type(pipelines).__name__}")
    return pipelines
